package httpsig

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/authn"
	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/secret"
)

const testNow = 1_700_000_000

func testClock() time.Time { return time.Unix(testNow, 0) }

// nonceStore is a state.Nonces that counts calls and can fail.
type nonceStore struct {
	mu    sync.Mutex
	seen  map[string]time.Duration
	calls int
	err   error
}

func (s *nonceStore) Claim(_ context.Context, key string, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.err != nil {
		return false, s.err
	}
	if s.seen == nil {
		s.seen = map[string]time.Duration{}
	}
	if _, ok := s.seen[key]; ok {
		return false, nil
	}
	s.seen[key] = ttl
	return true, nil
}

type signer func(base []byte) []byte

func hmacSigner(t testing.TB) signer {
	secret, err := base64.StdEncoding.DecodeString(rfcSharedSecret)
	if err != nil {
		t.Fatal(err)
	}
	return func(base []byte) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write(base)
		return m.Sum(nil)
	}
}

func edSigner(t testing.TB) signer {
	k := rfcEdPrivateKey(t)
	return func(base []byte) []byte { return ed25519Sign(k, base) }
}

func ecSigner(t testing.TB) signer {
	k := rfcECCPrivateKey(t)
	return func(base []byte) []byte {
		h := sha256.Sum256(base)
		r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
		if err != nil {
			t.Fatal(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
}

// sign sets Signature-Input to label=inner and Signature to the signature
// of the base this package computes for it.
func sign(t testing.TB, a *Authenticator, r *http.Request, label, inner string, s signer) {
	t.Helper()
	r.Header.Set("Signature-Input", label+"="+inner)
	r.Header.Set("Signature", label+"=:"+base64.StdEncoding.EncodeToString(s([]byte(baseOf(t, a, r))))+":")
}

func sha256Digest(body string) string {
	s := sha256.Sum256([]byte(body))
	return "sha-256=:" + base64.StdEncoding.EncodeToString(s[:]) + ":"
}

func TestAuthenticate(t *testing.T) {
	hs, es, cs := hmacSigner(t), edSigner(t), ecSigner(t)
	const (
		ed   = `keyid="test-key-ed25519"`
		hm   = `keyid="test-shared-secret"`
		ec   = `keyid="test-key-ecc-p256"`
		std  = `("@method" "@target-uri")`
		body = `{"order": 42}`
	)
	created := fmt.Sprintf(";created=%d;", testNow)
	for _, tc := range []struct {
		name     string
		method   string
		target   string
		body     string
		headers  map[string]string
		label    string
		inner    string // signed as label=inner
		signer   signer
		sigInput string // raw Signature-Input, not signed (when set)
		sig      string // raw Signature (when set)
		after    func(r *http.Request)
		opts     func(o *Options)
		consumer *authn.Consumer
		kind     authn.FailureKind
		noCred   bool
		tooLarge bool
	}{
		{name: "ed25519", inner: std + created + ed, signer: es, consumer: acme},
		{name: "hmac", inner: std + created + hm, signer: hs, consumer: acme},
		{name: "ecdsa", inner: std + created + ec, signer: cs, consumer: beta},
		{name: "alg matches", inner: std + created + ed + `;alg="ed25519"`, signer: es, consumer: acme},
		{name: "nonce", inner: std + created + ed + `;nonce="n-1"`, signer: es, consumer: acme},
		{name: "unknown parameters are signed, not interpreted", inner: std + created + ed + `;tag="app";x-ext=1.5`, signer: es, consumer: acme},
		{name: "no headers", noCred: true},
		{name: "created at max age", inner: std + fmt.Sprintf(";created=%d;", testNow-60) + ed, signer: es, consumer: acme},
		{name: "created within skew", inner: std + fmt.Sprintf(";created=%d;", testNow+5) + ed, signer: es, consumer: acme},
		{name: "expires in the future", inner: std + created + ed + fmt.Sprintf(";expires=%d", testNow+10), signer: es, consumer: acme},
		{name: "second label has the known keyid", sigInput: `other=("@method");created=1;keyid="nobody", `, inner: std + created + ed, signer: es, consumer: acme},
		{
			name: "content-digest", method: "POST", body: body, headers: map[string]string{"Content-Digest": sha256Digest(body)},
			inner: `("@method" "@target-uri" "content-digest")` + created + ed, signer: es, consumer: acme,
			opts: func(o *Options) { o.RequiredComponents = append(o.RequiredComponents, "content-digest") },
		},
		{
			name: "query parameter and dictionary member", target: "/v1/orders?id=acme-1&x=y", headers: map[string]string{"Example-Dict": " a=1, b=2;x=1;y=2, c=(a b c)"},
			inner: `("@method" "@target-uri" "@query-param";name="id" "example-dict";key="b" "example-dict";key="c")` + created + ed, signer: es, consumer: acme,
			opts: func(o *Options) { o.RequiredComponents = append(o.RequiredComponents, `@query-param;name="id"`) },
		},
		{
			name: "byte sequence wrapped field", headers: map[string]string{"X-Thing": "a, b"},
			inner: `("@method" "@target-uri" "x-thing";bs "@request-target" "@scheme" "@path" "@query")` + created + ed, signer: es, consumer: acme,
		},

		// Attacks.
		{name: "replayed nonce", inner: std + created + ed + `;nonce="seen"`, signer: es, kind: authn.Replayed},
		{name: "stale created", inner: std + fmt.Sprintf(";created=%d;", testNow-61) + ed, signer: es, kind: authn.Expired},
		{name: "created in the future", inner: std + fmt.Sprintf(";created=%d;", testNow+6) + ed, signer: es, kind: authn.Expired},
		{name: "expired", inner: std + fmt.Sprintf(";created=%d;expires=%d;", testNow-30, testNow-10) + ed, signer: es, kind: authn.Expired},
		{name: "expires before created", inner: std + fmt.Sprintf(";created=%d;expires=%d;", testNow, testNow-1) + ed, signer: es, kind: authn.Invalid},
		{name: "missing created", inner: std + ";" + ed, signer: es, kind: authn.Invalid},
		{name: "created not an integer", inner: std + `;created="1700000000";` + ed, signer: es, kind: authn.Malformed},
		{name: "created negative", inner: std + `;created=-1;` + ed, signer: es, kind: authn.Malformed},
		{
			name: "tampered body", method: "POST", body: body, headers: map[string]string{"Content-Digest": sha256Digest(body)},
			inner: `("@method" "@target-uri" "content-digest")` + created + ed, signer: es, kind: authn.Invalid,
			after: func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader(`{"order": 43}`)) },
		},
		{
			name: "content-digest covered but absent", method: "POST", body: body,
			sigInput: `sig1=("@method" "@target-uri" "content-digest")` + created + ed, sig: `sig1=:` + strings.Repeat("A", 86) + `==:`, kind: authn.Invalid,
		},
		{
			name: "content-digest dropped after signing", method: "POST", body: body, headers: map[string]string{"Content-Digest": sha256Digest(body)},
			inner: `("@method" "@target-uri" "content-digest")` + created + ed, signer: es, kind: authn.Invalid,
			after: func(r *http.Request) { r.Header.Del("Content-Digest") },
		},
		{
			name: "content-digest not required, so not covered", method: "POST", body: body, headers: map[string]string{"Content-Digest": sha256Digest(body)},
			inner: std + created + ed, signer: es, kind: authn.Invalid,
			opts: func(o *Options) { o.RequiredComponents = append(o.RequiredComponents, "content-digest") },
		},
		{name: "required component not covered", inner: `("@method")` + created + ed, signer: es, kind: authn.Invalid},
		{name: "required query parameter not covered", inner: std + created + ed, signer: es, kind: authn.Invalid, target: "/x?id=1",
			opts: func(o *Options) { o.RequiredComponents = []string{`@query-param;name="id"`} }},
		{name: "unknown keyid", inner: std + created + `keyid="test-key-nobody"`, signer: es, kind: authn.Unknown},
		{name: "no keyid", inner: std + created[:len(created)-1], signer: es, kind: authn.Unknown},
		{name: "keyid not a string", sigInput: `sig1=("@method");created=1;keyid=tok`, sig: `sig1=:AA==:`, kind: authn.Malformed},
		{name: "alg mismatch", inner: std + created + ed + `;alg="hmac-sha256"`, signer: es, kind: authn.Invalid},
		{name: "hmac key used as ed25519 keyid", inner: std + created + ed, signer: hs, kind: authn.Invalid},
		{name: "duplicate signature-input labels", sigInput: `sig1=("@method");created=1;keyid="x", sig1=("@method" "@target-uri")` + created + ed, sig: `sig1=:AA==:`, kind: authn.Malformed},
		{name: "duplicate signature labels", inner: std + created + ed, signer: es, kind: authn.Malformed,
			after: func(r *http.Request) { r.Header.Set("Signature", r.Header.Get("Signature")+", sig1=:AA==:") }},
		{name: "duplicate parameter", sigInput: `sig1=` + std + created + ed + fmt.Sprintf(";created=%d", testNow), sig: `sig1=:AA==:`, kind: authn.Malformed},
		{name: "signature-input not a dictionary", sigInput: `("@method");created=1`, sig: `sig1=:AA==:`, kind: authn.Malformed},
		{name: "signature-input member not an inner list", sigInput: `sig1="@method";keyid="test-key-ed25519"`, sig: `sig1=:AA==:`, kind: authn.Malformed},
		{name: "unterminated inner list", sigInput: `sig1=("@method" "@target-uri";created=1;` + ed, sig: `sig1=:AA==:`, kind: authn.Malformed},
		{name: "unterminated string", sigInput: `sig1=("@method)`, sig: `sig1=:AA==:`, kind: authn.Malformed},
		{name: "control character in string", sigInput: "sig1=(\"@me\x01thod\")", sig: `sig1=:AA==:`, kind: authn.Malformed},
		{name: "trailing comma", sigInput: `sig1=("@method"),`, sig: `sig1=:AA==:`, kind: authn.Malformed},
		{name: "signature not a byte sequence", inner: std + created + ed, signer: es, kind: authn.Malformed,
			after: func(r *http.Request) { r.Header.Set("Signature", `sig1="abc"`) }},
		{name: "signature bad base64", inner: std + created + ed, signer: es, kind: authn.Malformed,
			after: func(r *http.Request) { r.Header.Set("Signature", `sig1=:@@@@:`) }},
		{name: "signature missing the label", inner: std + created + ed, signer: es, kind: authn.Malformed,
			after: func(r *http.Request) { r.Header.Set("Signature", `sig2=:AA==:`) }},
		{name: "signature-input without signature", inner: std + created + ed, signer: es, kind: authn.Malformed,
			after: func(r *http.Request) { r.Header.Del("Signature") }},
		{name: "signature without signature-input", inner: std + created + ed, signer: es, kind: authn.Malformed,
			after: func(r *http.Request) { r.Header.Del("Signature-Input") }},
		{name: "empty headers", sigInput: " ", sig: " ", kind: authn.Malformed},
		{name: "signature of zeros (ed25519)", inner: std + created + ed, signer: func([]byte) []byte { return make([]byte, 64) }, kind: authn.Invalid},
		{name: "signature of zeros (hmac)", inner: std + created + hm, signer: func([]byte) []byte { return make([]byte, 32) }, kind: authn.Invalid},
		{name: "signature of zeros (ecdsa)", inner: std + created + ec, signer: func([]byte) []byte { return make([]byte, 64) }, kind: authn.Invalid},
		{name: "empty signature", inner: std + created + hm, signer: func([]byte) []byte { return nil }, kind: authn.Invalid},
		{name: "truncated signature (ed25519)", inner: std + created + ed, signer: func(b []byte) []byte { return es(b)[:63] }, kind: authn.Invalid},
		{name: "truncated signature (hmac)", inner: std + created + hm, signer: func(b []byte) []byte { return hs(b)[:16] }, kind: authn.Invalid},
		{name: "ecdsa as ASN.1", inner: std + created + ec, kind: authn.Invalid, signer: func(b []byte) []byte {
			h := sha256.Sum256(b)
			der, _ := ecdsa.SignASN1(rand.Reader, rfcECCPrivateKey(t), h[:])
			return der
		}},
		{name: "method changed after signing", inner: std + created + ed, signer: es, kind: authn.Invalid,
			after: func(r *http.Request) { r.Method = "DELETE" }},
		{name: "host changed after signing", inner: std + created + ed, signer: es, kind: authn.Invalid,
			after: func(r *http.Request) { r.Host = "evil.example" }},
		{name: "path re-encoded after signing", target: "/a/%7Euser", inner: std + created + ed, signer: es, kind: authn.Invalid,
			after: func(r *http.Request) { r.RequestURI = "/a/~user" }},
		{name: "status on a request", sigInput: `sig1=("@method" "@target-uri" "@status")` + created + ed, sig: `sig1=:AA==:`, kind: authn.Invalid},
		{name: "signature-params covered", sigInput: `sig1=("@method" "@target-uri" "@signature-params")` + created + ed, sig: `sig1=:AA==:`, kind: authn.Invalid},
		{name: "unknown derived component", sigInput: `sig1=("@method" "@target-uri" "@bogus")` + created + ed, sig: `sig1=:AA==:`, kind: authn.Invalid},
		{name: "uppercase field name", headers: map[string]string{"Date": "x"}, sigInput: `sig1=("@method" "@target-uri" "Date")` + created + ed, sig: `sig1=:AA==:`, kind: authn.Invalid},
		{name: "sf parameter unsupported", headers: map[string]string{"X-A": "1"}, sigInput: `sig1=("@method" "@target-uri" "x-a";sf)` + created + ed, sig: `sig1=:AA==:`, kind: authn.Invalid},
		{name: "req parameter on a request", headers: map[string]string{"X-A": "1"}, sigInput: `sig1=("@method" "@target-uri" "x-a";req)` + created + ed, sig: `sig1=:AA==:`, kind: authn.Invalid},
		{name: "tr parameter unsupported", headers: map[string]string{"X-A": "1"}, sigInput: `sig1=("@method" "@target-uri" "x-a";tr)` + created + ed, sig: `sig1=:AA==:`, kind: authn.Invalid},
		{name: "name parameter on a field", headers: map[string]string{"X-A": "1"}, sigInput: `sig1=("@method" "@target-uri" "x-a";name="x")` + created + ed, sig: `sig1=:AA==:`, kind: authn.Invalid},
		{name: "query-param without name", sigInput: `sig1=("@method" "@target-uri" "@query-param")` + created + ed, sig: `sig1=:AA==:`, kind: authn.Invalid},
		{name: "query-param repeated in the query", target: "/x?id=1&id=2", sigInput: `sig1=("@method" "@target-uri" "@query-param";name="id")` + created + ed, sig: `sig1=:AA==:`, kind: authn.Invalid},
		{name: "query-param absent", target: "/x?a=1", sigInput: `sig1=("@method" "@target-uri" "@query-param";name="id")` + created + ed, sig: `sig1=:AA==:`, kind: authn.Invalid},
		{name: "component not a string", sigInput: `sig1=("@method" "@target-uri" date)` + created + ed, sig: `sig1=:AA==:`, kind: authn.Invalid},
		{name: "component covered twice", sigInput: `sig1=("@method" "@target-uri" "@method")` + created + ed, sig: `sig1=:AA==:`, kind: authn.Malformed},
		{name: "covered field absent", sigInput: `sig1=("@method" "@target-uri" "x-missing")` + created + ed, sig: `sig1=:AA==:`, kind: authn.Invalid},
		{name: "dictionary key absent", headers: map[string]string{"X-D": "a=1"}, sigInput: `sig1=("@method" "@target-uri" "x-d";key="b")` + created + ed, sig: `sig1=:AA==:`, kind: authn.Invalid},
		{name: "too many components", sigInput: `sig1=("@method" "@target-uri"` + strings.Repeat(` "x"`, MaxComponents) + `)` + created + ed, sig: `sig1=:AA==:`, kind: authn.Malformed},
		{name: "too many signatures", sigInput: manyLabels(MaxSignatures) + `sig1=("@method" "@target-uri")` + created + ed, sig: `sig1=:AA==:`, kind: authn.Malformed},
		{name: "signature-input too large", sigInput: `sig1=("@method" "@target-uri")` + created + ed + `;x="` + strings.Repeat("a", MaxHeaderBytes) + `"`, sig: `sig1=:AA==:`, kind: authn.Malformed},
		{name: "signature too large over many lines", inner: std + created + ed, signer: es, kind: authn.Malformed, after: func(r *http.Request) {
			for range 10 {
				r.Header.Add("Signature", "s"+strings.Repeat("a", 1000)+"=:AA==:")
			}
		}},
		{name: "nonce too long", inner: std + created + ed + `;nonce="` + strings.Repeat("n", MaxNonceLen+1) + `"`, signer: es, kind: authn.Malformed},
		{name: "nonce required but absent", inner: std + created + ed, signer: es, kind: authn.Invalid, opts: func(o *Options) { o.RequireNonce = true }},
		{name: "nonce store down", inner: std + created + ed + `;nonce="n-2"`, signer: es, kind: authn.Unavailable,
			opts: func(o *Options) { o.Nonces = &nonceStore{err: errors.New("redis: connection refused")} }},
		{name: "first known label decides", sigInput: `sig0=("@method" "@target-uri")` + created + hm + `, `, sig: `sig0=:` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `:, `,
			inner: std + created + ed, signer: es, kind: authn.Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nonces := &nonceStore{seen: map[string]time.Duration{"test-key-ed25519\x00seen": time.Minute}}
			o := Options{Keys: rfcKeys(t), MaxAge: time.Minute, Now: testClock, Nonces: nonces,
				RequiredComponents: DefaultRequiredComponents()}
			if tc.opts != nil {
				tc.opts(&o)
			}
			a, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			method, target := tc.method, tc.target
			if method == "" {
				method = "GET"
			}
			if target == "" {
				target = "/v1/orders/acme-1?expand=items"
			}
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			r := httptest.NewRequest(method, target, body)
			r.Host = "api.example.com"
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			if tc.signer != nil {
				label := tc.label
				if label == "" {
					label = "sig1"
				}
				sign(t, a, r, label, tc.inner, tc.signer)
			}
			if tc.sigInput != "" {
				r.Header.Set("Signature-Input", tc.sigInput+r.Header.Get("Signature-Input"))
			}
			if tc.sig != "" {
				r.Header.Set("Signature", tc.sig+r.Header.Get("Signature"))
			}
			if tc.after != nil {
				tc.after(r)
			}
			storeCalls := nonces.calls
			c, err := a.Authenticate(r)
			switch {
			case tc.noCred:
				if !errors.Is(err, authn.ErrNoCredential) {
					t.Fatalf("want ErrNoCredential, got %v %v", c, err)
				}
			case tc.consumer != nil:
				if err != nil || c != tc.consumer {
					t.Fatalf("want %s, got %v %v", tc.consumer.ID, c, err)
				}
				if tc.body != "" {
					got, _ := io.ReadAll(r.Body)
					if string(got) != tc.body {
						t.Fatalf("upstream body %q, want %q", got, tc.body)
					}
				}
			default:
				var f *authn.Failure
				if !errors.As(err, &f) || f.Kind != tc.kind {
					t.Fatalf("want failure kind %d, got %v %v", tc.kind, c, err)
				}
				t.Logf("reason: %s", f.Reason)
				if strings.Contains(f.Reason, "\x00") || len(f.Reason) > 200 {
					t.Fatalf("reason must be short and quote no client data: %q", f.Reason)
				}
				// Nonces are only claimed for verified signatures.
				if f.Kind != authn.Replayed && f.Kind != authn.Unavailable && nonces.calls != storeCalls {
					t.Fatal("nonce claimed for a rejected request")
				}
			}
		})
	}
}

