package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/breakwater/breakwater/internal/authn"
	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/reqctx"
)

func TestForwardsCanonicalPathNotClientPath(t *testing.T) {
	up := echoServer(t)
	target := up.URL + "/api/"
	u := newUpstream(t, config.Upstream{Targets: []string{target}}, Options{})
	host := strings.TrimPrefix(up.URL, "http://")

	cases := []struct {
		name      string
		clientURI string // what the client sent (never forwarded as such)
		canonical string // reqctx.State.EscapedPath
		wantURI   string
	}{
		{"plain", "/v1/orders?x=1&y=2", "/v1/orders", "/api/v1/orders?x=1&y=2"},
		{"dot segments resolved by gateway", "/v1/public/../admin?a=b", "/v1/admin", "/api/v1/admin?a=b"},
		{"escaped space kept escaped", "/v1/a%20b", "/v1/a%20b", "/api/v1/a%20b"},
		{"root", "/", "/", "/api/"},
		{"unparsable query parameter dropped", "/q?a=1;b=2&c=3", "/q", "/api/q?c=3"},
		{"absolute form with user info", "http://user:pw@evil.example/v1/x?k=v", "/v1/x", "/api/v1/x?k=v"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tc.clientURI, nil)
			r.Host = "api.example.com"
			e := decodeEcho(t, do(u, r, state(tc.canonical)))
			if e.RequestURI != tc.wantURI {
				t.Errorf("upstream saw %q, want %q", e.RequestURI, tc.wantURI)
			}
			if e.Host != host {
				t.Errorf("upstream Host = %q, want the target's %q", e.Host, host)
			}
			if a := e.Header.Get("Authorization"); a != "" {
				t.Errorf("user info of the client URL leaked as Authorization %q", a)
			}
		})
	}
}

func TestNoCanonicalPathFailsClosed(t *testing.T) {
	up := newCounting(t, "up")
	u := newUpstream(t, config.Upstream{Targets: []string{up.URL}}, Options{})
	st := &reqctx.State{RequestID: testRequestID} // no Path, no EscapedPath
	w := do(u, httptest.NewRequest(http.MethodGet, "/admin", nil), st)
	wantProblem(t, w, http.StatusInternalServerError)
	if up.n.Load() != 0 {
		t.Error("request without canonical path reached the upstream")
	}
}

