package e2e

import (
	"regexp"
	"strings"
	"testing"
)

var keyLines = regexp.MustCompile(`(?m)^key:\s+(\S+)\s*$[\s\S]*?(sha256:[0-9a-f]{64})`)

func TestCLI(t *testing.T) {
	t.Parallel()

	t.Run("keys new", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			args   []string
			prefix string
		}{
			{[]string{"keys", "new"}, "bw_"},
			{[]string{"keys", "new", "--prefix", "acme_"}, "acme_"},
		} {
			seen := map[string]bool{}
			for i := 0; i < 2; i++ {
				out, errOut, code := runCmd(t, "", nil, tc.args...)
				if code != 0 {
					t.Fatalf("breakwater %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(tc.args, " "), code, out, errOut)
				}
				m := keyLines.FindStringSubmatch(out)
				if m == nil {
					t.Fatalf("breakwater %s: output has no key line followed by a sha256: line:\n%s", strings.Join(tc.args, " "), out)
				}
				key, dig := m[1], m[2]
				if !regexp.MustCompile(`^` + regexp.QuoteMeta(tc.prefix) + `[0-9A-Za-z]{43}$`).MatchString(key) {
					t.Errorf("key %q: want %s followed by 43 base62 characters", key, tc.prefix)
				}
				if dig != digest(key) {
					t.Errorf("printed digest %s, but sha256(key) is %s", dig, digest(key))
				}
				if seen[key] {
					t.Errorf("keys new printed the same key twice: %s", key)
				}
				seen[key] = true
			}
		}
		_, errOut, code := runCmd(t, "", nil, "keys", "new", "--prefix", "BAD")
		if code == 0 || errOut == "" {
			t.Errorf("keys new --prefix BAD: exit %d, stderr %q; want a non-zero exit and a message", code, errOut)
		}
	})

	t.Run("secret hash", func(t *testing.T) {
		t.Parallel()
		for _, in := range []string{"s3cret\n", "s3cret", "s3cret\r\n"} {
			out, errOut, code := runCmd(t, in, nil, "secret", "hash")
			if code != 0 || strings.TrimSpace(out) != digest("s3cret") {
				t.Errorf("secret hash < %q: exit %d, stdout %q (stderr %q); want 0 and %s", in, code, out, errOut, digest("s3cret"))
			}
		}
		_, errOut, code := runCmd(t, "", nil, "secret", "hash")
		if code == 0 || errOut == "" {
			t.Errorf("secret hash with empty stdin: exit %d, stderr %q; want a non-zero exit and a message", code, errOut)
		}
	})

	t.Run("version", func(t *testing.T) {
		t.Parallel()
		for _, args := range [][]string{{"version"}, {"--version"}} {
			out, errOut, code := runCmd(t, "", nil, args...)
			if code != 0 || !strings.Contains(out, "breakwater") || !strings.Contains(out, "go1.") {
				t.Errorf("breakwater %s: exit %d, stdout %q, stderr %q; want 0, the name and the Go version", strings.Join(args, " "), code, out, errOut)
			}
		}
	})

	t.Run("--help everywhere", func(t *testing.T) {
		t.Parallel()
		for _, args := range [][]string{
			{"--help"}, {"-h"}, {"help"},
			{"serve", "--help"}, {"demo", "--help"}, {"validate", "--help"}, {"audit", "--help"},
			{"keys", "--help"}, {"keys", "new", "--help"}, {"secret", "--help"}, {"secret", "hash", "--help"},
			{"inventory", "--help"}, {"version", "--help"}, {"serve", "-h"}, {"help", "serve"},
		} {
			out, errOut, code := runCmd(t, "", nil, args...)
			if code != 0 || len(strings.TrimSpace(out)) < 20 {
				t.Errorf("breakwater %s: exit %d, stdout %q (stderr %q); want 0 and help text on stdout", strings.Join(args, " "), code, out, errOut)
			}
		}
	})

	t.Run("usage errors exit 2", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			args    []string
			mention string
		}{
			{[]string{"frobnicate"}, "frobnicate"},
			{[]string{"serve"}, "-c"},
			{[]string{"validate"}, "-c"},
			{[]string{"serve", "--no-such-flag"}, "no-such-flag"},
			{[]string{"keys", "old"}, "keys new"},
		} {
			out, errOut, code := runCmd(t, "", nil, tc.args...)
			if code != 2 || !strings.Contains(errOut, tc.mention) {
				t.Errorf("breakwater %s: exit %d, stderr %q (stdout %q); want 2 and a message naming %q", strings.Join(tc.args, " "), code, errOut, out, tc.mention)
			}
		}
	})
}
