package pathcanon

import (
	"strings"
	"unicode/utf8"
)

// MaxLen is the longest escaped path, in bytes, that Canonical accepts, and
// the longest wire form it returns.
const MaxLen = 8192

// Canonical decodes and normalises escaped, the request path as received on
// the wire (r.URL.EscapedPath() or the path part of the RequestURI, without
// the query). It returns the canonical decoded path, used for matching, and
// wire, the same path escaped for the request sent upstream. On failure err
// is an *Error and both strings are empty. See the package documentation for
// the rules.
func Canonical(escaped string) (path, wire string, err error) {
	if escaped == "" || escaped[0] != '/' {
		return "", "", fail(ErrNotOrigin, 0)
	}
	if len(escaped) > MaxLen {
		return "", "", fail(ErrTooLong, MaxLen)
	}
	if isCanonical(escaped) {
		return escaped, escaped, nil
	}
	return canonicalSlow(escaped)
}

// isCanonical reports whether s (which starts with "/") is already in
// canonical form and needs no escaping: only wire-safe bytes, no empty
// segment other than a trailing one, and no segment made only of dots.
func isCanonical(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !wireSafe(c) {
			return false
		}
		if c != '/' || i+1 == len(s) {
			continue
		}
		switch s[i+1] {
		case '/':
			return false
		case '.':
			j := i + 2
			for j < len(s) && s[j] == '.' {
				j++
			}
			if j == len(s) || s[j] == '/' {
				return false
			}
		}
	}
	return true
}

// canonicalSlow is Canonical for paths that need decoding or normalising.
func canonicalSlow(s string) (string, string, error) {
	if err := prescan(s); err != nil {
		return "", "", err
	}
	// The decoded path is never longer than the input.
	var stack [256]byte
	buf := stack[:0]
	if len(s) > len(stack) {
		buf = make([]byte, 0, len(s))
	}
	trailing := false // the path ends with "/" (empty or dot last segment)
	for start := 1; ; {
		end := strings.IndexByte(s[start:], '/')
		last := end < 0
		if last {
			end = len(s)
		} else {
			end += start
		}
		seg := s[start:end]
		if i := strings.IndexByte(seg, ';'); i >= 0 {
			seg = seg[:i] // path parameters are not part of the path
		}
		var err *Error
		buf, trailing, err = appendSegment(buf, seg, start, last)
		if err != nil {
			return "", "", err
		}
		if last {
			break
		}
		start = end + 1
	}
	if trailing || len(buf) == 0 {
		buf = append(buf, '/')
	}
	path := string(buf)
	wire := escapeWire(path)
	if len(wire) > MaxLen {
		return "", "", fail(ErrTooLong, MaxLen)
	}
	return path, wire, nil
}

// prescan checks the raw input for bytes that are never allowed and for
// malformed percent-escapes, so that decoding can trust every "%".
func prescan(s string) *Error {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c == 0x7f:
			return fail(ErrControlChar, i)
		case c == '\\':
			return fail(ErrBackslash, i)
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return fail(ErrBadEscape, i)
			}
			i += 2
		}
	}
	return nil
}

// appendSegment decodes seg (the raw segment without its path parameters,
// starting at byte off of the input) and applies it to buf: appended as
// "/seg", dropped when empty or ".", or removing the last segment of buf
// when "..". It reports whether the path now ends with a slash.
func appendSegment(buf []byte, seg string, off int, last bool) ([]byte, bool, *Error) {
	if seg == "" {
		return buf, last, nil // "//" collapses; a trailing slash stays
	}
	mark := len(buf)
	buf = append(buf, '/')
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c == '%' {
			if i+2 >= len(seg) || !isHex(seg[i+1]) || !isHex(seg[i+2]) {
				return buf, false, fail(ErrBadEscape, off+i) // prescan makes this unreachable
			}
			c = unhex(seg[i+1])<<4 | unhex(seg[i+2])
			switch {
			case c == '/':
				return buf, false, fail(ErrEncodedSlash, off+i)
			case c == '\\':
				return buf, false, fail(ErrEncodedBackslash, off+i)
			case c < 0x20 || c == 0x7f:
				return buf, false, fail(ErrControlChar, off+i)
			}
			i += 2
		}
		buf = append(buf, c)
	}
	d := buf[mark+1:]
	switch dots(d) {
	case 1: // "."
		return buf[:mark], last, nil
	case 2: // ".."
		if mark == 0 {
			return buf, false, fail(ErrDotAboveRoot, off)
		}
		buf = buf[:mark]
		for len(buf) > 0 && buf[len(buf)-1] != '/' {
			buf = buf[:len(buf)-1]
		}
		return buf[:len(buf)-1], last, nil
	case 0:
	default: // "...", "...."
		return buf, false, fail(ErrAmbiguousDotSegment, off)
	}
	if err := checkDecoded(d, off); err != nil {
		return buf, false, err
	}
	return buf, false, nil
}

// dots returns len(d) when d is made only of dots, else 0.
func dots(d []byte) int {
	for _, c := range d {
		if c != '.' {
			return 0
		}
	}
	return len(d)
}

// checkDecoded checks one decoded, non-dot segment d: UTF-8 validity, C1
// controls, dot segments hidden behind an encoded ";", and double encoding.
func checkDecoded(d []byte, off int) *Error {
	pct := false
	for i := 0; i < len(d); {
		c := d[i]
		if c < utf8.RuneSelf {
			if c == '%' {
				pct = true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(d[i:])
		if r == utf8.RuneError && size == 1 {
			return fail(ErrInvalidUTF8, off)
		}
		if r <= 0x9f { // C1 control characters
			return fail(ErrControlChar, off)
		}
		i += size
	}
	// "..%3B" decodes to "..;", which a server that strips path parameters
	// after decoding reads as "..".
	for i, c := range d {
		if c == ';' {
			if dots(d[:i]) > 0 {
				return fail(ErrAmbiguousDotSegment, off)
			}
			break
		}
	}
	if pct && doubleEncoded(d) {
		return fail(ErrDoubleEncoding, off)
	}
	return nil
}

// doubleEncoded reports whether decoding d a second time would produce a
// byte that changes how the path is read: ".", "/", "\", "%", ";", a
// control character, or a byte only found in overlong or otherwise invalid
// UTF-8.
func doubleEncoded(d []byte) bool {
	prev, adjacent := byte(0), false
	for i := 0; i < len(d); i++ {
		if d[i] != '%' || i+2 >= len(d) || !isHex(d[i+1]) || !isHex(d[i+2]) {
			adjacent = false
			continue
		}
		b := unhex(d[i+1])<<4 | unhex(d[i+2])
		switch {
		case b == '.', b == '/', b == '\\', b == '%', b == ';',
			b < 0x20, b == 0x7f,
			b == 0xc0, b == 0xc1, b >= 0xf5:
			return true
		}
		if adjacent {
			switch {
			case prev == 0xe0 && b < 0xa0, // overlong 3-byte form
				prev == 0xf0 && b < 0x90,  // overlong 4-byte form
				prev == 0xed && b >= 0xa0: // surrogate
				return true
			}
		}
		prev, adjacent = b, true
		i += 2
	}
	return false
}
