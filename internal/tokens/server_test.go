package tokens

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/breakwater/breakwater/internal/authn"
	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/secret"
)

func basic(id, sec string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(sec)))
}

// checkError checks an RFC 6749 §5.2 error response.
func checkError(t *testing.T, w *httptest.ResponseRecorder, status int, code string, challenge bool, leaks ...string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d; body %s", w.Code, status, w.Body)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if got := w.Header().Get("WWW-Authenticate"); (got != "") != challenge || (challenge && got != `Basic realm="breakwater"`) {
		t.Errorf("WWW-Authenticate %q, want challenge %v", got, challenge)
	}
	var body map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	if body["error"] != code {
		t.Errorf("error %q, want %q", body["error"], code)
	}
	for k := range body {
		if k != "error" && k != "error_description" {
			t.Errorf("unexpected member %q", k)
		}
	}
	for _, l := range leaks {
		if l != "" && strings.Contains(w.Body.String(), l) {
			t.Errorf("body echoes %q", l)
		}
	}
}

func TestTokenEndpoint(t *testing.T) {
	okForm := form("grant_type", "client_credentials", "client_id", "acme", "client_secret", acmeSecret)
	cc := "grant_type=client_credentials"
	tests := []struct {
		name      string
		body      string
		hdr       []string
		status    int
		code      string // "" = success
		challenge bool
		scope     string // granted scope on success
		event     string // expected OnFailure event
	}{
		{name: "post", body: okForm, status: 200, scope: "orders:read orders:write"},
		{name: "basic", body: cc, hdr: []string{"Authorization", basic("acme", acmeSecret)}, status: 200, scope: "orders:read orders:write"},
		{name: "basic lowercase scheme", body: cc, hdr: []string{"Authorization", strings.Replace(basic("acme", acmeSecret), "Basic", "basic", 1)}, status: 200, scope: "orders:read orders:write"},
		{name: "basic form-urlencoded id and secret", body: cc, hdr: []string{"Authorization", basic("odd:id é+", "p@ss:w+rd/=%")}, status: 200},
		{name: "basic with the same client_id in the form", body: cc + "&client_id=acme", hdr: []string{"Authorization", basic("acme", acmeSecret)}, status: 200, scope: "orders:read orders:write"},
		{name: "charset utf-8", body: okForm, hdr: []string{"Content-Type", "", "Content-Type", "application/x-www-form-urlencoded; charset=UTF-8"}, status: 200, scope: "orders:read orders:write"},
		{name: "scope subset", body: okForm + "&scope=orders%3Aread", status: 200, scope: "orders:read"},
		{name: "scope repeated and unordered", body: okForm + "&scope=orders%3Awrite+orders%3Aread+orders%3Aread", status: 200, scope: "orders:read orders:write"},
		{name: "empty scope is omitted (RFC 6749 §3.2)", body: okForm + "&scope=", status: 200, scope: "orders:read orders:write"},

		// attacks
		{name: "wrong secret post", body: form("grant_type", "client_credentials", "client_id", "acme", "client_secret", zetaSecret), status: 401, code: "invalid_client", event: "acme: wrong client secret"},
		{name: "wrong secret basic", body: cc, hdr: []string{"Authorization", basic("acme", "guess")}, status: 401, code: "invalid_client", challenge: true, event: "acme: wrong client secret"},
		{name: "secret of another client", body: cc, hdr: []string{"Authorization", basic("zeta", acmeSecret)}, status: 401, code: "invalid_client", challenge: true, event: "zeta: wrong client secret"},
		{name: "unknown client", body: form("grant_type", "client_credentials", "client_id", "ghost", "client_secret", acmeSecret), status: 401, code: "invalid_client", event: "ghost: unknown client"},
		{name: "secret digest instead of secret", body: form("grant_type", "client_credentials", "client_id", "acme", "client_secret", secret.SumString(acmeSecret).String()), status: 401, code: "invalid_client", event: "acme: wrong client secret"},
		{name: "no client authentication", body: cc, status: 401, code: "invalid_client", event: ": no client authentication"},
		{name: "client_id without secret", body: cc + "&client_id=acme", status: 401, code: "invalid_client"},
		{name: "both methods", body: okForm, hdr: []string{"Authorization", basic("acme", acmeSecret)}, status: 400, code: "invalid_request"},
		{name: "basic and another client_id in the form", body: cc + "&client_id=zeta", hdr: []string{"Authorization", basic("acme", acmeSecret)}, status: 400, code: "invalid_request"},
		{name: "bearer scheme", body: cc, hdr: []string{"Authorization", "Bearer abc"}, status: 401, code: "invalid_client", challenge: true},
		{name: "basic not base64", body: cc, hdr: []string{"Authorization", "Basic !!!"}, status: 401, code: "invalid_client", challenge: true},
		{name: "basic without colon", body: cc, hdr: []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("acme"))}, status: 401, code: "invalid_client", challenge: true},
		{name: "basic bad percent-encoding", body: cc, hdr: []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("acme:%zz"))}, status: 401, code: "invalid_client", challenge: true},
		{name: "basic empty secret", body: cc, hdr: []string{"Authorization", basic("acme", "")}, status: 401, code: "invalid_client", challenge: true},
		{name: "repeated Authorization", body: cc, hdr: []string{"Authorization", basic("acme", acmeSecret), "Authorization", basic("acme", acmeSecret)}, status: 400, code: "invalid_request"},
		{name: "secret too long", body: form("grant_type", "client_credentials", "client_id", "acme", "client_secret", strings.Repeat("s", maxClientSecretLen+1)), status: 401, code: "invalid_client"},
		{name: "client id with control characters", body: form("grant_type", "client_credentials", "client_id", "ac\x00me", "client_secret", acmeSecret), status: 401, code: "invalid_client"},
		{name: "grant password", body: form("grant_type", "password", "client_id", "acme", "client_secret", acmeSecret, "username", "u", "password", "p"), status: 400, code: "unsupported_grant_type"},
		{name: "grant authorization_code", body: form("grant_type", "authorization_code", "client_id", "acme", "client_secret", acmeSecret, "code", "x"), status: 400, code: "unsupported_grant_type"},
		{name: "grant password unauthenticated", body: form("grant_type", "password", "client_id", "acme", "client_secret", "x"), status: 401, code: "invalid_client"},
		{name: "no grant_type", body: form("client_id", "acme", "client_secret", acmeSecret), status: 400, code: "invalid_request"},
		{name: "repeated grant_type", body: okForm + "&grant_type=client_credentials", status: 400, code: "invalid_request"},
		{name: "repeated client_secret", body: okForm + "&client_secret=x", status: 400, code: "invalid_request"},
		{name: "scope escalation", body: form("grant_type", "client_credentials", "client_id", "zeta", "client_secret", zetaSecret, "scope", "orders:read orders:write"), status: 400, code: "invalid_scope"},
		{name: "scope of nobody", body: okForm + "&scope=admin", status: 400, code: "invalid_scope"},
		{name: "scope double space", body: okForm + "&scope=orders%3Aread++orders%3Awrite", status: 400, code: "invalid_scope"},
		{name: "scope with quote", body: okForm + "&scope=orders%3Aread%22", status: 400, code: "invalid_scope"},
		{name: "scope too many", body: okForm + "&scope=" + strings.Repeat("orders%3Aread+", maxScopes) + "orders%3Aread", status: 400, code: "invalid_scope"},
		{name: "huge body", body: okForm + "&pad=" + strings.Repeat("a", MaxFormBytes), status: 400, code: "invalid_request"},
		{name: "too many parameters", body: okForm + strings.Repeat("&a=b", maxFormParams), status: 400, code: "invalid_request"},
		{name: "json body", body: `{"grant_type":"client_credentials"}`, hdr: []string{"Content-Type", "", "Content-Type", "application/json"}, status: 400, code: "invalid_request"},
		{name: "multipart", body: okForm, hdr: []string{"Content-Type", "", "Content-Type", "multipart/form-data; boundary=x"}, status: 400, code: "invalid_request"},
		{name: "no content type", body: okForm, hdr: []string{"Content-Type", ""}, status: 400, code: "invalid_request"},
		{name: "latin1 charset", body: okForm, hdr: []string{"Content-Type", "", "Content-Type", "application/x-www-form-urlencoded; charset=latin1"}, status: 400, code: "invalid_request"},
		{name: "repeated content type", body: okForm, hdr: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: 400, code: "invalid_request"},
		{name: "not UTF-8", body: okForm + "&x=%ff\xff", status: 400, code: "invalid_request"},
		{name: "bad escape", body: okForm + "&x=%zz", status: 400, code: "invalid_request"},
		{name: "semicolon", body: okForm + ";x=y", status: 400, code: "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			w := f.post(TokenPath, tt.body, tt.hdr...)
			if tt.code != "" {
				checkError(t, w, tt.status, tt.code, tt.challenge, acmeSecret, zetaSecret, "ghost", "acme")
				if tt.event != "" && f.lastEvent() != tt.event {
					t.Errorf("event %q, want %q", f.lastEvent(), tt.event)
				}
				return
			}
			if w.Code != tt.status {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Pragma") != "no-cache" {
				t.Errorf("caching headers %v", w.Header())
			}
			var tr map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &tr); err != nil {
				t.Fatal(err)
			}
			if tr["token_type"] != "Bearer" || tr["expires_in"] != float64(900) {
				t.Errorf("response %v", tr)
			}
			if tt.scope != "" && tr["scope"] != tt.scope {
				t.Errorf("scope %v, want %q", tr["scope"], tt.scope)
			}
			if f.lastEvent() != "" {
				t.Errorf("security event on success: %s", f.lastEvent())
			}
		})
	}
}

