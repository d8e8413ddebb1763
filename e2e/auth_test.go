package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/breakwater/breakwater/internal/testutil"
)

const authConfig = `version: 1
server:
  https: "{{.HTTPS}}"
  admin: "{{.Admin}}"
  data_dir: "{{.Data}}"
  shutdown_timeout: 5s
tls:
  self_signed: true
  client_ca_file: "{{.ClientCA}}"
admin:
  token_hash: "{{.AdminHash}}"
authenticators:
  keys:   { type: api_key }
  idp:    { type: jwt, issuer: "https://idp.example.com", audience: orders, jwks_url: "{{.IdP}}/jwks", algorithms: [RS256, ES256] }
  own:    { type: jwt, issuer: self }
  opaque: { type: introspection, url: "{{.IdP}}/introspect", client_id: gw, client_secret: "{{.IntrospectSecret}}", cache: 30s }
  certs:  { type: mtls }
  signed: { type: http_signature, max_age: 60s, required_components: ["@method", "@target-uri", "content-digest"] }
token_endpoint:
  issuer: "https://gateway.example.com"
  ttl: 5m
consumers:
  - id: acme
    scopes: [orders:read, orders:write]
    credentials:
      - api_key: "{{.ReaderHash}}"
      - jwt: { authenticator: idp, subject: svc-acme }
      - oauth_client: { client_id: acme-app, secret_hash: "{{.ClientHash}}" }
      - mtls: { subject_cn: acme-client }
      - http_signature: { key_id: acme-1, alg: hmac-sha256, secret: "{{.SigKey}}" }
routes:
  - { name: jwt,    path: "/jwt/**",    upstream: { targets: ["{{.Up}}"] }, auth: [idp], scopes: ["orders:read"] }
  - { name: own,    path: "/own/**",    upstream: { targets: ["{{.Up}}"] }, auth: [own] }
  - { name: opaque, path: "/opaque/**", upstream: { targets: ["{{.Up}}"] }, auth: [opaque] }
  - { name: certs,  path: "/certs/**",  upstream: { targets: ["{{.Up}}"] }, auth: [certs] }
  - { name: signed, path: "/signed/**", upstream: { targets: ["{{.Up}}"] }, auth: [signed] }
  - { name: keys,   path: "/keys/**",   upstream: { targets: ["{{.Up}}"] }, auth: [keys], identity: false }
`

const (
	clientSecret     = "cs_e2eClientSecret000000000000000000000000000"
	introspectSecret = "is_e2eIntrospectSecret00000000000000000000000"
)

// idp is an identity provider on loopback: a JWKS and an RFC 7662
// introspection endpoint.
type idp struct {
	*httptest.Server
	rsa            *rsa.PrivateKey
	ec             *ecdsa.PrivateKey
	introspections atomic.Int32
}

