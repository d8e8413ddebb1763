package e2e

import (
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	for _, proto := range []string{"HTTP/1.1", "HTTP/2"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			testGracefulShutdown(t, proto)
		})
	}
}

func testGracefulShutdown(t *testing.T, proto string) {
	up := newUpstream(t)
	cfg := strings.Replace(baseConfig, "shutdown_timeout: 5s", "shutdown_timeout: 15s", 1)
	cfg = strings.ReplaceAll(cfg, "timeout: 5s }", "timeout: 30s }") // the drain is tested, not the route timeout
	g := startGateway(t, cfg, map[string]string{"Up": up.URL})
	c := g.client(t)
	if proto == "HTTP/2" {
		c = g.h2client(t)
	}

	type result struct {
		status int
		proto  string
		body   []byte
		err    error
	}
	slow := make(chan result, 1)
	go func() {
		// Held by the upstream until the test releases it.
		req, _ := http.NewRequest("GET", g.url("/public/slow?sleep=hold"), nil)
		req.Header.Set("X-E2E-Marker", "drain")
		resp, err := c.Do(req)
		if err != nil {
			slow <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- result{status: resp.StatusCode, proto: resp.Proto, body: b, err: err}
	}()
	select {
	case <-up.started:
	case r := <-slow:
		t.Fatalf("the slow request ended before reaching the upstream: %+v%s", r, g.output())
	case <-time.After(15 * time.Second):
		up.release()
		t.Fatalf("the slow request did not reach the upstream within 15s%s", g.output())
	}

	g.signal(syscall.SIGTERM)
	sent := time.Now()

	// While the request is in flight, new connections are refused.
	refused := false
	for !refused && time.Since(sent) < 10*time.Second {
		conn, err := net.DialTimeout("tcp", g.https, time.Second)
		if err != nil {
			refused = true
			t.Logf("new connections refused %v after SIGTERM", time.Since(sent).Round(time.Millisecond))
			break
		}
		conn.Close()
		time.Sleep(25 * time.Millisecond)
	}
	if !refused {
		t.Errorf("new TCP connections were still accepted 10s after SIGTERM")
	}
	select {
	case r := <-slow:
		t.Fatalf("the in-flight request ended before the upstream answered: %+v%s", r, g.output())
	default:
	}
	if g.exited() {
		t.Fatalf("breakwater exited with a request in flight (shutdown_timeout: 15s)%s", g.output())
	}

	up.release()
	select {
	case r := <-slow:
		if r.err != nil || r.status != 200 || !strings.HasPrefix(r.proto, proto[:6]) {
			t.Errorf("the in-flight %s request during shutdown: status %d over %s, err %v; want 200%s", proto, r.status, r.proto, r.err, g.output())
		} else if e := decodeEcho(t, g, r.body); e.Path != "/public/slow" {
			t.Errorf("the in-flight request's body: %q", r.body)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the in-flight request did not finish within 20s of its release%s", g.output())
	}

	code, ok := g.wait(20 * time.Second)
	if !ok {
		t.Fatalf("breakwater did not exit within 20s after the drain%s", g.output())
	}
	g.checkExit(t, code)
	g.stopOnce.Do(func() {}) // checked above
}
