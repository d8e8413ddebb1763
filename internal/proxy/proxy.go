// Package proxy is the upstream side of one route: an
// httputil.ReverseProxy (with Rewrite, never Director) in front of a set of
// load-balanced, health-checked targets.
//
// What it does to a request, in order:
//
//   - picks a target: round robin over the targets that are up (active
//     checks) and not ejected (passive failures); see balancer.go;
//   - forwards to target scheme+host, the target's base path joined with the
//     gateway's canonical path (reqctx.State.EscapedPath — never the
//     client's r.URL.Path) and the original query. The Host header sent
//     upstream is the target's host (there is no preserve_host yet);
//   - rebuilds the forwarding headers and removes every client-supplied
//     header the upstream could mistake for one of the gateway's (headers.go);
//   - bounds the exchange by Upstream.Timeout (see exchange.go), retries
//     idempotent body-less requests on connection failures (transport.go);
//   - strips leaky response headers, adds the security headers and, when
//     asked, replaces upstream 5xx bodies by a problem document;
//   - turns every failure into a problem document (errors.go): 502, 503,
//     504 or 413, with the reason in the log only.
//
// Bodies are streamed in both directions, never buffered whole.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/reqctx"
)

// Options are the parts of an upstream's behaviour that come from outside
// its config block.
type Options struct {
	// Route is the route name, added to every log record as "route"
	// ("" adds nothing).
	Route string
	// Resolve turns a relative file path of the config (ca_file,
	// cert_file, key_file) into one that can be opened. Nil: paths are
	// used as written.
	Resolve func(string) string
	// MaskUpstreamErrors replaces the body of upstream 5xx responses by a
	// problem document with the same status.
	MaskUpstreamErrors bool
	// FilterResponse, when set, may rewrite or refuse a response before it
	// is sent (OpenAPI response filtering); an error becomes the masked 502.
	FilterResponse func(*http.Response) error
	// OwnCORS drops the upstream's Access-Control-* response headers: the
	// gateway answers CORS itself, and an upstream must not allow an origin
	// the gateway does not.
	OwnCORS bool
	// Logger receives warnings and errors. Nil discards them.
	Logger *slog.Logger
	// Now is the clock of passive health (ejection and its expiry). Nil
	// means time.Now. Timeouts always use the real clock.
	Now func() time.Time
}

// Upstream forwards requests to the targets of one route. It is safe for
// concurrent use; build it with New, call Start to run active health checks
// and Close when the route is retired.
type Upstream struct {
	bal       *balancer
	transport *http.Transport
	rp        httputil.ReverseProxy
	log       *slog.Logger
	now       func() time.Time

	timeout time.Duration
	retries int
	check   *healthCheck // nil: no active checks

	mask    bool
	ownCORS bool
	filter  func(*http.Response) error
	noStore []string // {"no-store"}, shared by responses: only ever read

	mu      sync.Mutex
	stop    context.CancelFunc // stops the health checks started by Start
	closed  bool
	checks  sync.WaitGroup
	bufPool bufferPool
}