func TestAccessTokenClaims(t *testing.T) {
	f := newFixture(t)
	tok := f.issueToken(t, "acme", acmeSecret)
	claims := jwt.MapClaims{}
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, claims)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Header["typ"] != "at+jwt" || parsed.Header["kid"] != activeKID(f.keys) || parsed.Header["alg"] != EdDSA {
		t.Fatalf("header %v", parsed.Header)
	}
	now := float64(f.clk.Now().Unix())
	for k, v := range map[string]any{
		"iss": testIssuer, "sub": "acme", "client_id": "acme", "scope": "orders:read orders:write",
		"iat": now, "nbf": now, "exp": now + 900,
	} {
		if claims[k] != v {
			t.Errorf("%s = %v, want %v", k, claims[k], v)
		}
	}
	if aud, _ := claims.GetAudience(); !slices.Equal(aud, []string{testIssuer}) {
		t.Errorf("aud %v", aud)
	}
	jti, _ := claims["jti"].(string)
	if raw, err := base64.RawURLEncoding.DecodeString(jti); err != nil || len(raw) != 16 {
		t.Errorf("jti %q is not 128 bits base64url", jti)
	}
	if other := f.issueToken(t, "acme", acmeSecret); other == tok {
		t.Error("two tokens are identical")
	}
}

