package edge

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRedirectHandler(t *testing.T) {
	tests := []struct {
		name, https, method, target, host string
		status                            int
		location                          string
	}{
		{"basic", ":8443", "GET", "/v1/orders?id=1", "api.example.com", 308, "https://api.example.com:8443/v1/orders?id=1"},
		{"port stripped", ":8443", "GET", "/", "api.example.com:8080", 308, "https://api.example.com:8443/"},
		{"443 omitted", ":443", "GET", "/x", "api.example.com", 308, "https://api.example.com/x"},
		{"service name", "0.0.0.0:https", "GET", "/x", "api.example.com", 308, "https://api.example.com/x"},
		{"host lowered", ":8443", "GET", "/", "API.Example.COM", 308, "https://api.example.com:8443/"},
		{"trailing dot", ":8443", "GET", "/", "example.com.", 308, "https://example.com.:8443/"},
		{"ipv4", ":8443", "GET", "/", "127.0.0.1:8080", 308, "https://127.0.0.1:8443/"},
		{"ipv6", ":8443", "GET", "/", "[::1]:8080", 308, "https://[::1]:8443/"},
		{"ipv6 no port", ":443", "GET", "/", "[2001:DB8::1]", 308, "https://[2001:db8::1]/"},
		{"escaped path kept", ":8443", "GET", "/a%20b/%2F", "h.example", 308, "https://h.example:8443/a%20b/%2F"},
		{"double slash stays a path", ":8443", "GET", "//evil.com/x", "h.example", 308, "https://h.example:8443//evil.com/x"},
		{"POST keeps method via 308", ":8443", "POST", "/v1/orders", "h.example", 308, "https://h.example:8443/v1/orders"},
		{"DELETE", ":8443", "DELETE", "/v1/orders/1", "h.example", 308, "https://h.example:8443/v1/orders/1"},
		{"OPTIONS *", ":8443", "OPTIONS", "*", "h.example", 308, "https://h.example:8443/"},
		{"acme challenge", ":8443", "GET", "/.well-known/acme-challenge/tok", "h.example", 404, ""},

		// Attacks: never a redirect.
		{"path in host", ":8443", "GET", "/", "evil.com/@x", 400, ""},
		{"userinfo in host", ":8443", "GET", "/", "user@evil.com", 400, ""},
		{"CRLF injection", ":8443", "GET", "/", "h.example\r\nSet-Cookie: a=b", 400, ""},
		{"LF injection", ":8443", "GET", "/", "h.example\nX: y", 400, ""},
		{"space", ":8443", "GET", "/", "h.example evil.com", 400, ""},
		{"backslash", ":8443", "GET", "/", "evil.com\\h.example", 400, ""},
		{"query in host", ":8443", "GET", "/", "evil.com?h.example", 400, ""},
		{"fragment in host", ":8443", "GET", "/", "evil.com#h.example", 400, ""},
		{"not a port", ":8443", "GET", "/", "host:notaport", 400, ""},
		{"port too big", ":8443", "GET", "/", "host:99999", 400, ""},
		{"two ports", ":8443", "GET", "/", "host:80:80", 400, ""},
		{"empty host", ":8443", "GET", "/", "", 400, ""},
		{"only port", ":8443", "GET", "/", ":8080", 400, ""},
		{"unclosed bracket", ":8443", "GET", "/", "[::1", 400, ""},
		{"junk after bracket", ":8443", "GET", "/", "[::1]evil.com", 400, ""},
		{"ipv6 zone", ":8443", "GET", "/", "[fe80::1%25eth0]", 400, ""},
		{"ipv4 in brackets", ":8443", "GET", "/", "[127.0.0.1]", 400, ""},
		{"bare ipv6", ":8443", "GET", "/", "::1", 400, ""},
		{"numeric host", ":8443", "GET", "/", "1.2.3", 400, ""},
		{"hex host", ":8443", "GET", "/", "0x7f.1", 400, ""},
		{"empty label", ":8443", "GET", "/", "a..b", 400, ""},
		{"leading dot", ":8443", "GET", "/", ".example.com", 400, ""},
		{"non-ASCII", ":8443", "GET", "/", "éxample.com", 400, ""},
		{"long label", ":8443", "GET", "/", strings.Repeat("a", 64) + ".com", 400, ""},
		{"NUL", ":8443", "GET", "/", "h.example\x00", 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.target, nil)
			r.Host = tt.host
			w := httptest.NewRecorder()
			RedirectHandler(tt.https).ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d (Location %q)", w.Code, tt.status, w.Header().Get("Location"))
			}
			if got := w.Header().Get("Location"); got != tt.location {
				t.Errorf("Location %q, want %q", got, tt.location)
			}
			if tt.status != 308 && !strings.HasPrefix(w.Header().Get("Content-Type"), "application/problem+json") {
				t.Errorf("error body is %q", w.Header().Get("Content-Type"))
			}
		})
	}
}

func TestRedirectQueryEscaped(t *testing.T) {
	r := httptest.NewRequest("GET", "/p", nil)
	r.Host = "h.example"
	r.URL.RawQuery = "a=<b>&c=\"d\" \r\n\x7f&é=1&ok=%41/?:@"
	w := httptest.NewRecorder()
	RedirectHandler(":443").ServeHTTP(w, r)
	want := "https://h.example/p?a=%3Cb%3E&c=%22d%22%20%0D%0A%7F&%C3%A9=1&ok=%41/?:@"
	if got := w.Header().Get("Location"); got != want {
		t.Errorf("Location %q\nwant     %q", got, want)
	}
}

// TestRedirectOverTCP drives the handler through a real server and client.
func TestRedirectOverTCP(t *testing.T) {
	srv := httptest.NewServer(RedirectHandler("127.0.0.1:8443"))
	defer srv.Close()
	client := &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, _ := http.NewRequest("PUT", srv.URL+"/v1/items/7?x=1", strings.NewReader("body"))
	req.Host = "api.example.com:80"
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "https://api.example.com:8443/v1/items/7?x=1" {
		t.Errorf("%d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}
