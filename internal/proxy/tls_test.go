package proxy

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/testutil"
)

// mtlsServer is an HTTPS upstream (HTTP/2 enabled) that requires a client
// certificate from pki and answers with the client's common name and the
// protocol.
func mtlsServer(t *testing.T, pki *testutil.PKI, serverName string) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.TLS.PeerCertificates[0].Subject.CommonName, r.Proto)
	}))
	s.TLS = &tls.Config{
		Certificates: []tls.Certificate{pki.ServerCert(serverName).TLS},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pki.Pool,
		MinVersion:   tls.VersionTLS12,
	}
	s.EnableHTTP2 = true
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are expected
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func TestUpstreamMTLS(t *testing.T) {
	pki := testutil.NewPKI(t)
	up := mtlsServer(t, pki, "upstream.test") // not valid for 127.0.0.1: needs server_name
	client := pki.ClientCert("breakwater-gw")
	other := testutil.NewPKI(t)

	// Config paths are relative to the config directory; Resolve finds them.
	dir := filepath.Dir(pki.CAFile)
	rel := func(p string) string {
		r, err := filepath.Rel(dir, p)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	resolve := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}

	cases := []struct {
		name     string
		tls      *config.UpstreamTLS
		wantCode int
	}{
		{
			name:     "verified, client certificate, HTTP/2",
			tls:      &config.UpstreamTLS{CAFile: rel(pki.CAFile), ServerName: "upstream.test", CertFile: rel(client.CertFile), KeyFile: rel(client.KeyFile)},
			wantCode: 200,
		},
		{
			name:     "no client certificate",
			tls:      &config.UpstreamTLS{CAFile: rel(pki.CAFile), ServerName: "upstream.test"},
			wantCode: http.StatusBadGateway,
		},
		{
			name:     "wrong server name",
			tls:      &config.UpstreamTLS{CAFile: rel(pki.CAFile), ServerName: "other.test", CertFile: rel(client.CertFile), KeyFile: rel(client.KeyFile)},
			wantCode: http.StatusBadGateway,
		},
		{
			name:     "system roots do not know the upstream's CA",
			tls:      &config.UpstreamTLS{ServerName: "upstream.test", CertFile: rel(client.CertFile), KeyFile: rel(client.KeyFile)},
			wantCode: http.StatusBadGateway,
		},
		{
			name:     "another CA",
			tls:      &config.UpstreamTLS{CAFile: other.CAFile, ServerName: "upstream.test", CertFile: rel(client.CertFile), KeyFile: rel(client.KeyFile)},
			wantCode: http.StatusBadGateway,
		},
		{
			name:     "insecure_skip_verify",
			tls:      &config.UpstreamTLS{InsecureSkipVerify: true, CertFile: rel(client.CertFile), KeyFile: rel(client.KeyFile)},
			wantCode: 200,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			log, logs := newLogger()
			u := newUpstream(t, config.Upstream{Targets: []string{up.URL}, TLS: tc.tls, Retries: ptr(0)},
				Options{Resolve: resolve, Logger: log, MaskUpstreamErrors: true})
			w, _ := get(u, "/x")
			if w.Code != tc.wantCode {
				t.Fatalf("status %d, want %d (body %q)", w.Code, tc.wantCode, w.Body.String())
			}
			if tc.wantCode == 200 && w.Body.String() != "breakwater-gw HTTP/2.0" {
				t.Errorf("upstream saw %q", w.Body.String())
			}
			if tc.wantCode != 200 {
				wantProblem(t, w, tc.wantCode)
			}
			warned := strings.Contains(logs.String(), "insecure_skip_verify")
			if warned != tc.tls.InsecureSkipVerify {
				t.Errorf("insecure_skip_verify warning logged: %v", warned)
			}
		})
	}
}

func TestUpstreamTLSMinVersion(t *testing.T) {
	pki := testutil.NewPKI(t)
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	s.TLS = &tls.Config{
		Certificates: []tls.Certificate{pki.ServerCert("127.0.0.1").TLS},
		MinVersion:   tls.VersionTLS10,
		MaxVersion:   tls.VersionTLS11,
	}
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.StartTLS()
	t.Cleanup(s.Close)
	u := newUpstream(t, config.Upstream{Targets: []string{s.URL}, TLS: &config.UpstreamTLS{CAFile: pki.CAFile}}, Options{})
	w, _ := get(u, "/x")
	wantProblem(t, w, http.StatusBadGateway)
}

