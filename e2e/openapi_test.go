package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// shopSpec is an OpenAPI 3.1 contract: a user read (path parameter with a
// pattern, a response schema narrower than what the upstream sends, nested),
// an order write (closed body with bounds) and a deprecated operation.
const shopSpec = `openapi: 3.1.0
info: { title: Shop, version: "1" }
paths:
  /users/{id}:
    get:
      operationId: getUser
      parameters:
        - { name: id, in: path, required: true, schema: { type: string, pattern: "^[a-z0-9-]{1,32}$" } }
      responses:
        "200":
          description: the user
          content: { application/json: { schema: { $ref: "#/components/schemas/User" } } }
        "404": { description: no such user }
  /orders:
    post:
      operationId: createOrder
      requestBody:
        required: true
        content: { application/json: { schema: { $ref: "#/components/schemas/NewOrder" } } }
      responses:
        "201":
          description: created
          content: { application/json: { schema: { $ref: "#/components/schemas/Order" } } }
  /legacy/users:
    get:
      operationId: listUsersLegacy
      deprecated: true
      responses:
        "200": { description: users, content: { application/json: { schema: { type: array, items: { $ref: "#/components/schemas/User" } } } } }
components:
  schemas:
    User:
      type: object
      properties:
        id: { type: string }
        name: { type: string }
        address:
          type: object
          properties: { city: { type: string } }
    NewOrder:
      type: object
      additionalProperties: false
      required: [item, quantity]
      properties:
        item: { type: string, minLength: 1, maxLength: 32 }
        quantity: { type: integer, minimum: 1, maximum: 100 }
        note: { type: string, maxLength: 64 }
        meta: { type: object }
    Order:
      type: object
      properties:
        id: { type: string }
        item: { type: string }
        quantity: { type: integer }
`

const openapiConfig = `version: 1
server:
  https: "{{.HTTPS}}"
  admin: "{{.Admin}}"
  data_dir: "{{.Data}}"
  shutdown_timeout: 5s
tls:
  self_signed: true
admin:
  token_hash: "{{.AdminHash}}"
authenticators:
  keys: { type: api_key }
consumers:
  - { id: acme,   scopes: ["users:read"],               credentials: [ { api_key: "{{.ReaderHash}}" } ] }
  - { id: globex, scopes: ["orders:write", "users:read"], credentials: [ { api_key: "{{.WriterHash}}" } ] }
  - { id: ops,    scopes: [admin, "users:read"],        credentials: [ { api_key: "{{.OpsHash}}" } ] }
routes:
  - name: users
    path: /users/{id}
    methods: [GET]
    upstream: { targets: ["{{.Up}}"] }
    auth: [keys]
    scopes: ["users:read"]
    policy: "request.path.id == consumer.id || 'admin' in consumer.scopes"
    openapi: { spec: "{{.Spec}}", validate_requests: true, filter_responses: true }
  - name: orders
    path: /orders
    methods: [POST]
    upstream: { targets: ["{{.Up}}"] }
    auth: [keys]
    scopes: ["orders:write"]
    openapi: { spec: "{{.Spec}}", validate_requests: true, filter_responses: true }
  - name: legacy
    path: /legacy/users
    methods: [GET]
    upstream: { targets: ["{{.Up}}"] }
    auth: [keys]
    scopes: [admin]
    openapi: { spec: "{{.Spec}}", validate_requests: true, filter_responses: true }
docs:
  path: /docs
  auth: [keys]
  specs: ["{{.Spec}}"]
cors:
  allowed_origins: ["https://app.example.com"]
  allowed_headers: [Content-Type, X-API-Key]
`

const opsKey = "bw_e2eOpsKey000000000000000000000000000000000"

// canary is in every hostile value: it must never come back to the client.
const canary = "zq7canary"

