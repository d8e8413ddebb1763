package httpsig

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/authn"
)

// Keys and messages of RFC 9421 Appendix B (B.1.3, B.1.4, B.1.5, B.2).
const (
	rfcECCPublic = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqIVYZVLCrPZHGHjP17CTW0/+D9Lf
w0EkjqF7xB4FivAxzic30tMM4GF+hR6Dxh71Z50VGGdldkkDXZCnTNnoXQ==
-----END PUBLIC KEY-----`
	rfcECCPrivate = `-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIFKbhfNZfpDsW43+0+JjUr9K+bTeuxopu653+hBaXGA7oAoGCCqGSM49
AwEHoUQDQgAEqIVYZVLCrPZHGHjP17CTW0/+D9Lfw0EkjqF7xB4FivAxzic30tMM
4GF+hR6Dxh71Z50VGGdldkkDXZCnTNnoXQ==
-----END EC PRIVATE KEY-----`
	rfcEdPublic = `-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=
-----END PUBLIC KEY-----`
	rfcEdPrivate = `-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF
-----END PRIVATE KEY-----`
	rfcSharedSecret = "uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ=="

	rfcCreated       = 1618884473
	rfcBody          = `{"hello": "world"}`
	rfcContentDigest = "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"
	rfcClientCert    = "MIIBqDCCAU6gAwIBAgIBBzAKBggqhkjOPQQDAjA6MRswGQYDVQQKDBJMZXQncyBBdXRoZW50aWNhdGUxGzAZBgNVBAMMEkxBIEludGVybWVkaWF0ZSBDQTAeFw0yMDAxMTQyMjU1MzNaFw0yMTAxMjMyMjU1MzNaMA0xCzAJBgNVBAMMAkJDMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE8YnXXfaUgmnMtOXU/IncWalRhebrXmckC8vdgJ1p5Be5F/3YC8OthxM4+k1M6aEAEFcGzkJiNy6J84y7uzo9M6NyMHAwCQYDVR0TBAIwADAfBgNVHSMEGDAWgBRm3WjLa38lbEYCuiCPct0ZaSED2DAOBgNVHQ8BAf8EBAMCBsAwEwYDVR0lBAwwCgYIKwYBBQUHAwIwHQYDVR0RAQH/BBMwEYEPYmRjQGV4YW1wbGUuY29tMAoGCCqGSM49BAMCA0gAMEUCIBHda/r1vaL6G3VliL4/Di6YK0Q6bMjeSkC3dFCOOB8TAiEAx/kHSB4urmiZ0NX5r5XarmPk0wmuydBVoU4hBVZ1yhk="
)

var (
	acme = &authn.Consumer{ID: "acme", Scopes: []string{"orders:read"}, ScopeText: "orders:read"}
	beta = &authn.Consumer{ID: "beta"}
)

func rfcClock() time.Time { return time.Unix(rfcCreated, 0) }

func rfcKeys(t testing.TB) []Key {
	t.Helper()
	secret, err := base64.StdEncoding.DecodeString(rfcSharedSecret)
	if err != nil {
		t.Fatal(err)
	}
	hk, err := HMACKey("test-shared-secret", secret, acme)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := Ed25519Key("test-key-ed25519", rfcEdPublic, acme)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := ECDSAP256Key("test-key-ecc-p256", rfcECCPublic, beta)
	if err != nil {
		t.Fatal(err)
	}
	return []Key{hk, ek, ck}
}

func rfcEdPrivateKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	b, _ := pem.Decode([]byte(rfcEdPrivate))
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(ed25519.PrivateKey)
}

func rfcECCPrivateKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	b, _ := pem.Decode([]byte(rfcECCPrivate))
	k, err := x509.ParseECPrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rfcRequest is the test-request of RFC 9421 §B.2 as a server sees it.
func rfcRequest() *http.Request {
	r := httptest.NewRequest("POST", "/foo?param=Value&Pet=dog", strings.NewReader(rfcBody))
	r.Host = "example.com"
	r.Header.Set("Date", "Tue, 20 Apr 2021 02:07:55 GMT")
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Content-Digest", rfcContentDigest)
	r.Header.Set("Content-Length", "18")
	return r
}

// rfcProxyRequest is the request of RFC 9421 §B.3 (TLS-terminating proxy).
func rfcProxyRequest() *http.Request {
	r := httptest.NewRequest("POST", "/foo?param=Value&Pet=dog", strings.NewReader(rfcBody))
	r.Host = "service.internal.example"
	r.Header.Set("Date", "Tue, 20 Apr 2021 02:07:55 GMT")
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Content-Length", "18")
	r.Header.Set("Client-Cert", ":"+rfcClientCert+":")
	return r
}

func TestRFC9421Vectors(t *testing.T) {
	a, err := New(Options{Keys: rfcKeys(t), MaxAge: time.Minute, Now: rfcClock})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		req      func() *http.Request
		input    string
		sig      string
		base     string
		consumer *authn.Consumer
		tamper   func(r *http.Request)
	}{
		{
			name:  "B.2.5 hmac-sha256",
			req:   rfcRequest,
			input: `sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"`,
			sig:   `sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:`,
			base: `"date": Tue, 20 Apr 2021 02:07:55 GMT
"@authority": example.com
"content-type": application/json
"@signature-params": ("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"`,
			consumer: acme,
			tamper:   func(r *http.Request) { r.Header.Set("Content-Type", "application/jsom") },
		},
		{
			name: "B.2.6 ed25519",
			req:  rfcRequest,
			// RFC 8792 line wrapping removed.
			input: `sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`,
			sig:   `sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:`,
			base: `"date": Tue, 20 Apr 2021 02:07:55 GMT
"@method": POST
"@path": /foo
"@authority": example.com
"content-type": application/json
"content-length": 18
"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`,
			consumer: acme,
			tamper:   func(r *http.Request) { r.Method = "PUT" },
		},
		{
			name:  "B.3 ecdsa-p256-sha256 (proxy request)",
			req:   rfcProxyRequest,
			input: `ttrp=("@path" "@query" "@method" "@authority" "client-cert");created=1618884473;keyid="test-key-ecc-p256"`,
			sig:   `ttrp=:xVMHVpawaAC/0SbHrKRs9i8I3eOs5RtTMGCWXm/9nvZzoHsIg6Mce9315T6xoklyy0yzhD9ah4JHRwMLOgmizw==:`,
			base: `"@path": /foo
"@query": ?param=Value&Pet=dog
"@method": POST
"@authority": service.internal.example
"client-cert": :` + rfcClientCert + `:
"@signature-params": ("@path" "@query" "@method" "@authority" "client-cert");created=1618884473;keyid="test-key-ecc-p256"`,
			consumer: beta,
			tamper:   func(r *http.Request) { r.RequestURI = "/foo?param=Value&Pet=cat" },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.req()
			r.Header.Set("Signature-Input", tc.input)
			r.Header.Set("Signature", tc.sig)
			if got := baseOf(t, a, r); got != tc.base {
				t.Fatalf("signature base:\n%s\nwant:\n%s", got, tc.base)
			}
			c, err := a.Authenticate(r)
			if err != nil || c != tc.consumer {
				t.Fatalf("want %s, got %v %v", tc.consumer.ID, c, err)
			}

			// One byte of the signature changed.
			r = tc.req()
			r.Header.Set("Signature-Input", tc.input)
			r.Header.Set("Signature", flipBase64(t, tc.sig))
			wantFailure(t, a, r, authn.Invalid)

			// One byte of the message changed.
			r = tc.req()
			r.Header.Set("Signature-Input", tc.input)
			r.Header.Set("Signature", tc.sig)
			tc.tamper(r)
			wantFailure(t, a, r, authn.Invalid)
		})
	}
}

