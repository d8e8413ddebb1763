// Package edge is the outer rim of the gateway: what happens between a TCP
// accept and the first middleware.
//
//   - ServerTLS builds the HTTPS listener's TLS configuration (TLS 1.2+ with
//     the Mozilla "intermediate" cipher profile, ALPN h2/http/1.1, optional
//     client certificates) and serves certificates that Reload swaps without
//     a restart. With tls.self_signed it keeps a local CA and a leaf under
//     data_dir/certs (CAFile says where the CA is, for curl --cacert).
//   - LimitListener caps open connections, globally and per client IP,
//     closing the excess at once instead of queueing it.
//   - ServerTimeouts applies the header/read/write/idle timeouts, the header
//     size limit and the HTTP/2 settings of config.Limits to an http.Server.
//   - RedirectHandler is all the plain-HTTP listener does: a 308 to HTTPS.
//   - HSTS renders the Strict-Transport-Security header value.
//
// The intended stack is: net.Listen → LimitListener → tls.NewListener(l,
// certs.Config()) → http.Server (ServerTimeouts) → middlewares.
package edge
