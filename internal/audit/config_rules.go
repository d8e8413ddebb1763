package audit

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/breakwater/breakwater/internal/config"
)

// configDoc is a config file as a tree: the audit reads what is written,
// with defaults in mind, whether or not the config passes validation.
type configDoc struct {
	file string
	dir  string
	root *node
}

// resolve returns a path named in the config relative to its directory.
func (c *configDoc) resolve(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

// specRefs lists the spec files the config names, in order.
func (c *configDoc) specRefs() []string {
	var out []string
	for _, r := range c.root.get("routes").items() {
		if s := r.at("openapi", "spec").text(); s != "" && !strings.Contains(s, "${") {
			out = append(out, s)
		}
	}
	for _, s := range c.root.at("docs", "specs").strings() {
		if s != "" && !strings.Contains(s, "${") {
			out = append(out, s)
		}
	}
	return out
}

// cfgRoute is what the rules need of one route.
type cfgRoute struct {
	i       int
	n       *node
	name    string
	path    string
	methods []string // upper case; empty: every method
	auth    []string
	scopes  []string
	spec    string // openapi.spec as written
}

func (r cfgRoute) public() bool { return len(r.auth) == 1 && r.auth[0] == "none" }

// label names the route in messages.
func (r cfgRoute) label() string {
	if r.name != "" {
		return fmt.Sprintf("route %q", r.name)
	}
	return fmt.Sprintf("routes[%d]", r.i)
}

// allows reports whether the route accepts method m.
func (r cfgRoute) allows(m string) bool {
	if len(r.methods) == 0 {
		return m != "TRACE" && m != "CONNECT"
	}
	return slices.Contains(r.methods, m)
}

func (r cfgRoute) writes() bool {
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
		if r.allows(m) {
			return true
		}
	}
	return false
}

func (c *configDoc) routes() []cfgRoute {
	var out []cfgRoute
	for i, n := range c.root.get("routes").items() {
		r := cfgRoute{i: i, n: n, name: n.get("name").text(), path: n.get("path").text(),
			auth: n.get("auth").strings(), scopes: n.get("scopes").strings(), spec: n.at("openapi", "spec").text()}
		for _, m := range n.get("methods").strings() {
			r.methods = append(r.methods, strings.ToUpper(m))
		}
		out = append(out, r)
	}
	return out
}

// duration parses a duration value; ok is false when it is absent or
// not a literal (e.g. ${ENV}).
func duration(n *node) (time.Duration, bool) {
	if n == nil || n.kind != kindScalar {
		return 0, false
	}
	d, err := config.ParseDuration(n.str)
	if err != nil {
		return 0, false
	}
	return d.D(), true
}

func size(n *node) (int64, bool) {
	if n == nil || n.kind != kindScalar {
		return 0, false
	}
	s, err := config.ParseSize(n.str)
	if err != nil {
		return 0, false
	}
	return int64(s), true
}

