// Package telemetry holds what the gateway tells its operators about
// itself. This file: the Prometheus metrics (docs/monitoring.md lists them).
//
// Nothing here is global: the process builds one registry, NewMetrics
// registers every collector on it, and the gateway passes the *Metrics down.
// Label values are bounded by construction — route and authenticator names
// from the config, and small fixed sets (methods, status classes, reasons) —
// never a path, a header or any other text a client chose.
//
// The request path never looks a series up by its label strings: a route's
// series are resolved when the config is built (Metrics.Route), so recording
// a request is an array index and a few atomic adds.
package telemetry

import (
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// NoRoute is the route label of requests that matched no route (refused
// before routing, or by the router itself).
const NoRoute = "(none)"

// NoAuthenticator is the authenticator label of failures where no
// authenticator of the route found its credential.
const NoAuthenticator = "none"

// BuildInfo is exported as breakwater_build_info. Empty fields are filled
// from the binary's embedded build information.
type BuildInfo struct {
	Version, Commit, GoVersion string
}

// Complete fills the empty fields from the binary's embedded build
// information: the module version (else "dev"), the VCS revision (else
// "unknown") and the Go version.
func (b BuildInfo) Complete() BuildInfo {
	bi, ok := debug.ReadBuildInfo()
	if b.Version == "" {
		b.Version = "dev"
		if ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.Version = bi.Main.Version
		}
	}
	if b.Commit == "" && ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				b.Commit = s.Value
			}
		}
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	if b.GoVersion == "" {
		b.GoVersion = runtime.Version()
	}
	return b
}

// Reject is why the gateway refused a request before it reached an
// upstream (breakwater_rejected_requests_total{reason}). Authentication
// failures have their own metric.
type Reject int

// The fixed set of rejection reasons.
const (
	RejectAmbiguousPath       Reject = iota // 400: pathcanon refused the path
	RejectMalformedTarget                   // 400: request target not in origin form (nor an https absolute form)
	RejectNoRoute                           // 404
	RejectMethodNotAllowed                  // 405
	RejectURITooLong                        // 414
	RejectBodyTooLarge                      // 413 (declared Content-Length over max_body)
	RejectOverloaded                        // 503: max_in_flight reached, or no config
	RejectForbiddenScope                    // 403: authenticated, scopes missing
	RejectForbiddenPolicy                   // 403: authenticated, the route's policy said no (or failed)
	RejectRateLimited                       // 429: a rate limit or quota
	RejectConcurrencyLimited                // 429: a concurrency limit (requests in flight)
	RejectBanned                            // 403: the client is banned (docs/bans.md)
	RejectInvalidRequest                    // 400/413/415: the request does not match its OpenAPI operation
	RejectUndeclaredOperation               // 404: a route with validate_requests, an operation its spec does not declare
	numRejects
)

var rejectNames = [numRejects]string{
	RejectAmbiguousPath:       "ambiguous_path",
	RejectMalformedTarget:     "malformed_target",
	RejectNoRoute:             "no_route",
	RejectMethodNotAllowed:    "method_not_allowed",
	RejectURITooLong:          "uri_too_long",
	RejectBodyTooLarge:        "body_too_large",
	RejectOverloaded:          "overloaded",
	RejectForbiddenScope:      "forbidden_scope",
	RejectForbiddenPolicy:     "forbidden_policy",
	RejectRateLimited:         "rate_limited",
	RejectConcurrencyLimited:  "concurrency_limited",
	RejectBanned:              "banned",
	RejectInvalidRequest:      "invalid_request",
	RejectUndeclaredOperation: "undeclared_operation",
}

func (r Reject) String() string { return rejectNames[r] }

// AuthReason classifies an authentication failure
// (breakwater_auth_failures_total{reason}). The authenticator's own reason
// text goes to the log, never to a label.
type AuthReason int

// The fixed set of authentication failure reasons.
const (
	AuthNoCredential AuthReason = iota // no authenticator of the route found its credential
	AuthUnknownKey                     // a well-formed credential nobody owns
	AuthMalformed                      // a credential that is not well formed (empty, too long, repeated)
	AuthInvalid                        // well formed but not acceptable: bad signature, wrong issuer or audience
	AuthExpired                        // expired or not yet valid
	AuthRevoked                        // revoked before its expiry
	AuthReplayed                       // a signature nonce seen before
	AuthUnavailable                    // a service the check depends on did not answer (JWKS, introspection)
	AuthOther                          // anything else (including authenticator errors)
	numAuthReasons
)