// TestRFC9421B24 checks ecdsa-p256-sha256 against the B.2.4 vector. It signs
// a response (@status), which this authenticator refuses on requests, so
// the signature is verified directly over the published base.
func TestRFC9421B24(t *testing.T) {
	k := rfcKeys(t)[2]
	base := `"@status": 200
"content-type": application/json
"content-digest": sha-512=:mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ==:
"content-length": 23
"@signature-params": ("@status" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-ecc-p256"`
	sig, _ := base64.StdEncoding.DecodeString("wNmSUAhwb5LxtOtOpNa6W5xj067m5hFrj0XQ4fvpaCLx0NKocgPquLgyahnzDnDAUy5eCdlYUEkLIj+32oiasw==")
	if !k.verify([]byte(base), sig) {
		t.Fatal("B.2.4 does not verify")
	}
	sig[10] ^= 1
	if k.verify([]byte(base), sig) {
		t.Fatal("B.2.4 with a flipped bit verifies")
	}
}

// TestRFC9421Bases checks signature bases of RFC 9421 whose signatures use
// RSA (not supported here): §2.5 Figure 1, B.2.2 and B.2.3.
func TestRFC9421Bases(t *testing.T) {
	a, err := New(Options{Keys: rfcKeys(t), MaxAge: time.Minute, Now: rfcClock})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ input, base string }{
		{
			`sig1=("@method" "@authority" "@path" "content-digest" "content-length" "content-type");created=1618884473;keyid="test-key-rsa-pss"`,
			`"@method": POST
"@authority": example.com
"@path": /foo
"content-digest": ` + rfcContentDigest + `
"content-length": 18
"content-type": application/json
"@signature-params": ("@method" "@authority" "@path" "content-digest" "content-length" "content-type");created=1618884473;keyid="test-key-rsa-pss"`,
		},
		{
			`sig-b22=("@authority" "content-digest" "@query-param";name="Pet");created=1618884473;keyid="test-key-rsa-pss";tag="header-example"`,
			`"@authority": example.com
"content-digest": ` + rfcContentDigest + `
"@query-param";name="Pet": dog
"@signature-params": ("@authority" "content-digest" "@query-param";name="Pet");created=1618884473;keyid="test-key-rsa-pss";tag="header-example"`,
		},
		{
			`sig-b23=("date" "@method" "@path" "@query" "@authority" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-rsa-pss"`,
			`"date": Tue, 20 Apr 2021 02:07:55 GMT
"@method": POST
"@path": /foo
"@query": ?param=Value&Pet=dog
"@authority": example.com
"content-type": application/json
"content-digest": ` + rfcContentDigest + `
"content-length": 18
"@signature-params": ("date" "@method" "@path" "@query" "@authority" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-rsa-pss"`,
		},
	} {
		r := rfcRequest()
		r.Header.Set("Signature-Input", tc.input)
		if got := baseOf(t, a, r); got != tc.base {
			t.Errorf("signature base:\n%s\nwant:\n%s", got, tc.base)
		}
	}
}

