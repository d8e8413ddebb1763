package dashboard

import (
	"cmp"
	"hash/maphash"
	"slices"
	"sync"
)

// Top consumers: the space-saving algorithm (Metwally et al.) over
// topShards independent shards; a consumer always lands in the same shard
// (by its hash), so the shards' lists are disjoint and merging them is a
// union. Each shard tracks topPerShard consumers in a fixed open-addressing
// table and a min-heap on the count: an untracked consumer replaces the
// least counted one and inherits its count (the error bound). Nothing
// allocates after init; ids longer than maxConsumerBytes are cut.
const (
	topShards        = 8
	topPerShard      = 32
	topSlots         = 2 * topPerShard // power of two
	maxConsumerBytes = 128
	// TopConsumers is how many consumers the summary lists.
	TopConsumers = 20
)

type topEntry struct {
	key    [maxConsumerBytes]byte
	keyLen uint8
	hash   uint64
	count  uint64 // requests counted (an overestimate by at most errBound)
	errBnd uint64 // count inherited from the evicted entry
	c4xx   uint64 // 4xx responses since it was (last) tracked
	c5xx   uint64
	heap   int // position in the heap
}

type topShard struct {
	mu      sync.Mutex
	n       int // entries in use
	entries [topPerShard]topEntry
	slots   [topSlots]int16    // index into entries, -1: empty
	heap    [topPerShard]int16 // min-heap of entry indices by count
	_       [64]byte           // keep shards on separate cache lines
}

type topK struct {
	seed   maphash.Seed
	shards [topShards]topShard
}

func (t *topK) init(seed maphash.Seed) {
	t.seed = seed
	for i := range t.shards {
		for j := range t.shards[i].slots {
			t.shards[i].slots[j] = -1
		}
	}
}

// Observe counts one finished request of consumer (its id) with the status
// sent. Anonymous requests (consumer "") are not counted. It takes one
// shard lock and does not allocate: call it on the request path.
func (d *Dashboard) Observe(consumer string, status int) { d.top.observe(consumer, status) }

func (t *topK) observe(consumer string, status int) {
	if consumer == "" {
		return
	}
	if len(consumer) > maxConsumerBytes {
		consumer = consumer[:maxConsumerBytes]
	}
	h := maphash.String(t.seed, consumer)
	s := &t.shards[h>>61] // topShards = 8: the top 3 bits
	s.mu.Lock()
	e := s.find(h, consumer)
	if e < 0 {
		e = s.insert(h, consumer)
	}
	en := &s.entries[e]
	en.count++
	switch {
	case status >= 500:
		en.c5xx++
	case status >= 400:
		en.c4xx++
	}
	s.down(en.heap)
	s.mu.Unlock()
}

// find returns the entry index of consumer, or -1.
func (s *topShard) find(h uint64, consumer string) int {
	for i := h & (topSlots - 1); ; i = (i + 1) & (topSlots - 1) {
		e := s.slots[i]
		if e < 0 {
			return -1
		}
		en := &s.entries[e]
		if en.hash == h && string(en.key[:en.keyLen]) == consumer {
			return int(e)
		}
	}
}

// insert tracks consumer in a free entry, or in place of the least counted
// one, and returns its index.
func (s *topShard) insert(h uint64, consumer string) int {
	var e int
	if s.n < topPerShard {
		e = s.n
		s.n++
		s.heap[e] = int16(e)
		s.entries[e] = topEntry{heap: e}
		s.up(e)
	} else {
		e = int(s.heap[0])
		s.unslot(e)
		en := &s.entries[e]
		inherited := en.count
		*en = topEntry{count: inherited, errBnd: inherited, heap: 0}
	}
	en := &s.entries[e]
	en.hash = h
	en.keyLen = uint8(copy(en.key[:], consumer))
	i := h & (topSlots - 1)
	for s.slots[i] >= 0 {
		i = (i + 1) & (topSlots - 1)
	}
	s.slots[i] = int16(e)
	return e
}

// unslot removes entry e from the table (backward-shift deletion keeps
// linear probing correct without tombstones).
func (s *topShard) unslot(e int) {
	const mask = topSlots - 1
	i := s.entries[e].hash & mask
	for int(s.slots[i]) != e {
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; s.slots[j] >= 0; j = (j + 1) & mask {
		home := s.entries[s.slots[j]].hash & mask
		// Move slots[j] into the hole at i unless its home lies
		// cyclically in (i, j].
		if (j-home)&mask >= (j-i)&mask {
			s.slots[i] = s.slots[j]
			i = j
		}
	}
	s.slots[i] = -1
}

func (s *topShard) less(a, b int) bool {
	return s.entries[s.heap[a]].count < s.entries[s.heap[b]].count
}

func (s *topShard) swap(a, b int) {
	s.heap[a], s.heap[b] = s.heap[b], s.heap[a]
	s.entries[s.heap[a]].heap = a
	s.entries[s.heap[b]].heap = b
}

func (s *topShard) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !s.less(i, p) {
			return
		}
		s.swap(i, p)
		i = p
	}
}

func (s *topShard) down(i int) {
	for {
		l := 2*i + 1
		if l >= s.n {
			return
		}
		m := l
		if r := l + 1; r < s.n && s.less(r, l) {
			m = r
		}
		if !s.less(m, i) {
			return
		}
		s.swap(i, m)
		i = m
	}
}

// Consumer is one line of the top consumers.
type Consumer struct {
	ID       string `json:"id"`       // cut to 128 bytes
	Requests uint64 `json:"requests"` // counted requests: at most ErrorBound more than the true number
	Bound    uint64 `json:"error_bound"`
	Status4  uint64 `json:"status_4xx"` // since the consumer was last tracked
	Status5  uint64 `json:"status_5xx"`
}

// top returns the n most counted consumers, most first.
func (t *topK) top(n int) []Consumer {
	var out []Consumer
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for _, en := range s.entries[:s.n] {
			out = append(out, Consumer{ID: string(en.key[:en.keyLen]), Requests: en.count, Bound: en.errBnd, Status4: en.c4xx, Status5: en.c5xx})
		}
		s.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b Consumer) int {
		return cmp.Or(cmp.Compare(b.Requests, a.Requests), cmp.Compare(a.ID, b.ID))
	})
	if len(out) > n {
		out = out[:n]
	}
	if out == nil {
		out = []Consumer{}
	}
	return out
}
