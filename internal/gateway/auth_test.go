package gateway

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/secret"
	"github.com/breakwater/breakwater/internal/telemetry"
)

// jwksServer is an identity provider's key set on loopback that counts its
// fetches.
func jwksServer(t *testing.T) (url string, key ed25519.PrivateKey, fetches *atomic.Int32) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "k1", ALG: jwkset.AlgEdDSA}})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	if err != nil {
		t.Fatal(err)
	}
	fetches = new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(raw)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, priv, fetches
}

func signEdDSA(t *testing.T, key ed25519.PrivateKey, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const authGatewayConfig = `
version: 1
server: { admin: "off", data_dir: "${DATA}" }
tls: { self_signed: true }
authenticators:
  idp: { type: jwt, issuer: "https://idp.example.com", audience: api, jwks_url: "${JWKS}", algorithms: [EdDSA] }
  signed: { type: http_signature, required_components: ["@method", "content-digest"] }
token_endpoint: { issuer: "https://gw.example.com" }
consumers:
  - id: acme
    scopes: [read]
    credentials:
      - jwt: { authenticator: idp, subject: svc-acme }
      - http_signature: { key_id: k, alg: hmac-sha256, secret: "${SIG}" }
      - oauth_client: { client_id: acme-app, secret_hash: "${CLIENT_HASH}" }
routes:
  - { name: everything, path: "/**", upstream: { targets: ["${UPSTREAM}"] }, auth: [idp] }
  - { name: signed, path: "/signed", methods: [POST], upstream: { targets: ["${UPSTREAM}"] }, auth: [signed], max_body: 64 }
`

type authFixture struct {
	g       *Gateway
	cfgYAML string
	vars    map[string]string
	idpKey  ed25519.PrivateKey
	fetches *atomic.Int32
	sigKey  []byte
	seen    chan http.Header // headers the upstream received
}

func newAuthFixture(t *testing.T) *authFixture {
	t.Helper()
	f := &authFixture{seen: make(chan http.Header, 16), sigKey: make([]byte, 32)}
	rand.Read(f.sigKey)
	var jwksURL string
	jwksURL, f.idpKey, f.fetches = jwksServer(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case f.seen <- r.Header.Clone():
		default:
		}
	}))
	t.Cleanup(up.Close)
	f.vars = map[string]string{"UPSTREAM": up.URL, "DATA": t.TempDir(), "JWKS": jwksURL,
		"SIG": base64.StdEncoding.EncodeToString(f.sigKey), "CLIENT_HASH": secret.SumString("cs_secret").String()}
	f.cfgYAML = authGatewayConfig
	g, err := New(context.Background(), f.parse(t), Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	f.g = g
	return f
}

func (f *authFixture) parse(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(f.cfgYAML), "", func(k string) (string, bool) { v, ok := f.vars[k]; return v, ok })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

func (f *authFixture) token(t *testing.T) string {
	return signEdDSA(t, f.idpKey, jwt.MapClaims{"iss": "https://idp.example.com", "aud": "api", "sub": "svc-acme",
		"exp": time.Now().Add(time.Hour).Unix(), "scope": "read"})
}

func (f *authFixture) serve(r *http.Request) *httptest.ResponseRecorder {
	r.RemoteAddr = "192.0.2.1:1234"
	w := httptest.NewRecorder()
	f.g.ServeHTTP(w, r)
	return w
}

// A reload reuses the identity provider's key set instead of fetching it
// again; a config without the provider stops using it.
func TestJWKSOutlivesReloads(t *testing.T) {
	f := newAuthFixture(t)
	r := httptest.NewRequest("GET", "/a", nil)
	r.Header.Set("Authorization", "Bearer "+f.token(t))
	if w := f.serve(r); w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	before := f.fetches.Load()
	for range 3 {
		if err := f.g.Apply(f.parse(t)); err != nil {
			t.Fatal(err)
		}
	}
	r = httptest.NewRequest("GET", "/a", nil)
	r.Header.Set("Authorization", "Bearer "+f.token(t))
	if w := f.serve(r); w.Code != 200 {
		t.Fatalf("after reloads: status %d", w.Code)
	}
	if got := f.fetches.Load(); got != before {
		t.Errorf("%d JWKS fetches after 3 reloads; want none (the key set is reused)", got-before)
	}
}

