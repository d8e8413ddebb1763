package config

import (
	"errors"
	"fmt"
	"github.com/breakwater/breakwater/internal/authz"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/breakwater/breakwater/internal/router"
)

func (v *validator) routes() {
	names := map[string]int{}
	for i := range v.c.Routes {
		r := &v.c.Routes[i]
		p := fmt.Sprintf("routes[%d]", i)
		switch {
		case r.Name == "":
			v.errf(p+".name", "required; a unique name for metrics and logs")
		case !isName(r.Name):
			v.errf(p+".name", `%q is not a valid name; use 1 to 64 letters, digits, ".", "_" and "-"`, truncate(r.Name))
		default:
			if first, dup := names[r.Name]; dup {
				v.errf(p+".name", "%q is already the name of routes[%d]", r.Name, first)
			} else {
				names[r.Name] = i
			}
		}
		if r.Path == "" {
			v.errf(p+".path", `required; such as "/v1/orders/{id}" or "/v1/**"`)
		}
		if !v.methods(p+".methods", r.Methods) {
			if v.badMethods == nil {
				v.badMethods = map[int]bool{}
			}
			v.badMethods[i] = true
		}
		v.upstream(p+".upstream", &r.Upstream)
		v.routeAuth(p, r)
		v.scopes(p+".scopes", r.Scopes)
		if r.MaxBody != nil && (v.written(p+".max_body") || v.c.Positions == nil) {
			v.positive(p+".max_body", int64(*r.MaxBody))
		}
		v.rateLimitCount(p+".rate_limits", len(r.RateLimits))
		for j, rl := range r.RateLimits {
			v.routeRateLimit(fmt.Sprintf("%s.rate_limits[%d]", p, j), r, rl)
		}
		if o := r.OpenAPI; o != nil {
			if o.Spec == "" {
				v.errf(p+".openapi.spec", "required; the OpenAPI document of this route")
			} else {
				v.readable(p+".openapi.spec", o.Spec)
			}
		}
	}
}

// routeRateLimit checks one routes[].rate_limits entry: its key, and
// exactly one of limit and concurrency.
func (v *validator) routeRateLimit(rp string, r *Route, rl RouteRateLimit) {
	parts, err := ParseLimitKey(rl.Key)
	if err != nil {
		v.errf(rp+".key", "%s", err)
	}
	if r.Public() {
		for _, kp := range parts {
			switch kp.Kind {
			case LimitKeyConsumer:
				v.errf(rp+".key", `a route with "auth: none" has no consumer to count; use key: ip or key: route`)
			case LimitKeyClaim:
				v.errf(rp+".key", `a route with "auth: none" has no token claims to count; use key: ip or key: header:NAME`)
			}
		}
	}
	switch {
	case rl.Concurrency != 0 && rl.Limit.N != 0:
		v.errf(rp+".concurrency", "set either limit (a rate) or concurrency (requests in flight), not both; write two entries for both")
	case rl.Concurrency != 0:
		if rl.Concurrency < 0 || rl.Concurrency > MaxConcurrency {
			v.errf(rp+".concurrency", "%d: want 1 to %d requests in flight", rl.Concurrency, MaxConcurrency)
		}
	case rl.Limit.N <= 0:
		v.errf(rp+".limit", `required; a rate such as "10/s burst 20" (or concurrency: N, requests in flight)`)
	default:
		v.rate(rp+".limit", rl.Limit)
	}
}

// minHealthInterval bounds how often active checks probe a target.
const minHealthInterval = time.Second

// routeMatching checks hosts, path templates and conflicts between routes
// with the router the gateway will build from them, so that what validates
// is exactly what serves.
func (v *validator) routeMatching() {
	_, err := router.New(v.c.RouterSpecs())
	for _, e := range flattenErrors(err) {
		var se *router.SpecError
		var ce *router.ConflictError
		switch {
		case errors.As(e, &se):
			p := fmt.Sprintf("routes[%d]", se.Route)
			if (se.Field == "methods" && v.badMethods[se.Route]) || (se.Field == "path" && v.c.Routes[se.Route].Path == "") {
				continue // reported per element, or as required, by routes
			}
			v.errf(p+"."+se.Field, "%s", se.Msg)
		case errors.As(e, &ce):
			m := ce.Method
			if m == "*" {
				m = "(any)"
			}
			v.errf(fmt.Sprintf("routes[%d].path", ce.Route), "routes[%d] (%q) already matches the same host, path and method %s",
				ce.Other, v.c.Routes[ce.Other].Name, m)
		}
	}
}

