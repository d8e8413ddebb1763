package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/config"
)

func TestRoundRobin(t *testing.T) {
	a, b, c := newCounting(t, "a"), newCounting(t, "b"), newCounting(t, "c")
	u := newUpstream(t, config.Upstream{Targets: []string{a.URL, b.URL, c.URL}}, Options{})
	for range 300 {
		if w, _ := get(u, "/x"); w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
	}
	for name, s := range map[string]*countingServer{"a": a, "b": b, "c": c} {
		if n := s.n.Load(); n != 100 {
			t.Errorf("%s served %d of 300, want 100", name, n)
		}
	}

	// With b down, its share spreads evenly over a and c.
	u.bal.targets[1].activeDown.Store(true)
	a.n.Store(0)
	b.n.Store(0)
	c.n.Store(0)
	for range 200 {
		get(u, "/x")
	}
	if a.n.Load() != 100 || b.n.Load() != 0 || c.n.Load() != 100 {
		t.Errorf("a=%d b=%d c=%d, want 100/0/100", a.n.Load(), b.n.Load(), c.n.Load())
	}
	if h := u.Healthy(); h != 2 {
		t.Errorf("Healthy() = %d, want 2", h)
	}
}

func TestRoundRobinConcurrent(t *testing.T) {
	a, b := newCounting(t, "a"), newCounting(t, "b")
	u := newUpstream(t, config.Upstream{Targets: []string{a.URL, b.URL}}, Options{})
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 50 {
				get(u, "/x")
			}
		}()
	}
	for range 8 {
		<-done
	}
	if a.n.Load() != 200 || b.n.Load() != 200 {
		t.Errorf("a=%d b=%d, want 200/200", a.n.Load(), b.n.Load())
	}
}

func TestPassiveEjectionAndRecovery(t *testing.T) {
	clk := newClock()
	log, logs := newLogger()
	f, ok := newFlaky(t), newCounting(t, "ok")
	u := newUpstream(t, config.Upstream{
		Targets:     []string{f.URL, ok.URL},
		MaxFails:    2,
		FailTimeout: dur(10 * time.Second),
		Retries:     ptr(0),
	}, Options{Now: clk.Now, Logger: log})
	flaky := u.bal.targets[0]
	f.broken.Store(true)

	// Round robin alternates: every other POST goes to the broken target
	// until it has failed twice.
	var bad int
	for range 4 {
		if w, _ := post(u, "/x", "b"); w.Code == http.StatusBadGateway {
			bad++
		}
	}
	if bad != 2 {
		t.Fatalf("%d requests failed before ejection, want 2", bad)
	}
	if h := u.Healthy(); h != 1 {
		t.Fatalf("Healthy() = %d after %d failures, want 1", h, bad)
	}
	if !strings.Contains(logs.String(), "ejected") {
		t.Error("ejection not logged")
	}
	// Ejected: everything goes to the other target.
	for range 10 {
		if w, _ := post(u, "/x", "b"); w.Code != 200 {
			t.Fatalf("status %d while the broken target is ejected", w.Code)
		}
	}

	// Still ejected just before fail_timeout; tried again after it. One
	// more failure ejects it again at once.
	clk.Advance(10*time.Second - time.Millisecond)
	if h := u.Healthy(); h != 1 {
		t.Fatalf("Healthy() = %d before fail_timeout, want 1", h)
	}
	clk.Advance(2 * time.Millisecond)
	if h := u.Healthy(); h != 2 {
		t.Fatalf("Healthy() = %d after fail_timeout, want 2", h)
	}
	bad = 0
	for range 2 {
		if w, _ := post(u, "/x", "b"); w.Code == http.StatusBadGateway {
			bad++
		}
	}
	if bad != 1 || u.Healthy() != 1 {
		t.Fatalf("after expiry: %d failures, Healthy() = %d; want 1 failure re-ejecting it", bad, u.Healthy())
	}

	// Repaired: after fail_timeout one success restores it for good.
	f.broken.Store(false)
	clk.Advance(11 * time.Second)
	for range 2 {
		if w, _ := post(u, "/x", "b"); w.Code != 200 {
			t.Fatalf("status %d after repair", w.Code)
		}
	}
	if f.ok.Load() != 1 || flaky.fails.Load() != 0 || u.Healthy() != 2 {
		t.Fatalf("served %d, fails %d, Healthy() = %d; want 1, 0, 2", f.ok.Load(), flaky.fails.Load(), u.Healthy())
	}
	ok.n.Store(0)
	f.ok.Store(0)
	for range 10 {
		post(u, "/x", "b")
	}
	if f.ok.Load() != 5 || ok.n.Load() != 5 {
		t.Errorf("after recovery: %d/%d, want 5/5", f.ok.Load(), ok.n.Load())
	}
}

func TestFallbackWhenEveryTargetIsEjected(t *testing.T) {
	clk := newClock()
	f := newFlaky(t)
	u := newUpstream(t, config.Upstream{
		Targets: []string{f.URL}, MaxFails: 1, FailTimeout: dur(time.Hour),
	}, Options{Now: clk.Now})
	f.broken.Store(true)
	if w, _ := get(u, "/x"); w.Code != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", w.Code)
	}
	if u.Healthy() != 0 {
		t.Fatal("target not ejected")
	}
	// Passive ejection alone does not take the route down: the target is
	// still tried (once, no retries) and a success restores it.
	if w, _ := get(u, "/x"); w.Code != http.StatusBadGateway {
		t.Fatalf("status %d, want 502 from the fallback attempt", w.Code)
	}
	f.broken.Store(false)
	if w, _ := get(u, "/x"); w.Code != http.StatusOK {
		t.Fatalf("status %d, want 200 once the target works", w.Code)
	}
	if u.Healthy() != 1 {
		t.Fatal("success did not restore the target")
	}
}

