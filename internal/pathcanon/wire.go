package pathcanon

import "strings"

// escapeWire escapes every byte of p that is not wire-safe.
func escapeWire(p string) string {
	n := 0
	for i := 0; i < len(p); i++ {
		if !wireSafe(p[i]) {
			n++
		}
	}
	if n == 0 {
		return p
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(p) + 2*n)
	for i := 0; i < len(p); i++ {
		c := p[i]
		if wireSafe(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// Bit sets of the wire-safe ASCII bytes: unreserved, "/", ":", "@" and the
// sub-delims except ";".
const (
	safeLo = 1<<'!' | 1<<'$' | 1<<'&' | 1<<'\'' | 1<<'(' | 1<<')' | 1<<'*' |
		1<<'+' | 1<<',' | 1<<'-' | 1<<'.' | 1<<'/' | (1<<10-1)<<'0' | 1<<':' | 1<<'='
	safeHi = 1<<('@'-64) | (1<<26-1)<<('A'-64) | 1<<('_'-64) |
		(1<<26-1)<<('a'-64) | 1<<('~'-64)
)

// wireSafe reports whether c may appear unescaped in the wire form.
func wireSafe(c byte) bool {
	if c < 64 {
		return uint64(safeLo)>>c&1 != 0
	}
	if c < 128 {
		return uint64(safeHi)>>(c-64)&1 != 0
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}
