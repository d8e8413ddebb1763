// Package cors answers cross-origin requests at the gateway (the Fetch
// standard's CORS protocol): preflights are answered without reaching the
// upstream, and an allowed origin gets its Access-Control-* headers on the
// actual response. Origins are matched exactly — a request's Origin is never
// reflected unless it is listed — and the origin "null" is never allowed.
// See docs/cors.md.
package cors

import (
	"errors"
	"fmt"
	"github.com/breakwater/breakwater/internal/hostname"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/problem"
)

// DefaultMethods are the methods a preflight may ask for when
// cors.allowed_methods is left out: the CORS-safelisted ones.
const DefaultMethods = "GET, HEAD, POST"

// DefaultHeaders are the request headers a preflight may ask for when
// cors.allowed_headers is left out. Neither carries an ambient credential:
// a page can only send an Authorization value it already holds.
const DefaultHeaders = "Content-Type, Authorization"

// ExposeHeaders are the response headers an allowed origin may read besides
// the CORS-safelisted ones: the gateway's request id and rate-limit headers.
const ExposeHeaders = "X-Request-Id, RateLimit, RateLimit-Policy, Retry-After"

// DefaultMaxAge is how long, in seconds, a browser may cache a preflight
// answer when cors.max_age is left out (10m).
const DefaultMaxAge = 600

// Limits on what a preflight may ask for; larger requests are refused.
const (
	maxOriginLen        = 512  // an Origin header longer than this is not an origin
	maxRequestHeaders   = 64   // names in Access-Control-Request-Headers
	maxRequestHeaderLen = 4096 // bytes of Access-Control-Request-Headers
)

// Header names, canonical, to index http.Header without allocating.
const (
	hOrigin           = "Origin"
	hVary             = "Vary"
	hRequestMethod    = "Access-Control-Request-Method"
	hRequestHeaders   = "Access-Control-Request-Headers"
	hAllowOrigin      = "Access-Control-Allow-Origin"
	hAllowMethods     = "Access-Control-Allow-Methods"
	hAllowHeaders     = "Access-Control-Allow-Headers"
	hAllowCredentials = "Access-Control-Allow-Credentials"
	hExposeHeaders    = "Access-Control-Expose-Headers"
	hMaxAge           = "Access-Control-Max-Age"
)

// Policy is a compiled cors section. It is safe for concurrent use and never
// changes after New: build a new one on reload.
type Policy struct {
	anyOrigin   bool                // "*" is listed (never with credentials)
	origins     map[string][]string // normalised origin → itself as a shared header value
	methods     []string            // exact, case-sensitive
	headers     map[string]struct{} // lowercase names
	credentials bool

	// Shared, read-only header values (cap == len, so an append by a later
	// handler copies instead of writing into them).
	allowMethods  []string
	allowHeaders  []string
	maxAge        []string
	expose        []string
	true_         []string
	star          []string
	varyOrigin    []string
	varyPreflight []string
}

