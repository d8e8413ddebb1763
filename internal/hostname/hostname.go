// Package hostname checks host names taken from requests (Host headers,
// Origin headers): one definition of what the edge and CORS accept.
package hostname

import "strings"

// Labels reports whether s is at most 253 bytes of dot-separated labels of
// 1 to 63 letters, digits, '-' or '_' ("_" is tolerated: some internal
// names use it). Dotted IPv4 addresses pass too.
func Labels(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
			if label++; label > 63 {
				return false
			}
		default:
			return false
		}
	}
	return label > 0
}

// Valid reports whether s is a DNS host name: Labels, and a last label that
// is not numeric (browsers read "1.2.3" or "0x7f.1" as an IPv4 address).
func Valid(s string) bool {
	if !Labels(s) {
		return false
	}
	last := s[strings.LastIndexByte(s, '.')+1:]
	if strings.HasPrefix(last, "0x") || strings.HasPrefix(last, "0X") {
		return false
	}
	return strings.ContainsFunc(last, func(r rune) bool { return r < '0' || r > '9' })
}
