package testutil

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"testing"
	"time"
)

func TestPKIMutualTLS(t *testing.T) {
	pki := NewPKI(t)
	srvCert := pki.ServerCert("localhost", "127.0.0.1")
	cliCert := pki.ClientCert("acme-client", "acme.internal", "spiffe://example.org/acme")

	// Files round-trip.
	kp, err := tls.LoadX509KeyPair(srvCert.CertFile, srvCert.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(mustRead(t, pki.CAFile)) {
		t.Fatal("CA file")
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan *x509.Certificate, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		tc := tls.Server(c, &tls.Config{
			Certificates: []tls.Certificate{kp},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    pool,
		})
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			got <- nil
			return
		}
		got <- tc.ConnectionState().PeerCertificates[0]
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), pki.ClientConfig(cliCert))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peer := <-got
	if peer == nil || peer.Subject.CommonName != "acme-client" || len(peer.URIs) != 1 ||
		peer.URIs[0].String() != "spiffe://example.org/acme" || peer.DNSNames[0] != "acme.internal" {
		t.Fatalf("client certificate seen by the server: %+v", peer)
	}
}

func TestPKIIndependentCAs(t *testing.T) {
	a, b := NewPKI(t), NewPKI(t)
	cert := b.ServerCert("localhost")
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: a.Pool, DNSName: "localhost"}); err == nil {
		t.Fatal("a certificate of one PKI verifies against another")
	}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: b.Pool, DNSName: "localhost"}); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
