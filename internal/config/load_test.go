package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestExampleConfig(t *testing.T) {
	path := filepath.Join("..", "..", "examples", "gateway.yaml")
	cfg, err := Load(path, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("examples/gateway.yaml:\n%v", err)
	}
	if len(cfg.Routes) != 2 || len(cfg.Consumers) != 1 || !cfg.TLS.SelfSigned {
		t.Errorf("unexpected example: %d routes, %d consumers", len(cfg.Routes), len(cfg.Consumers))
	}
	key := "bw_4Qm8sXzYpL2vK9rT7nW3cJ6hF1dG5bN0aE8uR2iO"
	if !cfg.Consumers[0].Credentials[0].APIKey.Matches([]byte(key)) {
		t.Errorf("the example consumer's digest is not that of the key named in its comment")
	}
	if !cfg.Admin.TokenHash.Matches([]byte("admin-token-example-change-me")) {
		t.Errorf("the example admin token hash is not that of the token named in its comment")
	}
	abs, _ := filepath.Abs(filepath.Join("..", "..", "examples"))
	if cfg.Dir != abs || cfg.Server.DataDir != filepath.Join(abs, "data") {
		t.Errorf("Dir = %q, DataDir = %q", cfg.Dir, cfg.Server.DataDir)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "bw.yaml", validBase)
	if _, err := Load(filepath.Join(dir, "bw.yaml"), nil); err != nil {
		t.Errorf("Load without lookup: %v", err)
	}

	_, err := Load(filepath.Join(dir, "missing.yaml"), nil)
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 || !strings.HasSuffix(errs[0].String(), ": no such file or directory") || !strings.HasPrefix(errs[0].String(), filepath.Join(dir, "missing.yaml")+": reading config ") {
		t.Errorf("missing file: %v", err)
	}

	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte(strings.Repeat("#", maxDocument+100)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(big, nil)
	if err == nil || !strings.Contains(err.Error(), big+":1:1: the config is 4194305 bytes, more than the limit of 4 MiB") {
		t.Errorf("large file: %v", err)
	}

	// The lookup passed to Load is the one used.
	writeFile(t, dir, "env.yaml", strings.Replace(validBase, `admin: "off"`, `admin: "${ADMIN}"`, 1))
	_, err = Load(filepath.Join(dir, "env.yaml"), func(n string) (string, bool) { return "off", n == "ADMIN" })
	if err != nil {
		t.Errorf("Load with lookup: %v", err)
	}
}

func TestEmbedded(t *testing.T) {
	cfg, err := Parse([]byte(validBase), "", testEnv)
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if cfg.File != "" || cfg.Dir != wd {
		t.Errorf("File %q, Dir %q", cfg.File, cfg.Dir)
	}
	_, err = Parse([]byte("version: 2\n"), "", testEnv)
	if err == nil || !strings.Contains(err.Error(), "<embedded>:1:10: version: unsupported version 2") {
		t.Errorf("got %v", err)
	}
}

func TestExtensionKeysHoldAnchors(t *testing.T) {
	src := "x-upstream: &up {targets: [\"http://127.0.0.1:9000\"], timeout: 3s}\n" +
		strings.Replace(validBase, `upstream: {targets: ["http://127.0.0.1:9000"]}`, "upstream: *up", 1)
	cfg, errs := parseIn(t, "", src)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if cfg.Routes[0].Upstream.Timeout.D().Seconds() != 3 {
		t.Errorf("timeout %v", cfg.Routes[0].Upstream.Timeout)
	}
	// Only at the top level.
	expectErrors(t, "", strings.Replace(validBase, "tls: {self_signed: true}", "tls: {self_signed: true, x-a: 1}", 1),
		`3:26: tls.x-a: unknown field`)
}

func TestFieldErrorFormat(t *testing.T) {
	tests := []struct {
		e    FieldError
		want string
	}{
		{FieldError{File: "gw.yaml", Line: 3, Col: 5, Path: "routes[0].auth", Msg: "required"}, "gw.yaml:3:5: routes[0].auth: required"},
		{FieldError{Line: 1, Col: 1, Path: "version", Msg: "bad"}, "<embedded>:1:1: version: bad"},
		{FieldError{File: "gw.yaml", Line: 2, Col: 1, Msg: "YAML syntax error: x"}, "gw.yaml:2:1: YAML syntax error: x"},
		{FieldError{File: "gw.yaml", Msg: "reading config: gone"}, "gw.yaml: reading config: gone"},
	}
	for _, tt := range tests {
		if got := tt.e.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	errs := Errors{{File: "a", Line: 3, Col: 1, Msg: "c"}, {File: "a", Line: 1, Col: 9, Msg: "b"}, {File: "a", Line: 1, Col: 2, Msg: "a"}}
	sortErrors(errs)
	if got := errs.Error(); got != "a:1:2: a\na:1:9: b\na:3:1: c" {
		t.Errorf("sorted Errors = %q", got)
	}
	var fe FieldError
	if !errors.As(error(errs), &fe) || fe.Msg != "a" {
		t.Errorf("errors.As(Errors, *FieldError) = %v", fe)
	}
}

func TestTooManyErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString("routes:\n")
	for range maxErrors + 50 {
		b.WriteString("  - {name: r, path: /x, upstream: {targets: [\"http://h\"]}, auth: none, bad: 1}\n")
	}
	_, errs := parseIn(t, "", b.String())
	if len(errs) != maxErrors+1 || !strings.Contains(errs[len(errs)-1].Msg, "more problems not shown") {
		t.Errorf("%d errors, last %q", len(errs), errs[len(errs)-1])
	}
}

// A value that came from the environment never appears in an error message.
func TestErrorsDoNotShowEnvironmentValues(t *testing.T) {
	env := map[string]string{"TOKEN": "s3cr3t-t0ken-value", "RETRIES": "s3cr3t-retries"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	src := strings.Replace(validBase, `targets: ["http://127.0.0.1:9000"]`, `targets: ["http://127.0.0.1:9000/?k=${TOKEN}"], retries: "${RETRIES}"`, 1)
	_, err := Parse([]byte(src), "", lookup)
	if err == nil {
		t.Fatal("want errors")
	}
	msg := err.Error()
	if strings.Contains(msg, "s3cr3t") || !strings.Contains(msg, "${TOKEN}") || !strings.Contains(msg, "${RETRIES}") {
		t.Fatalf("errors show an environment value, or not its name:\n%s", msg)
	}
}

// A FIFO where a file is expected is refused at once, never waited on.
func TestFIFOIsNotWaitedOn(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	done := make(chan error, 1)
	go func() { _, err := Load(fifo, nil); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Load blocked on a FIFO")
	}
}
