package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// rateLimitConfig is headerSection with a daily quota on the reader, and a
// public route limited per client address.
var rateLimitConfig = strings.Replace(headerSection, `      - api_key: "{{.ReaderHash}}"
`, `      - api_key: "{{.ReaderHash}}"
    rate_limits: ["3/d"]
`, 1) + `routes:
  - name: public
    path: /public/**
    upstream: { targets: ["{{.Up}}"], timeout: 5s }
    auth: none
    rate_limits: [ { key: ip, limit: "5/m" } ]
  - name: private
    path: /private/**
    methods: [GET]
    upstream: { targets: ["{{.Up}}"], timeout: 5s }
    auth: [keys]
    scopes: [read]
`

func TestRateLimits(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	g := startGateway(t, rateLimitConfig, map[string]string{"Up": up.URL})
	c := g.client(t)

	t.Run("per IP, X-Forwarded-For rotation does not escape it", func(t *testing.T) {
		var codes []int
		for i := range 8 {
			resp, body := g.get(t, c, "/public/x", http.Header{"X-Forwarded-For": {"10.0.0." + string(rune('1'+i))}})
			codes = append(codes, resp.StatusCode)
			if got := resp.Header.Get("RateLimit-Policy"); got != `"route:ip";q=5;w=60` {
				t.Errorf("RateLimit-Policy %q", got)
			}
			if resp.StatusCode == 429 {
				if resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"status":429`) {
					t.Errorf("429 without Retry-After or problem body: %v %s", resp.Header, body)
				}
			}
		}
		want := []int{200, 200, 200, 200, 200, 429, 429, 429}
		for i := range want {
			if codes[i] != want[i] {
				t.Fatalf("statuses %v, want %v%s", codes, want, g.output())
			}
		}
	})

	t.Run("consumer quota, other consumers unaffected", func(t *testing.T) {
		for i, want := range []int{200, 200, 200, 429} {
			resp, _ := g.get(t, c, "/private/x", http.Header{"X-API-Key": {readerKey}})
			if resp.StatusCode != want {
				t.Fatalf("reader request %d: %d, want %d", i, resp.StatusCode, want)
			}
			if want == 429 && !strings.HasPrefix(resp.Header.Get("RateLimit"), `"consumer";r=0;t=`) {
				t.Errorf("RateLimit %q", resp.Header.Get("RateLimit"))
			}
		}
		if resp, _ := g.get(t, c, "/private/x", http.Header{"X-API-Key": {writerKey}}); resp.StatusCode != 200 {
			t.Fatalf("writer was limited by the reader's quota: %d", resp.StatusCode)
		}
	})
}
