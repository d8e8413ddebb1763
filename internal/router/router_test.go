package router

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

type matchCase struct {
	host, path, method string
	route              int     // expected route id; -1 for 404/405
	params             []Param // expected params (nil: none)
	status             int
	allow              string
}

func p(kv ...string) []Param {
	var ps []Param
	for i := 0; i+1 < len(kv); i += 2 {
		ps = append(ps, Param{Name: kv[i], Value: kv[i+1]})
	}
	return ps
}

func mustNew(t *testing.T, specs []Spec) *Router {
	t.Helper()
	rt, err := New(specs)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return rt
}

func runMatches(t *testing.T, rt *Router, cases []matchCase) {
	t.Helper()
	for _, c := range cases {
		method := c.method
		if method == "" {
			method = "GET"
		}
		got := rt.Match(c.host, c.path, method, nil)
		want := Result{Route: c.route, Params: c.params, Status: c.status, Allow: c.allow}
		if c.status != 0 {
			want.Route = -1
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Match(%q, %q, %q) = %+v, want %+v", c.host, c.path, method, got, want)
		}
	}
}

func TestPathPrecedence(t *testing.T) {
	rt := mustNew(t, []Spec{
		0: {Path: "/**"},
		1: {Path: "/v1/**"},
		2: {Path: "/v1/orders/{id}"},
		3: {Path: "/v1/orders/new"},
		4: {Path: "/v1/{kind}/new"},
		5: {Path: "/v1/orders/{id}/items/{item}"},
		6: {Path: "/v1/orders"},
		7: {Path: "/v1/{kind}/{id}/**"},
		8: {Path: "/"},
		9: {Path: "/v1/orders/{id}/**"},
	})
	runMatches(t, rt, []matchCase{
		{path: "/", route: 8},
		{path: "/x", route: 0},
		{path: "/x/y/z/", route: 0},
		{path: "/v1", route: 1},
		{path: "/v1/", route: 1},
		{path: "/v1x", route: 0},
		{path: "/v1/orders", route: 6},
		{path: "/v1/orders/", route: 1}, // "/v1/orders" does not match the trailing slash
		{path: "/v1/orders/new", route: 3},
		{path: "/v1/orders/42", route: 2, params: p("id", "42")},
		{path: "/v1/users/new", route: 4, params: p("kind", "users")},
		{path: "/v1/orders/42/items/7", route: 5, params: p("id", "42", "item", "7")},
		{path: "/v1/orders/42/items", route: 9, params: p("id", "42")}, // literal "orders" beats {kind}
		{path: "/v1/orders/42/", route: 9, params: p("id", "42")},      // {id}/** matches the trailing slash
		{path: "/v1/users/42/x", route: 7, params: p("kind", "users", "id", "42")},
		{path: "/v1/users/42", route: 7, params: p("kind", "users", "id", "42")}, // ** matches the prefix itself
		{path: "/v1/users", route: 1},
	})
}

func TestTrailingSlash(t *testing.T) {
	rt := mustNew(t, []Spec{
		0: {Path: "/a"},
		1: {Path: "/b/"},
		2: {Path: "/c/**"},
		3: {Path: "/d/{x}"},
		4: {Path: "/d/{x}/"},
	})
	runMatches(t, rt, []matchCase{
		{path: "/a", route: 0},
		{path: "/a/", status: 404},
		{path: "/b/", route: 1},
		{path: "/b", status: 404},
		{path: "/c", route: 2},
		{path: "/c/", route: 2},
		{path: "/c/x/", route: 2},
		{path: "/d/1", route: 3, params: p("x", "1")},
		{path: "/d/1/", route: 4, params: p("x", "1")},
		{path: "/d/", status: 404}, // {x} needs a non-empty segment
		{path: "/d", status: 404},
	})
}

