package jwtauth

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/breakwater/breakwater/internal/authn"
)

func TestVerify(t *testing.T) {
	f := keys(t)
	c := newClock()
	base := claimsAt(c)
	rs := func(cl jwt.MapClaims) string {
		return sign(t, jwt.SigningMethodRS256, f.rsa, map[string]any{"kid": "rsa"}, cl)
	}
	rsHdr := func(h map[string]any) string { return sign(t, jwt.SigningMethodRS256, f.rsa, h, base) }
	pubDER, _ := x509.MarshalPKIXPublicKey(&f.rsa.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	claimsJSON, _ := json.Marshal(base)
	jwkHdr, _ := json.Marshal(jwkOf(t, &f.rsa.PublicKey, "attacker", ""))

	const noLookup = -1
	for _, tc := range []struct {
		name     string
		token    string
		consumer string // success: the consumer id
		kind     authn.FailureKind
		lookups  int64 // noLookup: the key set must not be consulted
	}{
		{name: "RS256", token: rs(base), consumer: "acme"},
		{name: "PS256", token: sign(t, jwt.SigningMethodPS256, f.rsa, map[string]any{"kid": "rsa"}, base), consumer: "acme"},
		{name: "ES256", token: sign(t, jwt.SigningMethodES256, f.ec256, map[string]any{"kid": "ec"}, base), consumer: "acme"},
		{name: "EdDSA", token: sign(t, jwt.SigningMethodEdDSA, f.ed, map[string]any{"kid": "ed"}, base), consumer: "acme"},
		{name: "JWK alg matches", token: sign(t, jwt.SigningMethodRS256, f.rsa2, map[string]any{"kid": "rsa-rs256"}, base), consumer: "acme"},
		{name: "typ at+jwt", token: rsHdr(map[string]any{"kid": "rsa", "typ": "at+jwt"}), consumer: "acme"},
		{name: "typ application/JWT", token: rsHdr(map[string]any{"kid": "rsa", "typ": "application/JWT"}), consumer: "acme"},
		{name: "no typ", token: rsHdr(map[string]any{"kid": "rsa", "typ": nil}), consumer: "acme"},
		{name: "aud array", token: rs(with(base, "aud", []string{"x", "other-api"})), consumer: "acme"},
		{name: "exp within leeway", token: rs(with(base, "exp", c.At(-20*time.Second))), consumer: "acme"},
		{name: "nbf within leeway", token: rs(with(base, "nbf", c.At(20*time.Second))), consumer: "acme"},
		{name: "other consumer", token: rs(with(base, "sub", "svc-beta")), consumer: "beta"},

		// Algorithm attacks: refused before any key lookup.
		{name: "alg none", token: raw(`{"alg":"none","kid":"rsa"}`, string(claimsJSON), []byte("x")), kind: authn.Invalid, lookups: noLookup},
		{name: "alg None", token: raw(`{"alg":"None","kid":"rsa"}`, string(claimsJSON), []byte("x")), kind: authn.Invalid, lookups: noLookup},
		{name: "alg NONE", token: raw(`{"alg":"NONE","kid":"rsa"}`, string(claimsJSON), []byte("x")), kind: authn.Invalid, lookups: noLookup},
		{name: "alg none unsigned", token: raw(`{"alg":"none"}`, string(claimsJSON), nil), kind: authn.Malformed, lookups: noLookup},
		{name: "HS256 with the RSA public key as secret", token: sign(t, jwt.SigningMethodHS256, pubPEM, map[string]any{"kid": "rsa"}, base), kind: authn.Invalid, lookups: noLookup},
		{name: "HS256 with the RSA public key DER as secret", token: sign(t, jwt.SigningMethodHS256, pubDER, map[string]any{"kid": "rsa"}, base), kind: authn.Invalid, lookups: noLookup},
		{name: "alg not in allow-list", token: sign(t, jwt.SigningMethodRS384, f.rsa, map[string]any{"kid": "rsa"}, base), kind: authn.Invalid, lookups: noLookup},
		{name: "alg missing", token: raw(`{"kid":"rsa"}`, string(claimsJSON), []byte("x")), kind: authn.Invalid, lookups: noLookup},
		{name: "alg not a string", token: raw(`{"alg":7,"kid":"rsa"}`, string(claimsJSON), []byte("x")), kind: authn.Invalid, lookups: noLookup},

		// The token must not choose its key.
		{name: "embedded jwk", token: rsHdr(map[string]any{"kid": "rsa", "jwk": json.RawMessage(jwkHdr)}), kind: authn.Invalid, lookups: noLookup},
		{name: "jku", token: rsHdr(map[string]any{"kid": "rsa", "jku": "https://evil.example/jwks.json"}), kind: authn.Invalid, lookups: noLookup},
		{name: "x5u", token: rsHdr(map[string]any{"kid": "rsa", "x5u": "https://evil.example/cert.pem"}), kind: authn.Invalid, lookups: noLookup},
		{name: "x5c", token: rsHdr(map[string]any{"kid": "rsa", "x5c": []string{"MIIB"}}), kind: authn.Invalid, lookups: noLookup},
		{name: "crit", token: rsHdr(map[string]any{"kid": "rsa", "crit": []string{"b64"}, "b64": false}), kind: authn.Invalid, lookups: noLookup},
		{name: "kid path traversal", token: rsHdr(map[string]any{"kid": "../../etc/passwd"}), kind: authn.Invalid},
		{name: "kid URL", token: rsHdr(map[string]any{"kid": "https://evil.example/key"}), kind: authn.Invalid},
		{name: "kid not a string", token: rsHdr(map[string]any{"kid": 1}), kind: authn.Malformed, lookups: noLookup},
		{name: "typ xml", token: rsHdr(map[string]any{"kid": "rsa", "typ": "xml"}), kind: authn.Invalid, lookups: noLookup},
		{name: "typ not a string", token: rsHdr(map[string]any{"kid": "rsa", "typ": 1}), kind: authn.Invalid, lookups: noLookup},

		// Key bound to alg.
		{name: "RS256 with an EC key", token: sign(t, jwt.SigningMethodRS256, f.rsa, map[string]any{"kid": "ec"}, base), kind: authn.Invalid},
		{name: "ES256 whose kid names an RSA key", token: sign(t, jwt.SigningMethodES256, f.ec256, map[string]any{"kid": "rsa"}, base), kind: authn.Invalid},
		{name: "ES256 with a P-384 key", token: sign(t, jwt.SigningMethodES256, f.ec256, map[string]any{"kid": "ec384"}, base), kind: authn.Invalid},
		{name: "EdDSA with an RSA key", token: sign(t, jwt.SigningMethodEdDSA, f.ed, map[string]any{"kid": "rsa"}, base), kind: authn.Invalid},
		{name: "PS256 with a key for RS256 only", token: sign(t, jwt.SigningMethodPS256, f.rsa2, map[string]any{"kid": "rsa-rs256"}, base), kind: authn.Invalid},

		// Signatures.
		{name: "ECDSA signature of zeros", token: raw(`{"alg":"ES256","kid":"ec"}`, string(claimsJSON), make([]byte, 64)), kind: authn.Invalid},
		{name: "stripped signature", token: strings.Join(strings.Split(rs(base), ".")[:2], ".") + ".", kind: authn.Malformed, lookups: noLookup},
		{name: "two segments", token: strings.Join(strings.Split(rs(base), ".")[:2], "."), kind: authn.Malformed, lookups: noLookup},
		{name: "signed by another key", token: sign(t, jwt.SigningMethodRS256, f.rsa2, map[string]any{"kid": "rsa"}, base), kind: authn.Invalid},
		{name: "tampered claims", token: tamper(rs(base)), kind: authn.Invalid},
		{name: "unknown kid", token: rsHdr(map[string]any{"kid": "nope"}), kind: authn.Invalid},
		{name: "no kid, several usable keys", token: rsHdr(map[string]any{}), kind: authn.Invalid},
		{name: "no kid, one usable key", token: sign(t, jwt.SigningMethodEdDSA, f.ed, nil, base), consumer: "acme"},

		// Claims.
		{name: "expired", token: rs(with(base, "exp", c.At(-time.Minute))), kind: authn.Expired},
		{name: "missing exp", token: rs(with(base, "exp", nil)), kind: authn.Invalid},
		{name: "exp a string", token: rs(with(base, "exp", "tomorrow")), kind: authn.Malformed},
		{name: "future nbf", token: rs(with(base, "nbf", c.At(time.Minute))), kind: authn.Expired},
		{name: "future iat", token: rs(with(base, "iat", c.At(time.Minute))), kind: authn.Expired},
		{name: "wrong iss", token: rs(with(base, "iss", "https://idp.example.com/")), kind: authn.Invalid},
		{name: "missing iss", token: rs(with(base, "iss", nil)), kind: authn.Invalid},
		{name: "wrong aud", token: rs(with(base, "aud", "billing-api")), kind: authn.Invalid},
		{name: "wrong aud array", token: rs(with(base, "aud", []string{"a", "b"})), kind: authn.Invalid},
		{name: "missing aud", token: rs(with(base, "aud", nil)), kind: authn.Invalid},
		{name: "expired and wrong aud", token: rs(with(base, "aud", "x", "exp", c.At(-time.Hour))), kind: authn.Invalid},
		{name: "forged and expired", token: sign(t, jwt.SigningMethodRS256, f.rsa2, map[string]any{"kid": "rsa"}, with(base, "exp", c.At(-time.Hour))), kind: authn.Invalid},
		{name: "unknown subject", token: rs(with(base, "sub", "svc-gamma")), kind: authn.Unknown},
		{name: "missing subject", token: rs(with(base, "sub", nil)), kind: authn.Invalid},
		{name: "subject not a string", token: rs(with(base, "sub", 42)), kind: authn.Invalid},
		{name: "scope not a string", token: rs(with(base, "scope", []string{"orders:read"})), kind: authn.Invalid},

		// Syntax.
		{name: "oversized", token: rs(with(base, "pad", strings.Repeat("x", DefaultMaxTokenBytes))), kind: authn.Malformed, lookups: noLookup},
		{name: "garbage", token: "not a token", kind: authn.Malformed, lookups: noLookup},
		{name: "bad base64", token: "e30.e30.!!", kind: authn.Malformed, lookups: noLookup},
		{name: "header not JSON", token: raw(`{`, `{}`, []byte("x")), kind: authn.Malformed, lookups: noLookup},
		{name: "claims not JSON", token: raw(`{"alg":"RS256","kid":"rsa"}`, `[`, []byte("x")), kind: authn.Malformed, lookups: noLookup},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks := f.staticKeys()
			a := newAuth(t, ks, c, func(o *Options) { o.CacheSize = -1 })
			got, err := a.Verify(context.Background(), tc.token)
			if tc.consumer != "" {
				if err != nil || got == nil || got.ID != tc.consumer {
					t.Fatalf("want consumer %s, got %v, %v", tc.consumer, got, err)
				}
				return
			}
			var fl *authn.Failure
			if !errors.As(err, &fl) {
				t.Fatalf("want a failure, got %v, %v", got, err)
			}
			t.Log(fl.Reason)
			if fl.Kind != tc.kind {
				t.Fatalf("kind %d (%s), want %d", fl.Kind, fl.Reason, tc.kind)
			}
			if strings.Contains(fl.Reason, tc.token) {
				t.Fatal("the token appears in the reason")
			}
			if tc.lookups == noLookup && ks.lookups.Load() != 0 {
				t.Fatalf("key set consulted %d times (%s)", ks.lookups.Load(), fl.Reason)
			}
		})
	}
}

