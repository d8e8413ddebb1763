package httpsig

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"

	"github.com/breakwater/breakwater/internal/authn"
	"github.com/breakwater/breakwater/internal/config"
)

// Algorithm names of the RFC 9421 registry (the alg signature parameter).
const (
	AlgHMACSHA256      = "hmac-sha256"
	AlgEd25519         = "ed25519"
	AlgECDSAP256SHA256 = "ecdsa-p256-sha256"
)

// MinHMACKeyLen is the shortest accepted hmac-sha256 key, in bytes.
const MinHMACKeyLen = 32

// Key is one verification key: a consumer's HMAC secret or public key,
// found by the keyid signature parameter. Build it with HMACKey,
// Ed25519Key, ECDSAP256Key or FromCredential; the zero Key is not usable.
type Key struct {
	ID         string // keyid
	Alg        string // one of the Alg* constants
	ConsumerID string // the consumer the key belongs to

	consumer *authn.Consumer
	secret   []byte // hmac-sha256
	ed       ed25519.PublicKey
	ec       *ecdsa.PublicKey
}

func newKey(id, alg string, consumer *authn.Consumer) (Key, error) {
	if id == "" {
		return Key{}, errors.New("httpsig: key id is empty")
	}
	if consumer == nil {
		return Key{}, fmt.Errorf("httpsig: key %q has no consumer", id)
	}
	return Key{ID: id, Alg: alg, ConsumerID: consumer.ID, consumer: consumer}, nil
}

// HMACKey is an hmac-sha256 key of at least MinHMACKeyLen bytes. The
// secret is copied.
func HMACKey(id string, secret []byte, consumer *authn.Consumer) (Key, error) {
	k, err := newKey(id, AlgHMACSHA256, consumer)
	if err != nil {
		return Key{}, err
	}
	if len(secret) < MinHMACKeyLen {
		return Key{}, fmt.Errorf("httpsig: key %q: hmac-sha256 secret is %d bytes, want at least %d", id, len(secret), MinHMACKeyLen)
	}
	k.secret = append([]byte(nil), secret...)
	return k, nil
}

// Ed25519Key is an ed25519 key from a PEM "PUBLIC KEY" block (SPKI).
func Ed25519Key(id string, pemPublicKey string, consumer *authn.Consumer) (Key, error) {
	k, err := newKey(id, AlgEd25519, consumer)
	if err != nil {
		return Key{}, err
	}
	pub, err := parsePublicKey(pemPublicKey)
	if err != nil {
		return Key{}, fmt.Errorf("httpsig: key %q: %w", id, err)
	}
	ed, ok := pub.(ed25519.PublicKey)
	if !ok {
		return Key{}, fmt.Errorf("httpsig: key %q: public key is %T, want ed25519", id, pub)
	}
	k.ed = ed
	return k, nil
}

// ECDSAP256Key is an ecdsa-p256-sha256 key from a PEM "PUBLIC KEY" block
// (SPKI) on curve P-256.
func ECDSAP256Key(id string, pemPublicKey string, consumer *authn.Consumer) (Key, error) {
	k, err := newKey(id, AlgECDSAP256SHA256, consumer)
	if err != nil {
		return Key{}, err
	}
	pub, err := parsePublicKey(pemPublicKey)
	if err != nil {
		return Key{}, fmt.Errorf("httpsig: key %q: %w", id, err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		return Key{}, fmt.Errorf("httpsig: key %q: public key is not ECDSA P-256", id)
	}
	k.ec = ec
	return k, nil
}

// FromCredential builds the key of a consumer's http_signature credential:
// hmac-sha256 takes Secret (standard base64 of the key bytes), ed25519 and
// ecdsa-p256-sha256 take PublicKey (PEM).
func FromCredential(c config.HTTPSignatureCredential, consumer *authn.Consumer) (Key, error) {
	switch c.Alg {
	case AlgHMACSHA256:
		b, err := base64.StdEncoding.DecodeString(c.Secret.Reveal())
		if err != nil {
			// The decoder's error quotes an offset, never the secret.
			return Key{}, fmt.Errorf("httpsig: key %q: secret is not standard base64: %w", c.KeyID, err)
		}
		return HMACKey(c.KeyID, b, consumer)
	case AlgEd25519:
		return Ed25519Key(c.KeyID, c.PublicKey, consumer)
	case AlgECDSAP256SHA256:
		return ECDSAP256Key(c.KeyID, c.PublicKey, consumer)
	}
	return Key{}, fmt.Errorf("httpsig: key %q: unsupported alg %q", c.KeyID, c.Alg)
}

func parsePublicKey(s string) (any, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New(`want a PEM "PUBLIC KEY" block`)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	return pub, nil
}

// verify reports whether sig is this key's signature of base. It takes
// time independent of sig's content for HMAC (constant-time compare).
func (k *Key) verify(base, sig []byte) bool {
	switch k.Alg {
	case AlgHMACSHA256:
		if len(sig) != sha256.Size {
			return false
		}
		m := hmac.New(sha256.New, k.secret)
		m.Write(base)
		var sum [sha256.Size]byte
		return subtle.ConstantTimeCompare(m.Sum(sum[:0]), sig) == 1
	case AlgEd25519:
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(k.ed, base, sig)
	case AlgECDSAP256SHA256:
		// RFC 9421 §3.3.4: r and s as two 32-byte big-endian integers,
		// not ASN.1.
		if len(sig) != 64 {
			return false
		}
		h := sha256.Sum256(base)
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(k.ec, h[:], r, s)
	}
	return false
}
