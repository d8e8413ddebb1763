package httpsig

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/authn"
)

// appendDictionary serializes a dictionary (RFC 8941 §4.1.2), for the
// round-trip property of the fuzz targets.
func appendDictionary(dst []byte, d dictionary) []byte {
	for i := range d {
		if i > 0 {
			dst = append(dst, ',', ' ')
		}
		m := &d[i]
		dst = append(dst, m.key...)
		if !m.isList && m.item.bare.kind == kindBoolean && m.item.bare.i == 1 {
			dst = appendParams(dst, m.item.params)
			continue
		}
		dst = append(dst, '=')
		dst = appendMemberValue(dst, m)
	}
	return dst
}

// roundTrip checks that what parses serializes to something that parses
// to the same serialization.
func roundTrip(t *testing.T, s string) dictionary {
	d, err := parseDictionary(s, MaxSignatures)
	if err != nil {
		return nil
	}
	out := appendDictionary(nil, d)
	d2, err := parseDictionary(string(out), MaxSignatures)
	if err != nil {
		t.Fatalf("serialization %q of %q does not parse: %v", out, s, err)
	}
	if out2 := appendDictionary(nil, d2); !bytes.Equal(out, out2) {
		t.Fatalf("round trip of %q: %q then %q", s, out, out2)
	}
	return d
}

func FuzzSignatureInput(f *testing.F) {
	for _, s := range []string{
		`sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`,
		`sig1=("@query-param";name="Pet" "example-dict";key="a" "x";bs);created=1;expires=2;nonce="n";alg="ed25519";keyid="k";tag="t"`,
		`a=(), b=("x");p=1.5;q=?0;r=tok/en:x;s=:AAAA:`,
		`sig1=("@method"), sig1=("@path")`,
		"sig1=(\"a\\\"b\\\\c\")",
		`sig1=("a" "b"`, `=`, `a=-`, `a=1.`, `a=1234567890123456`, `a=123456789012345.1`, `a=?2`, "a=\"\x00\"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d := roundTrip(t, s)
		for i := range d {
			if d[i].isList {
				_, _ = coveredComponents(d[i].list)
				_, _ = signatureParams(d[i].params)
			}
		}
	})
}

func FuzzSignature(f *testing.F) {
	for _, s := range []string{
		`sig-b25=:pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8=:`,
		`sig1=:AA==:, sig2=:AAA=:`,
		`sig1=:AA:`, `sig1=:A===:`, `sig1=:@@:`, `sig1=:`, `sig1=:AA==:;p`, `sig1=:AA==:, sig1=:AA==:`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { roundTrip(t, s) })
}

func FuzzContentDigest(f *testing.F) {
	for _, s := range []string{
		rfcContentDigest,
		"sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, " + rfcContentDigest,
		`sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE:`, `md5=:AAAA:`, `sha-256="x"`, `sha-256=(:AA==:)`, `sha-256`,
	} {
		f.Add(s)
	}
	a, err := New(Options{Keys: rfcKeys(f), MaxAge: time.Minute})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		roundTrip(t, s)
		if _, err := parseContentDigest(s); err != nil {
			return
		}
		r := httptest.NewRequest("POST", "/", strings.NewReader(rfcBody))
		r.Header.Set("Content-Digest", s)
		err := a.checkContentDigest(r)
		var fl *authn.Failure
		if err != nil && !errors.As(err, &fl) {
			t.Fatalf("unexpected error type %T", err)
		}
	})
}

// FuzzAuthenticate runs the whole authenticator over arbitrary signature
// headers and request targets: it must never panic and only return the
// documented errors.
func FuzzAuthenticate(f *testing.F) {
	f.Add(`sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`,
		`sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:`, rfcContentDigest, "/foo?param=Value&Pet=dog")
	f.Add(`sig1=("@query-param";name="a" "@target-uri" "@request-target" "@scheme" "@query" "content-digest" "x";key="k" "x";bs);created=1618884473;keyid="test-shared-secret";nonce="n"`,
		`sig1=:AA==:`, `sha-256=:AA==:`, "/p?a=%zz&a=1")
	f.Add(`sig1=("@path");created=1618884473;keyid="test-key-ecc-p256"`, `sig1=:AA==:`, "", "*")
	f.Add(`sig1=("@path");created=1618884473;keyid="test-key-ecc-p256"`, `sig1=:AA==:`, "", "http://h?x")
	nonces := &nonceStore{}
	a, err := New(Options{Keys: rfcKeys(f), MaxAge: time.Minute, Now: rfcClock, Nonces: nonces, MaxBody: 64,
		RequiredComponents: []string{"@path"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, input, sig, digest, target string) {
		r := httptest.NewRequest("POST", "/", strings.NewReader(rfcBody))
		r.RequestURI = target
		r.Host = "example.com"
		r.Header.Set("Signature-Input", input)
		r.Header.Set("Signature", sig)
		r.Header.Set("Content-Digest", digest)
		r.Header.Set("X", "k=1, j=(a b);c")
		c, err := a.Authenticate(r)
		var fl *authn.Failure
		switch {
		case err == nil:
			if c == nil {
				t.Fatal("nil consumer without error")
			}
		case errors.Is(err, authn.ErrNoCredential), errors.As(err, &fl):
		default:
			if _, ok := errors.AsType[*http.MaxBytesError](err); !ok {
				t.Fatalf("unexpected error %v", err)
			}
		}
	})
}
