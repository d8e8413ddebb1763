// Package gateway assembles the request path of SPEC §3 from a config and
// swaps it atomically on reload. The whole pipeline reads top to bottom in
// ServeHTTP; every stage that is not configured is a pass-through.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/breakwater/breakwater/internal/authn"
	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/inventory"
	"github.com/breakwater/breakwater/internal/pathcanon"
	"github.com/breakwater/breakwater/internal/problem"
	"github.com/breakwater/breakwater/internal/ratelimit"
	"github.com/breakwater/breakwater/internal/redisconn"
	"github.com/breakwater/breakwater/internal/reqctx"
	"github.com/breakwater/breakwater/internal/state"
	"github.com/breakwater/breakwater/internal/telemetry"
	"github.com/breakwater/breakwater/internal/tokens"
	"github.com/breakwater/breakwater/internal/tracing"
	"github.com/prometheus/client_golang/prometheus"
)

// Gateway serves the HTTPS listener. Its configuration can be replaced at
// any time with Apply; requests in flight finish on the config they started with.
type Gateway struct {
	logger   *slog.Logger
	access   *slog.Logger
	ctx      context.Context // bounds background work (health checks)
	metrics  *telemetry.Metrics
	events   *telemetry.Events
	limiter  ratelimit.Store // outlives reloads: a reload does not reset limits
	nonces   state.Nonces
	revoked  state.Revocations
	inv      *inventory.Inventory // nil: no traffic inventory
	bans     state.Bans           // the ban store given in Deps (nil: embedded)
	redis    *redisconn.Conn      // nil: no shared store; signing keys are shared through it
	tracer   *tracing.Tracer      // nil: no tracing
	observer interface {
		Observe(consumer string, status int)
	}

	// From monitoring, set by apply: the access log sampler (nil: log
	// every request) and the anomaly detector (nil: off), which keeps its
	// baselines across reloads that do not change its settings.
	sampler     atomic.Pointer[telemetry.Sampler]
	anomaly     atomic.Pointer[telemetry.AnomalyDetector]
	anomalyConf *config.Anomaly  // under mu
	noRoute     *telemetry.Route // series of requests that matched no route

	mu      sync.Mutex // serialises Apply
	current atomic.Pointer[snapshot]
	jwks    *keySets // identity providers' key sets of the running config (under mu)

	keysMu   sync.Mutex
	keys     *tokens.KeyRing // access token signing keys, opened on first use
	identity *tokens.KeyRing // X-Gateway-Identity signing keys (Ed25519), opened on first use

	inFlight atomic.Int64

	reloadsOK     atomic.Int64
	reloadsFailed atomic.Int64
}

// Stats are counters an operator can read (admin API, metrics).
type Stats struct {
	InFlight      int64
	ReloadsOK     int64
	ReloadsFailed int64
}

// Deps are what a gateway reports to. Every field may be nil: a nil Logger
// or Access discards, nil Metrics records into a registry nobody scrapes,
// nil Events keeps a ring nobody reads (tests, embedding).
type Deps struct {
	Logger  *slog.Logger // operational log
	Access  *slog.Logger // access log
	Metrics *telemetry.Metrics
	Events  *telemetry.Events
	// Limiter decides rate limits and quotas. Nil: an embedded store.
	Limiter ratelimit.Store
	// Inventory counts traffic per route and operation (nil: none).
	Inventory *inventory.Inventory
	// Bans holds automatic bans (nil: an embedded store).
	Bans state.Bans
	// Redis is the shared store's connection (nil: embedded only); the
	// signing keys are shared through it.
	Redis *redisconn.Conn
	// Tracer exports OpenTelemetry spans (nil: no tracing).
	Tracer *tracing.Tracer
	// Observer sees the consumer and status of every request (the
	// dashboard's top consumers); nil: none.
	Observer interface {
		Observe(consumer string, status int)
	}
	// Nonces and Revocations are the shared security state (signature
	// nonces, revoked access tokens). Nil: an embedded store.
	Nonces      state.Nonces
	Revocations state.Revocations
}

