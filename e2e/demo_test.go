package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

type curlCmd struct {
	comment, line string
}

// demoCommands returns the printed curl commands with the comment above each.
func demoCommands(out string) []curlCmd {
	var cmds []curlCmd
	var comment string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "#"):
			comment = strings.TrimSpace(strings.TrimPrefix(l, "#"))
		case strings.HasPrefix(l, "curl "):
			cmds = append(cmds, curlCmd{comment, l})
		}
	}
	return cmds
}

var curlStatus = regexp.MustCompile(`(?m)^HTTP/[0-9.]+ (\d{3})`)

// splitCurl splits `curl -i` output into status and body.
func splitCurl(out string) (int, string) {
	m := curlStatus.FindStringSubmatch(out)
	if m == nil {
		return 0, out
	}
	code, _ := strconv.Atoi(m[1])
	if i := strings.Index(out, "\r\n\r\n"); i >= 0 {
		return code, out[i+4:]
	}
	return code, ""
}

func TestDemo(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("curl is not installed; the demo's printed commands cannot be run (set CI to make this a failure)")
		}
		t.Fatalf("curl is not installed, and CI is set: the demo test must run in CI (install curl)")
	}
	tmp := t.TempDir()
	home := t.TempDir() // no ~/.curlrc
	var p *proc
	for attempt := 0; ; attempt++ {
		httpsAddr, adminAddr := freeAddr(t), freeAddr(t)
		p = startProc(t, []string{"TMPDIR=" + tmp}, "demo", "--https", httpsAddr, "--admin", adminAddr)
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(p.stdout.String(), "Press Ctrl-C") && !p.exited() && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if strings.Contains(p.stdout.String(), "Press Ctrl-C") {
			break
		}
		if !p.exited() {
			p.signal(syscall.SIGKILL)
			<-p.done
		}
		if attempt < 2 && strings.Contains(p.stderr.String(), "address already in use") {
			continue
		}
		t.Fatalf("breakwater demo did not print \"Press Ctrl-C\" within 30s%s", p.output())
	}
	t.Cleanup(func() { p.stop(t) })
	out := p.stdout.String()

	m := regexp.MustCompile(`(?m)^\s*demo CA\s+(\S+)\s*$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the demo does not print the CA path (\"demo CA  PATH\")%s", p.output())
	}
	caPath := m[1]
	demoDir := filepath.Dir(filepath.Dir(caPath)) // DIR/certs/ca.pem
	if _, err := os.Stat(caPath); err != nil {
		t.Errorf("the printed CA %s: %v", caPath, err)
	}

	cmds := demoCommands(out)
	if len(cmds) < 8 {
		t.Fatalf("the demo printed %d curl commands, want the documented ones%s", len(cmds), p.output())
	}
	env := mergeEnv(os.Environ(), []string{
		"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy",
		"NO_PROXY=*", "no_proxy=*", "HOME=" + home, "CURL_HOME=" + home,
	})
	run := func(line string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "sh", "-c", line)
		cmd.Env = env
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		if err := cmd.Run(); err != nil {
			t.Errorf("%s\n  failed: %v\n  stdout: %s\n  stderr: %s%s", line, err, o.String(), e.String(), p.output())
		}
		return o.String()
	}

	groups := map[string][]string{} // comment kind → outputs, to compare 401 bodies
	seen := map[string]bool{}
	for _, c := range cmds {
		outp := run(c.line)
		status, body := splitCurl(outp)
		hasI := strings.Contains(c.line, " -i ")
		fail := func(format string, args ...any) {
			t.Helper()
			t.Errorf("# %s\n%s\n  "+format+"\n  output:\n%s", append(append([]any{c.comment, c.line}, args...), outp)...)
		}
		com := strings.ToLower(c.comment)
		switch {
		case strings.Contains(com, "public route"):
			seen["public"] = true
			if !strings.Contains(outp, `"status":"ok"`) {
				fail("want the demo API's health answer")
			}
		case strings.Contains(com, "401"):
			seen["401"] = true
			if !hasI || status != 401 {
				fail("want 401 (with -i), got %d", status)
			}
			if !strings.Contains(strings.ToLower(outp), "www-authenticate:") {
				fail("401 without WWW-Authenticate")
			}
			groups["401"] = append(groups["401"], string(requestIDField.ReplaceAll([]byte(body), []byte(`"request_id":""`))))
		case strings.Contains(com, "demo-client key"):
			seen["read"] = true
			var v map[string]any
			if err := json.Unmarshal([]byte(outp), &v); err != nil || v["type"] != nil || v["status"] != nil {
				fail("want the demo API's JSON, not a problem document")
			}
			if strings.Contains(c.line, "/ord-1") && v["id"] != "ord-1" {
				fail("want order ord-1")
			}
			if strings.HasSuffix(c.line, "/v1/orders") && v["orders"] == nil {
				fail("want the list of orders")
			}
		case strings.Contains(com, "403") && strings.Contains(com, "201"):
			seen["write"] = true
			want := 403
			if len(groups["write"]) == 1 {
				want = 201
			}
			groups["write"] = append(groups["write"], body)
			if status != want {
				fail("want %d (the comment: %q), got %d", want, c.comment, status)
			}
		case strings.Contains(com, "oauth2"):
			if strings.Contains(c.line, "Authorization: Bearer") {
				seen["oauth-call"] = true
				var v map[string]any
				if err := json.Unmarshal([]byte(outp), &v); err != nil || v["id"] != "ord-1" {
					fail("want order ord-1, fetched with the access token")
				}
				break
			}
			seen["oauth-token"] = true
			var v map[string]any
			if err := json.Unmarshal([]byte(outp), &v); err != nil || v["token_type"] != "Bearer" || v["access_token"] == nil {
				fail("want an OAuth2 token response")
			}
		case strings.Contains(com, "verify its tokens"):
			seen["jwks"] = true
			var v struct{ Keys []map[string]any }
			if err := json.Unmarshal([]byte(outp), &v); err != nil || len(v.Keys) == 0 || v.Keys[0]["d"] != nil {
				fail("want the public JWKS (and no private key material)")
			}
		case strings.Contains(com, "stack trace"):
			seen["crash"] = true
			if status != 500 {
				fail("want 500, got %d", status)
			}
			for _, leak := range []string{"goroutine", "panic", "10.0.3.7", "orders-backend", "Express"} {
				if strings.Contains(outp, leak) {
					fail("the masked 500 still shows %q", leak)
				}
			}
		case strings.Contains(com, "ambiguous path"):
			seen["ambiguous"] = true
			if status != 400 {
				fail("want 400, got %d", status)
			}
		case strings.Contains(com, "rate limits"):
			seen["ratelimit"] = true
			low := strings.ToLower(outp)
			if !strings.Contains(low, `ratelimit-policy: "route:consumer";q=20;w=60`) || !strings.Contains(low, `ratelimit: "route:consumer";r=`) {
				fail("want the RateLimit-Policy and RateLimit headers of the route's consumer limit")
			}
		case strings.Contains(com, "admin listener"):
			switch {
			case strings.Contains(c.line, "/metrics"):
				seen["metrics"] = true
				if !strings.Contains(outp, `breakwater_requests_total{code_class="2xx",method="GET",route="orders-read"}`) {
					fail("want the request counters of the demo's routes")
				}
			case strings.Contains(c.line, "/admin/events"):
				seen["events"] = true
				if !json.Valid([]byte(outp)) || !strings.Contains(outp, `"auth_failure"`) {
					fail("want the security events as JSON, with the demo's failed authentications")
				}
			case strings.Contains(c.line, "/readyz"):
				seen["readyz"] = true
				if !strings.Contains(outp, "ready") {
					fail("want the readiness answer")
				}
			case strings.Contains(c.line, "/admin/config"):
				seen["config"] = true
				if !json.Valid([]byte(outp)) || !strings.Contains(outp, "orders-read") {
					fail("want the running config as JSON")
				}
			default:
				fail("unrecognised admin command")
			}
		default:
			fail("a command under a comment this test does not know; teach the test what it should do")
		}
	}
	for _, k := range []string{"public", "401", "read", "write", "crash", "ratelimit", "ambiguous", "readyz", "config", "metrics", "events",
		"oauth-token", "oauth-call", "jwks"} {
		if !seen[k] {
			t.Errorf("the demo printed no %q command", k)
		}
	}
	if b := groups["401"]; len(b) >= 2 {
		for i := 1; i < len(b); i++ {
			if b[i] != b[0] {
				t.Errorf("the demo's 401 bodies differ (request_id removed):\n%q\n%q", b[0], b[i])
			}
		}
	}
	if n := len(groups["write"]); n != 2 {
		t.Errorf("the demo printed %d write commands, want 2 (403 then 201)", n)
	}

	// Ctrl-C stops it cleanly and removes the temporary directory.
	p.signal(os.Interrupt)
	code, ok := p.wait(20 * time.Second)
	if !ok {
		t.Fatalf("breakwater demo did not exit within 20s of SIGINT%s", p.output())
	}
	p.checkExit(t, code)
	p.stopOnce.Do(func() {})
	if !strings.HasPrefix(demoDir, tmp) {
		t.Errorf("the demo directory %s is not under TMPDIR %s", demoDir, tmp)
	}
	if _, err := os.Stat(demoDir); !os.IsNotExist(err) {
		t.Errorf("the demo's temporary directory %s is still there after Ctrl-C (stat: %v)", demoDir, err)
	}
}
