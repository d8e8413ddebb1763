package audit

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func (a *auditor) spec(s *specDoc, id string, n *node, ptr []string, format string, args ...any) {
	at := n.where()
	if at.Line == 0 {
		at = s.root.where()
	}
	a.emit(id, s.file, s.root, ptr, at, format, args...)
}

var (
	credentialParam = regexp.MustCompile(`(?i)^(x-)?(api[-_]?key|apikey|access[-_]?token|refresh[-_]?token|id[-_]?token|token|secret|client[-_]?secret|password|passwd|pwd|auth|authorization|session[-_]?id|jwt|bearer|credentials?)$`)
	urlParam        = regexp.MustCompile(`(?i)^(callback|callback[-_]?url|redirect|redirect[-_]?(uri|url|to)|return[-_]?(url|to|uri)|returnto|next|url|uri|webhook|webhook[-_]?url|target|dest|destination|continue|forward|image[-_]?url|feed|host|proxy)$`)
	idParam         = regexp.MustCompile(`(?i)(^id$|_id$|-id$|[a-z]Id$|^uid$)`)
	sensitiveField  = regexp.MustCompile(`(?i)(password|passwd|secret|token|ssn|social[-_]?security|credit[-_]?card|card[-_]?number|cvv|cvc|private[-_]?key|pin[-_]?code)`)
	environmentWord = regexp.MustCompile(`(?i)\b(prod|production|staging|stage|test|testing|dev|development|sandbox|local|qa|uat|preview)\b`)
)

// specRules runs the BW-SPEC rules on one spec.
func (a *auditor) specRules(s *specDoc) {
	root := s.root
	v := root.get("openapi").text()
	if !root.isMap() || !strings.HasPrefix(v, "3.") {
		what := "it has no openapi field"
		if sw := root.get("swagger"); sw != nil {
			what = "it is Swagger " + sw.text()
		}
		a.spec(s, "BW-SPEC-034", root.get("openapi"), nil, "%s is not an OpenAPI 3 document (%s); it was not audited further", s.file, what)
		return
	}
	a.schemeRules(s)
	a.serverSpecRules(s)
	for _, op := range s.ops {
		a.operationRules(s, op)
	}
	a.schemaRules(s)
	a.refRules(s)
}

func (a *auditor) schemeRules(s *specDoc) {
	schemes := s.root.at("components", "securitySchemes")
	if !schemes.isMap() {
		return
	}
	for i, name := range schemes.keys {
		sc := s.deref(schemes.vals[i])
		ptr := []string{"components", "securitySchemes", name}
		at := schemes.vals[i]
		switch sc.get("type").text() {
		case "http":
			switch scheme := strings.ToLower(sc.get("scheme").text()); scheme {
			case "basic":
				a.spec(s, "BW-SPEC-003", at, ptr, "security scheme %q is HTTP Basic: a long-lived password travels with every request", name)
			case "negotiate", "oauth", "digest":
				a.spec(s, "BW-SPEC-002", at, ptr, "security scheme %q uses the insecure HTTP scheme %q", name, scheme)
			case "bearer":
				if strings.EqualFold(sc.get("bearerFormat").text(), "jwt") && !strings.Contains(strings.ToUpper(sc.get("description").text()), "RFC8725") {
					a.spec(s, "BW-SPEC-004", at, ptr, "security scheme %q takes JWTs but its description does not say they follow RFC 8725 (JWT best current practices)", name)
				}
			}
		case "apiKey":
			if sc.get("in").text() == "query" {
				a.spec(s, "BW-SPEC-005", at, ptr, "security scheme %q takes an API key in the query string (%s)", name, sc.get("name").text())
			}
		case "oauth2":
			flows := sc.get("flows")
			if flows.has("implicit") {
				a.spec(s, "BW-SPEC-028", flows.get("implicit"), with(ptr, "flows", "implicit"), "security scheme %q uses the implicit flow: tokens are returned in the URL fragment", name)
			}
			if flows.has("password") {
				a.spec(s, "BW-SPEC-029", flows.get("password"), with(ptr, "flows", "password"), "security scheme %q uses the resource owner password flow: clients see users' passwords", name)
			}
			for j, fname := range flows.mapKeys() {
				f := flows.vals[j]
				if fname != "clientCredentials" && f.isMap() && f.get("refreshUrl").text() == "" {
					a.spec(s, "BW-SPEC-009", f, with(ptr, "flows", fname), "flow %s of security scheme %q has no refreshUrl: clients will ask for long-lived access tokens", fname, name)
				}
				for _, k := range []string{"authorizationUrl", "tokenUrl", "refreshUrl"} {
					if u := f.get(k); plainHTTPRemote(u.text()) {
						a.spec(s, "BW-SPEC-037", u, with(ptr, "flows", fname, k), "%s of security scheme %q is plain HTTP", k, name)
					}
				}
			}
		case "openIdConnect":
			if u := sc.get("openIdConnectUrl"); plainHTTPRemote(u.text()) {
				a.spec(s, "BW-SPEC-037", u, with(ptr, "openIdConnectUrl"), "openIdConnectUrl of security scheme %q is plain HTTP", name)
			}
		}
	}
}

