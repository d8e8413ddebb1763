package jwtauth

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/breakwater/breakwater/internal/authn"
)

// idp is a JWKS endpoint over real TLS whose answer the test changes.
type idp struct {
	srv   *httptest.Server
	hits  atomic.Int64
	mu    sync.Mutex
	body  []byte
	code  int
	ctype string
	gate  chan struct{} // when set, requests wait for it to close
	delay time.Duration
}

func newIDP(t *testing.T, body []byte) *idp {
	t.Helper()
	p := &idp{body: body, code: http.StatusOK, ctype: "application/json"}
	p.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.hits.Add(1)
		p.mu.Lock()
		body, code, ctype, gate, delay := p.body, p.code, p.ctype, p.gate, p.delay
		p.mu.Unlock()
		if gate != nil {
			<-gate
		}
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(code)
		_, _ = w.Write(body)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) set(fn func(p *idp)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fn(p)
}

func (p *idp) jwks(t *testing.T, c *clock, mod func(*JWKSOptions)) *JWKS {
	t.Helper()
	o := JWKSOptions{URL: p.srv.URL + "/jwks.json", Client: p.srv.Client(), Now: c.Now, Timeout: 5 * time.Second}
	if mod != nil {
		mod(&o)
	}
	j, err := NewJWKS(o)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestJWKSRotation(t *testing.T) {
	f := keys(t)
	c := newClock()
	k1 := jwkOf(t, &f.rsa.PublicKey, "k1", "RS256")
	k2 := jwkOf(t, &f.ec256.PublicKey, "k2", "")
	k3 := jwkOf(t, f.ed.Public(), "k3", "EdDSA")
	p := newIDP(t, jwksDoc(t, k1))
	j := p.jwks(t, c, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	j.Start(ctx)
	j.Start(ctx) // a second Start does nothing
	waitFor(t, "first fetch", func() bool { return j.set.Load() != nil })
	ctxb := context.Background()
	if k, err := j.Key(ctxb, "k1"); err != nil || k.Alg != "RS256" {
		t.Fatalf("k1: %v %v", k, err)
	}

	// Rotation: an unknown kid triggers one refetch.
	p.set(func(p *idp) { p.body = jwksDoc(t, k1, k2) })
	if _, err := j.Key(ctxb, "k2"); err != nil {
		t.Fatalf("k2 after rotation: %v", err)
	}
	if n := p.hits.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
	// A second unknown kid within MinRefetch: no fetch (negative cache).
	p.set(func(p *idp) { p.body = jwksDoc(t, k1, k2, k3) })
	if _, err := j.Key(ctxb, "k3"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("k3 inside MinRefetch: %v", err)
	}
	if _, err := j.Key(ctxb, "junk"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("junk: %v", err)
	}
	if n := p.hits.Load(); n != 2 {
		t.Fatalf("%d fetches inside MinRefetch, want 2", n)
	}
	c.Advance(DefaultMinRefetch)
	if _, err := j.Key(ctxb, "k3"); err != nil {
		t.Fatalf("k3 after MinRefetch: %v", err)
	}
	if n := p.hits.Load(); n != 3 {
		t.Fatalf("%d fetches, want 3", n)
	}
	// Known kids never fetch.
	for range 10 {
		if _, err := j.Key(ctxb, "k1"); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.hits.Load(); n != 3 {
		t.Fatalf("%d fetches, want 3", n)
	}
	if ks, err := j.Keys(ctxb); err != nil || len(ks) != 3 {
		t.Fatalf("Keys: %v %v", ks, err)
	}
}

func TestJWKSPeriodicRefresh(t *testing.T) {
	f := keys(t)
	p := newIDP(t, jwksDoc(t, jwkOf(t, &f.rsa.PublicKey, "k1", "")))
	j := p.jwks(t, newClock(), func(o *JWKSOptions) { o.Refresh = 20 * time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	j.Start(ctx)
	waitFor(t, "refreshes", func() bool { return p.hits.Load() >= 3 })
	cancel()
	waitFor(t, "the last fetch", j.inflightDone)
	n := p.hits.Load()
	time.Sleep(200 * time.Millisecond)
	if p.hits.Load() != n {
		t.Fatal("refresh continued after the context ended")
	}
}

func TestJWKSProviderDownKeepsStaleKeys(t *testing.T) {
	f := keys(t)
	c := newClock()
	p := newIDP(t, jwksDoc(t, jwkOf(t, &f.ec256.PublicKey, "ec", "ES256")))
	j := p.jwks(t, c, nil)
	a := newAuth(t, j, c, func(o *Options) { o.CacheSize = -1 })
	tok := sign(t, jwt.SigningMethodES256, f.ec256, map[string]any{"kid": "ec"}, claimsAt(c))
	if _, err := a.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	for _, down := range []func(p *idp){
		func(p *idp) { p.code = http.StatusInternalServerError },
		func(p *idp) { p.code, p.body = http.StatusOK, []byte(`<html>maintenance</html>`) },
		func(p *idp) { p.body = []byte(`{"keys":[]}`) },
		func(p *idp) { p.body = []byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"weak"}]}`) },
		func(p *idp) { p.ctype = "text/html" },
	} {
		p.set(down)
		c.Advance(time.Minute)
		before := p.hits.Load()
		if _, err := j.Key(context.Background(), "new-kid"); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("unknown kid while down: %v", err)
		}
		if p.hits.Load() != before+1 {
			t.Fatal("no refetch attempted")
		}
		if _, err := a.Verify(context.Background(), tok); err != nil {
			t.Fatalf("stale key must keep working: %v", err)
		}
	}
	p.srv.Close()
	c.Advance(time.Minute)
	if _, err := a.Verify(context.Background(), tok); err != nil {
		t.Fatalf("stale key with the provider gone: %v", err)
	}
}

func TestJWKSConcurrentMissesShareOneFetch(t *testing.T) {
	f := keys(t)
	c := newClock()
	p := newIDP(t, jwksDoc(t, jwkOf(t, &f.rsa.PublicKey, "k1", "")))
	j := p.jwks(t, c, nil)
	if _, err := j.Key(context.Background(), "k1"); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Hour)
	gate := make(chan struct{})
	p.set(func(p *idp) { p.gate = gate })
	var wg sync.WaitGroup
	var unknown atomic.Int64
	for i := range 50 {
		wg.Go(func() {
			_, err := j.Key(context.Background(), "missing-"+string(rune('a'+i%26)))
			if errors.Is(err, ErrUnknownKey) {
				unknown.Add(1)
			}
		})
	}
	waitFor(t, "the refetch to start", func() bool { return p.hits.Load() == 2 })
	time.Sleep(50 * time.Millisecond)
	close(gate)
	wg.Wait()
	if n := p.hits.Load(); n != 2 || unknown.Load() != 50 {
		t.Fatalf("%d fetches (want 2), %d unknown (want 50)", n, unknown.Load())
	}
}

func TestJWKSFirstFetchFails(t *testing.T) {
	f := keys(t)
	c := newClock()
	p := newIDP(t, nil)
	p.set(func(p *idp) { p.code = http.StatusServiceUnavailable })
	j := p.jwks(t, c, nil)
	j.Start(t.Context())
	waitFor(t, "first fetch", func() bool { return p.hits.Load() == 1 && j.inflightDone() })

	a := newAuth(t, j, c, nil)
	tok := sign(t, jwt.SigningMethodRS256, f.rsa, map[string]any{"kid": "k1"}, claimsAt(c))
	// The first request may retry at once (no on-demand fetch yet), later
	// ones only after MinRefetch.
	for range 3 {
		if _, err := a.Verify(context.Background(), tok); kindOf(err) != authn.Unavailable {
			t.Fatalf("want Unavailable, got %v", err)
		}
	}
	if n := p.hits.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
	noKid := sign(t, jwt.SigningMethodRS256, f.rsa, nil, claimsAt(c))
	if _, err := a.Verify(context.Background(), noKid); kindOf(err) != authn.Unavailable {
		t.Fatalf("want Unavailable for a token without kid, got %v", err)
	}
	p.set(func(p *idp) { p.code, p.body = http.StatusOK, jwksDoc(t, jwkOf(t, &f.rsa.PublicKey, "k1", "")) })
	c.Advance(DefaultMinRefetch)
	if _, err := a.Verify(context.Background(), tok); err != nil {
		t.Fatalf("after the provider came back: %v", err)
	}
	if _, err := a.Verify(context.Background(), noKid); err != nil {
		t.Fatalf("token without kid, one key in the set: %v", err)
	}
}

// inflightDone reports whether no fetch is under way (tests only).
func (j *JWKS) inflightDone() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.inflight == nil
}

func TestJWKSLimits(t *testing.T) {
	f := keys(t)
	big := jwksDoc(t, jwkOf(t, &f.rsa.PublicKey, "k1", ""), json.RawMessage(`{"kty":"oct","pad":"`+strings.Repeat("x", 4096)+`"}`))
	for _, tc := range []struct {
		name string
		mod  func(p *idp)
		opt  func(o *JWKSOptions)
	}{
		{name: "oversized", mod: func(p *idp) { p.body = big }, opt: func(o *JWKSOptions) { o.MaxBytes = 2048 }},
		{name: "slow", mod: func(p *idp) { p.delay = 5 * time.Second }, opt: func(o *JWKSOptions) { o.Timeout = 100 * time.Millisecond }},
		{name: "status 404", mod: func(p *idp) { p.code = http.StatusNotFound }},
		{name: "status 204", mod: func(p *idp) { p.code = http.StatusNoContent }},
		{name: "not json", mod: func(p *idp) { p.ctype = "text/plain" }},
		{name: "bad json", mod: func(p *idp) { p.body = []byte(`{"keys":`) }},
		{name: "no keys member", mod: func(p *idp) { p.body = []byte(`{"kid":"k1"}`) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newIDP(t, jwksDoc(t, jwkOf(t, &f.rsa.PublicKey, "k1", "")))
			if tc.mod != nil {
				p.set(tc.mod)
			}
			j := p.jwks(t, newClock(), tc.opt)
			start := time.Now()
			if _, err := j.Key(context.Background(), "k1"); !errors.Is(err, ErrKeysUnavailable) {
				t.Fatalf("want ErrKeysUnavailable, got %v", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
	// The limit itself is accepted.
	p := newIDP(t, big)
	j := p.jwks(t, newClock(), func(o *JWKSOptions) { o.MaxBytes = int64(len(big)) })
	if _, err := j.Key(context.Background(), "k1"); err != nil {
		t.Fatalf("body of exactly MaxBytes: %v", err)
	}
}

func TestJWKSURL(t *testing.T) {
	for url, ok := range map[string]bool{
		"https://idp.example.com/jwks.json":      true,
		"https://10.0.0.1/jwks":                  true,
		"http://127.0.0.1:8080/jwks":             true,
		"http://127.1.2.3/jwks":                  true,
		"http://localhost/jwks":                  true,
		"http://LOCALHOST:99/jwks":               true,
		"http://[::1]:8080/jwks":                 true,
		"http://idp.example.com/jwks.json":       false,
		"http://10.0.0.1/jwks":                   false,
		"http://127.0.0.1.evil.example/jwks":     false,
		"http://localhost.evil.example/jwks":     false,
		"http://[::ffff:10.0.0.1]/jwks":          false,
		"ftp://idp.example.com/jwks":             false,
		"file:///etc/passwd":                     false,
		"https://user:pw@idp.example.com/jwks":   false,
		"https:///jwks":                          false,
		"idp.example.com/jwks":                   false,
		"":                                       false,
		"https://idp.example.com/jwks?x=%zz\x00": false,
	} {
		_, err := NewJWKS(JWKSOptions{URL: url})
		if (err == nil) != ok {
			t.Errorf("%q: err %v, want ok=%v", url, err, ok)
		}
	}
}

func TestJWKSRedirectMustStayHTTPS(t *testing.T) {
	f := keys(t)
	p := newIDP(t, jwksDoc(t, jwkOf(t, &f.rsa.PublicKey, "k1", "")))
	redir := httptest.NewTLSServer(http.RedirectHandler("http://idp.example.com/jwks.json", http.StatusFound))
	defer redir.Close()
	j, err := NewJWKS(JWKSOptions{URL: redir.URL, Client: redir.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Key(context.Background(), "k1"); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("redirect to http followed: %v", err)
	}
	ok := httptest.NewTLSServer(http.RedirectHandler(p.srv.URL, http.StatusFound))
	defer ok.Close()
	j, err = NewJWKS(JWKSOptions{URL: ok.URL, Client: p.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Key(context.Background(), "k1"); err != nil {
		t.Fatalf("https redirect: %v", err)
	}
}

func TestParseJWKSSkipsUnusableKeys(t *testing.T) {
	f := keys(t)
	rsaPriv := privateJWK(t, f.rsa, "rsa-private")
	ecPriv := privateJWK(t, f.ec256, "ec-private")
	doc := jwksDoc(t,
		jwkOf(t, &f.rsa.PublicKey, "good-rsa", ""),
		jwkOf(t, &f.ec256.PublicKey, "good-ec", "ES256"),
		jwkOf(t, f.ed.Public(), "good-ed", "EdDSA"),
		jwkOf(t, &f.rsaSmall.PublicKey, "small-rsa", ""),
		rsaPriv, ecPriv,
		json.RawMessage(`{"kty":"oct","k":"c2VjcmV0","kid":"hmac"}`),
		json.RawMessage(`{"kty":"EC","crv":"P-192","x":"AA","y":"AA","kid":"p192"}`),
		json.RawMessage(`{"kty":"OKP","crv":"X25519","x":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo","kid":"x25519"}`),
		json.RawMessage(`{"kty":"EC","crv":"P-256","x":"AQ","y":"AQ","kid":"off-curve"}`),
		withField(t, jwkOf(t, &f.ec384.PublicKey, "enc", ""), "use", "enc"),
		withField(t, jwkOf(t, &f.ec384.PublicKey, "sign-only", ""), "key_ops", []string{"sign"}),
		withField(t, jwkOf(t, &f.rsa2.PublicKey, "alg-mismatch", ""), "alg", "ES256"),
		withField(t, jwkOf(t, &f.rsa2.PublicKey, "alg-hs", ""), "alg", "HS256"),
		jwkOf(t, &f.rsa2.PublicKey, "good-rsa", ""), // duplicate kid
		json.RawMessage(`"not an object"`),
		json.RawMessage(`{"kty":"RSA","n":"`+strings.Repeat("A", 10)+`","e":"AQAB","kid":"tiny"}`),
		json.RawMessage(`{"kty":"RSA","n":"x","e":"AQAB","kid":"bad-b64!"}`),
	)
	set, skips, err := parseJWKS(doc)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, k := range set.all {
		kept = append(kept, k.ID)
	}
	if strings.Join(kept, ",") != "good-rsa,good-ec,good-ed" {
		t.Fatalf("kept %v", kept)
	}
	for _, s := range skips {
		t.Logf("skipped %d %q: %s", s.index, s.kid, s.reason)
	}
	if len(skips) != 15 {
		t.Fatalf("%d skipped: %+v", len(skips), skips)
	}
	if got, _ := set.byKID["good-rsa"].Public.(*rsa.PublicKey); got == nil || !got.Equal(&f.rsa.PublicKey) {
		t.Fatal("duplicate kid replaced the first key")
	}
}

func privateJWK(t *testing.T, key any, kid string) json.RawMessage {
	t.Helper()
	j, err := jwkset.NewJWKFromKey(key, jwkset.JWKOptions{Marshal: jwkset.JWKMarshalOptions{Private: true}, Metadata: jwkset.JWKMetadataOptions{KID: kid}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(j.Marshal())
	if !strings.Contains(string(b), `"d":`) {
		t.Fatalf("no private part in %s", b)
	}
	return b
}

func withField(t *testing.T, jwk json.RawMessage, k string, v any) json.RawMessage {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(jwk, &m); err != nil {
		t.Fatal(err)
	}
	m[k] = v
	b, _ := json.Marshal(m)
	return b
}

func TestJWKSPlainHTTPOnLoopback(t *testing.T) {
	f := keys(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(jwksDoc(t, jwkOf(t, f.ed.Public(), "ed", "")))
	}))
	defer srv.Close()
	j, err := NewJWKS(JWKSOptions{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if k, err := j.Key(context.Background(), "ed"); err != nil || !usable(k, "EdDSA") {
		t.Fatalf("%v %v", k, err)
	}
}
