package ratelimit

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/redisconn"
	"github.com/breakwater/breakwater/internal/testutil"
)

func dial(tb testing.TB, url string, o redisconn.Options) *redisconn.Conn {
	tb.Helper()
	a, err := redisconn.ParseURL(url)
	if err != nil {
		tb.Fatal(err)
	}
	o.Address = a
	c, err := redisconn.New(context.Background(), o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	if !c.Healthy() {
		tb.Fatalf("cannot connect to %s", url)
	}
	return c
}

// newRedis starts a redis-server and returns a store on it.
func newRedis(tb testing.TB) (*Redis, *testutil.Redis) {
	tb.Helper()
	srv := testutil.StartRedis(tb)
	return NewRedis(dial(tb, srv.URL(), redisconn.Options{CommandTimeout: 5 * time.Second})), srv
}

// both runs one request against Memory and Redis and fails unless the
// decisions are identical.
func both(tb testing.TB, m *Memory, r *Redis, now time.Time, keys []string, limits ...Limit) Decision {
	tb.Helper()
	dm := try(tb, m, now, keys, limits...)
	dr := try(tb, r, now, keys, limits...)
	if dm != dr {
		tb.Fatalf("at %v, keys %q, limits %+v:\nmemory %+v\nredis  %+v", now, keys, limits, dm, dr)
	}
	return dr
}

func TestRedisMatchesMemory(t *testing.T) {
	r, _ := newRedis(t)
	m := NewMemory(MemoryOptions{})
	rate, burst, quota := lim(t, "rate", "3/s"), lim(t, "burst", "2/m burst 1"), lim(t, "daily", "5/d")
	ms := time.Millisecond
	tests := []struct {
		at     time.Duration
		keys   []string
		limits []Limit
		want   bool
	}{
		{0, []string{"a"}, []Limit{rate}, true},
		{0, []string{"a"}, []Limit{rate}, true},
		{0, []string{"a"}, []Limit{rate}, true},
		{0, []string{"a"}, []Limit{rate}, false},
		{100 * ms, []string{"a"}, []Limit{rate}, false},
		{334 * ms, []string{"a"}, []Limit{rate}, true},
		{334 * ms, []string{"a", "d"}, []Limit{rate, quota}, false}, // the rate binds: the quota is not charged
		{time.Second, []string{"a", "d"}, []Limit{rate, quota}, true},
		{time.Second, []string{"b", "d"}, []Limit{burst, quota}, true},
		{time.Second, []string{"b", "d"}, []Limit{burst, quota}, true},
		{time.Second, []string{"b", "d"}, []Limit{burst, quota}, true},
		{time.Second, []string{"b", "d"}, []Limit{burst, quota}, false},    // burst spent
		{2 * time.Second, []string{"c", "d"}, []Limit{rate, quota}, true},  // the 5th of the day
		{2 * time.Second, []string{"c", "d"}, []Limit{rate, quota}, false}, // quota spent: the rate is not charged
		{2 * time.Second, []string{"c", "d"}, []Limit{rate, quota}, false},
		{2 * time.Second, []string{"c"}, []Limit{rate}, true},
		{2 * time.Second, []string{"c"}, []Limit{rate}, true},
		{2 * time.Second, []string{"c"}, []Limit{rate}, false},
		{12 * time.Hour, []string{"c", "d"}, []Limit{rate, quota}, true},  // next day (t0 is noon)
		{-time.Hour, []string{"a", "d"}, []Limit{rate, quota}, false},     // the clock went back: a's TAT is an hour ahead
		{-24 * time.Hour, []string{"e", "d"}, []Limit{rate, quota}, true}, // yesterday's window, as if new
		{time.Minute, []string{"b"}, []Limit{burst}, true},
		{time.Minute, []string{"b"}, []Limit{lim(t, "burst", "2/m burst 7")}, true}, // the config changed the burst
		{time.Minute, []string{"d"}, []Limit{lim(t, "daily", "2/s")}, true},         // a quota key reused for a rate
		{time.Minute, []string{"a"}, []Limit{lim(t, "rate", "9/h")}, true},          // a rate key reused for a quota
	}
	for i, tt := range tests {
		d := both(t, m, r, t0.Add(tt.at), tt.keys, tt.limits...)
		if d.Allowed != tt.want {
			t.Fatalf("step %d: allowed %v, want %v: %+v", i, d.Allowed, tt.want, d)
		}
	}
}

// TestRedisMatchesMemoryRandom drives both stores with random requests,
// rates, quotas (extreme ones included) and clock jumps in both directions.
func TestRedisMatchesMemoryRandom(t *testing.T) {
	r, _ := newRedis(t)
	m := NewMemory(MemoryOptions{})
	rng := rand.New(rand.NewPCG(1, 2))
	rates := []config.Rate{
		mustRate(t, "1/s"), mustRate(t, "10/s burst 5"), mustRate(t, "3/m"), mustRate(t, "7/59m burst 2"),
		mustRate(t, "4/h"), mustRate(t, "20/d"), mustRate(t, "2/30d"), mustRate(t, "1000000/d"),
		{N: 3, Per: 1}, {N: math.MaxInt64, Per: time.Second}, {N: 1, Per: config.QuotaPeriod - 1, Burst: math.MaxInt64},
		{N: math.MaxInt64, Per: math.MaxInt64}, {N: 2, Per: math.MaxInt64}, {N: 7, Per: 1, Burst: math.MaxInt64},
	}
	keys := []string{"k0", "k1", "k2", "k3", "k4"}
	now := t0
	allowed := 0
	for i := range 3000 {
		switch rng.IntN(10) {
		case 0:
			now = now.Add(time.Duration(rng.Int64N(int64(48 * time.Hour))))
		case 1:
			now = now.Add(-time.Duration(rng.Int64N(int64(time.Hour))))
		case 2, 3, 4:
			now = now.Add(time.Duration(rng.Int64N(int64(2 * time.Second))))
		}
		if i == 2000 {
			now = time.Unix(0, math.MaxInt64) // beyond maxNow
		}
		n := 1 + rng.IntN(3)
		perm := rng.Perm(len(keys))
		req := Request{}
		for j := range n {
			k := keys[perm[j]]
			// A key keeps its limit most of the time, as in a gateway.
			rt := rates[(perm[j]*3+rng.IntN(2)*rng.IntN(len(rates)))%len(rates)]
			req.Keys = append(req.Keys, k)
			req.Limits = append(req.Limits, Limit{Name: "l" + k, Rate: rt})
		}
		if both(t, m, r, now, req.Keys, req.Limits...).Allowed {
			allowed++
		}
	}
	if allowed < 300 || allowed > 2700 {
		t.Fatalf("%d of 3000 admitted: the sequence does not exercise both outcomes", allowed)
	}
}

// TestRedisConcurrencyExact: 200 parallel requests against a limit of 50
// admit exactly 50, for a rate, a quota, and a request with both (where
// the rejected requests must charge neither).
func TestRedisConcurrencyExact(t *testing.T) {
	r, _ := newRedis(t)
	tests := []struct {
		name   string
		keys   []string
		limits []Limit
		want   int64
	}{
		{"rate", []string{"r"}, []Limit{lim(t, "r", "50/m")}, 50},
		{"rate burst", []string{"rb"}, []Limit{lim(t, "rb", "20/m burst 30")}, 50},
		{"quota", []string{"q"}, []Limit{lim(t, "q", "50/d")}, 50},
		{"rate and quota", []string{"both-r", "both-q"}, []Limit{lim(t, "r", "100/m"), lim(t, "q", "50/d")}, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var admitted atomic.Int64
			var wg sync.WaitGroup
			for range 200 {
				wg.Go(func() {
					var d Decision
					if err := r.Decide(context.Background(), t0, Request{Keys: tt.keys, Limits: tt.limits}, &d); err != nil {
						t.Error(err)
						return
					}
					if d.Allowed {
						admitted.Add(1)
					}
				})
			}
			wg.Wait()
			if got := admitted.Load(); got != tt.want {
				t.Fatalf("admitted %d of 200, want exactly %d", got, tt.want)
			}
		})
	}
	// The rate of "rate and quota" was charged only by the 50 admitted.
	d := try(t, r, t0, []string{"both-r"}, lim(t, "r", "100/m"))
	if !d.Allowed || d.Remaining != 49 {
		t.Fatalf("rate charged by rejected requests: %+v", d)
	}
}

