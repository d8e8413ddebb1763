package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/secret"
	"github.com/breakwater/breakwater/internal/telemetry"
)

const testKey = "bw_testkey"

// newTestGateway builds a gateway from YAML whose ${UPSTREAM} is an echo
// server returning the path and the identity headers it received.
func newTestGateway(t testing.TB, yaml string) *Gateway {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Server", "Apache/2.4.1")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"path":     r.URL.EscapedPath(),
			"consumer": r.Header.Get("X-Consumer-Id"),
			"xff":      r.Header.Get("X-Forwarded-For"),
			"key":      r.Header.Get("X-API-Key"),
		})
	}))
	t.Cleanup(up.Close)
	vars := map[string]string{"UPSTREAM": up.URL, "KEY_HASH": secret.SumString(testKey).String(), "DATA": t.TempDir()}
	cfg, err := config.Parse([]byte(yaml), "", func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	g, err := New(context.Background(), cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

const baseConfig = `
version: 1
server: { admin: "off", data_dir: "${DATA}" }
tls: { self_signed: true }
authenticators:
  keys: { type: api_key }
consumers:
  - id: acme
    scopes: [read]
    credentials: [ { api_key: "${KEY_HASH}" } ]
routes:
  - name: public
    path: /public/**
    upstream: { targets: ["${UPSTREAM}"] }
    auth: none
  - name: items
    path: /items/{id}
    methods: [GET]
    upstream: { targets: ["${UPSTREAM}"] }
    auth: [keys]
    scopes: [read]
  - name: write
    path: /items
    methods: [POST]
    upstream: { targets: ["${UPSTREAM}"] }
    auth: [keys]
    scopes: [write]
    max_body: 16
`

func TestRequestPath(t *testing.T) {
	g := newTestGateway(t, baseConfig)
	for _, tc := range []struct {
		name, method, target, key, body string
		want                            int
		upstreamPath, consumer          string
	}{
		{name: "public", method: "GET", target: "/public/a", want: 200, upstreamPath: "/public/a"},
		{name: "canonical path forwarded", method: "GET", target: "/public/./a//b/../c", want: 200, upstreamPath: "/public/a/c"},
		{name: "path parameters dropped", method: "GET", target: "/public;x=1/a", want: 200, upstreamPath: "/public/a"},
		{name: "encoded slash", method: "GET", target: "/public/a%2fb", want: 400},
		{name: "climb above root", method: "GET", target: "/public/../../etc", want: 400},
		{name: "path over pathcanon.MaxLen", method: "GET", target: "/public/" + strings.Repeat("é", 3000), want: 414}, // 6 KB sent, 18 KB escaped,
		{name: "no route", method: "GET", target: "/nowhere", want: 404},
		{name: "wrong method", method: "DELETE", target: "/items/1", want: 405},
		{name: "TRACE needs listing", method: "TRACE", target: "/public/a", want: 405},
		{name: "no key", method: "GET", target: "/items/1", want: 401},
		{name: "wrong key", method: "GET", target: "/items/1", key: "bw_nope", want: 401},
		{name: "authenticated", method: "GET", target: "/items/1", key: testKey, want: 200, upstreamPath: "/items/1", consumer: "acme"},
		{name: "missing scope", method: "POST", target: "/items", key: testKey, body: "{}", want: 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			r := httptest.NewRequest(tc.method, tc.target, body)
			r.RemoteAddr = "192.0.2.1:1234"
			r.Header.Set("X-Forwarded-For", "6.6.6.6")
			r.Header.Set("X-Consumer-Id", "spoofed")
			if tc.key != "" {
				r.Header.Set("X-API-Key", tc.key)
			}
			w := httptest.NewRecorder()
			g.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if w.Header().Get("X-Request-Id") == "" || w.Header().Get("Strict-Transport-Security") == "" ||
				w.Header().Get("X-Content-Type-Options") != "nosniff" || w.Header().Get("Server") != "" {
				t.Errorf("security headers wrong: %v", w.Header())
			}
			if tc.want >= 400 {
				if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("error content type %q", ct)
				}
				return
			}
			var got map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if got["path"] != tc.upstreamPath || got["consumer"] != tc.consumer || got["xff"] != "192.0.2.1" || got["key"] != "" {
				t.Errorf("upstream saw %v", got)
			}
		})
	}
}

