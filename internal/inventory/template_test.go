package inventory

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTemplate(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/", "/"},
		{"", "/"},
		{"/users", "/users"},
		{"/users/42", "/users/{id}"},
		{"/users/42/orders/7", "/users/{id}/orders/{id2}"},
		{"/items/3f2a9c1e-7b4d-4e8a-9c2b-1a2b3c4d5e6f", "/items/{id}"},
		{"/blobs/5f1d3c0a9b8e7d6c5b4a3f2e", "/blobs/{id}"},
		{"/tokens/bw_4Fq9ZkXw2LmP7sRt", "/tokens/{id}"},
		{"/v1/things", "/v1/things"},
		{"/api/v2/sha256", "/api/v2/sha256"},
		{"/deadbeef", "/deadbeef"}, // all letters: a word
		{"/files/report.pdf", "/files/report.pdf"},
		{"/v1/things:batchGet", "/v1/things:batchGet"},
		{"/users/me@example.com", "/users/{id}"},
		{"/a//b", "/a//b"},
		{"/trailing/", "/trailing/"},
		// attack rows
		{"/{id}/x", "/{id}/x"}, // a literal brace is not a name
		{"/a/\x00b", "/a/{id}"},
		{"/a/\x1b[31mred", "/a/{id}"},
		{"/a/\r\nSet-Cookie: x", "/a/{id}"},
		{"/ünïcode", "/{id}"},
		{"/" + strings.Repeat("a", 65), "/{id}"},
		{strings.Repeat("/s", 20), strings.Repeat("/s", 16) + "/{rest}"},
	} {
		if got := Template(tc.in); got != tc.want {
			t.Errorf("Template(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzTemplate checks the templating of client paths: bounded, printable
// ASCII, starting with "/", stable (a template templates to itself) and
// never longer than allowed.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"/", "/users/42", "/a/3f2a9c1e-7b4d-4e8a-9c2b-1a2b3c4d5e6f", "/%00", "/a\x00b", "//", strings.Repeat("/x", 40), "/\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		got := Template(path)
		if len(got) > maxTemplate || !strings.HasPrefix(got, "/") || !utf8.ValidString(got) {
			t.Fatalf("Template(%q) = %q", path, got)
		}
		for i := 0; i < len(got); i++ {
			if got[i] < 0x21 || got[i] > 0x7e {
				t.Fatalf("Template(%q) = %q: byte %#x", path, got, got[i])
			}
		}
		if again := Template(got); again != got {
			t.Fatalf("Template(Template(%q)) = %q, not %q", path, again, got)
		}
	})
}