// tamper swaps the claims of a signed token for others (sub: svc-beta).
func tamper(tok string) string {
	p := strings.Split(tok, ".")
	b, _ := base64.RawURLEncoding.DecodeString(p[1])
	b = []byte(strings.Replace(string(b), "svc-acme", "svc-beta", 1))
	p[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(p, ".")
}

func TestScopesAreIntersected(t *testing.T) {
	f := keys(t)
	c := newClock()
	shared := consumers()
	for _, tc := range []struct {
		name  string
		claim jwt.MapClaims
		want  []string
	}{
		{"scope string", with(claimsAt(c), "scope", "admin orders:write orders:read orders:read"), []string{"orders:read", "orders:write"}},
		{"scope grants no more than config", with(claimsAt(c), "scope", "admin orders:read"), []string{"orders:read"}},
		{"scp array", with(claimsAt(c), "scope", nil, "scp", []string{"orders:write", "root"}), []string{"orders:write"}},
		{"scp string", with(claimsAt(c), "scope", nil, "scp", "orders:read"), []string{"orders:read"}},
		{"no scope claim", with(claimsAt(c), "scope", nil), nil},
		{"empty scope", with(claimsAt(c), "scope", ""), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAuth(t, f.staticKeys(), c, func(o *Options) { o.Consumers = shared })
			tok := sign(t, jwt.SigningMethodES256, f.ec256, map[string]any{"kid": "ec"}, tc.claim)
			got, err := a.Verify(context.Background(), tok)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Scopes, tc.want) || got.ScopeText != strings.Join(tc.want, " ") {
				t.Fatalf("scopes %v %q, want %v", got.Scopes, got.ScopeText, tc.want)
			}
			if got == shared["svc-acme"] || got.Claims["sub"] != "svc-acme" {
				t.Fatal("want a new consumer with the verified claims")
			}
			if s := shared["svc-acme"]; s.ScopeText != "orders:read orders:write" || len(s.Scopes) != 2 || s.Claims != nil {
				t.Fatalf("configured consumer modified: %+v", s)
			}
		})
	}
	bad := with(claimsAt(c), "scope", nil, "scp", []any{"orders:read", 1})
	a := newAuth(t, f.staticKeys(), c, nil)
	if _, err := a.Verify(context.Background(), sign(t, jwt.SigningMethodES256, f.ec256, map[string]any{"kid": "ec"}, bad)); err == nil {
		t.Fatal("scp with a non-string accepted")
	}
}

