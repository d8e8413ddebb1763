package proxy

import (
	"net/http"
	"net/http/httputil"
	"strings"

	"github.com/breakwater/breakwater/internal/reqctx"
)

// rewrite is the ReverseProxy's Rewrite hook. By the time it runs the
// ReverseProxy has removed the hop-by-hop headers, the headers the client's
// Connection header names, Forwarded and the three X-Forwarded-* headers
// from pr.Out; what is set here is therefore never removed by the client.
func (u *Upstream) rewrite(pr *httputil.ProxyRequest) {
	x := exchangeOf(pr.Out.Context())
	// pr.Out.URL is a copy of the client's URL whose query the
	// ReverseProxy has already cleaned of unparsable parameters.
	x.target.setURL(pr.Out.URL, x.path, x.rawPath, pr.Out.URL.RawQuery)
	pr.Out.Host = "" // the Host header is the target's
	requestHeaders(pr.Out.Header, pr.In, x.st)
}

// requestHeaders removes from h every header a client could use to pass as
// the gateway, then sets the gateway's own: X-Request-Id, X-Forwarded-For,
// -Proto and -Host, X-Consumer-Id and -Scopes for an authenticated
// consumer, and X-Gateway-Identity when the gateway vouches for it. in is
// the client's request (unchanged).
func requestHeaders(h http.Header, in *http.Request, st *reqctx.State) {
	for k := range h {
		if isGatewayHeader(k) {
			delete(h, k)
		}
	}

	peer := st.PeerText
	xff, proto, host := peer, "https", in.Host
	if st.PeerTrusted {
		// A trusted proxy speaks for the client: keep its chain and add
		// the proxy itself.
		if prior := in.Header["X-Forwarded-For"]; len(prior) > 0 {
			xff = strings.Join(prior, ", ")
			if peer != "" {
				xff += ", " + peer
			}
		}
		if p := forwardedProto(in.Header.Get("X-Forwarded-Proto")); p != "" {
			proto = p
		}
		if fh := in.Header.Get("X-Forwarded-Host"); fh != "" {
			host = fh
		}
	}

	hv := headerValues{h: h, v: make([]string, 0, 7)}
	if st.RequestID != "" {
		hv.set("X-Request-Id", st.RequestID)
	}
	if xff != "" {
		hv.set("X-Forwarded-For", xff)
	}
	hv.set("X-Forwarded-Proto", proto)
	if host != "" {
		hv.set("X-Forwarded-Host", host)
	}
	if c := st.Consumer; c != nil {
		hv.set("X-Consumer-Id", c.ID)
		hv.set("X-Consumer-Scopes", c.ScopeText)
	}
	if st.Identity != "" {
		hv.set("X-Gateway-Identity", st.Identity)
	}
}

// headerValues sets single-valued headers from one backing array (one
// allocation for all of them). Each header gets a one-element slice with
// its capacity capped, so an append by anyone else copies rather than
// overwriting the neighbour.
type headerValues struct {
	h http.Header
	v []string
}

func (hv *headerValues) set(key, value string) {
	if len(hv.v) == cap(hv.v) {
		hv.h[key] = []string{value}
		return
	}
	hv.v = append(hv.v, value)
	n := len(hv.v)
	hv.h[key] = hv.v[n-1 : n : n]
}

// forwardedProto returns the first element of a trusted X-Forwarded-Proto
// value when it is http or https, else "".
func forwardedProto(v string) string {
	if i := strings.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	v = strings.TrimSpace(v)
	switch {
	case strings.EqualFold(v, "https"):
		return "https"
	case strings.EqualFold(v, "http"):
		return "http"
	}
	return ""
}

