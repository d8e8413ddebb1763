package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/authn"
	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/reqctx"
	"github.com/breakwater/breakwater/internal/secret"
	"github.com/breakwater/breakwater/internal/telemetry"
)

const otherKey = "bw_otherkey"

// limitsConfig has two consumers (testKey: acme, otherKey: beta), a trusted
// proxy range, and one route per key kind, each allowing one request a
// minute per key.
var limitsConfig = `
version: 1
server: { admin: "off", data_dir: "${DATA}", trusted_proxies: ["10.0.0.0/8"] }
tls: { self_signed: true }
authenticators:
  keys: { type: api_key }
consumers:
  - { id: acme, credentials: [ { api_key: "${KEY_HASH}" } ] }
  - { id: beta, credentials: [ { api_key: "` + secret.SumString(otherKey).String() + `" } ] }
routes:
  - { name: by-consumer, path: /consumer, upstream: { targets: ["${UPSTREAM}"] }, auth: keys, rate_limits: [ { key: consumer, limit: 1/m } ] }
  - { name: by-ip, path: /ip, upstream: { targets: ["${UPSTREAM}"] }, auth: none, rate_limits: [ { key: ip, limit: 1/m } ] }
  - { name: by-route, path: /route, upstream: { targets: ["${UPSTREAM}"] }, auth: none, rate_limits: [ { key: route, limit: 1/m } ] }
  - { name: by-header, path: /header, upstream: { targets: ["${UPSTREAM}"] }, auth: none, rate_limits: [ { key: "header:x-tenant", limit: 1/m } ] }
  - { name: by-consumer-ip, path: /consumer-ip, upstream: { targets: ["${UPSTREAM}"] }, auth: keys, rate_limits: [ { key: "consumer+ip", limit: 1/m } ] }
  - { name: by-header-ip, path: /header-ip, upstream: { targets: ["${UPSTREAM}"] }, auth: none, rate_limits: [ { key: "header:X-Tenant+ip", limit: 1/m } ] }
  - { name: by-claim, path: /claim, upstream: { targets: ["${UPSTREAM}"] }, auth: keys, rate_limits: [ { key: "claim:tenant", limit: 1/m } ] }
`

type limitReq struct {
	peer, xff, key string
	tenant         []string // X-Tenant values; nil: none
}

func (lr limitReq) send(g *Gateway, target string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", target, nil)
	r.RemoteAddr = lr.peer + ":4000"
	if lr.xff != "" {
		r.Header.Set("X-Forwarded-For", lr.xff)
	}
	if lr.key != "" {
		r.Header.Set("X-API-Key", lr.key)
	}
	for _, v := range lr.tenant {
		r.Header.Add("X-Tenant", v)
	}
	w := httptest.NewRecorder()
	g.ServeHTTP(w, r)
	return w
}

// TestLimitKeyKinds: for each key kind, whether a second request shares the
// first one's counter (429) or has its own (200).
func TestLimitKeyKinds(t *testing.T) {
	a := limitReq{peer: "192.0.2.1", key: testKey, tenant: []string{"t1"}}
	for _, tc := range []struct {
		name, target string
		second       limitReq
		shared       bool
	}{
		{"consumer: same consumer, other IP", "/consumer", limitReq{peer: "192.0.2.2", key: testKey}, true},
		{"consumer: other consumer, same IP", "/consumer", limitReq{peer: "192.0.2.1", key: otherKey}, false},
		{"ip: same IP, other header", "/ip", limitReq{peer: "192.0.2.1", tenant: []string{"t2"}}, true},
		{"ip: other IP", "/ip", limitReq{peer: "192.0.2.2"}, false},
		{"ip: XFF from an untrusted peer is ignored", "/ip", limitReq{peer: "192.0.2.1", xff: "203.0.113.9"}, true},
		{"ip: XFF from a trusted proxy names the client", "/ip", limitReq{peer: "10.1.1.1", xff: "203.0.113.9"}, false},
		{"route: everyone", "/route", limitReq{peer: "198.51.100.7"}, true},
		{"header: same value, other IP", "/header", limitReq{peer: "192.0.2.2", tenant: []string{"t1"}}, true},
		{"header: other value", "/header", limitReq{peer: "192.0.2.1", tenant: []string{"t2"}}, false},
		{"header: other case of the value", "/header", limitReq{peer: "192.0.2.1", tenant: []string{"T1"}}, false},
		{"header: missing", "/header", limitReq{peer: "192.0.2.1"}, false},
		{"header: split in two fields", "/header", limitReq{peer: "192.0.2.1", tenant: []string{"t", "1"}}, false},
		{"consumer+ip: same both", "/consumer-ip", limitReq{peer: "192.0.2.1", key: testKey}, true},
		{"consumer+ip: other IP", "/consumer-ip", limitReq{peer: "192.0.2.2", key: testKey}, false},
		{"consumer+ip: other consumer", "/consumer-ip", limitReq{peer: "192.0.2.1", key: otherKey}, false},
		{"header+ip: same both", "/header-ip", limitReq{peer: "192.0.2.1", tenant: []string{"t1"}}, true},
		{"header+ip: same header, other IP", "/header-ip", limitReq{peer: "192.0.2.2", tenant: []string{"t1"}}, false},
		{"claim: api keys carry none, so all share one counter", "/claim", limitReq{peer: "192.0.2.2", key: otherKey}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newTestGateway(t, limitsConfig)
			if w := a.send(g, tc.target); w.Code != 200 {
				t.Fatalf("first request: %d %s", w.Code, w.Body)
			}
			want := 200
			if tc.shared {
				want = 429
			}
			if w := tc.second.send(g, tc.target); w.Code != want {
				t.Fatalf("second request: %d, want %d", w.Code, want)
			}
		})
	}
}

