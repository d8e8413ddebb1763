package edge

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/config"
)

func caPool(t *testing.T, dataDir string) *x509.CertPool {
	t.Helper()
	data, err := os.ReadFile(CAFile(dataDir))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatal("CA file holds no certificate")
	}
	return pool
}

func TestSelfSignedTrustedThroughCAFile(t *testing.T) {
	dataDir := t.TempDir()
	certs, err := ServerTLS(config.TLS{SelfSigned: true}, nil, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	pool := caPool(t, dataDir)
	addr, _ := tlsServer(t, "tcp", "127.0.0.1:0", certs.Config())

	for _, name := range []string{"", "localhost"} { // "": the dialled IP, 127.0.0.1
		if _, err := handshake(addr, &tls.Config{RootCAs: pool, ServerName: name}); err != nil {
			t.Errorf("server name %q: %v", name, err)
		}
	}
	if h, _ := os.Hostname(); h != "" && certs.Leaf().VerifyHostname(h) != nil {
		t.Logf("hostname %q not in the certificate (not a valid DNS name?)", h)
	}
	if _, err := handshake(addr, &tls.Config{RootCAs: pool, ServerName: "example.com"}); err == nil {
		t.Error("certificate accepted for example.com")
	}
	if _, err := handshake(addr, &tls.Config{}); err == nil {
		t.Error("certificate accepted without the CA")
	}

	addr6, _ := tlsServer(t, "tcp6", "[::1]:0", certs.Config())
	if _, err := handshake(addr6, &tls.Config{RootCAs: pool}); err != nil {
		t.Errorf("::1: %v", err)
	}
}

func TestSelfSignedPersisted(t *testing.T) {
	dataDir := t.TempDir()
	first, err := ServerTLS(config.TLS{SelfSigned: true}, nil, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(CAFile(dataDir))

	dir := filepath.Join(dataDir, "certs")
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("certs dir: %v %v, want 0700", fi.Mode(), err)
	}
	for _, name := range []string{caKeyName, leafKeyName} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want 0600", name, fi.Mode(), err)
		}
	}
	leaf := first.Leaf()
	if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("leaf key %T, want ECDSA P-256", leaf.PublicKey)
	}
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d < 364*24*time.Hour || d > 367*24*time.Hour {
		t.Errorf("leaf lifetime %v, want a year", d)
	}

	// Restart: the same CA and leaf are reused.
	second, err := ServerTLS(config.TLS{SelfSigned: true}, nil, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(second.Leaf().Raw, leaf.Raw) {
		t.Error("leaf regenerated on restart")
	}
	if again, _ := os.ReadFile(CAFile(dataDir)); !bytes.Equal(again, caPEM) {
		t.Error("CA regenerated on restart")
	}
	// Reload keeps a valid leaf too.
	if err := second.Reload(); err != nil || !bytes.Equal(second.Leaf().Raw, leaf.Raw) {
		t.Errorf("Reload: %v, leaf changed: %v", err, !bytes.Equal(second.Leaf().Raw, leaf.Raw))
	}

	// A key file left readable by others is tightened.
	_ = os.Chmod(filepath.Join(dir, leafKeyName), 0o644)
	if _, err := ServerTLS(config.TLS{SelfSigned: true}, nil, dataDir); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, leafKeyName)); fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v after restart, want 0600", fi.Mode())
	}
}

func TestSelfSignedRenewal(t *testing.T) {
	dataDir := t.TempDir()
	now := time.Now()
	c0, err := selfSigned(dataDir, now)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(CAFile(dataDir))
	ca := parsePEMCert(t, caPEM)

	// 300 days on, the leaf has more than 30 days left: kept.
	c1, err := selfSigned(dataDir, now.Add(300*24*time.Hour))
	if err != nil || !bytes.Equal(c1.Leaf.Raw, c0.Leaf.Raw) {
		t.Fatalf("300 days: err %v, renewed %v", err, !bytes.Equal(c1.Leaf.Raw, c0.Leaf.Raw))
	}
	// 340 days on, less than 30 days left: a new leaf from the same CA.
	later := now.Add(340 * 24 * time.Hour)
	c2, err := selfSigned(dataDir, later)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(c2.Leaf.Raw, c0.Leaf.Raw) {
		t.Fatal("leaf not renewed 25 days before expiry")
	}
	if again, _ := os.ReadFile(CAFile(dataDir)); !bytes.Equal(again, caPEM) {
		t.Fatal("CA changed when only the leaf needed renewal")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := c2.Leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: later.Add(300 * 24 * time.Hour), DNSName: "localhost"}); err != nil {
		t.Errorf("renewed leaf: %v", err)
	}

	// A damaged leaf is replaced; the CA stays.
	if err := os.WriteFile(filepath.Join(dataDir, "certs", leafName), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := selfSigned(dataDir, later); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(CAFile(dataDir)); !bytes.Equal(again, caPEM) {
		t.Fatal("CA changed when the leaf was damaged")
	}

	// Near the end of the CA's ten years, CA and leaf are both replaced.
	end := now.Add(caLifetime - 200*24*time.Hour)
	c3, err := selfSigned(dataDir, end)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(CAFile(dataDir)); bytes.Equal(again, caPEM) {
		t.Fatal("CA not replaced near its expiry")
	}
	if !c3.Leaf.NotAfter.After(end.Add(renewBefore)) {
		t.Errorf("new leaf expires %v", c3.Leaf.NotAfter)
	}
}

// TestSelfSignedCANameConstraints checks that the generated CA, whose key
// sits on disk, cannot vouch for any other site.
func TestSelfSignedCANameConstraints(t *testing.T) {
	dataDir := t.TempDir()
	if _, err := selfSigned(dataDir, time.Now()); err != nil {
		t.Fatal(err)
	}
	ca, caKey, err := readPair(CAFile(dataDir), filepath.Join(dataDir, "certs", caKeyName))
	if err != nil {
		t.Fatal(err)
	}
	if !ca.IsCA || !ca.MaxPathLenZero || ca.NotAfter.Sub(ca.NotBefore) < 9*365*24*time.Hour {
		t.Errorf("CA: IsCA %v MaxPathLenZero %v lifetime %v", ca.IsCA, ca.MaxPathLenZero, ca.NotAfter.Sub(ca.NotBefore))
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"bank.example"},
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	evil, _ := x509.ParseCertificate(der)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := evil.Verify(x509.VerifyOptions{Roots: roots, DNSName: "bank.example"}); err == nil {
		t.Fatal("the local CA can issue a trusted certificate for bank.example")
	}
}

func TestSelfSignedUnwritableDataDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ServerTLS(config.TLS{SelfSigned: true}, nil, file)
	if err == nil || !bytes.HasPrefix([]byte(err.Error()), []byte("tls.self_signed: ")) {
		t.Fatalf("err = %v", err)
	}
	if _, err := ServerTLS(config.TLS{SelfSigned: true}, nil, ""); err == nil {
		t.Fatal("no data dir accepted")
	}
}

func parsePEMCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatal("no PEM")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
