package audit

import (
	"strconv"
	"strings"
)

// specDoc is an OpenAPI document as a tree, with its operations listed.
type specDoc struct {
	file string
	root *node
	ops  []operation
}

// operation is one method of one path.
type operation struct {
	path, method string
	item, n      *node
	ptr          []string // "paths", path, method
}

var methods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func newSpec(file string, root *node) *specDoc {
	s := &specDoc{file: file, root: root}
	paths := root.get("paths")
	if !paths.isMap() {
		return s
	}
	for i, p := range paths.keys {
		item := s.deref(paths.vals[i])
		if !item.isMap() {
			continue
		}
		for _, m := range methods {
			if op := item.get(m); op.isMap() {
				s.ops = append(s.ops, operation{path: p, method: m, item: item, n: op, ptr: []string{"paths", p, m}})
			}
		}
	}
	return s
}

// maxRefHops bounds chains of $ref.
const maxRefHops = 16

// deref follows local $refs ("#/components/schemas/X"); an unresolvable
// or external one gives nil.
func (s *specDoc) deref(n *node) *node {
	for range maxRefHops {
		r := n.get("$ref")
		if r == nil {
			return n
		}
		n = s.lookup(r.text())
		if n == nil {
			return nil
		}
	}
	return nil
}

// lookup resolves a local JSON pointer reference.
func (s *specDoc) lookup(ref string) *node {
	if !strings.HasPrefix(ref, "#/") {
		return nil
	}
	n := s.root
	for _, part := range strings.Split(ref[2:], "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		n = n.get(part)
		if n == nil {
			return nil
		}
	}
	return n
}

// security returns the operation's effective security requirements and
// whether the operation declares its own.
func (s *specDoc) security(op operation) (reqs *node, own bool) {
	if op.n.has("security") {
		return op.n.get("security"), true
	}
	return s.root.get("security"), false
}

// unprotected reports whether a security requirement list lets anonymous
// callers in: absent, empty, or with an empty alternative ({}).
func unprotected(reqs *node) bool {
	if reqs == nil || reqs.kind != kindSeq || len(reqs.vals) == 0 {
		return true
	}
	for _, r := range reqs.vals {
		if !r.isMap() || len(r.keys) == 0 {
			return true
		}
	}
	return false
}

// params returns the operation's parameters, path-level ones included,
// resolved; ptr is where each is written.
func (s *specDoc) params(op operation) (out []param) {
	seen := map[string]bool{}
	add := func(list *node, ptr []string) {
		for i, p := range list.items() {
			r := s.deref(p)
			if !r.isMap() {
				continue
			}
			key := r.get("in").text() + ":" + r.get("name").text()
			if seen[key] {
				continue
			}
			seen[key] = true
			out = append(out, param{n: r, at: p, ptr: append(append([]string(nil), ptr...), "parameters", strconv.Itoa(i))})
		}
	}
	add(op.n.get("parameters"), op.ptr)
	add(op.item.get("parameters"), op.ptr[:2])
	return out
}

type param struct {
	n   *node // resolved
	at  *node // as written (a $ref or the parameter)
	ptr []string
}

// schemaVisit is called for every schema of the document, each once
// (references are not followed): ptr is its place.
type schemaVisit func(sch *node, ptr []string)

