package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/breakwater/breakwater/internal/admin"
	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/inventory"
	"github.com/breakwater/breakwater/internal/secret"
)

type adminGateway struct{ cfg *config.Config }

func (g adminGateway) Config() *config.Config { return g.cfg }
func (g adminGateway) Ready() bool            { return true }

const testAdminToken = "bwadm_test_token"

// adminServer is a real admin handler with an inventory: route "users"
// with a spec (one deprecated operation called by "legacy", one shadow
// endpoint served) and route "old", never called, 40 days after the start.
func adminServer(t *testing.T) string {
	t.Helper()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	inv := inventory.New(inventory.Options{Now: func() time.Time { return now }})
	inv.Configure([]inventory.RouteInfo{
		{Name: "users", Spec: true, Operations: []inventory.OperationInfo{{Operation: "GET /v1/users", Deprecated: true}}},
		{Name: "old"},
	})
	inv.Record(inventory.Hit{Route: "users", Operation: "GET /v1/users", Status: 200, Consumer: "legacy"})
	inv.Record(inventory.Hit{Route: "users", Method: "GET", Path: "/users/42/export", Status: 200, Consumer: "acme"})
	now = now.Add(40 * 24 * time.Hour)
	cfg := &config.Config{Version: 1, Admin: config.Admin{TokenHash: secret.SumString(testAdminToken)}}
	srv := httptest.NewServer(admin.New(admin.Options{Gateway: adminGateway{cfg}, Inventory: inv.Handler()}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func runWith(t *testing.T, run func(context.Context, Env, []string) int, vars map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, LookupEnv: func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}}
	code := run(context.Background(), env, args)
	return code, out.String(), errb.String()
}

func TestInventoryCommand(t *testing.T) {
	url := adminServer(t)
	withEnv := map[string]string{adminTokenEnv: testAdminToken}
	for _, tc := range []struct {
		name    string
		vars    map[string]string
		args    []string
		code    int
		out     []string // on stdout
		errOut  string   // on stderr
		noToken bool     // the token must not be printed
	}{
		{name: "help", args: []string{"--help"}, out: []string{"BREAKWATER_ADMIN_TOKEN", "--openapi", "zombie"}},
		{name: "text, token from the environment", vars: withEnv, args: []string{"--admin", url},
			out: []string{"ROUTES (2)", "SHADOW ENDPOINTS", "/users/{id}/export", "ZOMBIES", "DEPRECATED OPERATIONS STILL CALLED (1)", "legacy"}},
		{name: "token flag", args: []string{"--admin", url, "--token", testAdminToken}, out: []string{"ROUTES (2)"}},
		{name: "zombie period", vars: withEnv, args: []string{"--admin", url, "--zombie-after", "60d"}, out: []string{"ZOMBIES: no traffic for 1440h0m0s (0)"}},
		{name: "json", vars: withEnv, args: []string{"--admin", url, "--format", "json"}, out: []string{`"shadow"`, `"generated_at"`}},
		{name: "no token", args: []string{"--admin", url}, code: 2, errOut: adminTokenEnv},
		{name: "wrong token", vars: map[string]string{adminTokenEnv: "wrong"}, args: []string{"--admin", url}, code: 1, errOut: "refused the admin token", noToken: true},
		{name: "bad format", vars: withEnv, args: []string{"--admin", url, "--format", "xml"}, code: 2, errOut: "--format"},
		{name: "bad admin URL", vars: withEnv, args: []string{"--admin", "127.0.0.1:9901"}, code: 2, errOut: "want http://"},
		{name: "bad zombie period", vars: withEnv, args: []string{"--admin", url, "--zombie-after", "1s"}, code: 1, errOut: "400"},
		{name: "unreachable", vars: withEnv, args: []string{"--admin", "http://127.0.0.1:1"}, code: 1, errOut: "reading the inventory", noToken: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runWith(t, runInventory, tc.vars, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.errOut) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut, tc.code, tc.errOut)
			}
			for _, want := range tc.out {
				if !strings.Contains(out, want) {
					t.Errorf("stdout lacks %q:\n%s", want, out)
				}
			}
			if tc.noToken && strings.Contains(out+errOut, testAdminToken) {
				t.Error("the token was printed")
			}
		})
	}
	t.Run("json is the report", func(t *testing.T) {
		_, out, _ := runWith(t, runInventory, withEnv, "--admin", url, "--format", "json")
		var rep inventory.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Zombies) == 0 || len(rep.Deprecated) != 1 {
			t.Errorf("json %v: %s", err, out)
		}
	})
	t.Run("openapi skeleton", func(t *testing.T) {
		code, out, errOut := runWith(t, runInventory, withEnv, "--admin", url, "--openapi")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		var doc struct {
			OpenAPI string                               `yaml:"openapi"`
			Paths   map[string]map[string]map[string]any `yaml:"paths"`
		}
		if err := yaml.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("not YAML: %v\n%s", err, out)
		}
		get := doc.Paths["/users/{id}/export"]["get"]
		if doc.OpenAPI != "3.1.0" || get == nil || get["x-breakwater-shadow"] != true {
			t.Errorf("skeleton:\n%s", out)
		}
	})
}

func TestAuditAdmin(t *testing.T) {
	url := adminServer(t)
	withEnv := map[string]string{adminTokenEnv: testAdminToken}
	code, out, errOut := runWith(t, runAuditCmd, withEnv, "--admin", url, "--format", "json", "--fail-on", "critical")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep struct {
		Files    []string
		Findings []struct{ Rule, Category, File, Message string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	rules := map[string]string{}
	for _, f := range rep.Findings {
		rules[f.Rule] += f.Message + "\n"
		if f.Category != "API9:2023" || f.File != url+"/admin/inventory" {
			t.Errorf("finding %+v", f)
		}
	}
	for rule, want := range map[string]string{
		"BW-INV-001": `route "old" has had no traffic for 40 days`,
		"BW-INV-002": "GET /users/{id}/export",
		"BW-INV-003": `"legacy"`,
	} {
		if !strings.Contains(rules[rule], want) {
			t.Errorf("%s: %q, want %q", rule, rules[rule], want)
		}
	}
	// --fail-on high: the shadow endpoint is high.
	if code, _, _ := runWith(t, runAuditCmd, withEnv, "--admin", url); code != 1 {
		t.Errorf("exit %d with a served shadow endpoint, want 1", code)
	}
	for _, tc := range []struct {
		vars map[string]string
		args []string
		want string
	}{
		{nil, []string{"--admin", url}, adminTokenEnv},
		{map[string]string{adminTokenEnv: "wrong"}, []string{"--admin", url}, "refused the admin token"},
		{withEnv, []string{"--admin", "http://127.0.0.1:1"}, "reading the inventory"},
		{withEnv, []string{"--admin", "nope"}, "--admin"},
	} {
		code, _, errOut := runWith(t, runAuditCmd, tc.vars, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("audit %v: exit %d %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}
