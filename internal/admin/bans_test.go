package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/secret"
	"github.com/breakwater/breakwater/internal/state"
)

// fakeBans is a state.MemoryBans behind the admin.Bans interface.
type fakeBans struct {
	m      *state.MemoryBans
	lifted []string
	err    error
}

func (f *fakeBans) ListBans(ctx context.Context, limit int) ([]state.Ban, int, error) {
	if f.err != nil {
		return nil, 0, f.err
	}
	return f.m.List(ctx, limit)
}

func (f *fakeBans) LiftBan(ctx context.Context, key string) (bool, error) {
	if f.err != nil {
		return false, f.err
	}
	f.lifted = append(f.lifted, key)
	return f.m.Lift(ctx, key)
}

func TestBanEndpoints(t *testing.T) {
	const token = "bwadm_token"
	cfg := &config.Config{Version: 1, Admin: config.Admin{TokenHash: secret.SumString(token)}}
	fb := &fakeBans{m: state.NewMemoryBans(state.BanOptions{})}
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	for _, k := range []string{"ip:192.0.2.1", "ip:2001:db8:1:2::/64", "consumer:acme"} {
		if _, err := fb.m.Ban(ctx, state.Ban{Key: k, Reason: "auth_failures", Until: until}); err != nil {
			t.Fatal(err)
		}
	}
	h := New(Options{Gateway: &fakeGateway{cfg: cfg, ready: true}, Reload: func(context.Context) error { return nil },
		Stats: func() any { return nil }, Bans: fb})
	do := func(method, target string, auth bool) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, target, nil)
		if auth {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for _, tc := range []struct {
		name, method, target string
		auth                 bool
		want                 int
		body                 string // substring of the body
	}{
		{"list needs the token", "GET", "/admin/bans", false, 401, ""},
		{"lift needs the token", "DELETE", "/admin/bans/ip:192.0.2.1", false, 401, ""},
		{"list", "GET", "/admin/bans", true, 200, `"total": 3`},
		{"list limited", "GET", "/admin/bans?limit=1", true, 200, `"total": 3`},
		{"limit zero", "GET", "/admin/bans?limit=0", true, 400, "limit"},
		{"limit huge", "GET", "/admin/bans?limit=10001", true, 400, "limit"},
		{"limit twice", "GET", "/admin/bans?limit=1&limit=2", true, 400, "limit"},
		{"unknown parameter", "GET", "/admin/bans?key=x", true, 400, "unknown query parameter"},
		{"lift IPv6 by an address of its /64", "DELETE", "/admin/bans/ip:2001:db8:1:2::99", true, 200, `"key": "ip:2001:db8:1:2::/64"`},
		{"lift IPv4", "DELETE", "/admin/bans/ip:192.0.2.1", true, 200, `"status": "lifted"`},
		{"lift twice", "DELETE", "/admin/bans/ip:192.0.2.1", true, 404, "no ban in force"},
		{"lift consumer", "DELETE", "/admin/bans/consumer:acme", true, 200, `"key": "consumer:acme"`},
		{"lift never banned", "DELETE", "/admin/bans/ip:198.51.100.1", true, 404, ""},
		{"not a ban key", "DELETE", "/admin/bans/host:evil", true, 400, `ban key: a ban key starts with`},
		{"empty key", "DELETE", "/admin/bans/", true, 400, ""},
		{"escaped garbage", "DELETE", "/admin/bans/ip:%00", true, 400, ""},
		{"prefix not /64", "DELETE", "/admin/bans/ip:2001:db8::/48", true, 400, ""},
		{"wrong method", "POST", "/admin/bans", true, 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := do(tc.method, tc.target, tc.auth)
			if w.Code != tc.want || !strings.Contains(w.Body.String(), tc.body) {
				t.Fatalf("%d %s, want %d with %q", w.Code, w.Body, tc.want, tc.body)
			}
			if strings.Contains(w.Body.String(), "evil") || strings.Contains(w.Body.String(), "\x00") {
				t.Fatalf("body echoes the key: %s", w.Body)
			}
		})
	}
	if strings.Join(fb.lifted, ",") != "ip:2001:db8:1:2::/64,ip:192.0.2.1,ip:192.0.2.1,consumer:acme,ip:198.51.100.1" {
		t.Fatalf("lifted %v", fb.lifted)
	}
	w := do("GET", "/admin/bans", true)
	var resp BansResponse
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || resp.Total != 0 || resp.Bans == nil {
		t.Fatalf("after lifting: %s (%v)", w.Body, err)
	}
	fb.err = errors.New("redis: connection refused")
	if w := do("GET", "/admin/bans", true); w.Code != 503 || strings.Contains(w.Body.String(), "redis") {
		t.Fatalf("store error: %d %s", w.Code, w.Body)
	}
	if w := do("DELETE", "/admin/bans/ip:192.0.2.1", true); w.Code != 503 {
		t.Fatalf("store error: %d", w.Code)
	}
}

func TestNoBanEndpointsWithoutStore(t *testing.T) {
	const token = "t"
	cfg := &config.Config{Version: 1, Admin: config.Admin{TokenHash: secret.SumString(token)}}
	h := New(Options{Gateway: &fakeGateway{cfg: cfg, ready: true}, Reload: func(context.Context) error { return nil }, Stats: func() any { return nil }})
	r := httptest.NewRequest("GET", "/admin/bans", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusNotFound {
		t.Fatalf("%d", w.Code)
	}
}
