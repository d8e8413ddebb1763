package introspect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/authn"
	"github.com/breakwater/breakwater/internal/secret"
)

const (
	clientID     = "gw:1" // ":" must be form-encoded in Basic credentials
	clientSecret = "s3cret+/&=é"
)

// clock is an injected clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// idp is a fake introspection endpoint over real TLS. answers maps a token
// to its handler; it checks the gateway's request like a strict IdP does.
type idp struct {
	srv     *httptest.Server
	calls   atomic.Int64
	mu      sync.Mutex
	answers map[string]http.HandlerFunc
	bad     atomic.Value // string: last request problem
}

func newIDP(t *testing.T) *idp {
	t.Helper()
	p := &idp{answers: map[string]http.HandlerFunc{}}
	p.srv = httptest.NewTLSServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) serve(w http.ResponseWriter, r *http.Request) {
	p.calls.Add(1)
	id, sec, ok := r.BasicAuth()
	id, _ = url.QueryUnescape(id)
	sec, _ = url.QueryUnescape(sec)
	if !ok || id != clientID || sec != clientSecret {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.Header.Get("Accept") != "application/json" {
		p.bad.Store(fmt.Sprintf("method %s content-type %q accept %q", r.Method, r.Header.Get("Content-Type"), r.Header.Get("Accept")))
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("token_type_hint") != "access_token" {
		p.bad.Store("form")
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	h := p.answers[r.PostForm.Get("token")]
	p.mu.Unlock()
	if h == nil {
		writeJSON(w, map[string]any{"active": false})
		return
	}
	h(w, r)
}

func (p *idp) on(tok string, h http.HandlerFunc) {
	p.mu.Lock()
	p.answers[tok] = h
	p.mu.Unlock()
}

func (p *idp) json(tok string, v map[string]any) {
	p.on(tok, func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, v) })
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

var consumers = map[string]*authn.Consumer{
	"acme":  {ID: "acme-co", Scopes: []string{"orders:read", "orders:write"}, ScopeText: "orders:read orders:write"},
	"svc-7": {ID: "seven", Scopes: []string{"a"}, ScopeText: "a"},
}

func newAuth(t testing.TB, p *idp, c *clock, mod func(*Options)) *Authenticator {
	t.Helper()
	o := Options{
		Name: "opaque", URL: p.srv.URL, ClientID: clientID, ClientSecret: secret.New(clientSecret),
		Client: p.srv.Client(), Timeout: 2 * time.Second, Consumers: consumers, Now: c.Now,
	}
	if mod != nil {
		mod(&o)
	}
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func req(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "https://api.example.com/v1/orders", nil)
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return r
}

func kindOf(err error) string {
	var f *authn.Failure
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, authn.ErrNoCredential):
		return "none"
	case errors.As(err, &f):
		return [...]string{"invalid", "unknown", "malformed", "expired", "revoked", "replayed", "unavailable"}[f.Kind]
	default:
		return "error:" + err.Error()
	}
}

