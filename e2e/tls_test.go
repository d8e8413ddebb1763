package e2e

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestTLSAndEdge(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	cfg := strings.Replace(baseConfig, `  admin: "{{.Admin}}"`, `  admin: "{{.Admin}}"`+"\n"+`  http: "{{.HTTP}}"`, 1)
	g := startGateway(t, cfg, map[string]string{"Up": up.URL})

	handshake := func(c *tls.Config) (tls.ConnectionState, error) {
		c.RootCAs = g.caPool(t)
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", g.https, c)
		if err != nil {
			return tls.ConnectionState{}, err
		}
		defer conn.Close()
		return conn.ConnectionState(), nil
	}

	t.Run("protocol versions and ciphers", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name string
			cfg  *tls.Config
			ok   bool
		}{
			{"TLS 1.0", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}, false},
			{"TLS 1.1", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, false},
			{"TLS 1.2 CBC only", &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
				tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
				tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
				tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
				tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_256_CBC_SHA,
			}}, false},
			{"TLS 1.2 RSA key exchange only", &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
				tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
			}}, false},
			{"TLS 1.2 3DES only", &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
				tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA,
			}}, false},
			{"TLS 1.2 ECDHE AEAD", &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
				tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			}}, true},
			{"TLS 1.3", &tls.Config{MinVersion: tls.VersionTLS13}, true},
		} {
			st, err := handshake(tc.cfg)
			switch {
			case tc.ok && err != nil:
				t.Errorf("%s: handshake refused: %v", tc.name, err)
			case !tc.ok && err == nil:
				t.Errorf("%s: handshake accepted (%s, %s), want refused", tc.name, tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
			case !tc.ok && !strings.Contains(err.Error(), "remote error"):
				// The refusal must come from the server, not from this client.
				t.Errorf("%s: handshake failed on the client side (%v); the test does not reach the server", tc.name, err)
			case !tc.ok:
				t.Logf("%s: refused: %v", tc.name, err)
			}
		}
	})

	t.Run("h2 negotiated", func(t *testing.T) {
		t.Parallel()
		resp, body := g.get(t, g.h2client(t), "/public/h2", http.Header{"X-Consumer-Id": {"admin"}})
		if resp.ProtoMajor != 2 {
			t.Errorf("protocol %s, want HTTP/2 via ALPN", resp.Proto)
		}
		if resp.StatusCode != 200 {
			t.Fatalf("GET /public/h2 over h2: %d %q%s", resp.StatusCode, body, g.output())
		}
		checkSecurityHeaders(t, g, "h2 200", resp)
		if e := decodeEcho(t, g, body); e.Header.Get("X-Consumer-Id") != "" || e.Header.Get("X-Forwarded-Proto") != "https" {
			t.Errorf("over h2 the upstream saw X-Consumer-Id %q and X-Forwarded-Proto %q; want none and https",
				e.Header.Get("X-Consumer-Id"), e.Header.Get("X-Forwarded-Proto"))
		}
		// A 401 over h2 too.
		resp, body = g.get(t, g.h2client(t), "/private/x", nil)
		checkProblem(t, g, "401 over h2", resp, body, http.StatusUnauthorized)
	})

	t.Run("plain HTTP only redirects", func(t *testing.T) {
		t.Parallel()
		_, httpsPort, _ := net.SplitHostPort(g.https)
		for _, tc := range []struct {
			method, path, host, want string
		}{
			{"GET", "/public/x?a=1&b=two", "", "https://127.0.0.1:" + httpsPort + "/public/x?a=1&b=two"},
			{"POST", "/public/x?q=%2F", "", "https://127.0.0.1:" + httpsPort + "/public/x?q=%2F"},
			{"GET", "/private/x", "localhost", "https://localhost:" + httpsPort + "/private/x"},
		} {
			req, _ := http.NewRequest(tc.method, "http://"+g.http+tc.path, strings.NewReader("body"))
			if tc.host != "" {
				req.Host = tc.host
			}
			req.Header.Set("X-E2E-Marker", "redirect")
			resp, err := plainClient.Do(req)
			if err != nil {
				t.Fatalf("%s http://%s%s: %v%s", tc.method, g.http, tc.path, err, g.output())
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusPermanentRedirect {
				t.Errorf("%s %s over plain HTTP: %d, want 308", tc.method, tc.path, resp.StatusCode)
			}
			if loc := resp.Header.Get("Location"); loc != tc.want {
				t.Errorf("%s %s over plain HTTP: Location %q, want %q", tc.method, tc.path, loc, tc.want)
			}
		}
		if n := up.hits("redirect"); n != 0 {
			t.Errorf("the plain-HTTP listener proxied %d requests to the upstream", n)
		}
		// The Location works.
		resp, body := g.get(t, g.client(t), "/public/x?a=1&b=two", nil)
		if resp.StatusCode != 200 {
			t.Errorf("following the redirect: %d %q", resp.StatusCode, body)
		}
	})
}
