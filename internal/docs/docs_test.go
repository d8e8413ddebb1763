package docs

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"github.com/breakwater/breakwater/internal/oasdoc"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/breakwater/breakwater/internal/authn"
	"github.com/breakwater/breakwater/internal/reqctx"
)

// scopeOf is the scope each test operation needs.
var scopeOf = map[string]string{
	"GET /v1/orders":         "orders:read",
	"POST /v1/orders":        "orders:write",
	"GET /v1/orders/{id}":    "orders:read",
	"POST /v1/admin/refunds": "admin",
	"GET /users/{id}":        "users:read",
}

func allowByScope(c *authn.Consumer, method, path string) bool {
	s, ok := scopeOf[method+" "+path]
	return ok && c.HasScopes([]string{s})
}

func consumer(id string, scopes ...string) *authn.Consumer {
	slices.Sort(scopes)
	return &authn.Consumer{ID: id, Scopes: scopes, ScopeText: strings.Join(scopes, " ")}
}

func testPortal(t testing.TB) *Portal {
	t.Helper()
	specs, err := ReadSpecs("testdata", []string{"orders.yaml", "users.json"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Options{Path: "/docs", Specs: specs, Allowed: allowByScope})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// get serves a request whose canonical path is path, as the gateway would
// after authenticating c (nil: none).
func get(p *Portal, method, path string, c *authn.Consumer) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "/", nil)
	r.URL.Path = path
	r = reqctx.With(r, &reqctx.State{RequestID: "rid", Path: path, Consumer: c})
	w := httptest.NewRecorder()
	p.ServeHTTP(w, r)
	return w
}

type view struct {
	ops, schemas, tags, schemes []string
	raw                         string
}