func TestAuthenticate(t *testing.T) {
	p := newIDP(t)
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	now := c.Now().Unix()
	p.json("active", map[string]any{"active": true, "client_id": "acme", "scope": "orders:read admin orders:read", "exp": now + 600, "aud": []string{"orders-api"}})
	p.json("noexp", map[string]any{"active": true, "client_id": "acme", "scope": "orders:write", "aud": "orders-api"})
	p.json("noscope", map[string]any{"active": true, "client_id": "acme", "aud": "orders-api"})
	p.json("refresh", map[string]any{"active": true, "client_id": "acme", "token_type": "refresh_token", "aud": "orders-api"})
	p.json("inactive", map[string]any{"active": false, "client_id": "acme"})
	p.json("expired", map[string]any{"active": true, "client_id": "acme", "exp": now - 1, "aud": "orders-api"})
	p.json("wrongaud", map[string]any{"active": true, "client_id": "acme", "exp": now + 600, "aud": "other-api"})
	p.json("noaud", map[string]any{"active": true, "client_id": "acme", "exp": now + 600})
	p.json("unknownclient", map[string]any{"active": true, "client_id": "mallory", "exp": now + 600, "aud": "orders-api"})
	p.json("noclient", map[string]any{"active": true, "sub": "acme", "exp": now + 600, "aud": "orders-api"})
	p.json("activestring", map[string]any{"active": "true", "client_id": "acme"})
	p.json("expstring", map[string]any{"active": true, "client_id": "acme", "exp": "soon", "aud": "orders-api"})
	p.json("audnumber", map[string]any{"active": true, "client_id": "acme", "aud": 7})
	p.on("e500", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) })
	p.on("redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://evil.example/", http.StatusTemporaryRedirect)
	})
	p.on("badjson", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"active":true,`)) })
	p.on("array", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`[{"active":true}]`)) })
	p.on("null", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`null`)) })
	p.on("huge", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"active":true,"client_id":"acme","pad":"` + strings.Repeat("x", 70<<10) + `"}`))
	})
	jwtLike := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
	p.json(jwtLike, map[string]any{"active": true, "client_id": "svc-7", "scope": "a b", "exp": now + 60, "aud": "orders-api"})

	a := newAuth(t, p, c, func(o *Options) { o.Audience = []string{"orders-api"} })
	for _, tc := range []struct {
		name, header string
		want         string
		id, scopes   string
	}{
		{"active: scopes intersected, sorted, unique", "Bearer active", "ok", "acme-co", "orders:read"},
		{"missing exp allowed (Cache bounds it)", "Bearer noexp", "ok", "acme-co", "orders:write"},
		{"no scope member grants none", "Bearer noscope", "ok", "acme-co", ""},
		{"JWT-looking token is still introspected", "Bearer " + jwtLike, "ok", "seven", "a"},
		{"scheme is case-insensitive", "bearer active", "ok", "acme-co", "orders:read"},
		{"inactive", "Bearer inactive", "invalid", "", ""},
		{"refresh token used as bearer", "Bearer refresh", "invalid", "", ""},
		{"token the IdP does not know", "Bearer never-issued", "invalid", "", ""},
		{"active but exp past", "Bearer expired", "expired", "", ""},
		{"wrong aud", "Bearer wrongaud", "invalid", "", ""},
		{"no aud while audience configured", "Bearer noaud", "invalid", "", ""},
		{"unknown client", "Bearer unknownclient", "unknown", "", ""},
		{"no client_id", "Bearer noclient", "unknown", "", ""},
		{"endpoint 500", "Bearer e500", "unavailable", "", ""},
		{"redirect not followed", "Bearer redirect", "unavailable", "", ""},
		{"invalid JSON", "Bearer badjson", "unavailable", "", ""},
		{"JSON array", "Bearer array", "unavailable", "", ""},
		{"JSON null", "Bearer null", "unavailable", "", ""},
		{"active not boolean", "Bearer activestring", "unavailable", "", ""},
		{"exp not number", "Bearer expstring", "unavailable", "", ""},
		{"aud not string", "Bearer audnumber", "unavailable", "", ""},
		{"oversized body", "Bearer huge", "unavailable", "", ""},
		// client-side attack rows: never reach the IdP
		{"no header", "", "none", "", ""},
		{"other scheme", "Basic Zm9vOmJhcg==", "none", "", ""},
		{"bearer without token", "Bearer", "malformed", "", ""},
		{"bearer with spaces only", "Bearer    ", "malformed", "", ""},
		{"token too long", "Bearer " + strings.Repeat("a", MaxTokenLen+1), "malformed", "", ""},
		{"token with comma", "Bearer a,b", "malformed", "", ""},
		{"token with inner space", "Bearer a b", "malformed", "", ""},
		{"token with NUL", "Bearer a\x00b", "malformed", "", ""},
		{"padding not at end", "Bearer a=b", "malformed", "", ""},
		{"only padding", "Bearer ==", "malformed", "", ""},
		{"form injection", "Bearer active&token=x", "malformed", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "https://api.example.com/", nil)
			if tc.header != "" {
				r.Header["Authorization"] = []string{tc.header}
			}
			got, err := a.Authenticate(r)
			if k := kindOf(err); k != tc.want {
				t.Fatalf("kind = %s (%v), want %s", k, err, tc.want)
			}
			if tc.want != "ok" {
				return
			}
			if got.ID != tc.id || got.ScopeText != tc.scopes || strings.Join(got.Scopes, " ") != tc.scopes {
				t.Fatalf("consumer = %+v, want id %s scopes %q", got, tc.id, tc.scopes)
			}
			if got.Claims["active"] != true {
				t.Fatalf("claims not passed on: %v", got.Claims)
			}
		})
	}
	if consumers["acme"].ScopeText != "orders:read orders:write" || len(consumers["acme"].Scopes) != 2 || consumers["acme"].Claims != nil {
		t.Fatalf("shared consumer was mutated: %+v", consumers["acme"])
	}
	if bad := p.bad.Load(); bad != nil {
		t.Fatalf("IdP saw a bad request: %v", bad)
	}
}

