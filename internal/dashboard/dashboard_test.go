package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/audit"
	"github.com/breakwater/breakwater/internal/secret"
	"github.com/breakwater/breakwater/internal/telemetry"
	"github.com/prometheus/client_golang/prometheus"
)

const testToken = "bwadm_dashboardTestToken000000000000000000"

// clock is an injected clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	d       *Dashboard
	clock   *clock
	reg     *prometheus.Registry
	metrics *telemetry.Metrics
	events  *telemetry.Events
}

func newFixture(t testing.TB, edit ...func(*Options)) *fixture {
	t.Helper()
	f := &fixture{clock: newClock(), reg: prometheus.NewRegistry()}
	m, err := telemetry.NewMetrics(f.reg, telemetry.BuildInfo{Version: "test", Commit: "test", GoVersion: "go"})
	if err != nil {
		t.Fatal(err)
	}
	f.metrics = m
	f.events = telemetry.NewEvents(telemetry.EventsOptions{Capacity: 100, Now: f.clock.Now})
	o := Options{
		TokenHash: secret.SumString(testToken),
		Metrics:   f.reg,
		Events:    func(limit int) []telemetry.Event { return f.events.List(telemetry.EventQuery{Limit: limit}) },
		Now:       f.clock.Now,
	}
	for _, e := range edit {
		e(&o)
	}
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	f.d = d
	return f
}

type reqOpt func(*http.Request)

func withCookie(v string) reqOpt {
	return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: CookieName, Value: v}) }
}
func withHeader(k, v string) reqOpt { return func(r *http.Request) { r.Header.Add(k, v) } }
func fromAddr(a string) reqOpt      { return func(r *http.Request) { r.RemoteAddr = a } }

func (f *fixture) do(method, target, body string, opts ...reqOpt) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, "http://admin.test"+target, rd)
	r.RemoteAddr = "192.0.2.10:40000"
	if body != "" {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, o := range opts {
		o(r)
	}
	w := httptest.NewRecorder()
	f.d.ServeHTTP(w, r)
	return w
}

func form(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v.Encode()
}

// signIn signs in and returns the session cookie's value.
func (f *fixture) signIn(t testing.TB) string {
	t.Helper()
	w := f.do("POST", "/dashboard/login", form("token", testToken), withHeader("Origin", "http://admin.test"), fromAddr("198.51.100.1:1"))
	if w.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: status %d, want 303: %s", w.Code, w.Body)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == CookieName {
			return c.Value
		}
	}
	t.Fatal("sign-in: no session cookie")
	return ""
}

var csrfField = regexp.MustCompile(`name="csrf" value="([A-Za-z0-9_-]+)"`)

func (f *fixture) csrf(t *testing.T, cookie string) string {
	t.Helper()
	w := f.do("GET", "/dashboard/", "", withCookie(cookie))
	m := csrfField.FindStringSubmatch(w.Body.String())
	if m == nil {
		t.Fatalf("app page has no CSRF field: %s", w.Body)
	}
	return m[1]
}

