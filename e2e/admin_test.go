package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func adminRequest(t *testing.T, g *gateway, method, path, token string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+g.admin+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := plainClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s on the admin listener: %v%s", method, path, err, g.output())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

var digestLine = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func TestAdmin(t *testing.T) {
	t.Parallel()
	var raw [24]byte
	rand.Read(raw[:])
	token := "e2e-admin-" + hex.EncodeToString(raw[:])
	out, errOut, code := runCmd(t, token+"\n", nil, "secret", "hash")
	tokenHash := strings.TrimSpace(out)
	if code != 0 || !digestLine.MatchString(tokenHash) {
		t.Fatalf("breakwater secret hash: exit %d, stdout %q, stderr %q; want 0 and sha256:<hex>", code, out, errOut)
	}

	cfg := strings.Replace(baseConfig, `token_hash: "{{.AdminHash}}"`, `token_hash: "`+tokenHash+`"`, 1)
	up := newUpstream(t)
	// Only api_key credentials exist in this version (http_signature
	// credentials, whose secret would be a secret.Value, are refused by the
	// validator), so the secrets to look for are digests and the token.
	g := startGateway(t, cfg, map[string]string{"Up": up.URL})

	t.Run("health and readiness need no token", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz"} {
			resp, body := adminRequest(t, g, "GET", p, "")
			if resp.StatusCode != 200 {
				t.Errorf("GET %s: %d %q, want 200", p, resp.StatusCode, body)
			}
		}
	})

	t.Run("everything else needs the token", func(t *testing.T) {
		for _, tc := range []struct{ method, path, token string }{
			{"GET", "/admin/config", ""},
			{"GET", "/admin/config", "wrong-token"},
			{"GET", "/admin/config", tokenHash},
			{"GET", "/admin/config", strings.TrimPrefix(tokenHash, "sha256:")},
			{"POST", "/admin/reload", ""},
			{"POST", "/admin/reload", "wrong-token"},
			{"GET", "/admin/stats", ""},
			{"GET", "/metrics", ""},
			{"GET", "/admin/inventory", ""},
			{"GET", "/admin/bans", ""},
		} {
			resp, body := adminRequest(t, g, tc.method, tc.path, tc.token)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s %s with token %q: %d %q, want 401", tc.method, tc.path, tc.token, resp.StatusCode, body)
				continue
			}
			if resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s: 401 without WWW-Authenticate", tc.method, tc.path)
			}
		}
	})

	t.Run("config with the token, secrets redacted", func(t *testing.T) {
		resp, body := adminRequest(t, g, "GET", "/admin/config", token)
		if resp.StatusCode != 200 {
			t.Fatalf("GET /admin/config with the token: %d %q%s", resp.StatusCode, body, g.output())
		}
		if !json.Valid(body) {
			t.Errorf("/admin/config is not JSON: %q", body)
		}
		s := string(body)
		for _, want := range []string{"reader", "writer", "/private/**"} {
			if !strings.Contains(s, want) {
				t.Errorf("/admin/config does not show %q: is it the running config?\n%s", want, tail(s, 3000))
			}
		}
		for what, secret := range map[string]string{
			"reader API key digest": sha256Hex(readerKey),
			"writer API key digest": sha256Hex(writerKey),
			"reader API key":        readerKey,
			"admin token":           token,
			"admin token digest":    strings.TrimPrefix(tokenHash, "sha256:"),
		} {
			if strings.Contains(s, secret) {
				t.Errorf("/admin/config shows the %s in full", what)
			}
		}
	})

	t.Run("metrics with the token", func(t *testing.T) {
		g.get(t, g.client(t), "/public/metered", nil)
		g.get(t, g.client(t), "/private/x", http.Header{"X-API-Key": {"bw_not_a_key_of_anyone"}})
		resp, body := adminRequest(t, g, "GET", "/metrics", token)
		if resp.StatusCode != 200 {
			t.Fatalf("GET /metrics with the token: %d %q%s", resp.StatusCode, body, g.output())
		}
		s := string(body)
		for _, want := range []string{
			`breakwater_requests_total{code_class="2xx",method="GET",route="public"}`,
			`breakwater_auth_failures_total{authenticator="keys",reason="unknown_key",route="private"} 1`,
			`breakwater_build_info{`,
		} {
			if !strings.Contains(s, want) {
				t.Errorf("/metrics lacks %s:\n%s", want, tail(s, 3000))
			}
		}
		for _, leak := range []string{"metered", "bw_not_a_key_of_anyone"} {
			if strings.Contains(s, leak) {
				t.Errorf("/metrics shows %q: a raw path or credential became a label", leak)
			}
		}
		if resp, _ := adminRequest(t, g, "GET", "/metrics", ""); resp.StatusCode != 401 {
			t.Errorf("GET /metrics without the token: %d, want 401", resp.StatusCode)
		}

		// The failed authentication above is a security event.
		resp, body = adminRequest(t, g, "GET", "/admin/events?kind=auth_failure", token)
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"kind":"auth_failure"`) || !strings.Contains(string(body), `"route":"private"`) {
			t.Errorf("GET /admin/events: %d %s", resp.StatusCode, tail(string(body), 2000))
		}
		if strings.Contains(string(body), "bw_not_a_key_of_anyone") {
			t.Errorf("/admin/events shows the presented key")
		}
		if resp, _ := adminRequest(t, g, "GET", "/admin/events", ""); resp.StatusCode != 401 {
			t.Errorf("GET /admin/events without the token: %d, want 401", resp.StatusCode)
		}
	})

	t.Run("reload", func(t *testing.T) {
		resp, body := adminRequest(t, g, "POST", "/admin/reload", token)
		if resp.StatusCode != 200 {
			t.Errorf("POST /admin/reload with the token: %d %q, want 200%s", resp.StatusCode, body, g.output())
		}
		resp, body = g.get(t, g.client(t), "/public/after-reload", nil)
		if resp.StatusCode != 200 {
			t.Errorf("after POST /admin/reload: GET /public/after-reload %d %q", resp.StatusCode, body)
		}
	})
}