// The upstream gets an X-Gateway-Identity it can verify with the gateway's
// JWKS, and no bearer token.
func TestGatewayIdentity(t *testing.T) {
	f := newAuthFixture(t)
	r := httptest.NewRequest("GET", "/orders/1", nil)
	r.Header.Set("Authorization", "Bearer "+f.token(t))
	r.Header.Set("X-Gateway-Identity", "forged")
	if w := f.serve(r); w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	h := <-f.seen
	if h.Get("Authorization") != "" {
		t.Error("the bearer token reached the upstream")
	}
	tok := h.Get("X-Gateway-Identity")
	if tok == "" || tok == "forged" {
		t.Fatalf("X-Gateway-Identity %q", tok)
	}
	w := f.serve(httptest.NewRequest("GET", "/.well-known/jwks.json", nil))
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(w.Body.Bytes(), &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("JWKS: %v %s", err, w.Body)
	}
	keys, err := set.JWKSlice()
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(tok, claims, func(tk *jwt.Token) (any, error) {
		for _, k := range keys {
			if k.Marshal().KID == tk.Header["kid"] {
				return k.Key(), nil
			}
		}
		return nil, fmt.Errorf("unknown kid %v", tk.Header["kid"])
	}, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithExpirationRequired(), jwt.WithAudience("upstream"))
	if err != nil {
		t.Fatalf("identity does not verify: %v", err)
	}
	if claims["sub"] != "acme" || claims["route"] != "everything" || claims["scope"] != "read" || claims["request_id"] == "" {
		t.Errorf("claims %v", claims)
	}
}

// The gateway's endpoints are served before routing, even under a "/**"
// route, and counted under their own route name.
func TestOAuthEndpointsBeforeRoutes(t *testing.T) {
	f := newAuthFixture(t)
	for _, path := range []string{"/.well-known/jwks.json", "/.well-known/oauth-authorization-server"} {
		w := f.serve(httptest.NewRequest("GET", path, nil))
		if w.Code != 200 || !json.Valid(w.Body.Bytes()) {
			t.Errorf("GET %s: %d %s", path, w.Code, w.Body)
		}
	}
	r := httptest.NewRequest("POST", "/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth("acme-app", "cs_secret")
	w := f.serve(r)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"access_token"`) {
		t.Fatalf("token: %d %s", w.Code, w.Body)
	}
	r = httptest.NewRequest("POST", "/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth("acme-app", "wrong")
	if w := f.serve(r); w.Code != 401 || !strings.Contains(w.Body.String(), "invalid_client") {
		t.Errorf("wrong secret: %d %s", w.Code, w.Body)
	}
	events := f.g.Events().List(telemetry.EventQuery{Kind: telemetry.EventAuthFailure})
	found := false
	for _, ev := range events {
		found = found || (ev.Authenticator == "token_endpoint" && ev.Consumer == "acme-app")
	}
	if !found {
		t.Errorf("no security event for the failed client authentication: %+v", events)
	}
}

// A signed request whose body (read to check its digest) passes max_body
// is a 413, not a 401; within max_body the same request passes.
func TestSignatureBodyTooLarge(t *testing.T) {
	f := newAuthFixture(t)
	signed := func(body string) *http.Request {
		sum := sha256.Sum256([]byte(body))
		r := httptest.NewRequest("POST", "/signed", strings.NewReader(body))
		r.ContentLength = -1 // streamed: only reading finds the size
		digest := "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"
		params := fmt.Sprintf(`("@method" "content-digest");created=%d;keyid="k"`, time.Now().Unix())
		mac := hmac.New(sha256.New, f.sigKey)
		fmt.Fprintf(mac, "\"@method\": POST\n\"content-digest\": %s\n\"@signature-params\": %s", digest, params)
		r.Header.Set("Content-Digest", digest)
		r.Header.Set("Signature-Input", "sig="+params)
		r.Header.Set("Signature", "sig=:"+base64.StdEncoding.EncodeToString(mac.Sum(nil))+":")
		return r
	}
	if w := f.serve(signed(strings.Repeat("x", 64))); w.Code != 200 {
		t.Fatalf("body of max_body: status %d: %s", w.Code, w.Body)
	}
	if w := f.serve(signed(strings.Repeat("x", 65))); w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("body over max_body: status %d; want 413: %s", w.Code, w.Body)
	}
}
