// Package dashboard serves the operator dashboard on the admin listener
// under /dashboard/: a sign-in page for the admin token, then a single page
// app (embedded HTML, CSS, JS and a vendored uPlot) that polls JSON
// endpoints under /dashboard/api/ every 5 s: traffic, errors and latency
// percentiles per route, authentication failures, rejections, top
// consumers, the security event feed, the inventory, the audit findings and
// the running config (redacted). docs/dashboard.md describes it.
//
// The dashboard does its own authentication (the admin listener's bearer
// token check must let /dashboard/ through): a browser cannot send an
// Authorization header from a form, and the token must never be in a URL.
// Sign-in trades the admin token for a random session id in an HttpOnly,
// SameSite=Strict cookie; the server keeps only the id's SHA-256, for a
// bounded number of sessions with an idle and an absolute lifetime.
// Requests that change state (sign-out) carry a per-session CSRF token and
// must come from the dashboard's own origin. Every response carries a
// strict Content-Security-Policy: no inline script or style anywhere.
package dashboard

import (
	"context"
	"errors"
	"hash/maphash"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/breakwater/breakwater/internal/audit"
	"github.com/breakwater/breakwater/internal/secret"
	"github.com/breakwater/breakwater/internal/telemetry"
	"github.com/prometheus/client_golang/prometheus"
)

// Prefix is where the integrator mounts the handler on the admin listener.
// The handler sees the full path (no http.StripPrefix).
const Prefix = "/dashboard/"

// ContentSecurityPolicy is sent with every response of the dashboard.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Limits and lifetimes.
const (
	MaxSessions       = 64               // sessions kept; signing in beyond evicts the least recently used
	SessionLifetime   = 8 * time.Hour    // a session ends this long after sign-in
	SessionIdle       = 30 * time.Minute // … or this long after its last request
	SignInAttempts    = 5                // sign-in attempts per client IP (IPv6: per /64) …
	SignInWindow      = time.Minute      // … per this window
	ScrapeInterval    = 5 * time.Second  // how often the metrics are scraped while a session is active
	ScrapeHistory     = 120              // scrapes kept (10 minutes at 5 s)
	DefaultWindow     = 60 * time.Second // the summary's window when the request names none
	AuditCacheTTL     = time.Minute      // how long an audit report is reused
	auditTimeout      = 30 * time.Second
	maxFormBytes      = 4 << 10
	maxTokenBytes     = 512
	signInClientsKept = 1024
)

// Options configure New.
type Options struct {
	// TokenHash is admin.token_hash: sign-in compares sha256(token) with it
	// in constant time. Required unless CurrentTokenHash is set.
	TokenHash secret.Digest
	// CurrentTokenHash, when set, is read at every sign-in and every
	// request instead of TokenHash, so that a reload that rotates the admin
	// token takes effect at once: sessions signed in with another token
	// end.
	CurrentTokenHash func() secret.Digest
	// Metrics is the process registry: traffic, latency, errors per route,
	// auth failures, rejections. Nil: the summary is empty.
	Metrics prometheus.Gatherer
	// Events returns at most limit recent security events, newest first
	// (nil: "not available").
	Events func(limit int) []telemetry.Event
	// Inventory returns a JSON-able inventory view (nil: "not available").
	Inventory func() any
	// Audit audits the running config; its report is cached for
	// AuditCacheTTL (nil: "not available").
	Audit func(ctx context.Context) (*audit.Report, error)
	// Config returns the running config, redacted: what /admin/config
	// serves (nil: "not available").
	Config func() any
	// Logger receives sign-in failures and refused requests (nil: none).
	// Tokens, session ids and CSRF tokens are never logged.
	Logger *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Dashboard is the dashboard's http.Handler. Its methods are safe for
// concurrent use.
type Dashboard struct {
	o        Options
	now      func() time.Time
	log      *slog.Logger
	assets   *assetSet
	sessions sessions
	limiter  signInLimiter
	top      topK
	scrapes  scrapeRing
	interval time.Duration // ScrapeInterval; tests shorten it

	loopMu  sync.Mutex
	looping bool
	ctx     context.Context // ends at Close: stops the scrape loop
	cancel  context.CancelFunc

	auditMu  sync.Mutex
	auditAt  time.Time
	auditRep *audit.Report
	auditErr error
}

// New returns a dashboard. It fails when no admin token digest is given.
func New(o Options) (*Dashboard, error) {
	if o.TokenHash.IsZero() && o.CurrentTokenHash == nil {
		return nil, errors.New("dashboard: no admin token digest (admin.token_hash)")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	lg := o.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	as, err := loadAssets()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Dashboard{o: o, now: o.Now, log: lg, assets: as, ctx: ctx, cancel: cancel, interval: ScrapeInterval}
	d.sessions.init()
	d.limiter.init()
	d.top.init(maphash.MakeSeed())
	return d, nil
}

// Close stops the background scraping. The handler keeps answering.
func (d *Dashboard) Close() { d.cancel() }

// tokenHash is the admin token digest in force.
func (d *Dashboard) tokenHash() secret.Digest {
	if d.o.CurrentTokenHash != nil {
		return d.o.CurrentTokenHash()
	}
	return d.o.TokenHash
}

// ServeHTTP serves everything under /dashboard/.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")

	p := r.URL.Path
	if p == "/dashboard" {
		h.Set("Cache-Control", "no-store")
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		return
	}
	rest, ok := strings.CutPrefix(p, Prefix)
	if !ok {
		d.notFound(w)
		return
	}
	switch {
	case rest == "":
		if !methodIs(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		d.page(w, r)
	case rest == "login":
		if !methodIs(w, r, http.MethodPost) {
			return
		}
		d.signIn(w, r)
	case rest == "logout":
		if !methodIs(w, r, http.MethodPost) {
			return
		}
		d.signOut(w, r)
	case strings.HasPrefix(rest, "assets/"):
		if !methodIs(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		d.assets.serve(w, r, rest[len("assets/"):])
	case strings.HasPrefix(rest, "api/"):
		if !methodIs(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		d.api(w, r, rest[len("api/"):])
	default:
		d.notFound(w)
	}
}

// methodIs answers 405 unless r's method is one of ms.
func methodIs(w http.ResponseWriter, r *http.Request, ms ...string) bool {
	for _, m := range ms {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(ms, ", "))
	plain(w, http.StatusMethodNotAllowed, "method not allowed")
	return false
}

func (d *Dashboard) notFound(w http.ResponseWriter) { plain(w, http.StatusNotFound, "not found") }

// plain writes a short fixed text (never client input).
func plain(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg + "\n"))
}

// clientAddr is the address of r.RemoteAddr (the admin listener trusts no
// forwarding headers); the zero Addr when it is not an address.
func clientAddr(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}
