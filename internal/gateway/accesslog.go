package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/breakwater/breakwater/internal/reqctx"
)

// recorder remembers the status and size of a response for the access log.
// Unwrap lets http.ResponseController reach Flush and Hijack underneath.
type recorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (w *recorder) WriteHeader(code int) {
	if !w.wroteHeader && code >= 200 {
		w.status = code
		w.wroteHeader = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = http.StatusOK, true
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *recorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if !w.wroteHeader {
			w.status, w.wroteHeader = http.StatusOK, true
		}
		f.Flush()
	}
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// sensitiveParams are query parameters whose values never reach a log.
var sensitiveParams = []string{"key", "api_key", "apikey", "api-key", "token", "access_token", "id_token",
	"refresh_token", "secret", "client_secret", "password", "passwd", "pwd", "sig", "signature", "auth", "code", "session"}

// redactQuery keeps parameter names and replaces the values of credential
// parameters — any name containing one of sensitiveParams, and the names in
// also (the query parameters of the config's api_key authenticators,
// whatever they are called) — by REDACTED. It works on the raw query so
// nothing is decoded for the log.
func redactQuery(raw string, also []string) string {
	if raw == "" {
		return ""
	}
	var b strings.Builder
	for i, part := range strings.Split(raw, "&") {
		if i > 0 {
			b.WriteByte('&')
		}
		name, _, hasValue := strings.Cut(part, "=")
		b.WriteString(name)
		if !hasValue {
			continue
		}
		b.WriteByte('=')
		if n, err := url.QueryUnescape(name); err == nil && (isSensitive(strings.ToLower(n)) || slices.Contains(also, n)) {
			b.WriteString("REDACTED")
		} else if err != nil {
			b.WriteString("REDACTED")
		} else {
			_, v, _ := strings.Cut(part, "=")
			b.WriteString(v)
		}
	}
	return b.String()
}

func isSensitive(name string) bool {
	for _, s := range sensitiveParams {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// logAccess writes one JSON line per request. Credentials never appear:
// no header is logged, the path is the canonical one, query values of
// credential parameters are redacted.
func (g *Gateway) logAccess(rec *recorder, r *http.Request, st *reqctx.State, credentialParams []string) {
	if g.access == nil || !g.access.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	status := rec.status
	if !rec.wroteHeader {
		status = 0 // client went away before any response
	}
	if s := g.sampler.Load(); s != nil && !s.Keep(st.RequestID, status, st.Reason != "") {
		return
	}
	path := st.Path
	if path == "" {
		path = "-" // never log a path the gateway refused to canonicalise
	}
	attrs := make([]slog.Attr, 0, 16)
	attrs = append(attrs,
		slog.String("request_id", st.RequestID),
		slog.String("client_ip", st.ClientIPText),
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", path),
		slog.Int("status", status),
		slog.Int64("bytes", rec.bytes),
		slog.Float64("duration_ms", float64(time.Since(st.Start).Microseconds())/1000),
		slog.String("proto", r.Proto),
	)
	if q := r.URL.RawQuery; q != "" && st.Path != "" {
		attrs = append(attrs, slog.String("query", redactQuery(q, credentialParams)))
	}
	if st.Route != "" {
		attrs = append(attrs, slog.String("route", st.Route))
	}
	if st.Consumer != nil {
		attrs = append(attrs, slog.String("consumer", st.Consumer.ID))
	}
	if st.Authenticator != "" {
		attrs = append(attrs, slog.String("authenticator", st.Authenticator))
	}
	if st.Upstream != "" {
		attrs = append(attrs, slog.String("upstream", st.Upstream),
			slog.Float64("upstream_ms", float64(st.UpstreamDuration.Microseconds())/1000))
	}
	if st.Reason != "" {
		attrs = append(attrs, slog.String("reason", st.Reason))
	}
	g.access.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
}
