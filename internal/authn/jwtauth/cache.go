package jwtauth

import (
	"crypto/sha256"
	"sync"

	"github.com/breakwater/breakwater/internal/authn"
)

// maxCacheAgeNanos bounds how long a verified token is trusted without being
// verified again, so a key removed from the set stops working soon even for
// tokens that live long.
const maxCacheAgeNanos = int64(5 * 60 * 1e9)

// evictSample is how many entries a full shard looks at to find a victim.
const evictSample = 16

// entry is a verified token.
type entry struct {
	consumer *authn.Consumer
	jti      string
	until    int64 // unix nanos: min(exp, verified + maxCacheAge); never used at or after it
}

type shard struct {
	mu  sync.RWMutex
	m   map[[sha256.Size]byte]entry
	max int
}

// tokenCache maps sha256(token) to its verification result. It is bounded:
// a full shard evicts, from a sample of its entries, every expired one, or
// else the one closest to expiry.
type tokenCache struct {
	shards []shard
	mask   byte
}

func newTokenCache(size int) *tokenCache {
	n := 1
	if size >= 1024 {
		n = 16
	}
	c := &tokenCache{shards: make([]shard, n), mask: byte(n - 1)}
	for i := range c.shards {
		c.shards[i].max = size / n
		c.shards[i].m = make(map[[sha256.Size]byte]entry)
	}
	return c
}

func (c *tokenCache) get(h *[sha256.Size]byte, now int64) (entry, bool) {
	s := &c.shards[h[0]&c.mask]
	s.mu.RLock()
	e, ok := s.m[*h]
	s.mu.RUnlock()
	if !ok || now >= e.until {
		return entry{}, false
	}
	return e, true
}

func (c *tokenCache) put(h *[sha256.Size]byte, e entry, now int64) {
	s := &c.shards[h[0]&c.mask]
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[*h]; !ok && len(s.m) >= s.max {
		s.evictLocked(now)
	}
	s.m[*h] = e
}

// evictLocked frees at least one slot. Map iteration starts at a random
// place, so the sample is random.
func (s *shard) evictLocked(now int64) {
	var victim [sha256.Size]byte
	victimUntil, seen, freed, found := int64(0), 0, false, false
	for k, e := range s.m {
		if e.until <= now {
			delete(s.m, k)
			freed = true
		} else if !found || e.until < victimUntil {
			victim, victimUntil, found = k, e.until, true
		}
		if seen++; seen >= evictSample {
			break
		}
	}
	if !freed && found {
		delete(s.m, victim)
	}
}

func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
