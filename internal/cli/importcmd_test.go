package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runImportCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, LookupEnv: func(string) (string, bool) { return "", false }}
	code := runImport(context.Background(), env, args)
	return code, out.String(), errb.String()
}

const importTestSpec = `openapi: 3.1.0
info: {title: t, version: "1"}
paths:
  /orders/{id}:
    get:
      security: [{oauth2: ["orders:read"]}]
      responses: {"200": {description: ok}}
  /ping:
    get:
      responses: {"200": {description: ok}}
components:
  securitySchemes:
    oauth2: {type: oauth2, flows: {clientCredentials: {tokenUrl: /oauth2/token, scopes: {"orders:read": r}}}}
`

func TestImportOpenAPI(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "orders.yaml")
	if err := os.WriteFile(spec, []byte(importTestSpec), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runImportCmd(t, "openapi", "--upstream", "http://127.0.0.1:9000", spec, "--auth", "oauth2=own", "--auth", "keys", "--spec-path", "specs/orders.yaml")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"  - name: orders-id\n    path: /orders/{id}\n",
		"    auth:\n      - own\n    scopes:\n      - orders:read\n",
		"  - name: ping\n", "      - keys\n",
		"        - http://127.0.0.1:9000\n",
		"      spec: specs/orders.yaml\n      validate_requests: true\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "# placeholder") {
		t.Errorf("placeholder although --upstream and --auth were given:\n%s", out)
	}
	if !strings.Contains(errOut, "2 routes from") {
		t.Errorf("stderr %q", errOut)
	}

	// Without flags: placeholders, warned about on stderr.
	code, out, errOut = runImportCmd(t, "openapi", spec)
	if code != 0 || !strings.Contains(out, "change-me") || !strings.Contains(out, "spec: "+spec) ||
		!strings.Contains(errOut, "placeholder") {
		t.Errorf("exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestImportErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("swagger: '2.0'"), 0o600)
	good := filepath.Join(dir, "good.yaml")
	_ = os.WriteFile(good, []byte(importTestSpec), 0o600)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{nil, 2, "want 'import openapi SPEC'"},
		{[]string{"swagger", good}, 2, "want 'import openapi SPEC'"},
		{[]string{"openapi"}, 2, "which spec?"},
		{[]string{"openapi", good, good}, 2, "one spec at a time"},
		{[]string{"openapi", "--nope", good}, 2, "flag provided but not defined"},
		{[]string{"openapi", good, "--auth", "Bad Name"}, 2, "not an authenticator name"},
		{[]string{"openapi", good, "--auth", "none"}, 2, "not an authenticator name"},
		{[]string{"openapi", good, "--auth", "=keys"}, 2, "needs a scheme name"},
		{[]string{"openapi", filepath.Join(dir, "missing.yaml")}, 1, "reading the spec"},
		{[]string{"openapi", bad}, 1, "not an OpenAPI 3 document"},
	} {
		code, _, errOut := runImportCmd(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errOut, tc.code, tc.msg)
		}
	}
}

func TestImportHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"openapi", "--help"}, {"openapi", "x.yaml", "-h"}} {
		code, out, _ := runImportCmd(t, args...)
		if code != 0 || !strings.Contains(out, "Usage: breakwater import openapi SPEC") || !strings.Contains(out, "x-breakwater") {
			t.Errorf("%v: exit %d\n%s", args, code, out)
		}
	}
	_, out, _ := runImportCmd(t, "openapi", "--help")
	for _, flag := range []string{"-upstream", "-auth", "-spec-path"} {
		if !strings.Contains(out, flag) {
			t.Errorf("help lacks %s", flag)
		}
	}
}
