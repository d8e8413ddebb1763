package proxy

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/breakwater/breakwater/internal/config"
)

func TestRewriteLocations(t *testing.T) {
	u := newUpstream(t, config.Upstream{Targets: []string{"http://10.0.3.7:8080/api", "https://orders.internal"}}, Options{})
	for _, tc := range []struct{ in, want string }{
		{"http://10.0.3.7:8080/api/v1/orders/7?x=1#f", "https://gw.example.com/v1/orders/7?x=1#f"},
		{"http://10.0.3.7:8080/api", "https://gw.example.com/"},
		{"HTTP://10.0.3.7:8080/api/a%2Fb", "https://gw.example.com/a%2Fb"},
		{"https://orders.internal/v1/x", "https://gw.example.com/v1/x"},
		{"https://ORDERS.internal:443/v1/x", "https://gw.example.com/v1/x"},
		{"http://10.0.3.7:8080/other", "http://10.0.3.7:8080/other"},   // outside the base path: left alone
		{"http://10.0.3.7:8080/apis/x", "http://10.0.3.7:8080/apis/x"}, // "apis" is not under "api"
		{"https://idp.example.com/authorize?x=1", "https://idp.example.com/authorize?x=1"},
		{"http://orders.internal/v1/x", "http://orders.internal/v1/x"}, // other scheme: another origin
		{"/v1/relative", "/v1/relative"},
		{"http://user:pw@10.0.3.7:8080/api/x", "http://user:pw@10.0.3.7:8080/api/x"},
	} {
		h := http.Header{"Location": {tc.in}, "Content-Location": {tc.in}}
		u.rewriteLocations(h, "gw.example.com")
		if got := h.Get("Location"); got != tc.want {
			t.Errorf("Location %q → %q, want %q", tc.in, got, tc.want)
		}
		if got := h.Get("Content-Location"); got != tc.want {
			t.Errorf("Content-Location %q → %q, want %q", tc.in, got, tc.want)
		}
	}
	h := http.Header{"Location": {"http://10.0.3.7:8080/api/x", "http://10.0.3.7:8080/api/y"}}
	u.rewriteLocations(h, "gw.example.com")
	if len(h["Location"]) != 2 || h["Location"][0] != "http://10.0.3.7:8080/api/x" {
		t.Errorf("a repeated Location was rewritten: %v", h)
	}
}

func TestRedirectToUpstreamAddressIsRewritten(t *testing.T) {
	var self string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, self+"/login?next=%2Forders", http.StatusFound)
	}))
	t.Cleanup(up.Close)
	self = up.URL
	u := newUpstream(t, config.Upstream{Targets: []string{up.URL}}, Options{})
	w, _ := get(u, "/orders")
	if w.Code != http.StatusFound {
		t.Fatalf("status %d", w.Code)
	}
	if got, want := w.Header().Get("Location"), "https://example.com/login?next=%2Forders"; got != want {
		t.Fatalf("Location %q, want %q (the upstream's address must not reach the client)", got, want)
	}
}