// New returns a gateway serving cfg. Background work stops when ctx ends.
func New(ctx context.Context, cfg *config.Config, d Deps) (*Gateway, error) {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	m := d.Metrics
	if m == nil {
		var err error
		if m, err = telemetry.NewMetrics(prometheus.NewRegistry(), telemetry.BuildInfo{}); err != nil {
			return nil, err
		}
	}
	if d.Events == nil {
		d.Events = telemetry.NewEvents(telemetry.EventsOptions{})
	}
	if d.Limiter == nil {
		d.Limiter = ratelimit.NewMemory(ratelimit.MemoryOptions{})
	}
	if d.Nonces == nil || d.Revocations == nil {
		m := state.NewMemory(state.MemoryOptions{})
		d.Nonces, d.Revocations = m, m
	}
	g := &Gateway{logger: d.Logger, access: d.Access, ctx: ctx, metrics: m, events: d.Events, limiter: d.Limiter,
		nonces: d.Nonces, revoked: d.Revocations, inv: d.Inventory, bans: d.Bans, redis: d.Redis, tracer: d.Tracer, observer: d.Observer, noRoute: m.Route(telemetry.NoRoute)}
	g.jwks = newKeySets(ctx, d.Logger)
	m.SetInFlight(g.inFlight.Load)
	m.SetTargetHealth(g.targetHealth)
	// The initial load is not a reload: it is not counted.
	if err := g.apply(cfg); err != nil {
		return nil, err
	}
	return g, nil
}

// Apply builds cfg and, if that succeeds, makes it the running config. On
// error the running config stays in force. Either way it counts a reload.
func (g *Gateway) Apply(cfg *config.Config) error {
	err := g.apply(cfg)
	g.countReload(err)
	return err
}

func (g *Gateway) apply(cfg *config.Config) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	jwks := g.jwks.next()
	s, err := g.build(cfg, jwks)
	if err != nil {
		jwks.discard(g.jwks)
		return err
	}
	jwks.release()
	g.jwks = jwks
	if g.inv != nil {
		g.inv.Configure(inventoryRoutes(s))
	}
	g.monitoring(cfg)
	s.activate(g.ctx)
	old := g.current.Swap(s)
	if old != nil {
		old.close()
	}
	return nil
}

// countReload counts a reload (err == nil: applied) in /admin/stats and in
// the metrics, and records it as a security event.
func (g *Gateway) countReload(err error) {
	ev := telemetry.Event{Kind: telemetry.EventConfigReload}
	if err == nil {
		g.reloadsOK.Add(1)
	} else {
		g.reloadsFailed.Add(1)
		ev.Kind, ev.Reason = telemetry.EventConfigReloadFailed, firstLine(err.Error())
	}
	g.metrics.Reload(err == nil)
	g.events.Emit(ev)
}

// Events returns the gateway's security events.
func (g *Gateway) Events() *telemetry.Events { return g.events }

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " (and more)"
	}
	return s
}

// Metrics returns the metrics the gateway records into.
func (g *Gateway) Metrics() *telemetry.Metrics { return g.metrics }

// Config returns the running config.
func (g *Gateway) Config() *config.Config {
	if s := g.current.Load(); s != nil {
		return s.cfg
	}
	return nil
}

// Stats returns the gateway's counters.
func (g *Gateway) Stats() Stats {
	return Stats{InFlight: g.inFlight.Load(), ReloadsOK: g.reloadsOK.Load(), ReloadsFailed: g.reloadsFailed.Load()}
}

// Close stops background work of the running config.
func (g *Gateway) Close() {
	if s := g.current.Swap(nil); s != nil {
		s.close()
	}
}

