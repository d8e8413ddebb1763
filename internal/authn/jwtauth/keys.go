package jwtauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/MicahParks/jwkset"
)

// Key is one verification key of a key set.
type Key struct {
	ID     string           // the JWK "kid"; "" when the JWK has none
	Public crypto.PublicKey // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	Alg    string           // the JWK "alg"; "" when the JWK does not name one
}

// KeySet supplies verification keys by key id. Implemented by *JWKS here and
// by the gateway's own token service elsewhere (issuer: self).
type KeySet interface {
	// Key returns the key with id kid, ErrUnknownKey when the set holds no
	// such key, ErrKeysUnavailable when the set could not be loaded at all.
	Key(ctx context.Context, kid string) (Key, error)
}

// KeyLister is implemented by key sets that can list all their keys. A token
// without "kid" is accepted only when Keys implements it and exactly one of
// the listed keys is usable for the token's alg.
type KeyLister interface {
	// Keys returns every key of the set (read-only), or ErrKeysUnavailable.
	Keys(ctx context.Context) ([]Key, error)
}

var (
	// ErrUnknownKey means the kid is not in the set, even after any refetch
	// the rate limit allowed.
	ErrUnknownKey = errors.New("jwtauth: unknown key id")
	// ErrKeysUnavailable means the key set has never been loaded.
	ErrKeysUnavailable = errors.New("jwtauth: key set unavailable")
)

// Bounds on RSA keys: smaller ones are breakable, larger ones only make
// every verification slow.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// supportedAlg reports whether alg is one an authenticator may allow.
func supportedAlg(alg string) bool {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA":
		return true
	}
	return false
}

// usable reports whether k may verify a signature made with alg: the key
// type is bound to the alg family (and the curve to the ES hash size), and a
// key that names its alg is only used for that alg.
func usable(k Key, alg string) bool {
	if k.Alg != "" && k.Alg != alg {
		return false
	}
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		pub, ok := k.Public.(*rsa.PublicKey)
		return ok && checkRSA(pub) == nil
	case "ES256":
		return ecCurve(k.Public) == elliptic.P256()
	case "ES384":
		return ecCurve(k.Public) == elliptic.P384()
	case "ES512":
		return ecCurve(k.Public) == elliptic.P521()
	case "EdDSA":
		pub, ok := k.Public.(ed25519.PublicKey)
		return ok && len(pub) == ed25519.PublicKeySize
	}
	return false
}

func ecCurve(pub crypto.PublicKey) elliptic.Curve {
	if k, ok := pub.(*ecdsa.PublicKey); ok && k != nil {
		return k.Curve
	}
	return nil
}

func checkRSA(pub *rsa.PublicKey) error {
	if pub == nil || pub.N == nil {
		return errors.New("rsa key without modulus")
	}
	if bits := pub.N.BitLen(); bits < minRSABits || bits > maxRSABits {
		return fmt.Errorf("rsa key of %d bits (want %d to %d)", bits, minRSABits, maxRSABits)
	}
	if pub.E < 3 || pub.E%2 == 0 || pub.E > 1<<31-1 {
		return errors.New("rsa key with an unacceptable public exponent")
	}
	return nil
}

// keySet is one immutable, successfully loaded generation of a JWKS.
type keySet struct {
	byKID map[string]Key
	all   []Key
}

// skipped is a JWK left out of a set, with why (for the log).
type skipped struct {
	index  int
	kid    string
	reason string
}

// parseJWKS turns a JWK Set document into keys. Keys that cannot be used
// for verification are skipped (and reported), never fatal; the document
// itself must be a JSON object with a "keys" array.
//
// Decision: a JWK that carries private key material ("d", "p", "q", "dp",
// "dq", "qi", "oth", "k") is rejected outright rather than stripped: a key
// set that publishes a private key publishes a compromised key.
func parseJWKS(body []byte) (*keySet, []skipped, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, nil, fmt.Errorf("decode jwk set: %w", err)
	}
	if doc.Keys == nil {
		return nil, nil, errors.New("jwk set without a keys array")
	}
	set := &keySet{byKID: make(map[string]Key, len(doc.Keys))}
	var skips []skipped
	for i, raw := range doc.Keys {
		k, err := parseJWK(raw)
		if err != nil {
			skips = append(skips, skipped{index: i, kid: k.ID, reason: err.Error()})
			continue
		}
		if k.ID != "" {
			if _, dup := set.byKID[k.ID]; dup {
				skips = append(skips, skipped{index: i, kid: k.ID, reason: "duplicate kid (first one kept)"})
				continue
			}
			set.byKID[k.ID] = k
		}
		set.all = append(set.all, k)
	}
	return set, skips, nil
}

// parseJWK parses one JWK into a verification key. On error, the returned
// Key carries the kid when it could be read.
func parseJWK(raw json.RawMessage) (Key, error) {
	var m jwkset.JWKMarshal
	if err := json.Unmarshal(raw, &m); err != nil {
		return Key{}, fmt.Errorf("decode jwk: %w", err)
	}
	k := Key{ID: m.KID, Alg: string(m.ALG)}
	if m.D != "" || m.P != "" || m.Q != "" || m.DP != "" || m.DQ != "" || m.QI != "" || len(m.OTH) > 0 || m.K != "" {
		return k, errors.New("jwk carries private or symmetric key material")
	}
	if m.USE != "" && m.USE != jwkset.UseSig {
		return k, fmt.Errorf("jwk use %q is not sig", m.USE)
	}
	if len(m.KEYOPS) > 0 {
		verify := false
		for _, op := range m.KEYOPS {
			verify = verify || op == jwkset.KeyOpsVerify
		}
		if !verify {
			return k, errors.New("jwk key_ops does not include verify")
		}
	}
	if k.Alg != "" && !supportedAlg(k.Alg) {
		return k, fmt.Errorf("jwk alg %q is not supported", k.Alg)
	}
	// No x5u is ever fetched: GetX5U stays nil.
	jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{SkipX5UScheme: true})
	if err != nil {
		return k, fmt.Errorf("parse jwk: %w", err)
	}
	switch pub := jwk.Key().(type) {
	case *rsa.PublicKey:
		if err := checkRSA(pub); err != nil {
			return k, err
		}
		k.Public = pub
	case *ecdsa.PublicKey:
		k.Public = pub
	case ed25519.PublicKey:
		k.Public = pub
	default:
		return k, fmt.Errorf("jwk key type %T cannot verify signatures", pub)
	}
	if k.Alg != "" && !usable(k, k.Alg) {
		return k, fmt.Errorf("jwk alg %q does not fit its key", k.Alg)
	}
	return k, nil
}