func parseView(t *testing.T, body []byte) view {
	t.Helper()
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas         map[string]any `json:"schemas"`
			SecuritySchemes map[string]any `json:"securitySchemes"`
		} `json:"components"`
		Tags []struct {
			Name string `json:"name"`
		} `json:"tags"`
		Servers []struct {
			URL string `json:"url"`
		} `json:"servers"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("document is not JSON: %v", err)
	}
	if len(doc.Servers) != 1 || doc.Servers[0].URL != "/" {
		t.Errorf("servers %+v, want the gateway only", doc.Servers)
	}
	v := view{raw: string(body)}
	for p, item := range doc.Paths {
		for m := range item {
			if isMethodKey(m) {
				v.ops = append(v.ops, strings.ToUpper(m)+" "+p)
			}
		}
	}
	for n := range doc.Components.Schemas {
		v.schemas = append(v.schemas, n)
	}
	for n := range doc.Components.SecuritySchemes {
		v.schemes = append(v.schemes, n)
	}
	for _, tg := range doc.Tags {
		v.tags = append(v.tags, tg.Name)
	}
	for _, s := range [][]string{v.ops, v.schemas, v.tags, v.schemes} {
		sort.Strings(s)
	}
	return v
}

func TestPerConsumerDocument(t *testing.T) {
	p := testPortal(t)
	for _, tc := range []struct {
		name     string
		c        *authn.Consumer
		ops      []string
		schemas  []string
		tags     []string
		schemes  []string
		mustMiss []string
	}{
		{"reader", consumer("reader", "orders:read"),
			[]string{"GET /v1/orders", "GET /v1/orders/{id}"}, []string{"Customer", "Order"}, []string{"orders"}, []string{"keys"},
			[]string{"refund", "Refund", "ledgerAccount", "/v1/admin", "createOrder", "NewOrder", "oauth", "internal things"}},
		{"writer", consumer("writer", "orders:read", "orders:write"),
			[]string{"GET /v1/orders", "GET /v1/orders/{id}", "POST /v1/orders"}, []string{"Customer", "NewOrder", "Order"}, []string{"orders"}, []string{"keys", "oauth"},
			[]string{"Refund", "/v1/admin"}},
		{"admin", consumer("admin", "admin", "users:read"),
			[]string{"GET /users/{id}", "POST /v1/admin/refunds"}, []string{"Customer", "Refund", "User"}, []string{"admin", "users"}, []string{"keys"},
			[]string{"/v1/orders", "NewOrder", `"Order"`}},
		{"nobody", consumer("nobody"), nil, nil, nil, nil, []string{"/v1/", "/users", `"Order"`, "Customer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := get(p, "GET", "/docs/openapi.json", tc.c)
			if w.Code != 200 {
				t.Fatalf("status %d", w.Code)
			}
			v := parseView(t, w.Body.Bytes())
			if !slices.Equal(v.ops, tc.ops) {
				t.Errorf("operations %q, want %q", v.ops, tc.ops)
			}
			if !slices.Equal(v.schemas, tc.schemas) {
				t.Errorf("schemas %q, want %q", v.schemas, tc.schemas)
			}
			if tc.name != "admin" && !slices.Equal(v.tags, tc.tags) { // "users" is used but not declared
				t.Errorf("tags %q, want %q", v.tags, tc.tags)
			}
			if !slices.Equal(v.schemes, tc.schemes) {
				t.Errorf("security schemes %q, want %q", v.schemes, tc.schemes)
			}
			// Never leaks gateway settings or internal servers.
			for _, s := range append(tc.mustMiss, "x-breakwater", "10.0.0.5", "billing.internal", "api.example.com/v1") {
				if strings.Contains(v.raw, s) {
					t.Errorf("document contains %q", s)
				}
			}
			if got := w.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q", got)
			}
			if got := w.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q", got)
			}
		})
	}
}

func TestTopLevelSecurityMovesIntoOperations(t *testing.T) {
	p := testPortal(t)
	body, err := p.Document(consumer("w", "orders:read", "orders:write"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	_ = json.Unmarshal(body, &doc)
	if _, ok := doc["security"]; ok {
		t.Error("top-level security kept: it would apply to the other specs' operations")
	}
	paths := doc["paths"].(map[string]any)
	get := paths["/v1/orders"].(map[string]any)["get"].(map[string]any)
	post := paths["/v1/orders"].(map[string]any)["post"].(map[string]any)
	if fmt.Sprint(get["security"]) != "[map[keys:[]]]" || fmt.Sprint(post["security"]) != "[map[oauth:[orders:write]]]" {
		t.Errorf("security get %v post %v", get["security"], post["security"])
	}
	if _, ok := paths["/v1/orders/{id}"].(map[string]any)["parameters"]; !ok {
		t.Error("path-level parameters lost")
	}
}

func TestPage(t *testing.T) {
	p := testPortal(t)
	w := get(p, "GET", "/docs/", consumer("reader", "orders:read"))
	h := w.Header()
	if w.Code != 200 || h.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("%d %q", w.Code, h.Get("Content-Type"))
	}
	if h.Get("Cache-Control") != "no-store" || h.Get("Content-Security-Policy") != PageCSP ||
		h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers %v", h)
	}
	for _, want := range []string{"script-src 'self'", "default-src 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(PageCSP, want) {
			t.Errorf("CSP lacks %s", want)
		}
	}
	if strings.Contains(PageCSP, "unsafe") {
		t.Error("CSP allows unsafe-*")
	}
	body := w.Body.String()
	// No inline script and nothing loaded from elsewhere.
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(body, -1) {
		if !strings.Contains(tag, `src="assets/`) {
			t.Errorf("inline or foreign script %s", tag)
		}
	}
	if n := strings.Count(body, "</script>"); n != len(regexp.MustCompile(`<script src="assets/[^"]+"></script>`).FindAllString(body, -1)) {
		t.Errorf("a script element has content")
	}
	for _, ref := range regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(body, -1) {
		u := ref[1]
		if strings.Contains(u, ":") || strings.HasPrefix(u, "//") {
			t.Errorf("page loads %s from elsewhere", u)
			continue
		}
		if u != "openapi.json" && !p.Public("/docs/"+u) {
			t.Errorf("page refers to %s, which the portal does not serve", u)
		}
	}
	if w := get(p, "HEAD", "/docs/", consumer("reader")); w.Code != 200 {
		t.Errorf("HEAD: %d", w.Code)
	}
}

