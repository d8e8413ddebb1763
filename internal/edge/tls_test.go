package edge

import (
	"crypto/tls"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/testutil"
)

func newCerts(t *testing.T, c config.TLS) *Certs {
	t.Helper()
	certs, err := ServerTLS(c, nil, t.TempDir())
	if err != nil {
		t.Fatalf("ServerTLS: %v", err)
	}
	return certs
}

var (
	cbcSuites = []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
	}
	rsaKexSuites = []uint16{
		tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA,
	}
)

func TestTLSProtocolPolicy(t *testing.T) {
	pki := testutil.NewPKI(t)
	ecCert := pki.ServerCert("localhost", "127.0.0.1")
	rsaCert := pki.Issue(testutil.CertOptions{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, RSA: true})

	type side struct {
		name string
		cert *testutil.Cert
	}
	for _, s := range []side{{"ecdsa", ecCert}, {"rsa", rsaCert}} {
		t.Run(s.name, func(t *testing.T) {
			certs := newCerts(t, config.TLS{CertFile: s.cert.CertFile, KeyFile: s.cert.KeyFile})
			addr, _ := tlsServer(t, "tcp", "127.0.0.1:0", certs.Config())
			// A permissive server with the same certificate: what a client
			// gets without Breakwater's policy. It proves each refusal below
			// comes from the policy, not from the client's setup.
			loose := &tls.Config{
				Certificates: []tls.Certificate{s.cert.TLS},
				MinVersion:   tls.VersionTLS10,
				CipherSuites: append(append([]uint16{}, cbcSuites...), rsaKexSuites...),
			}
			looseAddr, _ := tlsServer(t, "tcp", "127.0.0.1:0", loose)

			client := func(minV, maxV uint16, suites ...uint16) *tls.Config {
				c := pki.ClientConfig(nil)
				c.MinVersion, c.MaxVersion, c.CipherSuites = minV, maxV, suites
				return c
			}
			tests := []struct {
				name   string
				client *tls.Config
				accept bool
			}{
				{"TLS 1.0", client(tls.VersionTLS10, tls.VersionTLS10, cbcSuites...), false},
				{"TLS 1.1", client(tls.VersionTLS11, tls.VersionTLS11, cbcSuites...), false},
				{"TLS 1.2 CBC only", client(tls.VersionTLS12, tls.VersionTLS12, cbcSuites...), false},
				{"TLS 1.2 RSA key exchange only", client(tls.VersionTLS12, tls.VersionTLS12, rsaKexSuites...), false},
				{"TLS 1.2 ECDHE AES-GCM", client(tls.VersionTLS12, tls.VersionTLS12,
					tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
					true},
				{"TLS 1.2 ECDHE ChaCha20", client(tls.VersionTLS12, tls.VersionTLS12,
					tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256),
					true},
				{"TLS 1.3", client(tls.VersionTLS13, tls.VersionTLS13), true},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					st, err := handshake(addr, tt.client)
					if tt.accept {
						if err != nil {
							t.Fatalf("refused: %v", err)
						}
						if st.Version != tt.client.MaxVersion {
							t.Errorf("version %s, want %s", tls.VersionName(st.Version), tls.VersionName(tt.client.MaxVersion))
						}
						if st.Version == tls.VersionTLS12 && !isPolicySuite(st.CipherSuite) {
							t.Errorf("negotiated %s", tls.CipherSuiteName(st.CipherSuite))
						}
						return
					}
					if err == nil {
						t.Fatalf("accepted with %s %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
					}
					if _, err := handshake(looseAddr, tt.client); err != nil && !(s.name == "ecdsa" && tt.name == "TLS 1.2 RSA key exchange only") {
						t.Fatalf("control: a permissive server refused this client too: %v", err)
					}
				})
			}
		})
	}
}

func isPolicySuite(id uint16) bool {
	for _, s := range CipherSuites() {
		if s == id {
			return true
		}
	}
	return false
}

func TestCipherSuitesAreECDHEAndAEAD(t *testing.T) {
	for _, id := range CipherSuites() {
		name := tls.CipherSuiteName(id)
		if !strings.HasPrefix(name, "TLS_ECDHE_") || !(strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20_POLY1305")) {
			t.Errorf("%s is not ECDHE with AEAD", name)
		}
		for _, in := range tls.InsecureCipherSuites() {
			if in.ID == id {
				t.Errorf("%s is insecure", name)
			}
		}
	}
}

