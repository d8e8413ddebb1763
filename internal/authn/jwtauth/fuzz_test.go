package jwtauth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/breakwater/breakwater/internal/authn"
)

// FuzzVerify feeds arbitrary token strings to Verify: it must never panic,
// must fail only with an *authn.Failure, and may succeed only for a
// consumer of the config. Committed seeds are in testdata/fuzz/FuzzVerify.
func FuzzVerify(f *testing.F) {
	k := keys(f)
	c := newClock()
	base := claimsAt(c)
	f.Add(sign(f, jwt.SigningMethodRS256, k.rsa, map[string]any{"kid": "rsa"}, base))
	f.Add(sign(f, jwt.SigningMethodPS256, k.rsa, map[string]any{"kid": "rsa", "typ": "at+jwt"}, base))
	f.Add(sign(f, jwt.SigningMethodES256, k.ec256, map[string]any{"kid": "ec"}, with(base, "scp", []string{"orders:read"})))
	f.Add(sign(f, jwt.SigningMethodEdDSA, k.ed, nil, base))
	f.Add(sign(f, jwt.SigningMethodHS256, []byte("secret"), map[string]any{"kid": "rsa"}, base))
	f.Add(raw(`{"alg":"none"}`, `{"sub":"svc-acme"}`, []byte{0}))
	f.Add(raw(`{"alg":"ES256","kid":"ec"}`, `{"exp":1e400}`, make([]byte, 64)))
	f.Add("e30.e30.e30")
	ks := k.staticKeys()
	a := newAuth(f, ks, c, nil)
	f.Fuzz(func(t *testing.T, token string) {
		for range 2 { // the second call may be served by the cache
			got, err := a.Verify(context.Background(), token)
			if err != nil {
				var fl *authn.Failure
				if !errors.As(err, &fl) || got != nil {
					t.Fatalf("not a failure: %v %v", got, err)
				}
				return
			}
			if got == nil || (got.ID != "acme" && got.ID != "beta") {
				t.Fatalf("bad consumer %+v", got)
			}
			if exp, _ := got.Claims["exp"].(float64); time.Unix(int64(exp), 0).Add(30 * time.Second).Before(c.Now()) {
				t.Fatalf("expired token accepted: %v", got.Claims)
			}
		}
	})
}

// FuzzParseJWKS feeds arbitrary documents to the JWKS parser: it must never
// panic, and every key it keeps must be usable for some allowed alg.
func FuzzParseJWKS(f *testing.F) {
	k := keys(f)
	f.Add(jwksDoc(f, jwkOf(f, &k.rsa.PublicKey, "r", "RS256"), jwkOf(f, &k.ec256.PublicKey, "e", ""), jwkOf(f, k.ed.Public(), "d", "EdDSA")))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AQ","y":"AQ"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		set, _, err := parseJWKS(doc)
		if err != nil {
			return
		}
		for _, key := range set.all {
			ok := false
			for _, alg := range []string{"RS256", "PS512", "ES256", "ES384", "ES512", "EdDSA"} {
				ok = ok || usable(key, alg)
			}
			if !ok {
				t.Fatalf("kept an unusable key %+v", key)
			}
		}
	})
}
