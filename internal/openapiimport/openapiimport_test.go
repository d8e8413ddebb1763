package openapiimport

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/breakwater/breakwater/internal/config"
)

const ordersSpec = `openapi: 3.1.0
info: {title: Orders, version: "1"}
servers: [{url: "https://api.example.com/v1"}]
security: [{keys: []}]
paths:
  /orders:
    get:
      responses: {"200": {description: ok}}
    post:
      security: [{oauth: ["orders:write", "orders:read"]}]
      x-breakwater: {max_body: 64KiB}
      responses: {"201": {description: created}}
    head:
      responses: {"200": {description: ok}}
  /orders/{id}:
    x-breakwater:
      upstream: "http://10.0.0.5:9000"
      rate_limits: [{key: consumer, limit: "10/s burst 20"}]
    get:
      responses: {"200": {description: ok}}
    delete:
      security: [{oauth: ["orders:admin"]}, {mtls: []}]
      x-breakwater: {openapi: {filter_responses: true}, rate_limits: [{key: ip, limit: "1/s"}]}
      responses: {"204": {description: gone}}
  /health:
    get:
      security: []
      responses: {"200": {description: ok}}
  /files/{name}.{ext}:
    get:
      responses: {"200": {description: ok}}
components:
  securitySchemes:
    keys: {type: apiKey, in: header, name: X-API-Key}
    oauth:
      type: oauth2
      flows: {clientCredentials: {tokenUrl: "https://api.example.com/oauth2/token", scopes: {"orders:write": w, "orders:read": r, "orders:admin": a}}}
    mtls: {type: mutualTLS}
`

type wantRoute struct {
	name, path string
	methods    []string
	auth       []string
	scopes     []string
	upstream   string
	filter     bool
	maxBody    config.Size
	rateLimits int
}