func TestTLSMinVersion13(t *testing.T) {
	pki := testutil.NewPKI(t)
	cert := pki.ServerCert("127.0.0.1")
	certs := newCerts(t, config.TLS{CertFile: cert.CertFile, KeyFile: cert.KeyFile, MinVersion: "1.3"})
	addr, _ := tlsServer(t, "tcp", "127.0.0.1:0", certs.Config())

	c12 := pki.ClientConfig(nil)
	c12.MaxVersion = tls.VersionTLS12
	if st, err := handshake(addr, c12); err == nil {
		t.Fatalf("TLS 1.2 accepted with min_version 1.3 (%s)", tls.VersionName(st.Version))
	}
	st, err := handshake(addr, pki.ClientConfig(nil))
	if err != nil {
		t.Fatalf("TLS 1.3 refused: %v", err)
	}
	if st.Version != tls.VersionTLS13 {
		t.Errorf("version %s", tls.VersionName(st.Version))
	}
}

func TestTLSKeyExchange(t *testing.T) {
	pki := testutil.NewPKI(t)
	cert := pki.ServerCert("127.0.0.1")
	certs := newCerts(t, config.TLS{CertFile: cert.CertFile, KeyFile: cert.KeyFile})
	addr, _ := tlsServer(t, "tcp", "127.0.0.1:0", certs.Config())

	// A Go 1.26 client offers the post-quantum hybrid first: it is chosen.
	st, err := handshake(addr, pki.ClientConfig(nil))
	if err != nil {
		t.Fatal(err)
	}
	if st.CurveID != tls.X25519MLKEM768 {
		t.Errorf("key exchange %v, want X25519MLKEM768", st.CurveID)
	}
	for _, curve := range []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384} {
		c := pki.ClientConfig(nil)
		c.CurvePreferences = []tls.CurveID{curve}
		if st, err := handshake(addr, c); err != nil || st.CurveID != curve {
			t.Errorf("%v: %v (got %v)", curve, err, st.CurveID)
		}
	}
	c := pki.ClientConfig(nil)
	c.CurvePreferences = []tls.CurveID{tls.CurveP521}
	if _, err := handshake(addr, c); err == nil {
		t.Error("P-521 accepted; not in the intermediate profile")
	}
}

func TestALPN(t *testing.T) {
	pki := testutil.NewPKI(t)
	cert := pki.ServerCert("localhost", "127.0.0.1")
	certs := newCerts(t, config.TLS{CertFile: cert.CertFile, KeyFile: cert.KeyFile})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	limited := LimitListener(ln, 10, 10, nil)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	})}
	ServerTimeouts(srv, config.Limits{})
	go func() { _ = srv.Serve(tls.NewListener(limited, certs.Config())) }()
	t.Cleanup(func() { srv.Close() })

	get := func(tr *http.Transport) (*http.Response, string) {
		t.Helper()
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + ln.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	resp, body := get(&http.Transport{TLSClientConfig: pki.ClientConfig(nil), ForceAttemptHTTP2: true})
	if resp.ProtoMajor != 2 || body != "HTTP/2.0" || resp.TLS.NegotiatedProtocol != "h2" {
		t.Errorf("HTTP/2 client: proto %s, server saw %q", resp.Proto, body)
	}
	h1 := pki.ClientConfig(nil)
	h1.NextProtos = []string{"http/1.1"}
	resp, body = get(&http.Transport{TLSClientConfig: h1})
	if resp.ProtoMajor != 1 || body != "HTTP/1.1" {
		t.Errorf("HTTP/1.1 client: proto %s, server saw %q", resp.Proto, body)
	}
	waitFor(t, func() bool { return limited.Open() == 0 }, "connections released after the clients closed them")
}

