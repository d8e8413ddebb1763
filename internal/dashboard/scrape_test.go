package dashboard

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/telemetry"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestQuantile(t *testing.T) {
	inf := math.Inf(+1)
	b := []float64{0.1, 0.2, 0.5, 1, inf}
	c := []float64{10, 30, 80, 100, 100}
	tests := []struct {
		name          string
		q             float64
		bounds, count []float64
		want          float64 // NaN: no answer
	}{
		{"median interpolated in (0.2, 0.5]", 0.5, b, c, 0.32},
		{"rank on a bucket's edge", 0.1, b, c, 0.1},
		{"first bucket starts at 0", 0.05, b, c, 0.05},
		{"p95", 0.95, b, c, 0.875},
		{"p99", 0.99, b, c, 0.975},
		{"q = 1", 1, b, c, 1},
		{"q = 0", 0, b, c, 0},
		{"rank in +Inf: highest finite bound", 0.9, b, []float64{10, 10, 10, 10, 20}, 1},
		{"only +Inf bucket", 0.5, []float64{inf}, []float64{5}, math.NaN()},
		{"negative first bound", 0.1, []float64{-1, 0, inf}, []float64{5, 10, 10}, -1},
		{"empty bucket where rank lands", 0.5, []float64{1, 2, inf}, []float64{5, 5, 10}, 1},
		{"no observations", 0.5, b, []float64{0, 0, 0, 0, 0}, math.NaN()},
		{"no buckets", 0.5, nil, nil, math.NaN()},
		{"lengths differ", 0.5, b, c[:3], math.NaN()},
		{"q > 1", 1.5, b, c, math.NaN()},
		{"q < 0", -0.1, b, c, math.NaN()},
		{"q NaN", math.NaN(), b, c, math.NaN()},
		{"counts not monotonic: fixed up like Prometheus", 0.5, []float64{1, 2, inf}, []float64{8, 3, 10}, 0.625},
		{"NaN total", 0.5, []float64{1, inf}, []float64{1, math.NaN()}, math.NaN()},
	}
	for _, tc := range tests {
		got := Quantile(tc.q, tc.bounds, tc.count)
		if math.IsNaN(tc.want) != math.IsNaN(got) || !math.IsNaN(got) && math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: Quantile(%v) = %v, want %v", tc.name, tc.q, got, tc.want)
		}
	}
}

