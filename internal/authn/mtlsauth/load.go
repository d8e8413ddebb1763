package mtlsauth

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Size limits of the files read by LoadCACerts and LoadCRLFile.
const (
	MaxCAFileBytes  = 4 << 20
	MaxCRLFileBytes = 64 << 20
)

// LoadCAFile reads a PEM file of CA certificates (tls.client_ca_file) into
// a pool for Options.Roots. See LoadCACerts for what is checked.
func LoadCAFile(path string) (*x509.CertPool, error) {
	cas, err := LoadCACerts(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c)
	}
	return pool, nil
}

// LoadCACerts reads a PEM file of CA certificates. The file must hold at
// least one CERTIFICATE block, and nothing but CERTIFICATE blocks (text
// around them is ignored); each must be a CA (basic constraints CA:TRUE and,
// if it has a key usage, certificate signing).
func LoadCACerts(path string) ([]*x509.Certificate, error) {
	data, err := readFile(path, MaxCAFileBytes)
	if err != nil {
		return nil, err
	}
	cas, err := parseCAs(data)
	if err != nil {
		return nil, fmt.Errorf("client CA file %s: %w", path, err)
	}
	return cas, nil
}

func parseCAs(data []byte) ([]*x509.Certificate, error) {
	var cas []*x509.Certificate
	for n := 1; ; n++ {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is %q, want CERTIFICATE", n, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		if !c.BasicConstraintsValid || !c.IsCA {
			return nil, fmt.Errorf("PEM block %d (%q) is not a CA certificate (no basic constraints CA:TRUE)", n, c.Subject.String())
		}
		if c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageCertSign == 0 {
			return nil, fmt.Errorf("PEM block %d (%q) may not sign certificates (key usage without keyCertSign)", n, c.Subject.String())
		}
		cas = append(cas, c)
	}
	if len(cas) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block found")
	}
	return cas, nil
}

// LoadCRLFile reads certificate revocation lists, PEM ("X509 CRL" blocks,
// one or more) or a single DER CRL. Each must be signed by one of cas (see
// LoadCACerts) whose subject is the CRL's issuer, and must not be expired at
// now (its NextUpdate in the past): such a file is refused, not ignored,
// since its absence of news is no longer authoritative.
func LoadCRLFile(path string, cas []*x509.Certificate, now time.Time) ([]*x509.RevocationList, error) {
	data, err := readFile(path, MaxCRLFileBytes)
	if err != nil {
		return nil, err
	}
	crls, err := parseCRLs(data, cas, now)
	if err != nil {
		return nil, fmt.Errorf("CRL file %s: %w", path, err)
	}
	return crls, nil
}

func parseCRLs(data []byte, cas []*x509.Certificate, now time.Time) ([]*x509.RevocationList, error) {
	var ders [][]byte
	if bytes.Contains(data, []byte("-----BEGIN")) {
		for n := 1; ; n++ {
			var b *pem.Block
			b, data = pem.Decode(data)
			if b == nil {
				break
			}
			if b.Type != "X509 CRL" {
				return nil, fmt.Errorf("PEM block %d is %q, want X509 CRL", n, b.Type)
			}
			ders = append(ders, b.Bytes)
		}
		if len(ders) == 0 {
			return nil, errors.New("no PEM X509 CRL block found")
		}
	} else {
		ders = [][]byte{data}
	}
	out := make([]*x509.RevocationList, 0, len(ders))
	for i, der := range ders {
		l, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, fmt.Errorf("CRL %d: %w", i+1, err)
		}
		issuer := l.Issuer.String()
		var (
			named  bool
			signed bool
		)
		for _, ca := range cas {
			if !bytes.Equal(ca.RawSubject, l.RawIssuer) {
				continue
			}
			named = true
			if l.CheckSignatureFrom(ca) == nil {
				signed = true
				break
			}
		}
		switch {
		case !named:
			return nil, fmt.Errorf("CRL %d: issuer %q is not a CA of the client CA file", i+1, issuer)
		case !signed:
			return nil, fmt.Errorf("CRL %d: signature does not verify against the CA %q of the client CA file", i+1, issuer)
		case !l.NextUpdate.IsZero() && now.After(l.NextUpdate):
			return nil, fmt.Errorf("CRL %d of %q is expired: its next update was due %s; fetch a fresh one", i+1, issuer, l.NextUpdate.UTC().Format(time.RFC3339))
		}
		out = append(out, l)
	}
	return out, nil
}

func readFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // *PathError names the file
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return data, nil
}

// ParseFingerprint parses a certificate's SHA-256 fingerprint for
// Identity.SHA256: 64 hex digits, in either case, optionally in pairs
// separated by colons (as openssl prints them) and prefixed by "sha256:".
func ParseFingerprint(s string) ([sha256.Size]byte, error) {
	var fp [sha256.Size]byte
	h := strings.TrimPrefix(strings.TrimPrefix(s, "sha256:"), "SHA256:")
	if strings.Contains(h, ":") {
		parts := strings.Split(h, ":")
		if len(parts) != sha256.Size {
			return fp, fmt.Errorf("fingerprint %q: want 32 colon-separated hex pairs", s)
		}
		for _, p := range parts {
			if len(p) != 2 {
				return fp, fmt.Errorf("fingerprint %q: want 32 colon-separated hex pairs", s)
			}
		}
		h = strings.Join(parts, "")
	}
	if len(h) != 2*sha256.Size {
		return fp, fmt.Errorf("fingerprint %q: want 64 hex digits", s)
	}
	if _, err := hex.Decode(fp[:], []byte(h)); err != nil {
		return fp, fmt.Errorf("fingerprint %q: want 64 hex digits", s)
	}
	return fp, nil
}