func TestReload(t *testing.T) {
	pki := testutil.NewPKI(t)
	a, b := pki.ServerCert("127.0.0.1"), pki.ServerCert("127.0.0.1")
	dir := t.TempDir()
	copyFile(t, a.CertFile, filepath.Join(dir, "gw.pem"))
	copyFile(t, a.KeyFile, filepath.Join(dir, "gw-key.pem"))
	resolve := func(p string) string { return filepath.Join(dir, p) }

	certs, err := ServerTLS(config.TLS{CertFile: "gw.pem", KeyFile: "gw-key.pem"}, resolve, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := tlsServer(t, "tcp", "127.0.0.1:0", certs.Config())
	served := func() string {
		t.Helper()
		st, err := handshake(addr, pki.ClientConfig(nil))
		if err != nil {
			t.Fatal(err)
		}
		return st.PeerCertificates[0].SerialNumber.String()
	}
	if got := served(); got != a.Leaf.SerialNumber.String() {
		t.Fatalf("serving %s, want A", got)
	}

	copyFile(t, b.CertFile, filepath.Join(dir, "gw.pem"))
	copyFile(t, b.KeyFile, filepath.Join(dir, "gw-key.pem"))
	if err := certs.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := served(); got != b.Leaf.SerialNumber.String() {
		t.Fatalf("after reload serving %s, want B", got)
	}
	if certs.Leaf().SerialNumber.Cmp(b.Leaf.SerialNumber) != 0 {
		t.Error("Leaf() is not the served certificate")
	}

	// A bad pair (A's certificate with B's key) keeps B in service.
	copyFile(t, a.CertFile, filepath.Join(dir, "gw.pem"))
	err = certs.Reload()
	if err == nil || !strings.HasPrefix(err.Error(), "tls.key_file: ") {
		t.Fatalf("mismatched pair: err = %v", err)
	}
	if got := served(); got != b.Leaf.SerialNumber.String() {
		t.Fatalf("after failed reload serving %s, want B", got)
	}
}

// With client_ca_file the listener asks for a certificate and passes any
// it gets to the mtls authenticator, which verifies it: an untrusted one is
// a failed credential (a uniform 401), not a broken connection.
func TestClientCA(t *testing.T) {
	pki, other := testutil.NewPKI(t), testutil.NewPKI(t)
	cert := pki.ServerCert("127.0.0.1")
	certs := newCerts(t, config.TLS{CertFile: cert.CertFile, KeyFile: cert.KeyFile, ClientCAFile: pki.CAFile})
	if certs.Config().ClientAuth != tls.RequestClientCert || certs.Config().ClientCAs == nil {
		t.Fatalf("ClientAuth = %v", certs.Config().ClientAuth)
	}
	addr, states := tlsServer(t, "tcp", "127.0.0.1:0", certs.Config())

	if _, err := handshake(addr, pki.ClientConfig(nil)); err != nil {
		t.Fatalf("no client certificate: %v", err)
	}
	if st := <-states; len(st.PeerCertificates) != 0 {
		t.Error("peer certificates without a client certificate")
	}
	for _, cn := range []string{"acme-client", "intruder"} {
		issuer := pki
		if cn == "intruder" {
			issuer = other
		}
		if _, err := handshake(addr, pki.ClientConfig(issuer.ClientCert(cn))); err != nil {
			t.Fatalf("%s: %v", cn, err)
		}
		st := <-states
		if len(st.PeerCertificates) == 0 || st.PeerCertificates[0].Subject.CommonName != cn {
			t.Errorf("%s: certificate not passed on: %+v", cn, st.PeerCertificates)
		}
		if len(st.VerifiedChains) != 0 {
			t.Errorf("%s: verified at the handshake; the authenticator must decide", cn)
		}
	}
}

func TestServerTLSErrors(t *testing.T) {
	pki := testutil.NewPKI(t)
	good := pki.ServerCert("127.0.0.1")
	expired := pki.Issue(testutil.CertOptions{
		DNSNames:  []string{"localhost"},
		NotBefore: time.Now().Add(-48 * time.Hour),
		NotAfter:  time.Now().Add(-24 * time.Hour),
	})
	missing := filepath.Join(t.TempDir(), "nope.pem")

	tests := []struct {
		name     string
		c        config.TLS
		want     string // prefix of the error
		contains string
		notExist bool
	}{
		{"nothing", config.TLS{}, "tls: no certificate configured", "self_signed", false},
		{"cert only", config.TLS{CertFile: good.CertFile}, "tls.key_file: required", "", false},
		{"key only", config.TLS{KeyFile: good.KeyFile}, "tls.cert_file: required", "", false},
		{"old version", config.TLS{CertFile: good.CertFile, KeyFile: good.KeyFile, MinVersion: "1.1"}, "tls.min_version: ", `"1.2" or "1.3"`, false},
		{"acme", config.TLS{ACME: &config.ACME{}}, "tls.acme: ", "", false},
		{"both", config.TLS{SelfSigned: true, CertFile: good.CertFile, KeyFile: good.KeyFile}, "tls.self_signed: ", "", false},
		{"missing cert", config.TLS{CertFile: missing, KeyFile: good.KeyFile}, "tls.cert_file: open ", "no such file", true},
		{"missing key", config.TLS{CertFile: good.CertFile, KeyFile: missing}, "tls.key_file: open ", "", true},
		{"key as cert", config.TLS{CertFile: good.KeyFile, KeyFile: good.KeyFile}, "tls.cert_file: ", "no PEM", false},
		{"cert as key", config.TLS{CertFile: good.CertFile, KeyFile: good.CertFile}, "tls.key_file: ", "private key", false},
		{"expired", config.TLS{CertFile: expired.CertFile, KeyFile: expired.KeyFile}, "tls.cert_file: ", "expired", false},
		{"missing client CA", config.TLS{CertFile: good.CertFile, KeyFile: good.KeyFile, ClientCAFile: missing}, "tls.client_ca_file: open ", "", true},
		{"client CA not PEM", config.TLS{CertFile: good.CertFile, KeyFile: good.KeyFile, ClientCAFile: good.KeyFile}, "tls.client_ca_file: ", "no PEM", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ServerTLS(tt.c, nil, t.TempDir())
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q, want prefix %q containing %q", err, tt.want, tt.contains)
			}
			if tt.notExist != errors.Is(err, fs.ErrNotExist) {
				t.Errorf("errors.Is(err, fs.ErrNotExist) = %v", !tt.notExist)
			}
		})
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