func TestNewRejectsBadConfig(t *testing.T) {
	pki := testutil.NewPKI(t)
	cert := pki.ClientCert("gw")
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		u    config.Upstream
		want string // in the error
	}{
		{"no targets", config.Upstream{}, "targets"},
		{"not http", config.Upstream{Targets: []string{"ftp://h"}}, "targets[0]"},
		{"no host", config.Upstream{Targets: []string{"http://"}}, "no host"},
		{"relative", config.Upstream{Targets: []string{"127.0.0.1:80"}}, "targets[0]"},
		{"user info", config.Upstream{Targets: []string{"http://u:p@h"}}, "credentials"},
		{"query", config.Upstream{Targets: []string{"http://h/?a=b"}}, "query"},
		{"fragment", config.Upstream{Targets: []string{"http://h/#f"}}, "fragment"},
		{"duplicate", config.Upstream{Targets: []string{"http://h:80", "http://h"}}, "twice"},
		{"negative retries", config.Upstream{Targets: []string{"http://h"}, Retries: ptr(-1)}, "retries"},
		{"health path", config.Upstream{Targets: []string{"http://h"}, HealthCheck: &config.HealthCheck{Path: "health"}}, "health_check.path"},
		{"ca_file missing", config.Upstream{Targets: []string{"https://h"}, TLS: &config.UpstreamTLS{CAFile: "/nonexistent/ca.pem"}}, "tls.ca_file"},
		{"ca_file not PEM", config.Upstream{Targets: []string{"https://h"}, TLS: &config.UpstreamTLS{CAFile: notPEM}}, "ca_file"},
		{"cert without key", config.Upstream{Targets: []string{"https://h"}, TLS: &config.UpstreamTLS{CertFile: cert.CertFile}}, "key_file"},
		{"key without cert", config.Upstream{Targets: []string{"https://h"}, TLS: &config.UpstreamTLS{KeyFile: cert.KeyFile}}, "cert_file"},
		{"cert and key mismatch", config.Upstream{Targets: []string{"https://h"}, TLS: &config.UpstreamTLS{CertFile: cert.CertFile, KeyFile: pki.ClientCert("x").KeyFile}}, "cert_file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			config.UpstreamDefaults(&tc.u)
			_, err := New(tc.u, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// New takes the upstream as given: defaults come from config (Defaults for
// files, UpstreamDefaults for code), and max_fails: 0 turns passive checks off.
func TestNewTakesValuesAsGiven(t *testing.T) {
	c := config.Upstream{Targets: []string{"https://h"}, HealthCheck: &config.HealthCheck{}}
	config.UpstreamDefaults(&c)
	u, err := New(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if u.timeout != config.DefaultUpstreamTimeout.D() || u.retries != config.DefaultRetries ||
		u.bal.maxFails != config.DefaultMaxFails || u.bal.failTimeout != config.DefaultFailTimeout.D() {
		t.Errorf("timeout %v retries %d max_fails %d fail_timeout %v",
			u.timeout, u.retries, u.bal.maxFails, u.bal.failTimeout)
	}
	ch := u.check
	if ch.path != config.DefaultHealthPath || ch.interval != config.DefaultHealthInterval.D() || ch.timeout != config.DefaultHealthTimeout.D() ||
		ch.rise != config.DefaultHealthyThreshold || ch.fall != config.DefaultUnhealthyThreshold {
		t.Errorf("health check: %+v", *ch)
	}
	tr := u.transport
	if tr.Proxy != nil || !tr.ForceAttemptHTTP2 || tr.MaxIdleConnsPerHost != 256 ||
		tr.ResponseHeaderTimeout != config.DefaultUpstreamTimeout.D() || tr.TLSClientConfig.MinVersion != tls.VersionTLS12 ||
		!tr.DisableCompression {
		t.Errorf("transport: %+v", tr)
	}
	if u.bal.targets[0].addr != "h:443" {
		t.Errorf("addr %q", u.bal.targets[0].addr)
	}

	c.MaxFails = 0
	u2, err := New(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer u2.Close()
	for range 10 {
		if u2.bal.failed(u2.bal.targets[0], 1) {
			t.Fatal("max_fails: 0 must never eject a target")
		}
	}
	if _, err := New(config.Upstream{Targets: []string{"https://h"}}, Options{}); err == nil {
		t.Error("an upstream without a timeout must be refused")
	}
}
