package edge

import (
	"net/http"

	"github.com/breakwater/breakwater/internal/config"
)

// HTTP/2 settings of the HTTPS listener.
const (
	// h2MaxConcurrentStreams bounds the requests one connection may have in
	// flight (Go's default is 100 at least; 250 matches common proxies).
	h2MaxConcurrentStreams = 250
	// h2HeaderTableSize is the HPACK dynamic table size, the RFC 7541
	// default: enough for real clients, little memory per connection.
	h2HeaderTableSize = 4096
)

// ServerTimeouts applies l to srv: the header, read, write and idle
// timeouts, the header size limit, HTTP/1.1 plus HTTP/2 (over TLS only),
// and the HTTP/2 settings.
//
// Zero or negative limits take config's defaults (so a server built from a
// partial config is never left without a timeout), except WriteTimeout,
// whose zero means none (responses are bounded by the upstream timeouts).
// HTTP/2's SETTINGS_MAX_HEADER_LIST_SIZE is derived by net/http from
// MaxHeaderBytes, so one limit covers both protocols. An HTTP/2 peer that
// accepts no bytes for IdleTimeout is disconnected. srv.HTTP2.CountError
// may be set afterwards to count HTTP/2 protocol errors.
func ServerTimeouts(srv *http.Server, l config.Limits) {
	srv.ReadHeaderTimeout = orDefault(l.ReadHeaderTimeout, config.DefaultReadHeaderTimeout).D()
	srv.ReadTimeout = orDefault(l.ReadTimeout, config.DefaultReadTimeout).D()
	srv.WriteTimeout = max(l.WriteTimeout.D(), 0)
	srv.IdleTimeout = orDefault(l.IdleTimeout, config.DefaultIdleTimeout).D()
	srv.MaxHeaderBytes = int(orDefault(l.MaxHeaderBytes, config.DefaultMaxHeaderBytes))

	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	srv.Protocols = &p
	srv.HTTP2 = &http.HTTP2Config{
		MaxConcurrentStreams:      h2MaxConcurrentStreams,
		MaxDecoderHeaderTableSize: h2HeaderTableSize,
		MaxEncoderHeaderTableSize: h2HeaderTableSize,
		// MaxReadFrameSize and the receive windows keep Go's defaults
		// (16KiB frames, 1MiB per connection and per stream).
		WriteByteTimeout: srv.IdleTimeout,
	}
}

func orDefault[T config.Duration | config.Size](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}
