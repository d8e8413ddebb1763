package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/breakwater/breakwater/internal/authn"
	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/reqctx"
)

// discardWriter is a ResponseWriter that keeps nothing, so the benchmark
// measures the proxy and not a recorder.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

func benchUpstream(b *testing.B) (*Upstream, *http.Request) {
	b.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Server", "bench")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	b.Cleanup(up.Close)
	u := newUpstream(b, config.Upstream{Targets: []string{up.URL}},
		Options{MaskUpstreamErrors: true})
	st := state("/v1/orders/42")
	st.Consumer = &authn.Consumer{ID: "acme", Scopes: []string{"orders:read"}}
	r := httptest.NewRequest(http.MethodGet, "/v1/orders/42?expand=items", nil)
	r.Header.Set("Accept", "application/json")
	r.Header.Set("User-Agent", "bench/1.0")
	return u, reqctx.With(r, st)
}

// resetWriter empties w except for the headers the gateway's entry
// middleware sets before the proxy runs.
func resetWriter(w *discardWriter) {
	for k := range w.h {
		switch k {
		case "X-Request-Id", "X-Content-Type-Options", "Strict-Transport-Security":
		default:
			delete(w.h, k)
		}
	}
	w.code = 0
}

// BenchmarkProxy is one GET through the proxy to a loopback upstream, with
// a consumer (so every request header rule runs) and masking on. The
// upstream server runs in the same process: its allocations are counted too.
func BenchmarkProxy(b *testing.B) {
	u, r := benchUpstream(b)
	w := &discardWriter{h: make(http.Header)}
	b.ReportAllocs()
	for b.Loop() {
		resetWriter(w)
		u.ServeHTTP(w, r)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
}

// BenchmarkProxyParallel is BenchmarkProxy from GOMAXPROCS goroutines.
func BenchmarkProxyParallel(b *testing.B) {
	u, r := benchUpstream(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: make(http.Header)}
		st := *reqctx.From(r)
		r := reqctx.With(r, &st)
		for pb.Next() {
			resetWriter(w)
			u.ServeHTTP(w, r)
			if w.code != http.StatusOK {
				b.Errorf("status %d", w.code)
				return
			}
		}
	})
}

// BenchmarkRequestHeaders is the header rewrite alone.
func BenchmarkRequestHeaders(b *testing.B) {
	_, r := benchUpstream(b)
	st := reqctx.From(r)
	h := make(http.Header, 8)
	b.ReportAllocs()
	for b.Loop() {
		clear(h)
		h["Accept"] = r.Header["Accept"]
		h["X-Forwarded-For"] = []string{"spoof"}
		requestHeaders(h, r, st)
	}
}
