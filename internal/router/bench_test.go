package router

import (
	"fmt"
	"testing"
)

// benchSpecs returns 50 routes of the kind a gateway config holds.
func benchSpecs() []Spec {
	var specs []Spec
	for _, res := range []string{"orders", "customers", "invoices", "products", "shipments", "payments", "refunds", "users"} {
		specs = append(specs,
			Spec{Host: "api.example.com", Path: "/v1/" + res, Methods: []string{"GET", "POST"}},
			Spec{Host: "api.example.com", Path: "/v1/" + res + "/{id}", Methods: []string{"GET", "PUT", "DELETE"}},
			Spec{Host: "api.example.com", Path: "/v1/" + res + "/{id}/events", Methods: []string{"GET"}},
			Spec{Path: "/v2/" + res + "/{id}", Methods: []string{"GET"}},
			Spec{Host: "*.tenants.example.com", Path: "/v1/" + res + "/{id}/**", Methods: []string{"GET"}},
		)
	}
	specs = append(specs,
		Spec{Path: "/healthz", Methods: []string{"GET"}},
		Spec{Path: "/.well-known/jwks.json", Methods: []string{"GET"}},
		Spec{Path: "/oauth2/token", Methods: []string{"POST"}},
		Spec{Path: "/static/**", Methods: []string{"GET"}},
		Spec{Host: "admin.example.com", Path: "/**"},
		Spec{Path: "/v1/orders/{id}/items/{item}", Methods: []string{"GET"}},
		Spec{Path: "/v1/search", Methods: []string{"GET"}},
		Spec{Path: "/v1/**", Methods: []string{"OPTIONS"}},
		Spec{Host: "api.example.com", Path: "/v1/orders/{id}/items/{item}", Methods: []string{"GET", "PATCH"}},
		Spec{Path: "/"},
	)
	if len(specs) != 50 {
		panic(fmt.Sprint("bench routes: ", len(specs)))
	}
	return specs
}

type benchReq struct{ name, host, path, method string }

func benchRequests() []benchReq {
	return []benchReq{
		{"exact-host-param", "api.example.com", "/v1/orders/123", "GET"},
		{"two-params", "API.example.com:8443", "/v1/orders/123/items/9", "PATCH"},
		{"wildcard-host", "acme.tenants.example.com", "/v1/users/42/profile/avatar", "GET"},
		{"hostless", "gw.internal", "/v2/payments/p-77", "GET"},
		{"fallthrough", "api.example.com", "/static/css/site.css", "GET"},
		{"405", "api.example.com", "/v1/invoices/12", "PATCH"},
		{"404", "api.example.com", "/nope/nothing/here", "GET"},
	}
}

func BenchmarkMatch(b *testing.B) {
	rt, err := New(benchSpecs())
	if err != nil {
		b.Fatal(err)
	}
	params := make([]Param, 0, 4)
	for _, c := range benchRequests() {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rt.Match(c.host, c.path, c.method, params[:0])
			}
		})
	}
}
