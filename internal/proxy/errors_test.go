package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/problem"
	"github.com/breakwater/breakwater/internal/reqctx"
)

func TestBadGatewayWhenRefused(t *testing.T) {
	log, logs := newLogger()
	dead := deadURL(t)
	u := newUpstream(t, config.Upstream{Targets: []string{dead}}, Options{Logger: log, Route: "orders"})
	w, st := post(u, "/v1/orders", "{}")
	wantProblem(t, w, http.StatusBadGateway)
	if st.Reason != "upstream unreachable" {
		t.Errorf("Reason = %q", st.Reason)
	}
	if want := strings.TrimPrefix(dead, "http://"); st.Upstream != want {
		t.Errorf("State.Upstream = %q, want %q", st.Upstream, want)
	}
	if st.UpstreamDuration <= 0 {
		t.Error("State.UpstreamDuration not recorded")
	}
	// The real reason is in the log, with the route.
	if l := logs.String(); !strings.Contains(l, "refused") || !strings.Contains(l, "route=orders") {
		t.Errorf("log does not say why: %s", l)
	}
}

func TestBadGatewayWhenConnectionDropped(t *testing.T) {
	f := newFlaky(t)
	f.broken.Store(true)
	u := newUpstream(t, config.Upstream{Targets: []string{f.URL}}, Options{})
	w, st := post(u, "/x", "body")
	wantProblem(t, w, http.StatusBadGateway)
	if st.Reason != "upstream failure" {
		t.Errorf("Reason = %q", st.Reason)
	}
}

func TestGatewayTimeout(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(up.Close)

	for _, method := range []string{http.MethodGet, http.MethodPost} {
		t.Run(method, func(t *testing.T) {
			u := newUpstream(t, config.Upstream{Targets: []string{up.URL}, Timeout: dur(150 * time.Millisecond)}, Options{})
			st := state("/slow")
			start := time.Now()
			w := do(u, httptest.NewRequest(method, "/slow", strings.NewReader("")), st)
			wantProblem(t, w, http.StatusGatewayTimeout)
			if st.Reason != "upstream timeout" {
				t.Errorf("Reason = %q", st.Reason)
			}
			if el := time.Since(start); el < 150*time.Millisecond || el > 10*time.Second {
				t.Errorf("answered after %v", el)
			}
		})
	}
}

func TestServiceUnavailableWhenNoTargetIsUp(t *testing.T) {
	up := newCounting(t, "up")
	u := newUpstream(t, config.Upstream{Targets: []string{up.URL, up.URL + "/b"}}, Options{})
	for _, tg := range u.bal.targets {
		tg.activeDown.Store(true) // as active health checks would
	}
	w, st := get(u, "/x")
	wantProblem(t, w, http.StatusServiceUnavailable)
	if ra := w.Header().Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After = %q, want 1", ra)
	}
	if st.Reason != "no healthy upstream target" {
		t.Errorf("Reason = %q", st.Reason)
	}
	if up.n.Load() != 0 {
		t.Error("a target that is down was sent the request")
	}
}

func TestRequestBodyTooLarge(t *testing.T) {
	up := echoServer(t)
	u := newUpstream(t, config.Upstream{Targets: []string{up.URL}}, Options{})
	fs := front(t, u, 16)
	res, err := http.Post(fs.URL+"/upload", "text/plain", strings.NewReader(strings.Repeat("x", 64<<10)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status = %d, body %q", res.StatusCode, body)
	}
	if want := problem.Body(testRequestID, http.StatusRequestEntityTooLarge); !bytes.Equal(body, want) {
		t.Errorf("body = %q, want %q", body, want)
	}
	if n := u.bal.targets[0].fails.Load(); n != 0 {
		t.Errorf("a client's oversized body counted %d failure(s) against the target", n)
	}
}

func TestClientGoneWritesNothing(t *testing.T) {
	arrived := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done()
	}))
	t.Cleanup(up.Close)
	u := newUpstream(t, config.Upstream{Targets: []string{up.URL}}, Options{})

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel()
	}()
	st := state("/x")
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/x", nil)
	w := do(u, r, st)
	if w.Body.Len() != 0 {
		t.Errorf("wrote %q to a client that is gone", w.Body.String())
	}
	if st.Reason != "client closed request" {
		t.Errorf("Reason = %q", st.Reason)
	}
	if n := u.bal.targets[0].fails.Load(); n != 0 {
		t.Errorf("a client going away counted %d failure(s) against the target", n)
	}
}