func TestHosts(t *testing.T) {
	rt := mustNew(t, []Spec{
		0: {Path: "/v1/**"},
		1: {Host: "*.example.com", Path: "/v1/**"},
		2: {Host: "api.example.com", Path: "/v1/**"},
		3: {Host: "API.Other.com", Path: "/v1/orders/{id}"},
		4: {Path: "/v1/orders/{id}"},
		5: {Host: "[::1]", Path: "/v1/**"},
		6: {Host: "admin.example.com", Path: "/admin/**"},
		7: {Host: "127.0.0.1", Path: "/admin/**"},
	})
	runMatches(t, rt, []matchCase{
		{host: "api.example.com", path: "/v1/x", route: 2},
		{host: "API.EXAMPLE.COM", path: "/v1/x", route: 2},
		{host: "api.example.com:8443", path: "/v1/x", route: 2},
		{host: "api.example.com.", path: "/v1/x", route: 2},
		{host: "Api.Example.Com.:443", path: "/v1/x", route: 2},
		{host: "www.example.com", path: "/v1/x", route: 1},
		{host: "a.b.example.com", path: "/v1/x", route: 0}, // one label only
		{host: "example.com", path: "/v1/x", route: 0},
		{host: ".example.com", path: "/v1/x", route: 0},
		{host: "evil.com", path: "/v1/x", route: 0},
		{host: "", path: "/v1/x", route: 0},
		{host: "api.example.com.evil.com", path: "/v1/x", route: 0},
		// A host route beats a more specific host-less route.
		{host: "api.example.com", path: "/v1/orders/1", route: 2},
		{host: "api.other.com", path: "/v1/orders/1", route: 3, params: p("id", "1")},
		{host: "elsewhere", path: "/v1/orders/1", route: 4, params: p("id", "1")},
		{host: "[::1]:8443", path: "/v1/x", route: 5},
		{host: "[::1]", path: "/v1/x", route: 5},
		{host: "[::2]", path: "/v1/x", route: 0},
		{host: "[::1", path: "/v1/x", route: 0},
		// Routes of another host are never reached.
		{host: "api.example.com", path: "/admin/x", status: 404},
		{host: "admin.example.com", path: "/admin/x", route: 6},
		{host: "127.0.0.1:9901", path: "/admin/x", route: 7},
		{host: "127.0.0.2", path: "/admin/x", status: 404},
		{host: "admin.example.com@evil", path: "/admin/x", status: 404},
		{host: strings.Repeat("a", 300) + ".example.com", path: "/admin/x", status: 404},
	})
}

func TestMethods(t *testing.T) {
	rt := mustNew(t, []Spec{
		0: {Path: "/orders/{id}", Methods: []string{"GET"}},
		1: {Path: "/orders/{id}", Methods: []string{"delete", "PUT"}},
		2: {Path: "/orders", Methods: []string{"POST"}},
		3: {Path: "/orders/{id}/**", Methods: []string{"PATCH"}},
		4: {Path: "/files/**", Methods: []string{"GET"}},
		5: {Path: "/files/{name}", Methods: []string{"PUT"}},
		6: {Path: "/ping", Methods: []string{"HEAD"}},
		7: {Path: "/ping", Methods: []string{"GET"}},
		8: {Path: "/x", Methods: []string{"PURGE", "OPTIONS", "BREW"}},
	})
	runMatches(t, rt, []matchCase{
		{path: "/orders/1", method: "GET", route: 0, params: p("id", "1")},
		{path: "/orders/1", method: "HEAD", route: 0, params: p("id", "1")},
		{path: "/orders/1", method: "DELETE", route: 1, params: p("id", "1")},
		{path: "/orders/1", method: "PUT", route: 1, params: p("id", "1")},
		{path: "/orders/1", method: "PATCH", route: 3, params: p("id", "1")}, // falls through to the less specific route
		{path: "/orders/1", method: "POST", status: 405, allow: "GET, HEAD, PUT, PATCH, DELETE"},
		{path: "/orders/1", method: "delete", status: 405, allow: "GET, HEAD, PUT, PATCH, DELETE"}, // methods are case-sensitive
		{path: "/orders", method: "POST", route: 2},
		{path: "/orders", method: "GET", status: 405, allow: "POST"},
		{path: "/orders/", method: "GET", status: 404},
		{path: "/files/a", method: "PUT", route: 5, params: p("name", "a")},
		{path: "/files/a", method: "GET", route: 4},
		{path: "/files/a", method: "DELETE", status: 405, allow: "GET, HEAD, PUT"},
		{path: "/files/a/b", method: "PUT", status: 405, allow: "GET, HEAD"},
		{path: "/ping", method: "HEAD", route: 6}, // an explicit HEAD beats HEAD through GET
		{path: "/ping", method: "GET", route: 7},
		{path: "/ping", method: "POST", status: 405, allow: "GET, HEAD"},
		{path: "/x", method: "GET", status: 405, allow: "OPTIONS, BREW, PURGE"},
		{path: "/nothing", method: "GET", status: 404},
	})
}

