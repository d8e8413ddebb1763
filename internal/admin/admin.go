// Package admin serves the admin listener: health and readiness for
// orchestrators, and — behind the admin token — the admin API.
package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"reflect"
	"strings"
	"time"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/problem"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Gateway is what the admin API needs from the running gateway.
type Gateway interface {
	Config() *config.Config
	Ready() bool
}

// Options configure the admin handler.
type Options struct {
	Gateway Gateway
	// Reload reloads the config from its source; the error lists problems.
	Reload func(ctx context.Context) error
	// Stats returns counters to show at /admin/stats.
	Stats func() any
	// Metrics is served at /metrics in the Prometheus formats (nil: 404).
	Metrics prometheus.Gatherer
	// Events serves /admin/events, the recent security events (nil: 404).
	Events http.Handler
}

// New returns the admin listener's handler.
func New(o Options) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !o.Gateway.Ready() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.HandleFunc("GET /admin/config", func(w http.ResponseWriter, r *http.Request) {
		// Secrets redact themselves when marshalled (secret.Value, secret.Digest).
		writeJSON(w, http.StatusOK, view(reflect.ValueOf(o.Gateway.Config())))
	})
	mux.HandleFunc("GET /admin/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, o.Stats())
	})
	if o.Events != nil {
		mux.Handle("GET /admin/events", o.Events)
	}
	if o.Metrics != nil {
		// Bounded: a few scrapes at once, each cut off after a while. The
		// label sets are bounded by the config, so is the exposition. Errors
		// are shown (ContinueOnError keeps the rest): only the operator,
		// holding the admin token, reads this.
		mux.Handle("GET /metrics", promhttp.HandlerFor(o.Metrics, promhttp.HandlerOpts{
			ErrorHandling:       promhttp.ContinueOnError,
			MaxRequestsInFlight: 4,
			Timeout:             10 * time.Second,
		}))
	}
	mux.HandleFunc("POST /admin/reload", func(w http.ResponseWriter, r *http.Request) {
		if err := o.Reload(r.Context()); err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{
				"status": "failed", "errors": strings.Split(strings.TrimSpace(err.Error()), "\n"),
			})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "reloaded"})
	})
	// Go profiles, for operators chasing CPU or memory: behind the admin
	// token like the rest of the admin API.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return guard(o.Gateway, mux)
}

// guard lets health and readiness through and requires the admin token for
// everything else. The token's digest is read from the running config on
// every request, so a reload that rotates it takes effect at once.
func guard(g Gateway, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		cfg := g.Config()
		token, ok := bearer(r)
		if cfg == nil || !ok || !cfg.Admin.TokenHash.Matches([]byte(token)) {
			problem.Unauthorized(w, r, `Bearer realm="breakwater-admin"`)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || len(tok) > 512 {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
