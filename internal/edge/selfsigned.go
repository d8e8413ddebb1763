package edge

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/breakwater/breakwater/internal/hostname"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Lifetimes of the self-signed material kept in data_dir/certs.
const (
	caLifetime   = 10 * 365 * 24 * time.Hour
	leafLifetime = 365 * 24 * time.Hour
	renewBefore  = 30 * 24 * time.Hour // a leaf with less left is reissued
	backdate     = time.Hour           // tolerance for clients with a slow clock
)

// Files of the self-signed material, in data_dir/certs (0700).
const (
	certsDir    = "certs"
	caCertName  = "ca.pem"
	caKeyName   = "ca-key.pem"
	leafName    = "server.pem"
	leafKeyName = "server-key.pem"
)

// CAFile is the path of the self-signed CA certificate (PEM) for dataDir:
// what a client passes as `curl --cacert`.
func CAFile(dataDir string) string {
	return filepath.Join(dataDir, certsDir, caCertName)
}

// localNames are the names the self-signed leaf is valid for.
type localNames struct {
	dns []string
	ips []net.IP
}

func machineNames() localNames {
	n := localNames{
		dns: []string{"localhost"},
		ips: []net.IP{net.IPv4(127, 0, 0, 1).To4(), net.IPv6loopback},
	}
	if h, err := os.Hostname(); err == nil {
		h = strings.TrimSuffix(strings.ToLower(h), ".")
		if h != "localhost" && !strings.Contains(h, "_") && hostname.Valid(h) {
			n.dns = append(n.dns, h)
		}
	}
	return n
}

// selfSigned returns the self-signed server certificate kept in
// dataDir/certs, creating the CA and the leaf when missing, unreadable or
// unfit (expiring, or not valid for this machine's names). A usable CA is
// kept, so the file clients trust does not change when the leaf is renewed.
func selfSigned(dataDir string, now time.Time) (*tls.Certificate, error) {
	dir := filepath.Join(dataDir, certsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tls.self_signed: %w (server.data_dir must be writable)", err)
	}
	if runtime.GOOS != "windows" {
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("tls.self_signed: %w", err)
		}
	}
	names := machineNames()

	ca, caKey, err := readPair(filepath.Join(dir, caCertName), filepath.Join(dir, caKeyName))
	if err != nil || !caUsable(ca, names, now) {
		if ca, caKey, err = newCA(dir, names, now); err != nil {
			return nil, err
		}
		return newLeaf(dir, ca, caKey, names, now)
	}
	leaf, leafKey, err := readPair(filepath.Join(dir, leafName), filepath.Join(dir, leafKeyName))
	if err != nil || !leafUsable(leaf, ca, names, now) {
		return newLeaf(dir, ca, caKey, names, now)
	}
	return &tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: leafKey, Leaf: leaf}, nil
}

func caUsable(ca *x509.Certificate, names localNames, now time.Time) bool {
	if !ca.IsCA || now.Before(ca.NotBefore) || ca.NotAfter.Sub(now) < leafLifetime+renewBefore {
		return false
	}
	for _, d := range names.dns {
		if !slices.Contains(ca.PermittedDNSDomains, d) {
			return false
		}
	}
	for _, ip := range names.ips {
		if !slices.ContainsFunc(ca.PermittedIPRanges, func(n *net.IPNet) bool { return n.Contains(ip) }) {
			return false
		}
	}
	return true
}

func leafUsable(leaf, ca *x509.Certificate, names localNames, now time.Time) bool {
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil || leaf.NotAfter.Sub(now) < renewBefore {
		return false
	}
	for _, d := range names.dns {
		if leaf.VerifyHostname(d) != nil {
			return false
		}
	}
	for _, ip := range names.ips {
		if leaf.VerifyHostname(ip.String()) != nil {
			return false
		}
	}
	return true
}

// newCA creates and stores a CA that can only issue server certificates for
// this machine's names (name constraints): should its key ever leak, it is
// no use against any other site, even to someone who trusted it.
func newCA(dir string, names localNames, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	ipRanges := make([]*net.IPNet, 0, len(names.ips))
	for _, ip := range names.ips {
		ipRanges = append(ipRanges, &net.IPNet{IP: ip, Mask: net.CIDRMask(len(ip)*8, len(ip)*8)})
	}
	tmpl := &x509.Certificate{
		Subject: pkix.Name{
			CommonName:   "Breakwater local CA (" + names.dns[len(names.dns)-1] + ")",
			Organization: []string{"Breakwater self-signed, development only"},
		},
		NotBefore:                   now.Add(-backdate),
		NotAfter:                    now.Add(caLifetime),
		IsCA:                        true,
		BasicConstraintsValid:       true,
		MaxPathLenZero:              true,
		KeyUsage:                    x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage:                 []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         names.dns,
		PermittedIPRanges:           ipRanges,
	}
	return issue(dir, caCertName, caKeyName, tmpl, nil, nil)
}

func newLeaf(dir string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, names localNames, now time.Time) (*tls.Certificate, error) {
	notAfter := now.Add(leafLifetime)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		NotBefore:   now.Add(-backdate),
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    names.dns,
		IPAddresses: names.ips,
	}
	leaf, key, err := issue(dir, leafName, leafKeyName, tmpl, ca, caKey)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// issue creates a P-256 key and a certificate for tmpl signed by parent
// (self-signed when parent is nil), and writes both: the key first, so a
// certificate on disk never lacks its key.
func issue(dir, certName, keyName string, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("tls.self_signed: generate key: %w", err)
	}
	if tmpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127)); err != nil {
		return nil, nil, fmt.Errorf("tls.self_signed: serial number: %w", err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, fmt.Errorf("tls.self_signed: create %s: %w", certName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("tls.self_signed: parse %s: %w", certName, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("tls.self_signed: encode key: %w", err)
	}
	if err := writeFile(filepath.Join(dir, keyName), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, nil, err
	}
	if err := writeFile(filepath.Join(dir, certName), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// readPair reads a certificate and its ECDSA key written by issue.
func readPair(certFile, keyFile string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || cb.Type != "CERTIFICATE" || kb == nil || kb.Type != "PRIVATE KEY" {
		return nil, nil, errors.New("not a PEM certificate and key")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, errors.New("key does not match certificate")
	}
	if runtime.GOOS != "windows" {
		if fi, err := os.Stat(keyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(keyFile, 0o600); err != nil {
				return nil, nil, err
			}
		}
	}
	return cert, key, nil
}

// writeFile replaces path atomically (temporary file, then rename), so a
// crash never leaves half a key behind.
func writeFile(path string, data []byte, perm os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("tls.self_signed: %w (server.data_dir must be writable)", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
			err = fmt.Errorf("tls.self_signed: write %s: %w", path, err)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
