package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/config"
)

// healthServer answers /health with a settable status and reports every
// probe (with the status it answers) on the unbuffered channel probes
// before answering: a probe cannot complete until the test has seen it, so
// the test always knows how many results the checker can have applied.
// Other paths answer 200.
type healthServer struct {
	*httptest.Server
	status atomic.Int32
	probes chan int
}

func newHealthServer(t *testing.T) *healthServer {
	t.Helper()
	h := &healthServer{probes: make(chan int)}
	h.status.Store(200)
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			_, _ = w.Write([]byte("app"))
			return
		}
		if ua := r.Header.Get("User-Agent"); ua != "breakwater-health-check" {
			t.Errorf("probe User-Agent = %q", ua)
		}
		code := int(h.status.Load())
		select {
		case h.probes <- code:
		case <-r.Context().Done():
			return
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(h.Close)
	return h
}

// awaitProbes waits until n consecutive probes answer code, then for one
// more probe to start: a target's probes run one after the other, so by
// then the result of the n-th has been applied, and at most one more.
func (h *healthServer) awaitProbes(t *testing.T, code, n int) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	run := 0
	for run < n {
		select {
		case c := <-h.probes:
			if c == code {
				run++
			} else {
				run = 0
			}
		case <-timeout:
			t.Fatalf("no %d consecutive probes answered %d", n, code)
		}
	}
	select {
	case <-h.probes:
	case <-timeout:
		t.Fatal("probes stopped")
	}
}

func TestActiveHealthChecks(t *testing.T) {
	h := newHealthServer(t)
	log, logs := newLogger()
	u := newUpstream(t, config.Upstream{
		Targets: []string{h.URL + "/base"},
		HealthCheck: &config.HealthCheck{
			Path: "/health", Interval: dur(5 * time.Millisecond), Timeout: dur(5 * time.Second),
			HealthyThreshold: 2, UnhealthyThreshold: 3,
		},
	}, Options{Logger: log})
	u.Start(ctxWithTimeout(t))
	u.Start(ctxWithTimeout(t)) // no-op

	h.awaitProbes(t, 200, 1)
	if u.Healthy() != 1 {
		t.Fatal("healthy target not up")
	}

	h.status.Store(503)
	h.awaitProbes(t, 503, 3)
	if u.Healthy() != 0 {
		t.Fatal("target not marked down after 3 failed probes")
	}
	w, _ := get(u, "/x")
	wantProblem(t, w, http.StatusServiceUnavailable)
	if !strings.Contains(logs.String(), "upstream target down") {
		t.Error("down transition not logged")
	}

	h.status.Store(302) // 3xx counts as up
	h.awaitProbes(t, 302, 2)
	if u.Healthy() != 1 {
		t.Fatal("target not marked up after 2 good probes")
	}
	if w, _ := get(u, "/x"); w.Code != 200 || w.Body.String() != "app" {
		t.Fatalf("status %d %q after recovery", w.Code, w.Body.String())
	}
}

func TestActiveHealthCheckThresholds(t *testing.T) {
	h := newHealthServer(t)
	u := newUpstream(t, config.Upstream{
		Targets: []string{h.URL},
		HealthCheck: &config.HealthCheck{
			Path: "/health", Interval: dur(5 * time.Millisecond), Timeout: dur(5 * time.Second),
			HealthyThreshold: 3, UnhealthyThreshold: 2,
		},
	}, Options{})
	u.Start(ctxWithTimeout(t))
	h.status.Store(500)
	h.awaitProbes(t, 500, 2)
	if u.Healthy() != 0 {
		t.Fatal("not down after 2 failures")
	}
	// Two good probes are not enough to come back.
	h.status.Store(200)
	h.awaitProbes(t, 200, 1)
	if u.Healthy() != 0 {
		t.Fatal("up after 1 good probe, threshold is 3")
	}
	h.awaitProbes(t, 200, 2)
	if u.Healthy() != 1 {
		t.Fatal("not up after 3 good probes")
	}
}

func TestActiveHealthCheckUnreachableTarget(t *testing.T) {
	h := newHealthServer(t)
	u := newUpstream(t, config.Upstream{
		Targets: []string{deadURL(t), h.URL},
		HealthCheck: &config.HealthCheck{
			Path: "/health", Interval: dur(5 * time.Millisecond), Timeout: dur(time.Second),
			HealthyThreshold: 1, UnhealthyThreshold: 1,
		},
	}, Options{})
	u.Start(ctxWithTimeout(t))
	waitFor(t, "dead target marked down", func() bool { return u.bal.targets[0].activeDown.Load() })
	for range 6 {
		if w, _ := get(u, "/x"); w.Code != 200 {
			t.Fatalf("status %d: a target down per checks was picked", w.Code)
		}
	}
}

func TestCloseStopsHealthChecks(t *testing.T) {
	h := newHealthServer(t)
	c := config.Upstream{
		Targets:     []string{h.URL},
		HealthCheck: &config.HealthCheck{Path: "/health", Interval: dur(time.Millisecond)},
	}
	config.UpstreamDefaults(&c)
	u, err := New(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	u.Start(context.Background())
	h.awaitProbes(t, 200, 2)
	u.Close() // returns only once the check loops have
	// A probe that was waiting inside the server when Close came may still
	// report; no new one may start.
	n := 0
	for quiet := false; !quiet; {
		select {
		case <-h.probes:
			n++
		case <-time.After(100 * time.Millisecond):
			quiet = true
		}
	}
	if n > 1 {
		t.Errorf("%d probes after Close", n)
	}
	u.Start(context.Background()) // after Close: no-op
	u.Close()
}

func TestStopHealthChecksWithContext(t *testing.T) {
	h := newHealthServer(t)
	u := newUpstream(t, config.Upstream{
		Targets:     []string{h.URL},
		HealthCheck: &config.HealthCheck{Path: "/health", Interval: dur(time.Millisecond)},
	}, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	u.Start(ctx)
	h.awaitProbes(t, 200, 1)
	cancel()
	done := make(chan struct{})
	go func() { u.checks.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("check loops still running after their context ended")
	}
}

func TestNoHealthCheckConfigured(t *testing.T) {
	up := newCounting(t, "up")
	u := newUpstream(t, config.Upstream{Targets: []string{up.URL}}, Options{})
	u.Start(context.Background())
	if u.Healthy() != 1 {
		t.Fatal("target not up")
	}
	if up.n.Load() != 0 {
		t.Error("probes without a health_check")
	}
}
