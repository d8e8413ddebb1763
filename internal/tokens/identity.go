package tokens

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/breakwater/breakwater/internal/authn"
)

// IdentityAudience is the aud of X-Gateway-Identity tokens.
const IdentityAudience = "upstream"

// Identity returns the X-Gateway-Identity header value for a request: a JWT
// (typ "JWT") signed with the active key, with iss (KeyRingOptions.Issuer,
// default "breakwater"), sub (the consumer id), aud "upstream", iat, exp
// (iat + 60s), scope (the consumer's scopes, space-separated), route and
// request_id. An upstream verifies it against the gateway's JWKS.
//
// It runs on every authenticated request, so it builds the JSON by hand:
// one signature and two allocations (golang-jwt with MapClaims: 50).
func (k *KeyRing) Identity(c *authn.Consumer, route, requestID string) (string, error) {
	if c == nil {
		return "", errors.New("identity token: no consumer")
	}
	key := k.cur.Load().active
	now := k.now().Unix()

	var payloadBuf [512]byte
	p := append(payloadBuf[:0], `{"iss":`...)
	p = appendJSONString(p, k.issuer)
	p = append(p, `,"sub":`...)
	p = appendJSONString(p, c.ID)
	p = append(p, `,"aud":"`+IdentityAudience+`","iat":`...)
	p = strconv.AppendInt(p, now, 10)
	p = append(p, `,"exp":`...)
	p = strconv.AppendInt(p, now+int64(IdentityTTL/time.Second), 10)
	p = append(p, `,"scope":`...)
	p = appendJSONString(p, c.ScopeText)
	p = append(p, `,"route":`...)
	p = appendJSONString(p, route)
	p = append(p, `,"request_id":`...)
	p = appendJSONString(p, requestID)
	p = append(p, '}')

	enc := base64.RawURLEncoding
	out := make([]byte, 0, len(key.idHeader)+1+enc.EncodedLen(len(p))+1+enc.EncodedLen(key.sigLen))
	out = append(out, key.idHeader...)
	out = append(out, '.')
	out = enc.AppendEncode(out, p)
	var sig []byte
	if priv, ok := key.priv.(ed25519.PrivateKey); ok {
		sig = ed25519.Sign(priv, out)
	} else {
		var err error
		if sig, err = key.method.Sign(string(out), key.priv); err != nil {
			return "", fmt.Errorf("identity token: %w", err)
		}
	}
	out = append(out, '.')
	out = enc.AppendEncode(out, sig)
	return string(out), nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD (as
// encoding/json does), U+2028 and U+2029 escaped.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
