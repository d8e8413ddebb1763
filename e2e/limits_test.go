package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

const limitsConfig = `version: 1
server:
  https: "{{.HTTPS}}"
  admin: "{{.Admin}}"
  data_dir: "{{.Data}}"
  shutdown_timeout: 5s
  limits:
    max_body: 1KiB
    max_uri_bytes: 1KiB
    max_header_bytes: 4KiB
    read_header_timeout: 1s
    max_in_flight: {{.MaxInFlight}}
    max_connections_per_ip: {{.PerIP}}
tls:
  self_signed: true
admin:
  token_hash: "{{.AdminHash}}"
routes:
  - name: public
    path: /public/**
    upstream: { targets: ["{{.Up}}"], timeout: 20s }
    auth: none
  - name: big
    path: /big/**
    upstream: { targets: ["{{.Up}}"], timeout: 20s }
    auth: none
    max_body: 64KiB
`

func startLimitsGateway(t *testing.T, maxInFlight, perIP int) (*gateway, *upstream) {
	t.Helper()
	up := newUpstream(t)
	g := startGateway(t, limitsConfig, map[string]string{
		"Up": up.URL, "MaxInFlight": fmt.Sprint(maxInFlight), "PerIP": fmt.Sprint(perIP),
	})
	return g, up
}

