package gateway

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/admin"
	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/reqctx"
	"github.com/breakwater/breakwater/internal/secret"
	"github.com/breakwater/breakwater/internal/state"
	"github.com/breakwater/breakwater/internal/telemetry"
	"github.com/prometheus/client_golang/prometheus"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// withBanClock gives the gateway's ban decisions and ban store a fake
// clock (before any request).
func withBanClock(g *Gateway) *fakeClock {
	c := &fakeClock{t: time.Now()}
	d := g.current.Load().defence
	d.mem = state.NewMemoryBans(state.BanOptions{Now: c.Now})
	d.bans, d.now = d.mem, c.Now
	return c
}

func banConfig(bans string) string {
	return strings.Replace(baseConfig, `server: { admin: "off", data_dir: "${DATA}" }`,
		`server: { admin: "off", data_dir: "${DATA}", trusted_proxies: ["10.0.0.0/8"] }`, 1) + "bans: " + bans + "\n"
}

func banSend(g *Gateway, method, target, peer, xff, key string) int {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = peer + ":4000"
	if xff != "" {
		r.Header.Set("X-Forwarded-For", xff)
	}
	if key != "" {
		r.Header.Set("X-API-Key", key)
	}
	w := httptest.NewRecorder()
	g.ServeHTTP(w, r)
	return w.Code
}

func TestBanAfterAuthFailures(t *testing.T) {
	g, reg := banGateway(t, banConfig(`{ auth_failures: "3/m", duration: 10m }`))
	clk := withBanClock(g)
	const ip = "192.0.2.10"
	for i := range 3 {
		if c := banSend(g, "GET", "/items/1", ip, "", "bw_wrong"); c != 401 {
			t.Fatalf("failure %d: %d", i, c)
		}
	}
	if c := banSend(g, "GET", "/items/1", ip, "", testKey); c != 200 {
		t.Fatalf("three failures in a minute are allowed: %d", c)
	}
	if c := banSend(g, "GET", "/items/1", ip, "", "bw_wrong"); c != 401 {
		t.Fatalf("fourth failure: %d", c)
	}
	// Banned now: even with a good key, even on a public route, even
	// rotating X-Forwarded-For (the peer is not a trusted proxy).
	for i, xff := range []string{"", "203.0.113.1", "10.0.0.1", "198.51.100.1, 10.0.0.2"} {
		if c := banSend(g, "GET", "/items/1", ip, xff, testKey); c != 403 {
			t.Fatalf("banned client %d: %d", i, c)
		}
	}
	if c := banSend(g, "GET", "/public/a", ip, "", ""); c != 403 {
		t.Fatalf("banned client on a public route: %d", c)
	}
	if c := banSend(g, "GET", "/items/1", "192.0.2.11", "", testKey); c != 200 {
		t.Fatalf("another client: %d", c)
	}
	evs := g.Events().List(telemetry.EventQuery{Kind: telemetry.EventBan})
	if len(evs) != 1 || evs[0].ClientIP != ip || evs[0].Severity != "high" || evs[0].Detail["key"] != "ip:"+ip ||
		evs[0].Reason != "auth_failures over 3/m" || evs[0].Detail["duration"] != "10m0s" {
		t.Fatalf("ban events: %+v", evs)
	}
	if n := metricValue(t, reg, "breakwater_bans_total", "auth_failures"); n != 1 {
		t.Fatalf("bans metric %v", n)
	}
	// Refusals of a ban are not events one by one, and do not extend it.
	if n := len(g.Events().List(telemetry.EventQuery{Kind: telemetry.EventForbidden})); n != 0 {
		t.Fatalf("%d forbidden events for ban refusals", n)
	}
	bans, _, _ := g.ListBans(context.Background(), 10)
	if len(bans) != 1 || bans[0].Until.Sub(clk.Now()) != 10*time.Minute {
		t.Fatalf("bans: %+v", bans)
	}
	// A reload keeps the ban.
	if err := g.Apply(g.Config()); err != nil {
		t.Fatal(err)
	}
	if c := banSend(g, "GET", "/public/a", ip, "", ""); c != 403 {
		t.Fatalf("a reload lifted the ban: %d", c)
	}
	// Lifted by time.
	clk.Add(10*time.Minute + time.Second)
	if c := banSend(g, "GET", "/items/1", ip, "", testKey); c != 200 {
		t.Fatalf("after the ban: %d", c)
	}
}

