package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Unix(1_800_000_000, 0)} }
func ctx() context.Context           { return context.Background() }
func claim(m *Memory, k string) bool {
	ok, err := m.Claim(ctx(), k, time.Minute)
	return ok && err == nil
}
func revoked(m *Memory, jti string) bool { r, _ := m.Revoked(ctx(), jti); return r }

func TestNonceClaimedOnceUntilExpiry(t *testing.T) {
	c := newClock()
	m := NewMemory(MemoryOptions{Now: c.now})
	if !claim(m, "k1\x00n1") {
		t.Fatal("first claim refused")
	}
	if claim(m, "k1\x00n1") {
		t.Fatal("replay accepted")
	}
	if !claim(m, "k2\x00n1") {
		t.Fatal("same nonce of another key refused")
	}
	c.add(time.Minute + time.Nanosecond)
	if !claim(m, "k1\x00n1") {
		t.Fatal("nonce still refused after its ttl")
	}
}

func TestNonceExactlyOnceUnderConcurrency(t *testing.T) {
	m := NewMemory(MemoryOptions{})
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			if claim(m, "same") {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d claims of one nonce succeeded; want 1", wins.Load())
	}
}

func TestFullStoreFailsClosed(t *testing.T) {
	c := newClock()
	m := NewMemory(MemoryOptions{MaxNonces: 2, MaxRevocations: 1, Now: c.now})
	claim(m, "a")
	claim(m, "b")
	if ok, err := m.Claim(ctx(), "c", time.Minute); ok || !errors.Is(err, ErrFull) {
		t.Fatalf("claim on a full store = %v, %v; want false, ErrFull", ok, err)
	}
	if claim(m, "a") {
		t.Fatal("a full store forgot a nonce")
	}
	c.add(2 * time.Minute) // everything expired: swept on the next claim
	if !claim(m, "c") {
		t.Fatal("expired entries not swept")
	}
	// A full store is swept at most once a second: a flood into a full
	// store costs a probe each, not a scan of the whole map.
	if ok, _ := m.Claim(ctx(), "d", 100*time.Millisecond); !ok {
		t.Fatal("claim d refused")
	}
	c.add(200 * time.Millisecond) // d expired, but the last sweep was 200ms ago
	if claim(m, "e") {
		t.Fatal("swept again within a second of the last sweep")
	}
	c.add(time.Second)
	if !claim(m, "e") {
		t.Fatal("not swept a second later")
	}

	until := c.t.Add(time.Hour)
	if err := m.Revoke(ctx(), "j1", until); err != nil {
		t.Fatal(err)
	}
	if err := m.Revoke(ctx(), "j2", until); !errors.Is(err, ErrFull) {
		t.Fatalf("revoke on a full store: %v; want ErrFull", err)
	}
	if err := m.Revoke(ctx(), "j1", until.Add(time.Hour)); err != nil {
		t.Fatalf("re-revoking a known jti on a full store: %v", err)
	}
}

func TestRevocationLastsUntilExpiry(t *testing.T) {
	c := newClock()
	m := NewMemory(MemoryOptions{Now: c.now})
	if err := m.Revoke(ctx(), "jti-1", c.t.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if !revoked(m, "jti-1") || revoked(m, "jti-2") {
		t.Fatal("revocation not recorded, or recorded for another id")
	}
	c.add(10 * time.Minute)
	if revoked(m, "jti-1") {
		t.Fatal("revocation kept past the token's expiry")
	}
	for _, bad := range []string{"", strings.Repeat("x", maxJTI+1)} {
		if err := m.Revoke(ctx(), bad, c.t.Add(time.Hour)); err == nil {
			t.Errorf("Revoke(%d bytes) accepted", len(bad))
		}
	}
}

func TestSnapshotRestore(t *testing.T) {
	c := newClock()
	m := NewMemory(MemoryOptions{Now: c.now})
	claim(m, "n-7f3a")
	if err := m.Revoke(ctx(), "jti", c.t.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := m.Revoke(ctx(), "soon", c.t.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := m.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "n-7f3a") {
		t.Fatal("snapshot holds a nonce in clear")
	}
	c.add(30 * time.Second)
	m2 := NewMemory(MemoryOptions{Now: c.now})
	if err := m2.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if !revoked(m2, "jti") || revoked(m2, "soon") {
		t.Fatal("restored revocations wrong")
	}
	if claim(m2, "n-7f3a") {
		t.Fatal("restored store accepted a replayed nonce")
	}

	for _, bad := range []string{"", "{", `{"version":2}`, `{"version":1,"nonces":{"zz":1}}`} {
		if err := NewMemory(MemoryOptions{}).Restore(strings.NewReader(bad)); err == nil {
			t.Errorf("Restore(%q) accepted", bad)
		}
	}
}

func BenchmarkClaim(b *testing.B) {
	m := NewMemory(MemoryOptions{})
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = fmt.Sprint("key\x00", i)
	}
	i := 0
	for b.Loop() {
		i++
		m.Claim(ctx(), keys[i&(len(keys)-1)], time.Minute)
	}
}
