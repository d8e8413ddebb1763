package tokens

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/breakwater/breakwater/internal/authn"
	"github.com/breakwater/breakwater/internal/reqctx"
	"github.com/breakwater/breakwater/internal/secret"
	"github.com/breakwater/breakwater/internal/state"
)

// Paths the Server answers.
const (
	TokenPath      = "/oauth2/token"
	IntrospectPath = "/oauth2/introspect"
	RevokePath     = "/oauth2/revoke"
	JWKSPath       = "/.well-known/jwks.json"
	MetadataPath   = "/.well-known/oauth-authorization-server"
)

// AccessTokenType is the typ header of access tokens (RFC 9068).
const AccessTokenType = "at+jwt"

// storeTimeout bounds one call to the revocation store.
const storeTimeout = 2 * time.Second

// maxScopes bounds the scope tokens of one token request.
const maxScopes = 64

// Client is an OAuth2 client: a consumer's oauth_client credential.
type Client struct {
	ID         string
	SecretHash secret.Digest
	Consumer   *authn.Consumer
}

// Options configure a Server.
type Options struct {
	// Issuer is token_endpoint.issuer, e.g. https://api.example.com: the
	// iss and aud of access tokens and the base of the metadata URLs. It
	// must be an https URL without path, query or fragment (http only on
	// loopback hosts).
	Issuer string
	// TTL is the access token lifetime; at most the key ring's MaxTokenTTL.
	TTL time.Duration
	// Keys signs and verifies the tokens. Required.
	Keys *KeyRing
	// Clients are the oauth_client credentials of the consumers.
	Clients []Client
	// Revocations is the shared revocation list. Required.
	Revocations state.Revocations
	// Limit is asked before any work with "ip:<client address>" and before
	// a secret is checked with "client:<presented client id>" (known or
	// not, so that a limit says nothing about which ids exist; the limiter
	// must be bounded). A refusal is answered 429 with Retry-After and
	// {"error":"slow_down"}. nil means no limit.
	Limit func(ctx context.Context, key string) (ok bool, retryAfter time.Duration)
	// OnFailure is told about security events: bad secret, unknown client,
	// malformed client authentication, a token presented by a client it
	// was not issued to. clientID is the presented one (at most 256 bytes,
	// UTF-8, no control characters) or "". reason is for logs. nil is fine.
	OnFailure func(r *http.Request, clientID, reason string)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server answers the OAuth2 endpoints: client credentials grant (RFC 6749
// §4.4), introspection (RFC 7662), revocation (RFC 7009), the JWKS and the
// authorization server metadata (RFC 8414). Access tokens are RFC 9068
// JWTs. It is built per config and cheap to build.
//
// Introspection and revocation are client-authenticated and only see the
// caller's own tokens: a token issued to another client is introspected as
// {"active":false} and its revocation is a no-op (answered 200 like any
// other), so a client can neither learn about nor revoke another client's
// tokens, nor tell them apart from garbage.
type Server struct {
	issuer      string
	ttl         time.Duration
	keys        *KeyRing
	clients     map[string]*Client
	dummy       secret.Digest
	revocations state.Revocations
	limit       func(ctx context.Context, key string) (bool, time.Duration)
	onFailure   func(r *http.Request, clientID, reason string)
	now         func() time.Time
	metadata    []byte
	parser      *jwt.Parser
}

// NewServer checks o and builds a Server.
func NewServer(o Options) (*Server, error) {
	if o.Keys == nil {
		return nil, errors.New("token server: no key ring")
	}
	if o.Revocations == nil {
		return nil, errors.New("token server: no revocation store")
	}
	base, err := checkIssuer(o.Issuer)
	if err != nil {
		return nil, fmt.Errorf("token server: %w", err)
	}
	if maxTTL := o.Keys.cur.Load().maxTTL; o.TTL <= 0 || o.TTL > maxTTL {
		return nil, fmt.Errorf("token server: ttl %v: want a positive duration of at most the key ring's maximum token lifetime %v", o.TTL, maxTTL)
	}
	s := &Server{
		issuer:      o.Issuer,
		ttl:         o.TTL,
		keys:        o.Keys,
		clients:     make(map[string]*Client, len(o.Clients)),
		revocations: o.Revocations,
		limit:       o.Limit,
		onFailure:   o.OnFailure,
		now:         o.Now,
	}
	if s.now == nil {
		s.now = time.Now
	}
	for i := range o.Clients {
		c := &o.Clients[i]
		switch _, dup := s.clients[c.ID]; {
		case c.ID == "" || len(c.ID) > maxClientIDLen:
			return nil, fmt.Errorf("token server: client %d: id must be 1 to %d bytes", i, maxClientIDLen)
		case dup:
			return nil, fmt.Errorf("token server: client id %q used twice", c.ID)
		case c.SecretHash.IsZero():
			return nil, fmt.Errorf("token server: client %q: no secret hash", c.ID)
		case c.Consumer == nil:
			return nil, fmt.Errorf("token server: client %q: no consumer", c.ID)
		}
		s.clients[c.ID] = c
	}
	var pad [32]byte
	if _, err := rand.Read(pad[:]); err != nil {
		return nil, fmt.Errorf("token server: %w", err)
	}
	s.dummy = secret.Sum(pad[:])
	s.metadata, err = json.Marshal(metadata{
		Issuer:                  o.Issuer,
		TokenEndpoint:           base + TokenPath,
		IntrospectionEndpoint:   base + IntrospectPath,
		RevocationEndpoint:      base + RevokePath,
		JWKSURI:                 base + JWKSPath,
		GrantTypes:              []string{"client_credentials"},
		TokenAuthMethods:        authMethods,
		IntrospectionAuthMethod: authMethods,
		RevocationAuthMethods:   authMethods,
		ResponseTypes:           []string{},
	})
	if err != nil {
		return nil, fmt.Errorf("token server: encoding metadata: %w", err)
	}
	s.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{EdDSA, ES256, RS256}),
		jwt.WithIssuer(o.Issuer),
		jwt.WithAudience(o.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(s.now),
	)
	return s, nil
}

var authMethods = []string{"client_secret_basic", "client_secret_post"}

// metadata is the RFC 8414 document. It never lists scopes.
//
// response_types_supported is REQUIRED by RFC 8414 §2 but describes the
// authorization endpoint, which Breakwater does not have (client
// credentials needs none): the empty list says that no response type is
// supported.
type metadata struct {
	Issuer                  string   `json:"issuer"`
	TokenEndpoint           string   `json:"token_endpoint"`
	IntrospectionEndpoint   string   `json:"introspection_endpoint"`
	RevocationEndpoint      string   `json:"revocation_endpoint"`
	JWKSURI                 string   `json:"jwks_uri"`
	GrantTypes              []string `json:"grant_types_supported"`
	TokenAuthMethods        []string `json:"token_endpoint_auth_methods_supported"`
	IntrospectionAuthMethod []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationAuthMethods   []string `json:"revocation_endpoint_auth_methods_supported"`
	ResponseTypes           []string `json:"response_types_supported"`
}

// checkIssuer returns scheme://host of a valid issuer.
func checkIssuer(iss string) (string, error) {
	u, err := url.Parse(iss)
	if err != nil {
		return "", fmt.Errorf("issuer %q: %w", iss, err)
	}
	switch {
	case u.Host == "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || (u.Path != "" && u.Path != "/"):
		return "", fmt.Errorf("issuer %q: want https://host[:port] with no path, query or fragment", iss)
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	default:
		return "", fmt.Errorf("issuer %q: want an https URL (http only on loopback)", iss)
	}
	return u.Scheme + "://" + u.Host, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Handles reports whether path is one of the Server's five paths.
func (s *Server) Handles(path string) bool {
	switch path {
	case TokenPath, IntrospectPath, RevokePath, JWKSPath, MetadataPath:
		return true
	}
	return false
}

// Revoked reports whether the access token with this jti was revoked (for
// the `issuer: self` jwt authenticator).
func (s *Server) Revoked(ctx context.Context, jti string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	revoked, err := s.revocations.Revoked(ctx, jti)
	if err != nil {
		return false, fmt.Errorf("checking revocation: %w", err)
	}
	return revoked, nil
}

// ServeHTTP routes the five paths by r.URL.Path; anything else is 404.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.Handles(r.URL.Path) {
		http.NotFound(w, r)
		return
	}
	if !s.allow(w, r, "ip:"+clientIP(r)) {
		return
	}
	switch r.URL.Path {
	case JWKSPath:
		if s.onlyMethods(w, r, "GET, HEAD", http.MethodGet, http.MethodHead) {
			writeJSON(w, http.StatusOK, s.keys.JWKS(), "public, max-age=60", "application/jwk-set+json")
		}
	case MetadataPath:
		if s.onlyMethods(w, r, "GET, HEAD", http.MethodGet, http.MethodHead) {
			writeJSON(w, http.StatusOK, s.metadata, "public, max-age=3600", "application/json")
		}
	case TokenPath:
		if s.onlyMethods(w, r, "POST", http.MethodPost) {
			s.token(w, r)
		}
	case IntrospectPath:
		if s.onlyMethods(w, r, "POST", http.MethodPost) {
			s.introspect(w, r)
		}
	case RevokePath:
		if s.onlyMethods(w, r, "POST", http.MethodPost) {
			s.revoke(w, r)
		}
	}
}

