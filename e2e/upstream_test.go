package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

const upstreamConfig = `version: 1
server:
  https: "{{.HTTPS}}"
  admin: "{{.Admin}}"
  data_dir: "{{.Data}}"
  shutdown_timeout: 5s
tls:
  self_signed: true
admin:
  token_hash: "{{.AdminHash}}"
routes:
  - name: dead
    path: /dead/**
    upstream: { targets: ["http://{{.Dead}}"], timeout: 2s }
    auth: none
  - name: slow
    path: /slow/**
    upstream: { targets: ["{{.Up}}"], timeout: 1s }
    auth: none
  - name: masked
    path: /masked/**
    upstream: { targets: ["{{.Up}}"], timeout: 5s }
    auth: none
  - name: unmasked
    path: /unmasked/**
    upstream: { targets: ["{{.Up}}"], timeout: 5s }
    auth: none
    mask_upstream_errors: false
  - name: pair
    path: /pair/**
    upstream: { targets: ["http://{{.Dead}}", "{{.Up}}"], timeout: 5s }
    auth: none
  - name: stream
    path: /stream/**
    upstream: { targets: ["{{.Up}}"], timeout: 60s }
    auth: none
`

func TestUpstreamFailures(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := startGateway(t, upstreamConfig, map[string]string{"Up": up.URL, "Dead": deadAddr(t)})
	c := g.client(t)

	t.Run("dead target is 502", func(t *testing.T) {
		t.Parallel()
		resp, body := g.get(t, c, "/dead/x", nil)
		checkProblem(t, g, "GET /dead/x", resp, body, http.StatusBadGateway)
		checkSecurityHeaders(t, g, "502", resp)
		if strings.Contains(string(body), "127.0.0.1") || strings.Contains(string(body), "refused") {
			t.Errorf("the 502 body reveals the internal error: %q", body)
		}
	})

	t.Run("slow target beyond timeout is 504", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		resp, body := g.get(t, c, "/slow/x?sleep=10s", nil)
		d := time.Since(start)
		checkProblem(t, g, "GET /slow/x?sleep=10s with timeout 1s", resp, body, http.StatusGatewayTimeout)
		if d > 8*time.Second {
			t.Errorf("the 504 came after %v; the route timeout is 1s", d)
		}
	})

	t.Run("upstream 500 is masked by default", func(t *testing.T) {
		t.Parallel()
		resp, body := g.get(t, c, "/masked/x?crash=1", nil)
		checkProblem(t, g, "GET /masked/x?crash=1", resp, body, http.StatusInternalServerError)
		checkSecurityHeaders(t, g, "masked 500", resp)
		for _, leak := range []string{"goroutine", "panic", "db.go", "10.0.3.7", "app_rw"} {
			if strings.Contains(string(body), leak) {
				t.Errorf("masked 500 body contains %q: %q", leak, body)
			}
		}
	})

	t.Run("upstream 500 passes with mask_upstream_errors: false", func(t *testing.T) {
		t.Parallel()
		resp, body := g.get(t, c, "/unmasked/x?crash=1", nil)
		if resp.StatusCode != 500 || string(body) != stackTrace {
			t.Errorf("GET /unmasked/x?crash=1: %d %q, want 500 with the upstream's body", resp.StatusCode, body)
		}
		checkSecurityHeaders(t, g, "unmasked 500", resp)
	})

	t.Run("one dead target of two: every GET succeeds", func(t *testing.T) {
		t.Parallel()
		for i := 0; i < 20; i++ {
			resp, body := g.get(t, c, fmt.Sprintf("/pair/%d", i), nil)
			if resp.StatusCode != 200 {
				t.Errorf("GET /pair/%d: %d %q, want 200 (retry on the live target)", i, resp.StatusCode, body)
			}
		}
	})

	t.Run("20 MiB streamed response", func(t *testing.T) {
		t.Parallel()
		const size = 20 << 20
		resp, err := c.Get(g.url(fmt.Sprintf("/stream/big?stream=%d", size)))
		if err != nil {
			t.Fatalf("GET 20MiB: %v%s", err, g.output())
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET 20MiB: status %d%s", resp.StatusCode, g.output())
		}
		br := bufio.NewReaderSize(resp.Body, 64<<10)
		n := 0
		buf := make([]byte, 64<<10)
		for {
			k, err := br.Read(buf)
			for i := 0; i < k; i++ {
				if buf[i] != patternByte(n+i) {
					t.Fatalf("byte %d of the stream is %d, want %d", n+i, buf[i], patternByte(n+i))
				}
			}
			n += k
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("reading the stream after %d bytes: %v%s", n, err, g.output())
			}
		}
		if n != size {
			t.Errorf("received %d bytes, want %d", n, size)
		}
	})

	t.Run("streamed response is flushed, not buffered", func(t *testing.T) {
		t.Parallel()
		// The upstream sends "tick 0", flushes, and sends "tick 1" only
		// once the test has read "tick 0" (or after 10s): a gateway that
		// buffers the response delivers nothing until then.
		resp, err := c.Get(g.url("/stream/ticks?ticks=2&hold=1"))
		if err != nil {
			up.release()
			t.Fatalf("GET ticks: %v%s", err, g.output())
		}
		defer resp.Body.Close()
		start := time.Now()
		br := bufio.NewReader(resp.Body)
		line, err := br.ReadString('\n')
		d := time.Since(start)
		up.release()
		if err != nil || line != "tick 0\n" || d > 8*time.Second {
			t.Errorf("first line %q (err %v) after %v; want \"tick 0\" before the upstream sends more (the gateway buffers streamed responses)", line, err, d)
		}
		rest, _ := io.ReadAll(br)
		if string(rest) != "tick 1\n" {
			t.Errorf("rest of the stream %q, want \"tick 1\\n\"", rest)
		}
	})
}