func TestRequests(t *testing.T) {
	p := testPortal(t)
	c := consumer("reader", "orders:read")
	for _, tc := range []struct {
		method, path string
		c            *authn.Consumer
		status       int
		contentType  string
	}{
		{"GET", "/docs/assets/init.js", nil, 200, "text/javascript; charset=utf-8"},
		{"GET", "/docs/assets/swagger-ui-bundle.js", nil, 200, "text/javascript; charset=utf-8"},
		{"GET", "/docs/assets/swagger-ui.css", c, 200, "text/css; charset=utf-8"},
		{"GET", "/docs/assets/LICENSE", nil, 200, "text/plain; charset=utf-8"},
		{"HEAD", "/docs/assets/init.js", nil, 200, "text/javascript; charset=utf-8"},
		{"GET", "/docs", c, 308, ""},
		{"GET", "/docs/", nil, 401, "application/problem+json"},
		{"GET", "/docs/openapi.json", nil, 401, "application/problem+json"},
		{"POST", "/docs/openapi.json", c, 405, "application/problem+json"},
		{"DELETE", "/docs/assets/init.js", nil, 405, "application/problem+json"},
		{"GET", "/docs/openapi.yaml", c, 404, "application/problem+json"},
		{"GET", "/docs/openapi.json/", c, 404, "application/problem+json"},
		{"GET", "/docsx/openapi.json", c, 404, "application/problem+json"},
		{"GET", "/other", c, 404, "application/problem+json"},
		// attack rows: unknown assets and traversal
		{"GET", "/docs/assets/", nil, 404, "application/problem+json"},
		{"GET", "/docs/assets/nope.js", nil, 404, "application/problem+json"},
		{"GET", "/docs/assets/index.html", nil, 404, "application/problem+json"},
		{"GET", "/docs/assets/README.md", nil, 404, "application/problem+json"},
		{"GET", "/docs/assets/init.js/", nil, 404, "application/problem+json"},
		{"GET", "/docs/assets//init.js", nil, 404, "application/problem+json"},
		{"GET", "/docs/assets/assets/init.js", nil, 404, "application/problem+json"},
		{"GET", "/docs/assets/../openapi.json", nil, 404, "application/problem+json"},
		{"GET", "/docs/assets/../../go.mod", nil, 404, "application/problem+json"},
		{"GET", "/docs/assets/..%2f..%2fgo.mod", nil, 404, "application/problem+json"},
		{"GET", "/docs/assets/%2e%2e/docs.go", nil, 404, "application/problem+json"},
		{"GET", "/docs/assets/./init.js", nil, 404, "application/problem+json"},
		{"GET", "/docs/assets/INIT.JS", nil, 404, "application/problem+json"},
		{"GET", "/docs/assets/init.js\x00", nil, 404, "application/problem+json"},
		{"GET", "/docs/../docs/openapi.json", nil, 404, "application/problem+json"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			w := get(p, tc.method, tc.path, tc.c)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			if got := w.Header().Get("Content-Type"); got != tc.contentType {
				t.Errorf("Content-Type %q, want %q", got, tc.contentType)
			}
			if w.Code == 200 && w.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Error("no nosniff")
			}
			if w.Code == 308 && w.Header().Get("Location") != "/docs/" {
				t.Errorf("Location %q", w.Header().Get("Location"))
			}
		})
	}
}

func TestAssetETag(t *testing.T) {
	p := testPortal(t)
	w := get(p, "GET", "/docs/assets/init.js", nil)
	want, _ := os.ReadFile("assets/init.js")
	if w.Body.String() != string(want) {
		t.Fatal("init.js differs from the file")
	}
	r := httptest.NewRequest("GET", "/docs/assets/init.js", nil)
	r.Header.Set("If-None-Match", w.Header().Get("ETag"))
	w2 := httptest.NewRecorder()
	p.ServeHTTP(w2, r)
	if w2.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", w2.Code)
	}
}