func (a *auditor) serverSpecRules(s *specDoc) {
	servers := s.root.get("servers")
	if len(servers.items()) == 0 {
		a.spec(s, "BW-SPEC-025", s.root.get("openapi"), nil, "the spec declares no servers: nobody can tell where, and in which environments, the API runs")
		return
	}
	for i, sv := range servers.items() {
		ptr := []string{"servers", strconv.Itoa(i)}
		u := sv.get("url").text()
		if plainHTTPRemote(u) {
			a.spec(s, "BW-SPEC-024", sv.get("url"), ptr, "server %s is plain HTTP", u)
		}
		if !sv.has("x-internal") && !environmentWord.MatchString(sv.get("description").text()) {
			a.spec(s, "BW-SPEC-026", sv, ptr, "server %s does not say which environment it is (description or x-internal)", u)
		}
	}
}

// statusIn reports whether codes has want or its class ("4XX").
func statusIn(codes []string, want ...string) bool {
	for _, c := range codes {
		for _, w := range want {
			if strings.EqualFold(c, w) || strings.EqualFold(c, w[:1]+"XX") {
				return true
			}
		}
	}
	return false
}

func (a *auditor) operationRules(s *specDoc, op operation) {
	label := strings.ToUpper(op.method) + " " + op.path
	reqs, own := s.security(op)
	open := unprotected(reqs)
	write := slices.Contains(writeMethods, strings.ToUpper(op.method))
	switch {
	case open && write:
		a.spec(s, "BW-SPEC-008", op.n, op.ptr, "%s changes data and requires no authentication", label)
	case open && (op.method == "get" || op.method == "head"):
		a.spec(s, "BW-SPEC-007", op.n, op.ptr, "%s requires no authentication", label)
	}
	schemes := s.root.at("components", "securitySchemes")
	for _, r := range reqs.items() {
		for _, name := range r.keys {
			if !schemes.has(name) {
				a.spec(s, "BW-SPEC-033", r, op.ptr, "%s requires security scheme %q, which components.securitySchemes does not define", label, name)
			}
		}
	}
	if isAdminPath(op.path) && (open || !own) {
		a.spec(s, "BW-SPEC-018", op.n, op.ptr, "%s is an admin operation without its own security requirement", label)
	}
	if op.n.get("deprecated").bool() {
		a.spec(s, "BW-SPEC-032", op.n.get("deprecated"), op.ptr, "%s is deprecated: find out who still calls it, then remove it", label)
	}
	if op.n.get("operationId").text() == "" {
		a.spec(s, "BW-SPEC-035", op.n, op.ptr, "%s has no operationId", label)
	}
	params := s.params(op)
	for _, p := range params {
		name, in := p.n.get("name").text(), p.n.get("in").text()
		if (in == "query" || in == "path") && credentialParam.MatchString(name) {
			a.spec(s, "BW-SPEC-006", p.at, p.ptr, "%s takes the credential %q in the %s", label, name, in)
		}
		if urlParam.MatchString(name) {
			a.spec(s, "BW-SPEC-019", p.at, p.ptr, "%s takes %q, which looks like a URL the server may fetch or redirect to", label, name)
		}
		if idParam.MatchString(name) && schemaType(s.deref(p.n.get("schema"))) == "integer" {
			a.spec(s, "BW-SPEC-001", p.at, p.ptr, "%s identifies objects by the integer %q: ids can be guessed by counting", label, name)
		}
	}
	codes, resps := s.responses(op)
	rptr := with(op.ptr, "responses")
	at := op.n.get("responses")
	if at == nil {
		at = op.n
	}
	if !slices.ContainsFunc(codes, func(c string) bool { return c == "429" }) { // a 4XX range says nothing of Retry-After
		a.spec(s, "BW-SPEC-015", at, rptr, "%s does not declare a 429 response", label)
	}
	if !open && !statusIn(codes, "401") {
		a.spec(s, "BW-SPEC-021", at, rptr, "%s requires authentication but does not declare a 401 response", label)
	}
	if !statusIn(codes, "500") {
		a.spec(s, "BW-SPEC-022", at, rptr, "%s does not declare a 500 response", label)
	}
	if (len(params) > 0 || op.n.has("requestBody")) && !statusIn(codes, "400", "422") {
		a.spec(s, "BW-SPEC-023", at, rptr, "%s takes input but does not declare a 400 or 422 response", label)
	}
	var rateHeaders, corsHeader, success bool
	for i, code := range codes {
		r := resps[i]
		headers := r.get("headers")
		if code == "429" && !headerIn(headers, "retry-after") {
			a.spec(s, "BW-SPEC-016", at.get(code), with(rptr, code), "the 429 response of %s does not declare Retry-After", label)
		}
		if !strings.HasPrefix(code, "2") {
			continue
		}
		success = true
		rateHeaders = rateHeaders || headerIn(headers, "ratelimit", "ratelimit-limit", "ratelimit-policy", "x-ratelimit-limit", "x-rate-limit-limit")
		corsHeader = corsHeader || headerIn(headers, "access-control-allow-origin")
		content := r.get("content")
		for j, mt := range content.mapKeys() {
			m := content.vals[j]
			sch := m.get("schema")
			if sch == nil {
				a.spec(s, "BW-SPEC-031", m, with(rptr, code, "content", mt), "the %s response of %s has %s content without a schema", code, label, mt)
				continue
			}
			s.walkResolved(sch, func(n *node, prop string, at *node) {
				if prop != "" && sensitiveField.MatchString(prop) && !n.get("writeOnly").bool() {
					a.spec(s, "BW-SPEC-030", at, with(rptr, code), "the %s response of %s returns the field %q", code, label, prop)
				}
			})
		}
	}
	if success && !rateHeaders {
		a.spec(s, "BW-SPEC-017", at, rptr, "the success responses of %s do not declare rate limit headers (RateLimit, RateLimit-Policy)", label)
	}
	if success && !corsHeader {
		a.spec(s, "BW-SPEC-020", at, rptr, "the success responses of %s do not declare Access-Control-Allow-Origin", label)
	}
	for _, sch := range s.requestSchemas(op) {
		s.walkResolved(sch, func(n *node, _ string, at *node) {
			if schemaType(n) != "object" && !n.has("properties") {
				return
			}
			if n.has("allOf") || n.has("oneOf") || n.has("anyOf") || n.at("unevaluatedProperties").text() == "false" {
				return
			}
			ap := n.get("additionalProperties")
			if ap == nil || ap.text() == "true" || (ap.isMap() && len(ap.keys) == 0) {
				a.spec(s, "BW-SPEC-027", n, with(op.ptr, "requestBody"), "a request body object of %s accepts properties it does not declare (additionalProperties is not false)", label)
			}
		})
	}
}

