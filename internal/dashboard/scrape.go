package dashboard

import (
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// Series the summary reads (internal/telemetry/metrics.go).
const (
	metricRequests     = "breakwater_requests_total"           // {route, method, code_class}
	metricDuration     = "breakwater_request_duration_seconds" // histogram {route}
	metricAuthFailures = "breakwater_auth_failures_total"      // {route, authenticator, reason}
	metricRejected     = "breakwater_rejected_requests_total"  // {reason}
	maxRoutesScraped   = 1000                                  // routes kept per scrape (label values come from the config)
	maxReasonsScraped  = 100                                   // reasons kept per counter family
	maxBuckets         = 64                                    // histogram buckets read
)

// routeSample is one route's cumulative counters in one scrape.
type routeSample struct {
	requests, s4xx, s5xx float64
	bounds               []float64 // bucket upper bounds, ascending, +Inf last
	counts               []float64 // cumulative counts per bound
}

// scrape is what one Gather returned that the summary uses.
type scrape struct {
	at       time.Time
	routes   map[string]*routeSample
	auth     map[string]float64 // auth failures by reason (all routes and authenticators)
	rejected map[string]float64 // rejections by reason
}

// scrapeRing keeps the last ScrapeHistory scrapes.
type scrapeRing struct {
	mu   sync.Mutex
	ring []*scrape  // oldest first
	busy sync.Mutex // one Gather at a time
}

// add appends s, dropping the oldest beyond ScrapeHistory.
func (sr *scrapeRing) add(s *scrape) {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	if n := len(sr.ring); n > 0 && !s.at.After(sr.ring[n-1].at) {
		return // the clock did not move: keep the older one
	}
	if len(sr.ring) >= ScrapeHistory {
		copy(sr.ring, sr.ring[1:])
		sr.ring = sr.ring[:len(sr.ring)-1]
	}
	sr.ring = append(sr.ring, s)
}

// snapshot returns the scrapes, oldest first (shared: read only).
func (sr *scrapeRing) snapshot() []*scrape {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	return slices.Clone(sr.ring)
}

func (sr *scrapeRing) last() time.Time {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	if len(sr.ring) == 0 {
		return time.Time{}
	}
	return sr.ring[len(sr.ring)-1].at
}

// scrapeNow gathers the metrics at now unless the last scrape is less than
// ScrapeInterval old (minus a little slack for ticker jitter).
func (d *Dashboard) scrapeNow() {
	if d.o.Metrics == nil {
		return
	}
	d.scrapes.busy.Lock()
	defer d.scrapes.busy.Unlock()
	now := d.now()
	if last := d.scrapes.last(); !last.IsZero() && now.Sub(last) < d.interval-d.interval/5 {
		return
	}
	mfs, err := d.o.Metrics.Gather()
	if err != nil && len(mfs) == 0 {
		d.log.Warn("dashboard: gathering metrics", "err", err)
		return
	}
	d.scrapes.add(parseFamilies(mfs, now))
}

// ensureScraping starts the scrape loop unless it runs: it scrapes every
// ScrapeInterval while a session is alive and ends when none is.
func (d *Dashboard) ensureScraping() {
	if d.o.Metrics == nil || d.ctx.Err() != nil {
		return
	}
	d.loopMu.Lock()
	defer d.loopMu.Unlock()
	if d.looping {
		return
	}
	d.looping = true
	go d.scrapeLoop()
}

// scrapeLoop scrapes every interval; the first scrape is the page's own
// (the summary API scrapes when the last scrape is old), so the loop does
// not race it.
func (d *Dashboard) scrapeLoop() {
	t := time.NewTicker(d.interval)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			d.stopLoop()
			return
		case <-t.C:
		}
		d.loopMu.Lock()
		if !d.sessions.active(d.now(), d.tokenHash()) {
			d.looping = false
			d.loopMu.Unlock()
			return
		}
		d.loopMu.Unlock()
		d.scrapeNow()
	}
}

func (d *Dashboard) stopLoop() {
	d.loopMu.Lock()
	d.looping = false
	d.loopMu.Unlock()
}

