package jwtauth

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkVerifyCold is a full verification (no cache) per call.
func BenchmarkVerifyCold(b *testing.B) {
	k := keys(b)
	c := newClock()
	for _, tc := range []struct {
		name  string
		token string
	}{
		{"RS256", sign(b, jwt.SigningMethodRS256, k.rsa, map[string]any{"kid": "rsa"}, claimsAt(c))},
		{"ES256", sign(b, jwt.SigningMethodES256, k.ec256, map[string]any{"kid": "ec"}, claimsAt(c))},
		{"EdDSA", sign(b, jwt.SigningMethodEdDSA, k.ed, map[string]any{"kid": "ed"}, claimsAt(c))},
	} {
		b.Run(tc.name, func(b *testing.B) {
			a := newAuth(b, k.staticKeys(), c, func(o *Options) { o.CacheSize = -1 })
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Verify(ctx, tc.token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyCached is Authenticate with a token already verified
// (target: ≤ 1 µs, ≤ 2 allocs).
func BenchmarkVerifyCached(b *testing.B) {
	k := keys(b)
	c := newClock()
	tok := sign(b, jwt.SigningMethodES256, k.ec256, map[string]any{"kid": "ec"}, claimsAt(c))
	a := newAuth(b, k.staticKeys(), c, nil)
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	if _, err := a.Authenticate(r); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Authenticate(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := a.Authenticate(r); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
