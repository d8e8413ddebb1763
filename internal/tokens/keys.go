package tokens

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/golang-jwt/jwt/v5"
)

// Signing algorithms a KeyRing can use.
const (
	EdDSA = "EdDSA" // Ed25519
	ES256 = "ES256" // ECDSA P-256 with SHA-256
	RS256 = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256, 3072-bit keys
)

// rsaBits is the size of generated RSA keys.
const rsaBits = 3072

// signingKey is the immutable, cryptographic part of one key of the ring.
// Its private half never leaves the package and is never formatted: the
// type has no exported fields and a redacting String method.
type signingKey struct {
	kid    string
	alg    string
	method jwt.SigningMethod
	priv   crypto.Signer
	pub    crypto.PublicKey
	pkcs8  []byte
	jwk    publicJWK
	// sigLen is the length of a raw signature.
	sigLen int
	// idHeader is base64url({"alg":…,"kid":…,"typ":"JWT"}), the protected
	// header of Identity tokens, computed once.
	idHeader string
}

func (k *signingKey) String() string { return "signing key " + k.kid }

// publicJWK is the public half of a key as published in the JWKS.
type publicJWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	KID string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

func checkAlg(alg string) error {
	switch alg {
	case EdDSA, ES256, RS256:
		return nil
	}
	return fmt.Errorf("signing algorithm %q: want EdDSA, ES256 or RS256", alg)
}

// generateKey makes a new private key for alg.
func generateKey(alg string) (*signingKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, rsaBits)
	default:
		return nil, checkAlg(alg)
	}
	if err != nil {
		return nil, fmt.Errorf("generating %s key: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encoding %s key: %w", alg, err)
	}
	return newSigningKey(alg, der)
}

// newSigningKey parses a PKCS #8 private key and checks that it fits alg.
// The kid is the RFC 7638 JWK thumbprint of the public key, so it is the
// same on every instance that shares the key file.
func newSigningKey(alg string, der []byte) (*signingKey, error) {
	if err := checkAlg(alg); err != nil {
		return nil, err
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parsing %s private key: %w", alg, err)
	}
	k := &signingKey{alg: alg, pkcs8: der}
	var thumb string
	switch p := parsed.(type) {
	case ed25519.PrivateKey:
		if alg != EdDSA {
			return nil, fmt.Errorf("an Ed25519 key cannot sign %s", alg)
		}
		pub := p.Public().(ed25519.PublicKey)
		k.priv, k.pub, k.method, k.sigLen = p, pub, jwt.SigningMethodEdDSA, ed25519.SignatureSize
		k.jwk = publicJWK{Kty: "OKP", Crv: "Ed25519", X: b64(pub)}
		thumb = `{"crv":"Ed25519","kty":"OKP","x":"` + k.jwk.X + `"}`
	case *ecdsa.PrivateKey:
		if alg != ES256 || p.Curve != elliptic.P256() {
			return nil, fmt.Errorf("an ECDSA key on %s cannot sign %s", p.Curve.Params().Name, alg)
		}
		pt, err := p.PublicKey.ECDH()
		if err != nil {
			return nil, fmt.Errorf("converting P-256 public key: %w", err)
		}
		raw := pt.Bytes() // 0x04 || X || Y
		k.priv, k.pub, k.method, k.sigLen = p, &p.PublicKey, jwt.SigningMethodES256, 64
		k.jwk = publicJWK{Kty: "EC", Crv: "P-256", X: b64(raw[1:33]), Y: b64(raw[33:65])}
		thumb = `{"crv":"P-256","kty":"EC","x":"` + k.jwk.X + `","y":"` + k.jwk.Y + `"}`
	case *rsa.PrivateKey:
		if alg != RS256 || p.N.BitLen() < 2048 {
			return nil, fmt.Errorf("a %d-bit RSA key cannot sign %s", p.N.BitLen(), alg)
		}
		k.priv, k.pub, k.method, k.sigLen = p, &p.PublicKey, jwt.SigningMethodRS256, p.Size()
		k.jwk = publicJWK{Kty: "RSA", N: b64(p.N.Bytes()), E: b64(big.NewInt(int64(p.E)).Bytes())}
		thumb = `{"e":"` + k.jwk.E + `","kty":"RSA","n":"` + k.jwk.N + `"}`
	default:
		return nil, errors.New("unsupported private key type")
	}
	sum := sha256.Sum256([]byte(thumb))
	k.kid = b64(sum[:])
	k.jwk.KID, k.jwk.Alg, k.jwk.Use = k.kid, alg, "sig"
	hdr, err := json.Marshal(struct {
		Alg string `json:"alg"`
		KID string `json:"kid"`
		Typ string `json:"typ"`
	}{alg, k.kid, "JWT"})
	if err != nil {
		return nil, fmt.Errorf("encoding header: %w", err)
	}
	k.idHeader = b64(hdr)
	return k, nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