func TestMethodsAcrossHosts(t *testing.T) {
	rt := mustNew(t, []Spec{
		0: {Host: "api.example.com", Path: "/v1/**", Methods: []string{"GET"}},
		1: {Path: "/v1/orders", Methods: []string{"POST"}},
		2: {Host: "*.example.com", Path: "/v1/orders", Methods: []string{"DELETE"}},
	})
	runMatches(t, rt, []matchCase{
		{host: "api.example.com", path: "/v1/orders", method: "GET", route: 0},
		{host: "api.example.com", path: "/v1/orders", method: "POST", route: 1},
		{host: "api.example.com", path: "/v1/orders", method: "DELETE", route: 2},
		{host: "api.example.com", path: "/v1/orders", method: "PUT", status: 405, allow: "GET, HEAD, POST, DELETE"},
		{host: "other.com", path: "/v1/orders", method: "PUT", status: 405, allow: "POST"},
		{host: "other.com", path: "/v1/x", method: "GET", status: 404},
	})
}

func TestRootWildcard(t *testing.T) {
	rt := mustNew(t, []Spec{{Path: "/**", Methods: []string{"GET"}}})
	for _, path := range []string{"/", "/a", "/a/", "/a/b/c", "/é/ü/"} {
		if got := rt.Match("", path, "GET", nil); got.Status != 0 || got.Route != 0 {
			t.Errorf("/** does not match %q: %+v", path, got)
		}
	}
	if got := rt.Match("", "/a", "POST", nil); got.Status != 405 || got.Allow != "GET, HEAD" {
		t.Errorf("POST /a = %+v, want 405 with Allow GET, HEAD", got)
	}
}

func TestUnicodeParams(t *testing.T) {
	rt := mustNew(t, []Spec{
		0: {Path: "/café/{name}/menü"},
		1: {Path: "/users/{user}/files/{file}"},
	})
	runMatches(t, rt, []matchCase{
		{path: "/café/日本/menü", route: 0, params: p("name", "日本")},
		{path: "/cafe/x/menü", status: 404},
		{path: "/users/zoë/files/résumé 2024.pdf", route: 1, params: p("user", "zoë", "file", "résumé 2024.pdf")},
		{path: "/users/a;b/files/%41", route: 1, params: p("user", "a;b", "file", "%41")}, // never decoded again
		{path: "/users/🚀/files/x", route: 1, params: p("user", "🚀", "file", "x")},
	})
}

func TestParamsAppend(t *testing.T) {
	rt := mustNew(t, []Spec{{Path: "/a/{x}/{y}"}})
	buf := make([]Param, 1, 8)
	buf[0] = Param{Name: "keep", Value: "me"}
	got := rt.Match("", "/a/1/2", "GET", buf)
	want := p("keep", "me", "x", "1", "y", "2")
	if !reflect.DeepEqual(got.Params, want) || &got.Params[0] != &buf[0] {
		t.Errorf("params = %v, want %v appended in place", got.Params, want)
	}
	if got := rt.Match("", "/b", "GET", buf[:0]); got.Status != 404 || len(got.Params) != 0 {
		t.Errorf("404 result has params %v", got.Params)
	}
}

func TestManyChildren(t *testing.T) {
	var specs []Spec
	for _, s := range strings.Fields("a b c d e f g h i j k l m n o p q r s t") {
		specs = append(specs, Spec{Path: "/" + s + "/{id}"})
	}
	rt := mustNew(t, specs)
	for id, s := range strings.Fields("a b c d e f g h i j k l m n o p q r s t") {
		if got := rt.Match("", "/"+s+"/1", "GET", nil); got.Route != id {
			t.Errorf("/%s/1 matched %+v, want route %d", s, got, id)
		}
	}
}

