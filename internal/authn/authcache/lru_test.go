package authcache

import (
	"crypto/sha256"
	"testing"
	"time"
)

func key(s string) [sha256.Size]byte { return sha256.Sum256([]byte(s)) }

func TestLRUBoundAndExpiry(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := New[int](2)
	c.Put(key("a"), 1, now.Add(time.Minute))
	c.Put(key("b"), 2, now.Add(time.Minute))
	if v, ok := c.Get(key("a"), now); !ok || v != 1 { // a is now the most recently used
		t.Fatalf("Get(a) = %v, %v", v, ok)
	}
	c.Put(key("c"), 3, now.Add(time.Minute)) // evicts b, the least recently used
	if _, ok := c.Get(key("b"), now); ok {
		t.Error("the least recently used entry was not evicted")
	}
	if c.Len() != 2 {
		t.Errorf("Len = %d; want 2", c.Len())
	}
	if _, ok := c.Get(key("c"), now.Add(time.Minute)); ok {
		t.Error("an entry was returned at its expiry")
	}
	c.Put(key("a"), 10, now.Add(time.Hour))
	if v, _ := c.Get(key("a"), now.Add(30*time.Minute)); v != 10 {
		t.Errorf("updated value = %d; want 10", v)
	}
}
