package gateway

import (
	"context"
	"fmt"
	"net/http"

	"github.com/breakwater/breakwater/internal/authn"
	"github.com/breakwater/breakwater/internal/authz"
	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/cors"
	"github.com/breakwater/breakwater/internal/edge"
	"github.com/breakwater/breakwater/internal/proxy"
	"github.com/breakwater/breakwater/internal/router"
	"github.com/breakwater/breakwater/internal/telemetry"
	"github.com/breakwater/breakwater/internal/tokens"
)

// snapshot is everything built from one config. It is immutable once
// published; a reload builds a new one and swaps the pointer.
type snapshot struct {
	cfg         *config.Config
	router      *router.Router
	routes      []route
	trusted     trustedProxies
	hsts        string
	hstsValue   []string // {hsts}, shared by every response
	maxInFlight int64
	maxURI      int
	cancel      context.CancelFunc // stops the upstreams' health checks

	consumerLimits map[string]*limitSet // consumers[].rate_limits by consumer id
	defence        *defence             // concurrency counters and bans (bans.go)
	// credentialParams are the query parameters api_key authenticators read
	// keys from: the access log redacts them whatever they are called.
	credentialParams []string
	// tokens serves the OAuth2 endpoints (nil without token_endpoint);
	// identity signs X-Gateway-Identity (nil when no route sends it); jwks
	// publishes the public keys of both (nil when neither exists).
	cors         *cors.Policy // nil without a cors section
	portal       *portal      // nil without a docs section
	tokens       *tokens.Server
	identity     *tokens.KeyRing
	jwks         *publicKeys
	oauthMetrics *telemetry.Route
}

// route is one compiled config route.
type route struct {
	name      string
	public    bool
	auth      []authn.Authenticator
	authNames []string
	limits    *limitSet // routes[].rate_limits; nil for none
	challenge string    // WWW-Authenticate of the route: the same for every failure
	scopes    []string
	maxBody   int64
	identity  bool          // send X-Gateway-Identity
	policy    *authz.Policy // routes[].policy; nil for none
	spec      *routeSpec    // routes[].openapi; nil for none
	upstream  *proxy.Upstream

	// Metric series, resolved at build time so a request does no lookup.
	metrics      *telemetry.Route
	authFailures []*telemetry.AuthFailures // parallel to auth
	noCredential *telemetry.AuthFailures   // authenticator "none"
}

// build compiles cfg. It starts nothing: activate starts health checks once
// the snapshot is about to serve.
func (g *Gateway) build(cfg *config.Config, jwks *keySets) (*snapshot, error) {
	logger, m := g.logger, g.metrics
	trusted, err := parseTrusted(cfg.Server.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("server.trusted_proxies: %w", err)
	}
	auth, err := g.buildAuth(cfg, jwks)
	if err != nil {
		return nil, err
	}
	pub := &publicKeys{}
	if auth.keys != nil {
		pub.rings = append(pub.rings, auth.keys)
	}
	auths := auth.byName

	consumerLimits, routeLimits, err := compileLimits(cfg)
	if err != nil {
		return nil, fmt.Errorf("rate_limits: %w", err)
	}

	hsts := edge.HSTS(cfg.TLS.HSTS)
	s := &snapshot{
		consumerLimits:   consumerLimits,
		defence:          g.buildDefence(cfg),
		credentialParams: auth.credentialParams,
		tokens:           auth.tokens,
		oauthMetrics:     m.Route(oauthRoute),
		jwks:             pub,
		cfg:              cfg,
		trusted:          trusted,
		hsts:             hsts,
		hstsValue:        []string{hsts},
		maxInFlight:      int64(cfg.Server.Limits.MaxInFlight),
		maxURI:           int(cfg.Server.Limits.MaxURIBytes),
		routes:           make([]route, len(cfg.Routes)),
	}
	specs := specCache{}
	for i := range cfg.Routes {
		rc := &cfg.Routes[i] // defaults applied by config.Parse: MaxBody and MaskUpstreamErrors are set
		rt := route{name: rc.Name, public: rc.Public(), scopes: rc.Scopes, maxBody: int64(*rc.MaxBody),
			limits: routeLimits[i], identity: *rc.Identity && !rc.Public()}
		if rt.identity && s.identity == nil {
			if s.identity, err = g.identityRing(cfg); err != nil {
				s.close()
				return nil, err
			}
			pub.rings = append(pub.rings, s.identity)
		}
		if rc.Policy != "" {
			if rt.policy, err = authz.Compile(rc.Policy); err != nil {
				s.close()
				return nil, fmt.Errorf("routes[%d].policy: %w", i, err)
			}
		}
		rt.metrics = m.Route(rc.Name)
		if !rt.public {
			if err := rt.useAuthenticators(rc.Auth, auths); err != nil {
				s.close()
				return nil, fmt.Errorf("routes[%d].auth: %w", i, err)
			}
		}
		if rt.spec, err = specs.routeSpec(cfg, rc); err != nil {
			s.close()
			return nil, fmt.Errorf("routes[%d].openapi.spec: %w", i, err)
		}
		var filter func(*http.Response) error
		if rt.spec != nil && rt.spec.filterResponses {
			filter = rt.spec.filter
		}
		up, err := proxy.New(rc.Upstream, proxy.Options{
			FilterResponse:     filter,
			Route:              rc.Name,
			Resolve:            cfg.Resolve,
			MaskUpstreamErrors: *rc.MaskUpstreamErrors,
			OwnCORS:            cfg.CORS != nil,
			Logger:             logger,
		})
		if err != nil {
			s.close()
			return nil, fmt.Errorf("routes[%d].upstream: %w", i, err)
		}
		rt.upstream = up
		s.routes[i] = rt
	}
	rtr, err := router.New(cfg.RouterSpecs())
	if err != nil {
		s.close()
		return nil, fmt.Errorf("routes: %w", err)
	}
	s.router = rtr
	if err := s.buildEdgeServices(cfg, auths, m); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// activate starts the background work of the snapshot (health checks).
func (s *snapshot) activate(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	for i := range s.routes {
		s.routes[i].upstream.Start(ctx)
	}
}

// close stops health checks and closes idle upstream connections. Requests
// still in flight on this snapshot finish normally.
func (s *snapshot) close() {
	if s.cancel != nil {
		s.cancel()
	}
	for i := range s.routes {
		if up := s.routes[i].upstream; up != nil {
			up.Close()
		}
	}
}
