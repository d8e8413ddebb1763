package proxy

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// rewriteLocations makes redirects and Content-Location point at the
// gateway: an absolute URL whose origin is one of the route's targets (the
// upstream answering with its own, internal address) is rewritten to
// https://<the host the client asked for><the path without the target's
// base path>, as nginx's proxy_redirect does by default. Other absolute URLs
// (redirects to an identity provider, a CDN) and relative ones are left
// alone. clientHost is the Host the client used (X-Forwarded-Host as the
// gateway sent it upstream).
func (u *Upstream) rewriteLocations(h http.Header, clientHost string) {
	if clientHost == "" {
		return
	}
	for _, k := range [...]string{"Location", "Content-Location"} {
		vs := h[k]
		if len(vs) != 1 || !strings.Contains(vs[0], "://") {
			continue // relative, absent, or ambiguous (repeated): nothing to rewrite
		}
		if v, ok := u.gatewayURL(vs[0], clientHost); ok {
			h[k] = []string{v}
		}
	}
}

// gatewayURL rewrites raw when it points at a target of this upstream.
func (u *Upstream) gatewayURL(raw, clientHost string) (string, bool) {
	loc, err := url.Parse(raw)
	if err != nil || loc.Opaque != "" || loc.User != nil {
		return "", false
	}
	for _, t := range u.bal.targets {
		if !strings.EqualFold(loc.Scheme, t.scheme) || !sameHostPort(loc.Host, t.host, t.scheme) {
			continue
		}
		p := loc.EscapedPath()
		if t.baseRaw != "" {
			rest, ok := strings.CutPrefix(p, t.baseRaw)
			if !ok || (rest != "" && rest[0] != '/') {
				return "", false // outside the part of the upstream the route exposes
			}
			p = rest
		}
		if p == "" {
			p = "/"
		}
		out := url.URL{Scheme: "https", Host: clientHost, RawQuery: loc.RawQuery, Fragment: loc.Fragment}
		out.Path, err = url.PathUnescape(p)
		if err != nil {
			return "", false
		}
		out.RawPath = p
		return out.String(), true
	}
	return "", false
}

// sameHostPort compares two URL hosts, case-insensitively and with the
// scheme's default port made explicit.
func sameHostPort(a, b, scheme string) bool {
	return strings.EqualFold(withPort(a, scheme), withPort(b, scheme))
}

func withPort(hostport, scheme string) string {
	if _, _, err := net.SplitHostPort(hostport); err == nil {
		return hostport
	}
	if scheme == "https" {
		return net.JoinHostPort(strings.Trim(hostport, "[]"), "443")
	}
	return net.JoinHostPort(strings.Trim(hostport, "[]"), "80")
}