// ServeHTTP is the request path of the HTTPS listener.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := g.current.Load()
	x := &exchange{rec: recorder{ResponseWriter: w}, metrics: g.noRoute, snap: s} // one allocation for all
	st, rec := &x.st, &x.rec
	st.Start = time.Now()
	r = reqctx.With(r, st)
	defer g.finish(x, r)
	if s == nil {
		g.refuse(rec, r, st, http.StatusServiceUnavailable, telemetry.RejectOverloaded, "no configuration")
		return
	}

	// Who is asking: the peer, and the client a trusted proxy speaks for.
	st.Peer = peerAddr(r.RemoteAddr)
	st.PeerTrusted = len(s.trusted) > 0 && s.trusted.contains(st.Peer)
	st.ClientIP = s.trusted.clientIP(st.Peer, r.Header)
	st.PeerText = st.Peer.String()
	st.ClientIPText = st.PeerText
	if st.ClientIP != st.Peer {
		st.ClientIPText = st.ClientIP.String()
	}
	st.RequestID = requestID(st.PeerTrusted, r.Header.Get("X-Request-Id"))
	if g.tracer != nil {
		// A traceparent is continued only from a trusted proxy.
		ctx, span := g.tracer.StartRequest(g.tracer.Extract(r.Context(), r.Header, st.PeerTrusted), r.Method, st.RequestID)
		r = r.WithContext(ctx)
		defer func() {
			span.SetRoute(st.Route)
			span.SetStatus(rec.status)
			if st.Reason != "" {
				span.Fail(st.Reason)
			}
			span.End()
		}()
	}

	// Shared, read-only value slices: no allocation per request.
	h := rec.Header()
	h["X-Request-Id"] = []string{st.RequestID}
	h["X-Content-Type-Options"] = nosniff
	if s.hsts != "" {
		h["Strict-Transport-Security"] = s.hstsValue
	}

	// Load shedding: above max_in_flight, refuse at once rather than queue.
	if n := g.inFlight.Add(1); n > s.maxInFlight {
		g.inFlight.Add(-1)
		h.Set("Retry-After", "1")
		g.refuse(rec, r, st, http.StatusServiceUnavailable, telemetry.RejectOverloaded, "max_in_flight")
		return
	}
	defer g.inFlight.Add(-1)

	// Banned clients are refused before anything else is looked at; the
	// answers of the others count toward bans (bans.go).
	if g.banned(s, rec, r, st) {
		return
	}
	defer g.watch(s, st, rec)

	// One canonical path for everything below.
	if len(r.RequestURI) > s.maxURI {
		g.refuse(rec, r, st, http.StatusRequestURITooLong, telemetry.RejectURITooLong, "request target too long")
		return
	}
	raw, ok := rawPath(r)
	if !ok {
		g.refuse(rec, r, st, http.StatusBadRequest, telemetry.RejectMalformedTarget, "request target not in origin form")
		return
	}
	p, wire, err := pathcanon.Canonical(raw)
	if err != nil {
		if errors.Is(err, pathcanon.ErrTooLong) { // a fixed bound, whatever max_uri_bytes says
			g.refuse(rec, r, st, http.StatusRequestURITooLong, telemetry.RejectURITooLong, "path too long")
			return
		}
		reason := "ambiguous path"
		if pe, ok := err.(*pathcanon.Error); ok {
			reason += ": " + pe.Reason
		}
		g.refuse(rec, r, st, http.StatusBadRequest, telemetry.RejectAmbiguousPath, reason)
		return
	}
	st.Path, st.EscapedPath = p, wire

	// What the gateway answers itself: CORS preflights, the documentation
	// portal, its public keys and OAuth2.
	if s.cors != nil && s.cors.Handle(rec, r) {
		return
	}
	if s.portal != nil && s.portal.Handles(p) {
		g.servePortal(s, x, rec, r, st)
		return
	}
	if p == tokens.JWKSPath && len(s.jwks.rings) > 0 {
		st.Route, x.metrics = oauthRoute, s.oauthMetrics
		s.jwks.ServeHTTP(rec, r)
		return
	}
	if s.tokens != nil && s.tokens.Handles(p) {
		st.Route, x.metrics = oauthRoute, s.oauthMetrics
		s.tokens.ServeHTTP(rec, r)
		return
	}

	// Route.
	m := s.router.Match(r.Host, p, r.Method, st.ParamBuf[:0])
	switch m.Status {
	case http.StatusNotFound:
		g.refuse(rec, r, st, http.StatusNotFound, telemetry.RejectNoRoute, "no route")
		return
	case http.StatusMethodNotAllowed:
		h.Set("Allow", m.Allow)
		g.refuse(rec, r, st, http.StatusMethodNotAllowed, telemetry.RejectMethodNotAllowed, "method not allowed")
		return
	}
	rt := &s.routes[m.Route]
	st.Route, st.Params = rt.name, m.Params
	x.metrics = rt.metrics
	if rt.spec != nil {
		// The spec operation, found for every request of the route (the
		// inventory counts refused ones too; validation comes later).
		if op := rt.spec.v.Operation(r.Method, p); op != nil {
			st.Operation = op
		}
	}

	// Bound the body before anything reads it (a signature authenticator
	// may, to check its digest). A body declared too large is refused after
	// authentication, so the route's limit is not told to strangers.
	if r.Body != nil && r.Body != http.NoBody {
		x.body = bodyLimit{ReadCloser: http.MaxBytesReader(rec, r.Body, rt.maxBody), tooLarge: &x.bodyTooLarge}
		r.Body = &x.body
	}

	// Authenticate: the first authenticator that finds its credential decides.
	if !rt.public {
		_, span := g.tracer.StartAuthenticate(r.Context())
		outcome := g.authenticate(rt, r, st)
		span.End()
		switch outcome {
		case authOK:
		case authBodyTooLarge:
			g.refuseBody(rec, r, st)
			return
		default:
			problem.Unauthorized(rec, r, rt.challenge)
			return
		}
		if !st.Consumer.HasScopes(rt.scopes) {
			g.refuse(rec, r, st, http.StatusForbidden, telemetry.RejectForbiddenScope, "missing scope")
			return
		}
		if rt.policy != nil && !g.allowedByPolicy(rt, r, st) {
			g.refuse(rec, r, st, http.StatusForbidden, telemetry.RejectForbiddenPolicy, st.Reason)
			return
		}
	}

	// Rate limits and quotas of the consumer and of the route, all together.
	_, span := g.tracer.StartLimits(r.Context())
	held, ok := g.limit(s, rt, rec, r, st)
	span.End()
	defer held.release() // concurrency slots, given back when the request is done
	if !ok {
		return
	}

	if r.ContentLength > rt.maxBody {
		g.refuseBody(rec, r, st)
		return
	}

	// The request against its OpenAPI operation.
	if rt.spec != nil {
		_, span := g.tracer.StartValidate(r.Context())
		ok := g.checkOperation(rt, rec, r, st)
		span.End()
		if !ok {
			return
		}
	}

	// The gateway vouches for the consumer to the upstream.
	if rt.identity {
		tok, err := s.identity.Identity(st.Consumer, rt.name, st.RequestID)
		if err != nil {
			g.logger.Error("X-Gateway-Identity not signed", "route", rt.name, "request_id", st.RequestID, "err", err.Error())
			g.refuse(rec, r, st, http.StatusServiceUnavailable, telemetry.RejectOverloaded, "identity signing failed")
			return
		}
		st.Identity = tok
	}

	if g.tracer != nil {
		ctx, span := g.tracer.StartUpstream(r.Context())
		g.tracer.Inject(ctx, r.Header)
		rt.upstream.ServeHTTP(rec, r.WithContext(ctx))
		span.SetUpstream(st.Upstream)
		span.End()
		return
	}
	rt.upstream.ServeHTTP(rec, r)
}

