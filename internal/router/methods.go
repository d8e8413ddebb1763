package router

import (
	"slices"
	"strconv"
	"strings"
)

// maxMethods is the number of distinct methods a Router can tell apart in
// an Allow header (one bit each).
const maxMethods = 64

// maxTableMethods is the largest number of distinct methods for which New
// precomputes the Allow value of every set of them (2^n strings).
const maxTableMethods = 10

// maxMethodLen is the longest method name New accepts.
const maxMethodLen = 32

// normMethods upper-cases, checks and de-duplicates a route's methods. It
// returns nil for an empty list: every method but TRACE and CONNECT.
func normMethods(ms []string) ([]string, string) {
	if len(ms) == 0 {
		return nil, ""
	}
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		m = strings.ToUpper(m)
		if m == "*" {
			return nil, `"*" is not a method; leave methods empty to accept every method`
		}
		if !isToken(m) {
			return nil, "invalid method " + quote(m) + ": a method is a token such as GET, of at most " + strconv.Itoa(maxMethodLen) + " characters"
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out, ""
}

// isToken reports whether s is an RFC 9110 token.
func isToken(s string) bool {
	if s == "" || len(s) > maxMethodLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// methodRank orders methods in an Allow header: the common ones first, in
// a conventional order, then the others alphabetically.
func methodRank(m string) int {
	switch m {
	case "GET":
		return 0
	case "HEAD":
		return 1
	case "POST":
		return 2
	case "PUT":
		return 3
	case "PATCH":
		return 4
	case "DELETE":
		return 5
	case "OPTIONS":
		return 6
	case "CONNECT":
		return 7
	case "TRACE":
		return 8
	}
	return 9
}

func compareMethods(a, b string) int {
	if ra, rb := methodRank(a), methodRank(b); ra != rb {
		return ra - rb
	}
	return strings.Compare(a, b)
}

// allowValue renders a method mask as an Allow header value.
func allowValue(names []string, mask uint64) string {
	n := 0
	for i, m := range names {
		if mask&(1<<i) != 0 {
			n += len(m) + 2
		}
	}
	if n == 0 {
		return ""
	}
	var b strings.Builder
	b.Grow(n - 2)
	for i, m := range names {
		if mask&(1<<i) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(m)
	}
	return b.String()
}
