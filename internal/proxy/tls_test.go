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
			_, err := New(tc.u, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	u, err := New(config.Upstream{Targets: []string{"https://h"}, HealthCheck: &config.HealthCheck{}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if u.timeout != defaultTimeout || u.retries != defaultRetries ||
		u.bal.maxFails != defaultMaxFails || u.bal.failTimeout != defaultFailTimeout {
		t.Errorf("defaults: timeout %v retries %d max_fails %d fail_timeout %v",
			u.timeout, u.retries, u.bal.maxFails, u.bal.failTimeout)
	}
	c := u.check
	if c.path != "/" || c.interval != defaultCheckInterval || c.timeout != defaultCheckTimeout ||
		c.rise != defaultHealthyThreshold || c.fall != defaultUnhealthyThreshold {
		t.Errorf("health check defaults: %+v", *c)
	}
	tr := u.transport
	if tr.Proxy != nil || !tr.ForceAttemptHTTP2 || tr.MaxIdleConnsPerHost != 256 ||
		tr.ResponseHeaderTimeout != defaultTimeout || tr.TLSClientConfig.MinVersion != tls.VersionTLS12 ||
		!tr.DisableCompression {
		t.Errorf("transport: %+v", tr)
	}
	if u.bal.targets[0].addr != "h:443" {
		t.Errorf("addr %q", u.bal.targets[0].addr)
	}
}