func clientIP(r *http.Request) string {
	if ip := reqctx.From(r).ClientIPText; ip != "" {
		return ip
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

func (s *Server) onlyMethods(w http.ResponseWriter, r *http.Request, allow string, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", allow)
	s.writeError(w, r, &oauthError{status: http.StatusMethodNotAllowed, code: "invalid_request", desc: "method not allowed", reason: "method not allowed"})
	return false
}

// allow asks the limiter; on refusal it answers 429.
func (s *Server) allow(w http.ResponseWriter, r *http.Request, key string) bool {
	if s.limit == nil {
		return true
	}
	ok, retry := s.limit(r.Context(), key)
	if ok {
		return true
	}
	secs := max(int64((retry+time.Second-1)/time.Second), 1)
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	s.writeError(w, r, &oauthError{status: http.StatusTooManyRequests, code: "slow_down", desc: "too many requests; retry later", reason: "rate limited: " + strings.SplitN(key, ":", 2)[0]})
	return false
}

// authenticate reads the form and the client credentials and checks the
// secret with the same work for known and unknown clients.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (*Client, url.Values, bool) {
	if e := checkFormRequest(r); e != nil {
		s.writeError(w, r, e)
		return nil, nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxFormBytes))
	if err != nil {
		s.writeError(w, r, invalidRequest("form body too large or unreadable"))
		return nil, nil, false
	}
	form, e := parseForm(body)
	if e != nil {
		s.writeError(w, r, e)
		return nil, nil, false
	}
	creds, e := parseClientAuth(r.Header.Values("Authorization"), form)
	if e != nil {
		s.failure(r, "", e.reason)
		s.writeError(w, r, e)
		return nil, nil, false
	}
	if !s.allow(w, r, "client:"+creds.id) {
		return nil, nil, false
	}
	c, known := s.clients[creds.id]
	want := s.dummy
	if known {
		want = c.SecretHash
	}
	match := secret.SumString(creds.secret).Equal(want)
	switch {
	case !known:
		s.failure(r, creds.id, "unknown client")
	case !match:
		s.failure(r, creds.id, "wrong client secret")
	default:
		return c, form, true
	}
	s.writeError(w, r, invalidClient("client authentication failed", creds.basic))
	return nil, nil, false
}