// newShopUpstream is an upstream that says more than its spec: extra fields
// (a password hash, an internal address), a stack trace on /users/broken,
// and CORS headers of its own that must never reach the client. Requests
// with X-E2E-Marker are counted (upstream.hits).
func newShopUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{markers: map[string]int{}, started: make(chan string, 64), hold: make(chan struct{})}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m := r.Header.Get("X-E2E-Marker"); m != "" {
			u.mu.Lock()
			u.markers[m]++
			u.mu.Unlock()
		}
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, PATCH")
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		switch {
		case r.URL.Path == "/users/broken":
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, stackTrace)
		case r.URL.Path == "/users/teapot":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTeapot)
			io.WriteString(w, `{"debug":"select * from users where id='teapot'"}`)
		case strings.HasPrefix(r.URL.Path, "/users/"):
			id := strings.TrimPrefix(r.URL.Path, "/users/")
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"id":%q,"name":"User %s","password_hash":"$2b$12$leakedleakedleaked","address":{"city":"Oslo","db_shard":"10.0.3.7"},"is_admin":false}`, id, id)
		case r.URL.Path == "/orders" && r.Method == http.MethodPost:
			var in map[string]any
			_ = json.Unmarshal(body, &in)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"id":"o-1","item":%q,"quantity":%v,"cost_price":3.17,"supplier":"internal-supplier-7"}`, in["item"], in["quantity"])
		case r.URL.Path == "/legacy/users":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `[{"id":"acme","name":"Acme","password_hash":"x"}]`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(u.Close)
	return u
}

// problemDoc is an RFC 9457 body as the gateway writes it.
type problemDoc struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	RequestID string `json:"request_id"`
}