func TestRedisTTL(t *testing.T) {
	r, srv := newRedis(t)
	try(t, r, t0, []string{"rate", "quota"}, lim(t, "a", "1/m"), lim(t, "b", "10/h"))
	t0h := t0.Truncate(time.Hour)
	for _, tt := range []struct {
		key      string
		min, max time.Duration
	}{
		{"rate", time.Minute, time.Minute + 1100*time.Millisecond},
		{"quota", t0h.Add(time.Hour).Sub(t0), t0h.Add(time.Hour).Sub(t0) + 1100*time.Millisecond},
	} {
		got, err := srv.Do("PTTL", redisKey(tt.key))
		if err != nil {
			t.Fatal(err)
		}
		ms, _ := strconv.ParseInt(got, 10, 64)
		if d := time.Duration(ms) * time.Millisecond; d < tt.min || d > tt.max {
			t.Errorf("%s: PTTL %v, want between %v and %v", tt.key, d, tt.min, tt.max)
		}
	}
	// A rejected request writes nothing: no key appears.
	try(t, r, t0, []string{"rate", "fresh"}, lim(t, "a", "1/m"), lim(t, "b", "10/h"))
	if got, _ := srv.Do("EXISTS", redisKey("fresh")); got != "0" {
		t.Fatalf("a rejected request created a key")
	}
	if got, _ := srv.Do("DBSIZE"); got != "2" {
		t.Fatalf("DBSIZE %s", got)
	}
}

