package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/testutil"
)

const sharedLimitsConfig = `version: 1
server:
  https: "{{.HTTPS}}"
  admin: "{{.Admin}}"
  data_dir: "{{.Data}}"
  shutdown_timeout: 5s
tls:
  self_signed: true
admin:
  token_hash: "{{.AdminHash}}"
store:
  redis: "{{.Redis}}"
  on_unavailable: {{.OnUnavailable}}
routes:
  - name: burst
    path: /burst/**
    upstream: { targets: ["{{.Up}}"] }
    auth: none
    rate_limits: [{ key: route, limit: "50/m" }]
  - name: steady
    path: /steady/**
    upstream: { targets: ["{{.Up}}"] }
    auth: none
    rate_limits: [{ key: route, limit: "20/s" }]
`

// startShared starts n gateways sharing one Redis.
func startShared(t *testing.T, n int, redisURL, onUnavailable string) []*gateway {
	t.Helper()
	up := newUpstream(t)
	gws := make([]*gateway, n)
	for i := range gws {
		gws[i] = startGateway(t, sharedLimitsConfig, map[string]string{"Up": up.URL, "Redis": redisURL, "OnUnavailable": onUnavailable})
	}
	return gws
}

// Three gateways sharing one Redis enforce a limit as one: a burst from many
// clients across all three admits exactly N, and a sustained run at three
// times the rate admits what the rate allows, within 1%.
func TestSharedLimitsAcrossInstances(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	gws := startShared(t, 3, r.URL(), "deny")
	clients := make([]*http.Client, len(gws))
	for i, g := range gws {
		clients[i] = g.client(t)
	}

	var ok, limited, other atomic.Int32
	count := func(code int) {
		switch code {
		case 200:
			ok.Add(1)
		case 429:
			limited.Add(1)
		default:
			other.Add(1)
		}
	}
	var wg sync.WaitGroup
	for i := range 150 {
		wg.Go(func() {
			resp, _ := gws[i%3].get(t, clients[i%3], fmt.Sprintf("/burst/%d", i), nil)
			count(resp.StatusCode)
		})
	}
	wg.Wait()
	if ok.Load() != 50 || limited.Load() != 100 || other.Load() != 0 {
		t.Fatalf("burst of 150 across 3 gateways, limit 50/m: %d admitted, %d limited, %d other; want exactly 50, 100, 0",
			ok.Load(), limited.Load(), other.Load())
	}

	// 60 requests a second for 10 s against 20/s: the bucket admits its 20,
	// then one every 50 ms.
	ok.Store(0)
	limited.Store(0)
	const rate, seconds = 60, 10
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	start := time.Now()
	for i := range rate * seconds {
		<-tick.C
		wg.Go(func() {
			resp, _ := gws[i%3].get(t, clients[i%3], "/steady/x", nil)
			count(resp.StatusCode)
		})
	}
	// The bucket refills while requests are being sent: count from the
	// first to the last send (not to the last answer).
	elapsed := time.Since(start)
	wg.Wait()
	want := 20 + elapsed.Seconds()*20
	got := float64(ok.Load())
	if other.Load() != 0 || got < want*0.99-1 || got > want*1.01+1 {
		t.Errorf("sustained 3× the rate for %s: %v admitted (%d other); want %.0f ± 1%%", elapsed.Round(time.Millisecond), got, other.Load(), want)
	}
}