func TestFallbackPrefersLeastRecentlyFailed(t *testing.T) {
	clk := newClock()
	a, b := newFlaky(t), newFlaky(t)
	u := newUpstream(t, config.Upstream{
		Targets: []string{a.URL, b.URL}, MaxFails: 1, FailTimeout: dur(time.Hour), Retries: ptr(0),
	}, Options{Now: clk.Now})
	a.broken.Store(true)
	b.broken.Store(true)
	post(u, "/x", "") // a fails
	clk.Advance(time.Second)
	post(u, "/x", "") // b fails
	if u.Healthy() != 0 {
		t.Fatal("targets not ejected")
	}
	a.broken.Store(false)
	b.broken.Store(false)
	w, st := post(u, "/x", "")
	if w.Code != 200 || st.Upstream != u.bal.targets[0].addr {
		t.Errorf("fallback went to %s (%d), want the least recently failed %s", st.Upstream, w.Code, u.bal.targets[0].addr)
	}
}

func TestRetryIdempotentOnly(t *testing.T) {
	dead := deadURL(t)
	live := newCounting(t, "live")
	u := newUpstream(t, config.Upstream{
		Targets: []string{dead, live.URL}, Retries: ptr(1), MaxFails: 1000,
	}, Options{})

	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodOptions} {
		for range 4 {
			st := state("/x")
			w := do(u, httptest.NewRequest(m, "/x", nil), st)
			if w.Code != 200 {
				t.Fatalf("%s: status %d, want 200 after a retry", m, w.Code)
			}
			if st.Upstream != u.bal.targets[1].addr {
				t.Errorf("%s: State.Upstream = %q, want the target that served", m, st.Upstream)
			}
		}
	}
	if n := u.bal.targets[0].fails.Load(); n == 0 {
		t.Error("the dead target was never tried")
	}

	// Not retried: POST, PUT, DELETE, and a GET with a body. Round robin
	// sends every other one to the dead target.
	for _, tc := range []struct{ method, body string }{
		{http.MethodPost, "x"}, {http.MethodPost, ""}, {http.MethodPut, "x"},
		{http.MethodDelete, ""}, {http.MethodPatch, "x"}, {http.MethodGet, "body"},
	} {
		var bad int
		for range 4 {
			st := state("/x")
			w := do(u, httptest.NewRequest(tc.method, "/x", strings.NewReader(tc.body)), st)
			if w.Code == http.StatusBadGateway {
				bad++
			}
		}
		if bad != 2 {
			t.Errorf("%s with body %q: %d of 4 failed, want 2 (no retry)", tc.method, tc.body, bad)
		}
	}
}

func TestRetryEachOnAnotherTarget(t *testing.T) {
	live := newCounting(t, "live")
	u := newUpstream(t, config.Upstream{
		Targets: []string{deadURL(t), deadURL(t), live.URL}, Retries: ptr(2), MaxFails: 1000,
	}, Options{})
	for range 9 {
		if w, _ := get(u, "/x"); w.Code != 200 {
			t.Fatalf("status %d, want 200", w.Code)
		}
	}
	if live.n.Load() != 9 {
		t.Errorf("live served %d, want 9", live.n.Load())
	}
	if u.bal.targets[0].fails.Load() == 0 || u.bal.targets[1].fails.Load() == 0 {
		t.Error("a dead target was never tried")
	}
}

func TestNoRetryWhenRetriesZero(t *testing.T) {
	live := newCounting(t, "live")
	u := newUpstream(t, config.Upstream{
		Targets: []string{deadURL(t), live.URL}, Retries: ptr(0), MaxFails: 1000,
	}, Options{})
	var bad int
	for range 4 {
		if w, _ := get(u, "/x"); w.Code == http.StatusBadGateway {
			bad++
		}
	}
	if bad != 2 {
		t.Errorf("%d of 4 failed, want 2", bad)
	}
}

func TestNoRetryAfterTimeout(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(slow.Close)
	other := newCounting(t, "other")
	u := newUpstream(t, config.Upstream{
		Targets: []string{slow.URL, other.URL}, Retries: ptr(3), Timeout: dur(100 * time.Millisecond), MaxFails: 1000,
	}, Options{})
	w, _ := get(u, "/x") // first pick: the slow target
	wantProblem(t, w, http.StatusGatewayTimeout)
	if other.n.Load() != 0 {
		t.Error("a timed-out GET was retried")
	}
}

func TestBalancerPickExcludes(t *testing.T) {
	ts, err := parseTargets([]string{"http://a", "http://b", "http://c"})
	if err != nil {
		t.Fatal(err)
	}
	b := newBalancer(ts, 1, time.Second)
	for range 10 {
		if got := b.pick(0, ts[:2]); got != ts[2] {
			t.Fatalf("pick excluding a, b = %v", got.raw)
		}
	}
	if got := b.pick(0, ts); got != nil {
		t.Fatalf("pick excluding all = %v", got.raw)
	}
	if !b.failed(ts[0], 100) {
		t.Error("first failure with maxFails 1 did not eject")
	}
	if b.failed(ts[0], 101) {
		t.Error("failure of an ejected target reported as a new ejection")
	}
	if b.healthy(200) != 2 || b.healthy(101+int64(time.Second)) != 3 {
		t.Error("ejection window wrong")
	}
}
