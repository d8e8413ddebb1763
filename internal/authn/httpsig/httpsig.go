// Package httpsig is the http_signature authenticator: HTTP Message
// Signatures (RFC 9421) over requests, with Content-Digest (RFC 9530) for
// bodies. It hand-writes the RFC 8941 structured-field parsing it needs.
//
// A request carries Signature-Input and Signature dictionaries keyed by
// label. The authenticator takes the first label whose keyid names a
// configured key (and verifies only that one, so a request cannot make it
// do more than one signature verification), then requires: the created
// parameter, no older than MaxAge and not in the future beyond Skew; the
// expires parameter, when present, not passed; every RequiredComponents
// entry covered; the signature valid over the RFC 9421 signature base;
// when content-digest is covered, the body's digest matching it; and, when
// a nonce is present and a nonce store is configured, a nonce not seen
// before (checked last, so that an attacker without the key cannot burn
// nonces).
//
// The authenticator strips nothing from the request (it does not implement
// authn.Stripper): a signature is bound to the message it signs, not a
// bearer secret, so forwarding it gives the upstream nothing it could
// replay elsewhere, and lets the upstream verify it again if it wishes.
package httpsig

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/breakwater/breakwater/internal/authn"
	"github.com/breakwater/breakwater/internal/state"
)

// Limits on what a request may carry; beyond them it is Malformed.
const (
	// MaxHeaderBytes bounds each of Signature-Input, Signature and
	// Content-Digest (all lines of the field together).
	MaxHeaderBytes = 8 << 10
	// MaxSignatures bounds the labels of Signature-Input and Signature.
	MaxSignatures = 8
	// MaxComponents bounds the components one signature covers.
	MaxComponents = 32
	// MaxNonceLen bounds the nonce parameter, which becomes a state key.
	MaxNonceLen = 256
)

// Defaults of Options.
const (
	DefaultSkew         = 5 * time.Second
	DefaultMaxBody      = 1 << 20
	DefaultNonceTimeout = time.Second
	DefaultScheme       = "https"
)

