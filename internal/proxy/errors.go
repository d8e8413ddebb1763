package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"

	"github.com/breakwater/breakwater/internal/problem"
	"github.com/breakwater/breakwater/internal/reqctx"
)

// errorHandler is the ReverseProxy's ErrorHandler: every failure of the
// upstream exchange becomes a problem document. The error itself (which may
// name internal addresses) goes to the log and never to the client.
//
//	client went away (its context cancelled)  no response, Reason logged
//	request body over its limit               413
//	exchange deadline, response header wait   504
//	refused, unreachable, reset, TLS, other   502
func (u *Upstream) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	x := exchangeOf(r.Context())
	st := reqctx.From(r)
	if x != nil && x.clientGone() {
		st.Reason = "client closed request"
		u.log.LogAttrs(r.Context(), slog.LevelDebug, "proxy: client went away",
			slog.String("request_id", st.RequestID), slog.String("target", st.Upstream))
		return
	}
	status, reason := classify(x, err)
	st.Reason = reason
	u.log.LogAttrs(r.Context(), slog.LevelWarn, "proxy: upstream exchange failed",
		slog.String("request_id", st.RequestID),
		slog.String("target", st.Upstream),
		slog.Int("status", status),
		slog.String("reason", reason),
		slog.String("error", err.Error()))
	if status == http.StatusRequestEntityTooLarge {
		// The rest of the body is still on its way: don't read it.
		w.Header().Set("Connection", "close")
	}
	u.writeProblem(w, r, status)
}

// classify maps a round-trip error to a status and a short reason (for
// logs and metrics: bounded, and free of client input).
func classify(x *exchange, err error) (int, string) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, "request body too large"
	}
	if x != nil && x.timedOut() {
		return http.StatusGatewayTimeout, "upstream timeout"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return http.StatusBadGateway, "upstream unreachable"
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return http.StatusGatewayTimeout, "upstream timeout"
	}
	return http.StatusBadGateway, "upstream failure"
}

// writeProblem writes the gateway's own error response for r.
func (u *Upstream) writeProblem(w http.ResponseWriter, r *http.Request, status int) {
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	problem.Write(w, r, status)
}

// maxDrain bounds how much of a masked upstream error body is read (so
// that the connection can be reused) before it is closed.
const maxDrain = 64 << 10

// maskBody replaces an upstream error response by the problem document of
// its status: neither the upstream's body (stack traces, SQL errors) nor its
// headers (X-Debug-Trace, X-Upstream-Host, internal addresses) reach the
// client. Only the headers in keepOnMasked survive.
func (u *Upstream) maskBody(res *http.Response, st *reqctx.State) {
	if res.Body != nil {
		_, _ = io.CopyN(io.Discard, res.Body, maxDrain)
		_ = res.Body.Close()
	}
	body := problem.Body(st.RequestID, res.StatusCode)
	h := res.Header
	for k := range h {
		if !keepOnMasked(k) {
			delete(h, k)
		}
	}
	h["Content-Type"] = []string{problem.ContentType}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	h["Cache-Control"] = []string{"no-store"}
	res.Body = io.NopCloser(bytes.NewReader(body))
	res.ContentLength = int64(len(body))
	res.TransferEncoding = nil
	res.Trailer = nil
	res.Uncompressed = false
}

// keepOnMasked lists the upstream headers a masked error keeps: the retry
// hint, and cookies (a session may be rotated on any response).
func keepOnMasked(canonicalKey string) bool {
	switch canonicalKey {
	case "Retry-After", "Set-Cookie":
		return true
	}
	return false
}
