package authz

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/router"
)

// FuzzCompile compiles arbitrary text: Compile must not panic, must answer
// quickly, and a compiled policy must evaluate without panicking within the
// cost limit.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		`request.path.id == consumer.id`,
		`request.path.id.startsWith(consumer.id + "-")`,
		`'orders:write' in consumer.scopes`,
		`token.tenant == request.headers['x-tenant']`,
		"request.method == 'GET' &&\n  request.path.id ==",
		`[1,2,3].all(a, [1,2,3].all(b, a + b > 0))`,
		`request.query_all.v.exists(x, x.matches('^a+$'))`,
		`'%s'.format([request.query])  == ''`,
		"'\x00' == '\xff'",
		`((((((((((true))))))))))`,
		`request.headers.exists(k, k == 'authorization')`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		start := time.Now()
		p, err := Compile(expr)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Compile took %v", d)
		}
		if err != nil {
			if p != nil {
				t.Fatal("policy and error")
			}
			for _, e := range compileErrors(t, err) {
				if e.Line < 1 || e.Col < 1 {
					t.Fatalf("position %d:%d", e.Line, e.Col)
				}
			}
			return
		}
		in := &Input{
			Method: "GET", CanonicalPath: "/a/b",
			Params:   []router.Param{{Name: "id", Value: "x"}},
			RawQuery: "v=a&v=b&w=" + strings.Repeat("z", 100),
			Header:   http.Header{"X-Tenant": {"eu"}, "Authorization": {"Bearer secret"}},
			Consumer: &Consumer{ID: "x", Scopes: []string{"a"}, Claims: map[string]any{"n": 1.0, "l": []any{"a"}}},
		}
		start = time.Now()
		_, err = p.Eval(context.Background(), in)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Eval took %v", d)
		}
		if err != nil && strings.Contains(err.Error(), "Bearer secret") {
			t.Errorf("error shows a hidden header: %v", err)
		}
	})
}

// FuzzEval evaluates fixed policies over arbitrary request parts: the query
// string and header parsers must not panic, and the hidden headers must stay
// hidden.
func FuzzEval(f *testing.F) {
	f.Add("page=1&tag=a&tag=b", "X-Tenant", "eu", "acme")
	f.Add("%zz;a=b", "x tenant", "", "")
	f.Add("a=%00&=&&=x", "authorization", "Bearer x", "acme/../b")
	f.Add(strings.Repeat("a=1&", 100), "Cookie", "s=1", "\xff")
	var policies []*Policy
	for _, s := range []string{
		`request.path.id == consumer.id`,
		`has(request.query.page) && request.query_all.tag.size() > 0`,
		`request.query.exists(k, request.query[k] == k) || request.query_all.size() > 3`,
		`request.headers.exists(k, k in ['authorization', 'cookie', 'x-api-key', 'proxy-authorization'])`,
		`request.headers.exists(k, request.headers[k] == 'SECRET')`,
		`request.headers == {'x-tenant': 'eu'}`,
		`token.tenant == request.headers['x-tenant']`,
	} {
		p, err := Compile(s)
		if err != nil {
			f.Fatal(err)
		}
		policies = append(policies, p)
	}
	f.Fuzz(func(t *testing.T, rawQuery, headerName, headerValue, id string) {
		h := http.Header{headerName: {headerValue}, "Authorization": {"SECRET"}, "Cookie": {"SECRET"},
			"X-Api-Key": {"SECRET"}, "Proxy-Authorization": {"SECRET"}}
		in := &Input{
			Method: "GET", CanonicalPath: "/users/" + id,
			Params: []router.Param{{Name: "id", Value: id}}, RawQuery: rawQuery, Header: h,
			Consumer: &Consumer{ID: "acme", Claims: map[string]any{"tenant": headerValue}},
		}
		for i, p := range policies {
			ok, err := p.Eval(context.Background(), in)
			if err != nil && ok {
				t.Fatalf("policy %d: true with an error", i)
			}
			switch {
			case i == 3 && ok:
				t.Fatalf("a hidden header name is visible (extra header %q)", headerName)
			case i == 4 && ok && (headerValue != "SECRET" || hiddenHeader(strings.ToLower(headerName))):
				t.Fatalf("a hidden header value is visible (extra header %q)", headerName)
			}
		}
		if ok, err := policies[0].Eval(context.Background(), in); (err == nil) && ok != (id == "acme") {
			t.Fatalf("bola policy = %v for id %q", ok, id)
		}
	})
}
