package secret

import (
	"crypto/rand"
	"fmt"
	"regexp"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// KeyLen is the number of base62 characters of a generated key: 43 of them
// carry 43·log2(62) ≈ 256.03 bits of entropy.
const KeyLen = 43

var prefixRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,15}_$`)

// NewKey returns a random API key: prefix followed by KeyLen uniformly
// random base62 characters (rejection sampling, so no modulo bias). The
// prefix (e.g. "bw_") makes leaked keys recognisable to secret scanners.
func NewKey(prefix string) (string, error) {
	if !prefixRE.MatchString(prefix) {
		return "", fmt.Errorf("prefix %q: want 1–16 lowercase letters or digits, starting with a letter, ending with \"_\" (e.g. bw_)", prefix)
	}
	out := make([]byte, 0, len(prefix)+KeyLen)
	out = append(out, prefix...)
	var buf [64]byte
	for len(out) < len(prefix)+KeyLen {
		if _, err := rand.Read(buf[:]); err != nil {
			return "", fmt.Errorf("reading random bytes: %w", err)
		}
		for _, b := range buf {
			if b >= 248 { // 248 = 4·62: keep the accepted range a multiple of 62
				continue
			}
			out = append(out, base62[b%62])
			if len(out) == len(prefix)+KeyLen {
				break
			}
		}
	}
	return string(out), nil
}
