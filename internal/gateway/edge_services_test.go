package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/secret"
)

const ordersSpec = `openapi: 3.0.3
info: { title: Orders, version: "1" }
paths:
  /users/{id}:
    get:
      parameters: [{ name: id, in: path, required: true, schema: { type: string } }]
      responses: { "200": { description: ok } }
  /admin/stats:
    get:
      responses: { "200": { description: ok } }
`

const edgeServicesConfig = `
version: 1
server: { admin: "off", data_dir: "${DATA}" }
tls: { self_signed: true }
authenticators:
  keys: { type: api_key }
consumers:
  - { id: alice, scopes: [read], credentials: [ { api_key: "${ALICE}" } ] }
  - { id: root, scopes: [read, admin], credentials: [ { api_key: "${ROOT}" } ] }
routes:
  - name: users
    path: /users/{id}
    methods: [GET]
    upstream: { targets: ["${UPSTREAM}"] }
    auth: [keys]
    policy: "request.path.id == consumer.id || 'admin' in consumer.scopes"
  - name: admin
    path: /admin/**
    upstream: { targets: ["${UPSTREAM}"] }
    auth: [keys]
    policy: "'admin' in consumer.scopes"
cors:
  allowed_origins: ["https://app.example.com"]
docs:
  path: /docs
  auth: [keys]
  specs: ["${SPEC}"]
`

func newEdgeServicesGateway(t *testing.T) *Gateway {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*") // a careless upstream
	}))
	t.Cleanup(up.Close)
	spec := filepath.Join(t.TempDir(), "orders.yaml")
	if err := os.WriteFile(spec, []byte(ordersSpec), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"UPSTREAM": up.URL, "DATA": t.TempDir(), "SPEC": spec,
		"ALICE": secret.SumString("bw_alice").String(), "ROOT": secret.SumString("bw_root").String()}
	cfg, err := config.Parse([]byte(edgeServicesConfig), "", func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
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

func serveAs(g *Gateway, method, target, key string, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = "192.0.2.1:1234"
	if key != "" {
		r.Header.Set("X-API-Key", key)
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	g.ServeHTTP(w, r)
	return w
}

// Broken object-level authorization stopped by a policy: alice reads her
// own record only; an admin reads any.
func TestPolicyStopsBOLA(t *testing.T) {
	g := newEdgeServicesGateway(t)
	for _, tc := range []struct {
		key, target string
		want        int
	}{
		{"bw_alice", "/users/alice", 200},
		{"bw_alice", "/users/bob", 403},
		{"bw_alice", "/users/alice%2e", 403}, // canonical path: "alice." is not "alice"
		{"bw_root", "/users/bob", 200},
		{"bw_alice", "/admin/stats", 403},
		{"bw_root", "/admin/stats", 200},
	} {
		if w := serveAs(g, "GET", tc.target, tc.key, nil); w.Code != tc.want {
			t.Errorf("%s GET %s: %d, want %d", tc.key, tc.target, w.Code, tc.want)
		}
	}
}

func TestCORS(t *testing.T) {
	g := newEdgeServicesGateway(t)
	pre := map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"}
	w := serveAs(g, "OPTIONS", "/users/alice", "", pre)
	if w.Code != http.StatusNoContent || w.Header().Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("preflight of an allowed origin: %d %v", w.Code, w.Header())
	}
	pre["Origin"] = "https://evil.example.com"
	if w := serveAs(g, "OPTIONS", "/users/alice", "", pre); w.Code != http.StatusForbidden || w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight of another origin: %d %v", w.Code, w.Header())
	}
	// The upstream's "*" never reaches the client.
	w = serveAs(g, "GET", "/users/alice", "bw_alice", map[string]string{"Origin": "https://evil.example.com"})
	if got := w.Header().Values("Access-Control-Allow-Origin"); w.Code != 200 || len(got) != 0 {
		t.Errorf("request from another origin: %d, Access-Control-Allow-Origin %q", w.Code, got)
	}
	w = serveAs(g, "GET", "/users/alice", "bw_alice", map[string]string{"Origin": "https://app.example.com"})
	if got := w.Header().Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != "https://app.example.com" {
		t.Errorf("request from the allowed origin: Access-Control-Allow-Origin %q", got)
	}
}

// Each consumer sees only the operations it may call; strangers see
// nothing.
func TestPortalPerConsumer(t *testing.T) {
	g := newEdgeServicesGateway(t)
	if w := serveAs(g, "GET", "/docs/openapi.json", "", nil); w.Code != 401 || w.Header().Get("WWW-Authenticate") == "" {
		t.Fatalf("anonymous: %d %v", w.Code, w.Header())
	}
	paths := func(key string) []string {
		w := serveAs(g, "GET", "/docs/openapi.json", key, nil)
		if w.Code != 200 || w.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("%s: %d %v %s", key, w.Code, w.Header(), w.Body)
		}
		var doc struct{ Paths map[string]any }
		if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		var out []string
		for p := range doc.Paths {
			out = append(out, p)
		}
		return out
	}
	if got := strings.Join(paths("bw_alice"), ","); got != "/users/{id}" {
		t.Errorf("alice sees %q; want only /users/{id} (the admin policy does not depend on the request and denies her)", got)
	}
	if got := paths("bw_root"); len(got) != 2 {
		t.Errorf("root sees %q; want both paths", got)
	}
	if w := serveAs(g, "GET", "/docs/", "bw_alice", nil); w.Code != 200 || !strings.Contains(w.Header().Get("Content-Security-Policy"), "script-src 'self'") {
		t.Errorf("page: %d %v", w.Code, w.Header())
	}
}
