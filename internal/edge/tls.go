package edge

import (
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/breakwater/breakwater/internal/config"
)

// minRSABits is the smallest RSA key accepted for the server certificate.
const minRSABits = 2048

// Certs is the TLS configuration of the HTTPS listener together with the
// certificate it serves. The certificate lives behind an atomic pointer, so
// Reload replaces it while connections are being accepted.
type Certs struct {
	cfg  *tls.Config
	cur  atomic.Pointer[tls.Certificate]
	load func(now time.Time) (*tls.Certificate, error)
}

// ServerTLS validates c and loads its certificate. resolve maps a path as
// written in the config to the path to open (typically: relative to the
// config file's directory); nil leaves paths as written. dataDir is
// server.data_dir, where a self-signed CA and certificate are kept.
//
// Every error names the config field at fault and, where it is not obvious,
// how to fix it.
func ServerTLS(c config.TLS, resolve func(string) string, dataDir string) (*Certs, error) {
	if resolve == nil {
		resolve = func(p string) string { return p }
	}
	minVer, err := minVersion(c.MinVersion)
	if err != nil {
		return nil, err
	}

	certs := &Certs{}
	switch {
	case c.ACME != nil:
		return nil, errors.New("tls.acme: ACME is not supported yet; use tls.cert_file and tls.key_file, or tls.self_signed: true for development")
	case c.SelfSigned && (c.CertFile != "" || c.KeyFile != ""):
		return nil, errors.New("tls.self_signed: cannot be combined with tls.cert_file/tls.key_file; remove one or the other")
	case c.SelfSigned:
		if dataDir == "" {
			return nil, errors.New("server.data_dir: required with tls.self_signed: the generated CA and certificate are kept there")
		}
		certs.load = func(now time.Time) (*tls.Certificate, error) { return selfSigned(dataDir, now) }
	case c.CertFile == "" && c.KeyFile == "":
		return nil, errors.New("tls: no certificate configured; set tls.cert_file and tls.key_file, or tls.self_signed: true (development only)")
	case c.CertFile == "":
		return nil, errors.New("tls.cert_file: required with tls.key_file: set it to the PEM certificate chain")
	case c.KeyFile == "":
		return nil, errors.New("tls.key_file: required with tls.cert_file: set it to the PEM private key")
	default:
		certFile, keyFile := resolve(c.CertFile), resolve(c.KeyFile)
		certs.load = func(now time.Time) (*tls.Certificate, error) { return loadKeyPair(certFile, keyFile, now) }
	}

	var clientCAs *x509.CertPool
	if c.ClientCAFile != "" {
		if clientCAs, err = loadPool(resolve(c.ClientCAFile)); err != nil {
			return nil, err
		}
	}

	if err := certs.Reload(); err != nil {
		return nil, err
	}

	certs.cfg = &tls.Config{
		MinVersion:       minVer,
		CipherSuites:     CipherSuites(),
		CurvePreferences: Curves(),
		NextProtos:       []string{"h2", "http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return certs.cur.Load(), nil
		},
	}
	if clientCAs != nil {
		// Ask for a certificate, and name the accepted CAs in the request,
		// but do not verify at the handshake: the mtls authenticator of the
		// route verifies it (and its CRL), so an untrusted certificate gets
		// the same 401 as any other failed credential instead of a broken
		// connection, and the CAs follow a config reload.
		certs.cfg.ClientAuth = tls.RequestClientCert
		certs.cfg.ClientCAs = clientCAs
	}
	return certs, nil
}

// Config returns the listener's TLS configuration. It is shared and must not
// be modified (Clone it first); it always serves the certificate of the last
// successful Reload. The client CA names sent in certificate requests are
// fixed when ServerTLS runs; verification follows the running config.
func (c *Certs) Config() *tls.Config { return c.cfg }

// Reload reads the certificate again (the files of tls.cert_file/key_file,
// or the self-signed pair, whose leaf is renewed when it has less than 30
// days left) and serves it to new handshakes. On error the certificate in
// use stays in use.
func (c *Certs) Reload() error {
	cert, err := c.load(time.Now())
	if err != nil {
		return err
	}
	c.cur.Store(cert)
	return nil
}

// Leaf returns the certificate being served (for expiry metrics and audits).
func (c *Certs) Leaf() *x509.Certificate { return c.cur.Load().Leaf }

// CipherSuites are the TLS 1.2 suites allowed: ECDHE key exchange with an
// AEAD cipher only (Mozilla "intermediate", minus the DHE suites Go does not
// implement). No RSA key exchange, no CBC, no 3DES, no RC4. TLS 1.3 suites
// are not configurable and are all AEAD.
func CipherSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}

// Curves are the key exchanges offered: the X25519+ML-KEM-768 post-quantum
// hybrid (TLS 1.3 only; Go prefers it when the client offers it), then the
// Mozilla "intermediate" curves. The order is ignored by crypto/tls, which
// applies its own preference.
func Curves() []tls.CurveID {
	return []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384}
}

func minVersion(v string) (uint16, error) {
	switch v {
	case "", "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("tls.min_version: %q is not supported; use \"1.2\" or \"1.3\"", v)
}

// loadKeyPair reads and checks a certificate chain and its key. Errors are
// attributed to the field whose file is at fault.
func loadKeyPair(certFile, keyFile string, now time.Time) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("tls.cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls.key_file: %w", err)
	}
	if !hasPEM(certPEM, "CERTIFICATE") {
		return nil, fmt.Errorf("tls.cert_file: %s: no PEM \"CERTIFICATE\" block; it must hold the server certificate, then its intermediates, in PEM", certFile)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tls.key_file: %s: %w (it must be the PEM private key of the first certificate in tls.cert_file)", keyFile, err)
	}
	leaf := cert.Leaf // filled by X509KeyPair since Go 1.23
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls.cert_file: %s: %w", certFile, err)
		}
		cert.Leaf = leaf
	}
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("tls.cert_file: %s: certificate expired on %s; renew it", certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if k, ok := leaf.PublicKey.(*rsa.PublicKey); ok && k.N.BitLen() < minRSABits {
		return nil, fmt.Errorf("tls.cert_file: %s: RSA key of %d bits is too weak; use at least %d bits, or ECDSA P-256", certFile, k.N.BitLen(), minRSABits)
	}
	return &cert, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tls.client_ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("tls.client_ca_file: %s: no PEM \"CERTIFICATE\" block; it must hold the CA certificates that issue client certificates", file)
	}
	return pool, nil
}

func hasPEM(data []byte, typ string) bool {
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			return false
		}
		if b.Type == typ {
			return true
		}
	}
}
