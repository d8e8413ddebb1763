package inventory

import "strconv"

// Bounds of a path template.
const (
	maxSegments = 16 // more segments become one {rest}
	maxSegment  = 64 // a longer segment is an identifier
	// maxTemplate bounds the length of a template: maxSegments segments of
	// at most maxSegment bytes, their slashes and a "/{rest}".
	maxTemplate = maxSegments*(maxSegment+1) + len("/{rest}")
)

// Template returns a guess of the route template of a canonical path: the
// segments that look like identifiers — numbers, UUIDs, hex strings with a
// digit, long mixed tokens, anything longer than 64 bytes or with a byte
// outside letters, digits and "-._~:" — become {id}, {id2}, {id3}... A path
// of more than 16 segments keeps the first 16 and ends in /{rest}. The
// result is at most maxTemplate bytes, starts with "/" and is safe to print.
func Template(path string) string {
	var buf [maxTemplate]byte
	return string(AppendTemplate(buf[:0], path))
}

// AppendTemplate appends Template(path) to dst.
func AppendTemplate(dst []byte, path string) []byte {
	ids := 0
	segs := 0
	rest := path
	if len(rest) > 0 && rest[0] == '/' {
		rest = rest[1:]
	}
	for {
		seg := rest
		i := indexSlash(rest)
		if i >= 0 {
			seg, rest = rest[:i], rest[i+1:]
		}
		if segs == maxSegments {
			dst = append(dst, "/{rest}"...)
			return dst
		}
		segs++
		dst = append(dst, '/')
		if identifier(seg) {
			ids++
			dst = append(dst, "{id"...)
			if ids > 1 {
				dst = strconv.AppendInt(dst, int64(ids), 10)
			}
			dst = append(dst, '}')
		} else {
			dst = append(dst, seg...)
		}
		if i < 0 {
			return dst
		}
	}
}

func indexSlash(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return i
		}
	}
	return -1
}

// identifier reports whether a path segment looks like a value rather than
// a name.
func identifier(seg string) bool {
	if seg == "" {
		return false
	}
	if len(seg) > maxSegment {
		return true
	}
	digits, letters, hex := 0, 0, true
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F':
			letters++
		case c >= 'g' && c <= 'z' || c >= 'G' && c <= 'Z':
			letters++
			hex = false
		case c == '-' || c == '.' || c == '_' || c == '~' || c == ':':
			hex = false
		default:
			return true // not a plain name: an email, an encoded value, ...
		}
	}
	switch {
	case digits == len(seg):
		return true // 42
	case isUUID(seg):
		return true
	case hex && digits > 0 && len(seg) >= 8:
		return true // 5f1d3c0a, an object id, a digest
	case len(seg) >= 16 && digits > 0 && letters > 0:
		return true // a random token or base62 id
	}
	return false
}

// isUUID reports whether s is 8-4-4-4-12 hex digits.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