// Redis stopped in the middle: on_unavailable decides (local: this
// instance's own limits; deny: 503), nothing crashes, and when Redis comes
// back the gateways share limits again by themselves.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"local", "deny"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			r := testutil.StartRedis(t)
			g := startShared(t, 1, r.URL(), mode)[0]
			c := g.client(t)
			if resp, _ := g.get(t, c, "/steady/before", nil); resp.StatusCode != 200 {
				t.Fatalf("before the outage: %d", resp.StatusCode)
			}
			r.Stop()
			want := map[string]int{"local": 200, "deny": 503}[mode]
			for i := range 5 {
				resp, body := g.get(t, c, "/steady/during", nil)
				if resp.StatusCode != want {
					t.Fatalf("request %d during the outage: %d; want %d (on_unavailable: %s)\n%s%s", i, resp.StatusCode, want, mode, body, g.output())
				}
			}
			if resp, _ := g.get(t, c, "/public-nolimit", nil); resp.StatusCode == 503 {
				t.Error("a route without limits was refused during the outage")
			}
			r.Start()
			deadline := time.Now().Add(45 * time.Second)
			for {
				resp, _ := g.get(t, c, "/steady/after", nil)
				if resp.StatusCode == 200 && storeBreakerClosed(t, g) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the gateway did not use Redis again within 45s after it came back (last status %d)%s", resp.StatusCode, g.output())
				}
				time.Sleep(200 * time.Millisecond)
			}
			if n := storeMetric(t, g, "breakwater_store_fallbacks_total"); n < 5 {
				t.Errorf("breakwater_store_fallbacks_total = %v; want at least the 5 requests of the outage", n)
			}
		})
	}
}

func storeMetric(t *testing.T, g *gateway, name string) float64 {
	t.Helper()
	_, body := adminRequest(t, g, "GET", "/metrics", adminToken)
	m := regexp.MustCompile(`(?m)^` + name + `(\{[^}]*\})? ([0-9.e+]+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in /metrics", name)
	}
	v, _ := strconv.ParseFloat(string(m[2]), 64)
	return v
}

func storeBreakerClosed(t *testing.T, g *gateway) bool {
	return storeMetric(t, g, "breakwater_store_breaker_open") == 0
}

const sharedTokensConfig = `version: 1
server:
  https: "{{.HTTPS}}"
  admin: "{{.Admin}}"
  data_dir: "{{.Data}}"
  shutdown_timeout: 5s
tls:
  self_signed: true
admin:
  token_hash: "{{.AdminHash}}"
store:
  redis: "{{.Redis}}"
authenticators:
  own: { type: jwt, issuer: self }
token_endpoint:
  issuer: "https://gateway.example.com"
consumers:
  - id: acme
    credentials: [ { oauth_client: { client_id: acme-app, secret_hash: "{{.ClientHash}}" } } ]
routes:
  - { name: api, path: "/api/**", upstream: { targets: ["{{.Up}}"] }, auth: [own] }
`

// Two instances with data directories of their own share signing keys and
// revocations through Redis: a token issued by one works on the other, and
// revoked on one, it stops working on both.
func TestTokensAcrossInstances(t *testing.T) {
	t.Parallel()
	r := testutil.StartRedis(t)
	up := newUpstream(t)
	vars := map[string]string{"Up": up.URL, "Redis": r.URL(), "ClientHash": digest(clientSecret)}
	a := startGateway(t, sharedTokensConfig, vars)
	b := startGateway(t, sharedTokensConfig, vars)
	ca, cb := a.client(t), b.client(t)

	form := func(g *gateway, c *http.Client, path string, v url.Values) (*http.Response, []byte) {
		t.Helper()
		return g.do(t, c, "POST", path, strings.NewReader(v.Encode()), http.Header{
			"Content-Type":  {"application/x-www-form-urlencoded"},
			"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("acme-app:"+clientSecret))},
		})
	}
	resp, body := form(a, ca, "/oauth2/token", url.Values{"grant_type": {"client_credentials"}})
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &tok) != nil || tok.AccessToken == "" {
		t.Fatalf("token from a: %d %s", resp.StatusCode, body)
	}
	bearer := http.Header{"Authorization": {"Bearer " + tok.AccessToken}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, _ := b.get(t, cb, "/api/x", bearer)
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b does not accept a's token: %d%s", resp.StatusCode, b.output())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if resp, _ := form(b, cb, "/oauth2/revoke", url.Values{"token": {tok.AccessToken}}); resp.StatusCode != 200 {
		t.Fatalf("revoke on b: %d", resp.StatusCode)
	}
	for _, g := range []struct {
		gw *gateway
		c  *http.Client
	}{{a, ca}, {b, cb}} {
		if resp, _ := g.gw.get(t, g.c, "/api/x", bearer); resp.StatusCode != 401 {
			t.Errorf("revoked token on %s: %d, want 401", g.gw.https, resp.StatusCode)
		}
	}
}