func TestSignInSuccess(t *testing.T) {
	f := newFixture(t)
	w := f.do("GET", "/dashboard/", "")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `action="/dashboard/login"`) || !strings.Contains(w.Body.String(), `type="password"`) {
		t.Fatalf("sign-in page: %d %s", w.Code, w.Body)
	}
	if strings.Contains(w.Body.String(), `method="get"`) {
		t.Error("the sign-in form must POST (the token must never be in a URL)")
	}
	w = f.do("POST", "/dashboard/login", form("token", testToken), withHeader("Origin", "http://admin.test"))
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/dashboard/" {
		t.Fatalf("login: %d %v", w.Code, w.Header())
	}
	var c *http.Cookie
	for _, x := range w.Result().Cookies() {
		if x.Name == CookieName {
			c = x
		}
	}
	if c == nil {
		t.Fatal("no session cookie")
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/dashboard/" || c.Secure {
		t.Errorf("cookie flags: HttpOnly=%v SameSite=%v Path=%q Secure=%v (plain HTTP request)", c.HttpOnly, c.SameSite, c.Path, c.Secure)
	}
	if len(c.Value) != 43 {
		t.Errorf("session id %d chars, want 43 (256 bits base64url)", len(c.Value))
	}
	if strings.Contains(w.Header().Get("Set-Cookie"), testToken) {
		t.Error("token in the cookie")
	}
	// The server keeps only a hash of the id.
	f.d.sessions.mu.Lock()
	for k := range f.d.sessions.m {
		if strings.Contains(string(k[:]), c.Value) {
			t.Error("session id stored in clear")
		}
	}
	f.d.sessions.mu.Unlock()
	w = f.do("GET", "/dashboard/", "", withCookie(c.Value))
	if w.Code != 200 || !strings.Contains(w.Body.String(), `id="chart-rps"`) || !csrfField.MatchString(w.Body.String()) {
		t.Fatalf("app page: %d %s", w.Code, w.Body)
	}
	w = f.do("GET", "/dashboard/api/summary", "", withCookie(c.Value))
	if w.Code != 200 {
		t.Fatalf("summary with session: %d %s", w.Code, w.Body)
	}
}

func TestCookieSecureOverTLS(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewTLSServer(f.d)
	defer srv.Close()
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, _ := http.NewRequest("POST", srv.URL+"/dashboard/login", strings.NewReader(form("token", testToken)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", srv.URL)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("status %d", resp.StatusCode)
	}
	sc := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"bw_session=", "Path=/dashboard/", "HttpOnly", "Secure", "SameSite=Strict"} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %q", sc, want)
		}
	}
}

func TestSignInRefused(t *testing.T) {
	same := withHeader("Origin", "http://admin.test")
	tests := []struct {
		name   string
		target string
		body   string
		opts   []reqOpt
		status int
		page   string // a text the page must show
	}{
		{"wrong token", "/dashboard/login", form("token", "bwadm_wrong"), []reqOpt{same}, 401, msgFailed},
		{"token of other case", "/dashboard/login", form("token", strings.ToUpper(testToken)), []reqOpt{same}, 401, msgFailed},
		{"token with trailing space", "/dashboard/login", form("token", testToken+" "), []reqOpt{same}, 401, msgFailed},
		{"token prefix", "/dashboard/login", form("token", testToken[:10]), []reqOpt{same}, 401, msgFailed},
		{"empty token", "/dashboard/login", form("token", ""), []reqOpt{same}, 401, msgFailed},
		{"no token field", "/dashboard/login", form("user", "admin"), []reqOpt{same}, 401, msgFailed},
		{"token twice", "/dashboard/login", form("token", testToken, "token", testToken), []reqOpt{same}, 401, msgFailed},
		{"token too long", "/dashboard/login", form("token", strings.Repeat("a", 600)), []reqOpt{same}, 401, msgFailed},
		{"body over limit", "/dashboard/login", form("token", testToken, "pad", strings.Repeat("x", 5000)), []reqOpt{same}, 401, msgFailed},
		{"NUL in token", "/dashboard/login", form("token", testToken+"\x00"), []reqOpt{same}, 401, msgFailed},
		{"token in the URL", "/dashboard/login?token=" + testToken, form("token", testToken), []reqOpt{same}, 400, msgMalformed},
		{"token only in the URL", "/dashboard/login?token=" + testToken, "", []reqOpt{same}, 400, msgMalformed},
		{"cross-site Origin", "/dashboard/login", form("token", testToken), []reqOpt{withHeader("Origin", "https://evil.example")}, 403, msgRefused},
		{"Origin null", "/dashboard/login", form("token", testToken), []reqOpt{withHeader("Origin", "null")}, 403, msgRefused},
		{"Origin null, Sec-Fetch-Site cross-site", "/dashboard/login", form("token", testToken), []reqOpt{withHeader("Origin", "null"), withHeader("Sec-Fetch-Site", "cross-site")}, 403, msgRefused},
		{"Origin null, Sec-Fetch-Site none", "/dashboard/login", form("token", testToken), []reqOpt{withHeader("Origin", "null"), withHeader("Sec-Fetch-Site", "none")}, 403, msgRefused},
		{"Origin other port", "/dashboard/login", form("token", testToken), []reqOpt{withHeader("Origin", "http://admin.test:8080")}, 403, msgRefused},
		{"Origin with userinfo", "/dashboard/login", form("token", testToken), []reqOpt{withHeader("Origin", "http://x@admin.test")}, 403, msgRefused},
		{"Origin twice", "/dashboard/login", form("token", testToken), []reqOpt{same, same}, 403, msgRefused},
		{"cross-site Referer", "/dashboard/login", form("token", testToken), []reqOpt{withHeader("Referer", "https://evil.example/admin.test")}, 403, msgRefused},
		{"Sec-Fetch-Site cross-site", "/dashboard/login", form("token", testToken), []reqOpt{same, withHeader("Sec-Fetch-Site", "cross-site")}, 403, msgRefused},
		{"Sec-Fetch-Site same-site", "/dashboard/login", form("token", testToken), []reqOpt{same, withHeader("Sec-Fetch-Site", "same-site")}, 403, msgRefused},
	}
	var wrongBody string
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			opts := append([]reqOpt{fromAddr("203.0.113." + string(rune('0'+i%10)) + ":1")}, tc.opts...)
			w := f.do("POST", tc.target, tc.body, opts...)
			if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.page) {
				t.Fatalf("status %d, want %d; page: %s", w.Code, tc.status, w.Body)
			}
			if strings.Contains(w.Header().Get("Set-Cookie"), CookieName+"=") && w.Code != 303 {
				t.Error("a refused sign-in set a session cookie")
			}
			if f.d.sessions.count() != 0 {
				t.Error("a refused sign-in created a session")
			}
			if tc.status == 401 {
				if wrongBody == "" {
					wrongBody = w.Body.String()
				} else if w.Body.String() != wrongBody {
					t.Error("wrong tokens must all get the same page")
				}
			}
		})
	}
}

