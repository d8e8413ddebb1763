package ratelimit

import "strconv"

// AppendKey appends a store key made of parts to dst and returns the
// extended buffer. Each part is written as its length in decimal, a colon
// and its bytes (a netstring without the comma), so the encoding is
// prefix-free: two different lists of parts never give the same key,
// whatever bytes the parts contain (NUL, ':' or digits included). For
// example the parts ("route:ip", "a:b", "1.2.3.4") give
// "8:route:ip3:a:b7:1.2.3.4" and ("route:ip", "a", "b1.2.3.4") give
// "8:route:ip1:a8:b1.2.3.4".
//
// By convention the first part is the limit's scope and name, then the
// parts that identify who is limited, such as the route name and the client
// IP or the consumer id: AppendKey(buf, "route:ip", route, ip). It does not
// allocate when dst has room.
func AppendKey(dst []byte, parts ...string) []byte {
	for _, p := range parts {
		dst = strconv.AppendInt(dst, int64(len(p)), 10)
		dst = append(dst, ':')
		dst = append(dst, p...)
	}
	return dst
}

// Key returns AppendKey(nil, parts...) as a string, with one allocation.
func Key(parts ...string) string {
	n := 0
	for _, p := range parts {
		n += len(p) + 4
	}
	var buf [128]byte
	b := buf[:0]
	if n > len(buf) {
		b = make([]byte, 0, n+8)
	}
	return string(AppendKey(b, parts...))
}
