// Package secret holds secrets and their digests so that neither can leak:
// a Value prints as [REDACTED] everywhere (fmt, slog, JSON), and a Digest is
// compared in constant time.
package secret

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

const redacted = "[REDACTED]"

// Value is a secret in clear (a client secret the gateway must present, a
// signing key). It never prints itself; call Reveal where the bytes are used.
type Value struct{ v string }

// New wraps s.
func New(s string) Value { return Value{v: s} }

// Reveal returns the secret in clear. Call it only where the secret is used.
func (s Value) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Value) IsZero() bool { return s.v == "" }

func (s Value) String() string                { return redacted }
func (s Value) GoString() string              { return redacted }
func (s Value) LogValue() slog.Value          { return slog.StringValue(redacted) }
func (s Value) MarshalJSON() ([]byte, error)  { return []byte(`"` + redacted + `"`), nil }
func (s Value) MarshalText() ([]byte, error)  { return []byte(redacted), nil }
func (s Value) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(redacted)) }

// Digest is the stored form of a secret: "sha256:<64 hex digits>".
//
// API keys and client secrets carry at least 256 bits of entropy (see
// `breakwater keys new`), so an unsalted SHA-256 cannot be reversed by search;
// a salt would only prevent the lookup by digest that makes verification O(1).
type Digest struct {
	sum [sha256.Size]byte
	set bool
}

// ErrDigestFormat is returned by ParseDigest for anything but sha256:<hex>.
var ErrDigestFormat = errors.New(`want "sha256:" followed by 64 hex digits (make one with: breakwater secret hash)`)

// ParseDigest parses "sha256:<64 hex digits>".
func ParseDigest(s string) (Digest, error) {
	hexPart, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(hexPart) != 2*sha256.Size {
		return Digest{}, ErrDigestFormat
	}
	var d Digest
	if _, err := hex.Decode(d.sum[:], []byte(hexPart)); err != nil {
		return Digest{}, ErrDigestFormat
	}
	d.set = true
	return d, nil
}

// Sum returns the digest of a secret in clear.
func Sum(plain []byte) Digest { return Digest{sum: sha256.Sum256(plain), set: true} }

// SumString is Sum for a string.
func SumString(plain string) Digest { return Digest{sum: sha256.Sum256([]byte(plain)), set: true} }

// IsZero reports whether no digest was configured.
func (d Digest) IsZero() bool { return !d.set }

// Bytes returns the raw 32-byte digest, e.g. as a map key.
func (d Digest) Bytes() [sha256.Size]byte { return d.sum }

// Equal compares two digests in constant time. A zero digest equals nothing.
func (d Digest) Equal(o Digest) bool {
	eq := subtle.ConstantTimeCompare(d.sum[:], o.sum[:])
	return eq == 1 && d.set && o.set
}

// Matches hashes plain and compares it with d in constant time.
func (d Digest) Matches(plain []byte) bool { return d.Equal(Sum(plain)) }

// String returns the config form "sha256:<hex>".
func (d Digest) String() string {
	if !d.set {
		return ""
	}
	return "sha256:" + hex.EncodeToString(d.sum[:])
}

// MarshalText shows only a fingerprint ("sha256:1a2b3c4d…"): enough to tell
// digests apart in /admin/config, nothing to search for a preimage with.
func (d Digest) MarshalText() ([]byte, error) {
	if !d.set {
		return []byte{}, nil
	}
	return []byte("sha256:" + hex.EncodeToString(d.sum[:4]) + "…"), nil
}