func TestSignInAccepted(t *testing.T) {
	tests := []struct {
		name string
		opts []reqOpt
	}{
		{"no Origin (not a browser)", nil},
		{"same Origin", []reqOpt{withHeader("Origin", "http://admin.test")}},
		{"https Origin behind a TLS proxy", []reqOpt{withHeader("Origin", "https://admin.test")}},
		{"same Referer", []reqOpt{withHeader("Referer", "http://admin.test/dashboard/")}},
		{"Sec-Fetch-Site same-origin", []reqOpt{withHeader("Sec-Fetch-Site", "same-origin"), withHeader("Origin", "http://ADMIN.test")}},
		{"Origin null from our no-referrer page", []reqOpt{withHeader("Sec-Fetch-Site", "same-origin"), withHeader("Origin", "null")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			w := f.do("POST", "/dashboard/login", form("token", testToken), tc.opts...)
			if w.Code != 303 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
		})
	}
}

func TestSignInRateLimit(t *testing.T) {
	f := newFixture(t)
	ip := fromAddr("192.0.2.77:5555")
	for i := range SignInAttempts {
		if w := f.do("POST", "/dashboard/login", form("token", "wrong"), ip); w.Code != 401 {
			t.Fatalf("attempt %d: %d", i+1, w.Code)
		}
	}
	w := f.do("POST", "/dashboard/login", form("token", testToken), ip)
	if w.Code != 429 || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), msgTooMany) {
		t.Fatalf("over the limit, even the right token: %d %v", w.Code, w.Header())
	}
	if f.d.sessions.count() != 0 {
		t.Fatal("session created while limited")
	}
	// Another client is not affected; the same IPv6 /64 is one client.
	if w := f.do("POST", "/dashboard/login", form("token", testToken), fromAddr("192.0.2.78:1")); w.Code != 303 {
		t.Fatalf("other client: %d", w.Code)
	}
	for i := range SignInAttempts {
		f.do("POST", "/dashboard/login", form("token", "wrong"), fromAddr("[2001:db8:1:2::"+string(rune('a'+i))+"]:1"))
	}
	if w := f.do("POST", "/dashboard/login", form("token", testToken), fromAddr("[2001:db8:1:2:ffff::1]:1")); w.Code != 429 {
		t.Fatalf("same /64: %d, want 429", w.Code)
	}
	f.clock.Add(SignInWindow)
	if w := f.do("POST", "/dashboard/login", form("token", testToken), ip); w.Code != 303 {
		t.Fatalf("after the window: %d", w.Code)
	}
}