func TestConsumerClaim(t *testing.T) {
	f := keys(t)
	c := newClock()
	a := newAuth(t, f.staticKeys(), c, func(o *Options) { o.ConsumerClaim = "client_id" })
	tok := sign(t, jwt.SigningMethodEdDSA, f.ed, map[string]any{"kid": "ed"}, with(claimsAt(c), "sub", "svc-nobody", "client_id", "svc-beta"))
	got, err := a.Verify(context.Background(), tok)
	if err != nil || got.ID != "beta" {
		t.Fatalf("got %v %v", got, err)
	}
}

func TestCache(t *testing.T) {
	f := keys(t)
	c := newClock()
	ks := f.staticKeys()
	var revokedCalls int
	var revoked bool
	var revErr error
	a := newAuth(t, ks, c, func(o *Options) {
		o.Revoked = func(_ context.Context, jti string) (bool, error) {
			revokedCalls++
			if jti != "j-1" {
				t.Errorf("jti %q", jti)
			}
			return revoked, revErr
		}
	})
	tok := sign(t, jwt.SigningMethodES256, f.ec256, map[string]any{"kid": "ec"}, with(claimsAt(c), "exp", c.At(time.Minute)))
	first, err := a.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	second, err := a.Verify(context.Background(), tok)
	if err != nil || second != first {
		t.Fatalf("second use not served from cache: %v %v", second, err)
	}
	if ks.lookups.Load() != 1 || revokedCalls != 2 {
		t.Fatalf("lookups %d, revocation checks %d", ks.lookups.Load(), revokedCalls)
	}

	revoked = true
	if _, err := a.Verify(context.Background(), tok); kindOf(err) != authn.Revoked {
		t.Fatalf("revoked token accepted from cache: %v", err)
	}
	revoked, revErr = false, errors.New("store down")
	if _, err := a.Verify(context.Background(), tok); kindOf(err) != authn.Unavailable {
		t.Fatalf("revocation error: %v", err)
	}
	revErr = nil

	// Never used at or past exp, even inside the leeway.
	c.Advance(time.Minute)
	if _, err := a.Verify(context.Background(), tok); err != nil {
		t.Fatalf("inside leeway: %v", err)
	}
	if ks.lookups.Load() != 2 {
		t.Fatalf("cache entry used at exp (lookups %d)", ks.lookups.Load())
	}
	c.Advance(time.Minute)
	if _, err := a.Verify(context.Background(), tok); kindOf(err) != authn.Expired {
		t.Fatalf("expired token: %v", err)
	}

	noJTI := sign(t, jwt.SigningMethodES256, f.ec256, map[string]any{"kid": "ec"}, with(claimsAt(c), "jti", nil))
	if _, err := a.Verify(context.Background(), noJTI); kindOf(err) != authn.Invalid {
		t.Fatalf("token without jti: %v", err)
	}
}

