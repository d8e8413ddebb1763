package config

import (
	"fmt"
	"github.com/breakwater/breakwater/internal/redisconn"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Validate checks a config that Defaults has filled and returns every
// problem at once, each at the position of the offending value (or of its
// nearest written parent when the value is missing). It also refuses the
// sections that are parsed but not served yet (see notYetAvailable).
func Validate(c *Config) Errors {
	v := &validator{c: c, errs: &collector{file: displayName(c.File)}}
	v.version()
	v.server()
	v.tls()
	v.store()
	v.admin()
	v.authenticators()
	v.tokenEndpoint()
	v.consumers()
	v.routes()
	v.routeMatching()
	v.docs()
	v.cors()
	v.bans()
	v.monitoring(v.c.Monitoring)
	v.unavailable()
	return v.errs.result()
}

type validator struct {
	c    *Config
	errs *collector
	// badMethods are the routes whose methods already have a problem
	// reported element by element.
	badMethods map[int]bool
}

// errf reports a problem with the value at path.
func (v *validator) errf(path, format string, args ...any) {
	v.errs.add(v.c.Pos(path), path, fmt.Sprintf(format, args...))
}

// written reports whether path was written in the config file.
func (v *validator) written(path string) bool {
	_, ok := v.c.Positions[path]
	return ok
}

// elemPath is the path of element i of a list that may have been written
// as a single scalar ("auth: none"); then it is the list's own path.
func (v *validator) elemPath(path string, i int) string {
	p := fmt.Sprintf("%s[%d]", path, i)
	if v.written(path) && !v.written(p) {
		return path
	}
	return p
}

func (v *validator) version() {
	switch {
	case v.c.Version == 1:
	case v.c.Version == 0 && !v.written("version"):
		v.errf("version", `required; write "version: 1" at the top of the config`)
	default:
		v.errf("version", "unsupported version %d; this Breakwater reads version 1", v.c.Version)
	}
}

func (v *validator) server() {
	s := &v.c.Server
	if s.HTTPS == "" {
		v.errf("server.https", `required; the HTTPS listen address, such as ":8443"`)
	} else {
		v.listen("server.https", s.HTTPS)
	}
	if s.HTTP != "" && v.listen("server.http", s.HTTP) && s.HTTPS != "" && sameListener(s.HTTP, s.HTTPS) {
		v.errf("server.http", "uses the same address as server.https")
	}
	switch s.Admin {
	case "off":
	case "":
		v.errf("server.admin", `required; a listen address such as "127.0.0.1:9901", or "off"`)
	default:
		if v.listen("server.admin", s.Admin) {
			for _, other := range []struct{ name, addr string }{{"server.https", s.HTTPS}, {"server.http", s.HTTP}} {
				if other.addr != "" && sameListener(s.Admin, other.addr) {
					v.errf("server.admin", "uses the same address as %s", other.name)
				}
			}
		}
	}
	for i, p := range s.TrustedProxies {
		if err := checkIPOrCIDR(p); err != nil {
			v.errf(fmt.Sprintf("server.trusted_proxies[%d]", i), "%s", err)
		}
	}
	if s.DataDir == "" {
		v.errf("server.data_dir", "required; a directory for generated certificates and state")
	}
	v.positive("server.shutdown_timeout", int64(s.ShutdownTimeout))
	l, lp := &s.Limits, "server.limits."
	v.positive(lp+"max_header_bytes", int64(l.MaxHeaderBytes))
	v.positive(lp+"max_uri_bytes", int64(l.MaxURIBytes))
	v.positive(lp+"max_body", int64(l.MaxBody))
	v.positive(lp+"read_header_timeout", int64(l.ReadHeaderTimeout))
	v.positive(lp+"read_timeout", int64(l.ReadTimeout))
	if l.WriteTimeout < 0 {
		v.errf(lp+"write_timeout", "must not be negative; 0 leaves it to the upstream timeouts")
	}
	v.positive(lp+"idle_timeout", int64(l.IdleTimeout))
	v.positive(lp+"max_connections", int64(l.MaxConnections))
	v.positive(lp+"max_connections_per_ip", int64(l.MaxConnectionsPerIP))
	v.positive(lp+"max_in_flight", int64(l.MaxInFlight))
	if l.MaxConnectionsPerIP > l.MaxConnections && l.MaxConnections > 0 {
		v.errf(lp+"max_connections_per_ip", "is more than max_connections (%d)", l.MaxConnections)
	}
}

// positive reports a value at path that must be more than zero.
func (v *validator) positive(path string, n int64) bool {
	if n <= 0 {
		v.errf(path, "must be more than 0")
		return false
	}
	return true
}

// listen checks a listen address; it reports whether it is valid.
func (v *validator) listen(path, addr string) bool {
	if err := checkHostPort(addr); err != nil {
		v.errf(path, "%q is not a listen address: %s", truncate(addr), err)
		return false
	}
	return true
}

// checkHostPort accepts "host:port" and ":port" with a numeric port
// (0 picks a free one) and a host that is an IP address or a DNS name.
func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf(`want host:port, such as ":8443" or "127.0.0.1:9901"`)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 || port == "" {
		return fmt.Errorf("the port must be a number from 0 to 65535")
	}
	if host != "" && net.ParseIP(host) == nil && !isHostname(host) {
		return fmt.Errorf("%q is neither an IP address nor a host name", truncate(host))
	}
	return nil
}

