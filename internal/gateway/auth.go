package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/breakwater/breakwater/internal/authn"
	"github.com/breakwater/breakwater/internal/authn/httpsig"
	"github.com/breakwater/breakwater/internal/authn/introspect"
	"github.com/breakwater/breakwater/internal/authn/jwtauth"
	"github.com/breakwater/breakwater/internal/authn/mtlsauth"
	"github.com/breakwater/breakwater/internal/authz"
	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/problem"
	"github.com/breakwater/breakwater/internal/ratelimit"
	"github.com/breakwater/breakwater/internal/reqctx"
	"github.com/breakwater/breakwater/internal/telemetry"
	"github.com/breakwater/breakwater/internal/tokens"
)

// authSet is what one config's authenticators are built into.
type authSet struct {
	byName map[string]authn.Authenticator
	// tokens serves the OAuth2 endpoints, signing with keys, to the
	// consumers of clients by client id (all nil without token_endpoint).
	tokens  *tokens.Server
	keys    *tokens.KeyRing
	clients map[string]*authn.Consumer
	// credentialParams are the query parameters api_key authenticators read
	// keys from: the access log redacts them whatever they are called.
	credentialParams []string
}

// buildAuth builds the authenticators of cfg. Key sets fetched from
// identity providers and the gateway's own signing keys outlive the
// snapshot (see keySets and Gateway.keyRing).
func (g *Gateway) buildAuth(cfg *config.Config, jwks *keySets) (*authSet, error) {
	ring, consumers, err := authn.NewKeyRing(cfg.Consumers)
	if err != nil {
		return nil, fmt.Errorf("consumers: %w", err)
	}
	set := &authSet{byName: make(map[string]authn.Authenticator, len(cfg.Authenticators))}

	if te := cfg.TokenEndpoint; te != nil {
		if set.keys, err = g.keyRing(cfg); err != nil {
			return nil, err
		}
		clients, err := tokens.ClientsFromConfig(cfg.Consumers, consumers)
		if err != nil {
			return nil, fmt.Errorf("consumers: %w", err)
		}
		set.clients = make(map[string]*authn.Consumer, len(clients))
		for _, c := range clients {
			set.clients[c.ID] = c.Consumer
		}
		set.tokens, err = tokens.NewServer(tokens.Options{
			Issuer:      te.Issuer,
			TTL:         te.TTL.D(),
			Keys:        set.keys,
			Clients:     clients,
			Revocations: g.revoked,
			Limit:       g.tokenLimit(*te.RateLimit),
			OnFailure:   g.tokenFailure,
		})
		if err != nil {
			return nil, fmt.Errorf("token_endpoint: %w", err)
		}
	}

	for _, name := range slices.Sorted(maps.Keys(cfg.Authenticators)) {
		a := cfg.Authenticators[name]
		p := "authenticators." + name
		var built authn.Authenticator
		switch a.Type {
		case "api_key":
			built = authn.NewAPIKey(a, ring)
			if a.Query != "" {
				set.credentialParams = append(set.credentialParams, a.Query)
			}
		case "jwt":
			built, err = jwtAuthenticator(name, a, cfg, consumers, jwks, set)
		case "introspection":
			built, err = introspect.New(introspect.Options{
				Name: name, URL: a.URL, ClientID: a.ClientID, ClientSecret: a.ClientSecret,
				Cache:         a.Cache.D(),
				Consumers:     consumers, // by the id in the answer's client_id (or consumer_claim)
				ConsumerClaim: a.ConsumerClaim,
				Logger:        g.logger,
			})
		case "mtls":
			built, err = mtlsAuthenticator(a, cfg, consumers)
		case "http_signature":
			built, err = g.signatureAuthenticator(a, cfg, consumers)
		default:
			err = fmt.Errorf("type %q is not available in this version", a.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		set.byName[name] = built
	}
	return set, nil
}

// jwtAuthenticator builds a jwt authenticator: tokens of an identity
// provider checked against its JWKS, or (issuer self) the gateway's own.
func jwtAuthenticator(name string, a config.Authenticator, cfg *config.Config,
	consumers map[string]*authn.Consumer, jwks *keySets, own *authSet) (authn.Authenticator, error) {
	o := jwtauth.Options{
		Name: name, Issuer: a.Issuer, Audience: a.Audience, Algorithms: a.Algorithms, Leeway: a.Leeway.D(),
		ConsumerClaim: a.ConsumerClaim,
	}
	if a.Issuer == "self" {
		if own.tokens == nil {
			return nil, errors.New("issuer self needs token_endpoint")
		}
		o.Issuer = cfg.TokenEndpoint.Issuer
		o.Algorithms = []string{tokens.EdDSA, tokens.ES256, tokens.RS256} // each key is bound to its own algorithm
		o.Keys = ownKeys{own.keys}
		o.Revoked = own.tokens.Revoked
	} else {
		o.Keys = jwks.get(a.JWKSURL)
	}
	switch {
	case a.ConsumerClaim != "":
		o.Consumers = consumers // the claim's value is the consumer id
	case a.Issuer == "self":
		o.ConsumerClaim, o.Consumers = "client_id", own.clients
	default:
		o.Consumers = jwtSubjects(name, cfg, consumers)
	}
	return jwtauth.New(o)
}

// ownKeys adapts the gateway's signing keys to a jwtauth key set.
type ownKeys struct{ ring *tokens.KeyRing }

func (k ownKeys) Key(ctx context.Context, kid string) (jwtauth.Key, error) {
	pub, alg, ok := k.ring.PublicKeyContext(ctx, kid)
	if !ok {
		return jwtauth.Key{}, jwtauth.ErrUnknownKey
	}
	return jwtauth.Key{ID: kid, Public: pub, Alg: alg}, nil
}

// jwtSubjects maps the "sub" of a jwt authenticator's tokens to consumers.
func jwtSubjects(name string, cfg *config.Config, consumers map[string]*authn.Consumer) map[string]*authn.Consumer {
	out := map[string]*authn.Consumer{}
	for _, cc := range cfg.Consumers {
		for _, cr := range cc.Credentials {
			if j := cr.JWT; j != nil && j.Authenticator == name {
				out[j.Subject] = consumers[cc.ID]
			}
		}
	}
	return out
}

func mtlsAuthenticator(a config.Authenticator, cfg *config.Config, consumers map[string]*authn.Consumer) (authn.Authenticator, error) {
	caFile := cfg.Resolve(cfg.TLS.ClientCAFile)
	roots, err := mtlsauth.LoadCAFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("tls.client_ca_file: %w", err)
	}
	o := mtlsauth.Options{Roots: roots}
	if a.CRLFile != "" {
		cas, err := mtlsauth.LoadCACerts(caFile)
		if err != nil {
			return nil, fmt.Errorf("tls.client_ca_file: %w", err)
		}
		if o.CRLs, err = mtlsauth.LoadCRLFile(cfg.Resolve(a.CRLFile), cas, time.Now()); err != nil {
			return nil, fmt.Errorf("crl_file: %w", err)
		}
	}
	for _, cc := range cfg.Consumers {
		for _, cr := range cc.Credentials {
			m := cr.MTLS
			if m == nil {
				continue
			}
			id := mtlsauth.Identity{SubjectCN: m.SubjectCN, SANDNS: m.SANDNS, SANURI: m.SANURI, Consumer: consumers[cc.ID]}
			if m.SHA256 != "" {
				if id.SHA256, err = mtlsauth.ParseFingerprint(m.SHA256); err != nil {
					return nil, fmt.Errorf("consumer %s: %w", cc.ID, err)
				}
			}
			o.Identities = append(o.Identities, id)
		}
	}
	return mtlsauth.New(o)
}

func (g *Gateway) signatureAuthenticator(a config.Authenticator, cfg *config.Config, consumers map[string]*authn.Consumer) (authn.Authenticator, error) {
	o := httpsig.Options{MaxAge: a.MaxAge.D(), RequiredComponents: a.RequiredComponents, Nonces: g.nonces}
	// The body a digest check may read is bounded by the route's max_body
	// (the gateway's own limit on the body); this is the largest of them.
	for _, r := range cfg.Routes {
		o.MaxBody = max(o.MaxBody, int64(*r.MaxBody))
	}
	for _, cc := range cfg.Consumers {
		for _, cr := range cc.Credentials {
			if h := cr.HTTPSignature; h != nil {
				k, err := httpsig.FromCredential(*h, consumers[cc.ID])
				if err != nil {
					return nil, fmt.Errorf("consumer %s, key %s: %w", cc.ID, h.KeyID, err)
				}
				o.Keys = append(o.Keys, k)
			}
		}
	}
	return httpsig.New(o)
}

// keySets holds the JWKS of the identity providers in use. A key set is
// fetched once and refreshed in the background for as long as some config
// uses it: a reload reuses it instead of fetching again (no refetch storm
// against the provider, and a provider that is down at reload time does not
// take keys away).
type keySets struct {
	ctx    context.Context
	logger *slog.Logger
	sets   map[string]*keySet
}

type keySet struct {
	jwks   *jwtauth.JWKS
	cancel context.CancelFunc
	used   bool
}

func newKeySets(ctx context.Context, logger *slog.Logger) *keySets {
	return &keySets{ctx: ctx, logger: logger, sets: map[string]*keySet{}}
}

// next starts the key sets of a new config: those of the previous one are
// carried over, then release stops those the new config does not use.
func (k *keySets) next() *keySets {
	n := &keySets{ctx: k.ctx, logger: k.logger, sets: make(map[string]*keySet, len(k.sets))}
	for url, s := range k.sets {
		n.sets[url] = &keySet{jwks: s.jwks, cancel: s.cancel}
	}
	return n
}

func (k *keySets) get(url string) jwtauth.KeySet {
	if s, ok := k.sets[url]; ok {
		s.used = true
		return s.jwks
	}
	j, err := jwtauth.NewJWKS(jwtauth.JWKSOptions{URL: url, Logger: k.logger})
	if err != nil {
		// Validation checked the URL; a failure here is a bug, and the
		// authenticator fails closed.
		k.logger.Error("jwks not usable", "url", url, "err", err.Error())
		return unavailableKeys{}
	}
	ctx, cancel := context.WithCancel(k.ctx)
	j.Start(ctx)
	k.sets[url] = &keySet{jwks: j, cancel: cancel, used: true}
	return j
}

// release stops the key sets the config does not use.
func (k *keySets) release() {
	for url, s := range k.sets {
		if !s.used {
			s.cancel()
			delete(k.sets, url)
		}
	}
}

// discard stops the key sets started for a config that was not applied.
func (k *keySets) discard(prev *keySets) {
	for url, s := range k.sets {
		if prev == nil || prev.sets[url] == nil {
			s.cancel()
		}
	}
}

type unavailableKeys struct{}

func (unavailableKeys) Key(context.Context, string) (jwtauth.Key, error) {
	return jwtauth.Key{}, jwtauth.ErrKeysUnavailable
}

// identityRing returns the keys that sign X-Gateway-Identity, opening them
// in data_dir on first use. They are apart from the access token keys and
// always Ed25519: the header is signed on every request, and an Ed25519
// signature costs about 16 µs where an RSA one costs milliseconds.
func (g *Gateway) identityRing(cfg *config.Config) (*tokens.KeyRing, error) {
	g.keysMu.Lock()
	defer g.keysMu.Unlock()
	if g.identity != nil {
		return g.identity, nil
	}
	o := tokens.KeyRingOptions{
		Dir: filepath.Join(keysDir(cfg.Server.DataDir), "identity"), Algorithm: tokens.EdDSA,
		RotateEvery: config.DefaultTokenRotateEvery.D(), MaxTokenTTL: tokens.IdentityTTL, Logger: g.logger,
	}
	if g.redis != nil { // shared with the other instances
		o.Store = tokens.NewRedisKeyStore(g.redis, "identity")
	}
	keys, err := tokens.OpenKeyRing(o)
	if err != nil {
		return nil, fmt.Errorf("identity signing keys: %w", err)
	}
	keys.Start(g.ctx)
	g.identity = keys
	return keys, nil
}

// keyRing returns the access token signing keys, opening them in data_dir
// on first use and following the token endpoint's settings.
func (g *Gateway) keyRing(cfg *config.Config) (*tokens.KeyRing, error) {
	g.keysMu.Lock()
	defer g.keysMu.Unlock()
	te := cfg.TokenEndpoint
	alg, rotate, ttl := te.Algorithm, te.RotateEvery.D(), te.TTL.D()
	if g.keys != nil {
		if err := g.keys.Configure(alg, rotate, ttl); err != nil {
			return nil, fmt.Errorf("signing keys: %w", err)
		}
		return g.keys, nil
	}
	o := tokens.KeyRingOptions{
		Dir: keysDir(cfg.Server.DataDir), Algorithm: alg, RotateEvery: rotate, MaxTokenTTL: ttl, Logger: g.logger,
	}
	if g.redis != nil { // shared with the other instances, so each accepts the others' tokens
		o.Store = tokens.NewRedisKeyStore(g.redis, "access")
	}
	keys, err := tokens.OpenKeyRing(o)
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	keys.Start(g.ctx)
	g.keys = keys
	return keys, nil
}

// tokenLimit limits the token endpoints per client IP and per client id
// with the rate of token_endpoint.rate_limit, against secret guessing.
func (g *Gateway) tokenLimit(rate config.Rate) func(ctx context.Context, key string) (bool, time.Duration) {
	limit := []ratelimit.Limit{{Name: "token_endpoint", Rate: rate}}
	return func(ctx context.Context, key string) (bool, time.Duration) {
		var d ratelimit.Decision
		err := g.limiter.Decide(ctx, time.Now(), ratelimit.Request{Keys: []string{ratelimit.Key("token_endpoint", key)}, Limits: limit}, &d)
		if err != nil {
			g.logger.Error("token endpoint rate limit failed", "err", err.Error())
			return false, time.Second // fail closed
		}
		if !d.Allowed {
			g.metrics.Rejected(telemetry.RejectRateLimited)
		}
		return d.Allowed, d.RetryAfter
	}
}

// tokenFailure records a failed client authentication at the token
// endpoints as a security event (the client id, never the secret).
func (g *Gateway) tokenFailure(r *http.Request, clientID, reason string) {
	st := reqctx.From(r)
	st.Reason = reason
	ev := telemetry.Event{Kind: telemetry.EventAuthFailure, RequestID: st.RequestID, Route: st.Route,
		Authenticator: "token_endpoint", Consumer: clientID, Reason: reason}
	if st.ClientIP.IsValid() {
		ev.ClientIP = st.ClientIPText
	}
	g.events.Emit(ev)
}

// keysDir is where the gateway's signing keys are kept.
func keysDir(dataDir string) string { return filepath.Join(dataDir, "keys") }

// oauthRoute is the route name of the gateway's own endpoints in logs and
// metrics; the colon keeps it apart from every configurable route name.
const oauthRoute = "breakwater:oauth2"

// publicKeys serves the gateway's public keys — those of its access tokens
// and of X-Gateway-Identity — as one JWKS at /.well-known/jwks.json.
type publicKeys struct {
	rings []*tokens.KeyRing

	mu   sync.Mutex
	src  [][]byte // the rings' JWKS that body was built from
	body []byte   // their keys as one set
}

func (k *publicKeys) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		problem.Write(w, r, http.StatusMethodNotAllowed)
		return
	}
	body, err := k.document()
	if err != nil {
		problem.Write(w, r, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/jwk-set+json")
	h.Set("Cache-Control", "public, max-age=60")
	_, _ = w.Write(body)
}

// document merges the rings' key sets, again only when one has changed
// (a rotation): the endpoint is public, so a request costs a comparison.
func (k *publicKeys) document() ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	current := make([][]byte, len(k.rings))
	same := len(k.src) == len(k.rings)
	for i, ring := range k.rings {
		current[i] = ring.JWKS()
		same = same && bytes.Equal(current[i], k.src[i])
	}
	if same {
		return k.body, nil
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	for _, doc := range current {
		var one struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if err := json.Unmarshal(doc, &one); err != nil {
			return nil, fmt.Errorf("jwks: %w", err)
		}
		set.Keys = append(set.Keys, one.Keys...)
	}
	body, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	k.src, k.body = current, body
	return body, nil
}

// allowedByPolicy evaluates the route's policy; false (or an evaluation
// error, which denies) sets st.Reason.
func (g *Gateway) allowedByPolicy(rt *route, r *http.Request, st *reqctx.State) bool {
	ok, err := rt.policy.Eval(r.Context(), &authz.Input{
		Method: r.Method, CanonicalPath: st.Path, Params: st.Params, RawQuery: r.URL.RawQuery, Header: r.Header,
		Consumer: policyConsumer(st.Consumer),
	})
	switch {
	case err != nil:
		st.Reason = "policy error: " + err.Error()
	case !ok:
		st.Reason = "policy denied"
	}
	return ok && err == nil
}

func policyConsumer(c *authn.Consumer) *authz.Consumer {
	return &authz.Consumer{ID: c.ID, Scopes: c.Scopes, Claims: c.Claims}
}
