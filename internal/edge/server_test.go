package edge

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/testutil"
)

func TestServerTimeoutsSettings(t *testing.T) {
	var srv http.Server
	ServerTimeouts(&srv, config.Limits{
		MaxHeaderBytes:    8 << 10,
		ReadHeaderTimeout: config.Duration(2 * time.Second),
		ReadTimeout:       config.Duration(20 * time.Second),
		WriteTimeout:      config.Duration(40 * time.Second),
		IdleTimeout:       config.Duration(90 * time.Second),
	})
	if srv.ReadHeaderTimeout != 2*time.Second || srv.ReadTimeout != 20*time.Second ||
		srv.WriteTimeout != 40*time.Second || srv.IdleTimeout != 90*time.Second || srv.MaxHeaderBytes != 8<<10 {
		t.Errorf("limits not applied: %v %v %v %v %d", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
	}
	if srv.HTTP2 == nil || srv.HTTP2.MaxConcurrentStreams != 250 || srv.HTTP2.MaxDecoderHeaderTableSize != 4096 {
		t.Errorf("HTTP2 = %+v", srv.HTTP2)
	}
	if p := srv.Protocols; p == nil || !p.HTTP1() || !p.HTTP2() || p.UnencryptedHTTP2() {
		t.Errorf("Protocols = %v", srv.Protocols)
	}

	var def http.Server
	ServerTimeouts(&def, config.Limits{})
	if def.ReadHeaderTimeout != config.DefaultReadHeaderTimeout.D() || def.ReadTimeout != config.DefaultReadTimeout.D() ||
		def.WriteTimeout != 0 || def.IdleTimeout != config.DefaultIdleTimeout.D() || def.MaxHeaderBytes != int(config.DefaultMaxHeaderBytes) {
		t.Errorf("defaults not applied: %v %v %v %v %d", def.ReadHeaderTimeout, def.ReadTimeout, def.WriteTimeout, def.IdleTimeout, def.MaxHeaderBytes)
	}
}

// TestSlowloris: a client that trickles its request header is cut off once
// read_header_timeout has passed, however steadily it sends.
func TestSlowloris(t *testing.T) {
	for _, overTLS := range []bool{false, true} {
		name := "http"
		if overTLS {
			name = "https"
		}
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			l := net.Listener(LimitListener(ln, 10, 10, nil))
			var pki *testutil.PKI
			if overTLS {
				pki = testutil.NewPKI(t)
				cert := pki.ServerCert("127.0.0.1")
				certs := newCerts(t, config.TLS{CertFile: cert.CertFile, KeyFile: cert.KeyFile})
				l = tls.NewListener(l, certs.Config())
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
				t.Error("handler reached by a request whose header never ended")
			})}
			ServerTimeouts(srv, config.Limits{ReadHeaderTimeout: config.Duration(200 * time.Millisecond)})
			go func() { _ = srv.Serve(l) }()
			defer srv.Close()

			var c net.Conn
			if overTLS {
				c, err = tls.Dial("tcp", ln.Addr().String(), pki.ClientConfig(nil))
			} else {
				c, err = net.Dial("tcp", ln.Addr().String())
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()

			closed := make(chan time.Duration, 1)
			start := time.Now()
			go func() {
				_, _ = io.Copy(io.Discard, bufio.NewReader(c)) // returns when the server closes
				closed <- time.Since(start)
			}()
			header := []byte("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			deadline := time.After(5 * time.Second)
			for i := 0; ; i++ {
				select {
				case d := <-closed:
					t.Logf("closed after %v", d)
					if d > 3*time.Second {
						t.Errorf("closed after %v", d)
					}
					return
				case <-tick.C:
					b := byte('a')
					if i < len(header) {
						b = header[i]
					}
					// A failed write means the server has gone: the reader
					// reports when.
					_, _ = c.Write([]byte{b})
				case <-deadline:
					t.Fatal("server still reading a trickled header after 5s")
				}
			}
		})
	}
}