// refuse answers a request the gateway will not serve. The reason goes to
// the access log, the metrics and — for refusals that say something about
// the client — the security events; the client gets only the status.
func (g *Gateway) refuse(w http.ResponseWriter, r *http.Request, st *reqctx.State, status int, why telemetry.Reject, reason string) {
	g.refuseDetail(w, r, st, status, why, reason, "")
}

// refuseDetail is refuse with a detail for the client: only text that is
// safe to show (it never echoes what the client sent).
func (g *Gateway) refuseDetail(w http.ResponseWriter, r *http.Request, st *reqctx.State, status int, why telemetry.Reject, reason, detail string) {
	st.Reason = reason
	g.metrics.Rejected(why)
	if kind := rejectEvent(why); kind != "" {
		g.emit(st, kind)
	}
	if detail == "" {
		problem.Write(w, r, status)
	} else {
		problem.WriteDetail(w, r, status, detail)
	}
}

// emit records a security event about the request.
func (g *Gateway) emit(st *reqctx.State, kind telemetry.EventKind) {
	ev := telemetry.Event{Kind: kind, RequestID: st.RequestID, Route: st.Route, Authenticator: st.Authenticator, Reason: st.Reason}
	if st.ClientIP.IsValid() {
		ev.ClientIP = st.ClientIPText
	}
	if st.Consumer != nil {
		ev.Consumer = st.Consumer.ID
	}
	g.events.Emit(ev)
}