// TestSummaryFromHistogram drives the real telemetry metrics and checks the
// rates and percentiles the summary computes from two scrapes.
func TestSummaryFromHistogram(t *testing.T) {
	f := newFixture(t)
	orders := f.metrics.Route("orders")
	orders.Request("GET", 200, 2*time.Millisecond, 0, 10) // before the window: not counted
	cookie := f.signIn(t)                                 // starts the scrape loop (first tick after an interval)
	f.d.scrapeNow()

	f.clock.Add(10 * time.Second)
	for i := range 100 {
		status, d := 200, 3*time.Millisecond // bucket (0.0025, 0.005]
		if i >= 90 {
			d = 300 * time.Millisecond // bucket (0.25, 0.5]
		}
		if i%20 == 0 {
			status = 503
		}
		if i%10 == 1 {
			status = 404
		}
		orders.Request("GET", status, d, 0, 10)
	}
	f.metrics.Route("users").Request("POST", 201, time.Millisecond, 10, 10)
	orders.AuthFailures("keys").Inc(telemetry.AuthUnknownKey)
	orders.AuthFailures("keys").Inc(telemetry.AuthUnknownKey)
	f.metrics.Rejected(telemetry.RejectRateLimited)
	f.d.Observe("alice", 200)
	f.d.Observe("alice", 503)
	f.d.Observe("bob", 404)

	w := f.do("GET", "/dashboard/api/summary?window=60", "", withCookie(cookie))
	if w.Code != http.StatusOK {
		t.Fatalf("summary: %d %s", w.Code, w.Body)
	}
	var s struct {
		WindowSeconds *float64 `json:"window_seconds"`
		Routes        []struct {
			Route           string
			RPS             *float64 `json:"requests_per_second"`
			ErrorRate       *float64 `json:"error_rate"`
			ClientErrorRate *float64 `json:"client_error_rate"`
			P50s            *float64 `json:"p50_seconds"`
			P95s            *float64 `json:"p95_seconds"`
			P99s            *float64 `json:"p99_seconds"`
			Requests        *float64 `json:"requests"`
		} `json:"routes"`
		Times        []int64                          `json:"times"`
		Series       map[string]map[string][]*float64 `json:"series"`
		AuthFailures []struct {
			Name          string
			Window, Total *float64
		} `json:"auth_failures"`
		Rejections []struct {
			Name          string
			Window, Total *float64
		} `json:"rejections"`
		TopConsumers []Consumer `json:"top_consumers"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	if s.WindowSeconds == nil || *s.WindowSeconds != 10 {
		t.Fatalf("window %v, want 10 (the history is shorter than asked)", s.WindowSeconds)
	}
	var got bool
	for _, r := range s.Routes {
		if r.Route != "orders" {
			continue
		}
		got = true
		near := func(name string, v *float64, lo, hi float64) {
			t.Helper()
			if v == nil || *v < lo || *v > hi {
				t.Errorf("%s = %v, want in [%v, %v]", name, deref(v), lo, hi)
			}
		}
		near("rps", r.RPS, 10, 10)
		near("requests", r.Requests, 100, 100)
		near("error rate", r.ErrorRate, 0.05, 0.05)
		near("4xx rate", r.ClientErrorRate, 0.10, 0.10)
		near("p50", r.P50s, 0.0025, 0.005)
		near("p95", r.P95s, 0.25, 0.5)
		near("p99", r.P99s, 0.25, 0.5)
		// Interpolated exactly: 90 in (0.0025,0.005], p50 rank 50 → 0.0025 + 0.0025*50/90.
		near("p50 exact", r.P50s, 0.0025+0.0025*50/90-1e-6, 0.0025+0.0025*50/90+1e-6) // 6 significant digits in JSON
	}
	if !got {
		t.Fatalf("no orders route: %s", w.Body)
	}
	if len(s.Times) != 1 || len(s.Series["orders"]["rps"]) != 1 || *s.Series["orders"]["rps"][0] != 10 {
		t.Errorf("series: %v %v", s.Times, s.Series["orders"])
	}
	if len(s.AuthFailures) == 0 {
		t.Fatal("no auth failures")
	}
	for _, a := range s.AuthFailures {
		if a.Name == "unknown_key" && (a.Window == nil || *a.Window != 2) {
			t.Errorf("auth failures unknown_key: %v", deref(a.Window))
		}
	}
	for _, r := range s.Rejections {
		if r.Name == "rate_limited" && (r.Window == nil || *r.Window != 1) {
			t.Errorf("rate_limited: %v", deref(r.Window))
		}
	}
	if len(s.TopConsumers) != 2 || s.TopConsumers[0].ID != "alice" || s.TopConsumers[0].Requests != 2 || s.TopConsumers[0].Status5 != 1 || s.TopConsumers[1].Status4 != 1 {
		t.Errorf("top consumers: %+v", s.TopConsumers)
	}
}

func deref(v *float64) any {
	if v == nil {
		return nil
	}
	return *v
}

func TestSummaryEdges(t *testing.T) {
	if s := summarize(nil, time.Minute); len(s.Routes) != 0 || s.Series == nil {
		t.Errorf("empty: %+v", s)
	}
	at := time.Unix(1000, 0)
	one := &scrape{at: at, routes: map[string]*routeSample{"a": {requests: 5}}, auth: map[string]float64{"x": 1}, rejected: map[string]float64{}}
	s := summarize([]*scrape{one}, time.Minute)
	if len(s.Routes) != 1 || !math.IsNaN(float64(s.Routes[0].Rate)) || !math.IsNaN(float64(s.WindowSeconds)) {
		t.Errorf("one scrape: %+v", s)
	}
	if _, err := json.Marshal(s); err != nil {
		t.Fatalf("NaN must marshal as null: %v", err)
	}
	// A counter reset (lower value) counts from zero, never negative.
	two := &scrape{at: at.Add(5 * time.Second), routes: map[string]*routeSample{"a": {requests: 2}}, auth: map[string]float64{"x": 0}, rejected: map[string]float64{}}
	s = summarize([]*scrape{one, two}, time.Minute)
	if float64(s.Routes[0].Requests) != 2 || float64(s.AuthFailures[0].Window) != 0 {
		t.Errorf("reset: %+v", s)
	}
	// The baseline is the newest scrape at least window before the last.
	var ss []*scrape
	for i := range 20 {
		ss = append(ss, &scrape{at: at.Add(time.Duration(i) * 5 * time.Second), routes: map[string]*routeSample{"a": {requests: float64(i * 10)}}})
	}
	s = summarize(ss, 30*time.Second)
	if float64(s.WindowSeconds) != 30 || float64(s.Routes[0].Rate) != 2 || len(s.Times) != 19 {
		t.Errorf("window: %v s, rate %v, %d points", s.WindowSeconds, s.Routes[0].Rate, len(s.Times))
	}
}

func TestScrapeRingBounded(t *testing.T) {
	var r scrapeRing
	at := time.Unix(0, 0)
	for i := range ScrapeHistory * 3 {
		r.add(&scrape{at: at.Add(time.Duration(i) * time.Second)})
	}
	r.add(&scrape{at: at}) // older than the last: ignored
	ss := r.snapshot()
	if len(ss) != ScrapeHistory || !ss[len(ss)-1].at.Equal(at.Add(time.Duration(ScrapeHistory*3-1)*time.Second)) {
		t.Fatalf("%d scrapes, last %v", len(ss), ss[len(ss)-1].at)
	}
}

func TestParseFamiliesBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricRequests}, []string{"route", "method", "code_class"})
	reg.MustRegister(c)
	for i := range maxRoutesScraped + 50 {
		c.WithLabelValues("r"+strconv.Itoa(i), "GET", "2xx").Inc()
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	s := parseFamilies(append(mfs, &dto.MetricFamily{}), time.Now())
	if len(s.routes) != maxRoutesScraped {
		t.Fatalf("%d routes", len(s.routes))
	}
}

// TestScrapeLoop checks that the loop scrapes while a session is alive and
// ends when none is (real ticker, shortened interval).
func TestScrapeLoop(t *testing.T) {
	f := newFixture(t)
	f.d.interval = 20 * time.Millisecond
	f.signIn(t)
	deadline := time.Now().Add(10 * time.Second)
	for len(f.d.scrapes.snapshot()) < 3 {
		if time.Now().After(deadline) {
			t.Fatal("the loop did not scrape")
		}
		f.clock.Add(f.d.interval)
		time.Sleep(5 * time.Millisecond)
	}
	f.clock.Add(SessionLifetime) // every session ends: the loop stops
	for {
		f.d.loopMu.Lock()
		running := f.d.looping
		f.d.loopMu.Unlock()
		if !running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the loop did not stop")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkSummary: a full history (120 scrapes) of 20 routes, what every
// open dashboard asks for every 5 s.
func BenchmarkSummary(b *testing.B) {
	inf := math.Inf(+1)
	bounds := append(append([]float64{}, telemetry.DurationBuckets...), inf)
	var ss []*scrape
	at := time.Unix(0, 0)
	for i := range ScrapeHistory {
		s := &scrape{at: at.Add(time.Duration(i) * ScrapeInterval), routes: map[string]*routeSample{}, auth: map[string]float64{"unknown_key": float64(i)}, rejected: map[string]float64{"rate_limited": float64(i)}}
		for r := range 20 {
			counts := make([]float64, len(bounds))
			for j := range counts {
				counts[j] = float64(i * (j + 1) * 10)
			}
			s.routes["route-"+strconv.Itoa(r)] = &routeSample{requests: counts[len(counts)-1], s5xx: float64(i), bounds: bounds, counts: counts}
		}
		ss = append(ss, s)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(summarize(ss, DefaultWindow)); err != nil {
			b.Fatal(err)
		}
	}
}
