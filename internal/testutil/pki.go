// Package testutil holds helpers for tests across the project.
package testutil

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// PKI is a throw-away certificate authority for tests: real certificates
// for real TLS and mTLS, written as PEM files into t.TempDir().
type PKI struct {
	t   testing.TB
	dir string

	CA     *x509.Certificate
	CAKey  crypto.Signer
	CAFile string         // PEM of CA
	Pool   *x509.CertPool // holds CA only

	mu sync.Mutex
	n  int
}

// Cert is a certificate issued by a PKI.
type Cert struct {
	CertFile string // PEM: the certificate (leaf only)
	KeyFile  string // PEM: its PKCS#8 private key
	TLS      tls.Certificate
	Leaf     *x509.Certificate
}

// CertOptions describes a certificate to issue. Zero values take sensible
// defaults: an ECDSA P-256 key, valid from an hour ago for a day, for
// server authentication.
type CertOptions struct {
	CommonName string
	DNSNames   []string
	IPs        []net.IP
	URIs       []string // e.g. "spiffe://example.org/svc"
	Client     bool     // client authentication instead of server
	RSA        bool     // RSA 2048 key instead of ECDSA P-256
	NotBefore  time.Time
	NotAfter   time.Time
}

// NewPKI creates a CA (ECDSA P-256) in a fresh temporary directory. Each
// call is an independent CA, so two of them make a trusted and an
// untrusted issuer.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	p := &PKI{t: t, dir: t.TempDir()}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testutil: CA key: %v", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "Breakwater test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("testutil: CA certificate: %v", err)
	}
	if p.CA, err = x509.ParseCertificate(der); err != nil {
		t.Fatalf("testutil: CA certificate: %v", err)
	}
	p.CAKey = key
	p.CAFile = filepath.Join(p.dir, "ca.pem")
	writePEM(t, p.CAFile, "CERTIFICATE", der)
	p.Pool = x509.NewCertPool()
	p.Pool.AddCert(p.CA)
	return p
}

// ServerCert issues a server certificate for sans, each a DNS name or an IP
// address ("localhost", "127.0.0.1", "::1").
func (p *PKI) ServerCert(sans ...string) *Cert {
	p.t.Helper()
	o := CertOptions{}
	for _, s := range sans {
		if ip := net.ParseIP(s); ip != nil {
			o.IPs = append(o.IPs, ip)
		} else {
			o.DNSNames = append(o.DNSNames, s)
		}
	}
	if len(sans) > 0 {
		o.CommonName = sans[0]
	}
	return p.Issue(o)
}

// ClientCert issues a client certificate with common name cn and sans, each
// a URI when it contains "://", else a DNS name.
func (p *PKI) ClientCert(cn string, sans ...string) *Cert {
	p.t.Helper()
	o := CertOptions{CommonName: cn, Client: true}
	for _, s := range sans {
		if strings.Contains(s, "://") {
			o.URIs = append(o.URIs, s)
		} else {
			o.DNSNames = append(o.DNSNames, s)
		}
	}
	return p.Issue(o)
}

// Issue issues a certificate as described by o.
func (p *PKI) Issue(o CertOptions) *Cert {
	t := p.t
	t.Helper()
	var (
		key crypto.Signer
		err error
	)
	if o.RSA {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatalf("testutil: key: %v", err)
	}
	now := time.Now()
	if o.NotBefore.IsZero() {
		o.NotBefore = now.Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = now.Add(24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: o.CommonName},
		NotBefore:    o.NotBefore,
		NotAfter:     o.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     o.DNSNames,
		IPAddresses:  o.IPs,
	}
	if o.RSA {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	if o.Client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	for _, s := range o.URIs {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("testutil: URI SAN %q: %v", s, err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.CA, key.Public(), p.CAKey)
	if err != nil {
		t.Fatalf("testutil: certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testutil: certificate: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("testutil: key: %v", err)
	}

	p.mu.Lock()
	p.n++
	base := filepath.Join(p.dir, fmt.Sprintf("cert-%d", p.n))
	p.mu.Unlock()
	c := &Cert{
		CertFile: base + ".pem",
		KeyFile:  base + "-key.pem",
		TLS:      tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		Leaf:     leaf,
	}
	writePEM(t, c.CertFile, "CERTIFICATE", der)
	writePEM(t, c.KeyFile, "PRIVATE KEY", keyDER)
	return c
}

// ClientConfig is a client TLS config trusting only this CA, presenting
// cert when not nil.
func (p *PKI) ClientConfig(cert *Cert) *tls.Config {
	cfg := &tls.Config{RootCAs: p.Pool, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{cert.TLS}
	}
	return cfg
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatalf("testutil: serial: %v", err)
	}
	return n
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatalf("testutil: %v", err)
	}
}
