package dashboard

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzRequest sends arbitrary requests (raw HTTP/1.1, parsed as the
// server would) to the dashboard, with and without a valid session: no
// panic, the security headers always, no token or session id in a body,
// and the API answers 200 only to a valid session.
func FuzzRequest(f *testing.F) {
	seeds := []string{
		"GET /dashboard/ HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /dashboard/login HTTP/1.1\r\nHost: a\r\nOrigin: http://a\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\ntoken=x",
		"POST /dashboard/logout HTTP/1.1\r\nHost: a\r\nX-CSRF-Token: abc\r\nCookie: bw_session=SESSION\r\n\r\n",
		"GET /dashboard/api/summary?window=30 HTTP/1.1\r\nHost: a\r\nCookie: bw_session=SESSION\r\n\r\n",
		"GET /dashboard/api/events?limit=0 HTTP/1.1\r\nHost: a\r\nCookie: bw_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n\r\n",
		"GET /dashboard/assets/app.js HTTP/1.1\r\nHost: a\r\nIf-None-Match: W/\"x\", *\r\n\r\n",
		"GET /dashboard/api/config HTTP/1.1\r\nHost: a\r\nCookie: bw_session=SESSION; bw_session=x\r\nSec-Fetch-Site: cross-site\r\n\r\n",
		"POST /dashboard/login?token=abc HTTP/1.1\r\nHost: a\r\nOrigin: null\r\nContent-Length: 0\r\n\r\n",
		"GET /dashboard/%2e%2e/api/config HTTP/1.1\r\nHost: a\r\n\r\n",
	}
	for _, s := range seeds {
		f.Add(s, true)
		f.Add(s, false)
	}
	fx := newFixture(f)
	sess := fx.signIn(f)
	f.Fuzz(func(t *testing.T, raw string, withSession bool) {
		if withSession {
			raw = strings.ReplaceAll(raw, "SESSION", sess)
		}
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			return
		}
		r.RemoteAddr = "192.0.2.1:1"
		w := httptest.NewRecorder()
		fx.d.ServeHTTP(w, r)
		h := w.Header()
		if h.Get("Content-Security-Policy") != ContentSecurityPolicy || h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("security headers missing: %v", h)
		}
		body := w.Body.String()
		if strings.Contains(body, testToken) || strings.Contains(body, sess) {
			t.Fatal("a secret in a response body")
		}
		if strings.HasPrefix(r.URL.Path, "/dashboard/api/") && w.Code == 200 {
			if _, _, ok := fx.d.sessions.lookup(r, fx.clock.Now(), fx.d.tokenHash()); !ok {
				t.Fatal("API answered 200 without a session")
			}
		}
		fx.clock.Add(time.Second) // the sign-in limiter moves on
	})
}

// FuzzSameOrigin: no panic; whenever a browser header is accepted, it
// names the request's Host.
func FuzzSameOrigin(f *testing.F) {
	for _, s := range [][4]string{
		{"admin.test", "http://admin.test", "", ""},
		{"admin.test", "null", "", ""},
		{"admin.test", "", "http://admin.test/dashboard/", "same-origin"},
		{"admin.test:9000", "https://ADMIN.test:9000", "", ""},
		{"admin.test", "http://admin.test@evil", "", ""},
		{"admin.test", "javascript:alert(1)", "", "cross-site"},
		{"", "http://", "", ""},
		{"a", "http://a\x00", "//a", "none"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, host, origin, referer, site string) {
		r := &http.Request{Host: host, Header: http.Header{}}
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		if referer != "" {
			r.Header.Set("Referer", referer)
		}
		if site != "" {
			r.Header.Set("Sec-Fetch-Site", site)
		}
		ok, why := sameOrigin(r)
		if ok != (why == "") {
			t.Fatalf("ok=%v why=%q", ok, why)
		}
		if !ok {
			return
		}
		if site != "" && site != "same-origin" {
			t.Fatalf("accepted Sec-Fetch-Site %q", site)
		}
		named := origin
		if named == "null" && site == "same-origin" {
			return
		}
		if named == "" {
			named = referer
		}
		if named == "" {
			return
		}
		u, err := url.Parse(named)
		if err != nil || !strings.EqualFold(u.Host, host) || host == "" {
			t.Fatalf("accepted %q for Host %q", named, host)
		}
	})
}