func TestCacheAgeIsBounded(t *testing.T) {
	f := keys(t)
	c := newClock()
	ks := f.staticKeys()
	a := newAuth(t, ks, c, nil)
	tok := sign(t, jwt.SigningMethodEdDSA, f.ed, map[string]any{"kid": "ed"}, with(claimsAt(c), "exp", c.At(time.Hour)))
	for range 2 {
		if _, err := a.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	c.Advance(6 * time.Minute)
	if _, err := a.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	if ks.lookups.Load() != 2 {
		t.Fatalf("lookups %d: want a new verification after the cache age", ks.lookups.Load())
	}
}

func TestCacheIsBounded(t *testing.T) {
	f := keys(t)
	c := newClock()
	a := newAuth(t, f.staticKeys(), c, func(o *Options) { o.CacheSize = 4 })
	for i := range 20 {
		tok := sign(t, jwt.SigningMethodEdDSA, f.ed, map[string]any{"kid": "ed"}, with(claimsAt(c), "exp", c.At(time.Duration(i+1)*time.Minute)))
		if _, err := a.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := a.cache.len(); n > 4 || n == 0 {
		t.Fatalf("cache holds %d entries", n)
	}
	big := newTokenCache(DefaultCacheSize)
	for i := range 3 * DefaultCacheSize {
		var h [32]byte
		h[0], h[1], h[2] = byte(i), byte(i>>8), byte(i>>16)
		big.put(&h, entry{until: int64(i%7 + 1)}, 3)
	}
	if n := big.len(); n > DefaultCacheSize {
		t.Fatalf("cache holds %d entries", n)
	}
}

func kindOf(err error) authn.FailureKind {
	var f *authn.Failure
	if errors.As(err, &f) {
		return f.Kind
	}
	return 255
}

func TestKeySetErrors(t *testing.T) {
	f := keys(t)
	c := newClock()
	tok := sign(t, jwt.SigningMethodES256, f.ec256, map[string]any{"kid": "ec"}, claimsAt(c))
	for _, e := range []error{ErrKeysUnavailable, context.DeadlineExceeded} {
		ks := f.staticKeys()
		ks.err = e
		if _, err := newAuth(t, ks, c, nil).Verify(context.Background(), tok); kindOf(err) != authn.Unavailable {
			t.Fatalf("%v: %v", e, err)
		}
	}
	// A KeySet that cannot list keys: tokens without kid are refused.
	a := newAuth(t, struct{ KeySet }{f.staticKeys()}, c, nil)
	noKid := sign(t, jwt.SigningMethodEdDSA, f.ed, nil, claimsAt(c))
	if _, err := a.Verify(context.Background(), noKid); kindOf(err) != authn.Invalid {
		t.Fatalf("no kid: %v", err)
	}
}

func TestAuthenticate(t *testing.T) {
	f := keys(t)
	c := newClock()
	a := newAuth(t, f.staticKeys(), c, nil)
	tok := sign(t, jwt.SigningMethodEdDSA, f.ed, map[string]any{"kid": "ed"}, claimsAt(c))
	for _, tc := range []struct {
		name     string
		headers  []string
		consumer string
		noCred   bool
		kind     authn.FailureKind
	}{
		{name: "bearer", headers: []string{"Bearer " + tok}, consumer: "acme"},
		{name: "scheme any case", headers: []string{"bEARER " + tok}, consumer: "acme"},
		{name: "extra spaces", headers: []string{"Bearer   " + tok + " "}, consumer: "acme"},
		{name: "no header", noCred: true},
		{name: "basic", headers: []string{"Basic dXNlcjpwYXNz"}, noCred: true},
		{name: "bearer prefix of another scheme", headers: []string{"Bearerx " + tok}, noCred: true},
		{name: "empty header", headers: []string{""}, noCred: true},
		{name: "repeated", headers: []string{"Bearer " + tok, "Bearer " + tok}, kind: authn.Malformed},
		{name: "repeated other scheme", headers: []string{"Basic x", "Bearer " + tok}, kind: authn.Malformed},
		{name: "empty token", headers: []string{"Bearer"}, kind: authn.Malformed},
		{name: "blank token", headers: []string{"Bearer    "}, kind: authn.Malformed},
		{name: "two tokens", headers: []string{"Bearer " + tok + " " + tok}, kind: authn.Malformed},
		{name: "oversized", headers: []string{"Bearer " + strings.Repeat("a", DefaultMaxTokenBytes+1)}, kind: authn.Malformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/x", nil)
			for _, h := range tc.headers {
				r.Header.Add("Authorization", h)
			}
			got, err := a.Authenticate(r)
			switch {
			case tc.consumer != "":
				if err != nil || got.ID != tc.consumer {
					t.Fatalf("got %v %v", got, err)
				}
			case tc.noCred:
				if !errors.Is(err, authn.ErrNoCredential) {
					t.Fatalf("want ErrNoCredential, got %v", err)
				}
			default:
				if kindOf(err) != tc.kind {
					t.Fatalf("want kind %d, got %v", tc.kind, err)
				}
			}
		})
	}
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	r.Header.Set("X-Other", "kept")
	a.Strip(r)
	if r.Header.Get("Authorization") != "" || r.Header.Get("X-Other") != "kept" {
		t.Fatalf("after Strip: %v", r.Header)
	}
	if a.Challenge() != `Bearer realm="breakwater"` {
		t.Fatal(a.Challenge())
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	ks := &staticKeys{}
	good := Options{Issuer: "i", Audience: []string{"a"}, Algorithms: []string{"ES256"}, Keys: ks}
	if _, err := New(good); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Options){
		"HS256":          func(o *Options) { o.Algorithms = []string{"HS256"} },
		"none":           func(o *Options) { o.Algorithms = []string{"none"} },
		"lower-case":     func(o *Options) { o.Algorithms = []string{"es256"} },
		"no algorithms":  func(o *Options) { o.Algorithms = nil },
		"no issuer":      func(o *Options) { o.Issuer = "" },
		"no audience":    func(o *Options) { o.Audience = nil },
		"empty audience": func(o *Options) { o.Audience = []string{""} },
		"no keys":        func(o *Options) { o.Keys = nil },
		"negative":       func(o *Options) { o.Leeway = -time.Second },
	} {
		o := good
		mod(&o)
		if _, err := New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