func TestRawPath(t *testing.T) {
	for target, want := range map[string]string{
		"/a/b?x=1":                 "/a/b",
		"https://h/x/..%2Fadmin?q": "/x/..%2Fadmin", // as sent: pathcanon refuses it
		"HTTPS://h:8443/a%2fb":     "/a%2fb",
		"https://h":                "/",
		"https://h?x=1":            "/",
		"http://h/a":               "",
		"*":                        "",
		"h:443":                    "",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RequestURI = target
		if u, err := url.ParseRequestURI(target); err == nil {
			r.URL = u
		}
		got, ok := rawPath(r)
		if got != want || ok != (want != "") {
			t.Errorf("rawPath(%q) = %q, %v; want %q", target, got, ok, want)
		}
	}
}

func TestUniform401(t *testing.T) {
	g := newTestGateway(t, baseConfig)
	var bodies []string
	for _, key := range []string{"", "bw_unknown", strings.Repeat("x", 300), " "} {
		r := httptest.NewRequest("GET", "/items/1", nil)
		if key != "" {
			r.Header.Set("X-API-Key", key)
		}
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		if w.Code != 401 || w.Header().Get("WWW-Authenticate") == "" {
			t.Fatalf("key %q: %d %v", key, w.Code, w.Header())
		}
		bodies = append(bodies, strings.Replace(w.Body.String(), w.Header().Get("X-Request-Id"), "", 1))
	}
	for _, b := range bodies[1:] {
		if b != bodies[0] {
			t.Fatalf("401 bodies differ:\n%s\n%s", bodies[0], b)
		}
	}
}

func TestBodyLimit(t *testing.T) {
	g := newTestGateway(t, strings.Replace(baseConfig, "scopes: [write]", "scopes: [read]", 1))
	r := httptest.NewRequest("POST", "/items", strings.NewReader(strings.Repeat("x", 17)))
	r.Header.Set("X-API-Key", testKey)
	w := httptest.NewRecorder()
	g.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", w.Code)
	}
}

// A body of unknown length that grows past max_body is refused like one
// declared too large, and counted and recorded the same way.
func TestStreamedBodyOverLimit(t *testing.T) {
	g := newTestGateway(t, strings.Replace(baseConfig, "scopes: [write]", "scopes: [read]", 1))
	r := httptest.NewRequest("POST", "/items", io.MultiReader(strings.NewReader(strings.Repeat("x", 64))))
	r.ContentLength = -1 // chunked
	r.Header.Set("X-API-Key", testKey)
	w := httptest.NewRecorder()
	g.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", w.Code)
	}
	if evs := g.Events().List(telemetry.EventQuery{Kind: telemetry.EventBodyTooLarge}); len(evs) != 1 {
		t.Fatalf("body_too_large events: %d, want 1", len(evs))
	}
}

func TestApplyKeepsOldConfigOnError(t *testing.T) {
	g := newTestGateway(t, baseConfig)
	before := g.Config()
	bad := *before
	bad.Server.TrustedProxies = []string{"not-a-cidr"}
	if err := g.Apply(&bad); err == nil {
		t.Fatal("bad config applied")
	}
	if g.Config() != before || g.Stats().ReloadsFailed != 1 {
		t.Fatalf("running config changed or failure not counted: %+v", g.Stats())
	}
}

// BenchmarkGateway is the whole request path in-process, with an API key,
// scopes and a loopback upstream; "no-identity" turns X-Gateway-Identity
// off, which is most of the difference.
func BenchmarkGateway(b *testing.B) {
	for _, tc := range []struct{ name, yaml string }{
		{"identity", baseConfig},
		{"no-identity", strings.Replace(baseConfig, "    auth: [keys]\n    scopes: [read]\n", "    auth: [keys]\n    scopes: [read]\n    identity: false\n", 1)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			g := newTestGateway(b, tc.yaml)
			r := httptest.NewRequest("GET", "/items/42", nil)
			r.RemoteAddr = "192.0.2.1:1234"
			r.Header.Set("X-API-Key", testKey)
			b.ReportAllocs()
			for b.Loop() {
				r.Header.Set("X-API-Key", testKey) // the gateway strips it before forwarding
				w := httptest.NewRecorder()
				g.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatal(w.Code)
				}
			}
		})
	}
}

