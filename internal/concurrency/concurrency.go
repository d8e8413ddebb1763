// Package concurrency limits how many requests are in flight at once per
// key (routes[].rate_limits[].concurrency), within one gateway instance.
//
// A Limiter keeps one counter per key that has requests in flight; a key
// whose count drops to zero is deleted, so memory follows the requests in
// flight (bounded by server.limits.max_in_flight times the limits per
// route), never the number of distinct clients seen. Options.MaxKeys is a
// second bound for when a Limiter is used without load shedding.
//
// Acquire takes a slot of every key of a request together, all or none,
// under the locks of the keys' shards taken in ascending order (as the rate
// limit store does): N racing requests on a limit of K are admitted exactly
// K at a time, and a request refused by one key holds no slot of another.
package concurrency

import (
	"hash/maphash"
	"sync"
)

// DefaultMaxKeys is the bound on keys when Options.MaxKeys is zero.
const DefaultMaxKeys = 1 << 20

// numShards spreads keys over locks; a power of two.
const numShards = 64

// MaxKeysPerAcquire bounds the keys of one Acquire call.
const MaxKeysPerAcquire = 16

// Options configure New. The zero value is ready to use.
type Options struct {
	// MaxKeys bounds the keys with requests in flight (default
	// DefaultMaxKeys). At the bound a request that needs a new key is
	// refused, as if that key were at its limit.
	MaxKeys int
}

// Limiter counts requests in flight per key. It is safe for concurrent use.
type Limiter struct {
	seed   maphash.Seed
	max    int // keys per shard
	shards [numShards]shard
}

type shard struct {
	mu sync.Mutex
	n  map[string]int32
	_  [40]byte // keeps neighbouring shards' locks off one cache line
}

// New returns an empty Limiter.
func New(o Options) *Limiter {
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	l := &Limiter{seed: maphash.MakeSeed(), max: max(1, (o.MaxKeys+numShards-1)/numShards)}
	for i := range l.shards {
		l.shards[i].n = make(map[string]int32)
	}
	return l
}

func (l *Limiter) shardOf(key string) int {
	return int(maphash.String(l.seed, key) & (numShards - 1))
}

// Acquire takes one slot of every keys[i], each of which admits at most
// limits[i] requests at once, all or none. It returns -1 when it took them
// all; otherwise the index of a key that was at its limit (or that could
// not be added because the Limiter holds MaxKeys keys), and it took none.
// Keys must be distinct, at most MaxKeysPerAcquire, and stay unchanged
// until Release (ordinary Go strings do). A limit below 1 refuses.
func (l *Limiter) Acquire(keys []string, limits []int) int {
	if len(keys) == 0 {
		return -1
	}
	if len(keys) > MaxKeysPerAcquire || len(limits) < len(keys) {
		return 0
	}
	var idx [MaxKeysPerAcquire]uint8
	var order [MaxKeysPerAcquire]uint8 // distinct shard indexes, ascending
	n := 0
	for i, k := range keys {
		s := uint8(l.shardOf(k))
		idx[i] = s
		j := 0
		for j < n && order[j] < s {
			j++
		}
		if j < n && order[j] == s {
			continue
		}
		copy(order[j+1:n+1], order[j:n])
		order[j] = s
		n++
	}
	for _, s := range order[:n] {
		l.shards[s].mu.Lock()
	}
	refused := -1
	for i, k := range keys {
		sh := &l.shards[idx[i]]
		c, ok := sh.n[k]
		if int(c) >= limits[i] || !ok && len(sh.n) >= l.max {
			refused = i
			break
		}
	}
	if refused < 0 {
		for i, k := range keys {
			l.shards[idx[i]].n[k]++
		}
	}
	for _, s := range order[:n] {
		l.shards[s].mu.Unlock()
	}
	return refused
}

// Release gives back the slots a successful Acquire took for keys. A key
// whose count reaches zero is forgotten. Releasing a key that holds no slot
// does nothing.
func (l *Limiter) Release(keys []string) {
	for _, k := range keys {
		sh := &l.shards[l.shardOf(k)]
		sh.mu.Lock()
		switch c := sh.n[k]; {
		case c > 1:
			sh.n[k] = c - 1
		case c == 1:
			delete(sh.n, k)
		}
		sh.mu.Unlock()
	}
}

// InFlight returns the requests in flight under key.
func (l *Limiter) InFlight(key string) int {
	sh := &l.shards[l.shardOf(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return int(sh.n[key])
}

// Len returns the number of keys with requests in flight.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.n)
		sh.mu.Unlock()
	}
	return n
}