func acmeToken(t *testing.T, f *fixture) string { return f.issueToken(t, "acme", acmeSecret) }

func jtiOf(t *testing.T, tok string) string {
	t.Helper()
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, claims); err != nil {
		t.Fatal(err)
	}
	jti, _ := claims["jti"].(string)
	return jti
}

// signClaimsWith signs access token claims for acme with ring k, edited by edit.
func signClaimsWith(t *testing.T, f *fixture, k *KeyRing, typ string, edit func(*accessClaims)) string {
	t.Helper()
	now := f.clk.Now()
	c := &accessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: testIssuer, Subject: "acme", Audience: jwt.ClaimStrings{testIssuer},
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)), IssuedAt: jwt.NewNumericDate(now), ID: "jti-1",
		},
		ClientID: "acme", Scope: "orders:read",
	}
	if edit != nil {
		edit(c)
	}
	tok, err := k.Sign(c, typ)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func signClaims(t *testing.T, f *fixture, typ string, edit func(*accessClaims)) string {
	return signClaimsWith(t, f, f.keys, typ, edit)
}

func TestIntrospect(t *testing.T) {
	acmeAuth := []string{"Authorization", basic("acme", acmeSecret)}
	zetaAuth := []string{"Authorization", basic("zeta", zetaSecret)}
	reheader := func(t *testing.T, tok string, hdr map[string]string) string {
		b, _ := json.Marshal(hdr)
		parts := strings.Split(tok, ".")
		return b64(b) + "." + parts[1] + "." + parts[2]
	}
	tests := []struct {
		name   string
		token  func(t *testing.T, f *fixture) string
		auth   []string
		before func(t *testing.T, f *fixture, tok string)
		active bool
		event  string
	}{
		{name: "own token", token: acmeToken, auth: acmeAuth, active: true},
		{name: "own token, client_secret_post", token: acmeToken, auth: nil, active: true},
		{name: "own token, typ application/at+jwt", token: func(t *testing.T, f *fixture) string {
			return signClaims(t, f, "application/at+jwt", nil)
		}, auth: acmeAuth, active: true},
		{name: "token of another client", token: acmeToken, auth: zetaAuth, event: "zeta: introspection of a token of another client"},
		{name: "revoked", token: acmeToken, auth: acmeAuth, before: func(t *testing.T, f *fixture, tok string) {
			_ = f.revs.Revoke(context.Background(), jtiOf(t, tok), f.clk.Now().Add(time.Hour))
		}},
		{name: "expired", token: acmeToken, auth: acmeAuth, before: func(_ *testing.T, f *fixture, _ string) { f.clk.Add(15*time.Minute + time.Second) }},
		{name: "revocation store down fails closed", token: acmeToken, auth: acmeAuth, before: func(_ *testing.T, f *fixture, _ string) { f.revs.setErr(errStore) }},
		{name: "garbage", token: func(*testing.T, *fixture) string { return "not.a.token" }, auth: acmeAuth},
		{name: "too long", token: func(*testing.T, *fixture) string { return strings.Repeat("a", maxTokenLen+1) }, auth: acmeAuth},
		{name: "identity token of the same ring", token: func(t *testing.T, f *fixture) string {
			tok, err := f.keys.Identity(consumer("acme", "orders:read"), "r", "id")
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}, auth: acmeAuth},
		{name: "own key, typ JWT", token: func(t *testing.T, f *fixture) string { return signClaims(t, f, "JWT", nil) }, auth: acmeAuth},
		{name: "own key, no typ", token: func(t *testing.T, f *fixture) string { return signClaims(t, f, "", nil) }, auth: acmeAuth},
		{name: "own key, wrong audience", token: func(t *testing.T, f *fixture) string {
			return signClaims(t, f, AccessTokenType, func(c *accessClaims) { c.Audience = jwt.ClaimStrings{"https://other"} })
		}, auth: acmeAuth},
		{name: "own key, wrong issuer", token: func(t *testing.T, f *fixture) string {
			return signClaims(t, f, AccessTokenType, func(c *accessClaims) { c.Issuer = "https://evil" })
		}, auth: acmeAuth},
		{name: "own key, no exp", token: func(t *testing.T, f *fixture) string {
			// Sign refuses claims without exp: sign them with the key directly.
			key := f.keys.cur.Load().active
			tk := jwt.NewWithClaims(key.method, jwt.MapClaims{"iss": testIssuer, "aud": testIssuer, "sub": "acme", "client_id": "acme", "jti": "j", "iat": f.clk.Now().Unix()})
			tk.Header["kid"], tk.Header["typ"] = key.kid, AccessTokenType
			s, err := tk.SignedString(key.priv)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, auth: acmeAuth},
		{name: "own key, no jti", token: func(t *testing.T, f *fixture) string {
			return signClaims(t, f, AccessTokenType, func(c *accessClaims) { c.ID = "" })
		}, auth: acmeAuth},
		{name: "own key, sub differs from client_id", token: func(t *testing.T, f *fixture) string {
			return signClaims(t, f, AccessTokenType, func(c *accessClaims) { c.Subject = "zeta" })
		}, auth: acmeAuth},
		{name: "own key, issued in the future", token: func(t *testing.T, f *fixture) string {
			return signClaims(t, f, AccessTokenType, func(c *accessClaims) { c.IssuedAt = jwt.NewNumericDate(f.clk.Now().Add(time.Minute)) })
		}, auth: acmeAuth},
		{name: "own key, not yet valid", token: func(t *testing.T, f *fixture) string {
			return signClaims(t, f, AccessTokenType, func(c *accessClaims) { c.NotBefore = jwt.NewNumericDate(f.clk.Now().Add(time.Minute)) })
		}, auth: acmeAuth},
		{name: "foreign key claiming our kid", token: func(t *testing.T, f *fixture) string {
			other := openRing(t, t.TempDir(), EdDSA, f.clk)
			return reheader(t, signClaimsWith(t, f, other, AccessTokenType, nil), map[string]string{"alg": EdDSA, "typ": AccessTokenType, "kid": activeKID(f.keys)})
		}, auth: acmeAuth},
		{name: "alg none", token: func(t *testing.T, f *fixture) string {
			parts := strings.Split(acmeToken(t, f), ".")
			hdr, _ := json.Marshal(map[string]string{"alg": "none", "typ": AccessTokenType, "kid": activeKID(f.keys)})
			return b64(hdr) + "." + parts[1] + "."
		}, auth: acmeAuth},
		{name: "alg confusion: HS256 keyed with the public key", token: func(t *testing.T, f *fixture) string {
			tk := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": testIssuer, "aud": testIssuer, "sub": "acme", "client_id": "acme", "jti": "j", "exp": f.clk.Now().Add(time.Minute).Unix()})
			tk.Header["kid"], tk.Header["typ"] = activeKID(f.keys), AccessTokenType
			var jwk publicJWK
			_ = json.Unmarshal(f.keys.JWKS()[len(`{"keys":[`):len(f.keys.JWKS())-2], &jwk)
			raw, _ := base64.RawURLEncoding.DecodeString(jwk.X)
			s, err := tk.SignedString(raw)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, auth: acmeAuth},
		{name: "jku header ignored, unknown kid", token: func(t *testing.T, f *fixture) string {
			other := openRing(t, t.TempDir(), EdDSA, f.clk)
			tok := signClaimsWith(t, f, other, AccessTokenType, nil)
			p, _, _ := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
			return reheader(t, tok, map[string]string{"alg": EdDSA, "typ": AccessTokenType, "kid": p.Header["kid"].(string), "jku": "https://evil/jwks"})
		}, auth: acmeAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tok := tt.token(t, f)
			if tt.before != nil {
				tt.before(t, f, tok)
			}
			body := form("token", tok, "token_type_hint", "access_token")
			if tt.auth == nil {
				body += "&" + form("client_id", "acme", "client_secret", acmeSecret)
			}
			w := f.post(IntrospectPath, body, tt.auth...)
			if w.Code != 200 || w.Header().Get("Cache-Control") != "no-store" {
				t.Fatalf("status %d, headers %v", w.Code, w.Header())
			}
			var got map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if !tt.active {
				if len(got) != 1 || got["active"] != false {
					t.Fatalf("response %v, want only active:false", got)
				}
				if tt.event != "" && f.lastEvent() != tt.event {
					t.Errorf("event %q, want %q", f.lastEvent(), tt.event)
				}
				return
			}
			claims := jwt.MapClaims{}
			if _, _, err := jwt.NewParser().ParseUnverified(tok, claims); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{
				"active": true, "client_id": "acme", "sub": "acme", "iss": testIssuer, "aud": testIssuer,
				"exp": claims["exp"], "iat": claims["iat"], "jti": claims["jti"], "scope": claims["scope"], "token_type": "Bearer",
			}
			if len(got) != len(want) {
				t.Fatalf("response %v", got)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
		})
	}
}

func TestIntrospectAndRevokeErrors(t *testing.T) {
	for _, path := range []string{IntrospectPath, RevokePath} {
		t.Run(path, func(t *testing.T) {
			f := newFixture(t)
			tok := acmeToken(t, f)
			checkError(t, f.post(path, form("token", tok), "Authorization", basic("acme", "wrong")), 401, "invalid_client", true, "acme")
			checkError(t, f.post(path, form("token", tok)), 401, "invalid_client", false)
			checkError(t, f.post(path, form("token", tok, "client_id", "acme", "client_secret", "wrong")), 401, "invalid_client", false)
			checkError(t, f.post(path, "", "Authorization", basic("acme", acmeSecret)), 400, "invalid_request", false)
			checkError(t, f.post(path, form("token", tok)+"&token=x", "Authorization", basic("acme", acmeSecret)), 400, "invalid_request", false)
			r := httptest.NewRequest(http.MethodGet, path+"?token="+tok, nil)
			w := httptest.NewRecorder()
			f.srv.ServeHTTP(w, r)
			checkError(t, w, 405, "invalid_request", false, tok)
			if w.Header().Get("Allow") != "POST" {
				t.Errorf("Allow %q", w.Header().Get("Allow"))
			}
			// A token in the query string is refused even with a POST.
			checkError(t, f.post(path+"?token="+tok, form("token", tok), "Authorization", basic("acme", acmeSecret)), 400, "invalid_request", false, tok)
		})
	}
}

func TestRevoke(t *testing.T) {
	acmeAuth := []string{"Authorization", basic("acme", acmeSecret)}
	zetaAuth := []string{"Authorization", basic("zeta", zetaSecret)}
	introspect := func(f *fixture, tok string) bool {
		w := f.post(IntrospectPath, form("token", tok), acmeAuth...)
		return strings.Contains(w.Body.String(), `"active":true`)
	}
	t.Run("own token", func(t *testing.T) {
		f := newFixture(t)
		tok := acmeToken(t, f)
		w := f.post(RevokePath, form("token", tok, "token_type_hint", "access_token"), acmeAuth...)
		if w.Code != 200 || w.Body.Len() != 0 {
			t.Fatalf("%d %q", w.Code, w.Body)
		}
		if introspect(f, tok) {
			t.Fatal("revoked token still active")
		}
		if until, ok := f.revs.jtis[jtiOf(t, tok)]; !ok || !until.Equal(f.clk.Now().Add(15*time.Minute)) {
			t.Fatalf("revocation until %v, %v", until, ok)
		}
		if revoked, err := f.srv.Revoked(t.Context(), jtiOf(t, tok)); !revoked || err != nil {
			t.Fatalf("Revoked = %v, %v", revoked, err)
		}
		// Revoking again is fine.
		if w := f.post(RevokePath, form("token", tok), acmeAuth...); w.Code != 200 {
			t.Fatal(w.Code)
		}
	})
	t.Run("token of another client is a no-op", func(t *testing.T) {
		f := newFixture(t)
		tok := acmeToken(t, f)
		w := f.post(RevokePath, form("token", tok), zetaAuth...)
		if w.Code != 200 || w.Body.Len() != 0 {
			t.Fatalf("%d %q", w.Code, w.Body)
		}
		if !introspect(f, tok) || len(f.revs.jtis) != 0 {
			t.Fatal("another client revoked acme's token")
		}
		if f.lastEvent() != "zeta: revocation of a token of another client" {
			t.Fatalf("event %q", f.lastEvent())
		}
	})
	t.Run("garbage", func(t *testing.T) {
		f := newFixture(t)
		if w := f.post(RevokePath, form("token", "garbage"), acmeAuth...); w.Code != 200 || w.Body.Len() != 0 {
			t.Fatalf("%d %q", w.Code, w.Body)
		}
	})
	t.Run("store down", func(t *testing.T) {
		f := newFixture(t)
		tok := acmeToken(t, f)
		f.revs.setErr(errStore)
		w := f.post(RevokePath, form("token", tok), acmeAuth...)
		checkError(t, w, 503, "temporarily_unavailable", false, errStore.Error())
		if f.srv.Handles(RevokePath) {
			if _, err := f.srv.Revoked(t.Context(), "x"); err == nil {
				t.Fatal("Revoked hid the store error")
			}
		}
	})
}

func TestRateLimit(t *testing.T) {
	tests := []struct {
		name, key, path, body string
		hdr                   []string
	}{
		{"ip, token", "ip:192.0.2.1", TokenPath, form("grant_type", "client_credentials", "client_id", "acme", "client_secret", acmeSecret), nil},
		{"ip, jwks", "ip:192.0.2.1", JWKSPath, "", nil},
		{"known client", "client:acme", TokenPath, form("grant_type", "client_credentials", "client_id", "acme", "client_secret", acmeSecret), nil},
		{"known client, wrong secret", "client:acme", IntrospectPath, form("token", "x"), []string{"Authorization", basic("acme", "guess")}},
		{"unknown client", "client:ghost", RevokePath, form("token", "x", "client_id", "ghost", "client_secret", "guess"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.limited[tt.key] = true
			var w *httptest.ResponseRecorder
			if tt.path == JWKSPath {
				w = httptest.NewRecorder()
				f.srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, tt.path, nil))
			} else {
				w = f.post(tt.path, tt.body, tt.hdr...)
			}
			checkError(t, w, 429, "slow_down", false)
			if got := w.Header().Get("Retry-After"); got != "2" {
				t.Fatalf("Retry-After %q, want 2 (1.5s rounded up)", got)
			}
			if f.lastEvent() != "" {
				t.Fatalf("secret checked while limited: %s", f.lastEvent())
			}
		})
	}
}