func TestHandlesAndPublic(t *testing.T) {
	p := testPortal(t)
	for path, want := range map[string][2]bool{
		"/docs":                   {true, false},
		"/docs/":                  {true, false},
		"/docs/openapi.json":      {true, false},
		"/docs/assets/init.js":    {true, true},
		"/docs/assets/nope.js":    {true, false},
		"/docs/assets/../x":       {true, false},
		"/docsx":                  {false, false},
		"/v1/docs/assets/init.js": {false, false},
		"/":                       {false, false},
	} {
		if got := [2]bool{p.Handles(path), p.Public(path)}; got != want {
			t.Errorf("%s: Handles, Public = %v, want %v", path, got, want)
		}
	}
	root, err := New(Options{Path: "/", Specs: []Spec{{Data: []byte("openapi: 3.0.3\npaths: {}")}}, Allowed: allowByScope})
	if err != nil {
		t.Fatal(err)
	}
	if !root.Handles("/anything") || !root.Public("/assets/init.js") {
		t.Error("portal at / does not own its paths")
	}
	if w := get(root, "GET", "/openapi.json", consumer("x")); w.Code != 200 {
		t.Errorf("portal at /: %d", w.Code)
	}
}

func TestNewRefuses(t *testing.T) {
	orders, _ := os.ReadFile("testdata/orders.yaml")
	for _, tc := range []struct {
		name  string
		specs []Spec
		want  string
	}{
		{"none", nil, "no spec"},
		{"not yaml", []Spec{{Name: "a", Data: []byte("openapi: [")}}, "a: parsing YAML"},
		{"not json", []Spec{{Name: "a", Data: []byte(`{"openapi": `)}}, "a: parsing JSON"},
		{"list", []Spec{{Name: "a", Data: []byte("- a")}}, "not a mapping"},
		{"swagger 2", []Spec{{Name: "a", Data: []byte("swagger: '2.0'")}}, "not an OpenAPI 3"},
		{"versions", []Spec{{Name: "a", Data: orders}, {Name: "b", Data: []byte("openapi: 3.0.3")}}, "cannot be merged"},
		{"same path", []Spec{{Name: "a", Data: orders}, {Name: "b", Data: []byte("openapi: 3.1.0\nservers: [{url: /v1}]\npaths: {/orders: {}}")}}, "path /v1/orders is documented by another spec"},
		{"component", []Spec{{Name: "a", Data: orders}, {Name: "b", Data: []byte("openapi: 3.1.0\ncomponents: {schemas: {Order: {type: string}}}")}}, "components.schemas.Order differs"},
		{"external ref", []Spec{{Name: "a", Data: []byte("openapi: 3.1.0\npaths: {/a: {$ref: 'other.yaml#/a'}}")}}, "bundle the spec"},
		{"path not a map", []Spec{{Name: "a", Data: []byte("openapi: 3.1.0\npaths: {/a: 1}")}}, "not a mapping"},
	} {
		_, err := New(Options{Path: "/docs", Specs: tc.specs, Allowed: allowByScope})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := New(Options{Path: "/docs", Specs: []Spec{{Data: orders}}}); err == nil {
		t.Error("no Allowed accepted")
	}
	if _, err := ReadSpecs("testdata", []string{"missing.yaml"}); err == nil {
		t.Error("missing spec read")
	}
}

func TestPathItemRefAndBasePath(t *testing.T) {
	spec := `openapi: 3.1.0
servers: [{url: "https://{env}.example.com/api/"}]
paths:
  /a: {$ref: "#/components/pathItems/A"}
components:
  pathItems:
    A: {get: {operationId: a, responses: {"200": {description: ok}}}}
`
	var seen []string
	p, err := New(Options{Path: "/docs", Specs: []Spec{{Data: []byte(spec)}}, Allowed: func(_ *authn.Consumer, m, path string) bool {
		seen = append(seen, m+" "+path)
		return true
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Document(consumer("x")); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seen, []string{"GET /api/a"}) {
		t.Errorf("Allowed saw %q", seen)
	}
	for url, want := range map[string]string{
		"https://api.example.com": "", "https://api.example.com/": "", "/v2": "/v2", "https://x/{v}/a": "",
		"http://h:1/a/b/?q": "/a/b", "relative": "",
	} {
		if got := oasdoc.BasePath(map[string]any{"servers": []any{map[string]any{"url": url}}}); got != want {
			t.Errorf("BasePath(%q) = %q, want %q", url, got, want)
		}
	}
}

// The cache of rendered documents stays bounded however many distinct
// sets of operations consumers may call.
func TestCacheBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("openapi: 3.1.0\npaths:\n")
	for i := range 8 {
		fmt.Fprintf(&b, "  /p%d: {get: {responses: {\"200\": {description: ok}}}}\n", i)
	}
	p, err := New(Options{Path: "/docs", Specs: []Spec{{Data: []byte(b.String())}}, Allowed: func(c *authn.Consumer, _, path string) bool {
		var n, bit int
		fmt.Sscanf(c.ID, "%d", &n)
		fmt.Sscanf(path, "/p%d", &bit)
		return n&(1<<bit) != 0
	}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 256 {
		wg.Go(func() {
			body, err := p.Document(consumer(fmt.Sprint(i)))
			if err != nil {
				t.Error(err)
				return
			}
			var doc struct{ Paths map[string]any }
			_ = json.Unmarshal(body, &doc)
			if want := popcount(i); len(doc.Paths) != want {
				t.Errorf("consumer %d sees %d paths, want %d", i, len(doc.Paths), want)
			}
		})
	}
	wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.cache) > cacheEntries || len(p.order) != len(p.cache) {
		t.Errorf("cache holds %d documents (%d keys)", len(p.cache), len(p.order))
	}
}

func popcount(i int) int {
	n := 0
	for ; i > 0; i &= i - 1 {
		n++
	}
	return n
}

func BenchmarkDocument(b *testing.B) {
	p := testPortal(b)
	c := consumer("reader", "orders:read")
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.Document(c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("render", func(b *testing.B) {
		allow := []bool{true, true, false, true, false}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.spec.render(allow); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzServePath: whatever path a client asks for, the portal never panics
// and serves 200 only for its own files.
func FuzzServePath(f *testing.F) {
	p := testPortal(f)
	c := consumer("reader", "orders:read")
	f.Fuzz(func(t *testing.T, path string, withConsumer bool) {
		var who *authn.Consumer
		if withConsumer {
			who = c
		}
		w := get(p, "GET", path, who)
		if w.Code != 200 {
			return
		}
		switch {
		case path == "/docs/" || path == "/docs/openapi.json":
			if !withConsumer {
				t.Fatalf("%q served without a consumer", path)
			}
		case p.Public(path):
		default:
			t.Fatalf("%q served", path)
		}
	})
}

func TestAssetGzip(t *testing.T) {
	p := testPortal(t)
	plain, _ := os.ReadFile("assets/swagger-ui-bundle.js")
	for ae, gz := range map[string]bool{"": false, "gzip": true, "br, gzip;q=0.5": true, "gzip;q=0": false, "gzip; q=0.000": false, "identity": false, "GZIP": true} {
		r := httptest.NewRequest("GET", "/docs/assets/swagger-ui-bundle.js", nil)
		if ae != "" {
			r.Header.Set("Accept-Encoding", ae)
		}
		w := httptest.NewRecorder()
		p.ServeHTTP(w, r)
		if got := w.Header().Get("Content-Encoding") == "gzip"; got != gz || w.Code != 200 {
			t.Errorf("%q: %d gzip %v", ae, w.Code, got)
			continue
		}
		body := w.Body.Bytes()
		if gz {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if body, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(body, plain) || w.Header().Get("Vary") != "Accept-Encoding" {
			t.Errorf("%q: body differs or no Vary", ae)
		}
	}
}