func TestRequestHeaders(t *testing.T) {
	up := echoServer(t)
	u := newUpstream(t, config.Upstream{Targets: []string{up.URL}}, Options{})
	consumer := &authn.Consumer{ID: "acme", Scopes: []string{"orders:read", "orders:write"}, ScopeText: "orders:read orders:write"}

	// Every header a client may try to pass as the gateway.
	spoofed := map[string]string{
		"X-Forwarded-For":        "10.0.0.1",
		"X-Forwarded-Proto":      "http",
		"X-Forwarded-Host":       "evil.example",
		"X-Forwarded-Port":       "80",
		"X-Forwarded-Prefix":     "/admin",
		"X-Forwarded_For":        "10.0.0.2",
		"Forwarded":              "for=10.0.0.1;proto=http",
		"X-Real-Ip":              "10.0.0.1",
		"X-Client-Ip":            "10.0.0.1",
		"True-Client-Ip":         "10.0.0.1",
		"X-Request-Id":           "client-chosen-id",
		"X-Consumer-Id":          "admin",
		"X-Consumer-Scopes":      "admin:all",
		"X-Consumer-Role":        "root",
		"X-Consumer_Id":          "admin",
		"X_CONSUMER_SCOPES":      "admin:all",
		"X-Gateway-Identity":     "forged.jwt.value",
		"X-Http-Method-Override": "DELETE",
		"X-Http-Method":          "DELETE",
		"X-Method-Override":      "DELETE",
		"X-Original-Url":         "/admin",
		"X-Rewrite-Url":          "/admin",
	}

	type want struct {
		xff, proto, host string
		consumer         bool
	}
	cases := []struct {
		name    string
		trusted bool
		peer    string
		consum  *authn.Consumer
		header  map[string]string
		want    want
	}{
		{
			name:   "untrusted peer: every spoofed header replaced",
			peer:   "203.0.113.7",
			header: spoofed,
			want:   want{xff: "203.0.113.7", proto: "https", host: "api.example.com"},
		},
		{
			name:   "untrusted peer, consumer: gateway's consumer, not the client's",
			peer:   "203.0.113.7",
			consum: consumer,
			header: spoofed,
			want:   want{xff: "203.0.113.7", proto: "https", host: "api.example.com", consumer: true},
		},
		{
			name:    "trusted peer: its chain kept, peer appended",
			trusted: true,
			peer:    "10.1.1.1",
			header: map[string]string{
				"X-Forwarded-For":   "198.51.100.1, 10.0.0.9",
				"X-Forwarded-Proto": "http",
				"X-Forwarded-Host":  "public.example",
				"X-Consumer-Id":     "admin",
				"X-Real-Ip":         "10.0.0.1",
			},
			want: want{xff: "198.51.100.1, 10.0.0.9, 10.1.1.1", proto: "http", host: "public.example"},
		},
		{
			name:    "trusted peer without forwarding headers",
			trusted: true,
			peer:    "10.1.1.1",
			want:    want{xff: "10.1.1.1", proto: "https", host: "api.example.com"},
		},
		{
			name:    "trusted peer with a bogus proto",
			trusted: true,
			peer:    "10.1.1.1",
			header:  map[string]string{"X-Forwarded-Proto": "javascript"},
			want:    want{xff: "10.1.1.1", proto: "https", host: "api.example.com"},
		},
		{
			name:    "trusted peer with a proto list takes the first",
			trusted: true,
			peer:    "10.1.1.1",
			header:  map[string]string{"X-Forwarded-Proto": " HTTPS , http"},
			want:    want{xff: "10.1.1.1", proto: "https", host: "api.example.com"},
		},
		{
			name:   "Connection naming the gateway's headers removes only the client's",
			peer:   "203.0.113.7",
			consum: consumer,
			header: map[string]string{
				"Connection":      "X-Forwarded-For, X-Consumer-Id, X-Request-Id, X-Forwarded-Proto, X-Consumer-Scopes, X-Forwarded-Host",
				"X-Forwarded-For": "10.0.0.1",
				"X-Consumer-Id":   "admin",
			},
			want: want{xff: "203.0.113.7", proto: "https", host: "api.example.com", consumer: true},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/v1/orders", nil)
			r.Host = "api.example.com"
			for k, v := range tc.header {
				r.Header[k] = []string{v} // as sent: not canonicalised
			}
			r.Header.Set("Accept", "application/json")
			st := state("/v1/orders")
			st.Peer = netip.MustParseAddr(tc.peer)
			st.PeerText = st.Peer.String()
			st.PeerTrusted = tc.trusted
			st.Consumer = tc.consum
			e := decodeEcho(t, do(u, r, st))
			h := e.Header

			check := func(name, want string) {
				t.Helper()
				if got := h.Values(name); len(got) != 1 || got[0] != want {
					t.Errorf("%s = %q, want exactly %q", name, got, want)
				}
			}
			check("X-Request-Id", testRequestID)
			check("X-Forwarded-For", tc.want.xff)
			check("X-Forwarded-Proto", tc.want.proto)
			check("X-Forwarded-Host", tc.want.host)
			check("Accept", "application/json") // ordinary headers pass
			if tc.want.consumer {
				check("X-Consumer-Id", "acme")
				check("X-Consumer-Scopes", "orders:read orders:write")
			}
			for k := range h {
				switch {
				case strings.EqualFold(k, "X-Request-Id"), strings.EqualFold(k, "X-Forwarded-For"),
					strings.EqualFold(k, "X-Forwarded-Proto"), strings.EqualFold(k, "X-Forwarded-Host"):
					continue
				case tc.want.consumer && (strings.EqualFold(k, "X-Consumer-Id") || strings.EqualFold(k, "X-Consumer-Scopes")):
					continue
				}
				if isGatewayHeader(k) {
					t.Errorf("client-supplied %s: %q reached the upstream", k, h[k])
				}
			}
		})
	}
}

func TestIsGatewayHeader(t *testing.T) {
	for _, name := range []string{
		"X-Forwarded-For", "x-forwarded-for", "X_FORWARDED_FOR", "X-Forwarded", "X-Forwarded-Ssl",
		"X-Consumer-Id", "X-Consumer_Id", "x_consumer_anything", "Forwarded", "X-Real-IP", "x_real_ip",
		"X-Request-Id", "X-Gateway-Identity", "X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override",
		"X-Original-URL", "X-Rewrite-URL", "True-Client-IP", "X-Client-IP",
		"X-Forwarded-" + strings.Repeat("A", 100), "X-Consumer-" + strings.Repeat("b", 100),
	} {
		if !isGatewayHeader(name) {
			t.Errorf("isGatewayHeader(%q) = false", name)
		}
	}
	for _, name := range []string{
		"Accept", "Authorization", "X-Api-Key", "X-Consumer", "Consumer-Id", "X-Request", "X-Requested-With",
		"Forwarded-For", "X-Real", "X-Method", "Content-Type", "", "X",
		"X-Request-Id-" + strings.Repeat("x", 40),
	} {
		if isGatewayHeader(name) {
			t.Errorf("isGatewayHeader(%q) = true", name)
		}
	}
}