var authReasonNames = [numAuthReasons]string{
	AuthNoCredential: "no_credential",
	AuthUnknownKey:   "unknown_key",
	AuthMalformed:    "malformed",
	AuthInvalid:      "invalid",
	AuthExpired:      "expired",
	AuthRevoked:      "revoked",
	AuthReplayed:     "replayed",
	AuthUnavailable:  "unavailable",
	AuthOther:        "other",
}

func (a AuthReason) String() string { return authReasonNames[a] }

// Methods: the standard ones, anything else is "OTHER".
var methodNames = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "OTHER"}

const numMethods = len(methodNames)

func methodIndex(m string) int {
	switch m {
	case http.MethodGet:
		return 0
	case http.MethodHead:
		return 1
	case http.MethodPost:
		return 2
	case http.MethodPut:
		return 3
	case http.MethodPatch:
		return 4
	case http.MethodDelete:
		return 5
	case http.MethodOptions:
		return 6
	case http.MethodConnect:
		return 7
	case http.MethodTrace:
		return 8
	}
	return 9
}

// Status classes. "other": no status was sent (the exchange was aborted) or
// one outside 200–599.
var classNames = [...]string{"2xx", "3xx", "4xx", "5xx", "other"}

const numClasses = len(classNames)

func classIndex(status int) int {
	if status < 200 || status > 599 {
		return 4
	}
	return status/100 - 2
}

// DurationBuckets suit the gateway: from 100µs (a refusal) to 30s (a slow
// upstream at the default timeout).
var DurationBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// Metrics are the gateway's metrics on one registry. Build one per process
// and keep it across reloads.
type Metrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	upstream     *prometheus.HistogramVec
	reqBytes     *prometheus.CounterVec
	respBytes    *prometheus.CounterVec
	authFailures *prometheus.CounterVec

	rejected     [numRejects]prometheus.Counter
	connRejected map[string]prometheus.Counter // fixed at construction, read-only
	reloadOK     prometheus.Counter
	reloadFailed prometheus.Counter
	bans         map[string]prometheus.Counter // by reason, fixed at construction, read-only
	bansLifted   prometheus.Counter
	banErrors    prometheus.Counter
	handshakes   prometheus.Counter
	rateLimited  *prometheus.CounterVec // by route and limit name (names come from the config)
	targets      *targetsCollector

	inFlight atomic.Pointer[func() int64]
	open     *openConnections

	mu     sync.Mutex // guards routes (config build time only)
	routes map[string]*Route
}