// TestRedisTampered: values the script did not write count as no state,
// exactly as in parseState; a key of the wrong type is an error, never a
// panic.
func TestRedisTampered(t *testing.T) {
	r, srv := newRedis(t)
	rate, quota := lim(t, "r", "2/m"), lim(t, "q", "2/d")
	future := pad(t0.Add(time.Hour).UnixNano())
	end := pad(t0.Truncate(24 * time.Hour).Add(24 * time.Hour).UnixNano()) // t0 is UTC
	for _, v := range []string{
		"", "x", "g", future, future + "q", future + "G", "+" + future[1:] + "g", " " + future[1:] + "g",
		"9999999999999999999g", "9223372036854775808g", future + "g ", "-000000000000000001g",
		end + "q" + "9999999999999999999", end + "q" + "+000000000000000002", end + "q", end + "g",
		end[:18] + "q" + "0000000000000000002", "\x00\xff",
	} {
		for _, l := range []Limit{rate, quota} {
			key := "t" + strconv.Quote(v) + l.Name
			if _, err := srv.Do("SET", redisKey(key), v); err != nil {
				t.Fatal(err)
			}
			m := NewMemory(MemoryOptions{})
			if st, ok := parseState(v); ok {
				m.shards[m.shardOf(key)].insert(key, st, 0, 0)
			}
			for range 3 {
				both(t, m, r, t0, []string{key}, l)
			}
		}
	}
	// Valid state written by someone else is honoured like Memory's.
	if _, err := srv.Do("SET", redisKey("full"), end+"q0000000000000000002"); err != nil {
		t.Fatal(err)
	}
	if d := try(t, r, t0, []string{"full"}, quota); d.Allowed {
		t.Fatal("a full quota admitted")
	}

	if _, err := srv.Do("HSET", redisKey("hash"), "f", "v"); err != nil {
		t.Fatal(err)
	}
	var d Decision
	err := r.Decide(context.Background(), t0, Request{Keys: []string{"ok", "hash"}, Limits: []Limit{rate, rate}}, &d)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("wrong type: %v", err)
	}
	if got, _ := srv.Do("EXISTS", redisKey("ok")); got != "0" {
		t.Fatal("a failed script charged a key")
	}
}

func TestRedisKeys(t *testing.T) {
	long := strings.Repeat("x", maxRawKey+1)
	for _, tt := range []struct{ key, want string }{
		{"a", "{bw:rl}ka"},
		{"8:consumer1:01:a", "{bw:rl}k8:consumer1:01:a"},
		{"}{x}", "{bw:rl}k}{x}"},
		{strings.Repeat("x", maxRawKey), "{bw:rl}k" + strings.Repeat("x", maxRawKey)},
		{long, "{bw:rl}hFeuVpGLuIL2RpBWuLUrtNBKIGG3aorN5CPfVkvDD-F8"},
	} {
		if got := redisKey(tt.key); got != tt.want {
			t.Errorf("redisKey(%.20q) = %q, want %q", tt.key, got, tt.want)
		}
	}
	// Long keys are limited like short ones, and do not collide with the
	// raw form of their hash.
	r, srv := newRedis(t)
	l := lim(t, "l", "1/m")
	if !try(t, r, t0, []string{long}, l).Allowed || try(t, r, t0, []string{long}, l).Allowed {
		t.Fatal("long key not limited")
	}
	if !try(t, r, t0, []string{long + "y"}, l).Allowed {
		t.Fatal("two long keys share state")
	}
	if !try(t, r, t0, []string{redisKey(long)[len(redisTag)+1:]}, l).Allowed {
		t.Fatal("a raw key collides with a hashed one")
	}
	if got, _ := srv.Do("STRLEN", redisKey(long)); got != "20" {
		t.Fatalf("value length %s", got)
	}
}