func TestReplayAcrossRequests(t *testing.T) {
	nonces := &nonceStore{}
	a, err := New(Options{Keys: rfcKeys(t), MaxAge: time.Minute, Now: testClock, Nonces: nonces, RequireNonce: true})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/x", nil)
	sign(t, a, r, "sig1", fmt.Sprintf(`("@method" "@target-uri");created=%d;keyid="test-key-ed25519";nonce="abc"`, testNow), edSigner(t))
	if c, err := a.Authenticate(r); err != nil || c != acme {
		t.Fatalf("first use: %v %v", c, err)
	}
	wantFailure(t, a, r, authn.Replayed)
	if ttl := nonces.seen["test-key-ed25519\x00abc"]; ttl != time.Minute+DefaultSkew {
		t.Fatalf("nonce ttl %v, want max age + skew", ttl)
	}
}

func TestBodyLimits(t *testing.T) {
	body := strings.Repeat("b", 2048)
	a, err := New(Options{Keys: rfcKeys(t), MaxAge: time.Minute, Now: testClock, MaxBody: 1024})
	if err != nil {
		t.Fatal(err)
	}
	inner := fmt.Sprintf(`("@method" "content-digest");created=%d;keyid="test-key-ed25519"`, testNow)
	for _, tc := range []struct {
		name string
		set  func(r *http.Request)

		limit int64
	}{
		{"gateway MaxBytesReader", func(r *http.Request) {
			r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 100)
			r.ContentLength = -1
		}, 100},
		{"content-length over MaxBody", func(*http.Request) {}, 1024},
		{"chunked over MaxBody", func(r *http.Request) { r.ContentLength = -1 }, 1024},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/x", strings.NewReader(body))
			r.Header.Set("Content-Digest", sha256Digest(body))
			sign(t, a, r, "sig1", inner, edSigner(t))
			tc.set(r)
			_, err := a.Authenticate(r)
			if e, ok := errors.AsType[*http.MaxBytesError](err); !ok || e.Limit != tc.limit {
				t.Fatalf("want *http.MaxBytesError with limit %d, got %v", tc.limit, err)
			}
		})
	}
}