// NewMetrics registers the gateway's metrics, and the standard Go and
// process collectors, on reg.
func NewMetrics(reg prometheus.Registerer, build BuildInfo) (*Metrics, error) {
	build = build.Complete()
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "breakwater_requests_total",
			Help: "Requests served, by route name, method and status class.",
		}, []string{"route", "method", "code_class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "breakwater_request_duration_seconds",
			Help:    "Time from the start of the request to the end of the handler, by route.",
			Buckets: DurationBuckets,
		}, []string{"route"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "breakwater_upstream_duration_seconds",
			Help:    "Time of the upstream round trip, by route (requests that reached an upstream).",
			Buckets: DurationBuckets,
		}, []string{"route"}),
		reqBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "breakwater_request_bytes_total",
			Help: "Request body bytes received, by route (declared Content-Length; chunked bodies are not counted).",
		}, []string{"route"}),
		respBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "breakwater_response_bytes_total",
			Help: "Response body bytes written to clients, by route.",
		}, []string{"route"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "breakwater_auth_failures_total",
			Help: "Authentication failures, by route, authenticator (\"none\" when no credential was found) and reason.",
		}, []string{"route", "authenticator", "reason"}),
		routes: make(map[string]*Route),
		open:   &openConnections{desc: prometheus.NewDesc("breakwater_open_connections", "Connections open now, by listener.", []string{"listener"}, nil)},
	}
	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "breakwater_rejected_requests_total",
		Help: "Requests the gateway refused itself, by reason.",
	}, []string{"reason"})
	for i := range m.rejected {
		m.rejected[i] = rejected.WithLabelValues(rejectNames[i])
	}
	connRejected := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "breakwater_connections_rejected_total",
		Help: "Connections closed at accept because a connection cap was reached, by reason.",
	}, []string{"reason"})
	m.connRejected = map[string]prometheus.Counter{
		"max_connections":        connRejected.WithLabelValues("max_connections"),
		"max_connections_per_ip": connRejected.WithLabelValues("max_connections_per_ip"),
	}
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "breakwater_config_reloads_total",
		Help: "Config reloads, by result (ok or failed). The initial load is not counted.",
	}, []string{"result"})
	m.reloadOK, m.reloadFailed = reloads.WithLabelValues("ok"), reloads.WithLabelValues("failed")
	bans := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "breakwater_bans_total",
		Help: "Clients banned automatically, by reason (auth_failures or client_errors).",
	}, []string{"reason"})
	m.bans = map[string]prometheus.Counter{
		BanAuthFailures: bans.WithLabelValues(BanAuthFailures),
		BanClientErrors: bans.WithLabelValues(BanClientErrors),
	}
	m.bansLifted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "breakwater_bans_lifted_total",
		Help: "Bans lifted by an operator before their end (DELETE /admin/bans/{key}).",
	})
	m.banErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "breakwater_ban_errors_total",
		Help: "Ban decisions the ban store could not record or check (store full or unreachable).",
	})
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "breakwater_build_info",
		Help: "Always 1; the labels say which build is running.",
	}, []string{"version", "commit", "go_version"})
	buildInfo.WithLabelValues(build.Version, build.Commit, build.GoVersion).Set(1)
	inFlight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "breakwater_in_flight_requests",
		Help: "Requests being served now.",
	}, func() float64 {
		if f := m.inFlight.Load(); f != nil {
			return float64((*f)())
		}
		return 0
	})

	m.handshakes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "breakwater_tls_handshake_failures_total",
		Help: "TLS handshakes of the HTTPS listener that failed (protocol or cipher mismatch, bad client certificate, scanners).",
	})
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "breakwater_rate_limited_total",
		Help: "Requests refused by a rate limit or quota, by route and by the limit that refused (RateLimit-Policy names).",
	}, []string{"route", "limit"})
	m.targets = &targetsCollector{
		healthy: prometheus.NewDesc("breakwater_upstream_healthy_targets", "Targets of a route's upstream that are up (active and passive checks).", []string{"route"}, nil),
		total:   prometheus.NewDesc("breakwater_upstream_targets", "Targets of a route's upstream.", []string{"route"}, nil),
	}

	for _, c := range []prometheus.Collector{
		m.requests, m.duration, m.upstream, m.reqBytes, m.respBytes, m.authFailures,
		rejected, connRejected, reloads, bans, m.bansLifted, m.banErrors, buildInfo, inFlight, m.open,
		m.handshakes, m.rateLimited, m.targets,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// HandshakeFailed counts a failed TLS handshake.
func (m *Metrics) HandshakeFailed() { m.handshakes.Inc() }

// RateLimited counts a request refused by the named limit of a route. The
// names are those of the config's limits, so the series are bounded.
func (m *Metrics) RateLimited(route, limit string) { m.rateLimited.WithLabelValues(route, limit).Inc() }

// TargetHealth is one route's upstream health at scrape time.
type TargetHealth struct {
	Route          string
	Healthy, Total int
}

// SetTargetHealth sets where the upstream target gauges are read from at
// scrape time.
func (m *Metrics) SetTargetHealth(f func() []TargetHealth) { m.targets.f.Store(&f) }

// targetsCollector reports the health of the upstream targets of the
// running config when scraped.
type targetsCollector struct {
	healthy, total *prometheus.Desc
	f              atomic.Pointer[func() []TargetHealth]
}

func (c *targetsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.healthy; ch <- c.total }

func (c *targetsCollector) Collect(ch chan<- prometheus.Metric) {
	f := c.f.Load()
	if f == nil {
		return
	}
	for _, t := range (*f)() {
		ch <- prometheus.MustNewConstMetric(c.healthy, prometheus.GaugeValue, float64(t.Healthy), t.Route)
		ch <- prometheus.MustNewConstMetric(c.total, prometheus.GaugeValue, float64(t.Total), t.Route)
	}
}

// SetInFlight sets where breakwater_in_flight_requests is read from at
// scrape time (the gateway's own load-shedding counter: no extra cost per
// request).
func (m *Metrics) SetInFlight(f func() int64) { m.inFlight.Store(&f) }

// AddListener makes breakwater_open_connections{listener=name} report
// open() at scrape time.
func (m *Metrics) AddListener(name string, open func() int) {
	m.open.mu.Lock()
	defer m.open.mu.Unlock()
	m.open.sources = append(m.open.sources, listenerSource{name, open})
}

// ConnectionRejected counts a connection refused at accept; reason is one
// of edge.RejectMaxConnections and edge.RejectMaxConnectionsPerIP (others
// are ignored, so no label can be invented). Safe as edge.LimitListener's
// onReject.
func (m *Metrics) ConnectionRejected(reason string) {
	if c, ok := m.connRejected[reason]; ok {
		c.Inc()
	}
}

// Rejected counts a request the gateway refused for reason.
func (m *Metrics) Rejected(reason Reject) {
	if reason >= 0 && reason < numRejects {
		m.rejected[reason].Inc()
	}
}

// Ban reasons: the counters of the bans section that ban a client, and the
// reason label of breakwater_bans_total.
const (
	BanAuthFailures = "auth_failures"
	BanClientErrors = "client_errors"
)

// Banned counts a new ban; reason is BanAuthFailures or BanClientErrors
// (others are ignored, so no label can be invented).
func (m *Metrics) Banned(reason string) {
	if c, ok := m.bans[reason]; ok {
		c.Inc()
	}
}

// BanLifted counts a ban lifted by an operator.
func (m *Metrics) BanLifted() { m.bansLifted.Inc() }

// BanError counts a ban the store could not record or check.
func (m *Metrics) BanError() { m.banErrors.Inc() }

// Reload counts a config reload.
func (m *Metrics) Reload(ok bool) {
	if ok {
		m.reloadOK.Inc()
	} else {
		m.reloadFailed.Inc()
	}
}

// Route returns the series of the route with this config name (NoRoute for
// requests that matched none). The same name always returns the same
// *Route, so a reload keeps counting into the same series; series of routes
// removed by a reload stay (their counters stop moving) until the process
// restarts. Call it when a config is built, not per request.
func (m *Metrics) Route(name string) *Route {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.routes[name]; ok {
		return r
	}
	r := &Route{
		m:         m,
		name:      name,
		duration:  m.duration.WithLabelValues(name),
		upstream:  m.upstream.WithLabelValues(name),
		reqBytes:  m.reqBytes.WithLabelValues(name),
		respBytes: m.respBytes.WithLabelValues(name),
		auth:      make(map[string]*AuthFailures),
	}
	m.routes[name] = r
	return r
}

// Route holds one route's series. Its methods are safe for concurrent use
// and do not allocate.
type Route struct {
	m         *Metrics
	name      string
	duration  prometheus.Observer
	upstream  prometheus.Observer
	reqBytes  prometheus.Counter
	respBytes prometheus.Counter

	// requests are resolved on first use, so that only method × class
	// combinations that occur are exported (not 50 zero series per route).
	requests [numMethods][numClasses]lazyCounter

	mu   sync.Mutex // guards auth (config build time only)
	auth map[string]*AuthFailures
}

// Request records one finished request: its method, the status sent
// (0: none was), the time since it started, the request body bytes
// declared (negative: unknown) and the response body bytes written.
func (r *Route) Request(method string, status int, elapsed time.Duration, reqBytes, respBytes int64) {
	r.requests[methodIndex(method)][classIndex(status)].get(r, method, status).Inc()
	r.duration.Observe(elapsed.Seconds())
	if reqBytes > 0 {
		r.reqBytes.Add(float64(reqBytes))
	}
	if respBytes > 0 {
		r.respBytes.Add(float64(respBytes))
	}
}

// Upstream records the duration of the upstream round trip.
func (r *Route) Upstream(d time.Duration) { r.upstream.Observe(d.Seconds()) }

// AuthFailures returns the series of authentication failures on this route
// for one authenticator name from the config ("none" when no authenticator
// found a credential). Call it when a config is built.
func (r *Route) AuthFailures(authenticator string) *AuthFailures {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a, ok := r.auth[authenticator]; ok {
		return a
	}
	a := &AuthFailures{}
	for i := range a.c {
		a.c[i] = r.m.authFailures.WithLabelValues(r.name, authenticator, authReasonNames[i])
	}
	r.auth[authenticator] = a
	return a
}

// AuthFailures counts one route × authenticator's failures by reason.
type AuthFailures struct {
	c [numAuthReasons]prometheus.Counter
}

// Inc counts one failure.
func (a *AuthFailures) Inc(reason AuthReason) {
	if reason < 0 || reason >= numAuthReasons {
		reason = AuthOther
	}
	a.c[reason].Inc()
}

// lazyCounter is a child of breakwater_requests_total resolved on first use.
type lazyCounter struct {
	once sync.Once
	c    prometheus.Counter
}

func (l *lazyCounter) get(r *Route, method string, status int) prometheus.Counter {
	l.once.Do(func() {
		l.c = r.m.requests.WithLabelValues(r.name, methodNames[methodIndex(method)], classNames[classIndex(status)])
	})
	return l.c
}

// openConnections reports each listener's open connections at scrape time.
type openConnections struct {
	desc    *prometheus.Desc
	mu      sync.Mutex
	sources []listenerSource
}

type listenerSource struct {
	name string
	open func() int
}

func (o *openConnections) Describe(ch chan<- *prometheus.Desc) { ch <- o.desc }

func (o *openConnections) Collect(ch chan<- prometheus.Metric) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range o.sources {
		ch <- prometheus.MustNewConstMetric(o.desc, prometheus.GaugeValue, float64(s.open()), s.name)
	}
}