// parseFamilies keeps what the summary needs of one Gather.
func parseFamilies(mfs []*dto.MetricFamily, at time.Time) *scrape {
	s := &scrape{at: at, routes: map[string]*routeSample{}, auth: map[string]float64{}, rejected: map[string]float64{}}
	route := func(name string) *routeSample {
		r := s.routes[name]
		if r == nil && len(s.routes) < maxRoutesScraped {
			r = &routeSample{}
			s.routes[name] = r
		}
		return r
	}
	addTo := func(m map[string]float64, k string, v float64) {
		if _, ok := m[k]; ok || len(m) < maxReasonsScraped {
			m[k] += v
		}
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case metricRequests:
			for _, m := range mf.GetMetric() {
				r := route(label(m, "route"))
				if r == nil {
					continue
				}
				v := m.GetCounter().GetValue()
				r.requests += v
				switch label(m, "code_class") {
				case "4xx":
					r.s4xx += v
				case "5xx":
					r.s5xx += v
				}
			}
		case metricDuration:
			for _, m := range mf.GetMetric() {
				h := m.GetHistogram()
				if h == nil {
					continue
				}
				r := route(label(m, "route"))
				if r == nil {
					continue
				}
				bs := h.GetBucket()
				if len(bs) > maxBuckets {
					bs = bs[:maxBuckets]
				}
				r.bounds = make([]float64, 0, len(bs)+1)
				r.counts = make([]float64, 0, len(bs)+1)
				for _, b := range bs {
					if math.IsInf(b.GetUpperBound(), +1) {
						continue
					}
					r.bounds = append(r.bounds, b.GetUpperBound())
					r.counts = append(r.counts, float64(b.GetCumulativeCount()))
				}
				r.bounds = append(r.bounds, math.Inf(+1))
				r.counts = append(r.counts, float64(h.GetSampleCount()))
			}
		case metricAuthFailures:
			for _, m := range mf.GetMetric() {
				addTo(s.auth, label(m, "reason"), m.GetCounter().GetValue())
			}
		case metricRejected:
			for _, m := range mf.GetMetric() {
				addTo(s.rejected, label(m, "reason"), m.GetCounter().GetValue())
			}
		}
	}
	return s
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// Quantile estimates the q-quantile (0 ≤ q ≤ 1) of observations counted in
// cumulative histogram buckets, as Prometheus' histogram_quantile does:
// linear interpolation inside the bucket the rank falls in, the first
// bucket starting at 0 (or at its bound when that is negative), and the
// highest finite bound when the rank falls in the +Inf bucket. bounds are
// ascending upper bounds (the last may be +Inf); counts are cumulative.
// It returns NaN when there are no observations or the input is unusable.
func Quantile(q float64, bounds, counts []float64) float64 {
	n := len(bounds)
	if n == 0 || n != len(counts) || math.IsNaN(q) || q < 0 || q > 1 {
		return math.NaN()
	}
	for i := 1; i < n; i++ {
		if counts[i] < counts[i-1] {
			// Buckets scraped while being written can disagree a little:
			// like Prometheus, take the running maximum.
			fixed := slices.Clone(counts)
			for j := i; j < n; j++ {
				fixed[j] = max(fixed[j], fixed[j-1])
			}
			counts = fixed
			break
		}
	}
	total := counts[n-1]
	if !(total > 0) {
		return math.NaN()
	}
	rank := q * total
	i, _ := slices.BinarySearchFunc(counts, rank, func(c, r float64) int {
		if c < r {
			return -1
		}
		return 1 // first index with counts[i] >= rank
	})
	if i >= n {
		i = n - 1
	}
	if math.IsInf(bounds[i], +1) {
		if i == 0 {
			return math.NaN()
		}
		return bounds[i-1]
	}
	lower, prev := 0.0, 0.0
	if i > 0 {
		lower, prev = bounds[i-1], counts[i-1]
	} else if bounds[0] < 0 {
		return bounds[0]
	}
	inBucket := counts[i] - prev
	if !(inBucket > 0) {
		return bounds[i]
	}
	return lower + (bounds[i]-lower)*(rank-prev)/inBucket
}

// num is a float64 that marshals NaN and ±Inf as null.
type num float64

// MarshalJSON writes the number, or null.
func (n num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', 6, 64), nil
}

// RouteStats is one route's traffic over the summary's window.
type RouteStats struct {
	Route     string `json:"route"`
	Rate      num    `json:"requests_per_second"`
	ErrorRate num    `json:"error_rate"`        // 5xx / requests (null without requests)
	Rate4xx   num    `json:"client_error_rate"` // 4xx / requests
	P50       num    `json:"p50_seconds"`
	P95       num    `json:"p95_seconds"`
	P99       num    `json:"p99_seconds"`
	Requests  num    `json:"requests"` // in the window
}

// RouteSeries holds one route's points, one per interval between scrapes.
type RouteSeries struct {
	Rate      []num `json:"rps"`
	ErrorRate []num `json:"error_rate"`
	P50       []num `json:"p50"`
	P95       []num `json:"p95"`
	P99       []num `json:"p99"`
}

// Count is a named counter: its increase over the window and its total.
type Count struct {
	Name   string `json:"name"`
	Window num    `json:"window"`
	Total  num    `json:"total"`
}

// Summary is the body of GET /dashboard/api/summary.
type Summary struct {
	Time          time.Time              `json:"time"`
	WindowSeconds num                    `json:"window_seconds"` // what the stats cover (less than asked when history is short)
	Routes        []RouteStats           `json:"routes"`
	Times         []int64                `json:"times"` // Unix seconds of the series' points
	Series        map[string]RouteSeries `json:"series"`
	AuthFailures  []Count                `json:"auth_failures"`
	Rejections    []Count                `json:"rejections"`
	TopConsumers  []Consumer             `json:"top_consumers"`
}

