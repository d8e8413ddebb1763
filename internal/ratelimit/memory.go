package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// DefaultMaxKeys is the number of keys a Memory keeps when
// MemoryOptions.MaxKeys is zero.
const DefaultMaxKeys = 1_000_000

// MemoryOptions configures NewMemory. The zero value is ready to use.
type MemoryOptions struct {
	// MaxKeys bounds the number of keys kept (each about 145 bytes with a
	// 35-byte key); 0 means DefaultMaxKeys. See Memory for what happens
	// at the bound.
	MaxKeys int
}

// Memory is the embedded Store: the state of every key in memory, for a
// single gateway instance. It is safe for concurrent use and exact: N
// goroutines racing on a limit of K at one instant admit exactly K.
//
// Keys are spread over up to 64 shards by hash, each with its own mutex. A
// request locks the shards of its keys in ascending order (each once), so
// all its limits are decided atomically and two requests cannot deadlock.
//
// Memory is bounded: each shard holds at most MaxKeys/shards keys (a
// request may exceed it by its own keys, briefly). To admit a new key into
// a full shard, Memory first drops idle keys (a drained bucket or a past
// quota window, which behave exactly like absent keys; swept at most once a
// second per shard, and looked for among the least recently used), and only
// then evicts the least recently used key of the shard, which forgives that
// key's consumption. Under a flood of distinct keys a limit therefore stays
// exact for every key that remains in the most recent MaxKeys.
type Memory struct {
	seed   maphash.Seed
	mask   uint64
	shards []shard
}

// maxShards is the number of shards for large key bounds; small bounds get
// fewer so that each shard holds at least minShardKeys.
const (
	maxShards    = 64
	minShardKeys = 1024
	sweepEvery   = int64(time.Second)
	// tailProbe is how many least recently used keys are looked at for an
	// idle one before the least recently used is evicted.
	tailProbe = 8
)

// NewMemory returns an empty Memory.
func NewMemory(opts MemoryOptions) *Memory {
	maxKeys := opts.MaxKeys
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	n := maxShards
	for n > 1 && maxKeys/n < minShardKeys {
		n /= 2
	}
	m := &Memory{seed: maphash.MakeSeed(), mask: uint64(n - 1), shards: make([]shard, n)}
	per := (maxKeys + n - 1) / n
	for i := range m.shards {
		m.shards[i] = shard{idx: make(map[string]int32), head: -1, tail: -1, max: per}
	}
	return m
}

var _ Store = (*Memory)(nil)

// Len returns the number of keys held.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.ents)
		s.mu.Unlock()
	}
	return n
}

// Decide implements Store. It never blocks on anything but the shard locks
// and ignores ctx. It does not allocate for requests of up to 8 limits
// whose keys are already known.
func (m *Memory) Decide(_ context.Context, now time.Time, req Request, d *Decision) error {
	if err := checkRequest(req); err != nil {
		return err
	}
	n := len(req.Limits)
	if n == 0 {
		*d = Decision{Allowed: true, Index: -1}
		return nil
	}
	t := clampNow(now.UnixNano())

	const small = 8
	var (
		shardBuf [small]uint32
		lockBuf  [small]uint32
		foundBuf [small]int32
		outBuf   [small]outcome
	)
	sh, locks, found, outs := shardBuf[:0], lockBuf[:0], foundBuf[:0], outBuf[:0]
	if n > small {
		sh, locks = make([]uint32, 0, n), make([]uint32, 0, n)
		found, outs = make([]int32, 0, n), make([]outcome, 0, n)
	}
	for _, k := range req.Keys {
		i := m.shardOf(k)
		sh = append(sh, i)
		locks = insertSorted(locks, i)
	}
	for _, i := range locks {
		m.shards[i].mu.Lock()
	}

	allowed := true
	for i, k := range req.Keys {
		s := &m.shards[sh[i]]
		j, ok := s.idx[k]
		var st state
		if ok {
			st = s.ents[j].st
		} else {
			j = -1
		}
		o := decide(&req.Limits[i].Rate, st, ok, t)
		allowed = allowed && o.ok
		found = append(found, j)
		outs = append(outs, o)
	}
	if !allowed {
		// Nothing is charged, but a rejected key is in use: keep it
		// away from eviction, which would forgive it.
		for i := range n {
			if j := found[i]; j >= 0 {
				m.shards[sh[i]].touch(j)
			}
		}
	} else {
		// Update the known keys first (by index), then insert the new
		// ones, whose evictions may move entries around.
		for i := range n {
			if j := found[i]; j >= 0 {
				s := &m.shards[sh[i]]
				s.ents[j].st = outs[i].next
				s.touch(j)
			}
		}
		for i := range n {
			if found[i] >= 0 {
				continue
			}
			touched := 0 // keys of this request already committed in this shard
			for j := range n {
				if sh[j] == sh[i] && (found[j] >= 0 || j < i) {
					touched++
				}
			}
			m.shards[sh[i]].insert(req.Keys[i], outs[i].next, t, touched)
		}
	}

	for _, i := range locks {
		m.shards[i].mu.Unlock()
	}
	fill(d, req.Limits, outs, allowed)
	return nil
}

