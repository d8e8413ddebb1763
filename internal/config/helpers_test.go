package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testEnv is the environment seen by the tests' configs.
func testEnv(name string) (string, bool) {
	v, ok := map[string]string{
		"ADMIN_HASH": "sha256:" + strings.Repeat("ab", 32),
		"PORT":       "8443",
		"EMPTY":      "",
		"ISSUER":     "https://idp.example.com",
	}[name]
	return v, ok
}

// validBase is a complete valid config; rows of the tests append to it or
// replace parts of it.
const validBase = `version: 1
server: {admin: "off"}
tls: {self_signed: true}
authenticators:
  keys: {type: api_key}
routes:
  - name: r
    path: /v1/things/{id}
    upstream: {targets: ["http://127.0.0.1:9000"]}
    auth: keys
`

// parseIn parses src as the file bw.yaml in dir (a fresh temp dir when "").
func parseIn(t *testing.T, dir, src string) (*Config, Errors) {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cfg, err := Parse([]byte(src), filepath.Join(dir, "bw.yaml"), testEnv)
	if err == nil {
		return cfg, nil
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse returned %T, want Errors: %v", err, err)
	}
	if cfg != nil {
		t.Errorf("Parse returned a config together with errors")
	}
	return nil, errs
}

// expectErrors checks that every want is a substring of some error line,
// and that src parses without error when want is empty.
func expectErrors(t *testing.T, dir, src string, want ...string) Errors {
	t.Helper()
	_, errs := parseIn(t, dir, src)
	if len(want) == 0 && len(errs) > 0 {
		t.Fatalf("unexpected errors:\n%v", errs)
	}
	text := errs.Error()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("missing error %q in:\n%s", w, text)
		}
	}
	return errs
}

// writeFile creates dir/name with content.
func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