// RouterSpecs returns what the router needs of every route, in order: the
// index of a spec is the index of its route.
func (c *Config) RouterSpecs() []router.Spec {
	specs := make([]router.Spec, len(c.Routes))
	for i, r := range c.Routes {
		specs[i] = router.Spec{Host: r.Host, Path: r.Path, Methods: r.Methods}
	}
	return specs
}

// flattenErrors returns the errors joined in err (err itself if it joins none).
func flattenErrors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// routeAuth checks that a route says how it authenticates.
func (v *validator) routeAuth(p string, r *Route) {
	ap := p + ".auth"
	if len(r.Auth) == 0 {
		v.errf(ap, `required; list authenticators, or write "auth: none" for a public route`)
		return
	}
	v.authNames(ap, r.Auth, true)
	if r.Public() && len(r.Scopes) > 0 {
		v.errf(p+".scopes", "a public route (auth: none) has no consumer to hold scopes; remove scopes or name authenticators")
	}
	if r.Policy != "" {
		v.policy(p+".policy", r)
	}
	if r.Public() && r.Identity != nil && *r.Identity && v.written(p+".identity") {
		v.errf(p+".identity", "a public route (auth: none) has no consumer to vouch for; remove identity or name authenticators")
	}
}

// authNames checks a list of authenticator names; "none" is allowed alone
// when allowNone.
func (v *validator) authNames(ap string, names Strings, allowNone bool) {
	defined := strings.Join(slices.Sorted(maps.Keys(v.c.Authenticators)), ", ")
	if defined == "" {
		defined = "none are defined"
	} else {
		defined = "defined: " + defined
	}
	seen := map[string]bool{}
	for i, name := range names {
		ep := v.elemPath(ap, i)
		switch _, ok := v.c.Authenticators[name]; {
		case name == "none" && !allowNone:
			v.errf(ep, `"none" is not allowed here; name authenticators`)
		case name == "none" && len(names) > 1:
			v.errf(ep, `"none" must stand alone; a route is either public or needs authentication`)
		case name == "none":
		case seen[name]:
			v.errf(ep, "%q is listed twice", truncate(name))
		case !ok:
			v.errf(ep, "unknown authenticator %q (%s)", truncate(name), defined)
		}
		seen[name] = true
	}
}

// methods checks a route's methods element by element; it reports whether
// they passed.
func (v *validator) methods(path string, methods []string) bool {
	ok := true
	seen := map[string]bool{}
	for i, m := range methods {
		mp := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case !isToken(m):
			v.errf(mp, "%q is not an HTTP method", truncate(m))
		case strings.ToUpper(m) != m:
			v.errf(mp, "methods are case-sensitive and uppercase; write %q", strings.ToUpper(m))
		case seen[m]:
			v.errf(mp, "%q is listed twice", m)
		default:
			seen[m] = true
			continue
		}
		ok = false
	}
	return ok
}

