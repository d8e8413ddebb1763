package authz

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/router"
)

// compileErrors returns the "line:col" of every *CompileError in err.
func compileErrors(t *testing.T, err error) []*CompileError {
	t.Helper()
	var out []*CompileError
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %v (%T) is not an errors.Join", err, err)
	}
	for _, e := range joined.Unwrap() {
		var ce *CompileError
		if !errors.As(e, &ce) {
			t.Fatalf("joined error %v (%T) is not a *CompileError", e, e)
		}
		out = append(out, ce)
	}
	return out
}

func TestCompile(t *testing.T) {
	tests := []struct {
		name string
		expr string
		// want lists "line:col: message substring" per error; nil: compiles.
		want []string
	}{
		{"spec example", `request.path.id.startsWith(consumer.id + "-")`, nil},
		{"bola", `request.path.id == consumer.id`, nil},
		{"scope", `'orders:write' in consumer.scopes`, nil},
		{"token claim vs header", `token.tenant == request.headers['x-tenant']`, nil},
		{"every variable", `request.method == 'GET' && request.canonical_path.startsWith('/v1/') &&
			request.query.page == '1' && request.query_all.tag.size() < 3 &&
			request.headers['x-a'] != '' && consumer.id != '' && consumer.scopes.size() > 0 &&
			token.sub == consumer.id`, nil},
		{"macros", `consumer.scopes.all(s, s.startsWith('orders:')) && request.query_all.exists(k, k == 'a')`, nil},
		{"has guard", `!has(request.query.page) || int(request.query.page) < 100`, nil},
		{"in guard", `'id' in request.path && request.path.id == consumer.id`, nil},
		{"strings extension", `request.path.id.lowerAscii() == consumer.id.lowerAscii()`, nil},
		{"regex", `request.path.id.matches('^[a-z0-9-]{1,64}$')`, nil},
		{"leading newline, non-bool", "\n  'x'", []string{"2:3: must be a bool expression, but its type is string"}},
		{"string result", `request.path.id`, []string{"1:1: must be a bool expression, but its type is string"}},
		{"int result", `1 + 2`, []string{"1:1: must be a bool expression, but its type is int"}},
		{"dyn result", `token.admin`, []string{"1:1: must be a bool expression, but its type is dyn"}},
		{"unknown request field", `request.body == ''`, []string{"1:1: undeclared reference to 'request': request has method"}},
		{"unknown consumer field", `consumer.name == 'x'`, []string{"1:1: undeclared reference to 'consumer': consumer has id and scopes"}},
		{"unknown variables, all reported", `user == 'a' || other == 'b'`, []string{
			"1:1: undeclared reference to 'user'", "1:16: undeclared reference to 'other'"}},
		{"syntax error on line 2", "request.method == 'GET' &&\n  request.path.id ==", []string{"2:21: Syntax error"}},
		{"type error on line 2", "request.method == 'GET' &&\n  request.path.id == 1", []string{"2:19: found no matching overload for '_==_'"}},
		{"no such function", `request.path.id.reverse2() == ''`, []string{"1:25: undeclared reference to 'reverse2'"}},
		{"bad constant regex", `request.path.id.matches('(')`, []string{"1:1: error parsing regexp"}},
		{"empty", ``, []string{"1:1: policy is empty"}},
		{"blank", " \n\t", []string{"1:1: policy is empty"}},
		{"too long", strings.Repeat("true && ", MaxExpressionSize/8) + "true", []string{"1:1: policy is 4100 characters long"}},
		{"invalid utf-8", "'\xff' == ''", []string{"1:1: policy is not valid UTF-8"}},
		{"deep nesting", strings.Repeat("(", 200) + "true" + strings.Repeat(")", 200), []string{"exceeded"}},
		{"too many nodes", "[" + strings.Repeat("1,", 1500) + "1].size() > 0", []string{"node count exceeds limit"}},
		{"nested comprehensions", `[1].all(a, [1].all(b, [1].all(c, [1].all(d, true))))`, []string{"comprehension exceeds nesting limit"}},
		{"unterminated string", `request.method == 'GET`, []string{"1:19: Syntax error: token recognition error", "1:23: Syntax error: mismatched input"}},
		{"column counts code points", `'é' == 1`, []string{"1:5: found no matching overload"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.expr)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Compile: %v", err)
				}
				if p.String() != tt.expr {
					t.Errorf("String() = %q, want the source", p.String())
				}
				return
			}
			if err == nil {
				t.Fatalf("Compile succeeded, want %q", tt.want)
			}
			if p != nil {
				t.Errorf("Compile returned a policy with an error")
			}
			got := compileErrors(t, err)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d errors (%v), want %d (%q)", len(got), err, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				pos, msg, hasPos := strings.Cut(w, ": ")
				text := got[i].Error()
				if hasPos && strings.Count(pos, ":") == 1 && !strings.HasPrefix(text, pos+": ") {
					t.Errorf("error %d = %q, want position %s", i, text, pos)
				}
				if !hasPos || strings.Count(pos, ":") != 1 {
					msg = w
				}
				if !strings.Contains(got[i].Msg, msg) {
					t.Errorf("error %d = %q, want it to contain %q", i, text, msg)
				}
				if got[i].Line < 1 || got[i].Col < 1 {
					t.Errorf("error %d has position %d:%d, want 1-based", i, got[i].Line, got[i].Col)
				}
			}
		})
	}
}