func isAdminPath(p string) bool {
	for _, seg := range strings.Split(strings.ToLower(p), "/") {
		if seg == "admin" || seg == "admins" || seg == "administration" || seg == "_admin" {
			return true
		}
	}
	return false
}

// headerIn reports whether a headers mapping declares one of names.
func headerIn(headers *node, names ...string) bool {
	if !headers.isMap() {
		return false
	}
	for _, k := range headers.keys {
		if slices.Contains(names, strings.ToLower(k)) {
			return true
		}
	}
	return false
}

func (a *auditor) schemaRules(s *specDoc) {
	s.walkSchemas(func(sch *node, ptr []string) {
		bounded := sch.has("enum") || sch.has("const")
		switch schemaType(sch) {
		case "array":
			if !sch.has("maxItems") {
				a.spec(s, "BW-SPEC-010", sch, ptr, "array schema without maxItems")
			}
		case "string":
			if !sch.has("maxLength") && !bounded {
				a.spec(s, "BW-SPEC-011", sch, ptr, "string schema without maxLength")
			}
			if !sch.has("format") && !sch.has("pattern") && !bounded {
				a.spec(s, "BW-SPEC-012", sch, ptr, "string schema without format, pattern or enum")
			}
		case "integer":
			if !(sch.has("minimum") || sch.has("exclusiveMinimum")) || !(sch.has("maximum") || sch.has("exclusiveMaximum")) {
				if !bounded {
					a.spec(s, "BW-SPEC-013", sch, ptr, "integer schema without minimum and maximum")
				}
			}
			if !sch.has("format") {
				a.spec(s, "BW-SPEC-014", sch, ptr, "integer schema without format (int32 or int64)")
			}
		}
		if ap := sch.get("additionalProperties"); ap != nil && ap.isMap() && !sch.has("maxProperties") {
			a.spec(s, "BW-SPEC-039", sch, ptr, "object schema whose additionalProperties is a schema has no maxProperties")
		}
		if p := sch.get("pattern"); p != nil {
			if t := p.text(); !strings.HasPrefix(t, "^") || !strings.HasSuffix(t, "$") {
				a.spec(s, "BW-SPEC-038", p, with(ptr, "pattern"), "pattern %q is not anchored with ^ and $: it matches any value that merely contains a match", truncate(t))
			}
		}
	})
}

