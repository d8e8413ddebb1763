package tokens

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/breakwater/breakwater/internal/testutil"
)

// BenchmarkIdentity measures the X-Gateway-Identity token signed on every
// authenticated request.
func BenchmarkIdentity(b *testing.B) {
	for _, alg := range []string{EdDSA, ES256, RS256} {
		b.Run(alg, func(b *testing.B) {
			k := openRing(b, b.TempDir(), alg, newClock())
			c := consumer("acme", "orders:read", "orders:write")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := k.Identity(c, "orders-read", "01J9Z3Q4X8RZ5V6W7Y8Z9A0B1C"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkIdentityJWTLib is the same token through golang-jwt with
// MapClaims, for comparison with the hand-built Identity.
func BenchmarkIdentityJWTLib(b *testing.B) {
	clk := newClock()
	k := openRing(b, b.TempDir(), EdDSA, clk)
	c := consumer("acme", "orders:read", "orders:write")
	b.ReportAllocs()
	for b.Loop() {
		now := clk.Now()
		_, err := k.Sign(jwt.MapClaims{
			"iss": DefaultIdentityIssuer, "sub": c.ID, "aud": IdentityAudience,
			"iat": float64(now.Unix()), "exp": float64(now.Add(IdentityTTL).Unix()), "scope": c.ScopeText,
			"route": "orders-read", "request_id": "01J9Z3Q4X8RZ5V6W7Y8Z9A0B1C",
		}, "JWT")
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIssue measures a whole token request (client_secret_basic)
// through ServeHTTP.
func BenchmarkIssue(b *testing.B) {
	f := newFixture(b)
	auth := basic("acme", acmeSecret)
	const body = "grant_type=client_credentials&scope=orders%3Aread"
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, TokenPath, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		f.srv.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code, w.Body)
		}
	}
}

// BenchmarkIntrospect measures the verification of an own token.
func BenchmarkIntrospect(b *testing.B) {
	f := newFixture(b)
	tok := f.issueToken(b, "acme", acmeSecret)
	b.ReportAllocs()
	for b.Loop() {
		if c, reason := f.srv.ownToken(tok, "acme"); c == nil {
			b.Fatal(reason)
		}
	}
}

// BenchmarkPublicKey is the lookup of a known kid on the verification
// path: the Store never takes part in it.
func BenchmarkPublicKey(b *testing.B) {
	clk := newClock()
	k := storeRing(b, b.TempDir(), clk, &memStore{}, nil)
	kid := activeKID(k)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := k.PublicKey(kid); !ok {
			b.Fatal("not found")
		}
	}
}

// BenchmarkMaintainRedis is one maintenance tick with nothing to change:
// the key file read, one GETRANGE, no save.
func BenchmarkMaintainRedis(b *testing.B) {
	srv := testutil.StartRedis(b)
	clk := newClock()
	k := storeRing(b, b.TempDir(), clk, NewRedisKeyStore(dialRedis(b, srv), "access"), nil)
	b.ReportAllocs()
	for b.Loop() {
		if err := k.maintain(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRedisKeyStoreSave is one compare-and-set save of a two-key
// ring (EVALSHA).
func BenchmarkRedisKeyStoreSave(b *testing.B) {
	srv := testutil.StartRedis(b)
	s := NewRedisKeyStore(dialRedis(b, srv), "access")
	clk := newClock()
	k := openRing(b, b.TempDir(), EdDSA, clk)
	k.mu.Lock()
	data := k.encodeLocked()
	k.mu.Unlock()
	ver := ""
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Save(b.Context(), data, ver); err != nil {
			b.Fatal(err)
		}
		ver = version(data)
	}
}
