package e2e

import (
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const validConfig = `version: 1
server:
  https: "127.0.0.1:18443"
  admin: "127.0.0.1:19901"
  data_dir: "{{.Data}}"
tls:
  self_signed: true
admin:
  token_hash: "{{.AdminHash}}"
authenticators:
  keys: { type: api_key, header: X-API-Key }
consumers:
  - id: reader
    scopes: [read]
    credentials:
      - api_key: "{{.ReaderHash}}"
routes:
  - name: a
    path: /a/**
    upstream: { targets: ["http://127.0.0.1:9"], timeout: 5s }
    auth: none
  - name: b
    path: /b/**
    upstream: { targets: ["http://127.0.0.1:9"], timeout: 5s }
    auth: [keys]
  - name: c
    path: /c/**
    upstream: { targets: ["http://127.0.0.1:9"], timeout: 5s }
    auth: [keys]
`

// invalidConfig is validConfig with exactly four problems.
const invalidConfig = `version: 1
server:
  https: "127.0.0.1:18443"
  admin: "127.0.0.1:19901"
  data_dir: "{{.Data}}"
  htps: ":8443"
tls:
  self_signed: true
admin:
  token_hash: "{{.AdminHash}}"
authenticators:
  keys: { type: api_key, header: X-API-Key }
consumers:
  - id: reader
    scopes: [read]
    credentials:
      - api_key: "{{.ReaderHash}}"
routes:
  - name: a
    path: /a/**
    upstream: { targets: ["http://127.0.0.1:9"], timeout: 5s }
  - name: b
    path: /b/**
    upstream: { targets: ["http://127.0.0.1:9"], timeout: 10parsecs }
    auth: [keys]
  - name: c
    path: /c/**
    upstream: { targets: ["http://127.0.0.1:9"], timeout: 5s }
    auth: [nokeys]
`

var problemLine = regexp.MustCompile(`^(.+):(\d+):(\d+): (\S+): (.+)$`)

// lineOf returns the 1-based number of the first line of s containing sub.
func lineOf(s, sub string) int {
	for i, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return i + 1
		}
	}
	return -1
}

func TestValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	vars := configVars(dir)

	t.Run("valid config exits 0", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(dir, "good.yaml")
		writeFile(t, path, render(t, validConfig, vars))
		out, errOut, code := runCmd(t, "", nil, "validate", "-c", path)
		if code != 0 {
			t.Fatalf("validate of a valid config: exit %d, want 0\nstdout: %s\nstderr: %s", code, out, errOut)
		}
	})

	// Four problems, all reported at once, one FILE:LINE:COL: path: message line each.
	checkProblems := func(t *testing.T, cmd string) {
		path := filepath.Join(dir, cmd+"-bad.yaml")
		content := render(t, invalidConfig, vars)
		writeFile(t, path, content)
		out, errOut, code := runCmd(t, "", nil, cmd, "-c", path)
		if code != 1 {
			t.Fatalf("%s of a config with 4 problems: exit %d, want 1\nstdout: %s\nstderr: %s", cmd, code, out, errOut)
		}
		type want struct {
			what             string
			pathRE           *regexp.Regexp
			minLine, maxLine int
			mention          string // the message (or path) must name it
		}
		routeA, routeB := lineOf(content, "name: a"), lineOf(content, "name: b")
		wants := []want{
			{"unknown field server.htps", regexp.MustCompile(`htps`), lineOf(content, "htps:"), lineOf(content, "htps:"), "htps"},
			{"route without auth", regexp.MustCompile(`^routes\[0\]`), routeA, routeB - 1, "none"},
			{"bad duration", regexp.MustCompile(`^routes\[1\]\.upstream\.timeout$`), lineOf(content, "10parsecs"), lineOf(content, "10parsecs"), ""},
			{"unknown authenticator", regexp.MustCompile(`^routes\[2\]\.auth`), lineOf(content, "nokeys"), lineOf(content, "nokeys"), "nokeys"},
		}
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(errOut), "\n") {
			if strings.TrimSpace(l) != "" {
				lines = append(lines, l)
			}
		}
		matched := make([]int, len(wants))
		for _, l := range lines {
			m := problemLine.FindStringSubmatch(l)
			if m == nil {
				t.Errorf("line not in the form FILE:LINE:COL: field.path: message: %q", l)
				continue
			}
			if m[1] != path {
				t.Errorf("FILE is %q, want %q in %q", m[1], path, l)
			}
			line, _ := strconv.Atoi(m[2])
			col, _ := strconv.Atoi(m[3])
			if col < 1 {
				t.Errorf("COL %d is not 1-based in %q", col, l)
			}
			found := false
			for i, w := range wants {
				if w.pathRE.MatchString(m[4]) && line >= w.minLine && line <= w.maxLine &&
					(w.mention == "" || strings.Contains(m[4]+" "+m[5], w.mention)) {
					matched[i]++
					found = true
					break
				}
			}
			if !found {
				t.Errorf("unexpected problem line (the config has exactly 4 problems): %q", l)
			}
		}
		for i, w := range wants {
			if matched[i] != 1 {
				t.Errorf("%s: %d lines report it, want exactly 1 (path matching %s, line %d..%d, message naming %q)",
					w.what, matched[i], w.pathRE, w.minLine, w.maxLine, w.mention)
			}
		}
		if t.Failed() {
			t.Logf("config:\n%s\nstderr:\n%s", numbered(content), errOut)
		}
	}
	t.Run("four problems at once", func(t *testing.T) {
		t.Parallel()
		checkProblems(t, "validate")
	})
	t.Run("serve refuses an invalid config with the same lines", func(t *testing.T) {
		t.Parallel()
		checkProblems(t, "serve")
	})

	t.Run("missing file is named", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(dir, "does-not-exist.yaml")
		out, errOut, code := runCmd(t, "", nil, "validate", "-c", path)
		if code != 1 || !strings.Contains(errOut, "does-not-exist.yaml") {
			t.Errorf("validate -c %s: exit %d, stderr %q (stdout %q); want 1 and the file named", path, code, errOut, out)
		}
	})

	t.Run("serve with the HTTPS port taken exits 1 and says so", func(t *testing.T) {
		t.Parallel()
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer taken.Close()
		vars := configVars(t.TempDir())
		vars["HTTPS"], vars["Admin"], vars["Up"] = taken.Addr().String(), freeAddr(t), "http://127.0.0.1:9"
		path := filepath.Join(dir, "taken.yaml")
		writeFile(t, path, render(t, baseConfig, vars))
		out, errOut, code := runCmd(t, "", nil, "serve", "-c", path)
		if code != 1 || !strings.Contains(errOut, taken.Addr().String()) {
			t.Errorf("serve with server.https %s in use: exit %d, want 1 and the address named\nstdout: %s\nstderr: %s", taken.Addr(), code, out, errOut)
		}
	})

	t.Run("missing env variable is named", func(t *testing.T) {
		t.Parallel()
		const name = "BW_E2E_SURELY_UNSET_VARIABLE"
		path := filepath.Join(dir, "env.yaml")
		content := strings.Replace(render(t, validConfig, vars), `token_hash: "`+vars["AdminHash"]+`"`, `token_hash: "${`+name+`}"`, 1)
		if !strings.Contains(content, name) {
			t.Fatal("test bug: variable not placed in the config")
		}
		writeFile(t, path, content)
		out, errOut, code := runCmd(t, "", []string{name}, "validate", "-c", path)
		if code != 1 {
			t.Fatalf("validate with ${%s} unset: exit %d, want 1\nstdout: %s\nstderr: %s", name, code, out, errOut)
		}
		if !strings.Contains(errOut, name) {
			t.Errorf("the error does not name the variable %s:\n%s", name, errOut)
		}
		// And with the variable set, the same file is valid.
		out, errOut, code = runCmd(t, "", []string{name + "=" + vars["AdminHash"]}, "validate", "-c", path)
		if code != 0 {
			t.Errorf("validate with ${%s} set: exit %d, want 0\nstdout: %s\nstderr: %s", name, code, out, errOut)
		}
	})
}