// fill writes the Decision for the outcomes of a request.
func fill(d *Decision, limits []Limit, outs []outcome, allowed bool) {
	b := 0
	for i := 1; i < len(outs); i++ {
		o, cur := &outs[i], &outs[b]
		if allowed {
			if o.remaining < cur.remaining || (o.remaining == cur.remaining && o.reset > cur.reset) {
				b = i
			}
		} else if !o.ok && (cur.ok || o.wait > cur.wait) {
			b = i
		}
	}
	o, l := &outs[b], &limits[b]
	*d = Decision{
		Allowed:   allowed,
		Index:     b,
		LimitName: l.Name,
		Quota:     l.Rate.N,
		Window:    l.Rate.Per,
	}
	if allowed {
		d.Remaining = o.remaining
		d.Reset = time.Duration(o.reset)
	} else {
		d.RetryAfter = retryAfter(o.wait)
		d.Reset = d.RetryAfter
	}
}

// insertSorted inserts v into the ascending list s unless present.
func insertSorted(s []uint32, v uint32) []uint32 {
	i := len(s)
	for i > 0 && s[i-1] > v {
		i--
	}
	if i > 0 && s[i-1] == v {
		return s
	}
	s = append(s, 0)
	copy(s[i+1:], s[i:])
	s[i] = v
	return s
}

// shard is a map from key to an index into ents, which also form a doubly
// linked LRU list by index (head: most recently used).
type shard struct {
	mu        sync.Mutex
	idx       map[string]int32
	ents      []entry
	head      int32
	tail      int32
	max       int
	nextSweep int64
	_         [64]byte // keep hot mutexes on separate cache lines
}

type entry struct {
	key        string
	st         state
	prev, next int32
}

func (s *shard) unlink(i int32) {
	e := &s.ents[i]
	if e.prev >= 0 {
		s.ents[e.prev].next = e.next
	} else {
		s.head = e.next
	}
	if e.next >= 0 {
		s.ents[e.next].prev = e.prev
	} else {
		s.tail = e.prev
	}
}

func (s *shard) pushFront(i int32) {
	e := &s.ents[i]
	e.prev, e.next = -1, s.head
	if s.head >= 0 {
		s.ents[s.head].prev = i
	}
	s.head = i
	if s.tail < 0 {
		s.tail = i
	}
}

func (s *shard) touch(i int32) {
	if s.head != i {
		s.unlink(i)
		s.pushFront(i)
	}
}

// insert adds a key known to be absent. touched is the number of keys of
// the current request already committed to this shard: they are the most
// recently used and are never evicted.
func (s *shard) insert(key string, st state, now int64, touched int) {
	if len(s.ents) >= s.max && now >= s.nextSweep {
		s.sweep(now)
		s.nextSweep = now + sweepEvery
	}
	for len(s.ents) >= s.max && len(s.ents) > touched {
		s.remove(s.victim(now, len(s.ents)-touched))
	}
	if len(s.ents) == cap(s.ents) {
		c := min(max(2*cap(s.ents), 16), s.max)
		if c <= len(s.ents) {
			c = len(s.ents) + 8
		}
		ents := make([]entry, len(s.ents), c)
		copy(ents, s.ents)
		s.ents = ents
	}
	i := int32(len(s.ents))
	s.ents = append(s.ents, entry{key: key, st: st})
	s.pushFront(i)
	s.idx[key] = i
}

// victim returns the entry to evict: an idle one among the tailProbe least
// recently used, else the least recently used. Only the last n entries of
// the list are candidates.
func (s *shard) victim(now int64, n int) int32 {
	i := s.tail
	for range min(n, tailProbe) {
		if s.ents[i].st.exp <= now {
			return i
		}
		i = s.ents[i].prev
	}
	return s.tail
}

// sweep drops every idle key.
func (s *shard) sweep(now int64) {
	for i := len(s.ents) - 1; i >= 0; i-- {
		if s.ents[i].st.exp <= now {
			s.remove(int32(i))
		}
	}
}

// remove deletes entry i, moving the last entry into its place.
func (s *shard) remove(i int32) {
	s.unlink(i)
	delete(s.idx, s.ents[i].key)
	last := int32(len(s.ents) - 1)
	if i != last {
		e := s.ents[last]
		s.ents[i] = e
		s.idx[e.key] = i
		if e.prev >= 0 {
			s.ents[e.prev].next = i
		} else {
			s.head = i
		}
		if e.next >= 0 {
			s.ents[e.next].prev = i
		} else {
			s.tail = i
		}
	}
	s.ents[last] = entry{}
	s.ents = s.ents[:last]
}

// shardOf returns the index of the shard that holds key.
func (m *Memory) shardOf(key string) uint32 {
	return uint32(maphash.String(m.seed, key) & m.mask)
}