// One gateway with a spec on its routes, a BOLA policy, the docs portal
// and CORS: attacks on the body never reach the upstream, answers are
// filtered to the spec, each consumer reads only its documentation, and
// CORS is the gateway's alone.
func TestOpenAPIThroughBinary(t *testing.T) {
	t.Parallel()
	up := newShopUpstream(t)
	specPath := filepath.Join(t.TempDir(), "shop.yaml")
	writeFile(t, specPath, shopSpec)
	g := startGateway(t, openapiConfig, map[string]string{"Up": up.URL, "Spec": specPath, "OpsHash": digest(opsKey)})
	c := g.client(t)
	key := func(k, marker string, more ...string) http.Header {
		h := http.Header{"X-Api-Key": {k}}
		if marker != "" {
			h.Set("X-E2E-Marker", marker)
		}
		for i := 0; i+1 < len(more); i += 2 {
			h.Set(more[i], more[i+1])
		}
		return h
	}
	postOrder := func(t *testing.T, marker, contentType, body string) (*http.Response, []byte) {
		t.Helper()
		return g.do(t, c, http.MethodPost, "/orders", strings.NewReader(body), key(writerKey, marker, "Content-Type", contentType))
	}

	t.Run("valid order passes and is filtered", func(t *testing.T) {
		resp, body := postOrder(t, "order-ok", "application/json", `{"item":"buoy","quantity":2,"note":"by the dock"}`)
		if resp.StatusCode != http.StatusCreated || up.hits("order-ok") != 1 {
			t.Fatalf("status %d, upstream hits %d; want 201 and 1\n%s%s", resp.StatusCode, up.hits("order-ok"), body, g.output())
		}
		var got map[string]any
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("response: %v\n%s", err, body)
		}
		if _, ok := got["cost_price"]; ok || strings.Contains(string(body), "internal-supplier-7") {
			t.Errorf("undeclared properties reached the client: %s", body)
		}
		if got["id"] != "o-1" || got["item"] != "buoy" || got["quantity"] != 2.0 {
			t.Errorf("declared properties lost: %s", body)
		}
	})

	// Every attack is refused by the gateway with a problem naming the
	// field; the hostile value is never echoed and the upstream never sees it.
	deep := strings.Repeat(`{"a":`, 200) + `"` + canary + `"` + strings.Repeat("}", 200)
	attacks := []struct {
		name, contentType, body string
		status                  int
		field                   string // the problem's detail starts with "field: "
	}{
		{"mass assignment", "application/json", `{"item":"buoy","quantity":1,"role":"` + canary + `"}`, 400, "body.role"},
		{"mass assignment of an owner", "application/json", `{"item":"buoy","quantity":1,"owner_id":"` + canary + `"}`, 400, "body.owner_id"},
		{"type confusion string for integer", "application/json", `{"item":"buoy","quantity":"7` + canary + `"}`, 400, "body.quantity"},
		{"type confusion object for string", "application/json", `{"item":{"$ne":"` + canary + `"},"quantity":1}`, 400, "body.item"},
		{"type confusion array body", "application/json", `["` + canary + `"]`, 400, "body"},
		{"out of range high", "application/json", `{"item":"buoy","quantity":987654321}`, 400, "body.quantity"},
		{"out of range low", "application/json", `{"item":"buoy","quantity":-987654321}`, 400, "body.quantity"},
		{"overlong string", "application/json", `{"item":"buoy","quantity":1,"note":"` + strings.Repeat(canary, 20) + `"}`, 400, "body.note"},
		{"deep nesting", "application/json", `{"item":"buoy","quantity":1,"meta":` + deep + `}`, 400, "body"},
		{"duplicate key", "application/json", `{"item":"buoy","quantity":1,"quantity":1000,"item":"` + canary + `"}`, 400, "body.quantity"},
		{"huge number", "application/json", `{"item":"buoy","quantity":1e999999}`, 400, "body.quantity"},
		{"huge integer literal", "application/json", `{"item":"buoy","quantity":` + strings.Repeat("98765", 100) + `}`, 400, "body.quantity"},
		{"wrong content type", "text/plain", `{"item":"buoy","quantity":1,"note":"` + canary + `"}`, 415, "header.Content-Type"},
		{"form instead of JSON", "application/x-www-form-urlencoded", `item=` + canary + `&quantity=1`, 415, "header.Content-Type"},
		{"non-UTF-8 charset", "application/json; charset=latin1", `{"item":"buoy","quantity":1,"note":"` + canary + `"}`, 415, "header.Content-Type"},
		{"non-UTF-8 body", "application/json", "{\"item\":\"" + canary + "\xff\xfe\",\"quantity\":1}", 400, "body"},
		{"unpaired surrogate", "application/json", `{"item":"` + canary + `\ud800","quantity":1}`, 400, "body.item"},
		{"missing required", "application/json", `{"note":"` + canary + `"}`, 400, "body.item"},
		{"not JSON", "application/json", `{"item":` + canary, 400, "body"},
		{"empty body", "application/json", ``, 400, "body"},
	}
	for i, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			marker := fmt.Sprintf("attack-%d", i)
			resp, body := postOrder(t, marker, a.contentType, a.body)
			if resp.StatusCode != a.status {
				t.Fatalf("status %d; want %d\n%s", resp.StatusCode, a.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q; want application/problem+json", ct)
			}
			var p problemDoc
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatalf("not a problem document: %v\n%s", err, body)
			}
			if p.Status != a.status || !strings.HasPrefix(p.Detail, a.field+": ") {
				t.Errorf("problem %+v; want status %d and a detail naming %q", p, a.status, a.field)
			}
			for _, leak := range []string{canary, "987654321", "98765987659876598765", "1e999999", "$ne"} {
				if strings.Contains(string(body), leak) {
					t.Errorf("the answer echoes the request's value %q: %s", leak, body)
				}
			}
			if n := up.hits(marker); n != 0 {
				t.Errorf("the upstream got the request %d times; want 0", n)
			}
		})
	}

	t.Run("BOLA policy", func(t *testing.T) {
		rows := []struct {
			name, key, path string
			status          int
		}{
			{"own id", readerKey, "/users/acme", 200},
			{"another consumer's id", readerKey, "/users/globex", 403},
			{"case changed", readerKey, "/users/ACME", 403},
			{"query cannot stand in for the path", readerKey, "/users/globex?id=acme", 403},
			{"encoded traversal", readerKey, "/users/acme%2F..%2Fglobex", 400},
			{"dot segments", readerKey, "/users/acme/../globex", 403},
			{"admin scope reads anyone", opsKey, "/users/globex", 200},
			{"other consumer reads its own", writerKey, "/users/globex", 200},
			{"pattern violation reaches validation", opsKey, "/users/" + canary + "_$", 400},
		}
		for i, r := range rows {
			marker := fmt.Sprintf("bola-%d", i)
			resp, body := g.get(t, c, r.path, key(r.key, marker))
			if resp.StatusCode != r.status {
				t.Errorf("%s: GET %s: status %d; want %d\n%s", r.name, r.path, resp.StatusCode, r.status, body)
				continue
			}
			wantHits := 0
			if r.status == 200 {
				wantHits = 1
			}
			if n := up.hits(marker); n != wantHits {
				t.Errorf("%s: upstream hits %d; want %d", r.name, n, wantHits)
			}
			if r.status != 200 && strings.Contains(string(body), canary) {
				t.Errorf("%s: the answer echoes the path: %s", r.name, body)
			}
		}
	})

	t.Run("response filtered", func(t *testing.T) {
		resp, body := g.get(t, c, "/users/acme", key(readerKey, ""))
		if resp.StatusCode != 200 {
			t.Fatalf("status %d\n%s", resp.StatusCode, body)
		}
		var got map[string]any
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("%v\n%s", err, body)
		}
		want := map[string]any{"id": "acme", "name": "User acme", "address": map[string]any{"city": "Oslo"}}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("filtered user %s; want exactly %v", body, want)
		}
		for _, leak := range []string{"password_hash", "leaked", "db_shard", "10.0.3.7", "is_admin"} {
			if strings.Contains(string(body), leak) {
				t.Errorf("the response leaks %q: %s", leak, body)
			}
		}
		if resp.Header.Get("Server") != "" || resp.Header.Get("X-Powered-By") != "" {
			t.Errorf("upstream software headers reached the client: %v", resp.Header)
		}

		// A status the spec does not declare is masked as a 502; an
		// upstream 5xx keeps its status but loses its body (stack trace).
		resp, body = g.get(t, c, "/users/teapot", key(opsKey, ""))
		if resp.StatusCode != http.StatusBadGateway || strings.Contains(string(body), "select") {
			t.Errorf("undeclared 418: status %d, body %s; want a 502 problem without the upstream's body", resp.StatusCode, body)
		}
		resp, body = g.get(t, c, "/users/broken", key(opsKey, ""))
		if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("Content-Type") != "application/problem+json" ||
			strings.Contains(string(body), "goroutine") || strings.Contains(string(body), "10.0.3.7") {
			t.Errorf("upstream 500: status %d, body %s; want a 500 problem without the stack trace", resp.StatusCode, body)
		}

		// The deprecated operation still works, filtered like the others.
		resp, body = g.get(t, c, "/legacy/users", key(opsKey, ""))
		if resp.StatusCode != 200 || strings.Contains(string(body), "password_hash") {
			t.Errorf("deprecated operation: status %d, body %s; want 200 without password_hash", resp.StatusCode, body)
		}
	})

	t.Run("docs per consumer", func(t *testing.T) {
		type doc struct {
			OpenAPI    string                               `json:"openapi"`
			Paths      map[string]map[string]map[string]any `json:"paths"`
			Components struct {
				Schemas map[string]any `json:"schemas"`
			} `json:"components"`
		}
		read := func(k string) doc {
			t.Helper()
			resp, body := g.get(t, c, "/docs/openapi.json", key(k, ""))
			if resp.StatusCode != 200 {
				t.Fatalf("GET /docs/openapi.json: %d\n%s", resp.StatusCode, body)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q; want no-store", cc)
			}
			var d doc
			if err := json.Unmarshal(body, &d); err != nil {
				t.Fatalf("openapi.json: %v\n%s", err, body)
			}
			return d
		}
		ops := func(d doc) []string {
			var out []string
			for p, item := range d.Paths {
				for m := range item {
					out = append(out, strings.ToUpper(m)+" "+p)
				}
			}
			slices.Sort(out)
			return out
		}
		schemas := func(d doc) []string {
			var out []string
			for s := range d.Components.Schemas {
				out = append(out, s)
			}
			slices.Sort(out)
			return out
		}
		for _, r := range []struct {
			who, key     string
			ops, schemas []string
		}{
			// The users policy reads the request: the portal shows the
			// operation to everyone with the route's scope.
			{"acme", readerKey, []string{"GET /users/{id}"}, []string{"User"}},
			{"globex", writerKey, []string{"GET /users/{id}", "POST /orders"}, []string{"NewOrder", "Order", "User"}},
			{"ops", opsKey, []string{"GET /legacy/users", "GET /users/{id}"}, []string{"User"}},
		} {
			d := read(r.key)
			if got := ops(d); !slices.Equal(got, r.ops) {
				t.Errorf("%s sees operations %v; want %v", r.who, got, r.ops)
			}
			if got := schemas(d); !slices.Equal(got, r.schemas) {
				t.Errorf("%s sees schemas %v; want %v", r.who, got, r.schemas)
			}
			if d.OpenAPI != "3.1.0" {
				t.Errorf("%s: openapi %q; want 3.1.0", r.who, d.OpenAPI)
			}
		}
		if d := read(opsKey); d.Paths["/legacy/users"]["get"]["deprecated"] != true {
			t.Errorf("the deprecated operation is not marked deprecated: %v", d.Paths["/legacy/users"])
		}

		resp, body := g.get(t, c, "/docs/", key(readerKey, ""))
		csp := resp.Header.Get("Content-Security-Policy")
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("GET /docs/: %d %q\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		if csp == "" || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") || !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("page CSP %q; want script-src 'self' and nothing unsafe", csp)
		}
		if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("page headers %v; want Cache-Control: no-store and X-Frame-Options: DENY", resp.Header)
		}
		if strings.Contains(string(body), "<script>") || strings.Contains(string(body), "https://") {
			t.Errorf("the page has inline script or loads from elsewhere:\n%s", body)
		}

		for _, p := range []string{"/docs/openapi.json", "/docs/"} {
			for name, h := range map[string]http.Header{"anonymous": nil, "unknown key": key("bw_notAKey000000000000000000000000000000000000", "")} {
				resp, body := g.get(t, c, p, h)
				if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" || strings.Contains(string(body), "/users/") {
					t.Errorf("%s GET %s: %d %s; want 401 with a challenge and nothing of the spec", name, p, resp.StatusCode, body)
				}
			}
		}
	})

	t.Run("CORS", func(t *testing.T) {
		preflight := func(origin, method, headers string) (*http.Response, []byte) {
			h := http.Header{"Origin": {origin}, "Access-Control-Request-Method": {method}, "X-E2E-Marker": {"preflight"}}
			if headers != "" {
				h.Set("Access-Control-Request-Headers", headers)
			}
			return g.do(t, c, http.MethodOptions, "/users/acme", nil, h)
		}
		resp, body := preflight("https://app.example.com", "GET", "x-api-key")
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("preflight from the allowed origin: %d\n%s", resp.StatusCode, body)
		}
		if got := resp.Header.Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != "https://app.example.com" {
			t.Errorf("Access-Control-Allow-Origin %q; want exactly [https://app.example.com]", got)
		}
		if got := resp.Header.Get("Access-Control-Allow-Credentials"); got != "" {
			t.Errorf("Access-Control-Allow-Credentials %q; not configured", got)
		}
		if !strings.Contains(resp.Header.Get("Vary"), "Origin") {
			t.Errorf("Vary %q; want Origin in it", resp.Header.Get("Vary"))
		}

		for _, r := range []struct{ name, origin, method, headers string }{
			{"other origin", "https://evil.example", "GET", ""},
			{"suffix of the allowed origin", "https://app.example.com.evil.example", "GET", ""},
			{"other scheme", "http://app.example.com", "GET", ""},
			{"null origin", "null", "GET", ""},
			{"method not allowed", "https://app.example.com", "DELETE", ""},
			{"header not allowed", "https://app.example.com", "GET", "x-api-key, authorization-override"},
		} {
			resp, body := preflight(r.origin, r.method, r.headers)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s: preflight status %d; want 403\n%s", r.name, resp.StatusCode, body)
			}
			for k := range resp.Header {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Errorf("%s: refused preflight carries %s: %q", r.name, k, resp.Header.Get(k))
				}
			}
		}
		if n := up.hits("preflight"); n != 0 {
			t.Errorf("preflights reached the upstream %d times; want 0", n)
		}

		// Actual requests: the upstream's own CORS headers never reach the
		// client, whatever the origin.
		resp, body = g.get(t, c, "/users/acme", key(readerKey, "", "Origin", "https://app.example.com"))
		if resp.StatusCode != 200 {
			t.Fatalf("GET from the allowed origin: %d\n%s", resp.StatusCode, body)
		}
		if got := resp.Header.Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != "https://app.example.com" {
			t.Errorf("Access-Control-Allow-Origin %q; want exactly [https://app.example.com] (not the upstream's *)", got)
		}
		if resp.Header.Get("Access-Control-Allow-Credentials") != "" || resp.Header.Get("Access-Control-Allow-Methods") != "" {
			t.Errorf("the upstream's CORS headers reached the client: %v", resp.Header)
		}
		for _, origin := range []string{"https://evil.example", "null", ""} {
			h := key(readerKey, "")
			if origin != "" {
				h.Set("Origin", origin)
			}
			resp, _ := g.get(t, c, "/users/acme", h)
			for k := range resp.Header {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Errorf("origin %q: response carries %s: %q (the upstream's or a reflection)", origin, k, resp.Header.Get(k))
				}
			}
		}
	})
}
