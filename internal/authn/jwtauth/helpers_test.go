package jwtauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/breakwater/breakwater/internal/authn"
)

// fixture holds test keys, generated once per test binary (RSA is slow).
type fixture struct {
	rsa, rsa2 *rsa.PrivateKey
	rsaSmall  *rsa.PrivateKey // 1024 bits: must be refused
	ec256     *ecdsa.PrivateKey
	ec384     *ecdsa.PrivateKey
	ed        ed25519.PrivateKey
}

var fixtureOnce = sync.OnceValue(func() *fixture {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	f := &fixture{}
	var err error
	f.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	f.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	f.rsaSmall, err = rsa.GenerateKey(rand.Reader, 1024) //nolint:gosec // deliberately weak
	must(err)
	f.ec256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	f.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(err)
	_, f.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	return f
})

func keys(t testing.TB) *fixture {
	t.Helper()
	return fixtureOnce()
}

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time             { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration)    { c.ns.Add(int64(d)) }
func (c *clock) At(d time.Duration) float64 { return float64(c.Now().Add(d).Unix()) }

// staticKeys is an in-memory KeySet and KeyLister that counts lookups.
type staticKeys struct {
	keys    []Key
	lookups atomic.Int64
	err     error
}

func (s *staticKeys) Key(_ context.Context, kid string) (Key, error) {
	s.lookups.Add(1)
	if s.err != nil {
		return Key{}, s.err
	}
	for _, k := range s.keys {
		if k.ID == kid {
			return k, nil
		}
	}
	return Key{}, ErrUnknownKey
}

func (s *staticKeys) Keys(context.Context) ([]Key, error) {
	s.lookups.Add(1)
	if s.err != nil {
		return nil, s.err
	}
	return s.keys, nil
}

func (f *fixture) staticKeys() *staticKeys {
	return &staticKeys{keys: []Key{
		{ID: "rsa", Public: &f.rsa.PublicKey},
		{ID: "rsa-rs256", Public: &f.rsa2.PublicKey, Alg: "RS256"},
		{ID: "ec", Public: &f.ec256.PublicKey},
		{ID: "ec384", Public: &f.ec384.PublicKey},
		{ID: "ed", Public: f.ed.Public()},
		{ID: "../../etc/passwd-decoy", Public: &f.rsa.PublicKey},
	}}
}

// sign makes a token; header entries are added to (or, with nil, removed
// from) the default header.
func sign(t testing.TB, m jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// raw builds a token from JSON header and claims and a raw signature.
func raw(header, claims string, sig []byte) string {
	e := base64.RawURLEncoding
	return e.EncodeToString([]byte(header)) + "." + e.EncodeToString([]byte(claims)) + "." + e.EncodeToString(sig)
}

func claimsAt(c *clock) jwt.MapClaims {
	return jwt.MapClaims{
		"iss":   "https://idp.example.com",
		"aud":   "orders-api",
		"sub":   "svc-acme",
		"exp":   c.At(10 * time.Minute),
		"iat":   c.At(0),
		"jti":   "j-1",
		"scope": "orders:read admin",
	}
}

func with(m jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func consumers() map[string]*authn.Consumer {
	return map[string]*authn.Consumer{
		"svc-acme": {ID: "acme", Scopes: []string{"orders:read", "orders:write"}, ScopeText: "orders:read orders:write"},
		"svc-beta": {ID: "beta"},
	}
}

func newAuth(t testing.TB, ks KeySet, c *clock, mod func(*Options)) *Authenticator {
	t.Helper()
	o := Options{
		Name:       "idp",
		Issuer:     "https://idp.example.com",
		Audience:   []string{"orders-api", "other-api"},
		Algorithms: []string{"RS256", "PS256", "ES256", "EdDSA"},
		Leeway:     30 * time.Second,
		Keys:       ks,
		Consumers:  consumers(),
		Now:        c.Now,
	}
	if mod != nil {
		mod(&o)
	}
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// jwkOf renders a public key as a JWK object.
func jwkOf(t testing.TB, pub crypto.PublicKey, kid string, alg jwkset.ALG) json.RawMessage {
	t.Helper()
	j, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: alg}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(j.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jwksDoc(t testing.TB, jwks ...json.RawMessage) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": jwks})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
