package pathcanon

import (
	"errors"
	"strings"
	"testing"
)

type row struct {
	in   string
	path string // expected path; ignored when err is set
	wire string // expected wire form; "" means the same as path
	err  *Error // expected kind of error
}

// attackTable is shared by TestCanonical and the fuzz seeds.
var attackTable = []row{
	// Already canonical (fast path).
	{in: "/", path: "/"},
	{in: "/v1/orders/123", path: "/v1/orders/123"},
	{in: "/v1/orders/", path: "/v1/orders/"},
	{in: "/a-b_c.d~e/f:g@h", path: "/a-b_c.d~e/f:g@h"},
	{in: "/!$&'()*+,=", path: "/!$&'()*+,="},
	{in: "/.well-known/jwks.json", path: "/.well-known/jwks.json"},
	{in: "/a/.b/..c/c..", path: "/a/.b/..c/c.."},
	{in: "/a./b../", path: "/a./b../"},

	// Duplicate slashes and trailing slash.
	{in: "//", path: "/"},
	{in: "///", path: "/"},
	{in: "//a", path: "/a"},
	{in: "//evil.example/x", path: "/evil.example/x"},
	{in: "/a//b", path: "/a/b"},
	{in: "/a///b//", path: "/a/b/"},
	{in: "/a/b/", path: "/a/b/"},

	// Dot segments, raw.
	{in: "/.", path: "/"},
	{in: "/./", path: "/"},
	{in: "/a/.", path: "/a/"},
	{in: "/a/./b", path: "/a/b"},
	{in: "/a/b/..", path: "/a/"},
	{in: "/a/b/../", path: "/a/"},
	{in: "/a/b/../c", path: "/a/c"},
	{in: "/a/..", path: "/"},
	{in: "/a/../", path: "/"},
	{in: "/a/b/../../c", path: "/c"},
	{in: "/a/./../b/./c/.", path: "/b/c/"},
	{in: "/a//..", path: "/"},
	{in: "/..", err: ErrDotAboveRoot},
	{in: "/../", err: ErrDotAboveRoot},
	{in: "/../admin", err: ErrDotAboveRoot},
	{in: "/a/../../admin", err: ErrDotAboveRoot},
	{in: "/a/b/../../../etc/passwd", err: ErrDotAboveRoot},
	{in: "/./..", err: ErrDotAboveRoot},
	{in: "//..//admin", err: ErrDotAboveRoot},

	// Dot segments, encoded.
	{in: "/%2e", path: "/"},
	{in: "/a/%2E", path: "/a/"},
	{in: "/a/%2e%2e", path: "/"},
	{in: "/a/%2E%2e/b", path: "/b"},
	{in: "/a/.%2e/b", path: "/b"},
	{in: "/a/%2e./b", path: "/b"},
	{in: "/a/b/%2e%2e/%2e%2e/c", path: "/c"},
	{in: "/%2e%2e", err: ErrDotAboveRoot},
	{in: "/%2e%2e/admin", err: ErrDotAboveRoot},
	{in: "/%2E%2E/%2E%2E/etc/passwd", err: ErrDotAboveRoot},
	{in: "/.%2e/admin", err: ErrDotAboveRoot},
	{in: "/%2e./admin", err: ErrDotAboveRoot},
	{in: "/a/%2e%2e/%2e%2e/admin", err: ErrDotAboveRoot},
	{in: "/%252e%252e/admin", err: ErrDoubleEncoding},
	{in: "/a/%252e/b", err: ErrDoubleEncoding},
	{in: "/a/%25%32%65%25%32%65/b", err: ErrDoubleEncoding},
	{in: "/a/%25252e/b", err: ErrDoubleEncoding},

	// Overlong and invalid UTF-8.
	{in: "/%c0%ae%c0%ae/admin", err: ErrInvalidUTF8},
	{in: "/a/%C0%AE", err: ErrInvalidUTF8},
	{in: "/a%C0%AFb", err: ErrInvalidUTF8},
	{in: "/%E0%80%AE", err: ErrInvalidUTF8},
	{in: "/%F0%80%80%AE", err: ErrInvalidUTF8},
	{in: "/%C1%9C", err: ErrInvalidUTF8},
	{in: "/%ED%A0%80", err: ErrInvalidUTF8},    // surrogate U+D800
	{in: "/%ED%BF%BF", err: ErrInvalidUTF8},    // surrogate U+DFFF
	{in: "/%F4%90%80%80", err: ErrInvalidUTF8}, // above U+10FFFF
	{in: "/%FF", err: ErrInvalidUTF8},
	{in: "/%C3", err: ErrInvalidUTF8},
	{in: "/%C3/%A9", err: ErrInvalidUTF8},
	{in: "/caf\xc3", err: ErrInvalidUTF8},
	{in: "/%C2%80", err: ErrControlChar}, // C1 control U+0080
	{in: "/%C2%9F", err: ErrControlChar},
	{in: "/%25C0%25AE", err: ErrDoubleEncoding},
	{in: "/%25E0%2580%25AE", err: ErrDoubleEncoding},
	{in: "/%25ED%25A0%2580", err: ErrDoubleEncoding},

	// Unicode that is fine.
	{in: "/caf%C3%A9", path: "/café", wire: "/caf%C3%A9"},
	{in: "/caf%c3%a9", path: "/café", wire: "/caf%C3%A9"},
	{in: "/café", path: "/café", wire: "/caf%C3%A9"},
	{in: "/%E6%97%A5%E6%9C%AC/%F0%9F%9A%80", path: "/日本/🚀", wire: "/%E6%97%A5%E6%9C%AC/%F0%9F%9A%80"},
	{in: "/%C2%A0", path: "/\u00a0", wire: "/%C2%A0"},
	{in: "/%EF%BF%BD", path: "/\ufffd", wire: "/%EF%BF%BD"},
	{in: "/%25C3%25A9", path: "/%C3%A9", wire: "/%25C3%25A9"},

	// Encoded slashes and backslashes.
	{in: "/a%2Fb", err: ErrEncodedSlash},
	{in: "/a%2fb", err: ErrEncodedSlash},
	{in: "/%2F", err: ErrEncodedSlash},
	{in: "/..%2F..%2Fetc/passwd", err: ErrEncodedSlash},
	{in: "/a/%2e%2e%2fadmin", err: ErrEncodedSlash},
	{in: "/a%5Cb", err: ErrEncodedBackslash},
	{in: "/a%5cb", err: ErrEncodedBackslash},
	{in: "/..%5C..%5Cwindows", err: ErrEncodedBackslash},
	{in: "/a\\b", err: ErrBackslash},
	{in: "/\\..\\admin", err: ErrBackslash},
	{in: "/a;x=\\/b", err: ErrBackslash},
	{in: "/a%252Fb", err: ErrDoubleEncoding},
	{in: "/a%252fb", err: ErrDoubleEncoding},
	{in: "/a%255cb", err: ErrDoubleEncoding},
	{in: "/a%255Cb", err: ErrDoubleEncoding},

	// Double encoding of "%", NUL and ";".
	{in: "/a%2500", err: ErrDoubleEncoding},
	{in: "/a%2525", err: ErrDoubleEncoding},
	{in: "/a%25252e", err: ErrDoubleEncoding},
	{in: "/a%250a", err: ErrDoubleEncoding},
	{in: "/a%257F", err: ErrDoubleEncoding},
	{in: "/..%253B/admin", err: ErrDoubleEncoding},
	{in: "/a%2541", path: "/a%41", wire: "/a%2541"},
	{in: "/100%25", path: "/100%", wire: "/100%25"},
	{in: "/50%25off", path: "/50%off", wire: "/50%25off"},
	{in: "/a%25zz", path: "/a%zz", wire: "/a%25zz"},
	{in: "/a%25", path: "/a%", wire: "/a%25"},
	{in: "/a%252", path: "/a%2", wire: "/a%252"},

	// Path parameters.
	{in: "/admin;jsessionid=x/y", path: "/admin/y"},
	{in: "/admin;jsessionid=x", path: "/admin"},
	{in: "/admin;", path: "/admin"},
	{in: "/a;x/b;y/", path: "/a/b/"},
	{in: "/a/;x", path: "/a/"},
	{in: "/;x/a", path: "/a"},
	{in: "/;", path: "/"},
	{in: "/a;x=%2F", path: "/a"},
	{in: "/a;%2e%2e", path: "/a"},
	{in: "/..;/admin", err: ErrDotAboveRoot},
	{in: "/.;/admin", path: "/admin"},
	{in: "/a/..;/admin", path: "/admin"},
	{in: "/a/..;x=y/admin", path: "/admin"},
	{in: "/a/.;x/b", path: "/a/b"},
	{in: "/a/%2e%2e;/b", path: "/b"},
	{in: "/a/b/..;/..;/..;/admin", err: ErrDotAboveRoot},
	{in: "/a%3Bb", path: "/a;b", wire: "/a%3Bb"},
	{in: "/a%3bjsessionid=x", path: "/a;jsessionid=x", wire: "/a%3Bjsessionid=x"},
	{in: "/a/..%3B/admin", err: ErrAmbiguousDotSegment},
	{in: "/a/.%3Bx/b", err: ErrAmbiguousDotSegment},
	{in: "/a/%2e%2e%3b/b", err: ErrAmbiguousDotSegment},

	// Dots-only segments that are not dot segments.
	{in: "/...", err: ErrAmbiguousDotSegment},
	{in: "/a/..../b", err: ErrAmbiguousDotSegment},
	{in: "/a/%2e%2e%2e", err: ErrAmbiguousDotSegment},

	// NUL and control characters, raw and encoded.
	{in: "/a%00", err: ErrControlChar},
	{in: "/a%00.json", err: ErrControlChar},
	{in: "/a\x00b", err: ErrControlChar},
	{in: "/a%0d%0aSet-Cookie:x", err: ErrControlChar},
	{in: "/a\r\nb", err: ErrControlChar},
	{in: "/a%09", err: ErrControlChar},
	{in: "/a\tb", err: ErrControlChar},
	{in: "/a%7F", err: ErrControlChar},
	{in: "/a\x7fb", err: ErrControlChar},
	{in: "/a%1f", err: ErrControlChar},

	// Percent-encoding that is only normalised.
	{in: "/%41%42c", path: "/ABc", wire: "/ABc"},
	{in: "/%7Euser", path: "/~user", wire: "/~user"},
	{in: "/a%20b", path: "/a b", wire: "/a%20b"},
	{in: "/a b", path: "/a b", wire: "/a%20b"},
	{in: "/a%2Bb", path: "/a+b", wire: "/a+b"},
	{in: "/a+b", path: "/a+b"},
	{in: "/%3F%23", path: "/?#", wire: "/%3F%23"},
	{in: "/a\"<>{}|^`[]", path: "/a\"<>{}|^`[]", wire: "/a%22%3C%3E%7B%7D%7C%5E%60%5B%5D"},
	{in: "/%2E%2Fa", err: ErrEncodedSlash},

	// Malformed escapes.
	{in: "/a%", err: ErrBadEscape},
	{in: "/a%2", err: ErrBadEscape},
	{in: "/a%zz", err: ErrBadEscape},
	{in: "/a%G0", err: ErrBadEscape},
	{in: "/%u002e%u002e/admin", err: ErrBadEscape},
	{in: "/a;x=%zz", err: ErrBadEscape},
	{in: "/a%%2e", err: ErrBadEscape},

	// Not origin-form.
	{in: "", err: ErrNotOrigin},
	{in: "*", err: ErrNotOrigin},
	{in: "http://x/y", err: ErrNotOrigin},
	{in: "https://internal:8080/admin", err: ErrNotOrigin},
	{in: "x/y", err: ErrNotOrigin},
	{in: "a", err: ErrNotOrigin},
	{in: "%2Fa", err: ErrNotOrigin},
	{in: "\\a", err: ErrNotOrigin},
	{in: "example.com:443", err: ErrNotOrigin},
}

