package e2e

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// checkSecurityHeaders checks what every response of the HTTPS listener carries.
func checkSecurityHeaders(t *testing.T, g *gateway, what string, resp *http.Response) {
	t.Helper()
	h := resp.Header
	if v := h.Get("Strict-Transport-Security"); !strings.HasPrefix(v, "max-age=") {
		t.Errorf("%s: Strict-Transport-Security = %q, want max-age=…", what, v)
	}
	if v := h.Get("X-Content-Type-Options"); v != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options = %q, want nosniff", what, v)
	}
	if v := h.Get("X-Request-Id"); v == "" {
		t.Errorf("%s: no X-Request-Id", what)
	}
	if v := h.Values("Server"); len(v) > 0 && strings.ContainsAny(strings.Join(v, " "), "/0123456789") {
		t.Errorf("%s: Server = %q reveals a version (the upstream's Server: Apache/2.4.1 must not pass)", what, v)
	}
	if v := h.Values("X-Powered-By"); len(v) > 0 {
		t.Errorf("%s: X-Powered-By = %q, want none", what, v)
	}
}

var requestIDField = regexp.MustCompile(`"request_id":"[^"]*"`)

// checkProblem checks an RFC 9457 problem response and returns its body
// with request_id emptied.
func checkProblem(t *testing.T, g *gateway, what string, resp *http.Response, body []byte, status int) []byte {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("%s: status %d, want %d; body %q", what, resp.StatusCode, status, body)
		return nil
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if ct != "application/problem+json" {
		t.Errorf("%s: Content-Type %q, want application/problem+json; body %q", what, resp.Header.Get("Content-Type"), body)
		return nil
	}
	var p struct {
		Type      string `json:"type"`
		Title     string `json:"title"`
		Status    int    `json:"status"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		t.Errorf("%s: problem body is not JSON: %v: %q", what, err, body)
		return nil
	}
	if p.Status != status || p.Title == "" || p.Type == "" {
		t.Errorf("%s: problem body %q: want status %d, a title and a type", what, body, status)
	}
	if p.RequestID == "" || p.RequestID != resp.Header.Get("X-Request-Id") {
		t.Errorf("%s: request_id %q in the body, X-Request-Id %q in the header: want the same, non-empty", what, p.RequestID, resp.Header.Get("X-Request-Id"))
	}
	checkSecurityHeaders(t, g, what, resp)
	return requestIDField.ReplaceAll(body, []byte(`"request_id":""`))
}

// headerShape is the response's header names with the values that may
// differ between two requests (date, request id) blanked.
func headerShape(h http.Header) string {
	var parts []string
	for k, v := range h {
		switch k {
		case "Date", "X-Request-Id":
			v = []string{"*"}
		}
		parts = append(parts, k+": "+strings.Join(v, ", "))
	}
	sort.Strings(parts)
	return strings.Join(parts, "\n")
}

func TestServeBasics(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := startGateway(t, baseConfig, map[string]string{"Up": up.URL})
	c := g.client(t)
	// Runs after the subtests, before the gateway stops: no credential
	// sent by the subtests may appear in any log.
	t.Cleanup(func() {
		logs := g.stdout.String() + g.stderr.String()
		for what, secret := range map[string]string{
			"reader API key":            readerKey,
			"writer API key":            writerKey,
			"unknown API key":           "bw_unknownKey000000000000000000000000000000000",
			"token in the query string": "e2e-query-token-value",
			"Authorization header":      "e2e-bearer-value",
		} {
			if strings.Contains(logs, secret) {
				t.Errorf("the %s appears in the gateway's logs%s", what, g.output())
			}
		}
	})

	t.Run("credentials are not logged", func(t *testing.T) {
		t.Parallel()
		for _, path := range []string{"/public/x?access_token=e2e-query-token-value", "/private/x?api_key=e2e-query-token-value&b=1"} {
			resp, body := g.get(t, c, path, http.Header{"Authorization": {"Bearer e2e-bearer-value"}, "Cookie": {"session=e2e-bearer-value"}})
			if resp.StatusCode != 200 && resp.StatusCode != 401 {
				t.Errorf("GET %s: %d %q", path, resp.StatusCode, body)
			}
		}
	})

	t.Run("public route", func(t *testing.T) {
		t.Parallel()
		resp, body := g.get(t, c, "/public/hello", http.Header{"X-Consumer-Id": {"admin"}})
		if resp.StatusCode != 200 {
			t.Fatalf("GET /public/hello: %d %q, want 200%s", resp.StatusCode, body, g.output())
		}
		checkSecurityHeaders(t, g, "public 200", resp)
		e := decodeEcho(t, g, body)
		if e.Path != "/public/hello" {
			t.Errorf("upstream saw path %q, want /public/hello", e.Path)
		}
		if v := e.Header.Values("X-Consumer-Id"); len(v) > 0 {
			t.Errorf("a client-sent X-Consumer-Id reached the upstream of a public route: %q", v)
		}
	})

	t.Run("api key: identity headers, spoofed headers removed", func(t *testing.T) {
		t.Parallel()
		resp, body := g.raw(t, "GET /private/items?x=1 HTTP/1.1\r\n"+
			"Host: "+g.https+"\r\n"+
			"X-API-Key: "+readerKey+"\r\n"+
			"X-E2E-Marker: identity\r\n"+
			"X-Request-Id: client-chosen-id\r\n"+
			"X-Forwarded-For: 6.6.6.6\r\n"+
			"X-Forwarded-Proto: http\r\n"+
			"X-Forwarded-Host: evil.example\r\n"+
			"X-Consumer-Id: admin\r\n"+
			"X-Consumer-Scopes: admin write\r\n"+
			"X-Gateway-Identity: forged.jwt.value\r\n"+
			"X-HTTP-Method-Override: DELETE\r\n"+
			"X-Method-Override: DELETE\r\n"+
			"X-HTTP-Method: DELETE\r\n"+
			"Forwarded: for=6.6.6.6;proto=http;host=evil.example\r\n"+
			"Connection: X-Consumer-Id, X-E2E-Hop\r\n"+
			"X-E2E-Hop: must-not-pass\r\n"+
			"\r\n")
		if resp.StatusCode != 200 {
			t.Fatalf("GET /private/items with a valid key: %d %q, want 200%s", resp.StatusCode, body, g.output())
		}
		checkSecurityHeaders(t, g, "authenticated 200", resp)
		e := decodeEcho(t, g, body)
		h := e.Header
		if e.Method != "GET" {
			t.Errorf("upstream saw method %q, want GET (method override headers must be ignored)", e.Method)
		}
		if v := h.Values("X-Consumer-Id"); len(v) != 1 || v[0] != "reader" {
			t.Errorf("upstream X-Consumer-Id = %q, want [reader] (the gateway's own, even with Connection: X-Consumer-Id from the client)", v)
		}
		if v := strings.Join(h.Values("X-Consumer-Scopes"), ","); !strings.Contains(v, "read") || strings.Contains(v, "admin") || strings.Contains(v, "write") {
			t.Errorf("upstream X-Consumer-Scopes = %q, want the consumer's scopes [read] only", v)
		}
		if resp.Header.Get("X-Request-Id") == "client-chosen-id" {
			t.Errorf("the gateway kept the X-Request-Id of an untrusted client")
		}
		if v := h.Values("X-Request-Id"); len(v) != 1 || v[0] == "" || v[0] != resp.Header.Get("X-Request-Id") {
			t.Errorf("upstream X-Request-Id = %q, client got %q: want one, the same", v, resp.Header.Get("X-Request-Id"))
		}
		if v := h.Values("X-Forwarded-For"); len(v) != 1 || v[0] != "127.0.0.1" {
			t.Errorf("upstream X-Forwarded-For = %q, want [127.0.0.1] (the client's 6.6.6.6 is not from a trusted proxy)", v)
		}
		if v := h.Values("X-Forwarded-Proto"); len(v) != 1 || v[0] != "https" {
			t.Errorf("upstream X-Forwarded-Proto = %q, want [https]", v)
		}
		if v := h.Values("X-Forwarded-Host"); strings.Contains(strings.Join(v, ","), "evil.example") {
			t.Errorf("upstream X-Forwarded-Host = %q: the client's value passed", v)
		}
		if v := h.Values("X-Gateway-Identity"); strings.Contains(strings.Join(v, ","), "forged") {
			t.Errorf("upstream X-Gateway-Identity = %q: the client's value passed", v)
		}
		for _, name := range []string{"X-Http-Method-Override", "X-Method-Override", "X-Http-Method", "Forwarded", "X-E2E-Hop"} {
			if v := h.Values(name); len(v) > 0 {
				t.Errorf("client-sent %s = %q reached the upstream", name, v)
			}
		}
		if v := resp.Header.Get("Cache-Control"); v != "no-store" {
			t.Errorf("authenticated response without upstream Cache-Control: Cache-Control = %q, want no-store", v)
		}
	})

	t.Run("upstream Cache-Control kept on authenticated responses", func(t *testing.T) {
		t.Parallel()
		resp, body := g.get(t, c, "/private/cached?cc=max-age%3D60", http.Header{"X-Api-Key": {readerKey}})
		if resp.StatusCode != 200 {
			t.Fatalf("%d %q%s", resp.StatusCode, body, g.output())
		}
		if v := resp.Header.Get("Cache-Control"); v != "max-age=60" {
			t.Errorf("Cache-Control = %q, want the upstream's max-age=60", v)
		}
	})

	t.Run("uniform 401", func(t *testing.T) {
		t.Parallel()
		cases := []struct{ name, headers string }{
			{"no key", ""},
			{"unknown key", "X-API-Key: bw_unknownKey000000000000000000000000000000000\r\n"},
			{"empty key", "X-API-Key: \r\n"},
			{"repeated header", "X-API-Key: " + readerKey + "\r\nX-API-Key: " + readerKey + "\r\n"},
			{"overlong key", "X-API-Key: bw_" + strings.Repeat("A", 400) + "\r\n"},
			{"key in Authorization instead", "Authorization: Bearer " + readerKey + "\r\n"},
		}
		var first []byte
		var firstChallenge, firstShape string
		for _, tc := range cases {
			marker := "401-" + strings.ReplaceAll(tc.name, " ", "-")
			resp, body := g.raw(t, "GET /private/x HTTP/1.1\r\nHost: "+g.https+"\r\nX-E2E-Marker: "+marker+"\r\n"+tc.headers+"\r\n")
			norm := checkProblem(t, g, tc.name, resp, body, http.StatusUnauthorized)
			checkSecurityHeaders(t, g, tc.name, resp)
			ch := resp.Header.Get("WWW-Authenticate")
			if ch == "" {
				t.Errorf("%s: 401 without WWW-Authenticate", tc.name)
			}
			if up.hits(marker) != 0 {
				t.Errorf("%s: the request reached the upstream", tc.name)
			}
			if norm == nil {
				continue
			}
			if first == nil {
				first, firstChallenge, firstShape = norm, ch, headerShape(resp.Header)
				continue
			}
			if sh := headerShape(resp.Header); sh != firstShape {
				t.Errorf("%s: 401 headers differ from the no-key ones:\n%s\n---- want ----\n%s", tc.name, sh, firstShape)
			}
			if !bytes.Equal(norm, first) {
				t.Errorf("%s: 401 body differs from the no-key one (request_id removed):\n got %q\nwant %q", tc.name, norm, first)
			}
			if ch != firstChallenge {
				t.Errorf("%s: WWW-Authenticate %q differs from %q", tc.name, ch, firstChallenge)
			}
		}
	})

	t.Run("403 missing scope, 200 with it", func(t *testing.T) {
		t.Parallel()
		resp, body := g.do(t, c, "POST", "/write/orders", strings.NewReader(`{"a":1}`), http.Header{"X-Api-Key": {readerKey}, "Content-Type": {"application/json"}, "X-E2E-Marker": {"403"}})
		checkProblem(t, g, "reader POST /write", resp, body, http.StatusForbidden)
		checkSecurityHeaders(t, g, "403", resp)
		if up.hits("403") != 0 {
			t.Errorf("a request without the scope reached the upstream")
		}
		resp, body = g.do(t, c, "POST", "/write/orders", strings.NewReader(`{"a":1}`), http.Header{"X-Api-Key": {writerKey}, "Content-Type": {"application/json"}})
		if resp.StatusCode != 200 {
			t.Fatalf("writer POST /write/orders: %d %q, want 200%s", resp.StatusCode, body, g.output())
		}
		if e := decodeEcho(t, g, body); e.Method != "POST" || e.BodyLen != len(`{"a":1}`) || e.Header.Get("X-Consumer-Id") != "writer" {
			t.Errorf("upstream saw %s with %d body bytes, consumer %q; want POST, 7, writer", e.Method, e.BodyLen, e.Header.Get("X-Consumer-Id"))
		}
	})

	t.Run("404 no route", func(t *testing.T) {
		t.Parallel()
		resp, body := g.get(t, c, "/nothing/here", nil)
		checkProblem(t, g, "GET /nothing/here", resp, body, http.StatusNotFound)
		checkSecurityHeaders(t, g, "404", resp)
	})

	t.Run("405 with Allow", func(t *testing.T) {
		t.Parallel()
		resp, body := g.do(t, c, "POST", "/onlyget/x", strings.NewReader("x"), nil)
		checkProblem(t, g, "POST /onlyget/x", resp, body, http.StatusMethodNotAllowed)
		if a := resp.Header.Get("Allow"); !strings.Contains(a, "GET") {
			t.Errorf("405 Allow = %q, want it to list GET", a)
		}
		checkSecurityHeaders(t, g, "405", resp)
	})
}
