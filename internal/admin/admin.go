// Package admin serves the admin listener: health and readiness for
// orchestrators, and — behind the admin token — the admin API.
package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/problem"
	"github.com/breakwater/breakwater/internal/state"
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
	// Bans serves GET /admin/bans and DELETE /admin/bans/{key} (nil: 404).
	Bans Bans
	// Dashboard serves /dashboard/ with its own sign-in (nil: 404).
	Dashboard http.Handler
	// Inventory serves GET /admin/inventory, the traffic-derived API
	// inventory (inventory.Inventory.Handler; nil: 404).
	Inventory http.Handler
}

// Bans is what the ban endpoints need: *gateway.Gateway implements it.
type Bans interface {
	// ListBans returns at most limit bans in force and how many there are.
	ListBans(ctx context.Context, limit int) ([]state.Ban, int, error)
	// LiftBan ends the ban of key (canonical, see state.ParseBanKey) and
	// reports whether there was one.
	LiftBan(ctx context.Context, key string) (bool, error)
}

// Bounds of GET /admin/bans.
const (
	DefaultBanList = 1000
	MaxBanList     = 10000
)

// BansResponse is the body of GET /admin/bans.
type BansResponse struct {
	Bans  []state.Ban `json:"bans"`  // those that end first first
	Total int         `json:"total"` // bans in force; more than len(Bans) when cut at limit
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
	if o.Inventory != nil {
		mux.Handle("GET /admin/inventory", o.Inventory)
	}
	if o.Bans != nil {
		mux.HandleFunc("GET /admin/bans", func(w http.ResponseWriter, r *http.Request) { listBans(w, r, o.Bans) })
		mux.HandleFunc("DELETE /admin/bans/{key...}", func(w http.ResponseWriter, r *http.Request) { liftBan(w, r, o.Bans) })
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
	guarded := guard(o.Gateway, mux)
	if o.Dashboard == nil {
		return guarded
	}
	// The dashboard signs its users in itself (a browser cannot send the
	// bearer token): see internal/dashboard.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p == "/dashboard" || strings.HasPrefix(p, "/dashboard/") {
			o.Dashboard.ServeHTTP(w, r)
			return
		}
		guarded.ServeHTTP(w, r)
	})
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

// listBans serves GET /admin/bans[?limit=N].
func listBans(w http.ResponseWriter, r *http.Request, b Bans) {
	limit := DefaultBanList
	q := r.URL.Query()
	for name := range q {
		if name != "limit" {
			problem.WriteDetail(w, r, http.StatusBadRequest, "unknown query parameter (allowed: limit)")
			return
		}
	}
	if vs := q["limit"]; len(vs) > 0 {
		n, err := strconv.Atoi(vs[0])
		if len(vs) > 1 || err != nil || n < 1 || n > MaxBanList {
			problem.WriteDetail(w, r, http.StatusBadRequest, "query parameter 'limit': must be an integer from 1 to "+strconv.Itoa(MaxBanList))
			return
		}
		limit = n
	}
	bans, total, err := b.ListBans(r.Context(), limit)
	if err != nil {
		problem.WriteDetail(w, r, http.StatusServiceUnavailable, "the ban store did not answer")
		return
	}
	if bans == nil {
		bans = []state.Ban{}
	}
	writeJSON(w, http.StatusOK, BansResponse{Bans: bans, Total: total})
}

// liftBan serves DELETE /admin/bans/{key}: 200 when a ban was lifted, 404
// when the key was not banned, 400 for a key that is not a ban key.
func liftBan(w http.ResponseWriter, r *http.Request, b Bans) {
	key, err := state.ParseBanKey(r.PathValue("key"))
	if err != nil {
		problem.WriteDetail(w, r, http.StatusBadRequest, "ban key: "+err.Error())
		return
	}
	lifted, err := b.LiftBan(r.Context(), key)
	switch {
	case err != nil:
		problem.WriteDetail(w, r, http.StatusServiceUnavailable, "the ban store did not answer")
	case !lifted:
		problem.WriteDetail(w, r, http.StatusNotFound, "no ban in force for this key")
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "lifted", "key": key})
	}
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