func TestResponseHeaders(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Server", "Apache/2.4.1 (Unix) OpenSSL/1.0.2k")
		h.Set("X-Powered-By", "PHP/5.6.40")
		h.Set("X-AspNet-Version", "4.0.30319")
		h.Set("X-AspNetMvc-Version", "5.2")
		h.Set("X-Runtime", "0.012")
		h.Set("X-Debug-Token", "abc")
		h.Set("X-Debug-Token-Link", "http://10.0.0.5/_profiler/abc")
		h.Set("Strict-Transport-Security", "max-age=0")
		h.Set("X-Content-Type-Options", "sniff-away")
		h.Set("X-Request-Id", "upstream-id")
		h.Set("X-Upstream-Ok", "kept")
		if cc := r.URL.Query().Get("cc"); cc != "" {
			h.Set("Cache-Control", cc)
		}
		_, _ = io.WriteString(w, "hello")
	}))
	t.Cleanup(up.Close)
	const hsts = "max-age=31536000; includeSubDomains"
	u := newUpstream(t, config.Upstream{Targets: []string{up.URL}}, Options{})
	consumer := &authn.Consumer{ID: "acme"}

	cases := []struct {
		name      string
		query     string
		consumer  *authn.Consumer
		wantCache string
	}{
		{name: "public route: no cache policy added"},
		{name: "authenticated: no-store", consumer: consumer, wantCache: "no-store"},
		{name: "authenticated, upstream policy kept", query: "?cc=max-age%3D60", consumer: consumer, wantCache: "max-age=60"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := state("/x")
			st.Consumer = tc.consumer
			r := httptest.NewRequest(http.MethodGet, "/x"+tc.query, nil)
			w := httptest.NewRecorder()
			// What the gateway sets on every response before proxying: it wins.
			w.Header().Set("X-Request-Id", testRequestID)
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.Header().Set("Strict-Transport-Security", hsts)
			u.ServeHTTP(w, reqctx.With(r, st))
			h := w.Result().Header
			for _, k := range []string{"Server", "X-Powered-By", "X-Aspnet-Version", "X-Aspnetmvc-Version",
				"X-Runtime", "X-Debug-Token", "X-Debug-Token-Link"} {
				if v, ok := h[k]; ok {
					t.Errorf("%s = %q reached the client", k, v)
				}
			}
			exactly := func(k, want string) {
				t.Helper()
				if got := h.Values(k); len(got) != 1 || got[0] != want {
					t.Errorf("%s = %q, want exactly %q", k, got, want)
				}
			}
			exactly("Strict-Transport-Security", hsts)
			exactly("X-Content-Type-Options", "nosniff")
			exactly("X-Request-Id", testRequestID)
			exactly("X-Upstream-Ok", "kept")
			if tc.wantCache == "" {
				if v := h.Values("Cache-Control"); len(v) != 0 {
					t.Errorf("Cache-Control = %q, want none", v)
				}
			} else {
				exactly("Cache-Control", tc.wantCache)
			}
			if w.Body.String() != "hello" {
				t.Errorf("body = %q", w.Body.String())
			}
		})
	}

	t.Run("no HSTS set by the gateway drops the upstream's", func(t *testing.T) {
		w, _ := get(u, "/x")
		if v := w.Result().Header.Values("Strict-Transport-Security"); len(v) != 0 {
			t.Errorf("Strict-Transport-Security = %q, want none", v)
		}
	})
}

// With CORS answered by the gateway, no Access-Control-* header of the
// upstream reaches the client: it could allow an origin the gateway does not.
func TestOwnCORSDropsUpstreamCORS(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Credentials", "true")
	}))
	t.Cleanup(up.Close)
	for _, own := range []bool{false, true} {
		u := newUpstream(t, config.Upstream{Targets: []string{up.URL}}, Options{OwnCORS: own})
		w, _ := get(u, "/x")
		got := w.Result().Header.Get("Access-Control-Allow-Origin")
		if own && got != "" || !own && got != "*" {
			t.Errorf("OwnCORS %v: Access-Control-Allow-Origin = %q", own, got)
		}
	}
}

func TestUpstreamURLNoProxyFromEnvironment(t *testing.T) {
	up := echoServer(t)
	// A proxy that refuses everything: if it were used, the request would fail.
	t.Setenv("HTTP_PROXY", deadURL(t))
	t.Setenv("HTTPS_PROXY", deadURL(t))
	t.Setenv("NO_PROXY", "")
	u := newUpstream(t, config.Upstream{Targets: []string{up.URL}}, Options{})
	if u.transport.Proxy != nil {
		t.Fatal("transport has a Proxy function")
	}
	w, _ := get(u, "/x")
	decodeEcho(t, w)
}

func TestSetURLDropsClientURLParts(t *testing.T) {
	tg, err := parseTarget("https://up.internal:8443/base%2Fx/")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("http://user:pw@evil.example/other#frag")
	tg.setURL(u, "/a b", "/a%20b", "q=1")
	if got, want := u.String(), "https://up.internal:8443/base%2Fx/a%20b?q=1"; got != want {
		t.Errorf("URL = %q, want %q", got, want)
	}
	if tg.addr != "up.internal:8443" {
		t.Errorf("addr = %q", tg.addr)
	}
}
