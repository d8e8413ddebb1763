package config

import (
	"fmt"
	"path/filepath"
	"time"
)

// Default values, documented on the fields they fill and in
// docs/configuration.md.
const (
	DefaultHTTPS               = ":8443"
	DefaultAdmin               = "127.0.0.1:9901"
	DefaultDataDir             = "data"
	DefaultShutdownTimeout     = Duration(30 * time.Second)
	DefaultMaxHeaderBytes      = Size(16 << 10)
	DefaultMaxURIBytes         = Size(8 << 10)
	DefaultMaxBody             = Size(1 << 20)
	DefaultReadHeaderTimeout   = Duration(5 * time.Second)
	DefaultReadTimeout         = Duration(30 * time.Second)
	DefaultIdleTimeout         = Duration(60 * time.Second)
	DefaultMaxConnections      = 10000
	DefaultMaxConnectionsPerIP = 200
	DefaultMaxInFlight         = 5000
	DefaultMinTLSVersion       = "1.2"
	DefaultHSTSMaxAge          = Duration(365 * day)
	DefaultOnUnavailable       = "local"
	DefaultAPIKeyHeader        = "X-API-Key"
	DefaultJWTLeeway           = Duration(30 * time.Second)
	DefaultIntrospectionCache  = Duration(60 * time.Second)
	DefaultSignatureMaxAge     = Duration(60 * time.Second)
	DefaultTokenAlgorithm      = "EdDSA"
	DefaultTokenTTL            = Duration(15 * time.Minute)
	DefaultTokenRotateEvery    = Duration(24 * time.Hour)
	DefaultUpstreamTimeout     = Duration(30 * time.Second)
	DefaultRetries             = 1
	DefaultMaxFails            = 3
	DefaultFailTimeout         = Duration(10 * time.Second)
	DefaultHealthPath          = "/"
	DefaultHealthInterval      = Duration(10 * time.Second)
	DefaultHealthTimeout       = Duration(2 * time.Second)
	DefaultHealthyThreshold    = 2
	DefaultUnhealthyThreshold  = 3
	DefaultBanDuration         = Duration(15 * time.Minute)
)