func TestUsesRequest(t *testing.T) {
	tests := []struct {
		expr string
		want bool
	}{
		{`'orders:read' in consumer.scopes`, false},
		{`consumer.id == 'acme' && token.tenant == 'eu'`, false},
		{`true`, false},
		{`request.path.id == consumer.id`, true},
		{`request.method == 'GET'`, true},
		{`has(request.headers.x)`, true},
		{`consumer.scopes.exists(s, s == request.canonical_path)`, true},
		{`'a' in request.query_all`, true},
	}
	for _, tt := range tests {
		p, err := Compile(tt.expr)
		if err != nil {
			t.Fatalf("Compile(%q): %v", tt.expr, err)
		}
		if got := p.UsesRequest(); got != tt.want {
			t.Errorf("UsesRequest(%q) = %v, want %v", tt.expr, got, tt.want)
		}
	}
}

func acme() *Consumer {
	return &Consumer{ID: "acme", Scopes: []string{"orders:read", "orders:write"}}
}

func input(mod ...func(*Input)) *Input {
	in := &Input{
		Method:        http.MethodGet,
		CanonicalPath: "/users/acme",
		Params:        []router.Param{{Name: "id", Value: "acme"}},
		RawQuery:      "page=2&tag=a&tag=b",
		Header: http.Header{
			"X-Tenant":            {"eu"},
			"Accept":              {"text/html", "application/json"},
			"Authorization":       {"Bearer secret-token"},
			"Proxy-Authorization": {"Basic c2VjcmV0"},
			"Cookie":              {"session=secret"},
			"X-Api-Key":           {"secret-key"},
		},
		Consumer: acme(),
	}
	for _, m := range mod {
		m(in)
	}
	return in
}

func withParams(p ...string) func(*Input) {
	return func(in *Input) {
		in.Params = nil
		for i := 0; i+1 < len(p); i += 2 {
			in.Params = append(in.Params, router.Param{Name: p[i], Value: p[i+1]})
		}
	}
}

func withQuery(q string) func(*Input) { return func(in *Input) { in.RawQuery = q } }

func withClaims(c map[string]any) func(*Input) {
	return func(in *Input) { in.Consumer.Claims = c }
}

func withHeader(name string, vals ...string) func(*Input) {
	return func(in *Input) { in.Header[name] = vals }
}