// Options configure an Authenticator. Zero values take the documented
// defaults; MaxAge and Keys are required.
type Options struct {
	// Keys are the verification keys; their IDs must be unique.
	Keys []Key
	// MaxAge bounds how old a signature's created time may be (required,
	// positive). It is also how long a nonce is remembered (plus Skew).
	MaxAge time.Duration
	// Skew is the clock difference allowed for created in the future and
	// for expires; zero means DefaultSkew, negative is an error.
	Skew time.Duration
	// RequiredComponents must all be covered by the signature. Entries are
	// component names ("@method", "@target-uri", "content-digest") or
	// identifiers with parameters (`@query-param;name="id"`,
	// `"example-dict";key="a"`); bs and sf parameters of the covered
	// component do not matter. Empty means nothing is required beyond the
	// signature parameters: see DefaultRequiredComponents.
	RequiredComponents []string
	// Nonces remembers nonces; nil means nonces are not checked (and
	// RequireNonce must be false).
	Nonces state.Nonces
	// RequireNonce rejects signatures without a nonce parameter. When
	// false, a nonce that is present is still checked.
	RequireNonce bool
	// NonceTimeout bounds one call to Nonces; zero means
	// DefaultNonceTimeout.
	NonceTimeout time.Duration
	// MaxBody bounds the body read to check content-digest; zero means
	// DefaultMaxBody. A smaller http.MaxBytesReader set by the gateway
	// applies first.
	MaxBody int64
	// Scheme is the scheme of the effective request URI (@scheme,
	// @target-uri): "https" (default) or "http".
	Scheme string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultRequiredComponents is a sensible RequiredComponents for routes
// that do not say: the method and the whole target URI.
func DefaultRequiredComponents() []string { return []string{"@method", "@target-uri"} }

// Authenticator verifies HTTP message signatures. It is safe for
// concurrent use.
type Authenticator struct {
	keys         map[string]*Key
	maxAge       time.Duration
	skew         time.Duration
	required     []component
	nonces       state.Nonces
	requireNonce bool
	nonceTimeout time.Duration
	maxBody      int64
	scheme       string
	now          func() time.Time
}

// New validates o and builds an Authenticator.
func New(o Options) (*Authenticator, error) {
	a := &Authenticator{
		keys:         make(map[string]*Key, len(o.Keys)),
		maxAge:       o.MaxAge,
		skew:         o.Skew,
		nonces:       o.Nonces,
		requireNonce: o.RequireNonce,
		nonceTimeout: o.NonceTimeout,
		maxBody:      o.MaxBody,
		scheme:       o.Scheme,
		now:          o.Now,
	}
	var errs []error
	if a.maxAge <= 0 {
		errs = append(errs, errors.New("httpsig: max age must be positive"))
	}
	switch {
	case a.skew < 0:
		errs = append(errs, errors.New("httpsig: skew must not be negative"))
	case a.skew == 0:
		a.skew = DefaultSkew
	}
	switch {
	case a.nonceTimeout < 0:
		errs = append(errs, errors.New("httpsig: nonce timeout must not be negative"))
	case a.nonceTimeout == 0:
		a.nonceTimeout = DefaultNonceTimeout
	}
	switch {
	case a.maxBody < 0:
		errs = append(errs, errors.New("httpsig: max body must not be negative"))
	case a.maxBody == 0:
		a.maxBody = DefaultMaxBody
	}
	switch a.scheme {
	case "":
		a.scheme = DefaultScheme
	case "https", "http":
	default:
		errs = append(errs, fmt.Errorf("httpsig: scheme %q is not https or http", a.scheme))
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.requireNonce && a.nonces == nil {
		errs = append(errs, errors.New("httpsig: nonces are required but no nonce store is set"))
	}
	for i := range o.Keys {
		k := o.Keys[i]
		if k.consumer == nil || (k.secret == nil && k.ed == nil && k.ec == nil) {
			errs = append(errs, fmt.Errorf("httpsig: key %q was not built by a key constructor", k.ID))
			continue
		}
		if _, dup := a.keys[k.ID]; dup {
			errs = append(errs, fmt.Errorf("httpsig: key id %q is used twice", k.ID))
			continue
		}
		a.keys[k.ID] = &k
	}
	for _, rc := range o.RequiredComponents {
		c, err := parseRequired(rc)
		if err != nil {
			errs = append(errs, fmt.Errorf("httpsig: required component %q: %w", rc, err))
			continue
		}
		a.required = append(a.required, c)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return a, nil
}

// Challenge implements authn.Authenticator.
func (a *Authenticator) Challenge() string { return `Signature realm="breakwater"` }

func fail(kind authn.FailureKind, reason string) error {
	return &authn.Failure{Kind: kind, Reason: reason}
}

// headerValue joins the lines of a field as RFC 9110 and RFC 8941 do, with
// no allocation for the usual single line. It fails past MaxHeaderBytes.
func headerValue(h http.Header, name string) (string, bool) {
	vs := h[name]
	switch len(vs) {
	case 0:
		return "", true
	case 1:
		return vs[0], len(vs[0]) <= MaxHeaderBytes
	}
	n := 0
	for _, v := range vs {
		n += len(v) + 2
	}
	if n > MaxHeaderBytes+2 {
		return "", false
	}
	return strings.Join(vs, ", "), true
}

// Authenticate implements authn.Authenticator. Besides *authn.Failure and
// authn.ErrNoCredential it returns, when the body exceeds its limit while
// content-digest is checked, an error wrapping *http.MaxBytesError.
func (a *Authenticator) Authenticate(r *http.Request) (*authn.Consumer, error) {
	inputs, okI := headerValue(r.Header, "Signature-Input")
	sigs, okS := headerValue(r.Header, "Signature")
	if !okI || !okS {
		return nil, fail(authn.Malformed, "signature header too large")
	}
	if inputs == "" && sigs == "" {
		if len(r.Header["Signature-Input"])+len(r.Header["Signature"]) > 0 {
			return nil, fail(authn.Malformed, "empty signature headers")
		}
		return nil, authn.ErrNoCredential
	}
	if inputs == "" || sigs == "" {
		return nil, fail(authn.Malformed, "signature-input without signature or signature without signature-input")
	}
	inDict, err := parseDictionary(inputs, MaxSignatures)
	if err != nil {
		return nil, fail(authn.Malformed, "signature-input: "+err.Error())
	}
	if len(inDict) == 0 {
		return nil, fail(authn.Malformed, "empty signature-input")
	}
	sigDict, err := parseDictionary(sigs, MaxSignatures)
	if err != nil {
		return nil, fail(authn.Malformed, "signature: "+err.Error())
	}

	// The first label whose keyid is known decides.
	var (
		in  *member
		key *Key
	)
	for i := range inDict {
		m := &inDict[i]
		if !m.isList {
			return nil, fail(authn.Malformed, "signature-input member is not an inner list")
		}
		kid, ok := m.param("keyid")
		if !ok {
			continue
		}
		if kid.kind != kindString {
			return nil, fail(authn.Malformed, "keyid is not a string")
		}
		if k, ok := a.keys[kid.s]; ok {
			in, key = m, k
			break
		}
	}
	if in == nil {
		return nil, fail(authn.Unknown, "no signature with a known keyid")
	}
	sm, ok := sigDict.get(in.key)
	if !ok {
		return nil, fail(authn.Malformed, "no signature for the selected label")
	}
	if sm.isList || sm.item.bare.kind != kindBytes {
		return nil, fail(authn.Malformed, "signature is not a byte sequence")
	}
	p, err := signatureParams(in.params)
	if err != nil {
		return nil, err
	}
	if p.alg != "" && p.alg != key.Alg {
		return nil, fail(authn.Invalid, "alg parameter does not match the key")
	}
	now := a.now().Unix()
	switch {
	case p.created > now+int64(a.skew/time.Second):
		return nil, fail(authn.Expired, "signature created in the future")
	case now-p.created > int64(a.maxAge/time.Second):
		return nil, fail(authn.Expired, "signature older than max age")
	case p.hasExpires && p.expires <= p.created:
		return nil, fail(authn.Invalid, "signature expires before it was created")
	case p.hasExpires && now > p.expires+int64(a.skew/time.Second):
		return nil, fail(authn.Expired, "signature expired")
	}
	if p.nonce == "" && a.requireNonce {
		return nil, fail(authn.Invalid, "signature has no nonce")
	}

	covered, err := coveredComponents(in.list)
	if err != nil {
		return nil, err
	}
	for _, req := range a.required {
		if !req.coveredBy(covered) {
			return nil, fail(authn.Invalid, "required component not covered: "+req.name)
		}
	}

	t := parseTarget(r)
	base, err := a.signatureBase(r, &t, covered, in)
	if err != nil {
		return nil, err
	}
	if !key.verify(base, sm.item.bare.b) {
		return nil, fail(authn.Invalid, "signature does not verify")
	}

	for i := range covered {
		if covered[i].name == "content-digest" {
			if err := a.checkContentDigest(r); err != nil {
				return nil, err
			}
			break
		}
	}

	if p.nonce != "" && a.nonces != nil {
		ctx, cancel := context.WithTimeout(r.Context(), a.nonceTimeout)
		fresh, err := a.nonces.Claim(ctx, key.ID+"\x00"+p.nonce, a.maxAge+a.skew)
		cancel()
		if err != nil {
			return nil, fail(authn.Unavailable, "nonce store: "+err.Error())
		}
		if !fresh {
			return nil, fail(authn.Replayed, "nonce seen before")
		}
	}
	return key.consumer, nil
}

type sigParams struct {
	created, expires int64
	hasExpires       bool
	nonce, alg       string
}

// signatureParams reads the parameters RFC 9421 §2.3 defines; others are
// kept (they are signed) but not interpreted.
func signatureParams(ps []param) (sigParams, error) {
	var p sigParams
	hasCreated := false
	for _, pr := range ps {
		v := pr.val
		switch pr.key {
		case "created", "expires":
			if v.kind != kindInteger || v.i < 0 {
				return p, fail(authn.Malformed, pr.key+" is not a non-negative integer")
			}
			if pr.key == "created" {
				p.created, hasCreated = v.i, true
			} else {
				p.expires, p.hasExpires = v.i, true
			}
		case "nonce", "alg", "keyid", "tag":
			if v.kind != kindString {
				return p, fail(authn.Malformed, pr.key+" is not a string")
			}
			switch pr.key {
			case "nonce":
				if v.s == "" || len(v.s) > MaxNonceLen {
					return p, fail(authn.Malformed, "nonce empty or too long")
				}
				p.nonce = v.s
			case "alg":
				p.alg = v.s
			}
		}
	}
	if !hasCreated {
		return p, fail(authn.Invalid, "signature has no created parameter")
	}
	return p, nil
}

// checkContentDigest reads the body (bounded), puts it back for the
// upstream, and matches it against the Content-Digest field (RFC 9530):
// every member of a supported algorithm (sha-256, sha-512) must match, and
// there must be at least one.
func (a *Authenticator) checkContentDigest(r *http.Request) error {
	field, ok := headerValue(r.Header, "Content-Digest")
	if !ok {
		return fail(authn.Malformed, "content-digest too large")
	}
	d, err := parseContentDigest(field)
	if err != nil {
		return err
	}
	body, err := a.readBody(r)
	if err != nil {
		return err
	}
	var s256 [sha256.Size]byte
	var s512 [sha512.Size]byte
	var have256, have512 bool
	matched := 0
	for _, m := range d {
		var sum []byte
		switch m.key {
		case "sha-256":
			if !have256 {
				s256, have256 = sha256.Sum256(body), true
			}
			sum = s256[:]
		case "sha-512":
			if !have512 {
				s512, have512 = sha512.Sum512(body), true
			}
			sum = s512[:]
		default:
			continue // unknown or insecure algorithms are ignored
		}
		if subtle.ConstantTimeCompare(sum, m.item.bare.b) != 1 {
			return fail(authn.Invalid, "content-digest does not match the body")
		}
		matched++
	}
	if matched == 0 {
		return fail(authn.Invalid, "content-digest has no sha-256 or sha-512 member")
	}
	return nil
}

// parseContentDigest parses a Content-Digest field: a dictionary whose
// members are byte sequences.
func parseContentDigest(field string) (dictionary, error) {
	d, err := parseDictionary(field, MaxSignatures)
	if err != nil {
		return nil, fail(authn.Malformed, "content-digest: "+err.Error())
	}
	for i := range d {
		if d[i].isList || d[i].item.bare.kind != kindBytes {
			return nil, fail(authn.Malformed, "content-digest member is not a byte sequence")
		}
	}
	return d, nil
}

// readBody reads the whole body, at most maxBody bytes, and replaces
// r.Body with a reader over the same bytes.
func (a *Authenticator) readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > a.maxBody {
		return nil, fmt.Errorf("httpsig: body for content-digest: %w", &http.MaxBytesError{Limit: a.maxBody})
	}
	size := int64(512)
	if r.ContentLength > 0 {
		size = r.ContentLength + 1 // +1 so ReadAll sees EOF without growing
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	n, err := buf.ReadFrom(io.LimitReader(r.Body, a.maxBody+1))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, fmt.Errorf("httpsig: body for content-digest: %w", err)
		}
		return nil, fail(authn.Malformed, "body could not be read")
	}
	if n > a.maxBody {
		return nil, fmt.Errorf("httpsig: body for content-digest: %w", &http.MaxBytesError{Limit: a.maxBody})
	}
	body := buf.Bytes()
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return body, nil
}
