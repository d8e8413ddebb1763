package redisconn

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/breakwater/breakwater/internal/testutil"
)

// clock is a settable clock for the breaker.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestBreaker(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	b := newBreaker(BreakerOptions{Failures: 3, MinCooldown: time.Second, MaxCooldown: 4 * time.Second}, clk.Now)
	call := func() (bool, bool) { return b.allow() }
	state := func() State { return State(b.state.Load()) }

	// Failures below the threshold, interrupted by a success, do not open.
	for range 2 {
		ok, _ := call()
		if !ok {
			t.Fatal("closed breaker refused")
		}
		b.failure(false)
	}
	b.success(false)
	for range 2 {
		call()
		b.failure(false)
	}
	if state() != Closed {
		t.Fatalf("opened after 2 consecutive failures: %v", state())
	}
	call()
	b.failure(false)
	if state() != Open {
		t.Fatalf("state %v after 3 consecutive failures", state())
	}
	if ok, _ := call(); ok {
		t.Fatal("open breaker allowed a call")
	}

	// Cool-downs double on failed probes: 1s, 2s, 4s, 4s.
	for _, cd := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		clk.Add(cd - time.Nanosecond)
		if ok, _ := call(); ok {
			t.Fatalf("allowed before the cool-down of %v ended", cd)
		}
		clk.Add(time.Nanosecond)
		ok, probe := call()
		if !ok || !probe {
			t.Fatalf("after %v: allow = %v, %v; want the probe", cd, ok, probe)
		}
		if ok, _ := call(); ok {
			t.Fatal("a second call while probing was allowed")
		}
		b.failure(true)
	}

	// An abandoned probe frees the slot without deciding anything.
	clk.Add(4 * time.Second)
	if _, probe := call(); !probe {
		t.Fatal("no probe")
	}
	b.abandon(true)
	if state() != HalfOpen {
		t.Fatalf("state %v after an abandoned probe", state())
	}
	ok, probe := call()
	if !ok || !probe {
		t.Fatal("no new probe after an abandoned one")
	}
	b.success(true)
	if state() != Closed {
		t.Fatalf("state %v after a successful probe", state())
	}
	// The cool-down is back to the minimum.
	for range 3 {
		call()
		b.failure(false)
	}
	clk.Add(time.Second)
	if _, probe := call(); !probe {
		t.Fatal("cool-down not reset to 1s")
	}
	if got := b.opened.Load(); got != 6 {
		t.Fatalf("opened %d times, want 6", got)
	}
}

// TestBreakerConcurrent: under -race, many goroutines hammering a breaker
// with failures and successes never let two probes run at once.
func TestBreakerConcurrent(t *testing.T) {
	clk := &clock{t: time.Unix(0, 0)}
	b := newBreaker(BreakerOptions{Failures: 2, MinCooldown: time.Millisecond, MaxCooldown: time.Millisecond}, clk.Now)
	var probes atomic.Int32
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 2000 {
				clk.Add(time.Microsecond)
				ok, probe := b.allow()
				if !ok {
					continue
				}
				if probe {
					if probes.Add(1) > 1 {
						t.Error("two probes at once")
					}
				}
				fail := (i+g)%3 == 0
				if probe {
					probes.Add(-1)
				}
				if fail {
					b.failure(probe)
				} else {
					b.success(probe)
				}
			}
		})
	}
	wg.Wait()
}