func TestBanFollowsTrustedProxies(t *testing.T) {
	g := newTestGateway(t, banConfig(`{ auth_failures: "1/m" }`))
	withBanClock(g)
	// Behind the trusted proxy 10.0.0.1: the client named in X-Forwarded-For is banned, not the proxy.
	for range 2 {
		banSend(g, "GET", "/items/1", "10.0.0.1", "203.0.113.5", "bw_wrong")
	}
	if c := banSend(g, "GET", "/public/a", "10.0.0.1", "203.0.113.5", ""); c != 403 {
		t.Fatalf("forwarded client not banned: %d", c)
	}
	if c := banSend(g, "GET", "/public/a", "10.0.0.1", "203.0.113.6", ""); c != 200 {
		t.Fatalf("another client behind the same proxy: %d", c)
	}
	// The same address connecting directly is the same client.
	if c := banSend(g, "GET", "/public/a", "203.0.113.5", "", ""); c != 403 {
		t.Fatalf("banned client connecting directly: %d", c)
	}
	// An untrusted peer cannot claim to be someone else, nor frame them.
	for range 3 {
		banSend(g, "GET", "/items/1", "192.0.2.99", "198.51.100.77", "bw_wrong")
	}
	if c := banSend(g, "GET", "/public/a", "10.0.0.1", "198.51.100.77", ""); c != 200 {
		t.Fatalf("an untrusted peer framed another address: %d", c)
	}
	if c := banSend(g, "GET", "/public/a", "192.0.2.99", "198.51.100.78", ""); c != 403 {
		t.Fatalf("the untrusted peer escaped its ban: %d", c)
	}
}

func TestBanIPv6By64(t *testing.T) {
	g := newTestGateway(t, banConfig(`{ auth_failures: "1/m" }`))
	withBanClock(g)
	banSend(g, "GET", "/items/1", "[2001:db8:1:2::1]", "", "bw_wrong")
	banSend(g, "GET", "/items/1", "[2001:db8:1:2::ffff]", "", "bw_wrong")
	if c := banSend(g, "GET", "/public/a", "[2001:db8:1:2:abcd::9]", "", ""); c != 403 {
		t.Fatalf("another address of the /64: %d", c)
	}
	if c := banSend(g, "GET", "/public/a", "[2001:db8:1:3::1]", "", ""); c != 200 {
		t.Fatalf("another /64: %d", c)
	}
}

func TestBanConsumerAfterClientErrors(t *testing.T) {
	g := newTestGateway(t, banConfig(`{ client_errors: "2/m", key: [consumer] }`))
	clk := withBanClock(g)
	for i := range 3 { // missing scope: 403, from rotating addresses
		if c := banSend(g, "POST", "/items", "192.0.2."+strconv.Itoa(20+i), "", testKey); c != 403 {
			t.Fatalf("request %d: %d", i, c)
		}
	}
	if c := banSend(g, "GET", "/items/1", "192.0.2.30", "", testKey); c != 403 {
		t.Fatalf("banned consumer: %d", c)
	}
	if c := banSend(g, "GET", "/public/a", "192.0.2.20", "", ""); c != 200 {
		t.Fatalf("key: [consumer] must not ban the address: %d", c)
	}
	evs := g.Events().List(telemetry.EventQuery{Kind: telemetry.EventBan})
	if len(evs) != 1 || evs[0].Consumer != "acme" || evs[0].Detail["key"] != "consumer:acme" {
		t.Fatalf("events: %+v", evs)
	}
	before, _, _ := g.ListBans(context.Background(), 1)
	clk.Add(time.Minute)
	for range 5 {
		banSend(g, "GET", "/items/1", "192.0.2.30", "", testKey)
	}
	after, _, _ := g.ListBans(context.Background(), 1)
	if len(after) != 1 || !after[0].Until.Equal(before[0].Until) {
		t.Fatalf("refusals of a ban extended it: %v → %v", before, after)
	}
}

func TestBansOffByDefault(t *testing.T) {
	g := newTestGateway(t, baseConfig)
	for range 50 {
		banSend(g, "GET", "/items/1", "192.0.2.1", "", "bw_wrong")
	}
	if c := banSend(g, "GET", "/items/1", "192.0.2.1", "", testKey); c != 200 {
		t.Fatalf("banned without a bans section: %d", c)
	}
}

// adminGateway adapts a Gateway to admin.Gateway for the tests.
type adminGateway struct{ *Gateway }

func (adminGateway) Ready() bool { return true }

