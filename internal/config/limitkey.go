package config

import (
	"errors"
	"fmt"
	"net/textproto"
	"strings"
)

// LimitKeyPart is one part of the key of a route rate limit
// (routes[].rate_limits[].key): who a limit counts separately.
type LimitKeyPart struct {
	// Kind is one of the LimitKey* kinds.
	Kind string
	// Name is the header name (canonical form, "X-Tenant") or the claim
	// name; "" for the other kinds.
	Name string
}

// The kinds of a LimitKeyPart.
const (
	LimitKeyConsumer = "consumer" // the authenticated consumer's id
	LimitKeyIP       = "ip"       // the client address (after trusted_proxies)
	LimitKeyRoute    = "route"    // everyone together; only alone
	LimitKeyHeader   = "header"   // header:NAME, the value of a request header
	LimitKeyClaim    = "claim"    // claim:NAME, a string or number claim of the consumer's token
)

// Bounds of a limit key.
const (
	MaxLimitKeyParts = 4  // parts joined with "+"
	maxLimitKeyName  = 64 // bytes of a header or claim name
)

// ParseLimitKey parses a route rate limit key: "consumer", "ip", "route",
// "header:NAME", "claim:NAME", or up to MaxLimitKeyParts of them (but not
// "route") joined with "+", such as "consumer+ip" or "header:X-Tenant+ip".
// Header names are RFC 9110 tokens, returned in canonical form; claim names
// are 1 to 64 printable ASCII characters other than space, '"', '\' and '+'.
// A part may not repeat.
func ParseLimitKey(s string) ([]LimitKeyPart, error) {
	if s == "" {
		return nil, errors.New(`required; one of consumer, ip, route, header:NAME, claim:NAME, or several joined with "+"`)
	}
	n := strings.Count(s, "+") + 1
	if n > MaxLimitKeyParts {
		return nil, fmt.Errorf("%d parts; at most %d", n, MaxLimitKeyParts)
	}
	parts := make([]LimitKeyPart, 0, n)
	for p := range strings.SplitSeq(s, "+") {
		var kp LimitKeyPart
		switch {
		case p == LimitKeyConsumer || p == LimitKeyIP || p == LimitKeyRoute:
			kp.Kind = p
		case strings.HasPrefix(p, "header:"):
			name := p[len("header:"):]
			if !isToken(name) || len(name) > maxLimitKeyName {
				return nil, fmt.Errorf("%q: want a header name of 1 to %d letters, digits and !#$%%&'*-.^_`|~", truncate(p), maxLimitKeyName)
			}
			kp = LimitKeyPart{Kind: LimitKeyHeader, Name: textproto.CanonicalMIMEHeaderKey(name)}
		case strings.HasPrefix(p, "claim:"):
			name := p[len("claim:"):]
			if !isClaimName(name) {
				return nil, fmt.Errorf(`%q: want a claim name of 1 to %d printable ASCII characters without spaces, quotes, backslashes or "+"`, truncate(p), maxLimitKeyName)
			}
			kp = LimitKeyPart{Kind: LimitKeyClaim, Name: name}
		case p == "":
			return nil, fmt.Errorf(`%q has an empty part; join parts with a single "+"`, truncate(s))
		default:
			return nil, fmt.Errorf("%q is not one of consumer, ip, route, header:NAME, claim:NAME", truncate(p))
		}
		for _, q := range parts {
			if q == kp {
				return nil, fmt.Errorf("%q appears twice", truncate(p))
			}
		}
		parts = append(parts, kp)
	}
	if len(parts) > 1 {
		for _, p := range parts {
			if p.Kind == LimitKeyRoute {
				return nil, errors.New(`"route" counts everyone together; it cannot be combined (every route limit is already per route)`)
			}
		}
	}
	return parts, nil
}

func isClaimName(s string) bool {
	if s == "" || len(s) > maxLimitKeyName {
		return false
	}
	for i := range len(s) {
		if c := s[i]; c <= ' ' || c > '~' || c == '"' || c == '\\' || c == '+' {
			return false
		}
	}
	return true
}