func newConn(t *testing.T, url string, o Options) *Conn {
	t.Helper()
	a, err := ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	o.Address = a
	c, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func ping(ctx context.Context, c *Conn) error {
	return c.Do(ctx, func(ctx context.Context, cl rueidis.Client) error {
		return cl.Do(ctx, cl.B().Ping().Build()).Error()
	})
}

func TestConnStandalone(t *testing.T) {
	r := testutil.StartRedis(t, "--user", "gw", "on", ">pw", "~*", "&*", "+@all")
	c := newConn(t, "redis://gw:pw@"+r.Addr+"/3", Options{})
	ctx := context.Background()
	err := c.Do(ctx, func(ctx context.Context, cl rueidis.Client) error {
		return cl.Do(ctx, cl.B().Set().Key("k").Value("v").Build()).Error()
	})
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := r.Do("INFO", "keyspace"); !strings.Contains(info, "db3:keys=1") {
		t.Fatalf("key not in db 3: %q", info)
	}
	if !c.Healthy() || c.Stats().Calls != 1 || c.Stats().Failures != 0 {
		t.Fatalf("stats %+v", c.Stats())
	}
	// An error reply is an answer: it does not count against Redis.
	for range 10 {
		err := c.Do(ctx, func(ctx context.Context, cl rueidis.Client) error {
			return cl.Do(ctx, cl.B().Incr().Key("k").Build()).Error()
		})
		if _, ok := rueidis.IsRedisErr(err); !ok {
			t.Fatalf("INCR on a string: %v", err)
		}
	}
	if !c.Healthy() {
		t.Fatal("error replies opened the breaker")
	}

	// Wrong credentials: New succeeds with the breaker open.
	bad := newConn(t, "redis://gw:wrong@"+r.Addr, Options{})
	if bad.Healthy() || !errors.Is(ping(ctx, bad), ErrOpen) {
		t.Fatalf("wrong password: healthy=%v", bad.Healthy())
	}
}

// TestConnOutage: Redis stopped → calls fail, then fail fast with ErrOpen;
// Redis back → the breaker closes by itself; Close leaks no goroutine.
func TestConnOutage(t *testing.T) {
	r := testutil.StartRedis(t)
	before := runtime.NumGoroutine()
	c := newConn(t, r.URL(), Options{
		CommandTimeout: 200 * time.Millisecond,
		DialTimeout:    200 * time.Millisecond,
		Breaker:        BreakerOptions{Failures: 3, MinCooldown: 50 * time.Millisecond, MaxCooldown: 200 * time.Millisecond},
	})
	ctx := context.Background()
	if err := ping(ctx, c); err != nil {
		t.Fatal(err)
	}

	r.Stop()
	for i := range 3 {
		err := ping(ctx, c)
		if err == nil || errors.Is(err, ErrOpen) {
			t.Fatalf("call %d with Redis down: %v", i, err)
		}
	}
	if c.Healthy() {
		t.Fatal("healthy after 3 failures")
	}
	start := time.Now()
	for range 1000 {
		if err := ping(ctx, c); !errors.Is(err, ErrOpen) && time.Since(start) < 40*time.Millisecond {
			t.Fatalf("open breaker: %v", err)
		}
	}
	if s := c.Stats(); s.Rejected == 0 || s.Failures < 3 || s.Opened == 0 || s.State == Closed {
		t.Fatalf("stats %+v", s)
	}

	r.Start()
	waitHealthy(t, c)
	if err := ping(ctx, c); err != nil {
		t.Fatal(err)
	}

	c.Close()
	if err := ping(ctx, c); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	c.Close()
	waitGoroutines(t, before)
}

// TestConnHung: a server that accepts but never answers costs one command
// timeout per call until the breaker opens.
func TestConnHung(t *testing.T) {
	r := testutil.StartRedis(t)
	c := newConn(t, r.URL(), Options{
		CommandTimeout: 100 * time.Millisecond,
		Breaker:        BreakerOptions{Failures: 2, MinCooldown: 50 * time.Millisecond},
	})
	ctx := context.Background()
	if err := ping(ctx, c); err != nil {
		t.Fatal(err)
	}
	r.Pause()
	for range 2 {
		start := time.Now()
		err := ping(ctx, c)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("hung server: %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("took %v with a 100ms command timeout", d)
		}
	}
	if err := ping(ctx, c); !errors.Is(err, ErrOpen) {
		t.Fatalf("after 2 timeouts: %v", err)
	}
	r.Resume()
	waitHealthy(t, c)
}

// TestConnStartsWithRedisDown: the gateway starts without Redis and
// connects when it appears.
func TestConnStartsWithRedisDown(t *testing.T) {
	r := testutil.StartRedis(t)
	r.Stop()
	c := newConn(t, r.URL(), Options{DialTimeout: 200 * time.Millisecond, Breaker: BreakerOptions{MinCooldown: 20 * time.Millisecond, MaxCooldown: 50 * time.Millisecond}})
	if c.Healthy() || !errors.Is(ping(context.Background(), c), ErrOpen) {
		t.Fatal("healthy without Redis")
	}
	r.Start()
	waitHealthy(t, c)
}

// TestConnCanceled: a caller that gives up does not count against Redis.
func TestConnCanceled(t *testing.T) {
	r := testutil.StartRedis(t)
	c := newConn(t, r.URL(), Options{Breaker: BreakerOptions{Failures: 1}})
	r.Pause()
	defer r.Resume()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := ping(ctx, c); err == nil {
		t.Fatal("answered while paused")
	}
	if !c.Healthy() || c.Stats().Failures != 0 {
		t.Fatalf("a canceled call counted: %+v", c.Stats())
	}
}

func TestConnCluster(t *testing.T) {
	cl := testutil.StartRedisCluster(t)
	c := newConn(t, cl.URL(), Options{})
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c", "d", "e", "f"} { // spread over the masters
		err := c.Do(ctx, func(ctx context.Context, cl rueidis.Client) error {
			return cl.Do(ctx, cl.B().Set().Key(k).Value("1").Build()).Error()
		})
		if err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
	}
	// A cluster URL naming a standalone server is refused.
	r := testutil.StartRedis(t)
	bad := newConn(t, "redis-cluster://"+r.Addr, Options{})
	if bad.Healthy() {
		t.Fatal("a standalone server accepted as a cluster")
	}
}

func waitHealthy(t *testing.T, c *Conn) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if ping(context.Background(), c) == nil && c.Healthy() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("not healthy again: %+v", c.Stats())
}

func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want ≤ %d:\n%s", runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConnTLS: rediss:// verifies the server certificate (real TLS): the
// right CA connects, another CA or a wrong host name does not.
func TestConnTLS(t *testing.T) {
	pki := testutil.NewPKI(t)
	cert := pki.ServerCert("localhost")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsPort := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	testutil.StartRedis(t, "--tls-port", tlsPort, "--tls-cert-file", cert.CertFile, "--tls-key-file", cert.KeyFile,
		"--tls-ca-cert-file", pki.CAFile, "--tls-auth-clients", "no")

	good := newConn(t, "rediss://localhost:"+tlsPort+"/0", Options{TLSConfig: pki.ClientConfig(nil)})
	if err := ping(context.Background(), good); err != nil || !good.Healthy() {
		t.Fatalf("TLS with the right CA: %v", err)
	}
	for name, c := range map[string]*Conn{
		"other CA":   newConn(t, "rediss://localhost:"+tlsPort, Options{TLSConfig: testutil.NewPKI(t).ClientConfig(nil)}),
		"wrong name": newConn(t, "rediss://127.0.0.1:"+tlsPort, Options{TLSConfig: pki.ClientConfig(nil)}),
		"plain":      newConn(t, "redis://localhost:"+tlsPort, Options{DialTimeout: 300 * time.Millisecond}),
	} {
		if c.Healthy() || !errors.Is(ping(context.Background(), c), ErrOpen) {
			t.Errorf("%s: connected", name)
		}
	}
}