// TestRedisScriptFlushed: EVALSHA falls back to EVAL when Redis lost the
// script (a restart, a failover, SCRIPT FLUSH).
func TestRedisScriptFlushed(t *testing.T) {
	r, srv := newRedis(t)
	l := lim(t, "l", "5/m")
	try(t, r, t0, []string{"k"}, l)
	if _, err := srv.Do("SCRIPT", "FLUSH"); err != nil {
		t.Fatal(err)
	}
	if d := try(t, r, t0, []string{"k"}, l); !d.Allowed || d.Remaining != 3 {
		t.Fatalf("after SCRIPT FLUSH: %+v", d)
	}
}

func TestRedisRequestErrors(t *testing.T) {
	r, _ := newRedis(t)
	l := lim(t, "a", "1/s")
	var d Decision
	for _, tt := range []struct {
		req  Request
		want error
	}{
		{Request{Keys: []string{"a"}}, ErrMismatch},
		{Request{Keys: []string{"a", "a"}, Limits: []Limit{l, l}}, ErrDuplicateKey},
	} {
		if err := r.Decide(context.Background(), t0, tt.req, &d); !errors.Is(err, tt.want) {
			t.Errorf("%+v: %v, want %v", tt.req, err, tt.want)
		}
	}
	if err := r.Decide(context.Background(), t0, Request{}, &d); err != nil || !d.Allowed || d.Index != -1 {
		t.Fatalf("no limits: %+v, %v", d, err)
	}
	bad := Limit{Name: "bad", Rate: config.Rate{N: 0, Per: time.Second}}
	if err := r.Decide(context.Background(), t0, Request{Keys: []string{"a"}, Limits: []Limit{bad}}, &d); err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("invalid limit: %v", err)
	}
}

// TestRedisCluster: on a 3-master cluster, the keys of one request share a
// slot, and three gateway instances (three connections) sharing the
// cluster admit exactly N between them.
func TestRedisCluster(t *testing.T) {
	cl := testutil.StartRedisCluster(t)
	keys := []string{Key("consumer", "0", "alice"), Key("route:ip", "0", "orders", "192.0.2.1"), Key("route", "1", "orders"), strings.Repeat("z", 300)}
	slots := map[string]bool{}
	for _, k := range keys {
		s, err := cl.Nodes[0].Do("CLUSTER", "KEYSLOT", redisKey(k))
		if err != nil {
			t.Fatal(err)
		}
		slots[s] = true
	}
	if len(slots) != 1 {
		t.Fatalf("keys of one request in slots %v", slots)
	}

	var stores []*Redis
	for range 3 {
		stores = append(stores, NewRedis(dial(t, cl.URL(), redisconn.Options{CommandTimeout: 5 * time.Second})))
	}
	limits := []Limit{lim(t, "consumer", "100/m"), lim(t, "ip", "60/m"), lim(t, "route", "1000/d"), lim(t, "long", "500/d")}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for i := range 300 {
		wg.Go(func() {
			var d Decision
			if err := stores[i%3].Decide(context.Background(), t0, Request{Keys: keys, Limits: limits}, &d); err != nil {
				t.Error(err)
			} else if d.Allowed {
				admitted.Add(1)
			}
		})
	}
	wg.Wait()
	if got := admitted.Load(); got != 60 {
		t.Fatalf("admitted %d, want exactly 60", got)
	}
	d := try(t, stores[0], t0, keys[2:3], limits[2])
	if d.Remaining != 1000-61 {
		t.Fatalf("route quota charged by rejected requests: %+v", d)
	}
}