func TestSignInLimiterBounded(t *testing.T) {
	var l signInLimiter
	l.init()
	now := time.Unix(1000, 0)
	for i := range 5000 {
		var a [4]byte
		a[0], a[1], a[2], a[3] = 10, byte(i>>16), byte(i>>8), byte(i)
		l.allow(limiterKey(netip.AddrFrom4(a)), now)
	}
	if len(l.m) > signInClientsKept {
		t.Fatalf("limiter keeps %d clients", len(l.m))
	}
	// Clients beyond the bound share one window, which is spent.
	if l.allow(limiterKey(netip.AddrFrom4([4]byte{11, 0, 0, 1})), now) {
		t.Error("overflow window should be spent")
	}
	// Once the windows have passed, the table is pruned.
	now = now.Add(SignInWindow)
	if !l.allow(limiterKey(netip.AddrFrom4([4]byte{11, 0, 0, 1})), now) {
		t.Error("new window refused")
	}
}

func TestSignOut(t *testing.T) {
	tests := []struct {
		name   string
		body   func(csrf string) string
		opts   []reqOpt
		status int
	}{
		{"no CSRF token", func(string) string { return form("x", "1") }, []reqOpt{withHeader("Origin", "http://admin.test")}, 403},
		{"wrong CSRF token", func(c string) string { return form("csrf", otherLastChar(c)) }, []reqOpt{withHeader("Origin", "http://admin.test")}, 403},
		{"short CSRF token", func(c string) string { return form("csrf", c[:10]) }, nil, 403},
		{"CSRF token twice wrong first", func(c string) string { return form("csrf", "x", "csrf", c) }, nil, 403},
		{"right token, cross-site Origin", func(c string) string { return form("csrf", c) }, []reqOpt{withHeader("Origin", "https://evil.example")}, 403},
		{"right token, cross-site Sec-Fetch-Site", func(c string) string { return form("csrf", c) }, []reqOpt{withHeader("Sec-Fetch-Site", "cross-site")}, 403},
		{"right token, Origin null", func(c string) string { return form("csrf", c) }, []reqOpt{withHeader("Origin", "null")}, 403},
		{"right token in the form", func(c string) string { return form("csrf", c) }, []reqOpt{withHeader("Origin", "http://admin.test")}, 303},
		{"right token, no Origin", func(c string) string { return form("csrf", c) }, nil, 303},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			cookie := f.signIn(t)
			csrf := f.csrf(t, cookie)
			w := f.do("POST", "/dashboard/logout", tc.body(csrf), append([]reqOpt{withCookie(cookie)}, tc.opts...)...)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			api := f.do("GET", "/dashboard/api/summary", "", withCookie(cookie))
			if tc.status == 303 {
				if api.Code != 401 {
					t.Error("session still valid after sign-out")
				}
				if sc := w.Header().Get("Set-Cookie"); !strings.Contains(sc, "Max-Age=0") {
					t.Errorf("cookie not cleared: %q", sc)
				}
			} else if api.Code != 200 {
				t.Error("a refused sign-out ended the session")
			}
		})
	}
	t.Run("header token", func(t *testing.T) {
		f := newFixture(t)
		cookie := f.signIn(t)
		csrf := f.csrf(t, cookie)
		if w := f.do("POST", "/dashboard/logout", "", withCookie(cookie), withHeader(CSRFHeader, csrf)); w.Code != 303 {
			t.Fatalf("status %d", w.Code)
		}
	})
	t.Run("CSRF token of another session", func(t *testing.T) {
		f := newFixture(t)
		a, b := f.signIn(t), f.signIn(t)
		if w := f.do("POST", "/dashboard/logout", form("csrf", f.csrf(t, b)), withCookie(a)); w.Code != 403 {
			t.Fatalf("status %d", w.Code)
		}
	})
	t.Run("GET is not allowed", func(t *testing.T) {
		f := newFixture(t)
		if w := f.do("GET", "/dashboard/logout", ""); w.Code != 405 {
			t.Fatalf("status %d", w.Code)
		}
	})
}

