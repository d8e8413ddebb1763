package state

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/redisconn"
	"github.com/breakwater/breakwater/internal/testutil"
)

func dialRedis(t *testing.T, url string, o redisconn.Options) *redisconn.Conn {
	t.Helper()
	a, err := redisconn.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	o.Address = a
	c, err := redisconn.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func newRedisStore(t *testing.T, now func() time.Time) (*Redis, *testutil.Redis) {
	t.Helper()
	srv := testutil.StartRedis(t)
	return NewRedis(dialRedis(t, srv.URL(), redisconn.Options{CommandTimeout: 5 * time.Second}), now), srv
}

func TestRedisNonces(t *testing.T) {
	s, srv := newRedisStore(t, nil)
	claimR := func(k string, ttl time.Duration) bool {
		t.Helper()
		ok, err := s.Claim(ctx(), k, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for _, tt := range []struct {
		name string
		key  string
	}{
		{"plain", "k1\x00n1"},
		{"empty", ""},
		{"braces choose no slot", "{x}\x00n"},
		{"long", strings.Repeat("n", 1<<16)},
		{"binary", "\xff\x00\r\n*1\r\n$4\r\nPING\r\n"},
	} {
		if !claimR(tt.key, time.Minute) {
			t.Fatalf("%s: first claim refused", tt.name)
		}
		if claimR(tt.key, time.Minute) {
			t.Fatalf("%s: replay accepted", tt.name)
		}
	}
	if !claimR("k2\x00n1", time.Minute) {
		t.Fatal("same nonce of another key refused")
	}
	// Keys are fixed-size digests with a TTL.
	got, _ := srv.Do("KEYS", "*")
	for k := range strings.SplitSeq(got, "\n") {
		if !strings.HasPrefix(k, noncePrefix) || len(k) != len(noncePrefix)+64 || strings.ContainsAny(k, "{}") {
			t.Fatalf("key %q", k)
		}
		pttl, _ := srv.Do("PTTL", k)
		if n, _ := strconv.Atoi(pttl); n <= 0 || n > 60_000 {
			t.Fatalf("PTTL %s", pttl)
		}
	}

	// Expiry: a nonce may be claimed again once its TTL has passed.
	if !claimR("short", 50*time.Millisecond) || claimR("short", 50*time.Millisecond) {
		t.Fatal("short nonce")
	}
	time.Sleep(120 * time.Millisecond)
	if !claimR("short", time.Minute) {
		t.Fatal("expired nonce refused")
	}
	// A zero or negative TTL still records the nonce for a millisecond.
	if !claimR("zero", 0) {
		t.Fatal("zero TTL refused")
	}
}

// TestRedisNoncesConcurrent: of 100 instances claiming one nonce at once,
// exactly one wins.
func TestRedisNoncesConcurrent(t *testing.T) {
	s, _ := newRedisStore(t, nil)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			ok, err := s.Claim(ctx(), "race", time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d claims won", wins.Load())
	}
}

func TestRedisRevocations(t *testing.T) {
	c := newClock()
	s, srv := newRedisStore(t, c.now)
	revokedR := func(jti string) bool {
		t.Helper()
		r, err := s.Revoked(ctx(), jti)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if revokedR("j1") {
		t.Fatal("revoked before Revoke")
	}
	if err := s.Revoke(ctx(), "j1", c.t.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !revokedR("j1") || revokedR("j2") {
		t.Fatal("revocation not recorded or too broad")
	}
	pttl, _ := srv.Do("PTTL", digestKey(revokedPrefix, "j1"))
	if n, _ := strconv.Atoi(pttl); n < 3_599_000 || n > 3_600_000 {
		t.Fatalf("PTTL %s, want one hour", pttl)
	}
	// A shorter revocation never shortens a longer one.
	if err := s.Revoke(ctx(), "j1", c.t.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	pttl, _ = srv.Do("PTTL", digestKey(revokedPrefix, "j1"))
	if n, _ := strconv.Atoi(pttl); n < 3_599_000 {
		t.Fatalf("shortened to %s ms", pttl)
	}
	// An already expired token is not stored.
	if err := s.Revoke(ctx(), "old", c.t.Add(-time.Second)); err != nil || revokedR("old") {
		t.Fatalf("expired token: %v", err)
	}
	// Revocations expire (Redis' clock: a short real lifetime).
	if err := s.Revoke(ctx(), "brief", c.t.Add(80*time.Millisecond)); err != nil || !revokedR("brief") {
		t.Fatalf("brief: %v", err)
	}
	time.Sleep(150 * time.Millisecond)
	if revokedR("brief") {
		t.Fatal("revocation did not expire")
	}
	// Bad ids: refused by Revoke, never revoked, no call to Redis.
	for _, jti := range []string{"", strings.Repeat("j", maxJTI+1)} {
		if err := s.Revoke(ctx(), jti, c.t.Add(time.Hour)); err == nil {
			t.Errorf("Revoke(%.10q) accepted", jti)
		}
		if revokedR(jti) {
			t.Errorf("Revoked(%.10q)", jti)
		}
	}
	if err := s.Revoke(ctx(), strings.Repeat("j", maxJTI), c.t.Add(time.Hour)); err != nil || !revokedR(strings.Repeat("j", maxJTI)) {
		t.Fatalf("longest jti: %v", err)
	}
}

// TestRedisStateCluster: nonces and revocations work on a cluster and
// spread over its masters.
func TestRedisStateCluster(t *testing.T) {
	cl := testutil.StartRedisCluster(t)
	s := NewRedis(dialRedis(t, cl.URL(), redisconn.Options{CommandTimeout: 5 * time.Second}), nil)
	for i := range 30 {
		k := "n" + strconv.Itoa(i)
		if ok, err := s.Claim(ctx(), k, time.Minute); err != nil || !ok {
			t.Fatalf("claim %s: %v %v", k, ok, err)
		}
		if ok, _ := s.Claim(ctx(), k, time.Minute); ok {
			t.Fatalf("replay of %s", k)
		}
		if err := s.Revoke(ctx(), k, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if r, err := s.Revoked(ctx(), k); err != nil || !r {
			t.Fatalf("revoked %s: %v %v", k, r, err)
		}
	}
	for _, n := range cl.Nodes {
		if got, _ := n.Do("DBSIZE"); got == "0" {
			t.Fatalf("node %s holds no key: the state does not spread", n.Addr)
		}
	}
}

// TestRedisStateOutage: errors wrap ErrUnavailable (fast while the
// breaker is open), and the store works again when Redis is back.
func TestRedisStateOutage(t *testing.T) {
	srv := testutil.StartRedis(t)
	before := runtime.NumGoroutine()
	a, _ := redisconn.ParseURL(srv.URL())
	conn, err := redisconn.New(context.Background(), redisconn.Options{
		Address: a, CommandTimeout: 300 * time.Millisecond, DialTimeout: 300 * time.Millisecond,
		Breaker: redisconn.BreakerOptions{Failures: 2, MinCooldown: 50 * time.Millisecond, MaxCooldown: 100 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := NewRedis(conn, nil)
	srv.Stop()
	for range 5 {
		if _, err := s.Claim(ctx(), "n", time.Minute); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Claim: %v", err)
		}
		if _, err := s.Revoked(ctx(), "j"); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Revoked: %v", err)
		}
		if err := s.Revoke(ctx(), "j", time.Now().Add(time.Hour)); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Revoke: %v", err)
		}
	}
	if _, err := s.Claim(ctx(), "n", time.Minute); !errors.Is(err, redisconn.ErrOpen) {
		t.Fatalf("breaker not open: %v", err)
	}
	srv.Start()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, err := s.Claim(ctx(), "n", time.Minute)
		if err == nil && ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	conn.Close()
	deadline = time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, had %d", runtime.NumGoroutine(), before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func BenchmarkRedisClaim(b *testing.B) {
	srv := testutil.StartRedis(b)
	a, _ := redisconn.ParseURL(srv.URL())
	conn, err := redisconn.New(context.Background(), redisconn.Options{Address: a})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	s := NewRedis(conn, nil)
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Claim(context.Background(), strconv.FormatInt(n.Add(1), 10), time.Minute); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
