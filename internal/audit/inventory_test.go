package audit

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/inventory"
)

func TestInventoryFindings(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "breakwater.yaml")
	spec := filepath.Join(dir, "openapi.yaml")
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(cfg, "routes:\n  - name: api\n    path: /v1/**\n    auth: none\n    openapi: {spec: openapi.yaml}\n  - name: old\n    path: /old\n    auth: none\n")
	write(spec, specHead+"paths:\n  /v1/a:\n    get: {deprecated: true}\n  /v1/b:\n    get: {}\n")
	last := time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)
	inv := &inventory.Report{
		Since: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		Zombies: []inventory.Zombie{
			{Kind: "route", Route: "old", IdleDays: 45},
			{Kind: "operation", Route: "api", Operation: "GET /v1/b", IdleDays: 45, LastSeen: &last},
			{Kind: "route", Route: "gone", IdleDays: 45},
		},
		Shadow: []inventory.Stats{
			{Route: "api", Method: "GET", Path: "/v1/{id}/export", Requests: 9, Status: inventory.StatusClasses{S2xx: 8, S4xx: 1},
				Consumers: []string{"a", "b", "c", "d", "e", "f"}, DistinctConsumers: 7},
			{Route: "api", Method: "GET", Path: "/v1/.env", Requests: 50, Status: inventory.StatusClasses{S4xx: 50}},
		},
		Deprecated: []inventory.Stats{{Route: "api", Operation: "GET /v1/a", Requests: 3, Consumers: []string{"legacy"}, DistinctConsumers: 1, LastSeen: &last}},
	}
	const source = "http://127.0.0.1:9901/admin/inventory"
	rep, err := Run(context.Background(), Options{Config: cfg, Inventory: inv, InventorySource: source,
		LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range rep.Findings {
		if strings.HasPrefix(f.Rule, "BW-INV-") {
			got = append(got, f.Rule+" "+strings.TrimPrefix(f.Location(), dir+"/")+" "+f.Message)
		}
	}
	want := []string{
		`BW-INV-002 breakwater.yaml:2:5 GET /v1/{id}/export on route "api" is not in the route's spec but was served 8 times (of 9 requests; last never) to "a", "b", "c", "d", "e" and 2 more: an undocumented (shadow) endpoint`,
		`BW-INV-001 breakwater.yaml:6:5 route "old" has had no traffic for 45 days (no request since counting started on 2025-01-01): remove it if nobody needs it`,
		`BW-INV-001 openapi.yaml:7:5 operation "GET /v1/b" of route "api" has had no traffic for 45 days (last request 2025-01-02): remove it if nobody needs it`,
		`BW-INV-001 ` + source + ` route "gone" has had no traffic for 45 days (no request since counting started on 2025-01-01): remove it if nobody needs it`,
		`BW-INV-003 openapi.yaml:5:5 deprecated operation "GET /v1/a" of route "api" is still called: 3 requests, last 2025-01-02, by "legacy"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rep.Files[len(rep.Files)-1] != source {
		t.Errorf("files %v do not end with the inventory", rep.Files)
	}

	// Without a config: every finding at the inventory URL.
	rep, err = Run(context.Background(), Options{Inventory: inv, InventorySource: source})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 5 {
		t.Fatalf("%d findings without a config, want 5", len(rep.Findings))
	}
	for _, f := range rep.Findings {
		if f.File != source || f.Line != 0 {
			t.Errorf("finding at %s, want %s", f.Location(), source)
		}
	}
	var sarif strings.Builder
	if err := WriteSARIF(&sarif, rep, "test"); err != nil || !strings.Contains(sarif.String(), `"uri": "`+source+`"`) {
		t.Errorf("SARIF location: %v", err)
	}

	// An accepted risk, written in the config.
	write(cfg, "x-breakwater-ignore: [BW-INV-001]\nroutes:\n  - name: old\n    path: /old\n    auth: none\n")
	rep, err = Run(context.Background(), Options{Config: cfg, Inventory: &inventory.Report{Zombies: inv.Zombies[:1]},
		LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	if len(ruleFindings(rep, "BW-INV-001")) != 0 || rep.Ignored == 0 {
		t.Errorf("x-breakwater-ignore not applied: %+v", rep.Findings)
	}
}
