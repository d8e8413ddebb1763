package audit

import (
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// crossRules compares the config's routes with the specs: BW-CFG-001 and
// the BW-XREF rules.
func (a *auditor) crossRules(c *configDoc, specs []*specDoc) {
	if len(specs) == 0 {
		return
	}
	routes := c.routes()
	byFile := map[string]*specDoc{}
	for _, s := range specs {
		byFile[cleanPath(s.file)] = s
	}
	enforced := map[string]bool{}
	for _, r := range routes {
		if !r.public() {
			for _, sc := range r.scopes {
				enforced[sc] = true
			}
		}
	}
	type scopeUse struct {
		s   *specDoc
		at  *node
		ptr []string
	}
	specScopes := map[string]scopeUse{}
	for _, s := range specs {
		if !strings.HasPrefix(s.root.get("openapi").text(), "3.") {
			continue
		}
		bases := basePaths(s)
		for _, op := range s.ops {
			label := strings.ToUpper(op.method) + " " + op.path
			reqs, _ := s.security(op)
			open := unprotected(reqs)
			var routed bool
			for _, r := range routes {
				if !r.allows(strings.ToUpper(op.method)) || !anyBase(bases, op.path, func(full string) bool { return overlaps(r.path, full) }) {
					continue
				}
				routed = true
				switch {
				case r.public() && !open:
					a.cfg(c, "BW-CFG-001", cmpNode(r.n.get("auth"), r.n), "%s is public (auth: none) but %s in %s requires authentication", r.label(), label, s.file)
				case !r.public() && !open:
					if missing := missingScopes(reqs, r.scopes); len(missing) > 0 {
						a.cfg(c, "BW-XREF-004", cmpNode(r.n.get("scopes"), r.n), "%s does not require the scopes %s that %s in %s requires", r.label(), strings.Join(missing, ", "), label, s.file)
					}
				}
			}
			if !routed {
				a.spec(s, "BW-XREF-001", op.n, op.ptr, "no route of %s serves %s", c.file, label)
			}
			for _, req := range reqs.items() {
				for _, v := range req.vals {
					for _, sc := range v.strings() {
						if _, ok := specScopes[sc]; !ok {
							specScopes[sc] = scopeUse{s, v, op.ptr}
						}
					}
				}
			}
		}
	}
	for _, sc := range sortedKeys(specScopes) {
		if !enforced[sc] {
			u := specScopes[sc]
			a.spec(u.s, "BW-XREF-003", u.at, u.ptr, "scope %q is required by the spec, but no route of %s requires it", sc, c.file)
		}
	}
	for _, r := range routes {
		var candidates []*specDoc
		if r.spec != "" {
			if s, ok := byFile[cleanPath(c.resolve(r.spec))]; ok {
				candidates = []*specDoc{s}
			}
			if r.n.at("openapi", "validate_requests").bool() {
				continue // the gateway refuses what the spec does not declare
			}
		} else {
			candidates = specs
		}
		if len(candidates) == 0 {
			continue
		}
		if undeclared := undeclaredMethods(r, candidates); len(undeclared) > 0 {
			a.cfg(c, "BW-XREF-002", cmpNode(r.n.get("path"), r.n), "%s exposes %s %s, which no spec declares", r.label(), strings.Join(undeclared, ", "), r.path)
		}
	}
}

func cmpNode(n, def *node) *node {
	if n != nil {
		return n
	}
	return def
}

func cleanPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return filepath.Clean(p)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// missingScopes returns the scopes of the requirement alternative that the
// route comes closest to meeting, minus the route's; nil when one
// alternative is met.
func missingScopes(reqs *node, have []string) []string {
	var best []string
	for i, req := range reqs.items() {
		var missing []string
		for _, v := range req.vals {
			for _, sc := range v.strings() {
				if !slices.Contains(have, sc) && !slices.Contains(missing, sc) {
					missing = append(missing, sc)
				}
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if i == 0 || len(missing) < len(best) {
			best = missing
		}
	}
	return best
}

// basePaths are the path prefixes of the spec's servers ("" when none).
func basePaths(s *specDoc) []string {
	var out []string
	for _, sv := range s.root.get("servers").items() {
		raw := sv.get("url").text()
		vars := sv.get("variables")
		for i, k := range vars.mapKeys() {
			raw = strings.ReplaceAll(raw, "{"+k+"}", vars.vals[i].get("default").text())
		}
		p := raw
		if u, err := url.Parse(raw); err == nil && u.Host != "" {
			p = u.Path
		} else if !strings.HasPrefix(raw, "/") {
			p = ""
		}
		p = strings.TrimSuffix(p, "/")
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		out = []string{""}
	}
	return out
}

func anyBase(bases []string, path string, fn func(string) bool) bool {
	for _, b := range bases {
		if fn(b + path) {
			return true
		}
	}
	return false
}

func segments(p string) []string {
	return strings.Split(strings.Trim(p, "/"), "/")
}

func isParam(seg string) bool { return strings.Contains(seg, "{") }

// overlaps reports whether some request path matches both the route
// template and the spec path.
func overlaps(route, spec string) bool {
	rs, ss := segments(route), segments(spec)
	for i, r := range rs {
		if r == "**" {
			return true
		}
		if i >= len(ss) {
			return false
		}
		if !isParam(r) && !isParam(ss[i]) && r != ss[i] {
			return false
		}
	}
	return len(rs) == len(ss)
}

// covers reports whether every request path the route template matches
// is matched by the spec path.
func covers(route, spec string) bool {
	rs, ss := segments(route), segments(spec)
	if len(rs) != len(ss) {
		return false
	}
	for i, r := range rs {
		switch {
		case r == "**":
			return false
		case isParam(ss[i]):
		case isParam(r) || r != ss[i]:
			return false
		}
	}
	return true
}

// undeclaredMethods returns the methods for which the route accepts paths
// that no operation of the specs declares.
func undeclaredMethods(r cfgRoute, specs []*specDoc) []string {
	var out []string
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		if !r.allows(m) {
			continue
		}
		declared := false
		for _, s := range specs {
			bases := basePaths(s)
			for _, op := range s.ops {
				if strings.EqualFold(op.method, m) && anyBase(bases, op.path, func(full string) bool { return covers(r.path, full) }) {
					declared = true
					break
				}
			}
			if declared {
				break
			}
		}
		if !declared {
			out = append(out, m)
		}
	}
	return out
}