// TestRedisOutage: with Redis stopped, Decide fails with ErrUnavailable,
// at once while the breaker is open, leaks no goroutine, and decides again
// with shared state when Redis is back.
func TestRedisOutage(t *testing.T) {
	srv := testutil.StartRedis(t)
	before := runtime.NumGoroutine()
	a, err := redisconn.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := redisconn.New(context.Background(), redisconn.Options{
		Address: a, CommandTimeout: 300 * time.Millisecond, DialTimeout: 300 * time.Millisecond,
		Breaker: redisconn.BreakerOptions{Failures: 3, MinCooldown: 50 * time.Millisecond, MaxCooldown: 100 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := NewRedis(conn)
	l := lim(t, "l", "1000/m")
	req := Request{Keys: []string{"k"}, Limits: []Limit{l}}
	var d Decision
	if err := r.Decide(context.Background(), t0, req, &d); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	var wg sync.WaitGroup
	var fast atomic.Int64
	for range 50 {
		wg.Go(func() {
			for range 20 {
				var d Decision
				start := time.Now()
				err := r.Decide(context.Background(), t0, req, &d)
				if !errors.Is(err, ErrUnavailable) {
					t.Errorf("Redis down: %v", err)
					return
				}
				if errors.Is(err, redisconn.ErrOpen) && time.Since(start) < 50*time.Millisecond {
					fast.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if fast.Load() < 500 {
		t.Fatalf("only %d of 1000 calls failed fast; stats %+v", fast.Load(), conn.Stats())
	}

	srv.Start() // empty: the state before the outage is gone
	deadline := time.Now().Add(20 * time.Second)
	for r.Decide(context.Background(), t0, req, &d) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("no recovery: %+v", conn.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !d.Allowed || d.Remaining != 999 {
		t.Fatalf("after recovery: %+v", d)
	}
	conn.Close()
	deadline = time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, had %d:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// FuzzRedisDecide is a differential fuzz of the script against decide:
// two limits with arbitrary rates, an arbitrary stored value in the first
// key (what a tampered or foreign Redis could hold) and requests at
// arbitrary times must give the Decisions of a Memory that holds what
// parseState reads from that value.
func FuzzRedisDecide(f *testing.F) {
	f.Add(int64(100), int64(time.Second), int64(50), int64(1000000), int64(24*time.Hour), int64(0), t0.UnixNano(), int64(time.Millisecond), uint8(20), "")
	f.Add(int64(3), int64(time.Minute), int64(0), int64(5), int64(time.Hour), int64(0), t0.UnixNano(), int64(time.Second), uint8(10), pad(t0.UnixNano()+int64(time.Minute))+"g")
	f.Add(int64(2), int64(time.Hour), int64(0), int64(1), int64(1), int64(0), t0.UnixNano(), int64(0), uint8(5), pad(t0.Truncate(time.Hour).Add(time.Hour).UnixNano())+"q0000000000000000001")
	f.Add(int64(math.MaxInt64), int64(math.MaxInt64), int64(math.MaxInt64), int64(1), int64(time.Hour-1), int64(math.MaxInt64), int64(math.MaxInt64), int64(-1), uint8(4), "9223372036854775807g")
	f.Add(int64(7), int64(1), int64(math.MaxInt64), int64(1), int64(math.MaxInt64), int64(0), int64(-1), int64(math.MinInt64), uint8(3), "garbage")
	r, srv := newRedis(f)
	var seq atomic.Int64
	f.Fuzz(func(t *testing.T, n1, per1, burst1, n2, per2, burst2, now, step int64, reqs uint8, stored string) {
		r1, r2 := fuzzRate(n1, per1, burst1), fuzzRate(n2, per2, burst2)
		id := strconv.FormatInt(seq.Add(1), 10)
		keys := []string{"a" + id, "b" + id}
		limits := []Limit{{Name: "a", Rate: r1}, {Name: "b", Rate: r2}}
		m := NewMemory(MemoryOptions{MaxKeys: 16})
		if stored != "" {
			if _, err := srv.Do("SET", redisKey(keys[0]), stored); err != nil {
				t.Fatal(err)
			}
			if st, ok := parseState(stored); ok {
				m.shards[m.shardOf(keys[0])].insert(keys[0], st, 0, 0)
			}
		}
		at := now
		for i := range int(reqs % 32) {
			both(t, m, r, time.Unix(0, at), keys, limits...)
			if i%2 == 1 { // and the first limit alone
				both(t, m, r, time.Unix(0, at), keys[:1], limits[0])
			}
			if s := at + step; (step > 0) == (s > at) {
				at = s
			}
		}
	})
}

func BenchmarkRedisDecide(b *testing.B) {
	r, _ := newRedis(b)
	limits := []Limit{
		{Name: "consumer", Rate: config.Rate{N: 1 << 40, Per: time.Second}},
		{Name: "daily", Rate: config.Rate{N: 1 << 60, Per: 24 * time.Hour}},
	}
	keys := benchKeys(1000, "bench")
	b.Run("serial", func(b *testing.B) {
		var d Decision
		i := 0
		for b.Loop() {
			k := keys[i%len(keys)]
			i++
			if err := r.Decide(context.Background(), t0, Request{Keys: []string{k, k + "d"}, Limits: limits}, &d); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(16) // many requests in flight: auto-pipelining batches them
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			var d Decision
			i := int(next.Add(1)) * 7
			for pb.Next() {
				k := keys[i%len(keys)]
				i++
				if err := r.Decide(context.Background(), t0, Request{Keys: []string{k, k + "d"}, Limits: limits}, &d); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