func TestJWKSAndMetadata(t *testing.T) {
	f := newFixture(t)
	get := func(path, method string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		f.srv.ServeHTTP(w, httptest.NewRequest(method, path, nil))
		return w
	}
	w := get(JWKSPath, http.MethodGet)
	if w.Code != 200 || w.Header().Get("Cache-Control") != "public, max-age=60" || w.Body.String() != string(f.keys.JWKS()) ||
		w.Header().Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("jwks: %d %v %s", w.Code, w.Header(), w.Body)
	}
	if w := get(JWKSPath, http.MethodHead); w.Code != 200 {
		t.Fatalf("HEAD jwks: %d", w.Code)
	}
	w = get(MetadataPath, http.MethodGet)
	var md map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &md); err != nil || w.Code != 200 {
		t.Fatalf("metadata %d: %v", w.Code, err)
	}
	methods := []any{"client_secret_basic", "client_secret_post"}
	want := map[string]any{
		"issuer":                                testIssuer,
		"token_endpoint":                        testIssuer + TokenPath,
		"introspection_endpoint":                testIssuer + IntrospectPath,
		"revocation_endpoint":                   testIssuer + RevokePath,
		"jwks_uri":                              testIssuer + JWKSPath,
		"grant_types_supported":                 []any{"client_credentials"},
		"token_endpoint_auth_methods_supported": methods,
		"introspection_endpoint_auth_methods_supported": methods,
		"revocation_endpoint_auth_methods_supported":    methods,
		"response_types_supported":                      []any{},
	}
	if len(md) != len(want) {
		t.Fatalf("metadata members %v", md)
	}
	for k, v := range want {
		if b1, _ := json.Marshal(md[k]); string(b1) != mustJSON(v) {
			t.Errorf("%s = %s, want %s", k, b1, mustJSON(v))
		}
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		for _, p := range []string{JWKSPath, MetadataPath} {
			w := httptest.NewRecorder()
			f.srv.ServeHTTP(w, httptest.NewRequest(m, p, strings.NewReader("x")))
			if w.Code != 405 || w.Header().Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: %d Allow %q", m, p, w.Code, w.Header().Get("Allow"))
			}
		}
	}
	for _, p := range []string{"/oauth2/token/", "/oauth2/authorize", "/.well-known/openid-configuration", "/OAUTH2/TOKEN"} {
		if f.srv.Handles(p) {
			t.Errorf("Handles(%q)", p)
		}
		if w := get(p, http.MethodGet); w.Code != 404 {
			t.Errorf("%s: %d", p, w.Code)
		}
	}
	for _, p := range []string{TokenPath, IntrospectPath, RevokePath, JWKSPath, MetadataPath} {
		if !f.srv.Handles(p) {
			t.Errorf("!Handles(%q)", p)
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestNewServerRejects(t *testing.T) {
	clk := newClock()
	keys := openRing(t, t.TempDir(), EdDSA, clk)
	good := func() Options {
		return Options{Issuer: testIssuer, TTL: time.Minute, Keys: keys, Revocations: newMemRevocations(),
			Clients: []Client{{ID: "a", SecretHash: secret.SumString("s"), Consumer: consumer("a")}}}
	}
	if _, err := NewServer(good()); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*Options){
		"http issuer":             func(o *Options) { o.Issuer = "http://api.example.com" },
		"issuer with path":        func(o *Options) { o.Issuer = "https://api.example.com/oauth" },
		"issuer with query":       func(o *Options) { o.Issuer = "https://api.example.com?x" },
		"issuer with user":        func(o *Options) { o.Issuer = "https://u@api.example.com" },
		"relative issuer":         func(o *Options) { o.Issuer = "api.example.com" },
		"ttl zero":                func(o *Options) { o.TTL = 0 },
		"ttl above ring":          func(o *Options) { o.TTL = 16 * time.Minute },
		"no keys":                 func(o *Options) { o.Keys = nil },
		"no revocations":          func(o *Options) { o.Revocations = nil },
		"duplicate client":        func(o *Options) { o.Clients = append(o.Clients, o.Clients[0]) },
		"client without hash":     func(o *Options) { o.Clients[0].SecretHash = secret.Digest{} },
		"client without id":       func(o *Options) { o.Clients[0].ID = "" },
		"client without consumer": func(o *Options) { o.Clients[0].Consumer = nil },
	} {
		o := good()
		edit(&o)
		if _, err := NewServer(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	o := good()
	o.Issuer = "http://127.0.0.1:8443"
	if _, err := NewServer(o); err != nil {
		t.Errorf("loopback http issuer: %v", err)
	}
}

// TestClientCredentialsOverTLS obtains tokens with golang.org/x/oauth2 from
// a real TLS server and verifies them with nothing but the JWKS document.
func TestClientCredentialsOverTLS(t *testing.T) {
	f := newFixture(t)
	ts := httptest.NewTLSServer(f.srv)
	defer ts.Close()
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, ts.Client())

	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		cfg := clientcredentials.Config{ClientID: "acme", ClientSecret: acmeSecret, TokenURL: ts.URL + TokenPath, Scopes: []string{"orders:read"}, AuthStyle: style}
		tok, err := cfg.Token(ctx)
		if err != nil {
			t.Fatalf("style %d: %v", style, err)
		}
		if tok.TokenType != "Bearer" || tok.Extra("scope") != "orders:read" || tok.Expiry.IsZero() {
			t.Fatalf("token %+v", tok)
		}

		// Verify with the JWKS fetched over TLS, parsed by jwkset.
		resp, err := ts.Client().Get(ts.URL + JWKSPath)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var set jwkset.JWKSMarshal
		if err := json.Unmarshal(raw, &set); err != nil {
			t.Fatal(err)
		}
		jwks, err := set.JWKSlice()
		if err != nil {
			t.Fatal(err)
		}
		claims := &accessClaims{}
		_, err = jwt.ParseWithClaims(tok.AccessToken, claims, func(tk *jwt.Token) (any, error) {
			for _, k := range jwks {
				if m := k.Marshal(); m.KID == tk.Header["kid"] && string(m.ALG) == tk.Method.Alg() && m.USE == jwkset.UseSig {
					return k.Key(), nil
				}
			}
			return nil, jwt.ErrTokenUnverifiable
		}, jwt.WithValidMethods([]string{EdDSA}), jwt.WithIssuer(testIssuer), jwt.WithAudience(testIssuer), jwt.WithTimeFunc(f.clk.Now))
		if err != nil {
			t.Fatalf("verifying with the JWKS: %v", err)
		}
		if claims.ClientID != "acme" || claims.Scope != "orders:read" {
			t.Fatalf("claims %+v", claims)
		}
	}
	// A wrong secret surfaces as an oauth2.RetrieveError with invalid_client.
	cfg := clientcredentials.Config{ClientID: "acme", ClientSecret: "wrong", TokenURL: ts.URL + TokenPath}
	_, err := cfg.Token(ctx)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_client" || re.Response.StatusCode != 401 {
		t.Fatalf("wrong secret: %v", err)
	}
}

func TestClientsFromConfig(t *testing.T) {
	h := secret.SumString("s")
	consumers := []config.Consumer{
		{ID: "acme", Credentials: []config.Credential{{APIKey: &h}, {OAuthClient: &config.OAuthClientCredential{ClientID: "acme-svc", SecretHash: h}}}},
		{ID: "zeta", Credentials: []config.Credential{{APIKey: &h}}},
	}
	byID := map[string]*authn.Consumer{"acme": consumer("acme"), "zeta": consumer("zeta")}
	got, err := ClientsFromConfig(consumers, byID)
	if err != nil || len(got) != 1 || got[0].ID != "acme-svc" || got[0].Consumer != byID["acme"] || !got[0].SecretHash.Equal(h) {
		t.Fatalf("%+v, %v", got, err)
	}
	if _, err := ClientsFromConfig(consumers, map[string]*authn.Consumer{}); err == nil {
		t.Fatal("missing consumer accepted")
	}
}