// TestMissingHeaderSharesOneCounter: requests without the header (or with
// an empty one) all count under the empty value.
func TestMissingHeaderSharesOneCounter(t *testing.T) {
	g := newTestGateway(t, limitsConfig)
	if w := (limitReq{peer: "192.0.2.1"}).send(g, "/header"); w.Code != 200 {
		t.Fatal(w.Code)
	}
	if w := (limitReq{peer: "192.0.2.2", tenant: []string{""}}).send(g, "/header"); w.Code != 429 {
		t.Fatalf("empty header: %d, want 429", w.Code)
	}
}

// TestXFFRotationDoesNotEscapeIPLimit: an untrusted client writing a new
// X-Forwarded-For on every request is still one address.
func TestXFFRotationDoesNotEscapeIPLimit(t *testing.T) {
	g := newTestGateway(t, limitsConfig)
	ok := 0
	for i := range 50 {
		lr := limitReq{peer: "192.0.2.50", xff: "203.0.113." + strconv.Itoa(i) + ", 10.0.0.1"}
		if lr.send(g, "/ip").Code == 200 {
			ok++
		}
	}
	if ok != 1 {
		t.Fatalf("%d requests admitted, want 1", ok)
	}
}

// TestLimitKeyValues: the parts that keys are built from.
func TestLimitKeyValues(t *testing.T) {
	parts := func(s string) []config.LimitKeyPart {
		p, err := config.ParseLimitKey(s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	st := func(claims map[string]any) *reqctx.State {
		return &reqctx.State{ClientIPText: "192.0.2.1", Consumer: &authn.Consumer{ID: "acme", Claims: claims}}
	}
	req := func(vals ...string) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		for _, v := range vals {
			r.Header.Add("X-Tenant", v)
		}
		return r
	}
	long := strings.Repeat("x", 10000)
	for _, tc := range []struct {
		name   string
		key    string
		a, b   *reqctx.State
		ra, rb *http.Request
		same   bool
	}{
		{"claim string", "claim:tenant", st(map[string]any{"tenant": "t1"}), st(map[string]any{"tenant": "t1"}), req(), req(), true},
		{"claim differs", "claim:tenant", st(map[string]any{"tenant": "t1"}), st(map[string]any{"tenant": "t2"}), req(), req(), false},
		{"claim number and its text", "claim:org", st(map[string]any{"org": float64(42)}), st(map[string]any{"org": "42"}), req(), req(), true},
		{"claim json.Number", "claim:org", st(map[string]any{"org": json.Number("42")}), st(map[string]any{"org": float64(42)}), req(), req(), true},
		{"claim missing and object share", "claim:org", st(nil), st(map[string]any{"org": map[string]any{"a": 1}}), req(), req(), true},
		{"claim missing and empty string differ", "claim:org", st(nil), st(map[string]any{"org": ""}), req(), req(), false},
		{"claim bool is not a value", "claim:org", st(map[string]any{"org": true}), st(nil), req(), req(), true},
		{"long claims differ", "claim:org", st(map[string]any{"org": long + "a"}), st(map[string]any{"org": long + "b"}), req(), req(), false},
		{"long claim is not its digest", "claim:org", st(map[string]any{"org": long}), st(map[string]any{"org": "#" + long[:16]}), req(), req(), false},
		{"header values", "header:X-Tenant", st(nil), st(nil), req("a"), req("a"), true},
		{"header order matters", "header:X-Tenant", st(nil), st(nil), req("a", "b"), req("b", "a"), false},
		{"header joined vs split", "header:X-Tenant", st(nil), st(nil), req("a,b"), req("a", "b"), true},
		{"header with a colon does not collide with a neighbour part", "header:X-Tenant+ip", st(nil),
			&reqctx.State{ClientIPText: "1:192.0.2.1"}, req("a"), req("a"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := limitKey{scope: "route:" + tc.key, index: "0", parts: parts(tc.key)}
			ka, ok1 := k.key("r", tc.ra, tc.a)
			kb, ok2 := k.key("r", tc.rb, tc.b)
			if !ok1 || !ok2 {
				t.Fatal("no key")
			}
			if (ka == kb) != tc.same {
				t.Fatalf("keys %q and %q: same=%v, want %v", ka, kb, ka == kb, tc.same)
			}
			if len(ka) > 200 || len(kb) > 200 {
				t.Fatalf("key of %d/%d bytes: values are not bounded", len(ka), len(kb))
			}
			if strings.Contains(ka, "xxxxxxxx") {
				t.Fatal("long value kept in the key")
			}
		})
	}
	// A consumer key without a consumer (never built by a validated config).
	k := limitKey{scope: "route:consumer", index: "0", parts: parts("consumer")}
	if _, ok := k.key("r", req(), &reqctx.State{}); ok {
		t.Fatal("consumer key without consumer")
	}
	// Header values never appear in keys (they may be credentials).
	hk := limitKey{scope: "route:header:Authorization", index: "0", parts: parts("header:Authorization")}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer secret-token")
	if key, _ := hk.key("r", r, st(nil)); strings.Contains(key, "secret") {
		t.Fatalf("header value in key %q", key)
	}
}

const concurrencyConfig = `
version: 1
server: { admin: "off", data_dir: "${DATA}" }
tls: { self_signed: true }
authenticators:
  keys: { type: api_key }
consumers:
  - { id: acme, credentials: [ { api_key: "${KEY_HASH}" } ] }
routes:
  - name: slow
    path: /slow
    upstream: { targets: ["${UPSTREAM}"] }
    auth: keys
    rate_limits:
      - { key: consumer, concurrency: 3 }
  - name: slow-rated
    path: /slow-rated
    upstream: { targets: ["${UPSTREAM}"] }
    auth: keys
    rate_limits:
      - { key: consumer, concurrency: 1 }
      - { key: consumer, limit: 1/m }
`

// blockingGateway is a gateway whose upstream holds every request until
// release is closed, reporting each arrival.
func blockingGateway(t testing.TB, yaml string) (g *Gateway, arrived chan struct{}, release chan struct{}) {
	arrived, release = make(chan struct{}, 100), make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
	}))
	t.Cleanup(up.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	vars := map[string]string{"UPSTREAM": up.URL, "KEY_HASH": secret.SumString(testKey).String(), "DATA": t.TempDir()}
	cfg, err := config.Parse([]byte(yaml), "", func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	g, err = New(context.Background(), cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g, arrived, release
}

func get(g *Gateway, target, peer string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", target, nil)
	r.RemoteAddr = peer + ":4000"
	r.Header.Set("X-API-Key", testKey)
	w := httptest.NewRecorder()
	g.ServeHTTP(w, r)
	return w
}

// TestConcurrencyLimitExact: with a limit of 3 and 12 parallel requests,
// exactly 3 reach the upstream and 9 get 429 at once; once they finish,
// their slots are free again.
func TestConcurrencyLimitExact(t *testing.T) {
	const limit, parallel = 3, 12
	g, arrived, release := blockingGateway(t, concurrencyConfig)
	codes := make(chan *httptest.ResponseRecorder, parallel)
	var wg sync.WaitGroup
	for i := range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- get(g, "/slow", "192.0.2."+strconv.Itoa(i+1))
		}()
	}
	for range parallel - limit {
		w := <-codes
		if w.Code != 429 || w.Header().Get("Retry-After") != "1" || w.Header().Get("Ratelimit") != "" {
			t.Fatalf("refused request: %d %v", w.Code, w.Header())
		}
	}
	for range limit {
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
			t.Fatal("admitted requests did not reach the upstream")
		}
	}
	select {
	case w := <-codes:
		t.Fatalf("a request beyond the limit finished: %d", w.Code)
	default:
	}
	if n := g.current.Load().defence.conc.Len(); n != 1 {
		t.Fatalf("%d keys in flight, want 1", n)
	}
	close(release)
	wg.Wait()
	for range limit {
		if w := <-codes; w.Code != 200 {
			t.Fatalf("admitted request: %d", w.Code)
		}
	}
	if n := g.current.Load().defence.conc.Len(); n != 0 {
		t.Fatalf("%d keys left after every request finished", n)
	}
	evs := g.Events().List(telemetry.EventQuery{Kind: telemetry.EventRateLimited})
	if len(evs) != parallel-limit || !strings.HasPrefix(evs[0].Reason, "concurrency limited: concurrency:consumer") {
		t.Fatalf("events: %d %+v", len(evs), evs)
	}
}

