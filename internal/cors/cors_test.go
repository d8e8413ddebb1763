package cors

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/problem"
)

func mustNew(t testing.TB, c config.CORS) *Policy {
	t.Helper()
	p, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewRefuses(t *testing.T) {
	for name, c := range map[string]config.CORS{
		"no origins":         {},
		"star + credentials": {AllowedOrigins: []string{"*"}, AllowCredentials: true},
		"path":               {AllowedOrigins: []string{"https://a.example/x"}},
		"null":               {AllowedOrigins: []string{"null"}},
		"no scheme":          {AllowedOrigins: []string{"a.example"}},
		"bad method":         {AllowedOrigins: []string{"https://a.example"}, AllowedMethods: []string{"GET POST"}},
		"bad header":         {AllowedOrigins: []string{"https://a.example"}, AllowedHeaders: []string{"a:b"}},
		"negative max_age":   {AllowedOrigins: []string{"https://a.example"}, MaxAge: config.Duration(-time.Second)},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

func TestParseOrigin(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://app.example.com", "https://app.example.com"},
		{"HTTPS://App.Example.COM", "https://app.example.com"},
		{"https://app.example.com:443", "https://app.example.com"},
		{"http://app.example.com:80", "http://app.example.com"},
		{"https://app.example.com:80", "https://app.example.com:80"},
		{"http://localhost:3000", "http://localhost:3000"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"http://[::1]:8080", "http://[::1]:8080"},
		{"http://[0:0::1]", "http://[::1]"},
		{"https://[FE80::1]", "https://[fe80::1]"},
		// attack rows
		{"null", ""},
		{"", ""},
		{"*", ""},
		{"https://", ""},
		{"https://app.example.com/", ""},
		{"https://app.example.com/x", ""},
		{"https://app.example.com?x", ""},
		{"https://app.example.com#x", ""},
		{"https://user@app.example.com", ""},
		{"https://app.example.com.evil.com@x", ""},
		{"https://app.example.com:", ""},
		{"https://app.example.com:0", ""},
		{"https://app.example.com:0443", ""},
		{"https://app.example.com:65536", ""},
		{"https://app.example.com:-1", ""},
		{"https://app.example.com:1:2", ""},
		{"https://app example.com", ""},
		{"https://app.example.com\r\nSet-Cookie: x", ""},
		{"https://app.example.com\x00", ""},
		{"https://.example.com", ""},
		{"https://a..example.com", ""},
		{"https://[fe80::1%eth0]", ""},
		{"https://[::1", ""},
		{"https://[::1]x", ""},
		{"https://[127.0.0.1]", ""},
		{"file://app.example.com", ""},
		{"javascript://app.example.com", ""},
		{"https://ápp.example.com", ""},
		{"https://" + strings.Repeat("a", 64) + ".com", ""},
		{"https://" + strings.Repeat("a.", 300), ""},
	} {
		got, ok := ParseOrigin(tc.in)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("ParseOrigin(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
}

func TestPreflight(t *testing.T) {
	p := mustNew(t, config.CORS{
		AllowedOrigins:   []string{"https://app.example.com", "http://localhost:3000"},
		AllowedMethods:   []string{"GET", "PUT", "DELETE"},
		AllowedHeaders:   []string{"Content-Type", "X-API-Key"},
		AllowCredentials: true,
		MaxAge:           config.Duration(time.Hour),
	})
	for _, tc := range []struct {
		name    string
		origin  []string
		method  []string
		headers []string
		want    int
	}{
		{"allowed", []string{"https://app.example.com"}, []string{"PUT"}, []string{"content-type, x-api-key"}, 204},
		{"no requested headers", []string{"https://app.example.com"}, []string{"GET"}, nil, 204},
		{"headers case-insensitive", []string{"https://app.example.com"}, []string{"GET"}, []string{"Content-Type,X-Api-Key"}, 204},
		{"headers on two lines", []string{"https://app.example.com"}, []string{"GET"}, []string{"content-type", "x-api-key"}, 204},
		{"empty items", []string{"https://app.example.com"}, []string{"GET"}, []string{" , content-type,,"}, 204},
		{"origin with port", []string{"http://localhost:3000"}, []string{"GET"}, nil, 204},
		{"default port written", []string{"https://app.example.com:443"}, []string{"GET"}, nil, 204},
		{"uppercase host", []string{"https://APP.example.com"}, []string{"GET"}, nil, 204},
		// attack rows
		{"unlisted origin", []string{"https://evil.example"}, []string{"GET"}, nil, 403},
		{"suffix of listed", []string{"https://app.example.com.evil.example"}, []string{"GET"}, nil, 403},
		{"prefix of listed", []string{"https://evilapp.example.com"}, []string{"GET"}, nil, 403},
		{"other scheme", []string{"http://app.example.com"}, []string{"GET"}, nil, 403},
		{"other port", []string{"http://localhost:3001"}, []string{"GET"}, nil, 403},
		{"null origin", []string{"null"}, []string{"GET"}, nil, 403},
		{"two origins", []string{"https://app.example.com", "https://evil.example"}, []string{"GET"}, nil, 403},
		{"method not allowed", []string{"https://app.example.com"}, []string{"PATCH"}, nil, 403},
		{"method case", []string{"https://app.example.com"}, []string{"put"}, nil, 403},
		{"two methods", []string{"https://app.example.com"}, []string{"GET", "PUT"}, nil, 403},
		{"header not allowed", []string{"https://app.example.com"}, []string{"GET"}, []string{"content-type, authorization"}, 403},
		{"bad header name", []string{"https://app.example.com"}, []string{"GET"}, []string{"content-type\x00"}, 403},
		{"too many headers", []string{"https://app.example.com"}, []string{"GET"}, []string{strings.Repeat("content-type,", 65)}, 403},
		{"headers too long", []string{"https://app.example.com"}, []string{"GET"}, []string{strings.Repeat(" ", 5000) + "content-type"}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodOptions, "/v1/orders", nil)
			r.Header["Origin"] = tc.origin
			r.Header["Access-Control-Request-Method"] = tc.method
			if tc.headers != nil {
				r.Header["Access-Control-Request-Headers"] = tc.headers
			}
			w := httptest.NewRecorder()
			if !p.Handle(w, r) {
				t.Fatal("preflight not answered")
			}
			h := w.Header()
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d", w.Code, tc.want)
			}
			if got := h.Get("Vary"); got != "Origin, Access-Control-Request-Method, Access-Control-Request-Headers" {
				t.Errorf("Vary %q", got)
			}
			if tc.want == 403 {
				if h.Get("Content-Type") != problem.ContentType {
					t.Errorf("403 is not a problem: %q", h.Get("Content-Type"))
				}
				for k := range h {
					if strings.HasPrefix(k, "Access-Control-") {
						t.Errorf("refused preflight has %s", k)
					}
				}
				return
			}
			want := map[string]string{
				"Access-Control-Allow-Origin":      tc.origin[0],
				"Access-Control-Allow-Methods":     "GET, PUT, DELETE",
				"Access-Control-Allow-Headers":     "Content-Type, X-API-Key",
				"Access-Control-Allow-Credentials": "true",
				"Access-Control-Max-Age":           "3600",
			}
			for k, v := range want {
				if got := h.Values(k); len(got) != 1 || got[0] != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if w.Body.Len() != 0 {
				t.Errorf("204 with a body")
			}
		})
	}
}

func TestActualRequest(t *testing.T) {
	exact := mustNew(t, config.CORS{AllowedOrigins: []string{"https://app.example.com"}, AllowCredentials: true})
	star := mustNew(t, config.CORS{AllowedOrigins: []string{"*"}})
	mixed := mustNew(t, config.CORS{AllowedOrigins: []string{"*", "https://app.example.com"}})
	for _, tc := range []struct {
		name        string
		p           *Policy
		method      string
		origin      []string
		allowOrigin string
		credentials bool
		vary        bool
	}{
		{"listed", exact, "GET", []string{"https://app.example.com"}, "https://app.example.com", true, true},
		{"listed, default port", exact, "POST", []string{"https://app.example.com:443"}, "https://app.example.com:443", true, true},
		{"no origin", exact, "GET", nil, "", false, true},
		{"options without request method", exact, "OPTIONS", []string{"https://app.example.com"}, "https://app.example.com", true, true},
		{"star", star, "GET", []string{"https://any.example"}, "*", false, false},
		{"star, no origin", star, "GET", nil, "", false, false},
		{"mixed listed", mixed, "GET", []string{"https://app.example.com"}, "https://app.example.com", false, true},
		{"mixed other", mixed, "GET", []string{"https://b.example"}, "*", false, true},
		// attack rows: never reflected
		{"unlisted", exact, "GET", []string{"https://evil.example"}, "", false, true},
		{"null", exact, "GET", []string{"null"}, "", false, true},
		{"null with star", star, "GET", []string{"null"}, "", false, false},
		{"garbage with star", star, "GET", []string{"https://a.example/\r\n"}, "", false, false},
		{"two origins", exact, "GET", []string{"https://app.example.com", "https://app.example.com"}, "", false, true},
		{"suffix", exact, "GET", []string{"https://app.example.com.evil.example"}, "", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "/v1/orders", nil)
			if tc.origin != nil {
				r.Header["Origin"] = tc.origin
			}
			w := httptest.NewRecorder()
			w.Header().Set("Vary", "Accept-Encoding")
			if tc.p.Handle(w, r) {
				t.Fatal("actual request answered by CORS")
			}
			h := w.Header()
			if got := h.Get("Access-Control-Allow-Origin"); got != tc.allowOrigin {
				t.Errorf("Allow-Origin %q, want %q", got, tc.allowOrigin)
			}
			if got := h.Get("Access-Control-Allow-Credentials") == "true"; got != tc.credentials {
				t.Errorf("Allow-Credentials %v", got)
			}
			if got := h.Get("Access-Control-Expose-Headers") != ""; got != (tc.allowOrigin != "") {
				t.Errorf("Expose-Headers present: %v", got)
			}
			vary := strings.Join(h.Values("Vary"), ",")
			if got := strings.Contains(vary, "Origin"); got != tc.vary {
				t.Errorf("Vary %q", vary)
			}
			if !strings.Contains(vary, "Accept-Encoding") {
				t.Errorf("Vary lost its value: %q", vary)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	p := mustNew(t, config.CORS{AllowedOrigins: []string{"https://app.example.com"}})
	r := httptest.NewRequest(http.MethodOptions, "/", nil)
	r.Header.Set("Origin", "https://app.example.com")
	r.Header.Set("Access-Control-Request-Method", "POST")
	r.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
	w := httptest.NewRecorder()
	p.Handle(w, r)
	if w.Code != 204 || w.Header().Get("Access-Control-Allow-Methods") != DefaultMethods ||
		w.Header().Get("Access-Control-Allow-Headers") != DefaultHeaders || w.Header().Get("Access-Control-Max-Age") != "600" ||
		w.Header().Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("%d %v", w.Code, w.Header())
	}
	r.Header.Set("Access-Control-Request-Method", "DELETE")
	w = httptest.NewRecorder()
	p.Handle(w, r)
	if w.Code != 403 {
		t.Errorf("DELETE allowed by default: %d", w.Code)
	}
}

// The shared header values must not be written through by a later append.
func TestSharedValuesNotAliased(t *testing.T) {
	p := mustNew(t, config.CORS{AllowedOrigins: []string{"https://app.example.com"}})
	w1 := httptest.NewRecorder()
	p.Handle(w1, httptest.NewRequest("GET", "/", nil))
	w1.Header().Add("Vary", "Accept")
	w2 := httptest.NewRecorder()
	p.Handle(w2, httptest.NewRequest("GET", "/", nil))
	if got := w2.Header().Values("Vary"); len(got) != 1 || got[0] != "Origin" {
		t.Errorf("Vary of the second response %q", got)
	}
}

func FuzzParseOrigin(f *testing.F) {
	f.Add("https://app.example.com")
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := ParseOrigin(s)
		if !ok {
			if n != "" {
				t.Fatalf("refused %q but returned %q", s, n)
			}
			return
		}
		if n != strings.ToLower(n) || strings.ContainsAny(n, "/?#@ \t\r\n\x00") && !strings.HasPrefix(n, "http") {
			t.Fatalf("ParseOrigin(%q) = %q", s, n)
		}
		rest := n[strings.Index(n, "://")+3:]
		if strings.ContainsAny(rest, "/?#@ \t\r\n\x00%") {
			t.Fatalf("ParseOrigin(%q) = %q has more than host and port", s, n)
		}
		if again, ok := ParseOrigin(n); !ok || again != n {
			t.Fatalf("not idempotent: %q → %q → %q, %v", s, n, again, ok)
		}
		if s == "null" {
			t.Fatal("null accepted")
		}
	})
}

func BenchmarkHandle(b *testing.B) {
	p := mustNew(b, config.CORS{AllowedOrigins: []string{"https://app.example.com"}, AllowedHeaders: []string{"Content-Type", "X-API-Key"}})
	actual := httptest.NewRequest("GET", "/v1/orders", nil)
	actual.Header.Set("Origin", "https://app.example.com")
	pre := httptest.NewRequest("OPTIONS", "/v1/orders", nil)
	pre.Header.Set("Origin", "https://app.example.com")
	pre.Header.Set("Access-Control-Request-Method", "GET")
	pre.Header.Set("Access-Control-Request-Headers", "content-type,x-api-key")
	none := httptest.NewRequest("GET", "/v1/orders", nil)
	for _, bc := range []struct {
		name string
		r    *http.Request
	}{{"actual", actual}, {"preflight", pre}, {"no-origin", none}} {
		b.Run(bc.name, func(b *testing.B) {
			w := &headerWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				p.Handle(w, bc.r)
			}
		})
	}
}

type headerWriter struct{ h http.Header }

func (w *headerWriter) Header() http.Header         { return w.h }
func (w *headerWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *headerWriter) WriteHeader(int)             {}
