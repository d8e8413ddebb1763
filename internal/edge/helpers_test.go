package edge

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// tlsServer accepts TLS connections on a loopback port with cfg, completes
// their handshakes and sends each server-side state on the returned channel.
func tlsServer(t *testing.T, network, addr string, cfg *tls.Config) (string, <-chan tls.ConnectionState) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("listen %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	states := make(chan tls.ConnectionState, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := tls.Server(c, cfg)
				_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
				if tc.Handshake() != nil {
					return
				}
				select {
				case states <- tc.ConnectionState():
				default:
				}
				_, _ = io.Copy(io.Discard, tc)
			}()
		}
	}()
	return ln.Addr().String(), states
}

// handshake dials addr with cfg and returns the client's view.
func handshake(addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := tls.Dialer{Config: cfg}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState(), nil
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
