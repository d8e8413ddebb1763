package jwtauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/breakwater/breakwater/internal/authn"
)

// Defaults of Options.
const (
	DefaultMaxTokenBytes = 8192
	DefaultCacheSize     = 10000
)

const challenge = `Bearer realm="breakwater"`

// Options configures a jwt authenticator.
type Options struct {
	// Name is the authenticator's name (for logs).
	Name string
	// Issuer must equal the "iss" claim. Required.
	Issuer string
	// Audience: the "aud" claim must contain one of them. Required.
	Audience []string
	// Algorithms is the allow-list: RS256/384/512, PS256/384/512,
	// ES256/384/512, EdDSA. Required.
	Algorithms []string
	// Leeway is the clock skew allowed for exp, nbf and iat.
	Leeway time.Duration
	// Keys supplies the verification keys. Required.
	Keys KeySet
	// Consumers maps the "sub" claim (or the ConsumerClaim claim's string
	// value) to the consumer; the consumers are not modified.
	Consumers map[string]*authn.Consumer
	// ConsumerClaim names the claim that identifies the consumer ("": sub).
	ConsumerClaim string
	// Revoked, when set, is asked about the token's jti on every use, and
	// tokens without a jti are refused.
	Revoked func(ctx context.Context, jti string) (bool, error)
	// MaxTokenBytes bounds the token (0: DefaultMaxTokenBytes).
	MaxTokenBytes int
	// CacheSize bounds the cache of verified tokens (0: DefaultCacheSize,
	// negative: no cache).
	CacheSize int
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Authenticator verifies bearer JWTs. It implements authn.Authenticator
// and authn.Stripper and is safe for concurrent use.
type Authenticator struct {
	name      string
	algs      []string
	parser    *jwt.Parser
	keys      KeySet
	consumers map[string]*authn.Consumer
	claim     string
	revoked   func(ctx context.Context, jti string) (bool, error)
	maxBytes  int
	cache     *tokenCache // nil: disabled
	now       func() time.Time
}

var (
	_ authn.Authenticator = (*Authenticator)(nil)
	_ authn.Stripper      = (*Authenticator)(nil)
)

// New checks the options and builds the authenticator.
func New(o Options) (*Authenticator, error) {
	var errs []error
	if o.Issuer == "" {
		errs = append(errs, errors.New("issuer is required"))
	}
	if len(o.Audience) == 0 || slices.Contains(o.Audience, "") {
		errs = append(errs, errors.New("audience is required and must not contain an empty value"))
	}
	if len(o.Algorithms) == 0 {
		errs = append(errs, errors.New("algorithms are required"))
	}
	var algs []string
	for _, alg := range o.Algorithms {
		if !supportedAlg(alg) {
			errs = append(errs, fmt.Errorf("algorithm %q is not supported (RS*, PS*, ES* 256-512, EdDSA)", alg))
		} else if !slices.Contains(algs, alg) {
			algs = append(algs, alg)
		}
	}
	if o.Keys == nil {
		errs = append(errs, errors.New("a key set is required"))
	}
	if o.Leeway < 0 || o.MaxTokenBytes < 0 {
		errs = append(errs, errors.New("leeway and max token bytes must not be negative"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("jwt authenticator %q: %w", o.Name, errors.Join(errs...))
	}
	a := &Authenticator{
		name:      o.Name,
		algs:      algs,
		keys:      o.Keys,
		consumers: o.Consumers,
		claim:     o.ConsumerClaim,
		revoked:   o.Revoked,
		maxBytes:  o.MaxTokenBytes,
		now:       o.Now,
	}
	if a.claim == "" {
		a.claim = "sub"
	}
	if a.maxBytes == 0 {
		a.maxBytes = DefaultMaxTokenBytes
	}
	if a.now == nil {
		a.now = time.Now
	}
	switch {
	case o.CacheSize == 0:
		a.cache = newTokenCache(DefaultCacheSize)
	case o.CacheSize > 0:
		a.cache = newTokenCache(o.CacheSize)
	}
	a.parser = jwt.NewParser(
		jwt.WithValidMethods(algs),
		jwt.WithIssuer(o.Issuer),
		jwt.WithAudience(o.Audience...),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(o.Leeway),
		jwt.WithTimeFunc(a.now),
		jwt.WithStrictDecoding(),
	)
	return a, nil
}

// Challenge implements authn.Authenticator; it is the same for every
// failure.
func (a *Authenticator) Challenge() string { return challenge }

// Strip implements authn.Stripper: the token does not reach the upstream.
func (a *Authenticator) Strip(r *http.Request) { r.Header.Del("Authorization") }

// Authenticate implements authn.Authenticator. A request without an
// Authorization header, or with another scheme than Bearer, carries no
// credential of this kind.
func (a *Authenticator) Authenticate(r *http.Request) (*authn.Consumer, error) {
	vals := r.Header["Authorization"]
	switch {
	case len(vals) == 0:
		return nil, authn.ErrNoCredential
	case len(vals) > 1:
		return nil, &authn.Failure{Kind: authn.Malformed, Reason: "authorization header repeated"}
	}
	v := vals[0]
	i := strings.IndexAny(v, " \t")
	scheme, token := v, ""
	if i >= 0 {
		scheme, token = v[:i], v[i+1:]
	}
	if !strings.EqualFold(scheme, "Bearer") {
		return nil, authn.ErrNoCredential
	}
	return a.Verify(r.Context(), strings.Trim(token, " \t"))
}

// Verify checks a token and returns the consumer it authenticates, or an
// *authn.Failure.
func (a *Authenticator) Verify(ctx context.Context, token string) (*authn.Consumer, error) {
	switch {
	case token == "":
		return nil, fail(authn.Malformed, "empty bearer token")
	case len(token) > a.maxBytes:
		return nil, fail(authn.Malformed, "token too long")
	}
	now := a.now()
	var sum [sha256.Size]byte
	if a.cache != nil {
		sum = sha256.Sum256([]byte(token))
		if e, ok := a.cache.get(&sum, now.UnixNano()); ok {
			if err := a.checkRevoked(ctx, e.jti); err != nil {
				return nil, err
			}
			return e.consumer, nil
		}
	}
	if !compactJWS(token) {
		return nil, fail(authn.Malformed, "not a compact JWS")
	}
	claims := jwt.MapClaims{}
	if t, err := a.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		return a.key(ctx, t)
	}); err != nil {
		if t != nil && t.Method != nil && !slices.Contains(a.algs, t.Method.Alg()) {
			return nil, fail(authn.Invalid, "alg not allowed")
		}
		return nil, classify(err)
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return nil, fail(authn.Invalid, "exp missing") // already enforced by the parser
	}
	jti, _ := claims["jti"].(string)
	if a.revoked != nil && jti == "" {
		return nil, fail(authn.Invalid, "token without jti while revocation is checked")
	}
	id, ok := claims[a.claim].(string)
	if !ok || id == "" {
		return nil, fail(authn.Invalid, "consumer claim "+a.claim+" missing or not a string")
	}
	configured := a.consumers[id]
	if configured == nil {
		return nil, fail(authn.Unknown, "no consumer for the token's "+a.claim)
	}
	tokenScopes, err := scopesOf(claims)
	if err != nil {
		return nil, fail(authn.Invalid, err.Error())
	}
	scopes := intersect(configured.Scopes, tokenScopes)
	c := &authn.Consumer{ID: configured.ID, Scopes: scopes, ScopeText: strings.Join(scopes, " "), Claims: claims}
	if err := a.checkRevoked(ctx, jti); err != nil {
		return nil, err
	}
	if a.cache != nil {
		until := min(exp.UnixNano(), now.UnixNano()+maxCacheAgeNanos)
		if until > now.UnixNano() {
			a.cache.put(&sum, entry{consumer: c, jti: jti, until: until}, now.UnixNano())
		}
	}
	return c, nil
}

func fail(k authn.FailureKind, reason string) *authn.Failure {
	return &authn.Failure{Kind: k, Reason: reason}
}

func (a *Authenticator) checkRevoked(ctx context.Context, jti string) error {
	if a.revoked == nil {
		return nil
	}
	revoked, err := a.revoked(ctx, jti)
	switch {
	case err != nil:
		return fail(authn.Unavailable, "revocation check failed")
	case revoked:
		return fail(authn.Revoked, "token revoked")
	}
	return nil
}

// key is the jwt.Keyfunc: header checks, then the key lookup. The parser
// has already refused algs outside the allow-list; this checks again
// before any lookup.
func (a *Authenticator) key(ctx context.Context, t *jwt.Token) (any, error) {
	alg, _ := t.Header["alg"].(string)
	if !slices.Contains(a.algs, alg) {
		return nil, fail(authn.Invalid, "alg not allowed")
	}
	// Header parameters that would let the token pick its own key, or
	// demand extensions this verifier does not implement.
	for _, h := range [...]string{"jku", "jwk", "x5u", "x5c", "crit"} {
		if _, ok := t.Header[h]; ok {
			return nil, fail(authn.Invalid, "token header "+h+" refused")
		}
	}
	if v, ok := t.Header["typ"]; ok {
		typ, _ := v.(string)
		if !typAllowed(typ) {
			return nil, fail(authn.Invalid, "typ is not JWT or at+jwt")
		}
	}
	var kid string
	if v, ok := t.Header["kid"]; ok {
		if kid, ok = v.(string); !ok {
			return nil, fail(authn.Malformed, "kid is not a string")
		}
	}
	if kid == "" {
		return a.soleKey(ctx, alg)
	}
	k, err := a.keys.Key(ctx, kid)
	switch {
	case errors.Is(err, ErrUnknownKey):
		return nil, fail(authn.Invalid, "unknown kid")
	case err != nil:
		return nil, fail(authn.Unavailable, "key set unavailable: "+err.Error())
	case !usable(k, alg):
		return nil, fail(authn.Invalid, "key type or key alg does not fit alg "+alg)
	}
	return k.Public, nil
}

func (a *Authenticator) soleKey(ctx context.Context, alg string) (any, error) {
	lister, ok := a.keys.(KeyLister)
	if !ok {
		return nil, fail(authn.Invalid, "token without kid")
	}
	keys, err := lister.Keys(ctx)
	if err != nil {
		return nil, fail(authn.Unavailable, "key set unavailable: "+err.Error())
	}
	var found *Key
	for i := range keys {
		if usable(keys[i], alg) {
			if found != nil {
				return nil, fail(authn.Invalid, "token without kid and several keys usable for alg "+alg)
			}
			found = &keys[i]
		}
	}
	if found == nil {
		return nil, fail(authn.Invalid, "token without kid and no key usable for alg "+alg)
	}
	return found.Public, nil
}

func typAllowed(typ string) bool {
	const prefix = "application/"
	if len(typ) > len(prefix) && strings.EqualFold(typ[:len(prefix)], prefix) {
		typ = typ[len(prefix):]
	}
	return strings.EqualFold(typ, "JWT") || strings.EqualFold(typ, "at+jwt")
}

// compactJWS reports whether token is three non-empty base64url segments.
func compactJWS(token string) bool {
	dots, segLen := 0, 0
	for i := 0; i < len(token); i++ {
		switch c := token[i]; {
		case c == '.':
			if segLen == 0 {
				return false
			}
			dots, segLen = dots+1, 0
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			segLen++
		default:
			return false
		}
	}
	return dots == 2 && segLen > 0
}

// classify turns a parser error into a Failure; reasons are fixed strings.
func classify(err error) *authn.Failure {
	var f *authn.Failure
	switch {
	case errors.As(err, &f):
		return f
	case errors.Is(err, jwt.ErrTokenMalformed):
		return fail(authn.Malformed, "unparsable token")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return fail(authn.Invalid, "alg missing or unknown")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return fail(authn.Invalid, "bad signature or alg not allowed")
	case errors.Is(err, jwt.ErrInvalidType):
		return fail(authn.Malformed, "registered claim of the wrong type")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return fail(authn.Invalid, "required claim (exp, iss or aud) missing")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return fail(authn.Invalid, "wrong issuer")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return fail(authn.Invalid, "wrong audience")
	case errors.Is(err, jwt.ErrTokenExpired):
		return fail(authn.Expired, "token expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return fail(authn.Expired, "token not valid yet (nbf)")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return fail(authn.Expired, "token issued in the future (iat)")
	}
	return fail(authn.Invalid, "token rejected")
}

// scopesOf reads "scope" (space-separated string) or, without it, "scp"
// (string or array of strings).
func scopesOf(claims jwt.MapClaims) ([]string, error) {
	if v, ok := claims["scope"]; ok {
		s, ok := v.(string)
		if !ok {
			return nil, errors.New("scope claim is not a string")
		}
		return strings.Fields(s), nil
	}
	switch v := claims["scp"].(type) {
	case nil:
		return nil, nil
	case string:
		return strings.Fields(v), nil
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, errors.New("scp claim holds a non-string")
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, errors.New("scp claim is neither a string nor an array")
}

// intersect returns the configured scopes (sorted, unique) that the token
// also carries; the result is sorted and unique.
func intersect(configured, token []string) []string {
	if len(configured) == 0 || len(token) == 0 {
		return nil
	}
	set := make(map[string]struct{}, len(token))
	for _, s := range token {
		set[s] = struct{}{}
	}
	var out []string
	for _, s := range configured {
		if _, ok := set[s]; ok {
			out = append(out, s)
		}
	}
	return out
}
