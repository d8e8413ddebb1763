package tokens

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

func TestIdentity(t *testing.T) {
	for _, alg := range []string{EdDSA, ES256, RS256} {
		t.Run(alg, func(t *testing.T) {
			clk := newClock()
			k := openRing(t, t.TempDir(), alg, clk)
			c := consumer("acme", "orders:read", "orders:write")
			reqID := "req-\"1\"\\\n\x00\u2028é\xff</script>"
			tok, err := k.Identity(c, "orders-read", reqID)
			if err != nil {
				t.Fatal(err)
			}
			claims := jwt.MapClaims{}
			parsed, err := jwt.NewParser(
				jwt.WithValidMethods([]string{alg}),
				jwt.WithIssuer(DefaultIdentityIssuer),
				jwt.WithAudience(IdentityAudience),
				jwt.WithExpirationRequired(),
				jwt.WithIssuedAt(),
				jwt.WithTimeFunc(clk.Now),
			).ParseWithClaims(tok, claims, func(t *jwt.Token) (any, error) {
				pub, _, _ := k.PublicKey(t.Header["kid"].(string))
				return pub, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if parsed.Header["typ"] != "JWT" || parsed.Header["kid"] != activeKID(k) || parsed.Header["alg"] != alg {
				t.Fatalf("header %v", parsed.Header)
			}
			now := float64(clk.Now().Unix())
			want := map[string]any{
				"iss": DefaultIdentityIssuer, "sub": "acme", "aud": IdentityAudience,
				"iat": now, "exp": now + 60, "scope": "orders:read orders:write",
				"route": "orders-read", "request_id": string([]rune(reqID)),
			}
			if len(claims) != len(want) {
				t.Fatalf("claims %v", claims)
			}
			for name, v := range want {
				if claims[name] != v {
					t.Errorf("%s = %#v, want %#v", name, claims[name], v)
				}
			}
			clk.Add(61 * time.Second)
			if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return k.cur.Load().active.pub, nil }, jwt.WithTimeFunc(clk.Now)); err == nil {
				t.Fatal("identity token valid after 61s")
			}
		})
	}
}

func TestIdentityIssuerAndNilConsumer(t *testing.T) {
	clk := newClock()
	o := ringOpts(t.TempDir(), EdDSA, clk, time.Hour, time.Minute)
	o.Issuer = "gw-eu-1"
	k, err := OpenKeyRing(o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Identity(nil, "r", "id"); err == nil {
		t.Fatal("nil consumer accepted")
	}
	tok, err := k.Identity(consumer("a"), "", "")
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, claims); err != nil {
		t.Fatal(err)
	}
	if claims["iss"] != "gw-eu-1" || claims["scope"] != "" {
		t.Fatalf("claims %v", claims)
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{
		"", "plain", `"`, `\`, "\n\r\t\b\f", "\x00\x01\x1f\x7f", "é日本", "\xff", "a\xc3", "\xed\xa0\x80",
		"\u2028\u2029", "<>&", strings.Repeat("x", 600), "\U0001F600",
	} {
		checkJSONString(t, s)
	}
}

func checkJSONString(t testing.TB, s string) {
	t.Helper()
	b := appendJSONString([]byte("x"), s)
	if b[0] != 'x' {
		t.Fatal("prefix lost")
	}
	b = b[1:]
	if !json.Valid(b) || !utf8.Valid(b) {
		t.Fatalf("%q: invalid JSON %q", s, b)
	}
	var got string
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if want := string([]rune(s)); got != want {
		t.Fatalf("%q round-trips to %q, want %q", s, got, want)
	}
}
