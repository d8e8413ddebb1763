package gateway

import (
	"context"
	"fmt"
	"net/http"

	"github.com/breakwater/breakwater/internal/authn"
	"github.com/breakwater/breakwater/internal/authz"
	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/cors"
	"github.com/breakwater/breakwater/internal/docs"
	"github.com/breakwater/breakwater/internal/problem"
	"github.com/breakwater/breakwater/internal/reqctx"
	"github.com/breakwater/breakwater/internal/telemetry"
)

// docsRoute is the route name of the documentation portal in logs and
// metrics.
const docsRoute = "breakwater:docs"

// portal is the gated documentation: the docs package's handler behind the
// authenticators of docs.auth.
type portal struct {
	*docs.Portal
	auth route // docs.auth, with its challenge and metric series
}

// useAuthenticators makes the named authenticators the route's, any one of
// which may authenticate a request; the challenge lists each once.
func (rt *route) useAuthenticators(names []string, auths map[string]authn.Authenticator) error {
	for _, name := range names {
		a, ok := auths[name]
		if !ok {
			return fmt.Errorf("no authenticator named %q", name)
		}
		rt.auth = append(rt.auth, a)
		rt.authNames = append(rt.authNames, name)
		rt.authFailures = append(rt.authFailures, rt.metrics.AuthFailures(name))
		if rt.noCredential == nil {
			rt.noCredential = rt.metrics.AuthFailures(telemetry.NoAuthenticator)
		}
		if rt.challenge == "" {
			rt.challenge = a.Challenge()
		} else if c := a.Challenge(); c != rt.challenge {
			rt.challenge += ", " + c
		}
	}
	return nil
}

// buildEdgeServices builds what the gateway answers itself before routing:
// CORS preflights and the documentation portal. The router must be built.
func (s *snapshot) buildEdgeServices(cfg *config.Config, auths map[string]authn.Authenticator, m *telemetry.Metrics) error {
	if cfg.CORS != nil {
		p, err := cors.New(*cfg.CORS)
		if err != nil {
			return fmt.Errorf("cors: %w", err)
		}
		s.cors = p
	}
	d := cfg.Docs
	if d == nil {
		return nil
	}
	specs, err := docs.ReadSpecs(cfg.Dir, d.Specs)
	if err != nil {
		return fmt.Errorf("docs.specs: %w", err)
	}
	p := &portal{auth: route{name: docsRoute, metrics: m.Route(docsRoute)}}
	if err := p.auth.useAuthenticators(d.Auth, auths); err != nil {
		return fmt.Errorf("docs.auth: %w", err)
	}
	p.Portal, err = docs.New(docs.Options{Path: d.Path, Specs: specs, Allowed: s.mayCall})
	if err != nil {
		return fmt.Errorf("docs: %w", err)
	}
	s.portal = p
	return nil
}

// mayCall reports whether consumer c may call method on the path template
// of a spec operation: a route (of any host) serves it, c holds the route's
// scopes, and the route's policy, when it does not depend on the request,
// allows c. The portal shows c only such operations.
func (s *snapshot) mayCall(c *authn.Consumer, method, template string) bool {
	m := s.router.Match("", template, method, nil)
	if m.Route < 0 {
		return false
	}
	rt := &s.routes[m.Route]
	if rt.public {
		return true
	}
	if !c.HasScopes(rt.scopes) {
		return false
	}
	if rt.policy == nil || rt.policy.UsesRequest() {
		return true
	}
	ok, err := rt.policy.Eval(context.Background(), &authz.Input{Consumer: policyConsumer(c)})
	return ok && err == nil
}

// servePortal serves the documentation portal: the viewer's files to
// anyone, the page and the consumer's document after authentication.
func (g *Gateway) servePortal(s *snapshot, x *exchange, w http.ResponseWriter, r *http.Request, st *reqctx.State) {
	p := s.portal
	st.Route, x.metrics = docsRoute, p.auth.metrics
	if !p.Public(st.Path) {
		switch g.authenticate(&p.auth, r, st) {
		case authOK:
		case authBodyTooLarge:
			g.refuseBody(w, r, st)
			return
		default:
			problem.Unauthorized(w, r, p.auth.challenge)
			return
		}
	}
	p.ServeHTTP(w, r)
}