func TestMatchOddInputs(t *testing.T) {
	var nilRouter *Router
	if got := nilRouter.Match("h", "/", "GET", nil); got.Status != 404 || got.Route != -1 {
		t.Errorf("nil router: %+v", got)
	}
	rt := mustNew(t, []Spec{{Path: "/**"}, {Host: "h", Path: "/{x}"}})
	for _, path := range []string{"", "a", "*", "//", "/a//b", "\x00"} {
		got := rt.Match("h", path, "", nil)
		if path == "" || path[0] != '/' {
			if got.Status != 404 {
				t.Errorf("Match(%q) = %+v, want 404", path, got)
			}
		}
	}
	empty := mustNew(t, nil)
	if got := empty.Match("", "/", "GET", nil); got.Status != 404 {
		t.Errorf("empty router: %+v", got)
	}
}

func TestConflicts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		specs []Spec
		route int
		other int
	}{
		{"same path and method", []Spec{{Path: "/a", Methods: []string{"GET"}}, {Path: "/a", Methods: []string{"GET", "POST"}}}, 1, 0},
		{"case of method", []Spec{{Path: "/a", Methods: []string{"get"}}, {Path: "/a", Methods: []string{"GET"}}}, 1, 0},
		{"all methods", []Spec{{Path: "/a"}, {Path: "/a", Methods: []string{"POST"}}}, 1, 0},
		{"both all", []Spec{{Path: "/x"}, {Path: "/a/**"}, {Path: "/a/**"}}, 2, 1},
		{"param names differ", []Spec{{Path: "/a/{id}"}, {Path: "/a/{name}"}}, 1, 0},
		{"host case", []Spec{{Host: "API.example.com", Path: "/a"}, {Host: "api.example.com.", Path: "/a"}}, 1, 0},
		{"wildcard host", []Spec{{Host: "*.example.com", Path: "/a"}, {Host: "*.EXAMPLE.com", Path: "/a"}}, 1, 0},
	} {
		_, err := New(tc.specs)
		var ce *ConflictError
		if !errors.As(err, &ce) || ce.Route != tc.route || ce.Other != tc.other {
			t.Errorf("%s: err = %v, want conflict of route %d with %d", tc.name, err, tc.route, tc.other)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "route") {
			t.Errorf("%s: message %q", tc.name, msg)
		}
	}
	// Not conflicts.
	for _, specs := range [][]Spec{
		{{Path: "/a", Methods: []string{"GET"}}, {Path: "/a", Methods: []string{"POST"}}},
		{{Path: "/a", Methods: []string{"GET"}}, {Path: "/a", Methods: []string{"HEAD"}}},
		{{Path: "/a"}, {Path: "/a/"}},
		{{Path: "/a"}, {Path: "/a/**"}},
		{{Path: "/a/{x}"}, {Path: "/a/b"}},
		{{Path: "/a"}, {Host: "h", Path: "/a"}},
		{{Host: "h.example.com", Path: "/a"}, {Host: "*.example.com", Path: "/a"}},
	} {
		if _, err := New(specs); err != nil {
			t.Errorf("New(%+v): unexpected error %v", specs, err)
		}
	}
	msg := (&ConflictError{Route: 3, Other: 0, Path: "/v1/{id}", Method: "GET"}).Error()
	if !strings.Contains(msg, "route 3") || !strings.Contains(msg, "route 0") || !strings.Contains(msg, "any host") {
		t.Errorf("conflict message %q does not name both routes and the host", msg)
	}
}

