package edge

import (
	"github.com/breakwater/breakwater/internal/hostname"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/breakwater/breakwater/internal/problem"
)

// acmeChallengePrefix is reserved for ACME HTTP-01 challenges.
const acmeChallengePrefix = "/.well-known/acme-challenge/"

// RedirectHandler is the whole behaviour of the plain-HTTP listener: every
// request gets a 308 Permanent Redirect to the same host, path and query
// over HTTPS; nothing is ever proxied. httpsAddr is the HTTPS listener's
// address (server.https): its port is added to the Location unless it is 443.
//
// Every method is redirected with 308, which tells the client to repeat the
// same method and body over HTTPS (a 301/302 could turn a POST into a GET).
// A Host that is not a valid hostname or IP literal with an optional numeric
// port gets a 400 instead, so the Location can never point elsewhere or
// carry injected bytes. Paths under /.well-known/acme-challenge/ answer 404
// until ACME is supported.
func RedirectHandler(httpsAddr string) http.Handler {
	return redirect{port: httpsPort(httpsAddr)}
}

// httpsPort returns ":PORT" for the Location, or "" for 443 (or an address
// without a usable port, which net.Listen would have refused anyway).
func httpsPort(addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	n, err := net.LookupPort("tcp", p) // a number, or a service name such as "https"
	if err != nil || n == 443 || n == 0 {
		return ""
	}
	return ":" + strconv.Itoa(n)
}

type redirect struct {
	port string // ":8443", or "" for 443
}

func (h redirect) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, acmeChallengePrefix) {
		problem.Write(w, r, http.StatusNotFound)
		return
	}
	host, ok := redirectHost(r.Host)
	if !ok {
		problem.Write(w, r, http.StatusBadRequest)
		return
	}
	path := r.URL.EscapedPath()
	if !strings.HasPrefix(path, "/") { // "*", CONNECT's empty path
		path = "/"
	}
	var b strings.Builder
	b.Grow(len("https://") + len(host) + len(h.port) + len(path) + 1 + len(r.URL.RawQuery))
	b.WriteString("https://")
	b.WriteString(host)
	b.WriteString(h.port)
	b.WriteString(path)
	if r.URL.RawQuery != "" {
		b.WriteByte('?')
		writeQuery(&b, r.URL.RawQuery)
	}
	w.Header().Set("Location", b.String())
	w.WriteHeader(http.StatusPermanentRedirect)
}

// redirectHost returns the host part of a Host header, normalised for a
// Location (lower case, IPv6 in brackets), and whether it is acceptable:
// a DNS hostname, an IPv4 address or a bracketed IPv6 address (no zone),
// optionally followed by ":" and a port number.
func redirectHost(hostport string) (string, bool) {
	host, port := hostport, ""
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return "", false
		}
		host, port = hostport[1:end], hostport[end+1:]
		if port != "" && port[0] != ':' {
			return "", false
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is6() || ip.Zone() != "" || !validPort(strings.TrimPrefix(port, ":")) {
			return "", false
		}
		return "[" + ip.String() + "]", true
	}
	if i := strings.IndexByte(hostport, ':'); i >= 0 {
		host, port = hostport[:i], hostport[i+1:]
		if !validPort(port) {
			return "", false
		}
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is4() {
		return ip.String(), true
	}
	host = strings.ToLower(host)
	if !hostname.Valid(strings.TrimSuffix(host, ".")) {
		return "", false
	}
	return host, true
}

// validPort accepts "" (no port) or a decimal port number.
func validPort(p string) bool {
	if p == "" {
		return true
	}
	if len(p) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
		n = n*10 + int(p[i]-'0')
	}
	return n <= 65535
}

// writeQuery copies a raw query, percent-encoding every byte that may not
// appear in a URI query (RFC 3986 §3.4): controls, spaces, quotes, non-ASCII.
func writeQuery(b *strings.Builder, q string) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(q); i++ {
		c := q[i]
		if queryByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
}

func queryByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@/?%", c) >= 0
}