func TestSessionExpiry(t *testing.T) {
	f := newFixture(t)
	cookie := f.signIn(t)
	api := func() int { return f.do("GET", "/dashboard/api/config", "", withCookie(cookie)).Code }
	f.clock.Add(SessionIdle - time.Second)
	if c := api(); c != 200 {
		t.Fatalf("before idle timeout: %d", c)
	}
	f.clock.Add(SessionIdle)
	if c := api(); c != 401 {
		t.Fatalf("after idle timeout: %d", c)
	}
	if f.d.sessions.count() != 0 {
		t.Fatal("expired session kept")
	}

	// Kept busy, a session still ends at its absolute lifetime.
	cookie = f.signIn(t)
	start := f.clock.Now()
	for f.clock.Now().Sub(start) < SessionLifetime-20*time.Minute {
		f.clock.Add(20 * time.Minute)
		if c := api(); c != 200 {
			t.Fatalf("busy session at %v: %d", f.clock.Now().Sub(start), c)
		}
	}
	f.clock.Add(20 * time.Minute)
	if c := api(); c != 401 {
		t.Fatalf("past the lifetime: %d", c)
	}
	// A clock that goes backwards does not revive anything.
	cookie = f.signIn(t)
	f.clock.Add(-time.Hour)
	if c := api(); c != 401 {
		t.Fatalf("clock went back: %d", c)
	}
}

func TestSessionsBounded(t *testing.T) {
	f := newFixture(t)
	first := f.signIn(t)
	for range MaxSessions + 10 {
		f.clock.Add(13 * time.Second) // within the sign-in rate limit
		f.signIn(t)
	}
	if n := f.d.sessions.count(); n != MaxSessions {
		t.Fatalf("%d sessions kept, want %d", n, MaxSessions)
	}
	if c := f.do("GET", "/dashboard/api/config", "", withCookie(first)).Code; c != 401 {
		t.Fatalf("oldest session not evicted: %d", c)
	}
}

func TestTokenRotationEndsSessions(t *testing.T) {
	var cur atomic.Pointer[secret.Digest]
	d0 := secret.SumString(testToken)
	cur.Store(&d0)
	f := newFixture(t, func(o *Options) {
		o.TokenHash = secret.Digest{}
		o.CurrentTokenHash = func() secret.Digest { return *cur.Load() }
	})
	cookie := f.signIn(t)
	d1 := secret.SumString("bwadm_rotated")
	cur.Store(&d1)
	if c := f.do("GET", "/dashboard/api/config", "", withCookie(cookie)).Code; c != 401 {
		t.Fatalf("session of the old token: %d", c)
	}
	if w := f.do("POST", "/dashboard/login", form("token", testToken)); w.Code != 401 {
		t.Fatalf("old token signs in: %d", w.Code)
	}
	if w := f.do("POST", "/dashboard/login", form("token", "bwadm_rotated")); w.Code != 303 {
		t.Fatalf("new token: %d", w.Code)
	}
}

func TestNewNeedsToken(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without a token digest succeeded")
	}
}