// isGatewayHeader reports whether a client-supplied header named name must
// not reach the upstream: it is one the gateway sets or one an upstream
// could trust as a statement about the client, the request's method or its
// path. Names compare case-insensitively with '_' equal to '-', because
// many servers (CGI, WSGI, PHP, nginx with underscores_in_headers) fold
// X-Consumer_Id into the same variable as X-Consumer-Id.
//
// Removed: X-Forwarded and X-Forwarded-* (any), X-Consumer-* (any),
// Forwarded, X-Request-Id, X-Real-Ip, X-Client-Ip, True-Client-Ip,
// X-Gateway-Identity, X-Original-Url, X-Rewrite-Url, X-Http-Method-Override,
// X-Http-Method, X-Method-Override.
func isGatewayHeader(name string) bool {
	if len(name) < len("forwarded") {
		return false
	}
	var buf [32]byte
	n := copy(buf[:], name)
	for i := range n {
		switch c := buf[i]; {
		case 'A' <= c && c <= 'Z':
			buf[i] = c + 'a' - 'A'
		case c == '_':
			buf[i] = '-'
		}
	}
	s := buf[:n]
	if hasPrefix(s, "x-forwarded") || hasPrefix(s, "x-consumer-") {
		return true
	}
	if len(name) > len(buf) {
		return false
	}
	switch string(s) {
	case "forwarded", "x-request-id", "x-real-ip", "x-client-ip", "true-client-ip",
		"x-gateway-identity", "x-original-url", "x-rewrite-url",
		"x-http-method-override", "x-http-method", "x-method-override":
		return true
	}
	return false
}

func hasPrefix(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == prefix
}

// Response headers.

// responseHeaders applies the gateway's response header policy to an
// upstream response h: headers that say what runs behind the gateway are
// dropped, HSTS is the gateway's policy alone, an authenticated response
// gets Cache-Control: no-store unless the upstream chose a policy, and every
// header the gateway already set on the client's ResponseWriter (X-Request-Id,
// nosniff, HSTS, RateLimit, …) wins over the upstream's — the ReverseProxy
// adds upstream headers to those already there, so both would be sent.
func (u *Upstream) responseHeaders(w http.ResponseWriter, h http.Header, st *reqctx.State) {
	delete(h, "Server")
	delete(h, "X-Powered-By")
	delete(h, "X-Aspnet-Version")
	delete(h, "X-Aspnetmvc-Version")
	delete(h, "X-Runtime")
	delete(h, "X-Debug-Token")
	delete(h, "X-Debug-Token-Link")
	delete(h, "Strict-Transport-Security")
	for k := range w.Header() {
		delete(h, k)
	}
	if u.ownCORS {
		for k := range h {
			if strings.HasPrefix(k, "Access-Control-") {
				delete(h, k)
			}
		}
	}
	if st.Consumer != nil && len(h["Cache-Control"]) == 0 {
		h["Cache-Control"] = u.noStore
	}
}

// modifyResponse is the ReverseProxy's ModifyResponse hook: it runs once
// the response headers are in, before anything is sent to the client.
func (u *Upstream) modifyResponse(res *http.Response) error {
	x := exchangeOf(res.Request.Context())
	if x == nil {
		return errNoExchange
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		// The connection now belongs to the upgraded protocol: left as
		// the upstream sent it, and without a timeout.
		x.unbounded()
		return nil
	}
	u.responseHeaders(x.w, res.Header, x.st)
	u.rewriteLocations(res.Header, res.Request.Header.Get("X-Forwarded-Host"))
	if u.filter != nil && !(u.mask && res.StatusCode >= 500) {
		if err := u.filter(res); err != nil {
			return err
		}
	}
	switch {
	case u.mask && res.StatusCode >= 500:
		u.maskBody(res, x.st)
		x.unbounded()
	case isEventStream(res.Header.Get("Content-Type")):
		x.unbounded()
	default:
		x.streamBody(res)
	}
	return nil
}

// isEventStream reports whether a Content-Type is text/event-stream.
func isEventStream(ct string) bool {
	const es = "text/event-stream"
	ct = strings.TrimLeft(ct, " \t")
	if len(ct) < len(es) || !strings.EqualFold(ct[:len(es)], es) {
		return false
	}
	rest := ct[len(es):]
	return rest == "" || rest[0] == ';' || rest[0] == ' ' || rest[0] == '\t'
}
