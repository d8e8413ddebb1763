package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/secret"
)

func TestDefaults(t *testing.T) {
	dir := t.TempDir()
	src := validBase + "  - {name: r2, path: /x, upstream: {targets: [\"http://h\"], health_check: {}}, auth: none}\n"
	cfg, errs := parseIn(t, dir, src)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	l := cfg.Server.Limits
	r := cfg.Routes[0]
	hc := cfg.Routes[1].Upstream.HealthCheck
	checks := []struct {
		name      string
		got, want any
	}{
		{"https", cfg.Server.HTTPS, ":8443"},
		{"admin written as off", cfg.Server.Admin, "off"},
		{"data_dir", cfg.Server.DataDir, filepath.Join(dir, "data")},
		{"shutdown_timeout", cfg.Server.ShutdownTimeout.D(), 30 * time.Second},
		{"max_header_bytes", l.MaxHeaderBytes, Size(16 << 10)},
		{"max_uri_bytes", l.MaxURIBytes, Size(8 << 10)},
		{"max_body", l.MaxBody, Size(1 << 20)},
		{"read_header_timeout", l.ReadHeaderTimeout.D(), 5 * time.Second},
		{"read_timeout", l.ReadTimeout.D(), 30 * time.Second},
		{"write_timeout", l.WriteTimeout.D(), time.Duration(0)},
		{"idle_timeout", l.IdleTimeout.D(), 60 * time.Second},
		{"max_connections", l.MaxConnections, 10000},
		{"max_connections_per_ip", l.MaxConnectionsPerIP, 200},
		{"max_in_flight", l.MaxInFlight, 5000},
		{"min_version", cfg.TLS.MinVersion, "1.2"},
		{"hsts max_age", cfg.TLS.HSTS.MaxAge.D(), 365 * 24 * time.Hour},
		{"hsts include_subdomains as written", cfg.TLS.HSTS.IncludeSubdomains, false},
		{"on_unavailable", cfg.Store.OnUnavailable, "local"},
		{"api_key header", cfg.Authenticators["keys"].Header, "X-API-Key"},
		{"upstream timeout", r.Upstream.Timeout.D(), 30 * time.Second},
		{"retries", *r.Upstream.Retries, 1},
		{"max_fails", r.Upstream.MaxFails, 3},
		{"fail_timeout", r.Upstream.FailTimeout.D(), 10 * time.Second},
		{"no health check unless asked", r.Upstream.HealthCheck == nil, true},
		{"health path", hc.Path, "/"},
		{"health interval", hc.Interval.D(), 10 * time.Second},
		{"health timeout", hc.Timeout.D(), 2 * time.Second},
		{"healthy", hc.HealthyThreshold, 2},
		{"unhealthy", hc.UnhealthyThreshold, 3},
		{"mask_upstream_errors", *r.MaskUpstreamErrors, true},
		{"route max_body", *r.MaxBody, Size(1 << 20)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// A value written in the file is never replaced, even when zero.
	cfg.Server.Admin = ""
	Defaults(cfg)
	if cfg.Server.Admin != "" {
		t.Errorf("a written server.admin was replaced by the default %q", cfg.Server.Admin)
	}
}

func TestDefaultsKeepWrittenValues(t *testing.T) {
	src := strings.Replace(validBase, `server: {admin: "off"}`,
		`server: {admin: "off", data_dir: /var/lib/bw, limits: {max_body: 2MiB, write_timeout: 5s}}`, 1)
	src = strings.Replace(src, "tls: {self_signed: true}", "tls: {self_signed: true, hsts: {max_age: 0s, include_subdomains: true}}", 1)
	src = strings.Replace(src, "auth: keys", "auth: keys\n    max_body: 1KiB\n    mask_upstream_errors: false", 1)
	src = strings.Replace(src, `upstream: {targets: ["http://127.0.0.1:9000"]}`, `upstream: {targets: ["http://127.0.0.1:9000"], retries: 0, max_fails: 0}`, 1)
	src += "  - {name: r2, path: /x, upstream: {targets: [\"http://h\"]}, auth: none}\n"
	cfg, errs := parseIn(t, "", src)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"data_dir", cfg.Server.DataDir, "/var/lib/bw"},
		{"max_body", cfg.Server.Limits.MaxBody, Size(2 << 20)},
		{"write_timeout", cfg.Server.Limits.WriteTimeout.D(), 5 * time.Second},
		{"hsts off", cfg.TLS.HSTS.MaxAge.D(), time.Duration(0)},
		{"include_subdomains", cfg.TLS.HSTS.IncludeSubdomains, true},
		{"route max_body", *cfg.Routes[0].MaxBody, Size(1 << 10)},
		{"mask_upstream_errors", *cfg.Routes[0].MaskUpstreamErrors, false},
		{"retries 0", *cfg.Routes[0].Upstream.Retries, 0},
		{"max_fails 0 stays", cfg.Routes[0].Upstream.MaxFails, 0},
		{"route max_body follows server", *cfg.Routes[1].MaxBody, Size(2 << 20)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestDefaultsForConfigsBuiltInCode(t *testing.T) {
	c := &Config{
		Version:        1,
		Dir:            "/etc/bw",
		TLS:            TLS{SelfSigned: true},
		Admin:          Admin{TokenHash: mustDigest(t, hashA)},
		Authenticators: map[string]Authenticator{"q": {Type: "api_key", Query: "key"}},
		Routes:         []Route{{Name: "r", Path: "/", Upstream: Upstream{Targets: []string{"http://h"}}, Auth: Strings{"q"}}},
	}
	Defaults(c)
	Defaults(c) // idempotent
	if c.Server.DataDir != "/etc/bw/data" || c.Server.Admin != DefaultAdmin || c.Authenticators["q"].Header != "" {
		t.Errorf("got data_dir %q, admin %q, header %q", c.Server.DataDir, c.Server.Admin, c.Authenticators["q"].Header)
	}
	if errs := Validate(c); len(errs) > 0 {
		t.Errorf("Validate: %v", errs)
	}
	// Without positions, problems are placed at the start of the document.
	c.Routes[0].Auth = nil
	errs := Validate(c)
	if len(errs) != 1 || errs[0].String() != `<embedded>:1:1: routes[0].auth: required; list authenticators, or write "auth: none" for a public route` {
		t.Errorf("got %v", errs)
	}
}

func mustDigest(t *testing.T, s string) secret.Digest {
	t.Helper()
	d, err := secret.ParseDigest(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestBanDefaults(t *testing.T) {
	cfg, errs := parseIn(t, "", validBase+"bans: {auth_failures: 10/m}\n")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	b := cfg.Bans
	if b.Duration != DefaultBanDuration || b.Duration.D() != 15*time.Minute || len(b.Key) != 1 || b.Key[0] != "ip" || b.ClientErrors != nil {
		t.Fatalf("bans defaults: %+v", b)
	}
	if b.AuthFailures == nil || b.AuthFailures.N != 10 || b.AuthFailures.Per != time.Minute {
		t.Fatalf("auth_failures: %+v", b.AuthFailures)
	}
	cfg, errs = parseIn(t, "", validBase)
	if len(errs) > 0 || cfg.Bans != nil {
		t.Fatalf("bans must stay off unless written: %+v %v", cfg.Bans, errs)
	}
	cfg, errs = parseIn(t, "", validBase+"bans: {client_errors: 10/m, duration: 1h, key: [consumer, ip]}\n")
	if len(errs) > 0 || cfg.Bans.Duration.D() != time.Hour || strings.Join(cfg.Bans.Key, ",") != "consumer,ip" {
		t.Fatalf("written values kept: %+v %v", cfg.Bans, errs)
	}
}