func TestMaskUpstreamErrors(t *testing.T) {
	const leak = "panic: runtime error at /srv/app/orders.go:42 (db 10.0.0.5:5432)"
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		h := w.Header()
		h.Set("Content-Type", "text/plain")
		h.Set("ETag", `"v1"`)
		h.Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
		h.Set("Retry-After", "30")
		h.Set("Cache-Control", "public, max-age=600")
		h.Set("X-Debug-Trace", "orders.go:42 10.0.0.5")
		h.Set("X-Upstream-Host", "db1.internal")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, leak)
	}))
	t.Cleanup(up.Close)

	masked := newUpstream(t, config.Upstream{Targets: []string{up.URL}}, Options{MaskUpstreamErrors: true})
	plain := newUpstream(t, config.Upstream{Targets: []string{up.URL}}, Options{})

	for _, code := range []int{500, 502, 503, 504, 599} {
		t.Run("masked "+strconv.Itoa(code), func(t *testing.T) {
			w, _ := get(masked, "/x?code="+strconv.Itoa(code))
			res := w.Result()
			wantProblem(t, w, code)
			if strings.Contains(w.Body.String(), "10.0.0.5") {
				t.Fatal("upstream error body leaked")
			}
			if cl := res.Header.Get("Content-Length"); cl != strconv.Itoa(w.Body.Len()) {
				t.Errorf("Content-Length = %q, body is %d bytes", cl, w.Body.Len())
			}
			for _, k := range []string{"Etag", "Last-Modified", "X-Debug-Trace", "X-Upstream-Host"} {
				if v := res.Header.Get(k); v != "" {
					t.Errorf("%s = %q kept on a masked body", k, v)
				}
			}
			if v := res.Header.Get("Cache-Control"); v != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", v)
			}
			if v := res.Header.Get("Retry-After"); v != "30" {
				t.Errorf("Retry-After = %q, want the upstream's 30", v)
			}
		})
	}
	t.Run("4xx not masked", func(t *testing.T) {
		w, _ := get(masked, "/x?code=404")
		if w.Code != 404 || w.Body.String() != leak {
			t.Errorf("got %d %q", w.Code, w.Body.String())
		}
	})
	t.Run("masking off passes the body", func(t *testing.T) {
		w, _ := get(plain, "/x?code=500")
		if w.Code != 500 || w.Body.String() != leak {
			t.Errorf("got %d %q", w.Code, w.Body.String())
		}
	})
	t.Run("masked HEAD", func(t *testing.T) {
		st := state("/x")
		w := do(masked, httptest.NewRequest(http.MethodHead, "/x?code=500", nil), st)
		if w.Code != 500 {
			t.Errorf("status %d", w.Code)
		}
	})
}

func TestMaskedErrorThroughRealServer(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write(bytes.Repeat([]byte{0x1f, 0x8b, 0, 1}, 100<<10)) // larger than the drain limit
	}))
	t.Cleanup(up.Close)
	u := newUpstream(t, config.Upstream{Targets: []string{up.URL}}, Options{MaskUpstreamErrors: true})
	fs := front(t, u, 0)
	req, _ := http.NewRequest(http.MethodGet, fs.URL+"/x", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ce := res.Header.Get("Content-Encoding"); ce != "" {
		t.Errorf("Content-Encoding = %q on a masked body", ce)
	}
	if want := problem.Body(testRequestID, 500); !bytes.Equal(body, want) {
		t.Errorf("body = %q, want %q", body, want)
	}
	if res.ContentLength != int64(len(body)) {
		t.Errorf("Content-Length = %d, body %d bytes", res.ContentLength, len(body))
	}
}

func TestErrorHandlerWithoutExchange(t *testing.T) {
	// Defensive: an error reaching the handler from a request not set up
	// by ServeHTTP still gives a clean 502.
	u := newUpstream(t, config.Upstream{Targets: []string{deadURL(t)}}, Options{})
	r := reqctx.With(httptest.NewRequest(http.MethodGet, "/x", nil), state("/x"))
	w := httptest.NewRecorder()
	u.errorHandler(w, r, errNoExchange)
	wantProblem(t, w, http.StatusBadGateway)
}