// refuseBody answers 413 to a body larger than the route's max_body.
func (g *Gateway) refuseBody(w http.ResponseWriter, r *http.Request, st *reqctx.State) {
	w.Header().Set("Connection", "close")
	g.refuse(w, r, st, http.StatusRequestEntityTooLarge, telemetry.RejectBodyTooLarge, "body too large")
}

// authOutcome is how authentication ended.
type authOutcome uint8

const (
	authOK authOutcome = iota
	authFailed
	authBodyTooLarge // an authenticator read the body (signature digest) and it passed max_body
)

func (g *Gateway) authenticate(rt *route, r *http.Request, st *reqctx.State) authOutcome {
	for i, a := range rt.auth {
		c, err := a.Authenticate(r)
		if errors.Is(err, authn.ErrNoCredential) {
			continue
		}
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			st.Authenticator = rt.authNames[i]
			return authBodyTooLarge
		}
		if err != nil {
			var f *authn.Failure
			reason := telemetry.AuthOther
			if errors.As(err, &f) {
				st.Reason = f.Reason
				reason = authReason(f.Kind)
			} else {
				st.Reason = "authenticator error"
				g.logger.Error("authenticator failed", "route", rt.name, "request_id", st.RequestID, "err", err)
			}
			st.Authenticator = rt.authNames[i]
			rt.authFailures[i].Inc(reason)
			g.emit(st, telemetry.EventAuthFailure)
			return authFailed
		}
		st.Consumer = c
		st.Authenticator = rt.authNames[i]
		if s, ok := a.(authn.Stripper); ok {
			s.Strip(r)
		}
		return authOK
	}
	st.Reason = "no credential"
	rt.noCredential.Inc(telemetry.AuthNoCredential)
	g.emit(st, telemetry.EventAuthFailure)
	return authFailed
}

// rawPath returns the escaped path of the request target exactly as the
// client sent it, so that the canonical path is computed from the wire form
// and not from the standard library's own decoding.
func rawPath(r *http.Request) (string, bool) {
	u := r.RequestURI
	if !strings.HasPrefix(u, "/") {
		// Absolute form (RFC 9112 §3.2.2): the authority replaces Host, which
		// the standard library already did (r.Host), so routing sees one host
		// only. The path is cut from the target as sent: r.URL's own encoding
		// could turn an encoded "/" into a real one.
		const scheme = "https://"
		if len(u) < len(scheme) || !strings.EqualFold(u[:len(scheme)], scheme) {
			return "", false
		}
		rest := u[len(scheme):]
		i := strings.IndexAny(rest, "/?")
		if i < 0 || rest[i] == '?' {
			return "/", true
		}
		u = rest[i:]
	}
	if i := strings.IndexByte(u, '?'); i >= 0 {
		u = u[:i]
	}
	return u, true
}

