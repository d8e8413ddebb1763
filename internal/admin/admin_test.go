package admin

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/secret"
	"github.com/prometheus/client_golang/prometheus"
)

type fakeGateway struct {
	cfg   *config.Config
	ready bool
}

func (f *fakeGateway) Config() *config.Config { return f.cfg }
func (f *fakeGateway) Ready() bool            { return f.ready }

func TestAdmin(t *testing.T) {
	const token = "bwadm_token"
	key := secret.SumString("bw_consumer_key")
	cfg := &config.Config{
		Version: 1,
		Admin:   config.Admin{TokenHash: secret.SumString(token)},
		Authenticators: map[string]config.Authenticator{
			"opaque": {Type: "introspection", ClientSecret: secret.New("introspect-secret-value")},
		},
		Consumers: []config.Consumer{{ID: "acme", Credentials: []config.Credential{{APIKey: &key}}}},
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "breakwater_test_total", Help: "test"}))
	reloadErr := errors.New("x.yaml:3:4: routes[0].auth: required")
	var reloads int
	h := New(Options{
		Gateway: &fakeGateway{cfg: cfg, ready: true},
		Reload: func(context.Context) error {
			reloads++
			if reloads > 1 {
				return reloadErr
			}
			return nil
		},
		Stats:   func() any { return map[string]int{"in_flight": 0} },
		Metrics: reg,
	})
	do := func(method, path, auth string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for _, tc := range []struct {
		method, path, auth string
		want               int
	}{
		{"GET", "/healthz", "", 200},
		{"GET", "/readyz", "", 200},
		{"GET", "/admin/config", "", 401},
		{"GET", "/admin/config", "Bearer wrong", 401},
		{"GET", "/admin/config", "Basic " + token, 401},
		{"GET", "/admin/config", "Bearer " + token, 200},
		{"GET", "/admin/stats", "bearer " + token, 200},
		{"GET", "/admin/nothing", "", 401},
		{"GET", "/metrics", "", 401},
		{"GET", "/metrics", "Bearer wrong", 401},
		{"GET", "/metrics", "Bearer " + token, 200},
		{"GET", "/debug/pprof/", "", 401},
		{"GET", "/debug/pprof/", "Bearer " + token, 200},
		{"GET", "/admin/nothing", "Bearer " + token, 404},
		{"POST", "/admin/reload", "Bearer " + token, 200},
		{"POST", "/admin/reload", "Bearer " + token, 422},
	} {
		if w := do(tc.method, tc.path, tc.auth); w.Code != tc.want {
			t.Errorf("%s %s (%q): %d, want %d: %s", tc.method, tc.path, tc.auth, w.Code, tc.want, w.Body)
		}
	}
	if m := do("GET", "/metrics", "Bearer "+token).Body.String(); !strings.Contains(m, "breakwater_test_total 0") {
		t.Errorf("/metrics does not serve the registry:\n%s", m)
	}
	body := do("GET", "/admin/config", "Bearer "+token).Body.String()
	for _, leak := range []string{"introspect-secret-value", key.String()[7:], secret.SumString(token).String()[7:]} {
		if strings.Contains(body, leak) {
			t.Errorf("/admin/config leaks %q:\n%s", leak, body)
		}
	}
	if !strings.Contains(body, `"client_secret": "[REDACTED]"`) || !strings.Contains(body, `"consumers"`) {
		t.Errorf("/admin/config does not use the config's field names:\n%s", body)
	}
	if !strings.Contains(do("POST", "/admin/reload", "Bearer "+token).Body.String(), "routes[0].auth: required") {
		t.Error("reload failure does not list the problems")
	}
}

func TestNotReady(t *testing.T) {
	h := New(Options{Gateway: &fakeGateway{}})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("readyz %d", w.Code)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/admin/config", nil))
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("no config must deny: %d", w.Code)
	}
}