// TestConcurrencyAndRatesAllOrNothing: a request refused by the rate limit
// holds no slot; one refused by the concurrency limit burns no rate.
func TestConcurrencyAndRatesAllOrNothing(t *testing.T) {
	g, arrived, release := blockingGateway(t, concurrencyConfig)
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() { done <- get(g, "/slow-rated", "192.0.2.1") }()
	<-arrived
	// In flight: the second is refused by concurrency, and must not
	// spend the 1/m rate…
	if w := get(g, "/slow-rated", "192.0.2.1"); w.Code != 429 || !strings.Contains(w.Header().Get("Ratelimit-Policy"), `"route:consumer";q=1;w=60`) {
		t.Fatalf("second: %d %v", w.Code, w.Header())
	}
	close(release)
	if w := <-done; w.Code != 200 {
		t.Fatalf("first: %d", w.Code)
	}
	// …the third is refused by the rate (spent by the first only), and
	// must not keep the slot.
	w := get(g, "/slow-rated", "192.0.2.1")
	if w.Code != 429 || !strings.HasPrefix(w.Header().Get("Ratelimit"), `"route:consumer";r=0`) {
		t.Fatalf("third: %d %v", w.Code, w.Header())
	}
	if n := g.current.Load().defence.conc.Len(); n != 0 {
		t.Fatalf("a request refused by the rate holds a slot (%d keys)", n)
	}
}

