package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/breakwater/breakwater/internal/secret"
)

func run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, LookupEnv: func(string) (string, bool) { return "", false }}
	code := Run(context.Background(), env, args)
	return code, out.String(), errb.String()
}

func TestHelpForEveryCommand(t *testing.T) {
	code, out, _ := run(t, "", "--help")
	if code != 0 || !strings.Contains(out, "Commands:") {
		t.Fatalf("--help: %d %q", code, out)
	}
	for _, c := range commands() {
		code, out, errOut := run(t, "", c.name, "--help")
		if code != 0 || !strings.Contains(out, "Usage: breakwater "+c.name) {
			t.Errorf("%s --help: exit %d, stdout %q, stderr %q", c.name, code, out, errOut)
		}
		if !strings.Contains(out, c.name) {
			t.Errorf("help of %s does not name it", c.name)
		}
	}
	if code, _, _ := run(t, "", "help", "serve"); code != 0 {
		t.Error("help serve")
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"serve"}, {"validate"}, {"serve", "-c", "x", "extra"}, {"keys"}, {"keys", "new", "--prefix", "BAD"}, {"secret"}, {"serve", "--nope"}, {"audit", "-c", "x"}} {
		code, _, errOut := run(t, "", args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, errOut)
		}
	}
}

func TestKeysNew(t *testing.T) {
	code, out, _ := run(t, "", "keys", "new", "--prefix", "acme_")
	if code != 0 {
		t.Fatal(code)
	}
	m := regexp.MustCompile(`key:\s+(acme_[0-9A-Za-z]{43})\nconfig: - api_key: "(sha256:[0-9a-f]{64})"`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("output %q", out)
	}
	if secret.SumString(m[1]).String() != m[2] {
		t.Fatal("digest does not match the key")
	}
}

func TestSecretHash(t *testing.T) {
	code, out, _ := run(t, "s3cret\n", "secret", "hash")
	if code != 0 || strings.TrimSpace(out) != secret.SumString("s3cret").String() {
		t.Fatalf("%d %q", code, out)
	}
	if code, _, errOut := run(t, "", "secret", "hash"); code != 1 || !strings.Contains(errOut, "stdin is empty") {
		t.Fatalf("empty stdin: %d %q", code, errOut)
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	must(t, os.WriteFile(good, []byte(`version: 1
server: { admin: "off" }
tls: { self_signed: true }
routes:
  - name: r
    path: /x
    upstream: { targets: ["http://127.0.0.1:1"] }
    auth: none
`), 0o600))
	must(t, os.WriteFile(bad, []byte(`version: 1
server: { admin: "off", colour: blue }
tls: { self_signed: true }
routes:
  - name: r
    path: /x
    upstream: { targets: ["http://127.0.0.1:1"], timeout: soon }
`), 0o600))
	if code, out, errOut := run(t, "", "validate", "-c", good); code != 0 || !strings.Contains(out, "valid") {
		t.Fatalf("good: %d %q %q", code, out, errOut)
	}
	code, _, errOut := run(t, "", "validate", "--config", bad)
	if code != 1 {
		t.Fatalf("bad: exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if len(lines) < 3 {
		t.Fatalf("want every problem at once, got:\n%s", errOut)
	}
	for _, l := range lines {
		if !regexp.MustCompile(`^.*bad\.yaml:\d+:\d+: [a-z_\[\]0-9.]+: .+`).MatchString(l) {
			t.Errorf("line not FILE:LINE:COL: path: msg: %q", l)
		}
	}
	for _, want := range []string{"server.colour", "routes[0].upstream.timeout", "routes[0].auth"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("missing %s in:\n%s", want, errOut)
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "breakwater ") || !strings.Contains(out, "go1.") {
		t.Fatalf("%d %q", code, out)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
