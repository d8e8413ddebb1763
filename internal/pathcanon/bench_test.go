package pathcanon

import "testing"

func BenchmarkCanonical(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"short", "/v1/orders/123"},
		{"root", "/"},
		{"typical", "/api/v2/customers/c-8812/orders/2024-11-07/items"},
		{"wellknown", "/.well-known/openid-configuration"},
		{"encoded", "/v1/files/caf%C3%A9%20menu.pdf"},
		{"dotdot", "/v1/a/b/../orders/./123"},
		{"params", "/v1/orders;jsessionid=ABC123/123"},
		{"attack", "/%2e%2e/%2e%2e/admin"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _, _ = Canonical(bc.in)
			}
		})
	}
}
