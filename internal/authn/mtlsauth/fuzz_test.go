package mtlsauth

import (
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/authn"
	"github.com/breakwater/breakwater/internal/testutil"
)

// FuzzAuthenticate presents arbitrary certificates (whatever crypto/x509
// parses from the input, as the TLS stack would): no panic, and nothing but
// a *authn.Failure, or success for a certificate the CA really signed (the
// fuzzer cannot forge one, only mutate the seed's unsigned fields).
func FuzzAuthenticate(f *testing.F) {
	pki := testutil.NewPKI(f)
	f.Add(pki.ClientCert("c", "c.example", "spiffe://x/c").Leaf.Raw)
	f.Add(pki.CA.Raw)
	f.Add([]byte{0x30, 0x00})
	a, err := New(Options{Roots: pki.Pool, Identities: []Identity{{SubjectCN: "c", Consumer: consumer("c")}, {SANDNS: "c.example", Consumer: consumer("d")}}, CacheSize: 4, Now: time.Now})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return
		}
		_, err = a.Authenticate(synthetic(c, c))
		if err == nil {
			if c.CheckSignatureFrom(pki.CA) != nil {
				t.Fatal("accepted a certificate the CA did not sign")
			}
			return
		}
		var fail *authn.Failure
		if !errors.As(err, &fail) {
			t.Fatalf("error is not a Failure: %v", err)
		}
	})
}

// FuzzParsePEM: the CA, CRL and fingerprint parsers never panic on any file.
func FuzzParsePEM(f *testing.F) {
	pki := testutil.NewPKI(f)
	ca := pemOf("CERTIFICATE", pki.CA.Raw)
	f.Add(ca)
	f.Add(append(ca, "trailing"...))
	f.Add([]byte("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"))
	f.Add([]byte("aa:bb"))
	f.Add([]byte{})
	cas := []*x509.Certificate{pki.CA}
	now := time.Now()
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, err := parseCAs(data); err == nil && len(got) == 0 {
			t.Fatal("no CA and no error")
		}
		if got, err := parseCRLs(data, cas, now); err == nil && len(got) == 0 {
			t.Fatal("no CRL and no error")
		}
		_, _ = ParseFingerprint(string(data))
	})
}
