package pathcanon

import (
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzCanonical checks the invariants of Canonical on any input. Seeds are in
// testdata/fuzz/FuzzCanonical and run with every `go test`.
func FuzzCanonical(f *testing.F) {
	for _, tc := range attackTable {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		path, wire, err := Canonical(in)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("Canonical(%q): error %T is not an *Error", in, err)
			}
			if path != "" || wire != "" {
				t.Fatalf("Canonical(%q) returned %q, %q with an error", in, path, wire)
			}
			return
		}
		checkInvariants(t, in, path, wire)
		if in != "" && in[0] == '/' && isCanonical(in) && (path != in || wire != in) {
			t.Fatalf("fast path changed %q", in)
		}
	})
}

// checkInvariants checks what holds for every successful result.
func checkInvariants(t *testing.T, in, path, wire string) {
	t.Helper()
	if !strings.HasPrefix(path, "/") || !strings.HasPrefix(wire, "/") {
		t.Fatalf("Canonical(%q) = %q, %q: does not start with /", in, path, wire)
	}
	if strings.Contains(path, "//") || strings.HasPrefix(wire, "//") {
		t.Fatalf("Canonical(%q) = %q, %q: contains //", in, path, wire)
	}
	for _, seg := range strings.Split(path[1:], "/") {
		if seg == "." || seg == ".." {
			t.Fatalf("Canonical(%q) = %q: dot segment", in, path)
		}
	}
	if !utf8.ValidString(path) {
		t.Fatalf("Canonical(%q) = %q: invalid UTF-8", in, path)
	}
	for _, r := range path {
		if unicode.IsControl(r) {
			t.Fatalf("Canonical(%q) = %q: control character %U", in, path, r)
		}
	}
	if strings.ContainsAny(path, "\\") || strings.ContainsAny(wire, "\\;") {
		t.Fatalf("Canonical(%q) = %q, %q: backslash or raw ;", in, path, wire)
	}
	if len(wire) > MaxLen {
		t.Fatalf("Canonical(%q): wire form is %d bytes", in, len(wire))
	}
	for i := 0; i < len(wire); i++ {
		c := wire[i]
		if c == '%' {
			if i+2 >= len(wire) || !strings.ContainsRune("0123456789ABCDEF", rune(wire[i+1])) ||
				!strings.ContainsRune("0123456789ABCDEF", rune(wire[i+2])) {
				t.Fatalf("Canonical(%q): wire %q has a malformed or lower-case escape", in, wire)
			}
			continue
		}
		if !wireSafe(c) {
			t.Fatalf("Canonical(%q): wire %q has unescaped byte %q", in, wire, c)
		}
	}
	if dec, err := url.PathUnescape(wire); err != nil || dec != path {
		t.Fatalf("Canonical(%q): PathUnescape(%q) = %q, %v; want %q", in, wire, dec, err, path)
	}
	p2, w2, err := Canonical(wire)
	if err != nil || p2 != path || w2 != wire {
		t.Fatalf("Canonical(%q) = %q, %q; Canonical(wire) = %q, %q, %v: not idempotent", in, path, wire, p2, w2, err)
	}
}