func TestInvalidSpecs(t *testing.T) {
	for _, tc := range []struct {
		spec  Spec
		field string
	}{
		{Spec{Path: ""}, "path"},
		{Spec{Path: "v1/orders"}, "path"},
		{Spec{Path: "http://x/y"}, "path"},
		{Spec{Path: "/a//b"}, "path"},
		{Spec{Path: "//"}, "path"},
		{Spec{Path: "/a/./b"}, "path"},
		{Spec{Path: "/a/.."}, "path"},
		{Spec{Path: "/a/..."}, "path"},
		{Spec{Path: "/a/**/b"}, "path"},
		{Spec{Path: "/a/*"}, "path"},
		{Spec{Path: "/a*"}, "path"},
		{Spec{Path: "/a/***"}, "path"},
		{Spec{Path: "/a/{}"}, "path"},
		{Spec{Path: "/a/{id"}, "path"},
		{Spec{Path: "/a/id}"}, "path"},
		{Spec{Path: "/a/x{id}"}, "path"},
		{Spec{Path: "/a/{id}x"}, "path"},
		{Spec{Path: "/a/{1d}"}, "path"},
		{Spec{Path: "/a/{i-d}"}, "path"},
		{Spec{Path: "/a/{id}/{id}"}, "path"},
		{Spec{Path: "/caf%C3%A9"}, "path"},
		{Spec{Path: "/a;x"}, "path"},
		{Spec{Path: "/a\\b"}, "path"},
		{Spec{Path: "/a?b"}, "path"},
		{Spec{Path: "/a\x00"}, "path"},
		{Spec{Path: "/caf\xc3"}, "path"},
		{Spec{Host: "*", Path: "/"}, "host"},
		{Spec{Host: "api.example.com:8443", Path: "/"}, "host"},
		{Spec{Host: "a.*.example.com", Path: "/"}, "host"},
		{Spec{Host: "*example.com", Path: "/"}, "host"},
		{Spec{Host: "a..b", Path: "/"}, "host"},
		{Spec{Host: "ex ample.com", Path: "/"}, "host"},
		{Spec{Host: "bücher.de", Path: "/"}, "host"},
		{Spec{Host: "::1", Path: "/"}, "host"},
		{Spec{Host: "[::1]:443", Path: "/"}, "host"},
		{Spec{Host: "[zz]", Path: "/"}, "host"},
		{Spec{Path: "/", Methods: []string{""}}, "methods"},
		{Spec{Path: "/", Methods: []string{"*"}}, "methods"},
		{Spec{Path: "/", Methods: []string{"GE T"}}, "methods"},
		{Spec{Path: "/", Methods: []string{"GET,POST"}}, "methods"},
	} {
		_, err := New([]Spec{{Path: "/ok"}, tc.spec})
		var se *SpecError
		if !errors.As(err, &se) || se.Route != 1 || se.Field != tc.field {
			t.Errorf("New(%+v): err = %v, want a %s error for route 1", tc.spec, err, tc.field)
		}
	}
	// Every problem is reported.
	_, err := New([]Spec{{Path: "a"}, {Path: "/ok"}, {Host: "*", Path: "/"}, {Path: "/ok"}})
	if err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("want three problems, got %v", err)
	}
}