func chunked(total, chunk int) string {
	var b strings.Builder
	for sent := 0; sent < total; sent += chunk {
		n := min(chunk, total-sent)
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, strings.Repeat("b", n))
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

func TestLimits(t *testing.T) {
	t.Parallel()

	t.Run("sizes", func(t *testing.T) {
		t.Parallel()
		g, up := startLimitsGateway(t, 100, 50)
		post := func(path, marker, framing, body string) string {
			return "POST " + path + " HTTP/1.1\r\nHost: " + g.https + "\r\nX-E2E-Marker: " + marker + "\r\nContent-Type: text/plain\r\n" + framing + "\r\n" + body
		}
		for _, tc := range []struct {
			name, req, marker string
			status            int
			upstreamLen       int // body length the upstream must see when status is 200
		}{
			{"small body, Content-Length", post("/public/x", "cl-small", "Content-Length: 512\r\n", strings.Repeat("a", 512)), "cl-small", 200, 512},
			{"body over max_body, Content-Length", post("/public/x", "cl-big", "Content-Length: 2048\r\n", strings.Repeat("a", 2048)), "cl-big", 413, 0},
			{"small body, chunked", post("/public/x", "ch-small", "Transfer-Encoding: chunked\r\n", chunked(512, 100)), "ch-small", 200, 512},
			{"body over max_body, chunked", post("/public/x", "ch-big", "Transfer-Encoding: chunked\r\n", chunked(64<<10, 4096)), "ch-big", 413, 0},
			{"route max_body override allows 32KiB", post("/big/x", "route-ok", "Content-Length: 32768\r\n", strings.Repeat("a", 32<<10)), "route-ok", 200, 32 << 10},
			{"route max_body override, 100KiB chunked", post("/big/x", "route-big", "Transfer-Encoding: chunked\r\n", chunked(100<<10, 8192)), "route-big", 413, 0},
		} {
			resp, body := g.raw(t, tc.req)
			if tc.status == 200 {
				if resp.StatusCode != 200 {
					t.Errorf("%s: %d %q, want 200", tc.name, resp.StatusCode, body)
					continue
				}
				if e := decodeEcho(t, g, body); e.BodyLen != tc.upstreamLen {
					t.Errorf("%s: upstream read %d body bytes, want %d", tc.name, e.BodyLen, tc.upstreamLen)
				}
				continue
			}
			checkProblem(t, g, tc.name, resp, body, tc.status)
		}

		// The same over HTTP/2, where there is no chunked encoding: a body
		// of unknown length is a stream of DATA frames.
		h2 := g.h2client(t)
		for _, tc := range []struct {
			name string
			body io.Reader
		}{
			{"h2 body over max_body, known length", strings.NewReader(strings.Repeat("a", 2048))},
			{"h2 body over max_body, unknown length", io.MultiReader(strings.NewReader(strings.Repeat("a", 64<<10)))},
		} {
			resp, body := g.do(t, h2, "POST", "/public/x", tc.body, http.Header{"X-E2E-Marker": {"h2-big"}})
			if resp.ProtoMajor != 2 {
				t.Errorf("%s: protocol %s, want HTTP/2", tc.name, resp.Proto)
			}
			checkProblem(t, g, tc.name, resp, body, http.StatusRequestEntityTooLarge)
		}
		resp, body := g.get(t, h2, "/public/"+strings.Repeat("a", 2000), nil)
		checkProblem(t, g, "h2 2000-byte URI", resp, body, http.StatusRequestURITooLong)

		// URI over max_uri_bytes (1KiB), still well under the header limit.
		resp, body = g.raw(t, "GET /public/"+strings.Repeat("a", 2000)+" HTTP/1.1\r\nHost: "+g.https+"\r\n\r\n")
		checkProblem(t, g, "2000-byte URI", resp, body, http.StatusRequestURITooLong)
		// Control: a URI just under it passes.
		resp, body = g.raw(t, "GET /public/"+strings.Repeat("a", 900)+" HTTP/1.1\r\nHost: "+g.https+"\r\n\r\n")
		if resp.StatusCode != 200 {
			t.Errorf("900-byte URI: %d %q, want 200", resp.StatusCode, body)
		}

		// Headers over max_header_bytes (4KiB).
		resp, body = g.raw(t, "GET /public/x HTTP/1.1\r\nHost: "+g.https+"\r\nX-E2E-Marker: big-headers\r\nX-Big: "+strings.Repeat("h", 16<<10)+"\r\n\r\n")
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("16KiB of headers: %d %q, want 431", resp.StatusCode, body)
		}
		if up.hits("big-headers") != 0 {
			t.Errorf("a request with 16KiB of headers reached the upstream")
		}
	})

	t.Run("max_in_flight sheds load with 503", func(t *testing.T) {
		t.Parallel()
		g, up := startLimitsGateway(t, 1, 50)
		c := g.client(t)
		type result struct {
			status int
			err    error
		}
		slow := make(chan result, 1)
		go func() {
			req, _ := http.NewRequest("GET", g.url("/public/slow?sleep=hold"), nil)
			req.Header.Set("X-E2E-Marker", "inflight-slow")
			resp, err := c.Do(req)
			if err != nil {
				slow <- result{err: err}
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			slow <- result{status: resp.StatusCode}
		}()
		select {
		case <-up.started:
		case r := <-slow:
			t.Fatalf("the slow request ended before reaching the upstream: %+v%s", r, g.output())
		case <-time.After(15 * time.Second):
			up.release()
			t.Fatalf("the slow request did not reach the upstream within 15s%s", g.output())
		}
		resp, body := g.get(t, c, "/public/second", http.Header{"X-E2E-Marker": {"inflight-second"}})
		checkProblem(t, g, "second request while one is in flight", resp, body, http.StatusServiceUnavailable)
		if resp.Header.Get("Retry-After") == "" {
			t.Errorf("503 without Retry-After")
		}
		if up.hits("inflight-second") != 0 {
			t.Errorf("the shed request reached the upstream")
		}
		up.release()
		if r := <-slow; r.err != nil || r.status != 200 {
			t.Errorf("the in-flight request: %+v, want 200", r)
		}
		resp, body = g.get(t, c, "/public/after", nil)
		if resp.StatusCode != 200 {
			t.Errorf("after the slow request finished: %d %q, want 200 (slot not released?)", resp.StatusCode, body)
		}
	})

	t.Run("max_connections_per_ip", func(t *testing.T) {
		t.Parallel()
		g, _ := startLimitsGateway(t, 100, 2)
		var open []*tls.Conn
		defer func() {
			for _, c := range open {
				c.Close()
			}
		}()
		for i := 0; i < 2; i++ {
			c, err := g.dialTLS(t)
			if err != nil {
				t.Fatalf("connection %d of 2: %v%s", i+1, err, g.output())
			}
			open = append(open, c)
		}
		third := func() error {
			c, err := g.dialTLS(t)
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(c, "GET /public/x HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
				return err
			}
			buf := make([]byte, 1)
			_, err = c.Read(buf)
			return err
		}
		if err := third(); err == nil {
			t.Fatalf("a third concurrent connection from 127.0.0.1 was served with max_connections_per_ip: 2%s", g.output())
		}
		// Closing one frees its slot.
		open[0].Close()
		open = open[1:]
		eventually(t, 10*time.Second, func() string {
			if err := third(); err != nil {
				return "a new connection after closing one still fails: " + err.Error()
			}
			return ""
		})
	})

	t.Run("slowloris", func(t *testing.T) {
		t.Parallel()
		g, up := startLimitsGateway(t, 100, 50)
		c, err := g.dialTLS(t)
		if err != nil {
			t.Fatalf("dial: %v%s", err, g.output())
		}
		defer c.Close()
		start := time.Now()
		closed := make(chan time.Duration, 1)
		go func() {
			buf := make([]byte, 512)
			for {
				if _, err := c.Read(buf); err != nil {
					closed <- time.Since(start)
					return
				}
			}
		}()
		var wg sync.WaitGroup
		wg.Add(1)
		stop := make(chan struct{})
		go func() {
			defer wg.Done()
			req := "GET /public/x HTTP/1.1\r\nHost: a\r\nX-E2E-Marker: slowloris\r\nX-Slow: " + strings.Repeat("s", 200)
			for i := 0; i < len(req); i++ {
				if _, err := c.Write([]byte{req[i]}); err != nil {
					return
				}
				select {
				case <-stop:
					return
				case <-time.After(300 * time.Millisecond):
				}
			}
		}()
		select {
		case d := <-closed:
			t.Logf("slowloris connection closed after %v (read_header_timeout: 1s)", d.Round(time.Millisecond))
		case <-time.After(10 * time.Second):
			t.Errorf("a connection trickling one header byte per 300ms was still open after 10s with read_header_timeout: 1s")
		}
		close(stop)
		c.Close()
		wg.Wait()
		if up.hits("slowloris") != 0 {
			t.Errorf("the slowloris request reached the upstream")
		}
	})
}
