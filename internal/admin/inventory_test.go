package admin

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/inventory"
	"github.com/breakwater/breakwater/internal/secret"
)

func TestInventoryEndpoint(t *testing.T) {
	const token = "bwadm_token"
	cfg := &config.Config{Version: 1, Admin: config.Admin{TokenHash: secret.SumString(token)}}
	inv := inventory.New(inventory.Options{})
	inv.Configure([]inventory.RouteInfo{{Name: "orders"}})
	inv.Record(inventory.Hit{Route: "orders", Status: 200, Consumer: "acme"})
	h := New(Options{Gateway: &fakeGateway{cfg: cfg, ready: true}, Inventory: inv.Handler()})
	for _, tc := range []struct {
		method, path, auth string
		want               int
	}{
		{"GET", "/admin/inventory", "", 401},
		{"GET", "/admin/inventory", "Bearer wrong", 401},
		{"GET", "/admin/inventory", "Bearer " + token, 200},
		{"GET", "/admin/inventory?zombie_after=90d", "Bearer " + token, 200},
		{"GET", "/admin/inventory?zombie_after=-1d", "Bearer " + token, 400},
		{"POST", "/admin/inventory", "Bearer " + token, 405},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%s %s (%q): %d, want %d: %s", tc.method, tc.path, tc.auth, w.Code, tc.want, w.Body)
			continue
		}
		if w.Code == 200 {
			var rep inventory.Report
			if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil || len(rep.Routes) != 1 || rep.Routes[0].Requests != 1 {
				t.Errorf("body %s (%v)", w.Body, err)
			}
		}
	}
	// Without the option, the endpoint does not exist.
	h = New(Options{Gateway: &fakeGateway{cfg: cfg, ready: true}})
	r := httptest.NewRequest("GET", "/admin/inventory", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 404 {
		t.Errorf("no inventory: %d, want 404", w.Code)
	}
}