// sameListener reports whether two valid listen addresses would collide.
func sameListener(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb || pa == "0" {
		return false
	}
	any := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || any(ha) || any(hb)
}

// checkIPOrCIDR accepts an IP address or a CIDR prefix without host bits.
func checkIPOrCIDR(s string) error {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("%q is not a CIDR prefix such as 10.0.0.0/8", truncate(s))
		}
		if m := p.Masked(); m != p {
			return fmt.Errorf("%q has bits set after the prefix length; did you mean %s?", s, m)
		}
		return nil
	}
	if _, err := netip.ParseAddr(s); err != nil {
		return fmt.Errorf("%q is neither an IP address nor a CIDR prefix", truncate(s))
	}
	return nil
}

func (v *validator) tls() {
	t := &v.c.TLS
	hasPair := t.CertFile != "" || t.KeyFile != ""
	if hasPair {
		if t.CertFile == "" {
			v.errf("tls.cert_file", "required with tls.key_file")
		} else {
			v.readable("tls.cert_file", t.CertFile)
		}
		if t.KeyFile == "" {
			v.errf("tls.key_file", "required with tls.cert_file")
		} else {
			v.readable("tls.key_file", t.KeyFile)
		}
	}
	var sources []string
	if hasPair {
		sources = append(sources, "cert_file")
	}
	if t.SelfSigned {
		sources = append(sources, "self_signed")
	}
	if t.ACME != nil {
		sources = append(sources, "acme")
	}
	switch len(sources) {
	case 0:
		v.errf("tls", "choose where the certificate comes from: cert_file with key_file, self_signed: true (development only), or acme")
	case 1:
	default:
		v.errf("tls."+sources[1], "conflicts with tls.%s; choose one of cert_file with key_file, self_signed or acme", sources[0])
	}
	if a := t.ACME; a != nil {
		if a.Email == "" {
			v.errf("tls.acme.email", "required; the ACME account contact")
		}
		if len(a.Domains) == 0 {
			v.errf("tls.acme.domains", "required; the host names to obtain certificates for")
		}
		for i, d := range a.Domains {
			if !isHostname(d) {
				v.errf(fmt.Sprintf("tls.acme.domains[%d]", i), "%q is not a host name", truncate(d))
			}
		}
	}
	switch t.MinVersion {
	case "1.2", "1.3":
	default:
		v.errf("tls.min_version", `%q is not supported; use "1.2" or "1.3"`, truncate(t.MinVersion))
	}
	if t.ClientCAFile != "" {
		v.readable("tls.client_ca_file", t.ClientCAFile)
	}
	h := &t.HSTS
	if h.MaxAge != nil && *h.MaxAge < 0 {
		v.errf("tls.hsts.max_age", "must not be negative; 0 turns HSTS off")
	}
	if h.Preload && (!h.IncludeSubdomains || h.MaxAge == nil || *h.MaxAge < Duration(365*day)) {
		v.errf("tls.hsts.preload", "needs include_subdomains: true and max_age of at least 365d")
	}
}

func (v *validator) store() {
	s := &v.c.Store
	switch s.OnUnavailable {
	case "local", "deny", "allow":
	default:
		v.errf("store.on_unavailable", "%q is not one of local, deny, allow", truncate(s.OnUnavailable))
	}
	if s.Redis != "" {
		if _, err := redisconn.ParseURL(s.Redis); err != nil {
			v.errf("store.redis", "%s", err)
		}
	}
}

func (v *validator) admin() {
	if v.c.Server.Admin != "off" && v.c.Admin.TokenHash.IsZero() {
		v.errf("admin.token_hash", `required while server.admin is on; make one with "breakwater secret hash", or set server.admin: off`)
	}
}