func TestEval(t *testing.T) {
	const bola = `request.path.id == consumer.id`
	tests := []struct {
		name    string
		expr    string
		in      *Input
		want    bool
		wantErr string // substring of the error; "" for none
	}{
		// Broken object-level authorization: /users/{id} only for its owner.
		{"bola: own id", bola, input(), true, ""},
		{"bola attack: other id", bola, input(withParams("id", "globex")), false, ""},
		{"bola attack: prefix of own id", bola, input(withParams("id", "acm")), false, ""},
		{"bola attack: own id with suffix", bola, input(withParams("id", "acme/../globex")), false, ""},
		{"bola attack: case variant", bola, input(withParams("id", "ACME")), false, ""},
		{"bola attack: empty id", bola, input(withParams("id", "")), false, ""},
		{"bola attack: query cannot replace the path parameter", bola, input(withParams(), withQuery("id=acme")), false, "no such key: id"},
		{"spec example", `request.path.id.startsWith(consumer.id + "-")`, input(withParams("id", "acme-42")), true, ""},
		{"spec example attack", `request.path.id.startsWith(consumer.id + "-")`, input(withParams("id", "acmex-42")), false, ""},
		{"duplicate parameter names: first wins", bola, input(withParams("id", "acme", "id", "globex")), true, ""},

		// Scopes.
		{"scope held", `'orders:write' in consumer.scopes`, input(), true, ""},
		{"scope missing", `'orders:delete' in consumer.scopes`, input(), false, ""},
		{"scope prefix is not a scope", `'orders' in consumer.scopes`, input(), false, ""},
		{"scopes sorted", `consumer.scopes == ['orders:read', 'orders:write']`, input(), true, ""},
		{"no scopes", `consumer.scopes.size() == 0`, input(func(in *Input) { in.Consumer.Scopes = nil }), true, ""},

		// Token claims.
		{"tenant claim matches header", `token.tenant == request.headers['x-tenant']`, input(withClaims(map[string]any{"tenant": "eu"})), true, ""},
		{"tenant claim differs", `token.tenant == request.headers['x-tenant']`, input(withClaims(map[string]any{"tenant": "us"})), false, ""},
		{"no token: claim missing", `token.tenant == request.headers['x-tenant']`, input(), false, "no such key: tenant"},
		{"no token: empty map", `token == {}`, input(), true, ""},
		{"no token: guarded", `!has(token.tenant) || token.tenant == 'eu'`, input(), true, ""},
		{"header missing", `token.tenant == request.headers['x-tenant']`,
			input(withClaims(map[string]any{"tenant": "eu"}), func(in *Input) { delete(in.Header, "X-Tenant") }), false, "no such key: x-tenant"},
		{"numeric claim", `token.level >= 3`, input(withClaims(map[string]any{"level": float64(3)})), true, ""},
		{"nested claim", `token.org.id == 'o1'`, input(withClaims(map[string]any{"org": map[string]any{"id": "o1"}})), true, ""},
		{"list claim", `'admin' in token.roles`, input(withClaims(map[string]any{"roles": []any{"user", "admin"}})), true, ""},
		{"claim of the wrong type", `token.level >= 3`, input(withClaims(map[string]any{"level": "3"})), false, "no such overload"},
		{"bool claim", `token.admin == true`, input(withClaims(map[string]any{"admin": true})), true, ""},
		{"bool claim of the wrong type", `token.admin == true`, input(withClaims(map[string]any{"admin": "true"})), false, ""},

		// Request fields.
		{"method", `request.method in ['GET', 'HEAD']`, input(), true, ""},
		{"canonical path", `request.canonical_path == '/users/' + consumer.id`, input(), true, ""},
		{"query first value", `request.query.tag == 'a' && request.query.page == '2'`, input(), true, ""},
		{"query all values", `request.query_all.tag == ['a', 'b']`, input(), true, ""},
		{"query decoded", `request.query.q == 'a b&c'`, input(withQuery("q=a+b%26c")), true, ""},
		{"query missing key", `request.query.nope == ''`, input(), false, "no such key: nope"},
		{"query guarded with has", `!has(request.query.nope)`, input(), true, ""},
		{"query guarded with in", `!('nope' in request.query)`, input(), true, ""},
		{"query iteration", `request.query.all(k, k in ['page', 'tag'])`, input(), true, ""},
		{"query size", `request.query.size() == 2 && request.query_all.size() == 2`, input(), true, ""},
		{"query attack: bad escape", `!has(request.query.admin)`, input(withQuery("x=%zz&admin=1")), false, "query string is malformed"},
		{"query attack: semicolon", `request.query.tenant == 'eu'`, input(withQuery("tenant=eu;tenant=us")), false, "query string is malformed"},
		{"query not read: malformed query harmless", bola, input(withQuery("%zz")), true, ""},
		{"empty query", `request.query.size() == 0`, input(withQuery("")), true, ""},
		{"path missing key", `request.path.nope == 'x'`, input(), false, "no such key: nope"},
		{"path guarded", `has(request.path.id) && !has(request.path.nope)`, input(), true, ""},
		{"path iteration", `request.path.exists(k, request.path[k] == 'acme')`, input(), true, ""},
		{"path equality", `request.path == {'id': 'acme'}`, input(), true, ""},
		{"path size", `request.path.size() == 1`, input(), true, ""},
		{"path map equals itself", `request.path == request.path`, input(), true, ""},
		{"no params", `request.path.size() == 0`, input(withParams()), true, ""},
		{"map index with non-string key", `request.path[dyn(1)] == 'x'`, input(), false, "no such overload"},

		// Headers.
		{"header lowercase", `request.headers['x-tenant'] == 'eu'`, input(), true, ""},
		{"header uppercase key is not a key", `'X-Tenant' in request.headers`, input(), false, ""},
		{"repeated header joined", `request.headers.accept == 'text/html, application/json'`, input(), true, ""},
		{"header iteration lowercase", `request.headers.exists(k, k == 'x-tenant')`, input(), true, ""},
		{"redacted: authorization", `'authorization' in request.headers`, input(), false, ""},
		{"redacted: proxy-authorization", `'proxy-authorization' in request.headers`, input(), false, ""},
		{"redacted: cookie", `'cookie' in request.headers`, input(), false, ""},
		{"redacted: x-api-key", `'x-api-key' in request.headers`, input(), false, ""},
		{"redacted: read is an error", `request.headers.authorization.startsWith('Bearer')`, input(), false, "no such key: authorization"},
		{"redacted: not iterable", `request.headers.exists(k, k in ['authorization', 'cookie', 'x-api-key', 'proxy-authorization'])`, input(), false, ""},
		{"redacted: no value leaks", `request.headers.exists(k, request.headers[k].contains('secret'))`, input(), false, ""},
		{"redacted: size", `request.headers.size() == 2`, input(), true, ""},
		{"header set by hand, not canonical", `request.headers['x-raw'] == '1, 2'`, input(withHeader("x-raw", "2"), withHeader("x-RAW", "1")), true, ""},
		{"header set by hand, canonical wins", `request.headers['x-raw'] == '1' && request.headers.exists(k, k == 'x-raw' && request.headers[k] == '1')`,
			input(withHeader("x-raw", "2"), withHeader("X-Raw", "1")), true, ""},
		{"header with invalid token name", `request.headers['x y'] == 'v'`, input(withHeader("X y", "v")), true, ""},
		{"long header name", `request.headers['` + strings.Repeat("a", 100) + `'] == 'v'`, input(withHeader(http.CanonicalHeaderKey(strings.Repeat("a", 100)), "v")), true, ""},
		{"empty header key", `'' in request.headers`, input(), false, ""},
		{"nil header", `request.headers.size() == 0 && !('x' in request.headers)`, input(func(in *Input) { in.Header = nil }), true, ""},

		// Errors deny.
		{"runtime type error", `int(request.path.id) > 0`, input(), false, "type conversion error"},
		{"division by zero", `1 / (request.path.size() - 1) == 1`, input(), false, "division by zero"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.expr)
			if err != nil {
				t.Fatalf("Compile(%q): %v", tt.expr, err)
			}
			got, err := p.Eval(context.Background(), tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Eval = %v, %v; want error containing %q", got, err, tt.wantErr)
				}
				if got {
					t.Errorf("Eval returned true with an error")
				}
			} else if err != nil {
				t.Fatalf("Eval: %v", err)
			}
			if got != tt.want {
				t.Errorf("Eval = %v, want %v", got, tt.want)
			}
			if err != nil {
				for _, secret := range []string{"secret-token", "c2VjcmV0", "session=secret", "secret-key"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error %q contains a credential", err)
					}
				}
			}
		})
	}
}

