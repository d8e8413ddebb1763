// Package authcache is the bounded, expiring cache of verified credentials
// shared by authenticators (introspection answers, client certificates).
package authcache

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"
)

// LRU is a bounded least-recently-used cache whose entries also expire.
// Keys are SHA-256 digests, so nothing a client sends is kept in clear.
type LRU[V any] struct {
	mu  sync.Mutex
	max int
	ll  list.List // front: most recently used; elements hold *entry[V]
	m   map[[sha256.Size]byte]*list.Element
}

type entry[V any] struct {
	key [sha256.Size]byte
	val V
	exp time.Time
}

// New returns a cache of at most max entries.
func New[V any](max int) *LRU[V] {
	return &LRU[V]{max: max, m: make(map[[sha256.Size]byte]*list.Element, min(max, 1024))}
}

// Get returns the value of key if present and not expired at now.
func (c *LRU[V]) Get(key [sha256.Size]byte, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[key]
	if !ok {
		var zero V
		return zero, false
	}
	e := el.Value.(*entry[V])
	if !now.Before(e.exp) {
		c.ll.Remove(el)
		delete(c.m, key)
		var zero V
		return zero, false
	}
	c.ll.MoveToFront(el)
	return e.val, true
}

// Put stores val under key until exp, evicting the least recently used
// entry when the cache is full.
func (c *LRU[V]) Put(key [sha256.Size]byte, val V, exp time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[key]; ok {
		e := el.Value.(*entry[V])
		e.val, e.exp = val, exp
		c.ll.MoveToFront(el)
		return
	}
	c.m[key] = c.ll.PushFront(&entry[V]{key: key, val: val, exp: exp})
	for c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.m, old.Value.(*entry[V]).key)
	}
}

// Len returns the number of entries, expired or not.
func (c *LRU[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
