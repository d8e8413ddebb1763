package router

import (
	"bytes"
	"strings"
)

// Match returns the route for a request. host is the request's Host (any
// port is ignored, case does not matter); path is the canonical path from
// pathcanon.Canonical, which Match never decodes; params is a slice the
// route's parameters are appended to (pass one with spare capacity, e.g.
// st.Params[:0], and Match does not allocate). A nil Router matches nothing.
func (rt *Router) Match(host, path, method string, params []Param) Result {
	if rt == nil || path == "" || path[0] != '/' {
		return Result{Route: -1, Params: params, Status: 404}
	}
	rest := path[1:]
	var union uint64 // methods of the routes that matched host and path
	var hb [maxHost]byte
	if h := requestHost(host, &hb); h != nil {
		if n := rt.exact[string(h)]; n != nil {
			if id := rt.find(n, rest, false, method, &union); id >= 0 {
				return rt.result(id, path, params)
			}
		}
		if i := bytes.IndexByte(h, '.'); i > 0 && len(rt.wildcard) > 0 {
			if n := rt.wildcard[string(h[i+1:])]; n != nil {
				if id := rt.find(n, rest, false, method, &union); id >= 0 {
					return rt.result(id, path, params)
				}
			}
		}
	}
	if id := rt.find(rt.anyHost, rest, false, method, &union); id >= 0 {
		return rt.result(id, path, params)
	}
	if union != 0 {
		return Result{Route: -1, Params: params, Status: 405, Allow: rt.allow(union)}
	}
	return Result{Route: -1, Params: params, Status: 404}
}

// find searches the trie below n for the most specific route that accepts
// method, with rest the part of the path still to match (without its
// leading "/") and end set when the whole path has been consumed. Children
// are tried literal first, then {param}, then /**, which gives the
// precedence of the package documentation. It returns the route id or -1,
// and adds to union the methods of routes that matched but refused method.
// The recursion depth is bounded by the depth of the templates.
func (rt *Router) find(n *node, rest string, end bool, method string, union *uint64) int {
	if n == nil {
		return -1
	}
	if end {
		if id := rt.pick(n.routes, method, union); id >= 0 {
			return id
		}
	} else {
		seg, after, more := cut(rest)
		if c := n.child(seg); c != nil {
			if id := rt.find(c, after, !more, method, union); id >= 0 {
				return id
			}
		}
		if n.param != nil && seg != "" {
			if id := rt.find(n.param, after, !more, method, union); id >= 0 {
				return id
			}
		}
	}
	return rt.pick(n.rest, method, union)
}

// pick returns the route among ids (all of the same host and path shape)
// that accepts method: one that lists it, else one that accepts it as HEAD
// through GET, else -1.
func (rt *Router) pick(ids []int, method string, union *uint64) int {
	implied := -1
	for _, id := range ids {
		r := &rt.routes[id]
		if r.accepts(method) {
			return id
		}
		if implied < 0 && r.get && method == "HEAD" {
			implied = id
		}
		*union |= r.mask
	}
	return implied
}

// result builds the Result for route id, appending its parameters.
func (rt *Router) result(id int, path string, params []Param) Result {
	r := &rt.routes[id]
	if r.params {
		rest := path[1:]
		for _, s := range r.segs {
			if s.kind == wildcard {
				break
			}
			seg, after, _ := cut(rest)
			if s.kind == param {
				params = append(params, Param{Name: s.text, Value: seg})
			}
			rest = after
		}
	}
	return Result{Route: id, Params: params}
}

// allow returns the Allow value for a method mask.
func (rt *Router) allow(mask uint64) string {
	if mask < uint64(len(rt.allowTable)) {
		return rt.allowTable[mask]
	}
	if s, ok := rt.allows[mask]; ok {
		return s
	}
	return allowValue(rt.methods, mask)
}

// cut splits the first segment off rest. more reports whether a "/"
// followed it.
func cut(rest string) (seg, after string, more bool) {
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return rest[:i], rest[i+1:], true
	}
	return rest, "", false
}
