package router

import (
	"errors"
	"slices"
	"strconv"
)

// Router matches requests to routes. Build it with New.
type Router struct {
	exact    map[string]*node // by lower-case host
	wildcard map[string]*node // by the host without its "*." label
	anyHost  *node            // routes without a host
	routes   []route          // by id
	methods  []string         // every listed method, in Allow order; bit i is methods[i]
	// allows holds the Allow values by method mask: every mask when there
	// are few methods, else those of single routes and of the route sets
	// that end at one trie node.
	allows     map[uint64]string
	allowTable []string // by mask, when len(methods) <= maxTableMethods
}

// route is a compiled Spec.
type route struct {
	segs    []segment
	methods []string // nil: every method but TRACE and CONNECT
	get     bool     // lists GET, so accepts HEAD
	params  bool     // has {param} segments
	mask    uint64   // methods accepted, for Allow (HEAD included with GET)
}

// New compiles routes; the index of a Spec is its route id. On error it
// returns every problem found, each a *SpecError or a *ConflictError
// (joined with errors.Join when there are several).
func New(specs []Spec) (*Router, error) {
	rt := &Router{
		exact:    make(map[string]*node),
		wildcard: make(map[string]*node),
		anyHost:  &node{},
		routes:   make([]route, len(specs)),
		allows:   make(map[uint64]string),
	}
	var errs []error
	kinds := make([]hostKind, len(specs))
	keys := make([]string, len(specs))
	valid := make([]bool, len(specs))
	for id, s := range specs {
		kind, key, msg := parseHost(s.Host)
		if msg != "" {
			errs = append(errs, &SpecError{Route: id, Field: "host", Msg: msg})
			continue
		}
		segs, msg := parseTemplate(s.Path)
		if msg != "" {
			errs = append(errs, &SpecError{Route: id, Field: "path", Msg: "template " + quote(s.Path) + " " + msg})
			continue
		}
		methods, msg := normMethods(s.Methods)
		if msg != "" {
			errs = append(errs, &SpecError{Route: id, Field: "methods", Msg: msg})
			continue
		}
		r := &rt.routes[id]
		r.segs, r.methods = segs, methods
		r.get = slices.Contains(methods, "GET")
		for _, sg := range segs {
			r.params = r.params || sg.kind == param
		}
		accepted := methods
		if methods == nil {
			accepted = commonMethods() // for the Allow of a 405 to TRACE or CONNECT
		}
		for _, m := range accepted {
			if !slices.Contains(rt.methods, m) {
				rt.methods = append(rt.methods, m)
			}
		}
		if r.get && !slices.Contains(rt.methods, "HEAD") {
			rt.methods = append(rt.methods, "HEAD")
		}
		kinds[id], keys[id], valid[id] = kind, key, true
	}
	if len(rt.methods) > maxMethods {
		errs = append(errs, &SpecError{Route: len(specs) - 1, Field: "methods",
			Msg: "routes list " + strconv.Itoa(len(rt.methods)) + " distinct methods; at most " + strconv.Itoa(maxMethods) + " are supported"})
		return nil, join(errs)
	}
	slices.SortFunc(rt.methods, compareMethods)

	seen := make(map[string][]int) // host and shape -> route ids
	for id := range specs {
		if !valid[id] {
			continue
		}
		r := &rt.routes[id]
		r.mask = rt.maskOf(r)
		rt.allows[r.mask] = allowValue(rt.methods, r.mask)

		sk := strconv.Itoa(int(kinds[id])) + keys[id] + "\x00" + shape(r.segs)
		for _, other := range seen[sk] {
			if m, ok := overlap(&rt.routes[other], r); ok {
				errs = append(errs, &ConflictError{Route: id, Other: other, Host: specs[id].Host, Path: specs[id].Path, Method: m})
				break
			}
		}
		seen[sk] = append(seen[sk], id)
		rt.insert(rt.root(kinds[id], keys[id]), r, id)
	}
	if len(errs) > 0 {
		return nil, join(errs)
	}
	if len(rt.methods) <= maxTableMethods {
		rt.allowTable = make([]string, 1<<len(rt.methods))
		for mask := range rt.allowTable {
			rt.allowTable[mask] = allowValue(rt.methods, uint64(mask))
		}
		rt.allows = nil
		return rt, nil
	}
	rt.precomputeAllows(rt.anyHost)
	for _, n := range rt.exact {
		rt.precomputeAllows(n)
	}
	for _, n := range rt.wildcard {
		rt.precomputeAllows(n)
	}
	return rt, nil
}

func join(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// root returns the trie of a host, creating it.
func (rt *Router) root(kind hostKind, key string) *node {
	var m map[string]*node
	switch kind {
	case exactHost:
		m = rt.exact
	case wildcardHost:
		m = rt.wildcard
	default:
		return rt.anyHost
	}
	n := m[key]
	if n == nil {
		n = &node{}
		m[key] = n
	}
	return n
}

// maskOf returns the Allow bits of a route.
func (rt *Router) maskOf(r *route) uint64 {
	var mask uint64
	for i, m := range rt.methods {
		if r.accepts(m) || (m == "HEAD" && r.get) {
			mask |= 1 << i
		}
	}
	return mask
}

// precomputeAllows stores the Allow values of the route sets that end at
// each node, the usual cause of a 405, so that Match need not build them.
func (rt *Router) precomputeAllows(n *node) {
	for _, ids := range [][]int{n.routes, n.rest} {
		var mask uint64
		for _, id := range ids {
			mask |= rt.routes[id].mask
		}
		if _, ok := rt.allows[mask]; !ok && mask != 0 {
			rt.allows[mask] = allowValue(rt.methods, mask)
		}
	}
	for _, e := range n.lits {
		rt.precomputeAllows(e.next)
	}
	if n.param != nil {
		rt.precomputeAllows(n.param)
	}
}

// overlap reports a method that both routes accept (HEAD through GET does
// not count: a route that lists HEAD beats one that has it through GET).
func overlap(a, b *route) (string, bool) {
	if a.methods == nil && b.methods == nil {
		return "*", true
	}
	if a.methods == nil {
		a, b = b, a
	}
	for _, m := range a.methods {
		if b.accepts(m) {
			return m, true
		}
	}
	return "", false
}

// accepts reports whether the route accepts method m (HEAD through GET
// aside). A route without methods accepts every method but TRACE and
// CONNECT, which reflect or tunnel what they receive: a route must list
// them to get them.
func (r *route) accepts(m string) bool {
	if r.methods == nil {
		return m != "TRACE" && m != "CONNECT"
	}
	return slices.Contains(r.methods, m)
}

// commonMethods are the methods a route without methods shows in Allow.
func commonMethods() []string {
	return []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
}