// TestRFC9530 checks the Content-Digest of the RFC 9421 test request body,
// for both algorithms (RFC 9530 Appendix B uses the same body).
func TestRFC9530(t *testing.T) {
	a, err := New(Options{Keys: rfcKeys(t), MaxAge: time.Minute, Now: rfcClock})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		digest string
		ok     bool
	}{
		{rfcContentDigest, true},
		{"sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:", true},
		{"sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, " + rfcContentDigest, true},
		{"md5=:AAAA:, sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:", true},
		{"sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPF=:", true}, // non-zero pad bits (RFC 8941 §4.2.7)
		{"sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPA=:", false},
		{"sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, sha-512=:AAAA:", false},
		{"md5=:AAAA:", false},
		{"sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE:", true}, // no padding (RFC 8941 §4.2.7)
		{"sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE===:", false},
		{"sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7k=bu9DBPE:", false},
		{"sha-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE", false},
		{"sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:;X", false},
	} {
		r := rfcRequest()
		r.Header.Set("Content-Digest", tc.digest)
		err := a.checkContentDigest(r)
		if (err == nil) != tc.ok {
			t.Errorf("%s: got %v, want ok=%v", tc.digest, err, tc.ok)
		}
	}
}

// baseOf builds the signature base of the request's first Signature-Input
// member.
func baseOf(t testing.TB, a *Authenticator, r *http.Request) string {
	t.Helper()
	d, err := parseDictionary(r.Header.Get("Signature-Input"), MaxSignatures)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := coveredComponents(d[0].list)
	if err != nil {
		t.Fatal(err)
	}
	tg := parseTarget(r)
	b, err := a.signatureBase(r, &tg, cs, &d[0])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// flipBase64 changes one byte of the signature inside label=:...:.
func flipBase64(t testing.TB, field string) string {
	t.Helper()
	label, rest, _ := strings.Cut(field, "=")
	b, err := base64.StdEncoding.DecodeString(strings.Trim(rest, ":"))
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	return label + "=:" + base64.StdEncoding.EncodeToString(b) + ":"
}

func wantFailure(t testing.TB, a *Authenticator, r *http.Request, kind authn.FailureKind) {
	t.Helper()
	c, err := a.Authenticate(r)
	var f *authn.Failure
	if !errors.As(err, &f) || f.Kind != kind {
		t.Fatalf("want failure kind %d, got %v %v", kind, c, err)
	}
}

func ed25519Sign(k ed25519.PrivateKey, m []byte) []byte { return ed25519.Sign(k, m) }