// summarize computes the summary over the last window of the scrapes
// (oldest first).
func summarize(ss []*scrape, window time.Duration) Summary {
	out := Summary{Routes: []RouteStats{}, Times: []int64{}, Series: map[string]RouteSeries{},
		AuthFailures: []Count{}, Rejections: []Count{}, WindowSeconds: num(math.NaN())}
	if len(ss) == 0 {
		return out
	}
	last := ss[len(ss)-1]
	out.Time = last.at.UTC()
	// The baseline: the newest scrape at least window older than the last,
	// else the oldest there is.
	base := ss[0]
	for _, s := range ss[:len(ss)-1] {
		if last.at.Sub(s.at) >= window {
			base = s
		}
	}
	dt := last.at.Sub(base.at).Seconds()
	if base != last {
		out.WindowSeconds = num(dt)
	}
	names := make([]string, 0, len(last.routes))
	for n := range last.routes {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		st := RouteStats{Route: n}
		cur, old := last.routes[n], base.routes[n]
		if base == last {
			nan := num(math.NaN())
			st.Rate, st.ErrorRate, st.Rate4xx, st.P50, st.P95, st.P99, st.Requests = nan, nan, nan, nan, nan, nan, nan
		} else {
			st.Rate, st.ErrorRate, st.Rate4xx, st.Requests, st.P50, st.P95, st.P99 = between(old, cur, dt)
		}
		out.Routes = append(out.Routes, st)
	}
	// Series over the whole history.
	for i := 1; i < len(ss); i++ {
		out.Times = append(out.Times, ss[i].at.Unix())
	}
	for _, n := range names {
		var rs RouteSeries
		for i := 1; i < len(ss); i++ {
			rate, errs, _, _, p50, p95, p99 := between(ss[i-1].routes[n], ss[i].routes[n], ss[i].at.Sub(ss[i-1].at).Seconds())
			rs.Rate = append(rs.Rate, rate)
			rs.ErrorRate = append(rs.ErrorRate, errs)
			rs.P50 = append(rs.P50, p50)
			rs.P95 = append(rs.P95, p95)
			rs.P99 = append(rs.P99, p99)
		}
		if rs.Rate == nil {
			rs = RouteSeries{Rate: []num{}, ErrorRate: []num{}, P50: []num{}, P95: []num{}, P99: []num{}}
		}
		out.Series[n] = rs
	}
	out.AuthFailures = counts(base.auth, last.auth, base == last)
	out.Rejections = counts(base.rejected, last.rejected, base == last)
	return out
}

// between computes a route's rates and percentiles from two scrapes dt
// seconds apart (old may be nil: a route that appeared since).
func between(old, cur *routeSample, dt float64) (rate, errRate, rate4xx, reqs, p50, p95, p99 num) {
	nan := num(math.NaN())
	if cur == nil || !(dt > 0) {
		return nan, nan, nan, nan, nan, nan, nan
	}
	if old == nil {
		old = &routeSample{}
	}
	d := func(a, b float64) float64 {
		if b < a { // a counter reset: count from zero
			return b
		}
		return b - a
	}
	n := d(old.requests, cur.requests)
	rate, reqs = num(n/dt), num(n)
	errRate, rate4xx = nan, nan
	if n > 0 {
		errRate, rate4xx = num(d(old.s5xx, cur.s5xx)/n), num(d(old.s4xx, cur.s4xx)/n)
	}
	p50, p95, p99 = nan, nan, nan
	if len(cur.counts) > 0 {
		delta := make([]float64, len(cur.counts))
		sameBuckets := slices.Equal(old.bounds, cur.bounds)
		reset := false
		for i, c := range cur.counts {
			if sameBuckets {
				delta[i] = c - old.counts[i]
				reset = reset || delta[i] < 0
			} else {
				delta[i] = c
			}
		}
		if reset {
			copy(delta, cur.counts)
		}
		p50 = num(Quantile(0.50, cur.bounds, delta))
		p95 = num(Quantile(0.95, cur.bounds, delta))
		p99 = num(Quantile(0.99, cur.bounds, delta))
	}
	return rate, errRate, rate4xx, reqs, p50, p95, p99
}

// counts lists the named counters of the last scrape, with their increase
// since base, sorted by name.
func counts(base, last map[string]float64, same bool) []Count {
	out := make([]Count, 0, len(last))
	for k, v := range last {
		c := Count{Name: k, Total: num(v), Window: num(math.NaN())}
		if !same {
			w := v - base[k]
			if w < 0 {
				w = v
			}
			c.Window = num(w)
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Count) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}