// panicWriter aborts the response like a client that went away.
type panicWriter struct{ http.ResponseWriter }

func (p panicWriter) WriteHeader(int) { panic(http.ErrAbortHandler) }

// TestConcurrencySlotReleasedOnAbort: a handler that panics (an aborted
// response) still gives its slot back.
func TestConcurrencySlotReleasedOnAbort(t *testing.T) {
	g, arrived, release := blockingGateway(t, concurrencyConfig)
	close(release)
	for range 5 {
		func() {
			defer func() {
				if v := recover(); v != http.ErrAbortHandler {
					t.Fatalf("recovered %v", v)
				}
			}()
			r := httptest.NewRequest("GET", "/slow", nil)
			r.RemoteAddr = "192.0.2.1:4000"
			r.Header.Set("X-API-Key", testKey)
			g.ServeHTTP(panicWriter{httptest.NewRecorder()}, r)
		}()
		<-arrived
	}
	if n := g.current.Load().defence.conc.Len(); n != 0 {
		t.Fatalf("%d keys left after aborted requests", n)
	}
	// Slots also survive a reload: the counters are the gateway's.
	before := g.current.Load().defence.conc
	if err := g.Apply(g.Config()); err != nil {
		t.Fatal(err)
	}
	if g.current.Load().defence.conc != before {
		t.Fatal("a reload replaced the concurrency counters")
	}
}

func BenchmarkConcurrencyLimit(b *testing.B) {
	g, _, release := blockingGateway(b, concurrencyConfig)
	close(release)
	s := g.current.Load()
	rt := &s.routes[0]
	r := httptest.NewRequest("GET", "/slow", nil)
	st := &reqctx.State{ClientIPText: "192.0.2.1", Consumer: &authn.Consumer{ID: "acme"}, Start: time.Now()}
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		held, ok := g.limit(s, rt, w, r, st)
		if !ok {
			b.Fatal("refused")
		}
		held.release()
	}
}

// FuzzLimitKeyValues: header and claim values chosen by clients never
// panic, always give a key of bounded length, and the same value always
// gives the same key while a different one gives a different key.
func FuzzLimitKeyValues(f *testing.F) {
	for _, s := range []string{"", "t1", "a,b", "#0123456789abcdef", "=x", strings.Repeat("x", 100), "\x00", "é", "1:2:3"} {
		f.Add(s, s+"x")
	}
	hdr, _ := config.ParseLimitKey("header:X-Tenant+claim:org+ip")
	k := limitKey{scope: "route:header:X-Tenant+claim:org+ip", index: "0", parts: hdr}
	f.Fuzz(func(t *testing.T, a, b string) {
		build := func(v string) string {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header["X-Tenant"] = []string{v}
			st := &reqctx.State{ClientIPText: "192.0.2.1", Consumer: &authn.Consumer{ID: "c", Claims: map[string]any{"org": v}}}
			key, ok := k.key("r", r, st)
			if !ok {
				t.Fatal("no key")
			}
			if len(key) > 200 {
				t.Fatalf("key of %d bytes", len(key))
			}
			return key
		}
		ka, kb := build(a), build(b)
		if ka != build(a) {
			t.Fatal("not deterministic")
		}
		if (a == b) != (ka == kb) {
			t.Fatalf("values %q, %q give keys %q, %q", a, b, ka, kb)
		}
	})
}