// parseOutput inserts routes into a minimal config with an api_key
// authenticator of each name they use and returns what config.Parse makes
// of it. Errors that only say a feature is not available in this version
// yet are tolerated: the routes are valid, the version is not finished.
func parseOutput(t *testing.T, spec string, out []byte) *config.Config {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"spec.yaml", "specs/orders.yaml"} { // the SpecPath values of the tests
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte(spec), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^    auth:.*\n((?:      - .*\n)+)`).FindAllStringSubmatch(string(out), -1) {
		for _, line := range strings.Split(strings.TrimSpace(m[1]), "\n") {
			names[strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "- "))] = true
		}
	}
	var b strings.Builder
	b.WriteString("version: 1\nserver: {admin: \"off\"}\ntls: {self_signed: true}\nauthenticators:\n")
	i := 0
	for n := range names {
		if n != "none" {
			i++
			fmt.Fprintf(&b, "  %s: {type: api_key, header: X-Key-%d}\n", n, i)
		}
	}
	if i == 0 {
		b.WriteString("  unused: {type: api_key}\n")
	}
	b.Write(out)
	path := filepath.Join(dir, "breakwater.yaml")
	cfg, err := config.Parse([]byte(b.String()), path, func(string) (string, bool) { return "", false })
	if err != nil {
		var es config.Errors
		if !errors.As(err, &es) {
			t.Fatalf("config.Parse: %v", err)
		}
		var real []string
		for _, e := range es {
			if !strings.Contains(e.Msg, "not available in this version of Breakwater yet") {
				real = append(real, e.String())
			}
		}
		if len(real) > 0 {
			t.Fatalf("the output is not a valid config:\n%s\n---\n%s", strings.Join(real, "\n"), b.String())
		}
		// Decode without the features still to come, to check the values.
		stripped := regexp.MustCompile(`(?m)^    openapi:\n(?:      .*\n)+`).ReplaceAllString(b.String(), "")
		if cfg, err = config.Parse([]byte(stripped), path, func(string) (string, bool) { return "", false }); err != nil {
			t.Fatalf("without openapi: %v\n%s", err, stripped)
		}
		for i := range cfg.Routes {
			cfg.Routes[i].OpenAPI = routeOpenAPI(t, out, i)
		}
	}
	return cfg
}

// routeOpenAPI reads the openapi section of route i back from the output.
func routeOpenAPI(t *testing.T, out []byte, i int) *config.OpenAPI {
	t.Helper()
	parts := strings.Split(string(out), "\n  - name: ")
	if i+1 >= len(parts) {
		t.Fatalf("route %d not in output", i)
	}
	sec := parts[i+1]
	o := &config.OpenAPI{}
	if m := regexp.MustCompile(`\n      spec: (.*)\n`).FindStringSubmatch(sec); m != nil {
		o.Spec = m[1]
	}
	o.ValidateRequests = strings.Contains(sec, "validate_requests: true")
	o.FilterResponses = strings.Contains(sec, "filter_responses: true")
	return o
}

func TestConvertOrders(t *testing.T) {
	res, err := Convert([]byte(ordersSpec), Options{SpecPath: "spec.yaml", SchemeAuth: map[string]string{"oauth": "own"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := parseOutput(t, ordersSpec, res.YAML)
	want := []wantRoute{
		{"v1-files-name-ext", "", nil, nil, nil, "", false, 0, 0}, // left out: not a template Breakwater matches
		{"v1-health", "/v1/health", []string{"GET"}, []string{"none"}, nil, PlaceholderUpstream, false, 0, 0},
		{"v1-orders-get-head", "/v1/orders", []string{"GET", "HEAD"}, []string{"keys"}, nil, PlaceholderUpstream, false, 0, 0},
		{"v1-orders-post", "/v1/orders", []string{"POST"}, []string{"own"}, []string{"orders:read", "orders:write"}, PlaceholderUpstream, false, 64 << 10, 0},
		{"v1-orders-id-get", "/v1/orders/{id}", []string{"GET"}, []string{"keys"}, nil, "http://10.0.0.5:9000", false, 0, 1},
		{"v1-orders-id-delete", "/v1/orders/{id}", []string{"DELETE"}, []string{"own", "mtls"}, []string{"orders:admin"}, "http://10.0.0.5:9000", true, 0, 1},
	}[1:]
	if len(cfg.Routes) != len(want) || res.Routes != len(want) {
		t.Fatalf("%d routes, want %d:\n%s", len(cfg.Routes), len(want), res.YAML)
	}
	for i, w := range want {
		r := cfg.Routes[i]
		if r.Name != w.name || r.Path != w.path || !slices.Equal(r.Methods, w.methods) || !slices.Equal(r.Auth, w.auth) ||
			!slices.Equal(r.Scopes, w.scopes) || r.Upstream.Targets[0] != w.upstream {
			t.Errorf("route %d = %s %s %v auth %v scopes %v upstream %v\nwant %+v", i, r.Name, r.Path, r.Methods, r.Auth, r.Scopes, r.Upstream.Targets, w)
		}
		if r.OpenAPI == nil || r.OpenAPI.Spec != "spec.yaml" || !r.OpenAPI.ValidateRequests || r.OpenAPI.FilterResponses != w.filter {
			t.Errorf("route %s openapi %+v", r.Name, r.OpenAPI)
		}
		if w.maxBody != 0 && (r.MaxBody == nil || *r.MaxBody != w.maxBody) {
			t.Errorf("route %s max_body %v", r.Name, r.MaxBody)
		}
		if len(r.RateLimits) != w.rateLimits {
			t.Errorf("route %s rate_limits %v", r.Name, r.RateLimits)
		}
	}
	out := string(res.YAML)
	for _, s := range []string{
		"# paths./files/{name}.{ext}: template",
		"placeholder: where this API runs",
		"security: [] in the spec: a public operation",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
	if !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, "/files/{name}.{ext}") }) {
		t.Errorf("warnings %q", res.Warnings)
	}
	if !strings.Contains(out, "the spec's alternatives need different scopes") {
		t.Errorf("no review note for the alternatives:\n%s", out)
	}
}

func TestConvertSecurityTable(t *testing.T) {
	for _, tc := range []struct {
		name       string
		top, op    string // YAML of the security fields ("" = absent)
		opts       Options
		auth       []string
		scopes     []string
		wantInYAML string
	}{
		{"none anywhere", "", "", Options{}, []string{PlaceholderAuth}, nil, "placeholder: the spec names no security requirement"},
		{"none anywhere, --auth", "", "", Options{DefaultAuth: "keys"}, []string{"keys"}, nil, ""},
		{"top-level empty is not public", "security: []", "", Options{}, []string{PlaceholderAuth}, nil, "placeholder"},
		{"operation empty is public", "security: [{api_key: []}]", "security: []", Options{}, []string{"none"}, nil, "public operation"},
		{"optional {}", "", "security: [{}]", Options{}, []string{PlaceholderAuth}, nil, "REVIEW: the spec lets this operation be called without credentials"},
		{"optional with key", "", "security: [{}, {api_key: []}]", Options{}, []string{"api_key"}, nil, "without credentials"},
		{"api key, no scopes", "security: [{api_key: []}]", "", Options{}, []string{"api_key"}, nil, ""},
		{"oauth scopes", "", `security: [{oauth: [b, a, a]}]`, Options{}, []string{"oauth"}, []string{"a", "b"}, ""},
		{"oidc scopes", "", `security: [{oidc: [openid, profile]}]`, Options{}, []string{"oidc"}, []string{"openid", "profile"}, ""},
		{"roles of apiKey are not scopes", "", `security: [{api_key: [admin]}]`, Options{}, []string{"api_key"}, nil, ""},
		{"AND of schemes", "", `security: [{api_key: [], oauth: [a]}]`, Options{}, []string{"api_key", "oauth"}, []string{"a"}, "REVIEW: the spec requires api_key and oauth together"},
		{"mapped names", "", `security: [{oauth: [a]}, {api_key: []}]`, Options{SchemeAuth: map[string]string{"oauth": "idp", "api_key": "keys"}}, []string{"idp", "keys"}, []string{"a"}, "different scopes"},
		{"unknown scheme", "", `security: [{Weird Scheme!: []}]`, Options{}, []string{"weird-scheme"}, nil, "not in components.securitySchemes"},
		{"scheme named none", "", `security: [{none: []}]`, Options{}, []string{"scheme-none"}, nil, ""},
		{"operation overrides top", "security: [{api_key: []}]", `security: [{oauth: [x]}]`, Options{}, []string{"oauth"}, []string{"x"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := "openapi: 3.0.3\n" + tc.top + "\npaths:\n  /a:\n    get:\n      " + tc.op + "\n      responses: {\"200\": {description: ok}}\n" +
				"components:\n  securitySchemes:\n    api_key: {type: apiKey, in: header, name: X-Key}\n    none: {type: apiKey, in: header, name: X-None}\n" +
				"    oauth: {type: oauth2, flows: {clientCredentials: {tokenUrl: /t, scopes: {}}}}\n    oidc: {type: openIdConnect, openIdConnectUrl: https://i/.well-known/openid-configuration}\n"
			tc.opts.SpecPath = "spec.yaml"
			res, err := Convert([]byte(spec), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			cfg := parseOutput(t, spec, res.YAML)
			r := cfg.Routes[0]
			if !slices.Equal(r.Auth, tc.auth) || !slices.Equal(r.Scopes, tc.scopes) {
				t.Errorf("auth %v scopes %v, want %v %v\n%s", r.Auth, r.Scopes, tc.auth, tc.scopes, res.YAML)
			}
			if tc.wantInYAML != "" && !strings.Contains(string(res.YAML), tc.wantInYAML) {
				t.Errorf("output lacks %q:\n%s", tc.wantInYAML, res.YAML)
			}
		})
	}
}

func TestConvertJSONAndNames(t *testing.T) {
	spec := `{"openapi": "3.1.0", "servers": [{"url": "/api/"}], "paths": {
	  "/": {"get": {"responses": {}}},
	  "/a-b": {"get": {"responses": {}}},
	  "/a/b": {"get": {"responses": {}}, "x-breakwater": {"name": "custom"}},
	  "/a.b": {"$ref": "#/components/pathItems/P"},
	  "/x/**": {"get": {"responses": {}}},
	  "/bad": {"$ref": "other.yaml#/x"}
	}, "components": {"pathItems": {"P": {"post": {"responses": {}}}}}}`
	res, err := Convert([]byte(spec), Options{SpecPath: "spec.yaml", Upstream: "https://orders.internal:9443", DefaultAuth: "keys"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := parseOutput(t, spec, res.YAML)
	var got []string
	for _, r := range cfg.Routes {
		got = append(got, r.Name+" "+r.Path+" "+strings.Join(r.Methods, ","))
		if r.Upstream.Targets[0] != "https://orders.internal:9443" {
			t.Errorf("%s: upstream %v", r.Name, r.Upstream.Targets)
		}
	}
	want := []string{"api /api/ GET", "api-a-b /api/a-b GET", "api-a.b /api/a.b POST", "custom /api/a/b GET", "api-x /api/x/** GET"}
	if !slices.Equal(got, want) {
		t.Errorf("routes %q, want %q\n%s", got, want, res.YAML)
	}
	if strings.Contains(string(res.YAML), "# placeholder") {
		t.Errorf("placeholders with --upstream and --auth:\n%s", res.YAML)
	}
	if !strings.Contains(string(res.YAML), "# paths./bad: not a path item") {
		t.Errorf("unresolvable $ref not reported:\n%s", res.YAML)
	}
}

func TestConvertRefuses(t *testing.T) {
	for name, tc := range map[string]struct{ spec, want string }{
		"not yaml":        {"openapi: [", "parsing YAML"},
		"not json":        {`{"openapi": `, "parsing JSON"},
		"list":            {"- a", "not a mapping"},
		"swagger 2":       {"swagger: '2.0'\npaths: {}", "not an OpenAPI 3"},
		"ext not a map":   {"openapi: 3.1.0\npaths: {/a: {x-breakwater: 5, get: {}}}", "paths./a.x-breakwater: must be a mapping"},
		"ext path":        {"openapi: 3.1.0\npaths: {/a: {get: {x-breakwater: {path: /b}}}}", "paths./a.get.x-breakwater.path: not a route field"},
		"ext unknown":     {"openapi: 3.1.0\npaths: {/a: {get: {x-breakwater: {rate_limit: 1}}}}", "x-breakwater.rate_limit: not a route field"},
		"ext methods":     {"openapi: 3.1.0\npaths: {/a: {x-breakwater: {methods: [GET]}, get: {}}}", "not a route field"},
		"no paths at all": {"openapi: 3.1.0", ""},
	} {
		res, err := Convert([]byte(tc.spec), Options{SpecPath: "s.yaml"})
		if tc.want == "" {
			if err != nil || res.Routes != 0 || !strings.Contains(string(res.YAML), "routes: []") {
				t.Errorf("%s: %v %+v", name, err, res)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

func TestExtensionMerge(t *testing.T) {
	spec := `openapi: 3.1.0
paths:
  /a:
    x-breakwater: {max_body: 1KiB, openapi: {filter_responses: true}, mask_upstream_errors: false, policy: "true"}
    get:
      security: [{k: []}]
      x-breakwater: {max_body: 2KiB, openapi: {validate_requests: false}, auth: [keys, own], scopes: [s]}
      responses: {}
components: {securitySchemes: {k: {type: apiKey, in: header, name: X}}}
`
	res, err := Convert([]byte(spec), Options{SpecPath: "spec.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	out := string(res.YAML)
	for _, s := range []string{"max_body: 2KiB", "filter_responses: true", "validate_requests: false", "mask_upstream_errors: false", "policy: \"true\"", "      - own", "scopes:\n      - s"} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
	if strings.Contains(out, "      - k\n") || strings.Contains(out, "1KiB") {
		t.Errorf("extension did not win:\n%s", out)
	}
}

func FuzzConvert(f *testing.F) {
	f.Add([]byte(ordersSpec))
	f.Add([]byte(`{"openapi":"3.0.0","paths":{"/a/{b}":{"get":{"security":[{"x":["y"]}]}}}}`))
	f.Fuzz(func(t *testing.T, spec []byte) {
		if len(spec) > 1<<16 {
			return
		}
		res, err := Convert(spec, Options{SpecPath: "s.yaml"})
		if err != nil {
			return
		}
		if !strings.HasPrefix(string(res.YAML), "# Routes generated") {
			t.Fatalf("output %q", res.YAML)
		}
	})
}

func BenchmarkConvert(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Convert([]byte(ordersSpec), Options{SpecPath: "spec.yaml"}); err != nil {
			b.Fatal(err)
		}
	}
}

// The example of docs/import.md is what the converter prints.
func TestDocsExample(t *testing.T) {
	page, err := os.ReadFile("../../docs/import.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(page), -1)
	if len(blocks) < 2 || !strings.Contains(string(page), "--upstream http://127.0.0.1:9000 \\\n    --auth keys --auth oauth2=own") {
		t.Fatal("docs/import.md no longer has the example this test checks")
	}
	res, err := Convert([]byte(blocks[0][1]), Options{SpecPath: "specs/orders.yaml", Upstream: "http://127.0.0.1:9000",
		DefaultAuth: "keys", SchemeAuth: map[string]string{"oauth2": "own"}})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.YAML) != blocks[1][1] {
		t.Errorf("docs/import.md shows\n%s\nthe converter prints\n%s", blocks[1][1], res.YAML)
	}
	parseOutput(t, blocks[0][1], res.YAML)
}
