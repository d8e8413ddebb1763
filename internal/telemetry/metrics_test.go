package telemetry

import (
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newMetrics(t testing.TB) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, BuildInfo{Version: "v1.2.3", Commit: "abc", GoVersion: "go1.26.8"})
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

// TestMetricNames pins every metric's name, type and label names: renaming
// one breaks dashboards and alerts, so it must be a deliberate change here
// and in docs/monitoring.md.
func TestMetricNames(t *testing.T) {
	m, reg := newMetrics(t)
	m.SetInFlight(func() int64 { return 3 })
	m.AddListener("https", func() int { return 7 })
	m.ConnectionRejected("max_connections")
	m.Rejected(RejectNoRoute)
	m.Reload(true)
	r := m.Route("items")
	r.Request("GET", 200, time.Millisecond, 10, 20)
	r.Upstream(time.Millisecond)
	r.AuthFailures("keys").Inc(AuthUnknownKey)

	// Type, then label names in alphabetical order.
	want := map[string]string{
		"breakwater_requests_total":               "COUNTER code_class,method,route",
		"breakwater_request_duration_seconds":     "HISTOGRAM route",
		"breakwater_upstream_duration_seconds":    "HISTOGRAM route",
		"breakwater_request_bytes_total":          "COUNTER route",
		"breakwater_response_bytes_total":         "COUNTER route",
		"breakwater_in_flight_requests":           "GAUGE ",
		"breakwater_open_connections":             "GAUGE listener",
		"breakwater_connections_rejected_total":   "COUNTER reason",
		"breakwater_rejected_requests_total":      "COUNTER reason",
		"breakwater_auth_failures_total":          "COUNTER authenticator,reason,route",
		"breakwater_config_reloads_total":         "COUNTER result",
		"breakwater_bans_total":                   "COUNTER reason",
		"breakwater_bans_lifted_total":            "COUNTER ",
		"breakwater_ban_errors_total":             "COUNTER ",
		"breakwater_build_info":                   "GAUGE commit,go_version,version",
		"breakwater_tls_handshake_failures_total": "COUNTER ",
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	var std []string
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "breakwater_") {
			std = append(std, mf.GetName())
			continue
		}
		var labels []string // Gather sorts them by name
		for _, lp := range mf.GetMetric()[0].GetLabel() {
			labels = append(labels, lp.GetName())
		}
		got[mf.GetName()] = mf.GetType().String() + " " + strings.Join(labels, ",")
		if mf.GetHelp() == "" {
			t.Errorf("%s has no help", mf.GetName())
		}
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: got %q, want %q", name, got[name], w)
		}
	}
	for name, g := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("unpinned metric %s (%s): add it here and to docs/monitoring.md", name, g)
		}
	}
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes"} {
		if !slices.Contains(std, name) {
			t.Errorf("standard Go collector missing %s", name)
		}
	}
	if runtime.GOOS == "linux" && !slices.Contains(std, "process_cpu_seconds_total") {
		t.Error("process collector missing")
	}
}