func TestEvalWithoutRequest(t *testing.T) {
	// The docs portal evaluates policies that do not read the request
	// with a consumer alone.
	p, err := Compile(`'orders:read' in consumer.scopes && consumer.id == 'acme'`)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := p.Eval(context.Background(), &Input{Consumer: acme()})
	if err != nil || !ok {
		t.Fatalf("Eval = %v, %v; want true", ok, err)
	}
}

func TestEvalNoConsumer(t *testing.T) {
	p, err := Compile(`true`)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []*Input{nil, {Method: "GET"}} {
		if ok, err := p.Eval(context.Background(), in); ok || err == nil {
			t.Errorf("Eval(%+v) = %v, %v; want an error", in, ok, err)
		}
	}
}

func TestCostLimit(t *testing.T) {
	tests := []struct {
		name string
		expr string
		in   *Input
	}{
		{"nested comprehension over a big list",
			`[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19].all(a, [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19].all(b,
			 [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19].all(c, a + b + c >= 0)))`, input()},
		{"nested comprehension over client input",
			`request.query_all.v.all(a, request.query_all.v.all(b, a + b != ''))`,
			input(withQuery(strings.Repeat("v=x&", 500)))},
		{"string blow-up from client input",
			`request.query_all.v.map(a, request.query_all.v.join(a)).size() > 0`,
			input(withQuery("v=" + strings.Repeat("x", 2000) + strings.Repeat("&v=y", 50)))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			ok, err := p.Eval(context.Background(), tt.in)
			if ok || err == nil || !strings.Contains(err.Error(), "cost limit exceeded") {
				t.Fatalf("Eval = %v, %v; want a cost limit error", ok, err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Eval took %v", d)
			}
		})
	}
	// Within the limit, the same shape succeeds.
	p, err := Compile(`[1,2,3].all(a, [1,2,3].all(b, a + b > 0))`)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := p.Eval(context.Background(), input()); !ok || err != nil {
		t.Fatalf("Eval = %v, %v; want true", ok, err)
	}
}

func TestEvalCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, expr := range []string{
		`request.query_all.v.all(a, a == 'x')`, // watched during the loop
		`true`,                                 // checked before
	} {
		p, err := Compile(expr)
		if err != nil {
			t.Fatal(err)
		}
		ok, err := p.Eval(ctx, input(withQuery(strings.Repeat("v=x&", 300))))
		if ok || !errors.Is(err, context.Canceled) {
			t.Errorf("Eval(%s) = %v, %v; want context.Canceled", expr, ok, err)
		}
	}
}

func TestEvalConcurrent(t *testing.T) {
	p, err := Compile(`request.path.id == consumer.id && request.headers['x-tenant'] == 'eu' && request.query.page == '2'`)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				id := fmt.Sprintf("c%d-%d", g, i)
				in := input(withParams("id", id))
				in.Consumer.ID = id
				if i%2 == 1 {
					in.Consumer = &Consumer{ID: "other"}
				}
				ok, err := p.Eval(context.Background(), in)
				if err != nil || ok != (i%2 == 0) {
					errs <- fmt.Errorf("goroutine %d, %d: Eval = %v, %v", g, i, ok, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCompileErrorFormat(t *testing.T) {
	e := &CompileError{Line: 2, Col: 7, Msg: "boom"}
	if got := e.Error(); got != "2:7: boom" {
		t.Errorf("Error() = %q", got)
	}
}
