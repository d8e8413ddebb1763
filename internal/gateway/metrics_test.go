package gateway

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/breakwater/breakwater/internal/telemetry"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// newMeteredGateway is newTestGateway recording into a registry the test reads.
func newMeteredGateway(t *testing.T, yaml string) (*Gateway, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := telemetry.NewMetrics(reg, telemetry.BuildInfo{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	g0 := newTestGateway(t, yaml) // for its upstream and parsed config
	g, err := New(context.Background(), g0.Config(), Deps{Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g, reg
}

func send(g *Gateway, method, target, key string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = "192.0.2.1:1234"
	if key != "" {
		r.Header.Set("X-API-Key", key)
	}
	w := httptest.NewRecorder()
	g.ServeHTTP(w, r)
	return w
}

func TestMetricsCountRequests(t *testing.T) {
	g, reg := newMeteredGateway(t, baseConfig)
	for _, tc := range []struct {
		method, target, key string
		want                int
	}{
		{"GET", "/public/a", "", 200},
		{"GET", "/public/b", "", 200},
		{"HEAD", "/public/b", "", 200},
		{"GET", "/items/1", testKey, 200},
		{"GET", "/items/1", "", 401},
		{"GET", "/items/1", "bw_unknown", 401},
		{"GET", "/items/1", strings.Repeat("k", 300), 401},
		{"POST", "/items", testKey, 403},
		{"DELETE", "/items/1", "", 405},
		{"GET", "/nowhere", "", 404},
		{"GET", "/public/a%2fb", "", 400},
		{"PROPFIND", "/public/a", "", 200},
	} {
		if w := send(g, tc.method, tc.target, tc.key); w.Code != tc.want {
			t.Fatalf("%s %s: %d, want %d", tc.method, tc.target, w.Code, tc.want)
		}
	}
	const want = `
# HELP breakwater_requests_total Requests served, by route name, method and status class.
# TYPE breakwater_requests_total counter
breakwater_requests_total{code_class="2xx",method="GET",route="items"} 1
breakwater_requests_total{code_class="2xx",method="GET",route="public"} 2
breakwater_requests_total{code_class="2xx",method="HEAD",route="public"} 1
breakwater_requests_total{code_class="2xx",method="OTHER",route="public"} 1
breakwater_requests_total{code_class="4xx",method="GET",route="items"} 3
breakwater_requests_total{code_class="4xx",method="GET",route="(none)"} 2
breakwater_requests_total{code_class="4xx",method="DELETE",route="(none)"} 1
breakwater_requests_total{code_class="4xx",method="POST",route="write"} 1
# HELP breakwater_auth_failures_total Authentication failures, by route, authenticator ("none" when no credential was found) and reason.
# TYPE breakwater_auth_failures_total counter
breakwater_auth_failures_total{authenticator="keys",reason="expired",route="items"} 0
breakwater_auth_failures_total{authenticator="keys",reason="invalid",route="items"} 0
breakwater_auth_failures_total{authenticator="keys",reason="malformed",route="items"} 1
breakwater_auth_failures_total{authenticator="keys",reason="no_credential",route="items"} 0
breakwater_auth_failures_total{authenticator="keys",reason="other",route="items"} 0
breakwater_auth_failures_total{authenticator="keys",reason="replayed",route="items"} 0
breakwater_auth_failures_total{authenticator="keys",reason="revoked",route="items"} 0
breakwater_auth_failures_total{authenticator="keys",reason="unavailable",route="items"} 0
breakwater_auth_failures_total{authenticator="keys",reason="unknown_key",route="items"} 1
breakwater_auth_failures_total{authenticator="keys",reason="expired",route="write"} 0
breakwater_auth_failures_total{authenticator="keys",reason="invalid",route="write"} 0
breakwater_auth_failures_total{authenticator="keys",reason="malformed",route="write"} 0
breakwater_auth_failures_total{authenticator="keys",reason="no_credential",route="write"} 0
breakwater_auth_failures_total{authenticator="keys",reason="other",route="write"} 0
breakwater_auth_failures_total{authenticator="keys",reason="replayed",route="write"} 0
breakwater_auth_failures_total{authenticator="keys",reason="revoked",route="write"} 0
breakwater_auth_failures_total{authenticator="keys",reason="unavailable",route="write"} 0
breakwater_auth_failures_total{authenticator="keys",reason="unknown_key",route="write"} 0
breakwater_auth_failures_total{authenticator="none",reason="expired",route="items"} 0
breakwater_auth_failures_total{authenticator="none",reason="invalid",route="items"} 0
breakwater_auth_failures_total{authenticator="none",reason="malformed",route="items"} 0
breakwater_auth_failures_total{authenticator="none",reason="no_credential",route="items"} 1
breakwater_auth_failures_total{authenticator="none",reason="other",route="items"} 0
breakwater_auth_failures_total{authenticator="none",reason="replayed",route="items"} 0
breakwater_auth_failures_total{authenticator="none",reason="revoked",route="items"} 0
breakwater_auth_failures_total{authenticator="none",reason="unavailable",route="items"} 0
breakwater_auth_failures_total{authenticator="none",reason="unknown_key",route="items"} 0
breakwater_auth_failures_total{authenticator="none",reason="expired",route="write"} 0
breakwater_auth_failures_total{authenticator="none",reason="invalid",route="write"} 0
breakwater_auth_failures_total{authenticator="none",reason="malformed",route="write"} 0
breakwater_auth_failures_total{authenticator="none",reason="no_credential",route="write"} 0
breakwater_auth_failures_total{authenticator="none",reason="other",route="write"} 0
breakwater_auth_failures_total{authenticator="none",reason="replayed",route="write"} 0
breakwater_auth_failures_total{authenticator="none",reason="revoked",route="write"} 0
breakwater_auth_failures_total{authenticator="none",reason="unavailable",route="write"} 0
breakwater_auth_failures_total{authenticator="none",reason="unknown_key",route="write"} 0
# HELP breakwater_rejected_requests_total Requests the gateway refused itself, by reason.
# TYPE breakwater_rejected_requests_total counter
breakwater_rejected_requests_total{reason="ambiguous_path"} 1
breakwater_rejected_requests_total{reason="banned"} 0
breakwater_rejected_requests_total{reason="body_too_large"} 0
breakwater_rejected_requests_total{reason="concurrency_limited"} 0
breakwater_rejected_requests_total{reason="forbidden_policy"} 0
breakwater_rejected_requests_total{reason="forbidden_scope"} 1
breakwater_rejected_requests_total{reason="invalid_request"} 0
breakwater_rejected_requests_total{reason="malformed_target"} 0
breakwater_rejected_requests_total{reason="method_not_allowed"} 1
breakwater_rejected_requests_total{reason="no_route"} 1
breakwater_rejected_requests_total{reason="overloaded"} 0
breakwater_rejected_requests_total{reason="rate_limited"} 0
breakwater_rejected_requests_total{reason="undeclared_operation"} 0
breakwater_rejected_requests_total{reason="uri_too_long"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"breakwater_requests_total", "breakwater_auth_failures_total", "breakwater_rejected_requests_total"); err != nil {
		t.Error(err)
	}
	// Histograms: every request has a duration; the five proxied ones an
	// upstream duration.
	if n := histogramCount(t, reg, "breakwater_request_duration_seconds", "public"); n != 4 {
		t.Errorf("public request durations: %d, want 4", n)
	}
	if n := histogramCount(t, reg, "breakwater_upstream_duration_seconds", "public"); n != 4 {
		t.Errorf("public upstream durations: %d, want 4", n)
	}
	if n := histogramCount(t, reg, "breakwater_upstream_duration_seconds", "items"); n != 1 {
		t.Errorf("items upstream durations: %d, want 1", n)
	}
	if n := histogramCount(t, reg, "breakwater_request_duration_seconds", telemetry.NoRoute); n != 3 {
		t.Errorf("unrouted request durations: %d, want 3", n)
	}
	if v := counterValue(t, reg, "breakwater_response_bytes_total", "public"); v <= 0 {
		t.Errorf("public response bytes %v", v)
	}
	if v := gaugeValue(t, reg, "breakwater_in_flight_requests"); v != 0 {
		t.Errorf("in flight %v after all requests finished", v)
	}
}

func TestMetricsReloads(t *testing.T) {
	g, reg := newMeteredGateway(t, baseConfig)
	good := g.Config()
	bad := *good
	bad.Server.TrustedProxies = []string{"not-a-cidr"}
	if err := g.Apply(good); err != nil {
		t.Fatal(err)
	}
	if err := g.Apply(&bad); err == nil {
		t.Fatal("bad config applied")
	}
	const want = `
# HELP breakwater_config_reloads_total Config reloads, by result (ok or failed). The initial load is not counted.
# TYPE breakwater_config_reloads_total counter
breakwater_config_reloads_total{result="failed"} 1
breakwater_config_reloads_total{result="ok"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "breakwater_config_reloads_total"); err != nil {
		t.Error(err)
	}
	if s := g.Stats(); s.ReloadsOK != 1 || s.ReloadsFailed != 1 {
		t.Errorf("stats %+v", s)
	}
	// A kept route keeps its series.
	send(g, "GET", "/public/a", "")
	if v := counterValue(t, reg, "breakwater_requests_total", "public"); v != 1 {
		t.Errorf("public requests after reload: %v", v)
	}
}

// TestMetricsNeverShowClientText: paths, keys, query strings and methods
// chosen by a client never become label values.
func TestMetricsNeverShowClientText(t *testing.T) {
	g, reg := newMeteredGateway(t, baseConfig)
	const (
		pathMark   = "zzpathmarkzz"
		keyMark    = "bw_zzkeymarkzz"
		queryMark  = "zzquerymarkzz"
		methodMark = "ZZMETHODMARKZZ"
	)
	for _, tc := range []struct{ method, target, key string }{
		{"GET", "/" + pathMark, keyMark},
		{"GET", "/public/" + pathMark + "?api_key=" + keyMark + "&q=" + queryMark, ""},
		{"GET", "/public/%2f" + pathMark, keyMark},
		{"GET", "/items/" + pathMark, keyMark},
		{"GET", "/items/" + pathMark + "?api_key=" + keyMark, ""},
		{methodMark, "/public/" + pathMark, keyMark},
		{methodMark, "/items/" + pathMark, keyMark},
		{"GET", "/" + strings.Repeat(pathMark, 1000), keyMark},
	} {
		send(g, tc.method, tc.target, tc.key)
	}
	w := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(w.Body)
	if w.Code != http.StatusOK || !strings.Contains(string(body), "breakwater_requests_total") {
		t.Fatalf("exposition %d:\n%s", w.Code, body)
	}
	low := strings.ToLower(string(body))
	for _, mark := range []string{pathMark, keyMark, queryMark, methodMark, testKey} {
		if strings.Contains(low, strings.ToLower(mark)) {
			t.Errorf("exposition contains client text %q", mark)
		}
	}
}

// BenchmarkGatewayMetrics is BenchmarkGateway recording into a registry, for
// comparison of the two (the metrics' own cost: telemetry.BenchmarkRequest).
func BenchmarkGatewayMetrics(b *testing.B) {
	reg := prometheus.NewRegistry()
	m, err := telemetry.NewMetrics(reg, telemetry.BuildInfo{})
	if err != nil {
		b.Fatal(err)
	}
	g0 := newTestGateway(b, baseConfig)
	g, err := New(context.Background(), g0.Config(), Deps{Metrics: m})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(g.Close)
	r := httptest.NewRequest("GET", "/items/42", nil)
	r.RemoteAddr = "192.0.2.1:1234"
	b.ReportAllocs()
	for b.Loop() {
		r.Header.Set("X-API-Key", testKey)
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

func family(t *testing.T, reg prometheus.Gatherer, name string) []*dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()
		}
	}
	return nil
}

func hasRoute(m *dto.Metric, route string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == "route" && l.GetValue() == route {
			return true
		}
	}
	return false
}

func histogramCount(t *testing.T, reg prometheus.Gatherer, name, route string) uint64 {
	var n uint64
	for _, m := range family(t, reg, name) {
		if hasRoute(m, route) {
			n += m.GetHistogram().GetSampleCount()
		}
	}
	return n
}

func counterValue(t *testing.T, reg prometheus.Gatherer, name, route string) float64 {
	var v float64
	for _, m := range family(t, reg, name) {
		if hasRoute(m, route) {
			v += m.GetCounter().GetValue()
		}
	}
	return v
}

func gaugeValue(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	var v float64
	for _, m := range family(t, reg, name) {
		v += m.GetGauge().GetValue()
	}
	return v
}