func TestFixedSets(t *testing.T) {
	m, reg := newMetrics(t)
	r := m.Route("items")
	for _, tc := range []struct {
		method string
		status int
	}{
		{"GET", 200}, {"get", 204}, {"PROPFIND", 404}, {"/etc/passwd", 500}, {"POST", 0}, {"POST", 999}, {"DELETE", 199}, {"PATCH", 302},
	} {
		r.Request(tc.method, tc.status, time.Millisecond, -1, 0)
	}
	m.ConnectionRejected("invented_reason")
	m.Rejected(Reject(-1))
	m.Rejected(numRejects)
	r.AuthFailures("keys").Inc(AuthReason(99))

	const want = `
# HELP breakwater_requests_total Requests served, by route name, method and status class.
# TYPE breakwater_requests_total counter
breakwater_requests_total{code_class="2xx",method="GET",route="items"} 1
breakwater_requests_total{code_class="2xx",method="OTHER",route="items"} 1
breakwater_requests_total{code_class="3xx",method="PATCH",route="items"} 1
breakwater_requests_total{code_class="4xx",method="OTHER",route="items"} 1
breakwater_requests_total{code_class="5xx",method="OTHER",route="items"} 1
breakwater_requests_total{code_class="other",method="DELETE",route="items"} 1
breakwater_requests_total{code_class="other",method="POST",route="items"} 2
# HELP breakwater_connections_rejected_total Connections closed at accept because a connection cap was reached, by reason.
# TYPE breakwater_connections_rejected_total counter
breakwater_connections_rejected_total{reason="max_connections"} 0
breakwater_connections_rejected_total{reason="max_connections_per_ip"} 0
# HELP breakwater_auth_failures_total Authentication failures, by route, authenticator ("none" when no credential was found) and reason.
# TYPE breakwater_auth_failures_total counter
breakwater_auth_failures_total{authenticator="keys",reason="expired",route="items"} 0
breakwater_auth_failures_total{authenticator="keys",reason="invalid",route="items"} 0
breakwater_auth_failures_total{authenticator="keys",reason="malformed",route="items"} 0
breakwater_auth_failures_total{authenticator="keys",reason="no_credential",route="items"} 0
breakwater_auth_failures_total{authenticator="keys",reason="other",route="items"} 1
breakwater_auth_failures_total{authenticator="keys",reason="replayed",route="items"} 0
breakwater_auth_failures_total{authenticator="keys",reason="revoked",route="items"} 0
breakwater_auth_failures_total{authenticator="keys",reason="unavailable",route="items"} 0
breakwater_auth_failures_total{authenticator="keys",reason="unknown_key",route="items"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"breakwater_requests_total", "breakwater_connections_rejected_total", "breakwater_auth_failures_total"); err != nil {
		t.Error(err)
	}
	// Every rejection reason exists from the start (alerts see zeros).
	if n := seriesOf(t, reg, "breakwater_rejected_requests_total"); n != int(numRejects) {
		t.Errorf("%d rejection series, want %d", n, numRejects)
	}
}

// TestRouteReuse: a reload that keeps a route keeps counting into the same
// series.
func TestRouteReuse(t *testing.T) {
	m, _ := newMetrics(t)
	first, again, other := m.Route("a"), m.Route("a"), m.Route("b")
	if first != again || first == other {
		t.Fatal("Route must return one *Route per name")
	}
	if f1, f2 := first.AuthFailures("k"), again.AuthFailures("k"); f1 != f2 {
		t.Fatal("AuthFailures must return one value per name")
	}
}

func TestBuildInfoDefaults(t *testing.T) {
	b := BuildInfo{}.Complete()
	if b.Version == "" || b.Commit == "" || b.GoVersion != runtime.Version() {
		t.Fatalf("%+v", b)
	}
}

// TestRequestDoesNotAllocate pins the hot path's budget (see the benchmark).
func TestRequestDoesNotAllocate(t *testing.T) {
	m, _ := newMetrics(t)
	r := m.Route("items")
	a := r.AuthFailures("keys")
	r.Request("GET", 200, time.Millisecond, 10, 100) // resolve the series first
	n := testing.AllocsPerRun(1000, func() {
		r.Request("GET", 200, 40*time.Microsecond, 10, 100)
		r.Upstream(30 * time.Microsecond)
		m.Rejected(RejectNoRoute)
		a.Inc(AuthUnknownKey)
	})
	if n != 0 {
		t.Fatalf("%v allocations per request, want 0", n)
	}
}

// BenchmarkRequest is the metrics cost of one proxied request: the request
// counter, both histograms and both byte counters.
func BenchmarkRequest(b *testing.B) {
	m, _ := newMetrics(b)
	r := m.Route("items")
	b.ReportAllocs()
	for b.Loop() {
		r.Request("GET", 200, 40*time.Microsecond, 100, 1000)
		r.Upstream(30 * time.Microsecond)
	}
}

// BenchmarkRequestParallel is the same with every CPU on one route: the
// worst case for contention on the shared counters.
func BenchmarkRequestParallel(b *testing.B) {
	m, _ := newMetrics(b)
	r := m.Route("items")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Request("GET", 200, 40*time.Microsecond, 100, 1000)
			r.Upstream(30 * time.Microsecond)
		}
	})
}

// seriesOf counts the series of one family.
func seriesOf(t *testing.T, g prometheus.Gatherer, name string) int {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}