func TestCanonical(t *testing.T) {
	for _, tc := range attackTable {
		path, wire, err := Canonical(tc.in)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("Canonical(%q) = %q, %q, %v; want error %q", tc.in, path, wire, err, tc.err.Reason)
			}
			var e *Error
			if !errors.As(err, &e) || e.Offset < 0 || e.Offset > len(tc.in) {
				t.Errorf("Canonical(%q): error %v is not an *Error with an offset in the input", tc.in, err)
			}
			if path != "" || wire != "" {
				t.Errorf("Canonical(%q) returned %q, %q with an error", tc.in, path, wire)
			}
			continue
		}
		want := tc.wire
		if want == "" {
			want = tc.path
		}
		if err != nil || path != tc.path || wire != want {
			t.Errorf("Canonical(%q) = %q, %q, %v; want %q, %q", tc.in, path, wire, err, tc.path, want)
			continue
		}
		checkInvariants(t, tc.in, path, wire)
	}
}

func TestCanonicalLength(t *testing.T) {
	long := "/" + strings.Repeat("a", MaxLen-1)
	if p, w, err := Canonical(long); err != nil || p != long || w != long {
		t.Errorf("path of MaxLen bytes: err %v", err)
	}
	if _, _, err := Canonical(long + "a"); !errors.Is(err, ErrTooLong) {
		t.Errorf("path of MaxLen+1 bytes: err %v, want %v", err, ErrTooLong)
	}
	// Short enough on input, too long once escaped: 3000 two-byte runes
	// become 12000 bytes on the wire.
	wide := "/" + strings.Repeat("é", 3000)
	if _, _, err := Canonical(wide); !errors.Is(err, ErrTooLong) {
		t.Errorf("wire longer than MaxLen: err %v, want %v", err, ErrTooLong)
	}
	// Long inputs that need the slow path (beyond its stack buffer).
	deep := strings.Repeat("/a/.", 1000) + "/b"
	if p, _, err := Canonical(deep); err != nil || p != strings.Repeat("/a", 1000)+"/b" {
		t.Errorf("deep path: %v", err)
	}
	climb := strings.Repeat("/a", 100) + strings.Repeat("/..", 101)
	if _, _, err := Canonical(climb); !errors.Is(err, ErrDotAboveRoot) {
		t.Errorf("deep climb: err %v, want %v", err, ErrDotAboveRoot)
	}
}

