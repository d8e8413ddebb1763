//go:build ignore

// stdproxy is the floor that Breakwater is built on, measured alone: the Go
// standard library's TLS server and httputil.ReverseProxy in front of the
// same upstream, with an X-API-Key check (SHA-256 digest, constant-time
// compare) and nothing else. bench/run.sh measures it with GO_BASELINE=1 to
// tell what Breakwater adds from what net/http and crypto/tls cost.
//
//	go run bench/stdproxy.go -listen 127.0.0.1:PORT -upstream http://127.0.0.1:PORT \
//	    -cert server.pem -key server.key -key-digest sha256:HEX
package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"flag"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// bufferPool keeps ReverseProxy from allocating a 32 KiB copy buffer per
// response (Breakwater pools its buffers too).
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address of the TLS listener")
	upstream := flag.String("upstream", "", "upstream URL")
	certFile := flag.String("cert", "", "PEM certificate")
	keyFile := flag.String("key", "", "PEM private key")
	digest := flag.String("key-digest", "", "sha256:HEX of the accepted X-API-Key (empty: no check)")
	flag.Parse()

	target, err := url.Parse(*upstream)
	if err != nil || target.Host == "" {
		log.Fatalf("-upstream: want http://HOST:PORT, got %q", *upstream)
	}
	var want []byte
	if *digest != "" {
		want, err = hex.DecodeString(strings.TrimPrefix(*digest, "sha256:"))
		if err != nil || len(want) != sha256.Size {
			log.Fatalf("-key-digest: want sha256:<64 hex digits>")
		}
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatal(err)
	}

	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.SetXForwarded()
		},
		BufferPool: &bufferPool{},
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
	handler := http.Handler(proxy)
	if want != nil {
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got := sha256.Sum256([]byte(r.Header.Get("X-API-Key")))
			if subtle.ConstantTimeCompare(got[:], want) != 1 {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			r.Header.Del("X-API-Key")
			proxy.ServeHTTP(w, r)
		})
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
	}
	log.Fatal(srv.ServeTLS(ln, "", ""))
}