func TestAPINeedsSession(t *testing.T) {
	f := newFixture(t)
	good := f.signIn(t)
	bad := []struct {
		name string
		opt  reqOpt
	}{
		{"no cookie", func(*http.Request) {}},
		{"unknown id", withCookie(strings.Repeat("A", 43))},
		{"id too short", withCookie(good[:42])},
		{"id too long", withCookie(good + "A")},
		{"id not base64url", withCookie(strings.Repeat("*", 43))},
		{"id padded", withCookie(good[:42] + "=")},
		{"the id's hash", withCookie(strings.Repeat("a", 43))},
		{"bearer token instead", withHeader("Authorization", "Bearer "+testToken)},
	}
	for _, ep := range []string{"summary", "events", "inventory", "audit", "config", "nope"} {
		for _, b := range bad {
			w := f.do("GET", "/dashboard/api/"+ep, "", b.opt)
			if w.Code != 401 || w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Content-Type") != "application/json" {
				t.Errorf("%s, %s: %d %v", ep, b.name, w.Code, w.Header())
			}
		}
	}
	// With a session, cross-site fetches are refused.
	if w := f.do("GET", "/dashboard/api/config", "", withCookie(good), withHeader("Sec-Fetch-Site", "cross-site")); w.Code != 403 {
		t.Errorf("cross-site fetch: %d", w.Code)
	}
	if w := f.do("GET", "/dashboard/api/config", "", withCookie(good), withHeader("Sec-Fetch-Site", "same-origin")); w.Code != 200 {
		t.Errorf("same-origin fetch: %d", w.Code)
	}
}

func TestAPIQueries(t *testing.T) {
	f := newFixture(t)
	c := withCookie(f.signIn(t))
	tests := []struct {
		target string
		status int
	}{
		{"summary", 200},
		{"summary?window=5", 200},
		{"summary?window=595", 200},
		{"summary?window=4", 400},
		{"summary?window=596", 400},
		{"summary?window=-1", 400},
		{"summary?window=1e3", 400},
		{"summary?window=60&window=60", 400},
		{"summary?other=1", 400},
		{"summary?%zz", 400},
		{"summary?window=" + strings.Repeat("9", 300), 400},
		{"events", 200},
		{"events?limit=1", 200},
		{"events?limit=500", 200},
		{"events?limit=0", 400},
		{"events?limit=501", 400},
		{"events?limit=99999999999999999999", 400},
		{"events?kind=ban", 400},
		{"config?x=1", 400},
		{"inventory", 200},
		{"audit", 200},
		{"config", 200},
		{"../config", 404},
		{"summary/x", 404},
	}
	for _, tc := range tests {
		w := f.do("GET", "/dashboard/api/"+tc.target, "", c)
		if w.Code != tc.status {
			t.Errorf("%s: %d, want %d: %s", tc.target, w.Code, tc.status, w.Body)
		}
		if w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q", tc.target, w.Header().Get("Cache-Control"))
		}
		if strings.Contains(w.Body.String(), strings.Repeat("9", 30)) {
			t.Errorf("%s: client input echoed", tc.target)
		}
	}
}