// loopbackHost reports whether host (no port) is a loopback name or address.
func loopbackHost(host string) bool {
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// plainHTTPRemote reports whether u is an http:// URL to a host that is not
// loopback.
func plainHTTPRemote(u string) bool {
	p, err := url.Parse(u)
	return err == nil && strings.EqualFold(p.Scheme, "http") && p.Host != "" && !loopbackHost(p.Hostname())
}

// ref reports whether a value comes from the environment or a file rather
// than being written in the config.
func ref(s string) bool {
	s = strings.TrimSpace(s)
	return strings.HasPrefix(s, "${") || strings.HasPrefix(s, "file:")
}

var writeMethods = []string{"POST", "PUT", "PATCH", "DELETE"}

func (a *auditor) cfg(c *configDoc, id string, n *node, format string, args ...any) {
	a.emit(id, c.file, c.root, nil, n.where(), format, args...)
}

// configRules runs the BW-CFG rules (all but 000 and 001).
func (a *auditor) configRules(c *configDoc) {
	root := c.root
	a.tlsRules(c)
	a.serverRules(c)
	a.authenticatorRules(c)
	a.routeRules(c)

	if te := root.get("token_endpoint"); te.isMap() {
		if d, ok := duration(te.get("ttl")); ok && d > time.Hour {
			a.cfg(c, "BW-CFG-018", te.get("ttl"), "token_endpoint.ttl is %s: a leaked access token stays valid that long", te.get("ttl").text())
		}
		if d, ok := duration(te.get("rotate_every")); ok && d > 30*24*time.Hour {
			a.cfg(c, "BW-CFG-035", te.get("rotate_every"), "token_endpoint.rotate_every is %s: a signing key is used for more than 30 days", te.get("rotate_every").text())
		}
	}
	if st := root.get("store"); st.isMap() {
		if st.get("on_unavailable").text() == "allow" {
			a.cfg(c, "BW-CFG-021", st.get("on_unavailable"), "store.on_unavailable is allow: when Redis is down, rate limits, quotas, bans and revocations stop applying")
		}
		if r := st.get("redis").text(); r != "" {
			if u, err := url.Parse(r); err == nil && u.Scheme == "redis" && !loopbackHost(u.Hostname()) {
				a.cfg(c, "BW-CFG-038", st.get("redis"), "store.redis talks to %s without TLS: shared state and its password cross the network in clear", u.Hostname())
			}
			if u, err := url.Parse(r); err == nil && u.User != nil {
				if pw, ok := u.User.Password(); ok && pw != "" && !ref(r) {
					a.cfg(c, "BW-CFG-022", st.get("redis"), "store.redis holds a password written in the config")
				}
			}
		}
	}
	if cors := root.get("cors"); cors.isMap() {
		creds := cors.get("allow_credentials").bool()
		for _, o := range cors.get("allowed_origins").items() {
			switch t := strings.TrimSpace(o.text()); {
			case (t == "*" || t == "null" || strings.Contains(t, "*")) && creds:
				a.cfg(c, "BW-CFG-015", o, "cors.allowed_origins has %q together with allow_credentials: any site can make credentialed calls and read the answers", t)
			case t == "*" || t == "null" || strings.Contains(t, "*"):
				a.cfg(c, "BW-CFG-014", o, "cors.allowed_origins has %q: any web page may call the API from a user's browser", t)
			}
		}
	}
	if docs := root.get("docs"); docs.isMap() {
		if auth := docs.get("auth").strings(); len(auth) == 1 && auth[0] == "none" {
			a.cfg(c, "BW-CFG-036", docs.get("auth"), "docs.auth is none: the API documentation is public")
		}
	}
	for i, cons := range root.get("consumers").items() {
		for j, cr := range cons.get("credentials").items() {
			hs := cr.get("http_signature")
			if !hs.isMap() {
				continue
			}
			sec := hs.get("secret")
			if sec.text() != "" && !ref(sec.text()) {
				a.cfg(c, "BW-CFG-022", sec, "consumers[%d].credentials[%d].http_signature.secret is written in the config", i, j)
				if b, err := base64.StdEncoding.DecodeString(sec.text()); err == nil && len(b) < 32 {
					a.cfg(c, "BW-CFG-011", sec, "the hmac-sha256 key of consumers[%d] is %d bytes; at least 32 are needed", i, len(b))
				}
			}
		}
	}
}

func (a *auditor) tlsRules(c *configDoc) {
	t := c.root.get("tls")
	if t.get("self_signed").bool() {
		a.cfg(c, "BW-CFG-004", t.get("self_signed"), "tls.self_signed is true: clients cannot verify the gateway and learn to accept any certificate")
	}
	hsts := t.get("hsts")
	if d, ok := duration(hsts.get("max_age")); ok {
		switch {
		case d == 0:
			a.cfg(c, "BW-CFG-005", hsts.get("max_age"), "tls.hsts.max_age is 0: browsers are not told to use HTTPS only")
		case d < 180*24*time.Hour:
			a.cfg(c, "BW-CFG-006", hsts.get("max_age"), "tls.hsts.max_age is %s, less than 180 days", hsts.get("max_age").text())
		}
	}
	if v := t.get("min_version"); v.text() != "1.3" {
		at := v
		if at == nil {
			at = t
		}
		if at == nil {
			at = c.root
		}
		a.cfg(c, "BW-CFG-024", at, "TLS 1.2 is accepted (tls.min_version %s)", cmpOr(v.text(), config.DefaultMinTLSVersion))
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (a *auditor) serverRules(c *configDoc) {
	s := c.root.get("server")
	adminAddr := cmpOr(s.get("admin").text(), config.DefaultAdmin)
	if adminAddr != "off" && !strings.Contains(adminAddr, "${") {
		host, _, err := net.SplitHostPort(adminAddr)
		if err == nil && !loopbackHost(host) {
			at := s.get("admin")
			a.cfg(c, "BW-CFG-007", at, "server.admin listens on %q, which is not a loopback address", adminAddr)
		}
		if c.root.at("admin", "token_hash").text() == "" {
			at := c.root.get("admin")
			if at == nil {
				at = s.get("admin")
			}
			if at == nil {
				at = c.root
			}
			a.cfg(c, "BW-CFG-008", at, "the admin listener (%s) has no admin.token_hash", adminAddr)
		}
	}
	for _, p := range s.get("trusted_proxies").items() {
		t := strings.TrimSpace(p.text())
		if pfx, err := netip.ParsePrefix(t); err == nil && pfx.Bits() < 8 {
			a.cfg(c, "BW-CFG-016", p, "server.trusted_proxies has %s: every client may set X-Forwarded-For and choose the address that rate limits and bans see", t)
		}
	}
	l := s.get("limits")
	if n, ok := size(l.get("max_body")); ok && n > 10<<20 {
		a.cfg(c, "BW-CFG-017", l.get("max_body"), "server.limits.max_body is %s, more than 10MiB", l.get("max_body").text())
	}
	if d, ok := duration(l.get("read_header_timeout")); ok && d > 30*time.Second {
		a.cfg(c, "BW-CFG-030", l.get("read_header_timeout"), "server.limits.read_header_timeout is %s: slow clients hold connections that long", l.get("read_header_timeout").text())
	}
	if d, ok := duration(l.get("read_timeout")); ok && d > 5*time.Minute {
		a.cfg(c, "BW-CFG-030", l.get("read_timeout"), "server.limits.read_timeout is %s: slow uploads hold connections that long", l.get("read_timeout").text())
	}
}

var hmacAlg = regexp.MustCompile(`^(?i)HS\d+$`)

func (a *auditor) authenticatorRules(c *configDoc) {
	auths := c.root.get("authenticators")
	if !auths.isMap() {
		return
	}
	hasTokenEndpoint := c.root.get("token_endpoint").isMap()
	for i, name := range auths.keys {
		au := auths.vals[i]
		switch au.get("type").text() {
		case "api_key":
			if q := au.get("query"); q.text() != "" {
				a.cfg(c, "BW-CFG-013", q, "authenticator %q accepts API keys in the query string (%s=): keys end up in logs, browser history and Referer headers", name, q.text())
			}
		case "jwt":
			self := au.get("issuer").text() == "self"
			if len(au.get("audience").strings()) == 0 && !(self && hasTokenEndpoint) {
				a.cfg(c, "BW-CFG-009", au, "jwt authenticator %q does not check the audience: tokens issued for any other API of the issuer are accepted", name)
			}
			for _, alg := range au.get("algorithms").items() {
				if hmacAlg.MatchString(alg.text()) {
					a.cfg(c, "BW-CFG-010", alg, "jwt authenticator %q allows %s: a shared secret signs tokens, and everyone who can verify can also forge", name, alg.text())
				}
			}
			if j := au.get("jwks_url"); plainHTTPRemote(j.text()) {
				a.cfg(c, "BW-CFG-012", j, "jwt authenticator %q fetches its keys over plain HTTP: whoever is on the path can substitute keys and forge tokens", name)
			}
			if d, ok := duration(au.get("leeway")); ok && d > 2*time.Minute {
				a.cfg(c, "BW-CFG-032", au.get("leeway"), "jwt authenticator %q allows %s of clock skew: expired tokens stay usable that long", name, au.get("leeway").text())
			}
		case "introspection":
			if u := au.get("url"); plainHTTPRemote(u.text()) {
				a.cfg(c, "BW-CFG-039", u, "introspection authenticator %q sends tokens and its client secret over plain HTTP", name)
			}
			if s := au.get("client_secret"); s.text() != "" && !ref(s.text()) {
				a.cfg(c, "BW-CFG-022", s, "authenticators.%s.client_secret is written in the config", name)
			}
			cache, ok := duration(au.get("cache"))
			ttl, hasTTL := duration(c.root.at("token_endpoint", "ttl"))
			switch {
			case ok && hasTTL && cache > ttl:
				a.cfg(c, "BW-CFG-020", au.get("cache"), "introspection authenticator %q caches answers for %s, longer than the token lifetime %s", name, au.get("cache").text(), c.root.at("token_endpoint", "ttl").text())
			case ok && cache > 5*time.Minute:
				a.cfg(c, "BW-CFG-020", au.get("cache"), "introspection authenticator %q caches answers for %s: a revoked token stays accepted that long", name, au.get("cache").text())
			}
		case "http_signature":
			if d, ok := duration(au.get("max_age")); ok && d > 5*time.Minute {
				a.cfg(c, "BW-CFG-033", au.get("max_age"), "http_signature authenticator %q accepts signatures up to %s old", name, au.get("max_age").text())
			}
			if rc := au.get("required_components"); rc != nil {
				comps := rc.strings()
				for _, want := range []string{"@method", "@target-uri"} {
					if !slices.Contains(comps, want) && !(want == "@target-uri" && slices.Contains(comps, "@path")) {
						a.cfg(c, "BW-CFG-034", rc, "http_signature authenticator %q does not require %s to be signed: a signature can be replayed on another request", name, want)
					}
				}
			}
		}
	}
}

func (a *auditor) routeRules(c *configDoc) {
	for _, r := range c.routes() {
		n := r.n
		if len(n.get("rate_limits").items()) == 0 {
			a.cfg(c, "BW-CFG-002", n, "%s has no rate limit", r.label())
		}
		for _, t := range n.at("upstream", "targets").items() {
			u, err := url.Parse(t.text())
			if err != nil {
				continue
			}
			if plainHTTPRemote(t.text()) {
				a.cfg(c, "BW-CFG-003", t, "%s forwards to %s over plain HTTP", r.label(), u.Host)
			}
			if ip, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil && (ip.IsLinkLocalUnicast() || ip == netip.MustParseAddr("fd00:ec2::254")) {
				a.cfg(c, "BW-CFG-041", t, "%s forwards to the link-local address %s, where cloud metadata services answer", r.label(), ip)
			}
		}
		if n.at("upstream", "tls", "insecure_skip_verify").bool() {
			a.cfg(c, "BW-CFG-023", n.at("upstream", "tls", "insecure_skip_verify"), "%s does not verify the upstream's certificate", r.label())
		}
		if d, ok := duration(n.at("upstream", "timeout")); ok && d > time.Minute {
			a.cfg(c, "BW-CFG-029", n.at("upstream", "timeout"), "%s waits up to %s for its upstream", r.label(), n.at("upstream", "timeout").text())
		}
		if sz, ok := size(n.get("max_body")); ok && sz > 10<<20 {
			a.cfg(c, "BW-CFG-017", n.get("max_body"), "%s accepts bodies up to %s", r.label(), n.get("max_body").text())
		}
		api := n.get("openapi")
		if r.writes() && (!api.isMap() || !api.get("validate_requests").bool()) {
			a.cfg(c, "BW-CFG-019", n, "%s accepts writes without validating them against an OpenAPI spec", r.label())
		}
		if api.isMap() && !api.get("filter_responses").bool() {
			a.cfg(c, "BW-CFG-040", api, "%s passes responses through without filtering them by the spec's response schemas", r.label())
		}
		if r.public() {
			var w []string
			for _, m := range writeMethods {
				if r.allows(m) {
					w = append(w, m)
				}
			}
			if len(w) > 0 {
				a.cfg(c, "BW-CFG-025", n.get("auth"), "%s is public (auth: none) and accepts %s", r.label(), strings.Join(w, ", "))
			}
			if strings.HasSuffix(r.path, "/**") {
				a.cfg(c, "BW-CFG-031", n.get("path"), "%s exposes everything under %s without authentication", r.label(), strings.TrimSuffix(r.path, "**"))
			}
		} else if len(r.auth) > 0 {
			if len(r.scopes) == 0 {
				a.cfg(c, "BW-CFG-026", n, "%s requires no scope: every authenticated consumer may call it", r.label())
			}
			if id := n.get("identity"); id != nil && id.text() == "false" {
				a.cfg(c, "BW-CFG-037", id, "%s does not send X-Gateway-Identity: the upstream cannot check that a request came through the gateway", r.label())
			}
			if strings.Contains(r.path, "{") && n.get("policy").text() == "" {
				a.cfg(c, "BW-CFG-042", n.get("path"), "%s takes an object id from the path and has no policy: only the upstream checks that the consumer may access that object", r.label())
			}
		}
		if m := n.get("mask_upstream_errors"); m != nil && m.text() == "false" {
			a.cfg(c, "BW-CFG-027", m, "%s passes upstream error bodies (stack traces, internal addresses) to clients", r.label())
		}
		if !n.has("methods") {
			a.cfg(c, "BW-CFG-028", n, "%s accepts every method; list the ones the API has", r.label())
		}
	}
}

// placeholder stands for environment variables that are not set when the
// config is validated: base64 of 48 bytes, valid for any secret field.
const placeholder = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2"

// validate reports the config's validation problems as BW-CFG-000. Values
// from environment variables that are not set are not reported.
func (a *auditor) validate(c *configDoc, data []byte, lookupEnv func(string) (string, bool)) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	missing := map[string]bool{}
	lookup := func(name string) (string, bool) {
		if v, ok := lookupEnv(name); ok {
			return v, true
		}
		missing[name] = true
		return placeholder, true
	}
	_, err := config.Parse(data, c.file, lookup)
	if err == nil {
		return
	}
	skip := map[Pos]bool{}
	if len(missing) > 0 {
		markEnvValues(c.root, missing, skip, 0)
	}
	var errs config.Errors
	if !errors.As(err, &errs) {
		a.cfg(c, "BW-CFG-000", c.root, "%s", err.Error())
		return
	}
	for _, e := range errs {
		p := Pos{Line: e.Line, Col: e.Col}
		if skip[p] {
			continue
		}
		msg := e.Msg
		if e.Path != "" {
			msg = e.Path + ": " + e.Msg
		}
		a.emit("BW-CFG-000", c.file, c.root, nil, p, "%s", msg)
	}
}

// markEnvValues records where values that use a missing ${NAME} stand, so
// that problems with the placeholder are not reported.
func markEnvValues(n *node, missing map[string]bool, out map[Pos]bool, depth int) {
	if n == nil || depth > maxDepth {
		return
	}
	if n.kind == kindScalar {
		for name := range missing {
			if strings.Contains(n.str, "${"+name+"}") {
				out[n.pos], out[n.keyPos] = true, true
			}
		}
		return
	}
	for _, v := range n.vals {
		markEnvValues(v, missing, out, depth+1)
	}
}
