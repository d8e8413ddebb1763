// Package reqctx carries what the middlewares learn about one request in a
// single struct in the request context, so nothing downstream re-parses what
// upstream already parsed.
package reqctx

import (
	"context"
	"net/http"
	"net/netip"
	"time"

	"github.com/breakwater/breakwater/internal/authn"
	"github.com/breakwater/breakwater/internal/router"
)

// Param is one path parameter captured by a route template.
type Param = router.Param

// State is the request-scoped record. Fields are filled in request-path
// order; a middleware only reads fields set by those before it.
type State struct {
	RequestID string
	Start     time.Time

	Peer        netip.Addr // socket peer
	PeerTrusted bool       // Peer is in server.trusted_proxies: its X-Forwarded-* are kept
	ClientIP    netip.Addr // Peer, or the address a trusted proxy forwarded for
	// PeerText and ClientIPText are Peer and ClientIP as text, formatted once
	// for the forwarded headers, rate-limit keys, logs and events.
	PeerText, ClientIPText string

	// Path is the canonical, decoded path (pathcanon.Canonical); EscapedPath
	// is the same path escaped for the wire. Both are set once, before routing.
	Path        string
	EscapedPath string

	Route  string // matched route name
	Params []Param
	// ParamBuf backs Params for routes with few parameters (no allocation).
	ParamBuf [4]Param

	Consumer      *authn.Consumer // nil until authenticated (and on public routes)
	Authenticator string          // name of the authenticator that decided
	// Identity is the X-Gateway-Identity token for the upstream ("" for none).
	Identity string
	// Operation is the OpenAPI operation the request matched on a route
	// with a spec (a *validate.Operation), for response filtering and the
	// inventory; nil otherwise.
	Operation any
	// Reason says why a request was refused, for logs and metrics only —
	// never sent to the client.
	Reason string

	Upstream         string        // target host:port that served the request
	UpstreamDuration time.Duration // time spent in the upstream round trip
}

// Param returns the value of the named path parameter.
func (s *State) Param(name string) (string, bool) {
	for _, p := range s.Params {
		if p.Name == name {
			return p.Value, true
		}
	}
	return "", false
}

type key struct{}

// With returns r with st attached.
func With(r *http.Request, st *State) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), key{}, st))
}

// From returns the request's State. It never returns nil: a request that
// did not pass through the gateway's entry middleware gets an empty State.
func From(r *http.Request) *State {
	if st, ok := r.Context().Value(key{}).(*State); ok {
		return st
	}
	return &State{}
}

// FromContext is From for a context.
func FromContext(ctx context.Context) (*State, bool) {
	st, ok := ctx.Value(key{}).(*State)
	return st, ok
}