func TestRepeatedHeader(t *testing.T) {
	p := newIDP(t)
	a := newAuth(t, p, &clock{t: time.Now()}, nil)
	r := req("x")
	r.Header.Add("Authorization", "Bearer y")
	if _, err := a.Authenticate(r); kindOf(err) != "malformed" {
		t.Fatalf("err = %v", err)
	}
	if p.calls.Load() != 0 {
		t.Fatal("malformed credential reached the IdP")
	}
}

func TestWrongClientSecret(t *testing.T) {
	p := newIDP(t)
	p.json("tok", map[string]any{"active": true, "client_id": "acme"})
	a := newAuth(t, p, &clock{t: time.Now()}, func(o *Options) { o.ClientSecret = secret.New("wrong") })
	if _, err := a.Authenticate(req("tok")); kindOf(err) != "unavailable" {
		t.Fatalf("IdP rejected our credentials, want unavailable, got %v", err)
	}
	a = newAuth(t, p, &clock{t: time.Now()}, nil)
	if _, err := a.Authenticate(req("tok")); err != nil {
		t.Fatalf("correct credentials: %v", err)
	}
}

func TestConsumerClaimSub(t *testing.T) {
	p := newIDP(t)
	p.json("tok", map[string]any{"active": true, "client_id": "other", "sub": "svc-7", "scope": "a"})
	a := newAuth(t, p, &clock{t: time.Now()}, func(o *Options) { o.ConsumerClaim = "sub" })
	got, err := a.Authenticate(req("tok"))
	if err != nil || got.ID != "seven" {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestTimeouts(t *testing.T) {
	p := newIDP(t)
	p.on("hang", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	p.on("slowbody", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"active":true,`))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	var logs bytes.Buffer
	var logMu sync.Mutex
	a := newAuth(t, p, &clock{t: time.Now()}, func(o *Options) {
		o.Timeout = 200 * time.Millisecond
		o.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))
	})
	for _, tok := range []string{"hang", "slowbody"} {
		start := time.Now()
		_, err := a.Authenticate(req(tok))
		if kindOf(err) != "unavailable" {
			t.Fatalf("%s: err = %v", tok, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("%s: took %v", tok, d)
		}
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), "token_sha256") || strings.Contains(logs.String(), "slowbody") || strings.Contains(logs.String(), "hang") {
		t.Fatalf("log must name the token by hash prefix only:\n%s", logs.String())
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func TestEndpointDown(t *testing.T) {
	p := newIDP(t)
	a := newAuth(t, p, &clock{t: time.Now()}, nil)
	p.srv.Close()
	if _, err := a.Authenticate(req("tok")); kindOf(err) != "unavailable" {
		t.Fatalf("err = %v", err)
	}
}

func TestCache(t *testing.T) {
	p := newIDP(t)
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	now := c.Now().Unix()
	p.json("long", map[string]any{"active": true, "client_id": "acme", "exp": now + 3600})
	p.json("short", map[string]any{"active": true, "client_id": "acme", "exp": now + 10})
	p.json("off", map[string]any{"active": false})
	p.on("flaky", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	a := newAuth(t, p, c, func(o *Options) { o.Cache = time.Minute; o.NegativeCache = 5 * time.Second })

	calls := func() int64 { return p.calls.Load() }
	mustKind := func(tok, want string) {
		t.Helper()
		if _, err := a.Authenticate(req(tok)); kindOf(err) != want {
			t.Fatalf("%s: %v, want %s", tok, err, want)
		}
	}

	// positive: cache hit does not call the IdP; expires after Cache
	mustKind("long", "ok")
	mustKind("long", "ok")
	if calls() != 1 {
		t.Fatalf("cache hit called the IdP: %d calls", calls())
	}
	c.Add(59 * time.Second)
	mustKind("long", "ok")
	if calls() != 1 {
		t.Fatalf("calls = %d", calls())
	}
	c.Add(time.Second)
	mustKind("long", "ok")
	if calls() != 2 {
		t.Fatalf("entry outlived Cache: calls = %d", calls())
	}

	// never outlives exp: exp is 10 s away, Cache is 60 s
	c.t = time.Unix(now, 0)
	mustKind("short", "ok")
	n := calls()
	c.Add(9 * time.Second)
	mustKind("short", "ok")
	if calls() != n {
		t.Fatal("hit before exp called the IdP")
	}
	c.Add(time.Second)
	p.json("short", map[string]any{"active": false}) // the IdP now says so
	mustKind("short", "invalid")
	if calls() != n+1 {
		t.Fatal("cache entry outlived the token's exp")
	}

	// negative cache: NegativeCache long
	n = calls()
	mustKind("off", "invalid")
	c.Add(4 * time.Second)
	mustKind("off", "invalid")
	if calls() != n+1 {
		t.Fatalf("negative answer not cached: %d calls", calls()-n)
	}
	c.Add(time.Second)
	p.json("off", map[string]any{"active": true, "client_id": "acme"})
	mustKind("off", "ok")
	if calls() != n+2 {
		t.Fatal("negative entry outlived NegativeCache")
	}

	// errors are not cached
	n = calls()
	mustKind("flaky", "unavailable")
	mustKind("flaky", "unavailable")
	if calls() != n+2 {
		t.Fatal("an endpoint failure was cached")
	}
}

func TestCacheBounded(t *testing.T) {
	p := newIDP(t)
	a := newAuth(t, p, &clock{t: time.Now()}, func(o *Options) { o.CacheSize = 3 })
	for i := range 10 {
		_, _ = a.Authenticate(req(fmt.Sprintf("tok%d", i)))
	}
	if n := a.cache.Len(); n != 3 {
		t.Fatalf("cache holds %d entries, bound is 3", n)
	}
	// the most recent ones survived
	n := p.calls.Load()
	_, _ = a.Authenticate(req("tok9"))
	_, _ = a.Authenticate(req("tok0"))
	if p.calls.Load() != n+1 {
		t.Fatal("eviction is not least-recently-used")
	}
}

func TestSingleflight(t *testing.T) {
	p := newIDP(t)
	release := make(chan struct{})
	p.on("tok", func(w http.ResponseWriter, r *http.Request) {
		<-release
		writeJSON(w, map[string]any{"active": true, "client_id": "acme", "scope": "orders:read"})
	})
	a := newAuth(t, p, &clock{t: time.Now()}, nil)
	var started, done sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		started.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			started.Done()
			c, err := a.Authenticate(req("tok"))
			if err == nil && c.ID != "acme-co" {
				err = fmt.Errorf("consumer %q", c.ID)
			}
			errs <- err
		}()
	}
	started.Wait()
	time.Sleep(50 * time.Millisecond) // let most of them join the call; late ones hit the cache
	close(release)
	done.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := p.calls.Load(); n != 1 {
		t.Fatalf("100 concurrent requests made %d IdP calls, want 1", n)
	}
}

func TestWaiterCancelled(t *testing.T) {
	p := newIDP(t)
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	p.on("tok", func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		writeJSON(w, map[string]any{"active": true, "client_id": "acme"})
	})
	a := newAuth(t, p, &clock{t: time.Now()}, nil)
	go func() { _, _ = a.Authenticate(req("tok")) }()
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Authenticate(req("tok").WithContext(ctx)); kindOf(err) != "unavailable" {
		t.Fatalf("cancelled waiter: %v", err)
	}
	close(release)
}

func TestNew(t *testing.T) {
	ok := Options{Name: "n", URL: "https://idp.example.com/introspect", ClientID: "gw", ClientSecret: secret.New("s")}
	for _, tc := range []struct {
		name string
		mod  func(*Options)
		ok   bool
	}{
		{"https", func(*Options) {}, true},
		{"http on 127.0.0.1", func(o *Options) { o.URL = "http://127.0.0.1:8080/i" }, true},
		{"http on 127.9.9.9", func(o *Options) { o.URL = "http://127.9.9.9/i" }, true},
		{"http on ::1", func(o *Options) { o.URL = "http://[::1]:8080/i" }, true},
		{"http on localhost", func(o *Options) { o.URL = "http://LocalHost:8080/i" }, true},
		{"sub claim", func(o *Options) { o.ConsumerClaim = "sub" }, true},
		{"http elsewhere", func(o *Options) { o.URL = "http://idp.example.com/i" }, false},
		{"http on localhost lookalike", func(o *Options) { o.URL = "http://localhost.evil.com/i" }, false},
		{"http on 128.0.0.1", func(o *Options) { o.URL = "http://128.0.0.1/i" }, false},
		{"ftp", func(o *Options) { o.URL = "ftp://idp.example.com/i" }, false},
		{"no host", func(o *Options) { o.URL = "https:///i" }, false},
		{"userinfo", func(o *Options) { o.URL = "https://u:p@idp.example.com/i" }, false},
		{"empty url", func(o *Options) { o.URL = "" }, false},
		{"no name", func(o *Options) { o.Name = "" }, false},
		{"no client id", func(o *Options) { o.ClientID = "" }, false},
		{"no secret", func(o *Options) { o.ClientSecret = secret.Value{} }, false},
		{"negative timeout", func(o *Options) { o.Timeout = -1 }, false},
		{"negative cache size", func(o *Options) { o.CacheSize = -1 }, false},
		{"bad claim", func(o *Options) { o.ConsumerClaim = "email" }, false},
		{"empty audience", func(o *Options) { o.Audience = []string{""} }, false},
		{"nil consumer", func(o *Options) { o.Consumers = map[string]*authn.Consumer{"x": nil} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.mod(&o)
			a, err := New(o)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Fatal("secret in error")
			}
			if a != nil && a.Challenge() != `Bearer realm="breakwater"` {
				t.Fatal(a.Challenge())
			}
		})
	}
}

func TestStrip(t *testing.T) {
	a, err := New(Options{Name: "n", URL: "https://idp.example.com/i", ClientID: "gw", ClientSecret: secret.New("s")})
	if err != nil {
		t.Fatal(err)
	}
	r := req("tok")
	a.Strip(r)
	if r.Header.Get("Authorization") != "" {
		t.Fatal("Authorization not stripped")
	}
}

func TestDefaultClient(t *testing.T) {
	// nil Client: TLS 1.2+ with the system roots, so the test IdP's
	// self-signed certificate is refused (Unavailable), never skipped.
	p := newIDP(t)
	p.json("tok", map[string]any{"active": true, "client_id": "acme"})
	a := newAuth(t, p, &clock{t: time.Now()}, func(o *Options) { o.Client = nil })
	if _, err := a.Authenticate(req("tok")); kindOf(err) != "unavailable" {
		t.Fatalf("untrusted IdP certificate accepted: %v", err)
	}
}

func BenchmarkCached(b *testing.B) {
	p := &idp{answers: map[string]http.HandlerFunc{}}
	p.srv = httptest.NewTLSServer(http.HandlerFunc(p.serve))
	defer p.srv.Close()
	p.json("tok", map[string]any{"active": true, "client_id": "acme", "scope": "orders:read"})
	a := newAuth(b, p, &clock{t: time.Now()}, nil)
	r := req("tok")
	if _, err := a.Authenticate(r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if _, err := a.Authenticate(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			r := req("tok")
			for pb.Next() {
				if _, err := a.Authenticate(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
