package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/breakwater/breakwater/internal/reqctx"
)

// errUpstreamTimeout is the cancellation cause of an exchange that ran out
// of time.
var errUpstreamTimeout = errors.New("proxy: upstream timeout")

// exchange is one request's trip to the upstream. It is the request's
// context (so every hook finds it with one Value lookup and nothing else is
// allocated) and owns the timer that bounds the trip.
//
// Timeout, in two phases:
//
//  1. Until the response headers arrive — dial, TLS, sending the request
//     (and its body), waiting, and every retry — the exchange has
//     Upstream.Timeout in total. When it expires the context is cancelled
//     with errUpstreamTimeout: the client gets 504.
//  2. Then the body streams with an idle timeout of the same length: each
//     read of the response body re-arms it, so a large download may take
//     as long as it needs but an upstream that stalls mid-body is cut off
//     (the client sees the response aborted). Protocol upgrades (101) and
//     text/event-stream responses, whose silences are legitimate, have no
//     idle bound; masked error bodies are already read.
type exchange struct {
	context.Context // cancelled with the client's request, or with errUpstreamTimeout

	parent context.Context // the client's request context
	cancel context.CancelCauseFunc
	u      *Upstream
	w      http.ResponseWriter
	st     *reqctx.State

	target  *target // picked by ServeHTTP for the first attempt
	single  bool    // fallback pick: one attempt, no retries
	path    string  // canonical path, decoded
	rawPath string  // canonical path, escaped

	timer    *time.Timer
	start    time.Time
	idle     atomic.Bool  // phase 2: the timer is an idle timer
	last     atomic.Int64 // phase 2: time of the last body read, since start
	finished atomic.Bool
	body     idleBody // the response body wrapper of phase 2 (no allocation)
}

type exchangeKey struct{}

// Value makes the exchange findable from any context derived from it.
func (x *exchange) Value(key any) any {
	if key == (exchangeKey{}) {
		return x
	}
	return x.Context.Value(key)
}

// exchangeOf returns the exchange of ctx, or nil.
func exchangeOf(ctx context.Context) *exchange {
	x, _ := ctx.Value(exchangeKey{}).(*exchange)
	return x
}

func (u *Upstream) newExchange(parent context.Context, w http.ResponseWriter, st *reqctx.State,
	t *target, single bool, path, rawPath string) *exchange {
	x := &exchange{
		parent:  parent,
		u:       u,
		w:       w,
		st:      st,
		target:  t,
		single:  single,
		path:    path,
		rawPath: rawPath,
		start:   time.Now(),
	}
	x.Context, x.cancel = context.WithCancelCause(parent)
	x.body.x = x
	x.timer = time.AfterFunc(u.timeout, x.expire)
	return x
}

// expire runs when the timer fires.
func (x *exchange) expire() {
	if x.finished.Load() {
		return
	}
	if x.idle.Load() {
		// The load of idle orders this read of x.timer after its write.
		quiet := time.Since(x.start) - time.Duration(x.last.Load())
		if rest := x.u.timeout - quiet; rest > 0 {
			x.timer.Reset(rest)
			return
		}
	}
	x.cancel(errUpstreamTimeout)
}

// streamBody enters phase 2 for res: its body is read under the idle timeout.
func (x *exchange) streamBody(res *http.Response) {
	x.last.Store(int64(time.Since(x.start)))
	x.idle.Store(true)
	x.body.rc = res.Body
	res.Body = &x.body
}

// unbounded ends the timeout of the exchange (upgrades, event streams,
// bodies already in memory).
func (x *exchange) unbounded() { x.timer.Stop() }

// timedOut reports whether the exchange was cancelled by its own timeout.
func (x *exchange) timedOut() bool {
	return context.Cause(x.Context) == errUpstreamTimeout
}

// clientGone reports whether the client cancelled the request (went away).
func (x *exchange) clientGone() bool {
	return errors.Is(x.parent.Err(), context.Canceled)
}

// finish releases the exchange once the ReverseProxy is done with it.
func (x *exchange) finish() {
	x.finished.Store(true)
	x.timer.Stop()
	x.cancel(context.Canceled)
}

// idleBody is the response body in phase 2: every read that returns data
// marks the exchange active.
type idleBody struct {
	rc io.ReadCloser
	x  *exchange
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.x.last.Store(int64(time.Since(b.x.start)))
	}
	return n, err
}

func (b *idleBody) Close() error { return b.rc.Close() }
