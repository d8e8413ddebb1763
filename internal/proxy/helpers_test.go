package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/problem"
	"github.com/breakwater/breakwater/internal/reqctx"
)

const testRequestID = "req-0001"

// testPeer is the socket peer of test requests.
var testPeer = netip.MustParseAddr("203.0.113.7")

func ptr[T any](v T) *T { return &v }

func dur(d time.Duration) config.Duration { return config.Duration(d) }

// newUpstream builds an Upstream and closes it at the end of the test.
func newUpstream(t testing.TB, c config.Upstream, o Options) *Upstream {
	t.Helper()
	if c.Timeout == 0 {
		c.Timeout = dur(10 * time.Second)
	}
	config.UpstreamDefaults(&c)
	u, err := New(c, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(u.Close)
	return u
}

// state is the reqctx.State the gateway would have built for a request to
// the canonical path escaped (which must be valid).
func state(escaped string) *reqctx.State {
	p, err := unescapePath(escaped)
	if err != nil {
		panic(err)
	}
	return &reqctx.State{RequestID: testRequestID, Peer: testPeer, PeerText: testPeer.String(), Path: p, EscapedPath: escaped}
}

// do serves r (with st attached) through u into a recorder.
func do(u *Upstream, r *http.Request, st *reqctx.State) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	u.ServeHTTP(w, reqctx.With(r, st))
	return w
}

// get is do for a GET of path (the canonical path as well).
func get(u *Upstream, path string) (*httptest.ResponseRecorder, *reqctx.State) {
	st := state(path)
	return do(u, httptest.NewRequest(http.MethodGet, path, nil), st), st
}

// post is do for a POST of body to path.
func post(u *Upstream, path, body string) (*httptest.ResponseRecorder, *reqctx.State) {
	st := state(path)
	return do(u, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)), st), st
}

// front is a real HTTP server in front of u, doing what the gateway does
// before the proxy: a State with the canonical path (here simply the
// request's path) and, when maxBody > 0, a MaxBytesReader.
func front(t testing.TB, u *Upstream, maxBody int64) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := &reqctx.State{
			RequestID:   testRequestID,
			Peer:        testPeer,
			PeerText:    testPeer.String(),
			Path:        r.URL.Path,
			EscapedPath: r.URL.EscapedPath(),
		}
		if maxBody > 0 && r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		}
		u.ServeHTTP(w, reqctx.With(r, st))
	}))
	t.Cleanup(s.Close)
	return s
}

// echoed is what the echo upstream saw.
type echoed struct {
	Method     string
	Host       string
	RequestURI string
	Header     http.Header
	Body       string
}

// echoServer answers every request with a JSON description of it.
func echoServer(t testing.TB) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echoed{
			Method: r.Method, Host: r.Host, RequestURI: r.RequestURI, Header: r.Header, Body: string(b),
		})
	}))
	t.Cleanup(s.Close)
	return s
}

func decodeEcho(t testing.TB, w *httptest.ResponseRecorder) echoed {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("status %d, body %q", w.Code, w.Body.String())
	}
	var e echoed
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("echo body %q: %v", w.Body.String(), err)
	}
	return e
}

// countingServer answers 200 with its name and counts requests.
type countingServer struct {
	*httptest.Server
	n atomic.Int64
}

func newCounting(t testing.TB, name string) *countingServer {
	t.Helper()
	c := &countingServer{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.n.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, name)
	}))
	t.Cleanup(c.Close)
	return c
}

// flakyServer answers 200 or, while broken, drops the connection without a
// response (a connection-level failure).
type flakyServer struct {
	*httptest.Server
	broken atomic.Bool
	ok     atomic.Int64
}

func newFlaky(t testing.TB) *flakyServer {
	t.Helper()
	f := &flakyServer{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.broken.Load() {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				if tc, ok := conn.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // RST
				}
				_ = conn.Close()
			}
			return
		}
		f.ok.Add(1)
		_, _ = io.WriteString(w, "flaky-ok")
	}))
	t.Cleanup(f.Close)
	return f
}

// deadURL is an http:// URL on which nothing listens (connection refused).
func deadURL(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "http://" + addr
}

// clock is an injected clock for passive health.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Unix(1_700_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// logBuffer collects log output safely from many goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newLogger() (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// wantProblem checks that w is exactly the problem document of status.
func wantProblem(t testing.TB, w *httptest.ResponseRecorder, status int) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d (body %q)", w.Code, status, w.Body.String())
	}
	if ct := w.Header().Get("Content-Type"); ct != problem.ContentType {
		t.Errorf("Content-Type = %q, want %q", ct, problem.ContentType)
	}
	if want := problem.Body(testRequestID, status); !bytes.Equal(w.Body.Bytes(), want) {
		t.Errorf("body = %q, want %q", w.Body.String(), want)
	}
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// ctxWithTimeout is a test context bounded so that a hang fails the test.
func ctxWithTimeout(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