// New builds the upstream of one route from its config. It validates
// everything it can (targets, TLS files) and returns an error naming the
// field that is wrong; it starts no goroutine.
func New(u config.Upstream, o Options) (*Upstream, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Route != "" {
		log = log.With("route", o.Route)
	}
	resolve := o.Resolve
	if resolve == nil {
		resolve = func(p string) string { return p }
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}

	up := &Upstream{
		log:     log,
		now:     now,
		timeout: u.Timeout.D(),
		mask:    o.MaskUpstreamErrors,
		ownCORS: o.OwnCORS,
		filter:  o.FilterResponse,
		noStore: []string{"no-store"},
	}
	if up.timeout <= 0 {
		return nil, fmt.Errorf("timeout: must be more than 0, not %s", u.Timeout)
	}
	if u.Retries != nil {
		if *u.Retries < 0 {
			return nil, fmt.Errorf("retries: must be 0 or more, not %d", *u.Retries)
		}
		up.retries = *u.Retries
	}

	targets, err := parseTargets(u.Targets)
	if err != nil {
		return nil, err
	}
	up.bal = newBalancer(targets, max(u.MaxFails, 0), u.FailTimeout.D())

	if u.HealthCheck != nil {
		if up.check, err = newHealthCheck(u.HealthCheck); err != nil {
			return nil, err
		}
	}

	if up.transport, err = newTransport(targets, u.TLS, up.timeout, resolve, log); err != nil {
		return nil, err
	}

	up.rp = httputil.ReverseProxy{
		Rewrite:        up.rewrite,
		Transport:      &retrier{u: up},
		BufferPool:     &up.bufPool,
		ModifyResponse: up.modifyResponse,
		ErrorHandler:   up.errorHandler,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return up, nil
}

// ServeHTTP forwards r to a target. r must carry a reqctx.State with the
// canonical path; the state's Upstream and UpstreamDuration are filled in.
func (u *Upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := reqctx.From(r)
	path, rawPath, ok := canonicalPath(st)
	if !ok {
		// Fail closed: without the gateway's canonical path there is no
		// safe path to forward (the client's is never used).
		st.Reason = "no canonical path"
		u.log.LogAttrs(r.Context(), slog.LevelError, "proxy: request without canonical path",
			slog.String("request_id", st.RequestID))
		u.writeProblem(w, r, http.StatusInternalServerError)
		return
	}

	t, single := u.bal.pick(u.now().UnixNano(), nil), false
	if t == nil {
		// Every target is down or ejected. Passive ejection alone never
		// takes a route down: try the least recently failed target that
		// active checks do not mark down, once, without retries.
		t, single = u.bal.fallback(), true
	}
	if t == nil {
		st.Reason = "no healthy upstream target"
		u.log.LogAttrs(r.Context(), slog.LevelWarn, "proxy: no healthy upstream target",
			slog.String("request_id", st.RequestID))
		u.writeProblem(w, r, http.StatusServiceUnavailable)
		return
	}

	x := u.newExchange(r.Context(), w, st, t, single, path, rawPath)
	defer x.finish()
	u.rp.ServeHTTP(w, r.WithContext(x))
}

// Start runs the active health checks, if the config has any, until ctx is
// done or Close is called. Calling it again is a no-op.
func (u *Upstream) Start(ctx context.Context) {
	if u.check == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.stop != nil || u.closed {
		return
	}
	ctx, u.stop = context.WithCancel(ctx)
	for _, t := range u.bal.targets {
		u.checks.Go(func() { u.checkLoop(ctx, t) })
	}
}

// Close stops the health checks, waits for them to return and closes idle
// connections. Requests in flight finish normally.
func (u *Upstream) Close() {
	u.mu.Lock()
	u.closed = true
	stop := u.stop
	u.mu.Unlock()
	if stop != nil {
		stop()
	}
	u.checks.Wait()
	u.transport.CloseIdleConnections()
}

// Healthy returns the number of targets that would be picked now: up per
// active checks and not ejected by passive ones.
func (u *Upstream) Healthy() int {
	return u.bal.healthy(u.now().UnixNano())
}

// Targets returns the number of configured targets.
func (u *Upstream) Targets() int { return len(u.bal.targets) }

// canonicalPath returns the path to forward: the gateway's canonical path,
// decoded and escaped. ok is false when the request has none.
func canonicalPath(st *reqctx.State) (path, rawPath string, ok bool) {
	path, rawPath = st.Path, st.EscapedPath
	if rawPath == "" {
		if path == "" {
			return "", "", false
		}
		rawPath = escapePath(path)
	}
	if path == "" {
		p, err := unescapePath(rawPath)
		if err != nil {
			return "", "", false
		}
		path = p
	}
	if path[0] != '/' || rawPath[0] != '/' {
		return "", "", false
	}
	return path, rawPath, true
}

// bufferPool is the ReverseProxy's copy buffer pool: 32 KiB buffers kept as
// array pointers so that Put does not allocate.
type bufferPool struct{ p sync.Pool }

const bufferSize = 32 << 10

func (b *bufferPool) Get() []byte {
	if a, ok := b.p.Get().(*[bufferSize]byte); ok {
		return a[:]
	}
	return new([bufferSize]byte)[:]
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) < bufferSize {
		return
	}
	b.p.Put((*[bufferSize]byte)(buf[:bufferSize]))
}

// errNoExchange means the ReverseProxy was reached without ServeHTTP: a bug.
var errNoExchange = errors.New("proxy: request has no exchange")
