package mtlsauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"github.com/breakwater/breakwater/internal/authn/authcache"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/authn"
	"github.com/breakwater/breakwater/internal/testutil"
)

// issuer is a CA for certificates testutil.PKI does not make: an
// intermediate CA and leaves it signs.
type issuer struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var serialN = struct {
	sync.Mutex
	n int64
}{n: 1000}

func nextSerial() *big.Int {
	serialN.Lock()
	defer serialN.Unlock()
	serialN.n++
	return big.NewInt(serialN.n)
}

func create(t testing.TB, tmpl *x509.Certificate, parent *issuer, pub crypto.PublicKey) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent.cert, pub, parent.key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func intermediate(t testing.TB, p *testutil.PKI) *issuer {
	k := newKey(t)
	c := create(t, &x509.Certificate{
		SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: "Breakwater test intermediate"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(12 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, &issuer{p.CA, p.CAKey}, k.Public())
	return &issuer{c, k}
}

// leaf issues a client certificate from iss; chain is appended to what the
// client presents.
func leaf(t testing.TB, iss *issuer, cn string, mod func(*x509.Certificate), chain ...*x509.Certificate) tls.Certificate {
	k := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(6 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if mod != nil {
		mod(tmpl)
	}
	c := create(t, tmpl, iss, k.Public())
	tc := tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: k, Leaf: c}
	for _, ch := range chain {
		tc.Certificate = append(tc.Certificate, ch.Raw)
	}
	return tc
}

func revocationList(t testing.TB, iss *issuer, next time.Time, serials ...*big.Int) *x509.RevocationList {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, s := range serials {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now().Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: next,
		RevokedCertificateEntries: entries,
	}, iss.cert, iss.key)
	if err != nil {
		t.Fatal(err)
	}
	l, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// server is a real TLS server that requests (does not verify) client
// certificates and answers with the authenticator's decision.
func server(t *testing.T, a *Authenticator) *httptest.Server {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := a.Authenticate(r)
		if err != nil {
			_, _ = io.WriteString(w, kindOf(err))
			return
		}
		_, _ = io.WriteString(w, "ok "+c.ID)
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, cert *tls.Certificate) string {
	t.Helper()
	tr := srv.Client().Transport.(*http.Transport).Clone()
	if cert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func kindOf(err error) string {
	var f *authn.Failure
	switch {
	case errors.Is(err, authn.ErrNoCredential):
		return "none"
	case errors.As(err, &f):
		return [...]string{"invalid", "unknown", "malformed", "expired", "revoked", "replayed", "unavailable"}[f.Kind]
	default:
		return "error:" + err.Error()
	}
}

func consumer(id string) *authn.Consumer {
	return &authn.Consumer{ID: id, Scopes: []string{"s"}, ScopeText: "s"}
}

func TestAuthenticateTLS(t *testing.T) {
	pki := testutil.NewPKI(t)
	other := testutil.NewPKI(t) // untrusted, and with the same CA name as pki
	root := &issuer{pki.CA, pki.CAKey}
	inter := intermediate(t, pki)

	byCN := pki.ClientCert("acme-client")
	byDNS := pki.ClientCert("ignored", "Svc.Example.COM")
	byURI := pki.ClientCert("ignored", "spiffe://example.org/svc")
	byFP := pki.ClientCert("fp-client")
	uriAndCN := pki.ClientCert("acme-client", "spiffe://example.org/svc")           // URI wins over CN
	dnsAndCN := pki.ClientCert("acme-client", "svc.example.com")                    // DNS wins over CN
	uriAndDNS := pki.ClientCert("x", "svc.example.com", "spiffe://example.org/svc") // URI wins over DNS
	fpAndURI := leaf(t, root, "acme-client", func(c *x509.Certificate) {
		c.URIs = byURI.Leaf.URIs
	})
	unknown := pki.ClientCert("nobody", "nobody.example.com", "spiffe://example.org/nobody")
	untrusted := other.ClientCert("acme-client")
	expired := pki.Issue(testutil.CertOptions{CommonName: "acme-client", Client: true, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	notYet := pki.Issue(testutil.CertOptions{CommonName: "acme-client", Client: true, NotBefore: time.Now().Add(time.Hour), NotAfter: time.Now().Add(2 * time.Hour)})
	serverOnly := pki.Issue(testutil.CertOptions{CommonName: "acme-client"})
	noEKU := leaf(t, root, "acme-client", func(c *x509.Certificate) { c.ExtKeyUsage = nil })
	caAsClient := tls.Certificate{Certificate: [][]byte{pki.CA.Raw}, PrivateKey: pki.CAKey}
	revoked := pki.ClientCert("acme-client")
	viaInter := leaf(t, inter, "inter-client", nil, inter.cert)
	viaInterNoChain := leaf(t, inter, "inter-client", nil)
	revokedByInter := leaf(t, inter, "inter-client", nil, inter.cert)
	// CRL by a CA of the same name but another key, listing a good serial: ignored.
	forged := revocationList(t, &issuer{other.CA, other.CAKey}, time.Now().Add(time.Hour), byCN.Leaf.SerialNumber)
	longChain := leaf(t, inter, "inter-client", nil, inter.cert, inter.cert, inter.cert, inter.cert, inter.cert, inter.cert, inter.cert, inter.cert)

	fp := sha256.Sum256(byFP.Leaf.Raw)
	fp2 := sha256.Sum256(fpAndURI.Leaf.Raw)
	a, err := New(Options{
		Roots: pki.Pool,
		CRLs: []*x509.RevocationList{
			revocationList(t, root, time.Now().Add(time.Hour), revoked.Leaf.SerialNumber),
			revocationList(t, inter, time.Now().Add(time.Hour), revokedByInter.Leaf.SerialNumber),
			forged,
		},
		Identities: []Identity{
			{SubjectCN: "acme-client", Consumer: consumer("cn")},
			{SANDNS: "svc.example.com", Consumer: consumer("dns")},
			{SANURI: "spiffe://example.org/svc", Consumer: consumer("uri")},
			{SHA256: fp, Consumer: consumer("fp")},
			{SHA256: fp2, Consumer: consumer("fp2")},
			{SubjectCN: "inter-client", Consumer: consumer("inter")},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := server(t, a)
	for _, tc := range []struct {
		name string
		cert *tls.Certificate
		want string
	}{
		{"by subject CN", &byCN.TLS, "ok cn"},
		{"by DNS SAN, case-insensitive", &byDNS.TLS, "ok dns"},
		{"by URI SAN", &byURI.TLS, "ok uri"},
		{"by fingerprint", &byFP.TLS, "ok fp"},
		{"URI beats CN", &uriAndCN.TLS, "ok uri"},
		{"DNS beats CN", &dnsAndCN.TLS, "ok dns"},
		{"URI beats DNS", &uriAndDNS.TLS, "ok uri"},
		{"fingerprint beats URI and CN", &fpAndURI, "ok fp2"},
		{"intermediate chain", &viaInter, "ok inter"},
		{"cached second time", &byCN.TLS, "ok cn"},
		{"forged CRL of a same-name CA ignored", &byCN.TLS, "ok cn"},
		{"no certificate", nil, "none"},
		{"unknown identity", &unknown.TLS, "unknown"},
		{"untrusted CA with the same name", &untrusted.TLS, "invalid"},
		{"expired", &expired.TLS, "invalid"},
		{"not yet valid", &notYet.TLS, "invalid"},
		{"server-auth-only EKU", &serverOnly.TLS, "invalid"},
		{"CA certificate as client", &caAsClient, "invalid"},
		{"intermediate missing", &viaInterNoChain, "invalid"},
		{"chain too long", &longChain, "invalid"},
		{"revoked by root CRL", &revoked.TLS, "revoked"},
		{"revoked by intermediate CRL", &revokedByInter, "revoked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := get(t, srv, tc.cert); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	_ = noEKU // x509 treats a leaf without EKU as valid for any usage
	if got := get(t, srv, &noEKU); got != "ok cn" {
		t.Fatalf("leaf without EKU: %q", got)
	}
}

// synthetic builds a request as the TLS server would, for clock tests.
func synthetic(certs ...*x509.Certificate) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "https://api.example.com/", nil)
	r.TLS = &tls.ConnectionState{PeerCertificates: certs}
	return r
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func TestCacheNeverOutlivesNotAfter(t *testing.T) {
	pki := testutil.NewPKI(t)
	cert := pki.Issue(testutil.CertOptions{CommonName: "c", Client: true, NotAfter: time.Now().Add(2 * time.Minute)})
	clk := &clock{t: time.Now()}
	a, err := New(Options{Roots: pki.Pool, Identities: []Identity{{SubjectCN: "c", Consumer: consumer("c")}}, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	r := synthetic(cert.Leaf)
	if _, err := a.Authenticate(r); err != nil {
		t.Fatal(err)
	}
	clk.Set(cert.Leaf.NotAfter.Add(time.Second))
	if _, err := a.Authenticate(r); kindOf(err) != "invalid" {
		t.Fatalf("after NotAfter: %v", err)
	}
}

func TestCacheTTL(t *testing.T) {
	pki := testutil.NewPKI(t)
	cert := pki.ClientCert("c")
	t0 := time.Now()
	clk := &clock{t: t0}
	a, err := New(Options{Roots: pki.Pool, Identities: []Identity{{SubjectCN: "c", Consumer: consumer("c")}}, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(synthetic(cert.Leaf)); err != nil {
		t.Fatal(err)
	}
	key := sha256.Sum256(cert.Leaf.Raw)
	if _, ok := a.cache.Get(key, t0.Add(CacheTTL-time.Second)); !ok {
		t.Fatal("not cached")
	}
	if _, ok := a.cache.Get(key, t0.Add(CacheTTL)); ok {
		t.Fatal("entry outlived CacheTTL")
	}
	// failures are not cached
	bad := pki.Issue(testutil.CertOptions{CommonName: "c"})
	_, _ = a.Authenticate(synthetic(bad.Leaf))
	if _, ok := a.cache.Get(sha256.Sum256(bad.Leaf.Raw), t0); ok {
		t.Fatal("a failed verification was cached")
	}
}

func TestCacheBounded(t *testing.T) {
	pki := testutil.NewPKI(t)
	a, err := New(Options{Roots: pki.Pool, CacheSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		_, _ = a.Authenticate(synthetic(pki.ClientCert("c").Leaf))
	}
	if n := a.cache.Len(); n != 2 {
		t.Fatalf("cache holds %d, bound is 2", n)
	}
}

func TestNoTLS(t *testing.T) {
	pki := testutil.NewPKI(t)
	a, err := New(Options{Roots: pki.Pool})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(httptest.NewRequest(http.MethodGet, "http://x/", nil)); !errors.Is(err, authn.ErrNoCredential) {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(synthetic()); !errors.Is(err, authn.ErrNoCredential) {
		t.Fatal(err)
	}
	if a.Challenge() != Challenge {
		t.Fatal(a.Challenge())
	}
}

func TestNew(t *testing.T) {
	pool := x509.NewCertPool()
	c := consumer("a")
	for _, tc := range []struct {
		name string
		o    Options
		ok   bool
	}{
		{"ok", Options{Roots: pool, Identities: []Identity{{SubjectCN: "a", Consumer: c}, {SANDNS: "a", Consumer: c}}}, true},
		{"no roots", Options{}, false},
		{"two match fields", Options{Roots: pool, Identities: []Identity{{SubjectCN: "a", SANDNS: "a", Consumer: c}}}, false},
		{"no match field", Options{Roots: pool, Identities: []Identity{{Consumer: c}}}, false},
		{"no consumer", Options{Roots: pool, Identities: []Identity{{SubjectCN: "a"}}}, false},
		{"duplicate CN", Options{Roots: pool, Identities: []Identity{{SubjectCN: "a", Consumer: c}, {SubjectCN: "a", Consumer: consumer("b")}}}, false},
		{"duplicate DNS by case", Options{Roots: pool, Identities: []Identity{{SANDNS: "A.example", Consumer: c}, {SANDNS: "a.EXAMPLE", Consumer: consumer("b")}}}, false},
		{"relative URI", Options{Roots: pool, Identities: []Identity{{SANURI: "svc", Consumer: c}}}, false},
		{"nil CRL", Options{Roots: pool, CRLs: []*x509.RevocationList{nil}}, false},
		{"negative cache", Options{Roots: pool, CacheSize: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.o); (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestLoadCAFile(t *testing.T) {
	pki := testutil.NewPKI(t)
	other := testutil.NewPKI(t)
	caPEM, _ := os.ReadFile(pki.CAFile)
	otherPEM, _ := os.ReadFile(other.CAFile)
	leafPEM, _ := os.ReadFile(pki.ClientCert("c").CertFile)
	keyPEM, _ := os.ReadFile(pki.ClientCert("c").KeyFile)
	for _, tc := range []struct {
		name, data, errHas string
	}{
		{"one CA", string(caPEM), ""},
		{"two CAs with comments", "# clients\n" + string(caPEM) + "text\n" + string(otherPEM), ""},
		{"empty", "", "no PEM CERTIFICATE"},
		{"garbage", "not a pem", "no PEM CERTIFICATE"},
		{"leaf, not a CA", string(leafPEM), "not a CA"},
		{"private key", string(caPEM) + string(keyPEM), `"PRIVATE KEY"`},
		{"corrupt", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "PEM block 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool, err := LoadCAFile(writeFile(t, "ca.pem", []byte(tc.data)))
			if tc.errHas == "" {
				if err != nil || pool == nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.errHas) || !strings.Contains(err.Error(), "ca.pem") {
				t.Fatalf("err = %v, want it to name the file and say %q", err, tc.errHas)
			}
		})
	}
	if _, err := LoadCAFile(filepath.Join(t.TempDir(), "missing.pem")); err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestLoadCRLFile(t *testing.T) {
	pki := testutil.NewPKI(t)
	other := testutil.NewPKI(t) // same CA name, other key
	cas, err := LoadCACerts(pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	good := revocationList(t, &issuer{pki.CA, pki.CAKey}, now.Add(time.Hour), big.NewInt(7))
	stale := revocationList(t, &issuer{pki.CA, pki.CAKey}, now.Add(-time.Minute), big.NewInt(7))
	forged := revocationList(t, &issuer{other.CA, other.CAKey}, now.Add(time.Hour), big.NewInt(7))
	inter := intermediate(t, pki)
	foreign := revocationList(t, inter, now.Add(time.Hour), big.NewInt(7))
	caPEM, _ := os.ReadFile(pki.CAFile)
	for _, tc := range []struct {
		name   string
		data   []byte
		n      int
		errHas string
	}{
		{"PEM", pemOf("X509 CRL", good.Raw), 1, ""},
		{"two PEM", append(pemOf("X509 CRL", good.Raw), pemOf("X509 CRL", good.Raw)...), 2, ""},
		{"DER", good.Raw, 1, ""},
		{"expired", pemOf("X509 CRL", stale.Raw), 0, "expired"},
		{"signed by another key of the same name", pemOf("X509 CRL", forged.Raw), 0, "signature does not verify"},
		{"issuer not in CA file", foreign.Raw, 0, "not a CA of the client CA file"},
		{"certificate instead", caPEM, 0, "want X509 CRL"},
		{"garbage DER", []byte("garbage"), 0, "CRL 1"},
		{"empty", nil, 0, "CRL 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := LoadCRLFile(writeFile(t, "crl.pem", tc.data), cas, now)
			if tc.errHas == "" {
				if err != nil || len(l) != tc.n {
					t.Fatalf("got %d, %v", len(l), err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.errHas) || !strings.Contains(err.Error(), "crl.pem") {
				t.Fatalf("err = %v, want it to name the file and say %q", err, tc.errHas)
			}
		})
	}
}

func TestParseFingerprint(t *testing.T) {
	sum := sha256.Sum256([]byte("x"))
	hexs := strings.ToUpper(string(appendHex(nil, sum[:])))
	var colons []string
	for i := 0; i < len(hexs); i += 2 {
		colons = append(colons, hexs[i:i+2])
	}
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{hexs, true},
		{strings.ToLower(hexs), true},
		{"sha256:" + hexs, true},
		{strings.Join(colons, ":"), true},
		{hexs[:62], false},
		{hexs + "00", false},
		{strings.Join(colons, ":") + ":", false},
		{strings.Replace(hexs, "A", "G", 1), false},
		{"", false},
		{strings.Repeat(":", 31), false},
	} {
		got, err := ParseFingerprint(tc.in)
		if (err == nil) != tc.ok || tc.ok && got != sum {
			t.Errorf("ParseFingerprint(%q) = %x, %v; want ok=%v", tc.in, got, err, tc.ok)
		}
	}
}

func appendHex(dst, b []byte) []byte {
	const digits = "0123456789abcdef"
	for _, c := range b {
		dst = append(dst, digits[c>>4], digits[c&15])
	}
	return dst
}

func BenchmarkCached(b *testing.B) {
	pki := testutil.NewPKI(b)
	cert := pki.ClientCert("c", "spiffe://example.org/c")
	a, err := New(Options{Roots: pki.Pool, Identities: []Identity{{SANURI: "spiffe://example.org/c", Consumer: consumer("c")}}})
	if err != nil {
		b.Fatal(err)
	}
	r := synthetic(cert.Leaf)
	if _, err := a.Authenticate(r); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Authenticate(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := a.Authenticate(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("uncached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			a.cache = authcache.New[verdict](DefaultCacheSize)
			if _, err := a.Authenticate(r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
