package router

import "strings"

// hostKind says how a route's host is matched.
type hostKind uint8

const (
	anyHost      hostKind = iota // no host: every request
	exactHost                    // "api.example.com"
	wildcardHost                 // "*.example.com", stored as "example.com"
)

// maxHost is the longest request host Match looks up (a DNS name has at most
// 253 bytes; a bracketed IPv6 literal with a zone fits as well).
const maxHost = 255

// parseHost validates a Spec host and returns its kind and lookup key.
func parseHost(h string) (hostKind, string, string) {
	if h == "" {
		return anyHost, "", ""
	}
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if h == "*" {
		return 0, "", `"*" is not a host; leave host empty to match every host`
	}
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		if msg := checkHostName(rest); msg != "" {
			return 0, "", msg
		}
		return wildcardHost, rest, ""
	}
	if strings.HasPrefix(h, "[") {
		if len(h) > maxHost || !strings.HasSuffix(h, "]") || len(h) < 4 || strings.Trim(h[1:len(h)-1], "0123456789abcdef:.") != "" {
			return 0, "", "invalid IPv6 literal " + quote(h) + `; write it as "[2001:db8::1]", without a port`
		}
		return exactHost, h, ""
	}
	if msg := checkHostName(h); msg != "" {
		return 0, "", msg
	}
	return exactHost, h, ""
}

// checkHostName checks a lower-cased DNS name or IPv4 address.
func checkHostName(h string) string {
	if h == "" || len(h) > 253 {
		return "invalid host name " + quote(h)
	}
	if strings.Contains(h, ":") {
		return "host " + quote(h) + " has a port or is an unbracketed IPv6 address; routes match the host without its port"
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return "invalid host name " + quote(h) + ": empty or over-long label"
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
			case c == '*':
				return "invalid host " + quote(h) + `: a wildcard must be the whole first label, "*.example.com"`
			case c >= 0x80:
				return "host " + quote(h) + " is not ASCII; write internationalised names in their xn-- form"
			default:
				return "invalid character in host name " + quote(h)
			}
		}
	}
	return ""
}

// requestHost lower-cases the request host into buf and removes its port
// and one trailing dot. It returns nil when the host cannot match any route
// host. It does not allocate.
func requestHost(host string, buf *[maxHost]byte) []byte {
	if host == "" || len(host) > maxHost+6 { // room for ":65535"
		return nil
	}
	if host[0] == '[' {
		i := strings.IndexByte(host, ']')
		if i < 0 {
			return nil
		}
		host = host[:i+1]
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	if host == "" || len(host) > maxHost {
		return nil
	}
	b := buf[:len(host)]
	for i := 0; i < len(host); i++ {
		c := host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return b
}