func (s *Server) failure(r *http.Request, clientID, reason string) {
	reqctx.From(r).Reason = reason
	if s.onFailure != nil {
		s.onFailure(r, clientID, reason)
	}
}

// accessClaims are the claims of an access token (RFC 9068 §2.2).
type accessClaims struct {
	jwt.RegisteredClaims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope,omitempty"`
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	c, form, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	switch gt := form.Get("grant_type"); gt {
	case "client_credentials":
	case "":
		s.writeError(w, r, invalidRequest("no grant_type"))
		return
	default:
		s.writeError(w, r, &oauthError{status: http.StatusBadRequest, code: "unsupported_grant_type", desc: "only client_credentials is supported", reason: "unsupported grant type"})
		return
	}
	scope, e := grantScope(c.Consumer, form.Get("scope"))
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	tok, err := s.issue(c.ID, scope)
	if err != nil {
		s.writeError(w, r, &oauthError{status: http.StatusInternalServerError, code: "server_error", desc: "the token could not be issued", reason: err.Error()})
		return
	}
	body, err := json.Marshal(tokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int64(s.ttl / time.Second), Scope: scope})
	if err != nil {
		s.writeError(w, r, &oauthError{status: http.StatusInternalServerError, code: "server_error", desc: "the token could not be issued", reason: err.Error()})
		return
	}
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, body, "no-store", "application/json")
}

