package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"time"

	"github.com/breakwater/breakwater/internal/config"
)

// Transport limits.
const (
	dialTimeout         = 5 * time.Second
	dialKeepAlive       = 30 * time.Second
	tlsHandshakeTimeout = 5 * time.Second
	idleConnTimeout     = 90 * time.Second
	maxIdleConnsPerHost = 256
	maxResponseHeader   = 1 << 20
)

// newTransport builds the one pooled transport of an upstream. It never
// uses a proxy from the environment (HTTP_PROXY and kin): where upstream
// traffic goes is decided by the config alone.
func newTransport(targets []*target, tc *config.UpstreamTLS, timeout time.Duration,
	resolve func(string) string, log *slog.Logger) (*http.Transport, error) {
	https := false
	for _, t := range targets {
		https = https || t.scheme == "https"
	}
	tlsConf, err := clientTLS(tc, resolve, log)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: dialKeepAlive}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		TLSClientConfig:        tlsConf,
		TLSHandshakeTimeout:    tlsHandshakeTimeout,
		ForceAttemptHTTP2:      https,
		MaxIdleConnsPerHost:    maxIdleConnsPerHost,
		IdleConnTimeout:        idleConnTimeout,
		ResponseHeaderTimeout:  timeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: maxResponseHeader,
		// A proxy passes Accept-Encoding and Content-Encoding through; it
		// neither asks for gzip on the client's behalf nor decompresses.
		DisableCompression: true,
	}, nil
}

// clientTLS is the TLS config for https targets: TLS 1.2 or later, the
// system roots or ca_file, an optional client certificate (mTLS to the
// upstream) and server name.
func clientTLS(tc *config.UpstreamTLS, resolve func(string) string, log *slog.Logger) (*tls.Config, error) {
	c := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ClientSessionCache: tls.NewLRUClientSessionCache(64),
	}
	if tc == nil {
		return c, nil
	}
	c.ServerName = tc.ServerName
	if tc.CAFile != "" {
		pem, err := os.ReadFile(resolve(tc.CAFile))
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: %s holds no PEM certificate", tc.CAFile)
		}
		c.RootCAs = pool
	}
	switch {
	case tc.CertFile != "" && tc.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(resolve(tc.CertFile), resolve(tc.KeyFile))
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file, tls.key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	case tc.CertFile != "":
		return nil, errors.New("tls.cert_file: tls.key_file is required with it")
	case tc.KeyFile != "":
		return nil, errors.New("tls.key_file: tls.cert_file is required with it")
	}
	if tc.InsecureSkipVerify {
		c.InsecureSkipVerify = true
		log.Warn("proxy: upstream TLS certificates are not verified (tls.insecure_skip_verify): " +
			"anyone on the path to the upstream can read and change its traffic")
	}
	return c, nil
}

// retrier is the ReverseProxy's transport. It sends each attempt to a
// target, records passive health and retries what is safe to retry:
//
//   - only GET, HEAD and OPTIONS without a body;
//   - only after a connection-level failure before any response (refused,
//     reset, unreachable, closed, TLS handshake failure) — never after a
//     timeout waiting for the response, never after a response of any status;
//   - up to Retries times, each on a target not tried yet when one is up;
//   - not for a request sent by the fallback pick (every target was down).
//
// (http.Transport itself already retries a request that fails on a reused
// idle connection before anything was written.)
type retrier struct{ u *Upstream }

func (rt *retrier) RoundTrip(req *http.Request) (*http.Response, error) {
	u := rt.u
	x := exchangeOf(req.Context())
	if x == nil {
		return nil, errNoExchange
	}
	attempts := 1
	if !x.single && isRetryableRequest(req) {
		attempts += u.retries
	}
	var triedBuf [4]*target
	tried := triedBuf[:0]
	t := x.target
	for attempt := 1; ; attempt++ {
		x.st.Upstream = t.addr
		res, err := u.transport.RoundTrip(req)
		x.st.UpstreamDuration = time.Since(x.start)
		if err == nil {
			u.bal.succeeded(t)
			return res, nil
		}
		if !x.targetFault(err) {
			return nil, err
		}
		now := u.now().UnixNano()
		if u.bal.failed(t, now) {
			u.log.LogAttrs(x, slog.LevelWarn, "proxy: upstream target ejected",
				slog.String("target", t.raw),
				slog.Int("consecutive_failures", int(u.bal.maxFails)),
				slog.Duration("for", u.bal.failTimeout),
				slog.String("last_error", err.Error()))
		}
		if attempt >= attempts || x.Err() != nil || !isRetryableError(err) {
			return nil, err
		}
		tried = append(tried, t)
		next := u.bal.pick(now, tried)
		if next == nil {
			next = u.bal.pick(now, nil) // no other target: the same one again
		}
		if next == nil {
			return nil, err
		}
		u.log.LogAttrs(x, slog.LevelDebug, "proxy: retrying on another target",
			slog.String("request_id", x.st.RequestID),
			slog.String("failed", t.raw), slog.String("next", next.raw),
			slog.String("error", err.Error()))
		t = next
		req = x.retarget(req, t)
	}
}

// retarget returns a shallow copy of req sent to t. Headers are shared: no
// one modifies them once the request is built.
func (x *exchange) retarget(req *http.Request, t *target) *http.Request {
	r2 := new(http.Request)
	*r2 = *req
	r2.URL = new(url.URL)
	t.setURL(r2.URL, x.path, x.rawPath, req.URL.RawQuery)
	return r2
}

// targetFault reports whether err (from a round trip) says something about
// the target, rather than about the client or its request body.
func (x *exchange) targetFault(err error) bool {
	if x.clientGone() {
		return false
	}
	var mbe *http.MaxBytesError
	return !errors.As(err, &mbe)
}

func isRetryableRequest(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		return false
	}
	return (req.Body == nil || req.Body == http.NoBody) && req.ContentLength == 0
}

// isRetryableError reports whether err is a connection-level failure that
// happened before any response: safe to retry for an idempotent request.
func isRetryableError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true // refused, unreachable, dial timeout: nothing was sent
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false // the upstream may be working on it
	}
	var cve *tls.CertificateVerificationError
	var rhe tls.RecordHeaderError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.As(err, &cve), errors.As(err, &rhe):
		return true
	}
	return op != nil
}