func TestAPISources(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Events = nil })
	c := withCookie(f.signIn(t))
	for _, ep := range []string{"events", "inventory", "audit", "config"} {
		w := f.do("GET", "/dashboard/api/"+ep, "", c)
		if w.Code != 200 || strings.TrimSpace(w.Body.String()) != `{"available":false}` {
			t.Errorf("%s not wired: %d %s", ep, w.Code, w.Body)
		}
	}

	var audits atomic.Int32
	fail := atomic.Bool{}
	f = newFixture(t, func(o *Options) {
		o.Inventory = func() any { return map[string]any{"routes": []string{"orders"}} }
		o.Config = func() any { return map[string]any{"admin": map[string]string{"token_hash": "sha256:1a2b…"}} }
		o.Audit = func(ctx context.Context) (*audit.Report, error) {
			audits.Add(1)
			if fail.Load() {
				return nil, errors.New("config file /etc/secret-path unreadable")
			}
			return &audit.Report{Score: 96, Findings: []audit.Finding{{Rule: "BW-CFG-003", Severity: audit.Medium, Message: "m"}}}, nil
		}
	})
	c = withCookie(f.signIn(t))
	for i := range 3 {
		f.events.Emit(telemetry.Event{Kind: telemetry.EventAuthFailure, ClientIP: "192.0.2.1", Reason: "unknown key", Route: "r" + string(rune('0'+i))})
	}
	var ev struct {
		Available bool              `json:"available"`
		Data      []telemetry.Event `json:"data"`
	}
	if err := json.Unmarshal(f.do("GET", "/dashboard/api/events?limit=2", "", c).Body.Bytes(), &ev); err != nil {
		t.Fatal(err)
	}
	if !ev.Available || len(ev.Data) != 2 || ev.Data[0].Route != "r2" {
		t.Fatalf("events: %+v", ev)
	}
	if b := f.do("GET", "/dashboard/api/inventory", "", c).Body.String(); !strings.Contains(b, `"orders"`) {
		t.Errorf("inventory: %s", b)
	}
	if b := f.do("GET", "/dashboard/api/config", "", c).Body.String(); !strings.Contains(b, `"token_hash"`) {
		t.Errorf("config: %s", b)
	}
	for range 3 {
		if b := f.do("GET", "/dashboard/api/audit", "", c).Body.String(); !strings.Contains(b, `"BW-CFG-003"`) || !strings.Contains(b, `"severity":"medium"`) {
			t.Fatalf("audit: %s", b)
		}
	}
	if audits.Load() != 1 {
		t.Fatalf("audit ran %d times within a minute", audits.Load())
	}
	f.clock.Add(AuditCacheTTL)
	fail.Store(true)
	b := f.do("GET", "/dashboard/api/audit", "", c).Body.String()
	if audits.Load() != 2 || !strings.Contains(b, "the audit failed") || strings.Contains(b, "secret-path") {
		t.Fatalf("after a minute: %d runs, %s", audits.Load(), b)
	}
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	f := newFixture(t)
	cookie := f.signIn(t)
	reqs := []struct {
		method, target, body string
		opts                 []reqOpt
	}{
		{"GET", "/dashboard/", "", nil},
		{"HEAD", "/dashboard/", "", nil},
		{"GET", "/dashboard/", "", []reqOpt{withCookie(cookie)}},
		{"GET", "/dashboard", "", nil},
		{"GET", "/dashboard/nope", "", nil},
		{"GET", "/other", "", nil},
		{"DELETE", "/dashboard/", "", nil},
		{"POST", "/dashboard/login", form("token", "bad"), nil},
		{"POST", "/dashboard/login", form("token", testToken), []reqOpt{withHeader("Origin", "https://evil.example")}},
		{"POST", "/dashboard/logout", form("csrf", "bad"), []reqOpt{withCookie(cookie)}},
		{"GET", "/dashboard/assets/app.js", "", nil},
		{"GET", "/dashboard/assets/nope.js", "", nil},
		{"GET", "/dashboard/api/summary", "", nil},
		{"GET", "/dashboard/api/summary", "", []reqOpt{withCookie(cookie)}},
		{"PUT", "/dashboard/api/summary", "", []reqOpt{withCookie(cookie)}},
	}
	for _, rq := range reqs {
		w := f.do(rq.method, rq.target, rq.body, rq.opts...)
		h := w.Header()
		if h.Get("Content-Security-Policy") != ContentSecurityPolicy || h.Get("X-Frame-Options") != "DENY" ||
			h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s (%d): headers %v", rq.method, rq.target, w.Code, h)
		}
		if h.Get("Content-Type") == "" && w.Code != 301 && w.Code != 303 {
			t.Errorf("%s %s (%d): no Content-Type", rq.method, rq.target, w.Code)
		}
	}
}