func TestErrorIs(t *testing.T) {
	_, _, err := Canonical("/a%2Fb")
	if !errors.Is(err, ErrEncodedSlash) || errors.Is(err, ErrEncodedBackslash) {
		t.Fatalf("errors.Is does not tell kinds apart: %v", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Offset != 2 || e.Reason != ErrEncodedSlash.Reason {
		t.Fatalf("got %+v, want reason %q at offset 2", e, ErrEncodedSlash.Reason)
	}
	if got, want := err.Error(), "pathcanon: encoded slash at byte 2"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if strings.Contains((&Error{Reason: ErrBadEscape.Reason}).Error(), "%") {
		t.Errorf("Error() should not contain input bytes")
	}
}

// TestFastPathAgrees checks that the allocation-free fast path gives what the
// general algorithm gives.
func TestFastPathAgrees(t *testing.T) {
	for _, tc := range attackTable {
		if tc.in == "" || tc.in[0] != '/' || !isCanonical(tc.in) {
			continue
		}
		p, w, err := canonicalSlow(tc.in)
		if err != nil || p != tc.in || w != tc.in {
			t.Errorf("fast path accepts %q unchanged, slow path gives %q, %q, %v", tc.in, p, w, err)
		}
	}
}

func TestCanonicalAllocs(t *testing.T) {
	for _, p := range []string{"/", "/v1/orders/123", "/v1/orders/", "/.well-known/jwks.json"} {
		if n := testing.AllocsPerRun(100, func() { _, _, _ = Canonical(p) }); n != 0 {
			t.Errorf("Canonical(%q) allocates %v times, want 0", p, n)
		}
	}
}