func TestValidSpecs(t *testing.T) {
	_, err := New([]Spec{
		{Path: "/"},
		{Path: "/**"},
		{Path: "/a/"},
		{Path: "/a/{id}/"},
		{Path: "/v1/{_x}/{Y2}/**"},
		{Path: "/.well-known/jwks.json"},
		{Path: "/a.b/c..d/~x/@y/:z/a+b/a b/é"},
		{Host: "xn--bcher-kva.de", Path: "/"},
		{Host: "*.example.com", Path: "/"},
		{Host: "[2001:db8::1]", Path: "/"},
		{Host: "10.0.0.1", Path: "/"},
		{Host: "my_host.local", Path: "/"},
		{Path: "/m", Methods: []string{"get", "GET", "M-SEARCH"}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestTooManyMethods(t *testing.T) {
	var specs []Spec
	for i := 0; i < 65; i++ {
		specs = append(specs, Spec{Path: "/m", Methods: []string{"M" + strconv.Itoa(i)}})
	}
	if _, err := New(specs); err == nil {
		t.Fatal("65 distinct methods accepted")
	}
	if _, err := New(specs[:64]); err != nil {
		t.Fatal(err)
	}
}

func TestMatchAllocs(t *testing.T) {
	rt := mustNew(t, benchSpecs())
	buf := make([]Param, 0, 4)
	for _, c := range benchRequests() {
		if n := testing.AllocsPerRun(100, func() { rt.Match(c.host, c.path, c.method, buf[:0]) }); n != 0 {
			t.Errorf("Match(%q, %q, %q) allocates %v times", c.host, c.path, c.method, n)
		}
	}
}

func FuzzMatch(f *testing.F) {
	rt, err := New(benchSpecs())
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range benchRequests() {
		f.Add(c.host, c.path, c.method)
	}
	f.Add("[", "/", "")
	f.Add("a:b:c", "//", "GET")
	f.Fuzz(func(t *testing.T, host, path, method string) {
		res := rt.Match(host, path, method, nil)
		switch res.Status {
		case 0:
			if res.Route < 0 || res.Route >= len(rt.routes) {
				t.Fatalf("route %d out of range", res.Route)
			}
		case 404, 405:
			if res.Route != -1 || (res.Status == 405) != (res.Allow != "") {
				t.Fatalf("bad result %+v", res)
			}
		default:
			t.Fatalf("status %d", res.Status)
		}
	})
}

func FuzzNew(f *testing.F) {
	f.Add("api.example.com", "/v1/orders/{id}", "GET")
	f.Add("*.example.com", "/v1/**", "")
	f.Add("", "/a/{x}/{y}/", "get")
	f.Fuzz(func(t *testing.T, host, path, method string) {
		var methods []string
		if method != "" {
			methods = []string{method}
		}
		rt, err := New([]Spec{{Host: host, Path: path, Methods: methods}, {Path: "/**", Methods: []string{"OPTIONS"}}})
		if err != nil {
			return
		}
		rt.Match(host, path, method, nil)
		rt.Match(host, path+"/x", "GET", nil)
	})
}

// TestAllowManyMethods covers the Allow values that are not all precomputed.
func TestAllowManyMethods(t *testing.T) {
	var extra []string
	for i := 0; i < 12; i++ {
		extra = append(extra, "X"+strconv.Itoa(i))
	}
	rt := mustNew(t, []Spec{
		0: {Path: "/a/{id}", Methods: []string{"GET", "X1"}},
		1: {Path: "/a/**", Methods: []string{"POST", "X0"}},
		2: {Path: "/b", Methods: extra},
	})
	if rt.allowTable != nil {
		t.Fatal("expected no Allow table with 14 methods")
	}
	runMatches(t, rt, []matchCase{
		{path: "/a/1", method: "PUT", status: 405, allow: "GET, HEAD, POST, X0, X1"},
		{path: "/a", method: "PUT", status: 405, allow: "POST, X0"},
		{path: "/b", method: "PUT", status: 405, allow: "X0, X1, X10, X11, X2, X3, X4, X5, X6, X7, X8, X9"},
	})
}

func TestNoMethodsRefusesTraceAndConnect(t *testing.T) {
	rt, err := New([]Spec{
		{Path: "/a/**"},
		{Path: "/b/**"},
		{Path: "/b/**", Methods: []string{"TRACE"}}, // no conflict: /b/** without methods does not take TRACE
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path  string
		route, status int
		allow         string
	}{
		{"GET", "/a/x", 0, 0, ""},
		{"PURGE", "/a/x", 0, 0, ""},
		{"TRACE", "/a/x", -1, 405, "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"},
		{"CONNECT", "/a/x", -1, 405, "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"},
		{"TRACE", "/b/x", 2, 0, ""},
		{"DELETE", "/b/x", 1, 0, ""},
	} {
		res := rt.Match("h", tc.path, tc.method, nil)
		if res.Route != tc.route || res.Status != tc.status || res.Allow != tc.allow {
			t.Errorf("%s %s: %+v, want route %d status %d allow %q", tc.method, tc.path, res, tc.route, tc.status, tc.allow)
		}
	}
	if _, err := New([]Spec{{Path: "/c"}, {Path: "/c", Methods: []string{"TRACE", "GET"}}}); err == nil {
		t.Error("GET on both routes must conflict")
	}
}
