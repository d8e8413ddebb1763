package introspect

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/breakwater/breakwater/internal/authn"
)

// response is the part of an RFC 7662 introspection response the gateway
// acts on; claims holds every member, for policies.
type response struct {
	active   bool
	scope    string
	clientID string
	sub      string
	typ      string    // token_type
	exp      time.Time // zero: no exp
	aud      []string
	claims   map[string]any
}

// maxUnix is 9999-12-31T23:59:59Z: later exp values are clamped to it.
const maxUnix = 253402300799

var errNotObject = errors.New("not a JSON object")

// parseResponse decodes and type-checks an introspection response. Members
// the gateway uses must have the types RFC 7662 gives them; anything else
// is an error (the endpoint is then treated as unavailable).
func parseResponse(body []byte) (*response, error) {
	var claims map[string]any
	if err := json.Unmarshal(body, &claims); err != nil {
		return nil, fmt.Errorf("decoding introspection response: %w", err)
	}
	if claims == nil {
		return nil, errNotObject
	}
	r := &response{claims: claims}
	active, ok := claims["active"].(bool)
	if !ok {
		return nil, errors.New(`"active" missing or not a boolean`)
	}
	r.active = active
	var err error
	if r.scope, err = optString(claims, "scope"); err != nil {
		return nil, err
	}
	if r.clientID, err = optString(claims, "client_id"); err != nil {
		return nil, err
	}
	if r.sub, err = optString(claims, "sub"); err != nil {
		return nil, err
	}
	if r.typ, err = optString(claims, "token_type"); err != nil {
		return nil, err
	}
	if v, ok := claims["exp"]; ok && v != nil {
		f, ok := v.(float64)
		if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, errors.New(`"exp" not a number`)
		}
		switch {
		case f < 0:
			f = 0
		case f > maxUnix:
			f = maxUnix
		}
		r.exp = time.Unix(int64(f), 0) // never the zero Time
	}
	switch v := claims["aud"].(type) {
	case nil:
	case string:
		r.aud = []string{v}
	case []any:
		r.aud = make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, errors.New(`"aud" has a member that is not a string`)
			}
			r.aud = append(r.aud, s)
		}
	default:
		return nil, errors.New(`"aud" neither a string nor an array`)
	}
	return r, nil
}

func optString(m map[string]any, name string) (string, error) {
	switch v := m[name].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	default:
		return "", fmt.Errorf("%q not a string", name)
	}
}

// intersectScopes returns the scopes of the space-separated list granted
// that are also in allowed (sorted, unique), sorted and unique.
func intersectScopes(granted string, allowed []string) []string {
	var out []string
	for s := range strings.SplitSeq(granted, " ") {
		if s == "" || !contains(allowed, s) || contains(out, s) {
			continue
		}
		out = append(out, s)
	}
	sortStrings(out)
	return out
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// sortStrings is an insertion sort: scope lists are short.
func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// bearer extracts the token of an "Authorization: Bearer" header.
// ErrNoCredential: no Authorization header, or one of another scheme.
func bearer(h http.Header) (string, error) {
	vals := h["Authorization"]
	switch {
	case len(vals) == 0:
		return "", authn.ErrNoCredential
	case len(vals) > 1:
		return "", &authn.Failure{Kind: authn.Malformed, Reason: "authorization header repeated"}
	}
	v := vals[0]
	scheme, tok, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", authn.ErrNoCredential
	}
	tok = strings.TrimLeft(tok, " ")
	switch {
	case tok == "":
		return "", &authn.Failure{Kind: authn.Malformed, Reason: "empty bearer token"}
	case len(tok) > MaxTokenLen:
		return "", &authn.Failure{Kind: authn.Malformed, Reason: "bearer token too long"}
	case !isB64Token(tok):
		return "", &authn.Failure{Kind: authn.Malformed, Reason: "bearer token has characters outside RFC 6750 b64token"}
	}
	return tok, nil
}

// isB64Token reports whether s matches RFC 6750's
// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' {
			continue
		}
		break
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}