func TestSecurityEvents(t *testing.T) {
	g := newTestGateway(t, baseConfig)
	for _, tc := range []struct{ target, key string }{
		{"/items/1", "bw_wrong"}, // auth_failure (unknown key)
		{"/items/1", ""},         // auth_failure (no credential)
		{"/public/a%2fb", ""},    // ambiguous_path
		{"/nowhere", ""},         // no event: 404s show in metrics
		{"/public/ok", testKey},  // no event: served
	} {
		r := httptest.NewRequest("GET", tc.target, nil)
		r.RemoteAddr = "198.51.100.4:5555"
		if tc.key != "" {
			r.Header.Set("X-API-Key", tc.key)
		}
		g.ServeHTTP(httptest.NewRecorder(), r)
	}
	evs := g.Events().List(telemetry.EventQuery{})
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, string(e.Kind))
		if e.ClientIP != "198.51.100.4" || e.RequestID == "" || e.Reason == "" {
			t.Errorf("event lacks context: %+v", e)
		}
		if strings.Contains(e.Reason, "bw_wrong") {
			t.Errorf("event leaks the key: %+v", e)
		}
	}
	if got := strings.Join(kinds, ","); got != "ambiguous_path,auth_failure,auth_failure" {
		t.Fatalf("events (newest first): %s", got)
	}
}

func TestRateLimits(t *testing.T) {
	yaml := strings.Replace(baseConfig, `    credentials: [ { api_key: "${KEY_HASH}" } ]`,
		`    credentials: [ { api_key: "${KEY_HASH}" } ]
    rate_limits: ["1/d"]`, 1)
	yaml = strings.Replace(yaml, `    path: /public/**
    upstream: { targets: ["${UPSTREAM}"] }
    auth: none`, `    path: /public/**
    upstream: { targets: ["${UPSTREAM}"] }
    auth: none
    rate_limits: [ { key: ip, limit: "2/m" } ]`, 1)
	g := newTestGateway(t, yaml)
	get := func(target, ip, key string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", target, nil)
		r.RemoteAddr = ip + ":1234"
		r.Header.Set("X-Forwarded-For", "10.9.9.9") // untrusted: must not change the key
		if key != "" {
			r.Header.Set("X-API-Key", key)
		}
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		return w
	}
	// Per IP on the public route: 2 at once, then refused for that IP only.
	for i, want := range []int{200, 200, 429} {
		w := get("/public/x", "192.0.2.1", "")
		if w.Code != want {
			t.Fatalf("request %d: %d, want %d", i, w.Code, want)
		}
		if w.Header().Get("RateLimit-Policy") != `"route:ip";q=2;w=60` || w.Header().Get("RateLimit") == "" {
			t.Errorf("headers: %v", w.Header())
		}
		if want == 429 {
			if ra := w.Header().Get("Retry-After"); ra == "" || ra == "0" {
				t.Errorf("429 without Retry-After: %v", w.Header())
			}
			if w.Header().Get("Content-Type") != "application/problem+json" {
				t.Errorf("429 is not a problem document")
			}
		}
	}
	if w := get("/public/x", "192.0.2.2", ""); w.Code != 200 {
		t.Fatalf("another IP was limited too: %d", w.Code)
	}
	// The consumer's daily quota: one request, then 429 until UTC midnight.
	if w := get("/items/1", "192.0.2.3", testKey); w.Code != 200 {
		t.Fatalf("first consumer request: %d", w.Code)
	}
	w := get("/items/2", "192.0.2.4", testKey)
	if w.Code != 429 || !strings.HasPrefix(w.Header().Get("RateLimit"), `"consumer";r=0;t=`) {
		t.Fatalf("second consumer request: %d %v", w.Code, w.Header())
	}
	if evs := g.Events().List(telemetry.EventQuery{Kind: telemetry.EventRateLimited}); len(evs) != 2 {
		t.Fatalf("rate_limited events: %d, want 2", len(evs))
	}
	// A reload keeps the counters.
	if err := g.Apply(g.Config()); err != nil {
		t.Fatal(err)
	}
	if w := get("/items/3", "192.0.2.5", testKey); w.Code != 429 {
		t.Fatalf("a reload reset the quota: %d", w.Code)
	}
}