// Defaults fills every field that was left out with its default value. A
// field counts as left out when it is zero and, for a config read from a
// file, not written there: "max_body: 0" stays 0 (and Validate refuses it).
// data_dir is made absolute, relative to the config's directory. Defaults
// may be called more than once.
func Defaults(c *Config) {
	unset := func(path string, zero bool) bool {
		_, written := c.Positions[path]
		return zero && !written
	}
	s := &c.Server
	setIf(unset("server.https", s.HTTPS == ""), &s.HTTPS, DefaultHTTPS)
	setIf(unset("server.admin", s.Admin == ""), &s.Admin, DefaultAdmin)
	setIf(unset("server.data_dir", s.DataDir == ""), &s.DataDir, DefaultDataDir)
	if s.DataDir != "" {
		s.DataDir = c.Resolve(s.DataDir)
		if abs, err := filepath.Abs(s.DataDir); err == nil {
			s.DataDir = abs
		}
	}
	setIf(unset("server.shutdown_timeout", s.ShutdownTimeout == 0), &s.ShutdownTimeout, DefaultShutdownTimeout)

	l, lp := &s.Limits, "server.limits."
	setIf(unset(lp+"max_header_bytes", l.MaxHeaderBytes == 0), &l.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setIf(unset(lp+"max_uri_bytes", l.MaxURIBytes == 0), &l.MaxURIBytes, DefaultMaxURIBytes)
	setIf(unset(lp+"max_body", l.MaxBody == 0), &l.MaxBody, DefaultMaxBody)
	setIf(unset(lp+"read_header_timeout", l.ReadHeaderTimeout == 0), &l.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setIf(unset(lp+"read_timeout", l.ReadTimeout == 0), &l.ReadTimeout, DefaultReadTimeout)
	setIf(unset(lp+"idle_timeout", l.IdleTimeout == 0), &l.IdleTimeout, DefaultIdleTimeout)
	setIf(unset(lp+"max_connections", l.MaxConnections == 0), &l.MaxConnections, DefaultMaxConnections)
	setIf(unset(lp+"max_connections_per_ip", l.MaxConnectionsPerIP == 0), &l.MaxConnectionsPerIP, DefaultMaxConnectionsPerIP)
	setIf(unset(lp+"max_in_flight", l.MaxInFlight == 0), &l.MaxInFlight, DefaultMaxInFlight)

	setIf(unset("tls.min_version", c.TLS.MinVersion == ""), &c.TLS.MinVersion, DefaultMinTLSVersion)
	if c.TLS.HSTS.MaxAge == nil {
		v := DefaultHSTSMaxAge
		c.TLS.HSTS.MaxAge = &v
	}
	setIf(unset("store.on_unavailable", c.Store.OnUnavailable == ""), &c.Store.OnUnavailable, DefaultOnUnavailable)

	for name, a := range c.Authenticators {
		p := "authenticators." + name + "."
		switch a.Type {
		case "api_key":
			if a.Query == "" {
				setIf(unset(p+"header", a.Header == ""), &a.Header, DefaultAPIKeyHeader)
			}
		case "jwt":
			setIf(unset(p+"leeway", a.Leeway == 0), &a.Leeway, DefaultJWTLeeway)
			if a.Issuer == "self" && c.TokenEndpoint != nil && len(a.Audience) == 0 && !c.written(p+"audience") {
				a.Audience = Strings{c.TokenEndpoint.Issuer}
			}
		case "introspection":
			setIf(unset(p+"cache", a.Cache == 0), &a.Cache, DefaultIntrospectionCache)
		case "http_signature":
			setIf(unset(p+"max_age", a.MaxAge == 0), &a.MaxAge, DefaultSignatureMaxAge)
			if a.RequiredComponents == nil && !c.written(p+"required_components") {
				a.RequiredComponents = []string{"@method", "@target-uri"}
			}
		}
		c.Authenticators[name] = a
	}
	if t := c.TokenEndpoint; t != nil {
		p := "token_endpoint."
		setIf(unset(p+"algorithm", t.Algorithm == ""), &t.Algorithm, DefaultTokenAlgorithm)
		setIf(unset(p+"ttl", t.TTL == 0), &t.TTL, DefaultTokenTTL)
		setIf(unset(p+"rotate_every", t.RotateEvery == 0), &t.RotateEvery, DefaultTokenRotateEvery)
		if t.RateLimit == nil {
			r := DefaultTokenRateLimit()
			t.RateLimit = &r
		}
	}
	if b := c.Bans; b != nil {
		setIf(unset("bans.duration", b.Duration == 0), &b.Duration, DefaultBanDuration)
		if b.Key == nil && !c.written("bans.key") {
			b.Key = Strings{BanKeyIP} // the conservative default: a consumer ban locks out every client of it
		}
	}
	monitoringDefaults(c, c.Monitoring)
	for i := range c.Routes {
		routeDefaults(c, i, func(field string, zero bool) bool {
			return unset(fmt.Sprintf("routes[%d].%s", i, field), zero)
		})
	}
}

// DefaultTokenRateLimit is the default of token_endpoint.rate_limit.
func DefaultTokenRateLimit() Rate {
	return Rate{N: 10, Per: time.Second, Burst: 20, Text: "10/s burst 20"}
}

// written reports whether path was written in the config file.
func (c *Config) written(path string) bool {
	_, ok := c.Positions[path]
	return ok
}

func routeDefaults(c *Config, i int, unset func(field string, zero bool) bool) {
	r := &c.Routes[i]
	upstreamDefaults(&r.Upstream, func(field string, zero bool) bool { return unset("upstream."+field, zero) })
	if r.MaskUpstreamErrors == nil {
		v := true
		r.MaskUpstreamErrors = &v
	}
	if r.MaxBody == nil {
		v := c.Server.Limits.MaxBody
		r.MaxBody = &v
	}
	if r.Identity == nil {
		v := !r.Public()
		r.Identity = &v
	}
}

// UpstreamDefaults fills the zero fields of an upstream built in code (not
// read from a file) with their defaults — what Defaults does for the
// upstreams of a config. A written "max_fails: 0" (passive checks off)
// exists only in files, so here a zero MaxFails gets the default.
func UpstreamDefaults(u *Upstream) {
	upstreamDefaults(u, func(_ string, zero bool) bool { return zero })
}

func upstreamDefaults(u *Upstream, unset func(field string, zero bool) bool) {
	setIf(unset("timeout", u.Timeout == 0), &u.Timeout, DefaultUpstreamTimeout)
	if u.Retries == nil {
		v := DefaultRetries
		u.Retries = &v
	}
	setIf(unset("max_fails", u.MaxFails == 0), &u.MaxFails, DefaultMaxFails)
	setIf(unset("fail_timeout", u.FailTimeout == 0), &u.FailTimeout, DefaultFailTimeout)
	if h := u.HealthCheck; h != nil {
		setIf(unset("health_check.path", h.Path == ""), &h.Path, DefaultHealthPath)
		setIf(unset("health_check.interval", h.Interval == 0), &h.Interval, DefaultHealthInterval)
		setIf(unset("health_check.timeout", h.Timeout == 0), &h.Timeout, DefaultHealthTimeout)
		setIf(unset("health_check.healthy_threshold", h.HealthyThreshold == 0), &h.HealthyThreshold, DefaultHealthyThreshold)
		setIf(unset("health_check.unhealthy_threshold", h.UnhealthyThreshold == 0), &h.UnhealthyThreshold, DefaultUnhealthyThreshold)
	}
}

func setIf[T any](cond bool, dst *T, v T) {
	if cond {
		*dst = v
	}
}