// refRules reports local $refs that lead nowhere.
func (a *auditor) refRules(s *specDoc) {
	budget := maxExpanded
	seen := map[*node]bool{}
	var walk func(n *node, ptr []string, depth int)
	walk = func(n *node, ptr []string, depth int) {
		if n == nil || depth > 2*maxDepth || budget <= 0 || seen[n] {
			return
		}
		seen[n] = true
		budget--
		switch n.kind {
		case kindMap:
			if r := n.get("$ref"); r != nil && strings.HasPrefix(r.text(), "#") && s.lookup(r.text()) == nil {
				a.spec(s, "BW-SPEC-036", r, ptr, "$ref %q leads nowhere in this document", truncate(r.text()))
			}
			for i, k := range n.keys {
				if k == "example" || k == "examples" || isExtension(ptr, k) {
					continue
				}
				walk(n.vals[i], with(ptr, k), depth+1)
			}
		case kindSeq:
			for i, v := range n.vals {
				walk(v, with(ptr, strconv.Itoa(i)), depth+1)
			}
		}
	}
	walk(s.root, nil, 0)
}

// truncate shortens text quoted from a document in messages.
func truncate(s string) string {
	if len(s) <= 80 {
		return s
	}
	for i := 80; i > 0; i-- {
		if s[i]&0xC0 != 0x80 {
			return s[:i] + "…"
		}
	}
	return "…"
}