// grantScope returns the scopes to grant: those requested (RFC 6749 §3.3
// scope tokens, space-delimited), which must all belong to the consumer, or
// all of the consumer's when none are requested. The result is sorted and
// unique.
func grantScope(c *authn.Consumer, requested string) (string, *oauthError) {
	if requested == "" {
		return c.ScopeText, nil
	}
	bad := &oauthError{status: http.StatusBadRequest, code: "invalid_scope", desc: "the requested scope is invalid or exceeds what the client may have"}
	want := strings.Split(requested, " ")
	if len(want) > maxScopes {
		bad.reason = "too many scopes requested"
		return "", bad
	}
	for _, w := range want {
		if w == "" || strings.ContainsFunc(w, func(r rune) bool { return r <= 0x20 || r == '"' || r == '\\' || r >= 0x7f }) {
			bad.reason = "malformed scope"
			return "", bad
		}
	}
	if !c.HasScopes(want) {
		bad.reason = "scope not granted to the client"
		return "", bad
	}
	// Consumer scopes are sorted and unique: keep theirs in that order.
	var b strings.Builder
	for _, have := range c.Scopes {
		for _, w := range want {
			if w == have {
				if b.Len() > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(have)
				break
			}
		}
	}
	return b.String(), nil
}

// issue signs an access token for clientID.
func (s *Server) issue(clientID, scope string) (string, error) {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", fmt.Errorf("jti: %w", err)
	}
	now := s.now().Truncate(time.Second)
	exp := now.Add(s.ttl)
	claims := &accessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.issuer,
			Subject:   clientID,
			Audience:  jwt.ClaimStrings{s.issuer},
			ExpiresAt: jwt.NewNumericDate(exp),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ID:        base64.RawURLEncoding.EncodeToString(id[:]),
		},
		ClientID: clientID,
		Scope:    scope,
	}
	return s.keys.Sign(claims, AccessTokenType)
}

// ownToken verifies an access token of this gateway issued to clientID.
// It returns nil and a log reason otherwise.
func (s *Server) ownToken(tok, clientID string) (*accessClaims, string) {
	if tok == "" || len(tok) > maxTokenLen {
		return nil, "token missing or too long"
	}
	var claims accessClaims
	_, err := s.parser.ParseWithClaims(tok, &claims, func(t *jwt.Token) (any, error) {
		typ, _ := t.Header["typ"].(string)
		if !strings.EqualFold(typ, AccessTokenType) && !strings.EqualFold(typ, "application/"+AccessTokenType) {
			return nil, errors.New("not an access token")
		}
		kid, _ := t.Header["kid"].(string)
		pub, alg, ok := s.keys.PublicKey(kid)
		if !ok || alg != t.Method.Alg() {
			return nil, errors.New("unknown key")
		}
		return pub, nil
	})
	switch {
	case err != nil:
		return nil, "token not valid"
	case claims.ID == "":
		return nil, "token without jti"
	case claims.ClientID != clientID || claims.Subject != clientID:
		return nil, "token of another client"
	}
	return &claims, ""
}

type introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id"`
	Subject   string `json:"sub"`
	Exp       int64  `json:"exp"`
	Iat       int64  `json:"iat"`
	Issuer    string `json:"iss"`
	Audience  string `json:"aud"`
	JTI       string `json:"jti"`
	TokenType string `json:"token_type"`
}

var inactive = []byte(`{"active":false}`)

func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	claims, reason, ok := s.clientToken(w, r, "introspection")
	if !ok {
		return
	}
	if claims != nil {
		revoked, err := s.Revoked(r.Context(), claims.ID)
		switch {
		case err != nil:
			claims, reason = nil, "revocation store unavailable" // fail closed
		case revoked:
			claims, reason = nil, "token revoked"
		}
	}
	if claims == nil {
		reqctx.From(r).Reason = reason
		w.Header().Set("Pragma", "no-cache")
		writeJSON(w, http.StatusOK, inactive, "no-store", "application/json")
		return
	}
	body, err := json.Marshal(introspection{
		Active:    true,
		Scope:     claims.Scope,
		ClientID:  claims.ClientID,
		Subject:   claims.Subject,
		Exp:       claims.ExpiresAt.Unix(),
		Iat:       claims.IssuedAt.Unix(),
		Issuer:    claims.Issuer,
		Audience:  s.issuer,
		JTI:       claims.ID,
		TokenType: "Bearer",
	})
	if err != nil {
		body = inactive
	}
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, body, "no-store", "application/json")
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	claims, reason, ok := s.clientToken(w, r, "revocation")
	if !ok {
		return
	}
	if claims == nil {
		reqctx.From(r).Reason = reason
	} else {
		ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
		err := s.revocations.Revoke(ctx, claims.ID, claims.ExpiresAt.Time)
		cancel()
		if err != nil {
			// RFC 7009 §2.2.1: 503 tells the client to retry.
			w.Header().Set("Retry-After", "1")
			s.writeError(w, r, &oauthError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable", desc: "the token could not be revoked; retry later", reason: "revocation store: " + err.Error()})
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// clientToken authenticates the client of an introspection or revocation
// request and checks the token it names: claims is nil (with the reason)
// for anything but a valid token of this gateway issued to this client; a
// token of another client is a security event. ok is false when an error
// was answered.
func (s *Server) clientToken(w http.ResponseWriter, r *http.Request, what string) (claims *accessClaims, reason string, ok bool) {
	c, form, ok := s.authenticate(w, r)
	if !ok {
		return nil, "", false
	}
	tok := form.Get("token")
	if tok == "" {
		s.writeError(w, r, invalidRequest("no token"))
		return nil, "", false
	}
	claims, reason = s.ownToken(tok, c.ID)
	if claims == nil && reason == "token of another client" {
		reason = what + " of a token of another client"
		s.failure(r, c.ID, reason)
	}
	return claims, reason, true
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, e *oauthError) {
	if e.reason != "" {
		if st := reqctx.From(r); st.Reason == "" {
			st.Reason = e.reason
		}
	}
	if e.challenge {
		w.Header().Set("WWW-Authenticate", `Basic realm="breakwater"`)
	}
	body := make([]byte, 0, 64+len(e.desc))
	body = append(body, `{"error":`...)
	body = appendJSONString(body, e.code)
	if e.desc != "" {
		body = append(body, `,"error_description":`...)
		body = appendJSONString(body, e.desc)
	}
	body = append(body, '}')
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, e.status, body, "no-store", "application/json")
}

func writeJSON(w http.ResponseWriter, status int, body []byte, cacheControl, contentType string) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", cacheControl)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