// New compiles a cors section (already validated by package config). It
// returns an error for what validation also refuses, so that a Policy is
// never built from an unchecked config: an origin that is not
// scheme://host[:port], "*" with allow_credentials, a bad method or header
// name.
func New(c config.CORS) (*Policy, error) {
	if len(c.AllowedOrigins) == 0 {
		return nil, errors.New("cors.allowed_origins: at least one origin is required")
	}
	p := &Policy{origins: make(map[string][]string, len(c.AllowedOrigins)), headers: map[string]struct{}{},
		credentials: c.AllowCredentials}
	for i, o := range c.AllowedOrigins {
		if o == "*" {
			if c.AllowCredentials {
				return nil, fmt.Errorf(`cors.allowed_origins[%d]: "*" together with allow_credentials lets any site act as the user`, i)
			}
			p.anyOrigin = true
			continue
		}
		n, ok := ParseOrigin(o)
		if !ok {
			return nil, fmt.Errorf("cors.allowed_origins[%d]: %q is not an origin such as https://app.example.com", i, o)
		}
		p.origins[n] = []string{n}[:1:1]
	}
	p.methods = c.AllowedMethods
	if len(p.methods) == 0 {
		p.methods = strings.Split(DefaultMethods, ", ")
	}
	for i, m := range p.methods {
		if !isToken(m) {
			return nil, fmt.Errorf("cors.allowed_methods[%d]: %q is not an HTTP method", i, m)
		}
	}
	hs := c.AllowedHeaders
	if len(hs) == 0 {
		hs = strings.Split(DefaultHeaders, ", ")
	}
	for i, h := range hs {
		if !isToken(h) {
			return nil, fmt.Errorf("cors.allowed_headers[%d]: %q is not a header name", i, h)
		}
		p.headers[strings.ToLower(h)] = struct{}{}
	}
	maxAge := DefaultMaxAge
	if d := c.MaxAge.D(); d < 0 {
		return nil, errors.New("cors.max_age: must not be negative")
	} else if d > 0 {
		maxAge = max(1, int(d.Seconds()))
	}
	one := func(s string) []string { return []string{s}[:1:1] }
	p.allowMethods = one(strings.Join(p.methods, ", "))
	p.allowHeaders = one(strings.Join(hs, ", "))
	p.maxAge = one(strconv.Itoa(maxAge))
	p.expose = one(ExposeHeaders)
	p.true_ = one("true")
	p.star = one("*")
	p.varyOrigin = one(hOrigin)
	p.varyPreflight = one("Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
	return p, nil
}

// Handle applies the policy to a request, before authentication (a
// preflight carries no credentials). A preflight — OPTIONS with Origin and
// Access-Control-Request-Method — is answered here: 204 with the CORS
// headers when the origin, the method and every requested header are
// allowed, otherwise a 403 problem without CORS headers; Handle then returns
// true and the caller must not write anything more. For any other request it
// adds the response headers an allowed origin needs (and Vary: Origin) and
// returns false: the caller serves the request as usual. A request from an
// origin that is not allowed is served without CORS headers, so the browser
// keeps the response from the page.
func (p *Policy) Handle(w http.ResponseWriter, r *http.Request) (done bool) {
	h := w.Header()
	if r.Method == http.MethodOptions && len(r.Header[hRequestMethod]) > 0 && len(r.Header[hOrigin]) > 0 {
		h[hVary] = p.varyPreflight
		if !p.preflightAllowed(r.Header) {
			problem.Write(w, r, http.StatusForbidden)
			return true
		}
		p.allowOrigin(h, r.Header[hOrigin][0])
		h[hAllowMethods] = p.allowMethods
		h[hAllowHeaders] = p.allowHeaders
		h[hMaxAge] = p.maxAge
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	if !p.anyOrigin || len(p.origins) > 0 {
		// The answer depends on Origin, also for a request without one: a
		// shared cache must not hand it to a page of another origin.
		addVary(h, p.varyOrigin)
	}
	if o := r.Header[hOrigin]; len(o) == 1 && p.allowed(o[0]) {
		p.allowOrigin(h, o[0])
		h[hExposeHeaders] = p.expose
	}
	return false
}

// allowOrigin sets Allow-Origin (and Allow-Credentials) for an allowed origin.
func (p *Policy) allowOrigin(h http.Header, origin string) {
	if v, ok := p.origins[origin]; ok { // the usual case: sent in normal form
		h[hAllowOrigin] = v
		if p.credentials {
			h[hAllowCredentials] = p.true_
		}
		return
	}
	if n, ok := ParseOrigin(origin); ok {
		if _, listed := p.origins[n]; listed {
			h[hAllowOrigin] = []string{origin}
			if p.credentials {
				h[hAllowCredentials] = p.true_
			}
			return
		}
	}
	h[hAllowOrigin] = p.star // only reached when "*" is listed (allowed said yes)
}

// allowed reports whether a request from origin may read the response.
func (p *Policy) allowed(origin string) bool {
	if _, listed := p.origins[origin]; listed {
		return true
	}
	n, ok := ParseOrigin(origin)
	if !ok {
		return false // includes "null"
	}
	if _, listed := p.origins[n]; listed {
		return true
	}
	return p.anyOrigin
}

func (p *Policy) preflightAllowed(hd http.Header) bool {
	o, m := hd[hOrigin], hd[hRequestMethod]
	if len(o) != 1 || len(m) != 1 || !p.allowed(o[0]) || !slices.Contains(p.methods, m[0]) {
		return false
	}
	n, size := 0, 0
	for _, line := range hd[hRequestHeaders] {
		if size += len(line); size > maxRequestHeaderLen {
			return false
		}
		for name := range strings.SplitSeq(line, ",") {
			name = strings.Trim(name, " \t")
			if name == "" {
				continue
			}
			if n++; n > maxRequestHeaders || !p.headerAllowed(name) {
				return false
			}
		}
	}
	return true
}

// headerAllowed looks name up case-insensitively; browsers send lowercase
// names, so the common case does not allocate.
func (p *Policy) headerAllowed(name string) bool {
	if _, ok := p.headers[name]; ok {
		return true
	}
	if !isToken(name) {
		return false
	}
	_, ok := p.headers[strings.ToLower(name)]
	return ok
}

// addVary adds v to the Vary header, sharing v when there is none yet.
func addVary(h http.Header, v []string) {
	if old, ok := h[hVary]; ok {
		h[hVary] = append(old[:len(old):len(old)], v[0])
		return
	}
	h[hVary] = v
}

// ParseOrigin returns the serialised origin s in normal form: scheme and
// host lowercased, a default port (http 80, https 443) removed. It accepts
// only what a browser sends, "http" or "https" "://" host [":" port] with
// host a DNS name or an IP literal, and refuses everything else: "null", a
// path (even "/"), userinfo, a query, whitespace, a port out of range or
// with leading zeros, IPv6 zones, more than 512 bytes.
func ParseOrigin(s string) (string, bool) {
	if len(s) > maxOriginLen {
		return "", false
	}
	var scheme, defPort string
	switch {
	case len(s) > 8 && strings.EqualFold(s[:8], "https://"):
		scheme, defPort, s = "https://", "443", s[8:]
	case len(s) > 7 && strings.EqualFold(s[:7], "http://"):
		scheme, defPort, s = "http://", "80", s[7:]
	default:
		return "", false
	}
	host, port := s, ""
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", false
		}
		ip, ok := canonicalIPv6(s[1:end])
		if !ok {
			return "", false
		}
		host, s = "["+ip+"]", s[end+1:]
		if s != "" {
			if s[0] != ':' {
				return "", false
			}
			port = s[1:]
			if port == "" {
				return "", false
			}
		}
	} else {
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			host, port = s[:i], s[i+1:]
			if port == "" {
				return "", false
			}
		}
		if !hostname.Labels(host) {
			return "", false
		}
	}
	if port != "" && !validPort(port) {
		return "", false
	}
	if port == defPort {
		port = ""
	}
	out := scheme + strings.ToLower(host)
	if port != "" {
		out += ":" + port
	}
	return out, true
}

// canonicalIPv6 returns the inside of "[...]" in canonical form when it is
// an IPv6 address without a zone.
func canonicalIPv6(s string) (string, bool) {
	if len(s) > 45 {
		return "", false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() || a.Zone() != "" {
		return "", false
	}
	return a.String(), true
}

// validPort accepts 1 to 65535 without leading zeros.
func validPort(p string) bool {
	if len(p) > 5 || p[0] == '0' {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
		n = n*10 + int(p[i]-'0')
	}
	return n >= 1 && n <= 65535
}

// isToken reports whether s is an RFC 9110 token (method, header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}