// TestOverTLS runs the authenticator behind a real TLS server, signed by a
// client that builds the signature base by hand (independently of this
// package), and checks the upstream handler still reads the whole body.
func TestOverTLS(t *testing.T) {
	nonces := &nonceStore{}
	a, err := New(Options{Keys: rfcKeys(t), MaxAge: time.Minute, Nonces: nonces, RequireNonce: true,
		RequiredComponents: []string{"@method", "@target-uri", "content-digest"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		c, err := a.Authenticate(r)
		if err != nil {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %d", c.ID, len(b))
	}))
	defer srv.Close()
	priv := rfcEdPrivateKey(t)

	do := func(nonce, body, sentBody string) (int, string) {
		t.Helper()
		req, err := http.NewRequest("POST", srv.URL+"/v1/orders?a=1&b=%20x", strings.NewReader(sentBody))
		if err != nil {
			t.Fatal(err)
		}
		s := sha512.Sum512([]byte(body))
		digest := "sha-512=:" + base64.StdEncoding.EncodeToString(s[:]) + ":"
		params := fmt.Sprintf(`("@method" "@target-uri" "content-digest");created=%d;keyid="test-key-ed25519";nonce="%s"`, time.Now().Unix(), nonce)
		base := "\"@method\": POST\n" +
			"\"@target-uri\": https://" + req.URL.Host + "/v1/orders?a=1&b=%20x\n" +
			"\"content-digest\": " + digest + "\n" +
			"\"@signature-params\": " + params
		req.Header.Set("Content-Digest", digest)
		req.Header.Set("Signature-Input", "sig1="+params)
		req.Header.Set("Signature", "sig1=:"+base64.StdEncoding.EncodeToString(ed25519Sign(priv, []byte(base)))+":")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	body := strings.Repeat("x", 70_000)
	if code, got := do("n1", body, body); code != 200 || got != "acme 70000" {
		t.Fatalf("signed request: %d %q", code, got)
	}
	if code, _ := do("n1", body, body); code != 401 {
		t.Fatalf("replay: %d", code)
	}
	if code, _ := do("n2", body, body+"!"); code != 401 {
		t.Fatalf("tampered body: %d", code)
	}
	if nonces.calls != 2 {
		t.Fatalf("nonce store calls %d, want 2 (the tampered request must not claim)", nonces.calls)
	}
}

func TestQueryParam(t *testing.T) {
	// RFC 9421 §2.2.8.
	q := "var=this%20is%20a%20big%0Avalue&bar=with+plus+whitespace&fa%C3%A7ade%22%3A%20=something"
	for _, tc := range []struct{ name, want string }{
		{"var", "this%20is%20a%20big%0Avalue"},
		{"bar", "with%20plus%20whitespace"},
		{"fa%C3%A7ade%22%3A%20", "something"},
	} {
		v, err := queryParam(q, tc.name)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := string(appendFormEncoded(nil, v)); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	for _, bad := range []string{"var=%", "var=%4", "var=%zz"} {
		if _, err := queryParam(bad, "var"); err == nil {
			t.Errorf("%q: want error", bad)
		}
	}
}

func TestTargetForms(t *testing.T) {
	a, err := New(Options{Keys: rfcKeys(t), MaxAge: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ uri, host, want string }{
		{"/p?q=1", "Example.COM:443", "https://example.com/p?q=1"},
		{"/p?", "example.com", "https://example.com/p?"},
		{"/p", "example.com:8443", "https://example.com:8443/p"},
		{"https://example.com", "example.com", "https://example.com/"},
		{"https://example.com?x", "example.com", "https://example.com/?x"},
		{"http://example.com/a%2fb", "example.com", "https://example.com/a%2fb"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RequestURI, r.Host = tc.uri, tc.host
		tg := parseTarget(r)
		got, err := a.appendDerived(nil, r, &tg, &component{name: "@target-uri"})
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: got %q %v, want %q", tc.uri, got, err, tc.want)
		}
	}
	r := httptest.NewRequest("OPTIONS", "/", nil)
	r.RequestURI = "*"
	tg := parseTarget(r)
	if _, err := a.appendDerived(nil, r, &tg, &component{name: "@path"}); err == nil {
		t.Error("@path of an asterisk-form target must fail")
	}
}

func TestNew(t *testing.T) {
	keys := rfcKeys(t)
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"no max age", Options{Keys: keys}},
		{"negative skew", Options{Keys: keys, MaxAge: time.Minute, Skew: -1}},
		{"negative max body", Options{Keys: keys, MaxAge: time.Minute, MaxBody: -1}},
		{"bad scheme", Options{Keys: keys, MaxAge: time.Minute, Scheme: "ftp"}},
		{"nonce required without store", Options{Keys: keys, MaxAge: time.Minute, RequireNonce: true}},
		{"duplicate key id", Options{Keys: append(keys, keys[0]), MaxAge: time.Minute}},
		{"zero key", Options{Keys: []Key{{ID: "x", Alg: AlgEd25519}}, MaxAge: time.Minute}},
		{"status required", Options{Keys: keys, MaxAge: time.Minute, RequiredComponents: []string{"@status"}}},
		{"bad required", Options{Keys: keys, MaxAge: time.Minute, RequiredComponents: []string{`@query-param;name=`}}},
		{"uppercase required", Options{Keys: keys, MaxAge: time.Minute, RequiredComponents: []string{"Date"}}},
	} {
		if _, err := New(tc.o); err == nil {
			t.Errorf("%s: want error", tc.name)
		}
	}
	a, err := New(Options{Keys: keys, MaxAge: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if a.Challenge() != `Signature realm="breakwater"` {
		t.Fatal(a.Challenge())
	}
	var _ authn.Authenticator = a
}

func TestKeys(t *testing.T) {
	secret32 := bytes.Repeat([]byte{7}, 32)
	for _, tc := range []struct {
		name string
		make func() (Key, error)
		ok   bool
	}{
		{"hmac", func() (Key, error) { return HMACKey("k", secret32, acme) }, true},
		{"hmac short", func() (Key, error) { return HMACKey("k", secret32[:31], acme) }, false},
		{"no id", func() (Key, error) { return HMACKey("", secret32, acme) }, false},
		{"no consumer", func() (Key, error) { return HMACKey("k", secret32, nil) }, false},
		{"ed25519", func() (Key, error) { return Ed25519Key("k", rfcEdPublic, acme) }, true},
		{"ed25519 given ecdsa", func() (Key, error) { return Ed25519Key("k", rfcECCPublic, acme) }, false},
		{"ed25519 not PEM", func() (Key, error) { return Ed25519Key("k", "MCowBQYDK2VwAyEAJrQLj5P", acme) }, false},
		{"ed25519 private key PEM", func() (Key, error) { return Ed25519Key("k", rfcEdPrivate, acme) }, false},
		{"ecdsa", func() (Key, error) { return ECDSAP256Key("k", rfcECCPublic, acme) }, true},
		{"ecdsa given ed25519", func() (Key, error) { return ECDSAP256Key("k", rfcEdPublic, acme) }, false},
		{"credential hmac", func() (Key, error) {
			return FromCredential(config.HTTPSignatureCredential{KeyID: "k", Alg: "hmac-sha256", Secret: secret.New(rfcSharedSecret)}, acme)
		}, true},
		{"credential hmac bad base64", func() (Key, error) {
			return FromCredential(config.HTTPSignatureCredential{KeyID: "k", Alg: "hmac-sha256", Secret: secret.New("not*base64")}, acme)
		}, false},
		{"credential ed25519", func() (Key, error) {
			return FromCredential(config.HTTPSignatureCredential{KeyID: "k", Alg: "ed25519", PublicKey: rfcEdPublic}, acme)
		}, true},
		{"credential ecdsa", func() (Key, error) {
			return FromCredential(config.HTTPSignatureCredential{KeyID: "k", Alg: "ecdsa-p256-sha256", PublicKey: rfcECCPublic}, acme)
		}, true},
		{"credential rsa", func() (Key, error) {
			return FromCredential(config.HTTPSignatureCredential{KeyID: "k", Alg: "rsa-pss-sha512"}, acme)
		}, false},
	} {
		k, err := tc.make()
		if (err == nil) != tc.ok {
			t.Errorf("%s: got %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), rfcSharedSecret[:10]) {
			t.Errorf("%s: error quotes the secret", tc.name)
		}
		if err == nil && k.ConsumerID != acme.ID {
			t.Errorf("%s: consumer id %q", tc.name, k.ConsumerID)
		}
	}
	// The secret is copied.
	k, _ := HMACKey("k", secret32, acme)
	secret32[0] = 0
	if k.secret[0] != 7 {
		t.Fatal("HMACKey kept the caller's slice")
	}
}

func manyLabels(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `s%d=("@method"), `, i)
	}
	return b.String()
}