func TestBanLiftedByAdmin(t *testing.T) {
	const token = "bwadm_test"
	yaml := strings.Replace(banConfig(`{ auth_failures: "1/m", client_errors: "100/m", key: [ip, consumer] }`),
		`server: { admin: "off",`, `admin: { token_hash: "`+secret.SumString(token).String()+`" }
server: { admin: "127.0.0.1:0",`, 1)
	g, reg := banGateway(t, yaml)
	withBanClock(g)
	const ip = "192.0.2.40"
	banSend(g, "GET", "/items/1", ip, "", "bw_wrong")
	banSend(g, "GET", "/items/1", ip, "", "bw_wrong")
	if c := banSend(g, "GET", "/public/a", ip, "", ""); c != 403 {
		t.Fatalf("not banned: %d", c)
	}
	h := admin.New(admin.Options{Gateway: adminGateway{g}, Reload: func(context.Context) error { return nil },
		Stats: func() any { return nil }, Bans: g})
	call := func(method, target string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, target, nil)
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := call("GET", "/admin/bans"); w.Code != 200 || !strings.Contains(w.Body.String(), `"key": "ip:`+ip+`"`) ||
		!strings.Contains(w.Body.String(), `"reason": "auth_failures"`) || !strings.Contains(w.Body.String(), `"until": "`) {
		t.Fatalf("list: %d %s", w.Code, w.Body)
	}
	if w := call("DELETE", "/admin/bans/ip:"+ip); w.Code != 200 {
		t.Fatalf("lift: %d %s", w.Code, w.Body)
	}
	if c := banSend(g, "GET", "/public/a", ip, "", ""); c != 200 {
		t.Fatalf("after lifting: %d", c)
	}
	evs := g.Events().List(telemetry.EventQuery{Kind: telemetry.EventBanLifted})
	if len(evs) != 1 || evs[0].ClientIP != ip || evs[0].Detail["key"] != "ip:"+ip {
		t.Fatalf("lift events: %+v", evs)
	}
	if n := metricValue(t, reg, "breakwater_bans_lifted_total", ""); n != 1 {
		t.Fatalf("lifted metric %v", n)
	}
	if w := call("DELETE", "/admin/bans/ip:"+ip); w.Code != 404 {
		t.Fatalf("lift twice: %d", w.Code)
	}
}

func TestBanPersistence(t *testing.T) {
	c := &fakeClock{t: time.Now()}
	m := state.NewMemoryBans(state.BanOptions{Now: c.Now})
	_, _ = m.Ban(context.Background(), state.Ban{Key: "ip:192.0.2.1", Reason: "auth_failures", Until: c.Now().Add(time.Hour)})
	dir := t.TempDir()
	if err := saved("ban", bansFile(dir), m).store(c.Now()); err != nil {
		t.Fatal(err)
	}
	r := state.NewMemoryBans(state.BanOptions{Now: c.Now})
	saved("ban", bansFile(dir), r).load(c.Now(), slog.New(slog.DiscardHandler))
	if ok, _ := r.Banned(context.Background(), "ip:192.0.2.1"); !ok {
		t.Fatal("ban not restored")
	}
	var buf bytes.Buffer
	_ = r.Snapshot(&buf)
	if !strings.Contains(buf.String(), "ip:192.0.2.1") {
		t.Fatal(buf.String())
	}
}

// banGateway is newTestGateway with a metrics registry the test can read.
func banGateway(t *testing.T, yaml string) (*Gateway, *prometheus.Registry) {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(up.Close)
	vars := map[string]string{"UPSTREAM": up.URL, "KEY_HASH": secret.SumString(testKey).String(), "DATA": t.TempDir()}
	cfg, err := config.Parse([]byte(yaml), "", func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	reg := prometheus.NewRegistry()
	m, err := telemetry.NewMetrics(reg, telemetry.BuildInfo{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(context.Background(), cfg, Deps{Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g, reg
}

// metricValue is the value of the series of name (with reason, when not "").
func metricValue(t *testing.T, reg *prometheus.Registry, name, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if reason == "" || len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no series %s{%s}", name, reason)
	return 0
}

// BenchmarkBanCheck is the cost of the ban check on the request path with
// bans on: nobody banned (one atomic load), and 10,000 others banned.
func BenchmarkBanCheck(b *testing.B) {
	for _, banned := range []int{0, 10000} {
		b.Run(strconv.Itoa(banned)+"-banned", func(b *testing.B) {
			g := newTestGateway(b, banConfig(`{ auth_failures: "10/m" }`))
			s := g.current.Load()
			for i := range banned {
				_, _ = s.defence.bans.Ban(context.Background(), state.Ban{Key: "ip:10.1." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256), Until: time.Now().Add(time.Hour)})
			}
			r := httptest.NewRequest("GET", "/public/a", nil)
			st := &reqctx.State{ClientIP: netip.MustParseAddr("192.0.2.1"), ClientIPText: "192.0.2.1"}
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				if g.banned(s, w, r, st) {
					b.Fatal("banned")
				}
			}
		})
	}
}
