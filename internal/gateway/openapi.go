package gateway

import (
	"fmt"
	"net/http"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/inventory"
	"github.com/breakwater/breakwater/internal/reqctx"
	"github.com/breakwater/breakwater/internal/telemetry"
	"github.com/breakwater/breakwater/internal/validate"
)

// routeSpec is a route's OpenAPI contract (routes[].openapi).
type routeSpec struct {
	v                *validate.Validator
	validateRequests bool
	filterResponses  bool
}

// loadSpecs loads each spec file of the config once.
type specCache map[string]*validate.Spec

func (c specCache) routeSpec(cfg *config.Config, rc *config.Route) (*routeSpec, error) {
	o := rc.OpenAPI
	if o == nil {
		return nil, nil
	}
	path := cfg.Resolve(o.Spec)
	spec, ok := c[path]
	if !ok {
		var err error
		if spec, err = validate.Load(path); err != nil {
			return nil, err
		}
		c[path] = spec
	}
	return &routeSpec{
		v:                validate.New(spec, validate.Options{MaxBodyBytes: int64(*rc.MaxBody)}),
		validateRequests: o.ValidateRequests,
		filterResponses:  o.FilterResponses,
	}, nil
}

// filter is the proxy's response filter of a route with filter_responses.
func (rs *routeSpec) filter(resp *http.Response) error {
	op, _ := reqctx.From(resp.Request).Operation.(*validate.Operation)
	if op == nil {
		return nil
	}
	if err := rs.v.FilterResponse(op, resp); err != nil {
		return fmt.Errorf("openapi response filter: %w", err)
	}
	return nil
}

// checkOperation finds the request's operation in the route's spec and,
// with validate_requests, checks the request against it: an operation the
// spec does not declare is a 404, an invalid request a 400 (413, 415) whose
// detail names the field and the rule, never the value sent.
func (g *Gateway) checkOperation(rt *route, w http.ResponseWriter, r *http.Request, st *reqctx.State) bool {
	rs := rt.spec
	op, _ := st.Operation.(*validate.Operation) // found at routing
	if rs.filterResponses {
		// The transport then asks for gzip itself and decompresses it, so
		// the filter sees JSON whatever the client accepts.
		r.Header.Del("Accept-Encoding")
	}
	if !rs.validateRequests {
		return true
	}
	if op == nil {
		g.refuse(w, r, st, http.StatusNotFound, telemetry.RejectUndeclaredOperation, "operation not in the route's spec")
		return false
	}
	if p := rs.v.ValidateRequest(op, r, nil); p != nil {
		detail := p.Field + ": " + p.Reason
		g.refuseDetail(w, r, st, p.Status, telemetry.RejectInvalidRequest, "invalid request: "+detail, detail)
		return false
	}
	return true
}

// inventory counts the request in the traffic inventory: its route and,
// on routes with a spec, its operation ("" when the spec has none: a shadow
// request). The gateway's own endpoints are not counted.
func (g *Gateway) inventory(x *exchange, r *http.Request) {
	st := &x.st
	if g.inv == nil || st.Route == "" || st.Route == oauthRoute || st.Route == docsRoute {
		return
	}
	h := inventory.Hit{Route: st.Route, Method: r.Method, Path: st.Path, Status: x.rec.status}
	if !x.rec.wroteHeader {
		h.Status = http.StatusOK
	}
	if op, ok := st.Operation.(*validate.Operation); ok {
		h.Operation, h.Deprecated = op.Key, op.Deprecated
	}
	if st.Consumer != nil {
		h.Consumer = st.Consumer.ID
	}
	g.inv.Record(h)
}

// inventoryRoutes describes the routes of cfg, and the operations of their
// specs, to the inventory.
func inventoryRoutes(s *snapshot) []inventory.RouteInfo {
	out := make([]inventory.RouteInfo, len(s.routes))
	for i := range s.routes {
		rt := &s.routes[i]
		out[i] = inventory.RouteInfo{Name: rt.name, Spec: rt.spec != nil}
		if rt.spec != nil {
			for _, op := range rt.spec.v.Spec().Operations() {
				out[i].Operations = append(out[i].Operations, inventory.OperationInfo{
					Operation: op.Key, Deprecated: op.Deprecated})
			}
		}
	}
	return out
}