func newIdP(t *testing.T) *idp {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p := &idp{rsa: rk, ec: ek}
	jwks := jwkset.NewMemoryStorage()
	for kid, key := range map[string]any{"rsa-1": &rk.PublicKey, "ec-1": &ek.PublicKey} {
		jwk, err := jwkset.NewJWKFromKey(key, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid}})
		if err != nil {
			t.Fatal(err)
		}
		if err := jwks.KeyWrite(context.Background(), jwk); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := jwks.JSONPublic(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/jwks":
			w.Header().Set("Content-Type", "application/json")
			w.Write(raw)
		case "/introspect":
			p.introspections.Add(1)
			id, sec, ok := r.BasicAuth()
			if !ok || id != "gw" || sec != introspectSecret {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			switch r.PostFormValue("token") {
			case "opaque-good":
				fmt.Fprintf(w, `{"active":true,"client_id":"acme","scope":"orders:read admin","exp":%d}`, time.Now().Add(time.Hour).Unix())
			default:
				io.WriteString(w, `{"active":false}`)
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(p.Close)
	return p
}

// token signs claims with the IdP's key of the method's family.
func (p *idp) token(t *testing.T, method jwt.SigningMethod, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	var key any = p.rsa
	tok.Header["kid"] = "rsa-1"
	if _, ok := method.(*jwt.SigningMethodECDSA); ok {
		key, tok.Header["kid"] = p.ec, "ec-1"
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func idpClaims(mod func(jwt.MapClaims)) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"iss": "https://idp.example.com", "aud": "orders", "sub": "svc-acme",
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "scope": "orders:read"}
	if mod != nil {
		mod(c)
	}
	return c
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	provider := newIdP(t)
	pki, stranger := testutil.NewPKI(t), testutil.NewPKI(t)
	sigKey := make([]byte, 32)
	rand.Read(sigKey)
	g := startGateway(t, authConfig, map[string]string{
		"Up": up.URL, "IdP": provider.URL, "ClientCA": pki.CAFile,
		"ClientHash": digest(clientSecret), "IntrospectSecret": introspectSecret,
		"SigKey": base64.StdEncoding.EncodeToString(sigKey),
	})
	c := g.client(t)

	// Every failure, whatever the authenticator and the reason, is the same 401.
	var unauthorized []string
	want401 := func(t *testing.T, resp *http.Response, body []byte) {
		t.Helper()
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
			t.Fatalf("status %d, WWW-Authenticate %q; want 401 with a challenge\n%s%s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body, g.output())
		}
		unauthorized = append(unauthorized, requestIDField.ReplaceAllString(string(body), `"request_id":""`))
	}
	// pass checks that the upstream saw the consumer and not the credential.
	pass := func(t *testing.T, resp *http.Response, body []byte) echo {
		t.Helper()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d; want 200\n%s%s", resp.StatusCode, body, g.output())
		}
		var e echo
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("upstream answer: %v\n%s", err, body)
		}
		if got := e.Header.Get("X-Consumer-Id"); got != "acme" {
			t.Errorf("upstream saw X-Consumer-Id %q; want acme", got)
		}
		if e.Header.Get("Authorization") != "" {
			t.Error("the bearer token reached the upstream")
		}
		return e
	}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

	t.Run("jwt", func(t *testing.T) {
		for _, m := range []jwt.SigningMethod{jwt.SigningMethodRS256, jwt.SigningMethodES256} {
			resp, body := g.get(t, c, "/jwt/x", bearer(provider.token(t, m, idpClaims(nil))))
			e := pass(t, resp, body)
			if got := e.Header.Get("X-Consumer-Scopes"); got != "orders:read" {
				t.Errorf("scopes %q; want the token's orders:read (capped by the consumer's)", got)
			}
			verifyIdentity(t, g, c, e.Header.Get("X-Gateway-Identity"), "jwt")
		}
		none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
			base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"https://idp.example.com","aud":"orders","sub":"svc-acme","exp":9999999999}`)) + "."
		for name, tok := range map[string]string{
			"alg none":     none,
			"expired":      provider.token(t, jwt.SigningMethodRS256, idpClaims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() })),
			"no exp":       provider.token(t, jwt.SigningMethodRS256, idpClaims(func(c jwt.MapClaims) { delete(c, "exp") })),
			"wrong aud":    provider.token(t, jwt.SigningMethodRS256, idpClaims(func(c jwt.MapClaims) { c["aud"] = "billing" })),
			"unknown sub":  provider.token(t, jwt.SigningMethodRS256, idpClaims(func(c jwt.MapClaims) { c["sub"] = "svc-nobody" })),
			"not scope":    provider.token(t, jwt.SigningMethodRS256, idpClaims(func(c jwt.MapClaims) { c["scope"] = "admin" })),
			"garbage":      "a.b.c",
			"no signature": strings.Join(strings.Split(provider.token(t, jwt.SigningMethodRS256, idpClaims(nil)), ".")[:2], ".") + ".",
		} {
			resp, body := g.get(t, c, "/jwt/x", bearer(tok))
			if name == "not scope" { // authenticated, but without the route's scope
				if resp.StatusCode != http.StatusForbidden {
					t.Errorf("%s: status %d; want 403", name, resp.StatusCode)
				}
				continue
			}
			t.Run(name, func(t *testing.T) { want401(t, resp, body) })
		}
		resp, body := g.get(t, c, "/jwt/x", nil)
		want401(t, resp, body)
	})

	t.Run("token endpoint", func(t *testing.T) {
		cc := clientcredentials.Config{ClientID: "acme-app", ClientSecret: clientSecret, TokenURL: g.url("/oauth2/token"),
			Scopes: []string{"orders:read"}}
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, c)
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatalf("client credentials grant: %v%s", err, g.output())
		}
		if tok.TokenType != "Bearer" || time.Until(tok.Expiry) > 5*time.Minute+time.Second {
			t.Errorf("token type %q, expiry in %s; want Bearer within the configured 5m", tok.TokenType, time.Until(tok.Expiry))
		}
		resp, body := g.get(t, c, "/own/x", bearer(tok.AccessToken))
		if e := pass(t, resp, body); e.Header.Get("X-Consumer-Scopes") != "orders:read" {
			t.Errorf("scopes %q; want the requested orders:read", e.Header.Get("X-Consumer-Scopes"))
		}

		bad := clientcredentials.Config{ClientID: "acme-app", ClientSecret: "wrong", TokenURL: cc.TokenURL}
		if _, err := bad.Token(ctx); err == nil || !strings.Contains(err.Error(), "invalid_client") {
			t.Errorf("wrong secret: %v; want invalid_client", err)
		}
		esc := cc
		esc.Scopes = []string{"admin"}
		if _, err := esc.Token(ctx); err == nil || !strings.Contains(err.Error(), "invalid_scope") {
			t.Errorf("scope escalation: %v; want invalid_scope", err)
		}

		// Metadata and keys are public.
		resp, body = g.get(t, c, "/.well-known/oauth-authorization-server", nil)
		var meta map[string]any
		if resp.StatusCode != 200 || json.Unmarshal(body, &meta) != nil || meta["issuer"] != "https://gateway.example.com" ||
			meta["token_endpoint"] != "https://gateway.example.com/oauth2/token" {
			t.Errorf("metadata: %d %s", resp.StatusCode, body)
		}

		// Revoked: the token stops working at once.
		form := url.Values{"token": {tok.AccessToken}}
		req, _ := http.NewRequest("POST", g.url("/oauth2/revoke"), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("acme-app", clientSecret)
		rr, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		rr.Body.Close()
		if rr.StatusCode != 200 {
			t.Fatalf("revoke: %d", rr.StatusCode)
		}
		resp, body = g.get(t, c, "/own/x", bearer(tok.AccessToken))
		want401(t, resp, body)
	})

	t.Run("introspection", func(t *testing.T) {
		resp, body := g.get(t, c, "/opaque/x", bearer("opaque-good"))
		if e := pass(t, resp, body); e.Header.Get("X-Consumer-Scopes") != "orders:read" {
			t.Errorf("scopes %q; want orders:read (admin is not the consumer's)", e.Header.Get("X-Consumer-Scopes"))
		}
		before := provider.introspections.Load()
		resp, body = g.get(t, c, "/opaque/x", bearer("opaque-good"))
		pass(t, resp, body)
		if provider.introspections.Load() != before {
			t.Error("a cached token was introspected again")
		}
		resp, body = g.get(t, c, "/opaque/x", bearer("opaque-bad"))
		want401(t, resp, body)
	})

	t.Run("mtls", func(t *testing.T) {
		withCert := func(cert *testutil.Cert) *http.Client {
			cfg := g.tlsConfig(t)
			if cert != nil {
				kp, err := tls.LoadX509KeyPair(cert.CertFile, cert.KeyFile)
				if err != nil {
					t.Fatal(err)
				}
				cfg.Certificates = []tls.Certificate{kp}
			}
			tr := &http.Transport{TLSClientConfig: cfg, Proxy: nil}
			t.Cleanup(tr.CloseIdleConnections)
			return &http.Client{Transport: tr, Timeout: 10 * time.Second}
		}
		resp, body := g.get(t, withCert(pki.ClientCert("acme-client")), "/certs/x", nil)
		pass(t, resp, body)
		for name, cl := range map[string]*http.Client{
			"no certificate":   withCert(nil),
			"unknown name":     withCert(pki.ClientCert("someone-else")),
			"untrusted issuer": withCert(stranger.ClientCert("acme-client")),
		} {
			resp, body := g.get(t, cl, "/certs/x", nil)
			t.Run(name, func(t *testing.T) { want401(t, resp, body) })
		}
	})

	t.Run("http signature", func(t *testing.T) {
		send := func(body, signedBody, nonce string, created time.Time) (*http.Response, []byte) {
			sum := sha256.Sum256([]byte(signedBody))
			cd := "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"
			params := fmt.Sprintf(`("@method" "@target-uri" "content-digest");created=%d;keyid="acme-1";alg="hmac-sha256";nonce="%s"`, created.Unix(), nonce)
			base := fmt.Sprintf("\"@method\": POST\n\"@target-uri\": %s\n\"content-digest\": %s\n\"@signature-params\": %s",
				g.url("/signed/x"), cd, params)
			mac := hmac.New(sha256.New, sigKey)
			mac.Write([]byte(base))
			return g.do(t, c, "POST", "/signed/x", strings.NewReader(body), http.Header{
				"Content-Type":    {"application/json"},
				"Content-Digest":  {cd},
				"Signature-Input": {"sig1=" + params},
				"Signature":       {"sig1=:" + base64.StdEncoding.EncodeToString(mac.Sum(nil)) + ":"},
			})
		}
		body := `{"item":"buoy"}`
		resp, got := send(body, body, "n-1", time.Now())
		if e := pass(t, resp, got); e.BodyLen != len(body) {
			t.Errorf("upstream got %d body bytes; want %d", e.BodyLen, len(body))
		}
		for name, r := range map[string]func() (*http.Response, []byte){
			"replayed nonce": func() (*http.Response, []byte) { return send(body, body, "n-1", time.Now()) },
			"tampered body":  func() (*http.Response, []byte) { return send(`{"item":"anchor"}`, body, "n-2", time.Now()) },
			"stale created":  func() (*http.Response, []byte) { return send(body, body, "n-3", time.Now().Add(-2*time.Minute)) },
		} {
			resp, got := r()
			t.Run(name, func(t *testing.T) { want401(t, resp, got) })
		}
	})

	t.Run("identity off", func(t *testing.T) {
		resp, body := g.get(t, c, "/keys/x", http.Header{"X-Api-Key": {readerKey}, "X-Gateway-Identity": {"forged"}})
		var e echo
		json.Unmarshal(body, &e)
		if resp.StatusCode != 200 || e.Header.Get("X-Gateway-Identity") != "" {
			t.Errorf("status %d, X-Gateway-Identity %q; want 200 and none (route has identity: false; the client's is removed)", resp.StatusCode, e.Header.Get("X-Gateway-Identity"))
		}
	})

	// Runs after the subtests above (they are not parallel).
	if len(unauthorized) < 10 {
		t.Fatalf("only %d 401 answers collected", len(unauthorized))
	}
	for i, b := range unauthorized {
		if b != unauthorized[0] {
			t.Errorf("401 body %d differs:\n%s\nvs\n%s", i, b, unauthorized[0])
		}
	}
	// The real reasons are in the metrics, never in the answers.
	_, metrics := adminRequest(t, g, "GET", "/metrics", adminToken)
	for _, reason := range []string{"expired", "invalid", "replayed", "revoked", "unknown_key"} {
		re := regexp.MustCompile(`breakwater_auth_failures_total\{authenticator="[a-z]+",reason="` + reason + `",route="[a-z]+"\} ([1-9][0-9]*)`)
		if !re.Match(metrics) {
			t.Errorf("no auth failure counted with reason %q", reason)
		}
	}
}

// verifyIdentity checks an X-Gateway-Identity token the way an upstream
// would: with the gateway's JWKS alone, using a JOSE library of its own.
func verifyIdentity(t *testing.T, g *gateway, c *http.Client, tok, route string) {
	t.Helper()
	if tok == "" {
		t.Fatal("the upstream got no X-Gateway-Identity")
	}
	_, raw := g.get(t, c, "/.well-known/jwks.json", nil)
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatalf("gateway JWKS: %v\n%s", err, raw)
	}
	keys, err := set.JWKSlice()
	if err != nil {
		t.Fatalf("gateway JWKS: %v\n%s", err, raw)
	}
	parsed, err := jwt.Parse(tok, func(tk *jwt.Token) (any, error) {
		for _, k := range keys {
			if k.Marshal().KID == tk.Header["kid"] {
				return k.Key(), nil
			}
		}
		return nil, fmt.Errorf("kid %v not in the JWKS", tk.Header["kid"])
	}, jwt.WithValidMethods([]string{"EdDSA", "ES256", "RS256"}), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("X-Gateway-Identity does not verify with the gateway's JWKS: %v", err)
	}
	claims := parsed.Claims.(jwt.MapClaims)
	if claims["sub"] != "acme" || claims["route"] != route || claims["request_id"] == "" {
		t.Errorf("identity claims %v; want sub acme, route %s, a request_id", claims, route)
	}
}