func TestAssets(t *testing.T) {
	f := newFixture(t)
	page := f.do("GET", "/dashboard/", "", withCookie(f.signIn(t))).Body.String()
	signin := f.do("GET", "/dashboard/", "").Body.String()
	linked := regexp.MustCompile(`(?:src|href)="/dashboard/assets/([^"]+)"`)
	want := map[string]string{
		".js":  "text/javascript; charset=utf-8",
		".css": "text/css; charset=utf-8",
	}
	n := 0
	for _, m := range linked.FindAllStringSubmatch(page+signin, -1) {
		n++
		name := m[1]
		if !regexp.MustCompile(`\.[0-9a-f]{12}\.(js|css)$`).MatchString(name) {
			t.Errorf("page links %s, not a hashed name", name)
		}
		w := f.do("GET", "/dashboard/assets/"+name, "")
		ext := name[strings.LastIndexByte(name, '.'):]
		if w.Code != 200 || w.Header().Get("Content-Type") != want[ext] || !strings.Contains(w.Header().Get("Cache-Control"), "immutable") || w.Body.Len() == 0 {
			t.Errorf("%s: %d %v", name, w.Code, w.Header())
		}
		etag := w.Header().Get("ETag")
		if w := f.do("GET", "/dashboard/assets/"+name, "", withHeader("If-None-Match", etag)); w.Code != 304 {
			t.Errorf("%s revalidation: %d", name, w.Code)
		}
	}
	if n < 4 {
		t.Fatalf("pages link %d assets, want the app's JS, CSS and uPlot's", n)
	}
	for name, ct := range map[string]string{"app.js": want[".js"], "uPlot.min.css": want[".css"], "uPlot-LICENSE.txt": "text/plain; charset=utf-8"} {
		w := f.do("GET", "/dashboard/assets/"+name, "")
		if w.Code != 200 || w.Header().Get("Content-Type") != ct || w.Header().Get("Cache-Control") != "no-cache" || w.Header().Get("ETag") == "" {
			t.Errorf("%s: %d %v", name, w.Code, w.Header())
		}
	}
	for _, name := range []string{"app.html", "signin.html", "../dashboard.go", "", "APP.JS", "app.js/"} {
		if w := f.do("GET", "/dashboard/assets/"+name, ""); w.Code != 404 {
			t.Errorf("%q: %d, want 404", name, w.Code)
		}
	}
	if w := f.do("HEAD", "/dashboard/assets/app.js", ""); w.Code != 200 || w.Body.Len() != 0 {
		t.Errorf("HEAD: %d, %d bytes", w.Code, w.Body.Len())
	}
}

// TestNoInlineScriptOrStyle checks what the CSP would refuse anyway, so
// that a page never depends on it.
func TestNoInlineScriptOrStyle(t *testing.T) {
	f := newFixture(t)
	pages := map[string]string{
		"app":    f.do("GET", "/dashboard/", "", withCookie(f.signIn(t))).Body.String(),
		"signin": f.do("GET", "/dashboard/", "").Body.String(),
	}
	bad := regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]|<style|\sstyle=|\son[a-z]+=|javascript:`)
	for name, p := range pages {
		if m := bad.FindString(p); m != "" {
			t.Errorf("%s page: inline script or style: %q", name, m)
		}
		for _, s := range regexp.MustCompile(`<script[^>]*>`).FindAllString(p, -1) {
			if !strings.Contains(s, `src="/dashboard/assets/`) {
				t.Errorf("%s page: script without src: %s", name, s)
			}
		}
	}
	js, err := assetFS.ReadFile("assets/app.js")
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function`).Match(js) {
		t.Error("app.js must build the DOM with textContent only")
	}
}

// newTLSServer serves h over real TLS and returns its base URL.
func newTLSServer(t testing.TB, h http.Handler) string {
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// otherLastChar returns s with its last character changed (to a valid
// character of the same alphabet), so it is never s itself.
func otherLastChar(s string) string {
	last := s[len(s)-1]
	repl := byte('A')
	if last == 'A' {
		repl = 'Q'
	}
	return s[:len(s)-1] + string(repl)
}