func (v *validator) upstream(up string, u *Upstream) {
	if len(u.Targets) == 0 {
		v.errf(up+".targets", `required; at least one URL such as "http://127.0.0.1:9000"`)
	}
	https := false
	for i, t := range u.Targets {
		parsed, err := checkTarget(t)
		if err != nil {
			v.errf(fmt.Sprintf("%s.targets[%d]", up, i), "%s", err)
			continue
		}
		https = https || parsed.Scheme == "https"
	}
	v.positive(up+".timeout", int64(u.Timeout))
	if u.Retries != nil && (*u.Retries < 0 || *u.Retries > 10) {
		v.errf(up+".retries", "must be from 0 to 10")
	}
	if u.MaxFails < 0 {
		v.errf(up+".max_fails", "must not be negative; 0 turns passive health checks off")
	}
	if u.MaxFails > 0 {
		v.positive(up+".fail_timeout", int64(u.FailTimeout))
	}
	if h := u.HealthCheck; h != nil {
		hp := up + ".health_check"
		if !strings.HasPrefix(h.Path, "/") {
			v.errf(hp+".path", `must start with "/"`)
		}
		intervalOK := v.positive(hp+".interval", int64(h.Interval))
		if intervalOK && h.Interval.D() < minHealthInterval {
			v.errf(hp+".interval", "%s is too short: each target is probed every interval; at least %s", h.Interval, Duration(minHealthInterval))
		}
		if v.positive(hp+".timeout", int64(h.Timeout)) && intervalOK && h.Timeout > h.Interval {
			v.errf(hp+".timeout", "is longer than the interval (%s)", h.Interval)
		}
		v.positive(hp+".healthy_threshold", int64(h.HealthyThreshold))
		v.positive(hp+".unhealthy_threshold", int64(h.UnhealthyThreshold))
	}
	if t := u.TLS; t != nil {
		tp := up + ".tls"
		if !https && len(u.Targets) > 0 {
			v.errf(tp, "no target uses https; remove tls or use https:// targets")
		}
		if (t.CertFile == "") != (t.KeyFile == "") {
			if t.CertFile == "" {
				v.errf(tp+".cert_file", "required with key_file")
			} else {
				v.errf(tp+".key_file", "required with cert_file")
			}
		}
		for _, f := range []struct{ name, file string }{{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile}} {
			if f.file != "" {
				v.readable(tp+"."+f.name, f.file)
			}
		}
		if t.ServerName != "" && !isHostname(t.ServerName) {
			v.errf(tp+".server_name", "%q is not a host name", truncate(t.ServerName))
		}
	}
}

func (v *validator) docs() {
	d := v.c.Docs
	if d == nil {
		return
	}
	if d.Path == "" {
		v.errf("docs.path", `required; such as "/docs"`)
	} else if _, err := router.New([]router.Spec{{Path: d.Path}}); err != nil || strings.ContainsAny(d.Path, "{*") {
		v.errf("docs.path", `must be a plain path such as "/docs"`)
	}
	if len(d.Auth) == 0 {
		v.errf("docs.auth", "required; the documentation is only for authenticated consumers")
	}
	v.authNames("docs.auth", d.Auth, false)
	for i, s := range d.Specs {
		v.readable(fmt.Sprintf("docs.specs[%d]", i), s)
	}
}

func (v *validator) cors() {
	c := v.c.CORS
	if c == nil {
		return
	}
	if len(c.AllowedOrigins) == 0 {
		v.errf("cors.allowed_origins", "required; the origins allowed to call the API")
	}
	for i, o := range c.AllowedOrigins {
		op := fmt.Sprintf("cors.allowed_origins[%d]", i)
		if o == "*" {
			if c.AllowCredentials {
				v.errf(op, `"*" together with allow_credentials lets any site act as the user; list the origins`)
			}
			continue
		}
		if u, err := checkTarget(o); err != nil || u.Path != "" {
			v.errf(op, `%q is not an origin such as "https://app.example.com"`, truncate(o))
		}
	}
	v.methods("cors.allowed_methods", c.AllowedMethods)
	for i, h := range c.AllowedHeaders {
		if !isToken(h) {
			v.errf(fmt.Sprintf("cors.allowed_headers[%d]", i), "%q is not a header name", truncate(h))
		}
	}
	if c.MaxAge < 0 {
		v.errf("cors.max_age", "must not be negative")
	}
}

// policy compiles a route's CEL policy: every problem is reported at the
// policy, with its line and column inside the expression.
func (v *validator) policy(path string, r *Route) {
	if r.Public() {
		v.errf(path, "a public route (auth: none) has no consumer for a policy to judge; remove policy or name authenticators")
		return
	}
	_, err := authz.Compile(r.Policy)
	if err == nil {
		return
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		var ce *authz.CompileError
		if errors.As(e, &ce) {
			v.errf(path, "expression %d:%d: %s", ce.Line, ce.Col, ce.Msg)
		} else {
			v.errf(path, "%s", e)
		}
	}
}
