package authz

import (
	"context"
	"net/http"
	"testing"

	"github.com/breakwater/breakwater/internal/router"
)

func BenchmarkEval(b *testing.B) {
	in := &Input{
		Method:        http.MethodGet,
		CanonicalPath: "/v1/users/acme/orders/o-42",
		Params:        []router.Param{{Name: "id", Value: "acme"}, {Name: "order", Value: "o-42"}},
		RawQuery:      "page=2&limit=50",
		Header: http.Header{
			"Accept":     {"application/json"},
			"User-Agent": {"bench/1.0"},
			"X-Tenant":   {"eu"},
			"X-Api-Key":  {"secret"},
		},
		Consumer: &Consumer{
			ID: "acme", Scopes: []string{"orders:read", "orders:write"},
			Claims: map[string]any{"tenant": "eu", "sub": "acme"},
		},
	}
	for _, bb := range []struct{ name, expr string }{
		{"bola", `request.path.id == consumer.id`},
		{"scope_and_method", `request.method == 'GET' || 'orders:write' in consumer.scopes`},
		{"token_header_query", `token.tenant == request.headers['x-tenant'] && int(request.query.limit) <= 100`},
		// A macro: evaluated under the request's context.
		{"macro_scopes", `consumer.scopes.exists(s, s.startsWith('orders:'))`},
	} {
		p, err := Compile(bb.expr)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bb.name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background()) // like a request's
			defer cancel()
			b.ReportAllocs()
			for b.Loop() {
				ok, err := p.Eval(ctx, in)
				if !ok || err != nil {
					b.Fatalf("Eval = %v, %v", ok, err)
				}
			}
		})
	}
}

func BenchmarkCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(`request.path.id.startsWith(consumer.id + "-") && 'orders:read' in consumer.scopes`); err != nil {
			b.Fatal(err)
		}
	}
}