// exchange holds the per-request values that live as long as the request.
type exchange struct {
	st      reqctx.State
	rec     recorder
	snap    *snapshot        // the config the request is served by (nil: none loaded)
	metrics *telemetry.Route // the matched route's series, or the gateway's "none"
	body    bodyLimit
	// bodyTooLarge is set when the body passed max_body while streaming
	// (read by the transport's goroutine, hence atomic).
	bodyTooLarge atomic.Bool
}

// bodyLimit is a request body under http.MaxBytesReader that remembers
// whether the limit was hit.
type bodyLimit struct {
	io.ReadCloser
	tooLarge *atomic.Bool
}

func (b *bodyLimit) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var mbe *http.MaxBytesError
	if err != nil && errors.As(err, &mbe) {
		b.tooLarge.Store(true)
	}
	return n, err
}

var nosniff = []string{"nosniff"}

const requestIDAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

// requestID keeps a trusted proxy's well-formed id, or makes a new one: 120
// random bits from the runtime's ChaCha8 generator (seeded from the OS; ids
// must be unique, not secret), in 24 base32 characters.
func requestID(trusted bool, incoming string) string {
	if trusted && validRequestID(incoming) {
		return incoming
	}
	var b [24]byte
	hi, lo := rand.Uint64(), rand.Uint64()
	for i := range 12 {
		b[i] = requestIDAlphabet[hi&31]
		hi >>= 5
		b[12+i] = requestIDAlphabet[lo&31]
		lo >>= 5
	}
	return string(b[:])
}

func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// finish recovers from a panic in the request path, records the request's
// metrics and writes the access log.
func (g *Gateway) finish(x *exchange, r *http.Request) {
	rec, st := &x.rec, &x.st
	if v := recover(); v != nil {
		if v == http.ErrAbortHandler {
			g.record(x, r, true)
			panic(v)
		}
		st.Reason = "internal error"
		g.logger.Error("panic in request path", "request_id", st.RequestID, "panic", fmt.Sprint(v))
		if !rec.wroteHeader {
			problem.Write(rec, r, http.StatusInternalServerError)
		}
	}
	if x.bodyTooLarge.Load() {
		// A body of unknown length grew past max_body while streaming: the
		// proxy answered 413; count it like the 413 decided up front.
		g.metrics.Rejected(telemetry.RejectBodyTooLarge)
		g.emit(st, telemetry.EventBodyTooLarge)
	}
	g.record(x, r, false)
	g.inventory(x, r)
	g.observe(x)
	var params []string
	if x.snap != nil {
		params = x.snap.credentialParams
	}
	g.logAccess(rec, r, st, params)
}

// record adds the request to its route's series. A handler that returned
// without writing gets net/http's implicit 200; an aborted exchange that
// sent no status is class "other".
func (g *Gateway) record(x *exchange, r *http.Request, aborted bool) {
	status := x.rec.status
	if !x.rec.wroteHeader {
		status = http.StatusOK
		if aborted {
			status = 0
		}
	}
	x.metrics.Request(r.Method, status, time.Since(x.st.Start), r.ContentLength, x.rec.bytes)
	if x.st.Upstream != "" {
		x.metrics.Upstream(x.st.UpstreamDuration)
	}
}

// targetHealth reports the upstream health of the running config's routes.
func (g *Gateway) targetHealth() []telemetry.TargetHealth {
	s := g.current.Load()
	if s == nil {
		return nil
	}
	out := make([]telemetry.TargetHealth, len(s.routes))
	for i := range s.routes {
		up := s.routes[i].upstream
		out[i] = telemetry.TargetHealth{Route: s.routes[i].name, Healthy: up.Healthy(), Total: up.Targets()}
	}
	return out
}