// walkSchemas visits every schema written in the document: components,
// parameters, bodies, responses and headers, and the schemas nested in them.
func (s *specDoc) walkSchemas(visit schemaVisit) {
	budget := maxExpanded
	var walk func(n *node, ptr []string, inSchema bool, depth int)
	walk = func(n *node, ptr []string, inSchema bool, depth int) {
		if n == nil || depth > 2*maxDepth || budget <= 0 {
			return
		}
		budget--
		if inSchema {
			if !n.isMap() || n.has("$ref") {
				return
			}
			visit(n, ptr)
			for i, k := range n.keys {
				v := n.vals[i]
				switch k {
				case "properties", "patternProperties", "$defs", "definitions", "dependentSchemas":
					if v.isMap() {
						for j, pk := range v.keys {
							walk(v.vals[j], with(ptr, k, pk), true, depth+1)
						}
					}
				case "items", "additionalProperties", "not", "contains", "propertyNames", "if", "then", "else", "unevaluatedProperties", "unevaluatedItems", "additionalItems":
					walk(v, with(ptr, k), true, depth+1)
				case "allOf", "anyOf", "oneOf", "prefixItems":
					for j, e := range v.items() {
						walk(e, with(ptr, k, strconv.Itoa(j)), true, depth+1)
					}
				}
			}
			return
		}
		switch n.kind {
		case kindMap:
			for i, k := range n.keys {
				v := n.vals[i]
				switch {
				case isExtension(ptr, k), k == "example", k == "examples":
				case k == "schema":
					walk(v, with(ptr, k), true, depth+1)
				case k == "schemas" && len(ptr) == 1 && ptr[0] == "components":
					if v.isMap() {
						for j, sk := range v.keys {
							walk(v.vals[j], with(ptr, k, sk), true, depth+1)
						}
					}
				default:
					walk(v, with(ptr, k), false, depth+1)
				}
			}
		case kindSeq:
			for i, v := range n.vals {
				walk(v, with(ptr, strconv.Itoa(i)), false, depth+1)
			}
		}
	}
	walk(s.root, nil, false, 0)
}

// with returns ptr extended by keys, never sharing ptr's backing array.
func with(ptr []string, keys ...string) []string {
	out := make([]string, 0, len(ptr)+len(keys))
	return append(append(out, ptr...), keys...)
}

// schemaType returns a schema's type; for 3.1 lists, the first that is
// not "null".
func schemaType(sch *node) string {
	t := sch.get("type")
	if t == nil {
		return ""
	}
	if t.kind == kindSeq {
		for _, v := range t.vals {
			if v.text() != "null" {
				return v.text()
			}
		}
		return ""
	}
	return t.text()
}

// walkResolved visits sch and the schemas below it, following $refs, each
// at most once; fn gets the property name a schema is under ("" if none).
func (s *specDoc) walkResolved(sch *node, fn func(sch *node, prop string, at *node)) {
	seen := map[*node]bool{}
	budget := 10_000
	var walk func(n *node, prop string, at *node, depth int)
	walk = func(n *node, prop string, at *node, depth int) {
		r := s.deref(n)
		if !r.isMap() || seen[r] || depth > maxDepth || budget <= 0 {
			return
		}
		seen[r] = true
		budget--
		fn(r, prop, at)
		if props := r.get("properties"); props.isMap() {
			for i, k := range props.keys {
				walk(props.vals[i], k, props.vals[i], depth+1)
			}
		}
		for _, k := range []string{"items", "additionalProperties"} {
			if v := r.get(k); v.isMap() {
				walk(v, "", v, depth+1)
			}
		}
		for _, k := range []string{"allOf", "anyOf", "oneOf"} {
			for _, e := range r.get(k).items() {
				walk(e, prop, e, depth+1)
			}
		}
	}
	walk(sch, "", sch, 0)
}

// requestSchemas returns the schemas of the operation's request body.
func (s *specDoc) requestSchemas(op operation) []*node {
	body := s.deref(op.n.get("requestBody"))
	var out []*node
	if c := body.get("content"); c.isMap() {
		for _, mt := range c.vals {
			if sch := mt.get("schema"); sch != nil {
				out = append(out, sch)
			}
		}
	}
	return out
}

// responses returns the operation's responses by status, resolved.
func (s *specDoc) responses(op operation) (codes []string, resp []*node) {
	rs := op.n.get("responses")
	if !rs.isMap() {
		return nil, nil
	}
	for i, code := range rs.keys {
		if r := s.deref(rs.vals[i]); r.isMap() {
			codes = append(codes, code)
			resp = append(resp, r)
		}
	}
	return codes, resp
}

// isExtension reports whether key k under ptr is a specification extension
// ("x-…"), which the rules do not read. In maps keyed by names — header
// names, for one — an "x-" key is a name like any other ("x-next").
func isExtension(ptr []string, k string) bool {
	if !strings.HasPrefix(k, "x-") {
		return false
	}
	if len(ptr) > 0 {
		switch ptr[len(ptr)-1] {
		case "headers", "links", "callbacks", "encoding", "securitySchemes", "parameters",
			"requestBodies", "responses", "pathItems", "schemas":
			return false
		}
	}
	return true
}
