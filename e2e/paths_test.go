package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestPaths sends hand-written request lines over TLS, so that no client
// library normalises them before the gateway sees them.
func TestPaths(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := startGateway(t, baseConfig, map[string]string{"Up": up.URL})

	rawGet := func(t *testing.T, target, marker string, extra string) (*http.Response, []byte) {
		t.Helper()
		return g.raw(t, fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nX-E2E-Marker: %s\r\n%s\r\n", target, g.https, marker, extra))
	}

	t.Run("ambiguous paths are 400", func(t *testing.T) {
		t.Parallel()
		for i, target := range []string{
			`/v1/..%2f..%2fadmin`,
			`/public/..%2f..%2fprivate/x`,
			`/%2e%2e/x`,
			`/public/%2e%2e/%2e%2e/x`,
			`/a%00b`,
			`/public/a%00b`,
			`/a%5cb`,
			`/public/a%5cb`,
			`/a\b`,
			`/public/a\b`,
			`/public/%252e%252e/x`,
			`/public/%252f`,
			`/public/%c0%ae%c0%ae/x`,
			`/public/%c0%af`,
			`/public/%ff`,
			`/public/../../x`,
		} {
			marker := fmt.Sprintf("ambiguous-%d", i)
			resp, body := rawGet(t, target, marker, "")
			checkProblem(t, g, "GET "+target, resp, body, http.StatusBadRequest)
			if n := up.hits(marker); n != 0 {
				t.Errorf("GET %s reached the upstream", target)
			}
		}
	})

	t.Run("canonical path is forwarded", func(t *testing.T) {
		t.Parallel()
		for i, tc := range []struct{ target, want string }{
			{`/public/./x//y`, "/public/x/y"},
			{`/public;jsessionid=1/x`, "/public/x"},
			{`/public/a/../b`, "/public/b"},
			{`/public/%41%62c`, "/public/Abc"},
			{`/public//x?q=1`, "/public/x"},
			{`//public/x`, "/public/x"},
			{`/public/x/.`, "/public/x/"},
			{`/public/caf%C3%A9`, "/public/caf%C3%A9"},
		} {
			resp, body := rawGet(t, tc.target, fmt.Sprint("canon-", i), "")
			if resp.StatusCode != 200 {
				t.Errorf("GET %s: %d %q, want 200 via the public route", tc.target, resp.StatusCode, body)
				continue
			}
			e := decodeEcho(t, g, body)
			if e.RawPath != tc.want {
				t.Errorf("GET %s reached the upstream as %q, want %q", tc.target, e.RawPath, tc.want)
			}
			if _, q, _ := strings.Cut(tc.target, "?"); e.Query != q {
				t.Errorf("GET %s: upstream query %q, want %q", tc.target, e.Query, q)
			}
		}
	})

	t.Run("dot segments cannot bypass auth", func(t *testing.T) {
		t.Parallel()
		for i, target := range []string{`/public/../private/x`, `/public/%2e%2e/private/x`, `/public/./../private/x`} {
			marker := fmt.Sprint("bypass-", i)
			resp, body := rawGet(t, target, marker, "")
			if resp.StatusCode == 200 || up.hits(marker) != 0 {
				t.Errorf("GET %s without a key reached the upstream (%d %q)", target, resp.StatusCode, body)
				continue
			}
			if resp.StatusCode != 401 && resp.StatusCode != 400 {
				t.Errorf("GET %s without a key: %d, want 401 (route private) or 400", target, resp.StatusCode)
			}
		}
	})

	t.Run("non-origin-form targets are answered by the gateway", func(t *testing.T) {
		t.Parallel()
		// Whatever the status, the answer must come from the gateway (its
		// headers, its problem documents), not from a layer under it: net/http
		// answers "OPTIONS *" itself unless http.Server.DisableGeneralOptionsHandler is set.
		for i, req := range []string{
			"OPTIONS * HTTP/1.1\r\nHost: " + g.https + "\r\n",
			"CONNECT good:443 HTTP/1.1\r\nHost: good:443\r\n",
		} {
			marker := fmt.Sprint("non-origin-", i)
			resp, body := g.raw(t, req+"X-E2E-Marker: "+marker+"\r\n\r\n")
			checkSecurityHeaders(t, g, firstLine(req)+fmt.Sprintf(" (answered %d %q)", resp.StatusCode, body), resp)
			if up.hits(marker) != 0 {
				t.Errorf("%s reached the upstream", firstLine(req))
			}
		}
	})

	t.Run("host-bound route", func(t *testing.T) {
		t.Parallel()
		// Control: the route answers for Host: good.
		resp, body := g.raw(t, "GET /hosted/x HTTP/1.1\r\nHost: good\r\n\r\n")
		if resp.StatusCode != 200 {
			t.Fatalf("GET /hosted/x with Host: good: %d %q, want 200%s", resp.StatusCode, body, g.output())
		}
		resp, body = g.raw(t, "GET /hosted/x HTTP/1.1\r\nHost: other.example\r\nX-E2E-Marker: host-other\r\n\r\n")
		if resp.StatusCode != 404 || up.hits("host-other") != 0 {
			t.Errorf("GET /hosted/x with Host: other.example: %d %q, want 404 without reaching the upstream", resp.StatusCode, body)
		}
		for i, target := range []string{"https://other.example/hosted/x", "http://other.example/hosted/x", "https://other.example:443/hosted/x"} {
			marker := fmt.Sprint("absolute-", i)
			resp, body := g.raw(t, "GET "+target+" HTTP/1.1\r\nHost: good\r\nX-E2E-Marker: "+marker+"\r\n\r\n")
			if up.hits(marker) != 0 || resp.StatusCode == 200 {
				t.Errorf("absolute-form GET %s with Host: good reached the route of host good: %d %q", target, resp.StatusCode, body)
				continue
			}
			if resp.StatusCode != 404 && resp.StatusCode != 400 {
				t.Errorf("absolute-form GET %s with Host: good: %d, want 404 or 400", target, resp.StatusCode)
			}
		}
	})
}
