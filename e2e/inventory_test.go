package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/breakwater/breakwater/internal/validate"
)

// inventorySpec documents part of what the orders upstream serves: one
// operation is deprecated, one is never called, and /orders/{id}/export is
// served but not documented (a shadow endpoint).
const inventorySpec = `openapi: 3.1.0
info: { title: Orders, version: "1" }
paths:
  /orders/{id}:
    parameters: [{ name: id, in: path, required: true, schema: { type: string } }]
    get:
      operationId: getOrder
      responses: { "200": { description: the order }, "500": { description: failure } }
    delete:
      operationId: deleteOrder
      responses: { "204": { description: deleted } }
  /orders/{id}/legacy:
    parameters: [{ name: id, in: path, required: true, schema: { type: string } }]
    get:
      operationId: getOrderLegacy
      deprecated: true
      responses: { "200": { description: the order, the old way } }
`

const inventoryConfig = `version: 1
server:
  https: "{{.HTTPS}}"
  admin: "{{.Admin}}"
  data_dir: "{{.Data}}"
  shutdown_timeout: 5s
tls:
  self_signed: true
admin:
  token_hash: "{{.AdminHash}}"
authenticators:
  keys: { type: api_key }
consumers:
  - { id: acme,   credentials: [ { api_key: "{{.ReaderHash}}" } ] }
  - { id: globex, credentials: [ { api_key: "{{.WriterHash}}" } ] }
routes:
  - name: orders
    path: /orders/**
    upstream: { targets: ["{{.Up}}"] }
    auth: [keys]
    openapi: { spec: "{{.Spec}}" }
  - name: status
    path: /status/**
    methods: [GET]
    upstream: { targets: ["{{.Up}}"] }
    auth: none
  - name: reports
    path: /reports/**
    upstream: { targets: ["{{.Up}}"] }
    auth: [keys]
`

// invReport is GET /admin/inventory as docs/inventory.md describes it.
type invReport struct {
	GeneratedAt   time.Time  `json:"generated_at"`
	Since         time.Time  `json:"since"`
	Source        string     `json:"source"`
	ZombieAfter   string     `json:"zombie_after"`
	Routes        []invStats `json:"routes"`
	Operations    []invStats `json:"operations"`
	Shadow        []invStats `json:"shadow"`
	ShadowEvicted int64      `json:"shadow_evicted"`
	Zombies       []struct {
		Kind      string     `json:"kind"`
		Route     string     `json:"route"`
		Operation string     `json:"operation"`
		LastSeen  *time.Time `json:"last_seen"`
		IdleDays  int        `json:"idle_days"`
	} `json:"zombies"`
	Deprecated []invStats `json:"deprecated"`
}

type invStats struct {
	Route             string           `json:"route"`
	Operation         string           `json:"operation"`
	Method            string           `json:"method"`
	Path              string           `json:"path"`
	Deprecated        bool             `json:"deprecated"`
	Requests          int64            `json:"requests"`
	Status            map[string]int64 `json:"status"`
	Consumers         []string         `json:"consumers"`
	DistinctConsumers int64            `json:"distinct_consumers"`
	FirstSeen         *time.Time       `json:"first_seen"`
	LastSeen          *time.Time       `json:"last_seen"`
}

// counts is what a test expects of one entry.
type counts struct {
	requests            int64
	s2xx, s4xx, s5xx    int64
	consumers           []string
	never               bool // no first/last seen
	wantDeprecatedField bool
}

func (s invStats) check(t *testing.T, what string, want counts) {
	t.Helper()
	if s.Requests != want.requests || s.Status["2xx"] != want.s2xx || s.Status["3xx"] != 0 ||
		s.Status["4xx"] != want.s4xx || s.Status["5xx"] != want.s5xx {
		t.Errorf("%s: %d requests, status %v; want %d requests, 2xx %d, 4xx %d, 5xx %d",
			what, s.Requests, s.Status, want.requests, want.s2xx, want.s4xx, want.s5xx)
	}
	if !slices.Equal(s.Consumers, want.consumers) || s.DistinctConsumers != int64(len(want.consumers)) {
		t.Errorf("%s: consumers %q (%d distinct); want %q", what, s.Consumers, s.DistinctConsumers, want.consumers)
	}
	if want.never != (s.FirstSeen == nil) || want.never != (s.LastSeen == nil) {
		t.Errorf("%s: first seen %v, last seen %v; want them absent: %v", what, s.FirstSeen, s.LastSeen, want.never)
	}
	if s.Deprecated != want.wantDeprecatedField {
		t.Errorf("%s: deprecated %v; want %v", what, s.Deprecated, want.wantDeprecatedField)
	}
}

func (r *invReport) find(t *testing.T, list []invStats, route, op string) invStats {
	t.Helper()
	for _, s := range list {
		if s.Route == route && s.Operation == op {
			return s
		}
	}
	t.Fatalf("no entry for route %q operation %q in %+v", route, op, list)
	return invStats{}
}

func fetchInventory(t *testing.T, g *gateway, query string) (invReport, []byte) {
	t.Helper()
	resp, body := adminRequest(t, g, "GET", "/admin/inventory"+query, adminToken)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /admin/inventory%s: %d %q\n%s%s", query, resp.StatusCode, resp.Header.Get("Content-Type"), body, g.output())
	}
	var rep invReport
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("GET /admin/inventory%s: %v\n%s", query, err, body)
	}
	return rep, body
}

// waitInventory reads the inventory once it holds total requests over
// all routes: a request is counted when the gateway is done with it, which
// may be a moment after the client has the whole response.
func waitInventory(t *testing.T, g *gateway, total int64) invReport {
	t.Helper()
	var rep invReport
	eventually(t, 10*time.Second, func() string {
		rep, _ = fetchInventory(t, g, "")
		var n int64
		for _, s := range rep.Routes {
			n += s.Requests
		}
		if n != total {
			return fmt.Sprintf("the inventory counts %d requests on routes; want %d", n, total)
		}
		return ""
	})
	return rep
}

// checkInventory compares a report with the traffic TestInventory sends
// (extra: requests sent on GET /orders/{id} by acme after a restart).
func checkInventory(t *testing.T, rep invReport, extra int64) {
	t.Helper()
	if rep.Source != "local" || rep.ShadowEvicted != 0 {
		t.Errorf("source %q, shadow_evicted %d; want local and 0", rep.Source, rep.ShadowEvicted)
	}
	var routes []string
	for _, s := range rep.Routes {
		routes = append(routes, s.Route)
	}
	if !slices.Equal(routes, []string{"orders", "status", "reports"}) {
		t.Errorf("routes %v; want every configured route in config order", routes)
	}
	rep.find(t, rep.Routes, "orders", "").check(t, "route orders",
		counts{requests: 11 + extra, s2xx: 9 + extra, s4xx: 1, s5xx: 1, consumers: []string{"acme", "globex"}})
	rep.find(t, rep.Routes, "status", "").check(t, "route status", counts{requests: 2, s2xx: 2, consumers: []string{}})
	rep.find(t, rep.Routes, "reports", "").check(t, "route reports", counts{consumers: []string{}, never: true})

	rep.find(t, rep.Operations, "orders", "GET /orders/{id}").check(t, "GET /orders/{id}",
		counts{requests: 7 + extra, s2xx: 5 + extra, s4xx: 1, s5xx: 1, consumers: []string{"acme", "globex"}})
	rep.find(t, rep.Operations, "orders", "DELETE /orders/{id}").check(t, "DELETE /orders/{id}",
		counts{consumers: []string{}, never: true})
	legacy := counts{requests: 1, s2xx: 1, consumers: []string{"acme"}, wantDeprecatedField: true}
	rep.find(t, rep.Operations, "orders", "GET /orders/{id}/legacy").check(t, "GET /orders/{id}/legacy", legacy)
	if len(rep.Operations) != 3 {
		t.Errorf("%d operations; want the spec's 3: %+v", len(rep.Operations), rep.Operations)
	}

	if len(rep.Shadow) != 1 {
		t.Fatalf("shadow endpoints %+v; want exactly GET /orders/{id}/export", rep.Shadow)
	}
	sh := rep.Shadow[0]
	if sh.Route != "orders" || sh.Method != "GET" || sh.Path != "/orders/{id}/export" {
		t.Errorf("shadow endpoint %s %s on %q; want GET /orders/{id}/export on orders", sh.Method, sh.Path, sh.Route)
	}
	sh.check(t, "shadow", counts{requests: 3, s2xx: 3, consumers: []string{"acme", "globex"}})

	if len(rep.Deprecated) != 1 {
		t.Fatalf("deprecated %+v; want GET /orders/{id}/legacy", rep.Deprecated)
	}
	rep.Deprecated[0].check(t, "deprecated", legacy)
}

// zombies lists "kind route operation idle_days" of a report, sorted.
func zombies(rep invReport) []string {
	var out []string
	for _, z := range rep.Zombies {
		last := "never"
		if z.LastSeen != nil {
			last = "seen"
		}
		out = append(out, fmt.Sprintf("%s %s %q %d %s", z.Kind, z.Route, z.Operation, z.IdleDays, last))
	}
	slices.Sort(out)
	return out
}

// Traffic through the binary, then the inventory: counts per route and
// operation, status classes, consumers, the shadow endpoint, the zombies,
// the deprecated operation still called; the same through `breakwater
// inventory`, a spec for the shadow endpoint with --openapi, the counts
// after a restart on the same data_dir, and BW-INV findings from
// `breakwater audit --admin`.
func TestInventory(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	dir := t.TempDir()
	specPath := filepath.Join(dir, "orders.yaml")
	writeFile(t, specPath, inventorySpec)

	// Zombies are counted from the last request or, for what was never
	// called, from when the gateway started counting: a gateway that
	// started a minute ago cannot know what happened before. This one has
	// been counting for 40 days: its saved inventory (data_dir/state) says so.
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(filepath.Join(data, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	since := time.Now().Add(-40 * 24 * time.Hour).Truncate(time.Second)
	writeFile(t, filepath.Join(data, "state", "inventory.json"),
		fmt.Sprintf(`{"version":1,"since":%d,"shadow_evicted":0,"entries":[]}`+"\n", since.UnixNano()))

	vars := map[string]string{"Up": up.URL, "Spec": specPath, "Data": data}
	g := startGateway(t, inventoryConfig, vars)
	g.dataDir = data // its CA is there
	c := g.client(t)

	send := func(k, path string, want int) {
		t.Helper()
		var h http.Header
		if k != "" {
			h = http.Header{"X-Api-Key": {k}}
		}
		resp, body := g.get(t, c, path, h)
		if resp.StatusCode != want {
			t.Fatalf("GET %s: %d; want %d\n%s", path, resp.StatusCode, want, body)
		}
	}
	for range 3 {
		send(readerKey, "/orders/1", 200)
	}
	send(readerKey, "/orders/2", 200)
	send(readerKey, "/orders/5?crash=1", 500)
	send(readerKey, "/orders/42/export", 200)
	send(readerKey, "/orders/43/export", 200)
	send(readerKey, "/orders/7/legacy", 200)
	send(writerKey, "/orders/3", 200)
	send(writerKey, "/orders/99/export", 200)
	send("", "/orders/1", 401)
	send("", "/status/live", 200)
	send("", "/status/ready", 200)
	send("", "/nowhere", 404) // no route: not in the inventory

	rep := waitInventory(t, g, 13)
	checkInventory(t, rep, 0)
	if !rep.Since.Equal(since) {
		t.Errorf("since %s; want %s, the saved inventory's", rep.Since, since)
	}
	if rep.ZombieAfter != "720h0m0s" {
		t.Errorf("zombie_after %q; want the default 720h0m0s", rep.ZombieAfter)
	}
	wantZombies := []string{`operation orders "DELETE /orders/{id}" 40 never`, `route reports "" 40 never`}
	if got := zombies(rep); !slices.Equal(got, wantZombies) {
		t.Errorf("zombies %q; want %q", got, wantZombies)
	}
	if rep, _ := fetchInventory(t, g, "?zombie_after=1h"); !slices.Equal(zombies(rep), wantZombies) || rep.ZombieAfter != "1h0m0s" {
		t.Errorf("zombie_after=1h: zombies %q (%s); want %q", zombies(rep), rep.ZombieAfter, wantZombies)
	}
	if rep, _ := fetchInventory(t, g, "?zombie_after=90d"); len(rep.Zombies) != 0 {
		t.Errorf("zombie_after=90d after 40 days of counting: zombies %q; want none", zombies(rep))
	}
	for _, q := range []string{"?zombie_after=1s", "?zombie_after=-1h", "?zombie_after=x", "?format=xml"} {
		if resp, body := adminRequest(t, g, "GET", "/admin/inventory"+q, adminToken); resp.StatusCode != 400 {
			t.Errorf("GET /admin/inventory%s: %d; want 400\n%s", q, resp.StatusCode, body)
		}
	}
	if resp, _ := adminRequest(t, g, "GET", "/admin/inventory", ""); resp.StatusCode != 401 {
		t.Errorf("GET /admin/inventory without the token: %d; want 401", resp.StatusCode)
	}

	// The same through the command line, the token from the environment.
	adminURL := "http://" + g.admin
	tokenEnv := []string{"BREAKWATER_ADMIN_TOKEN=" + adminToken}
	out, errOut, code := runCmd(t, "", tokenEnv, "inventory", "--admin", adminURL, "--format", "json")
	if code != 0 {
		t.Fatalf("breakwater inventory --format json: exit %d\n%s\n%s", code, out, errOut)
	}
	var cli invReport
	if err := json.Unmarshal([]byte(out), &cli); err != nil {
		t.Fatalf("breakwater inventory --format json: %v\n%s", err, out)
	}
	checkInventory(t, cli, 0)
	if got := zombies(cli); !slices.Equal(got, wantZombies) {
		t.Errorf("breakwater inventory: zombies %q; want %q", got, wantZombies)
	}
	out, errOut, code = runCmd(t, "", tokenEnv, "inventory", "--admin", adminURL)
	if code != 0 {
		t.Fatalf("breakwater inventory: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"ROUTES (3)", "OPERATIONS (3)", "SHADOW ENDPOINTS", "/orders/{id}/export", "ZOMBIES", "reports",
		"DELETE /orders/{id}", "DEPRECATED OPERATIONS STILL CALLED (1)", "acme"} {
		if !strings.Contains(out, want) {
			t.Errorf("breakwater inventory (text) does not show %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+errOut, adminToken) {
		t.Error("breakwater inventory printed the admin token")
	}
	if _, errOut, code := runCmd(t, "", []string{"BREAKWATER_ADMIN_TOKEN=bwadm_wrong"}, "inventory", "--admin", adminURL); code != 1 {
		t.Errorf("wrong token: exit %d; want 1\n%s", code, errOut)
	}
	if _, errOut, code := runCmd(t, "", []string{"BREAKWATER_ADMIN_TOKEN"}, "inventory", "--admin", adminURL); code != 2 {
		t.Errorf("no token: exit %d; want 2\n%s", code, errOut)
	}

	// --openapi: a loadable OpenAPI 3.1 document of the shadow endpoint.
	out, errOut, code = runCmd(t, "", tokenEnv, "inventory", "--admin", adminURL, "--openapi")
	if code != 0 {
		t.Fatalf("breakwater inventory --openapi: exit %d\n%s\n%s", code, out, errOut)
	}
	var skel struct {
		OpenAPI string `yaml:"openapi"`
		Paths   map[string]map[string]struct {
			Parameters []struct {
				Name     string `yaml:"name"`
				In       string `yaml:"in"`
				Required bool   `yaml:"required"`
			} `yaml:"parameters"`
			Shadow   bool   `yaml:"x-breakwater-shadow"`
			Route    string `yaml:"x-breakwater-route"`
			Requests int    `yaml:"x-breakwater-requests"`
		} `yaml:"paths"`
	}
	if err := yaml.Unmarshal([]byte(out), &skel); err != nil {
		t.Fatalf("breakwater inventory --openapi: not YAML: %v\n%s", err, out)
	}
	op, ok := skel.Paths["/orders/{id}/export"]["get"]
	if skel.OpenAPI != "3.1.0" || len(skel.Paths) != 1 || !ok || !op.Shadow || op.Route != "orders" || op.Requests != 3 ||
		len(op.Parameters) != 1 || op.Parameters[0].Name != "id" || op.Parameters[0].In != "path" || !op.Parameters[0].Required {
		t.Errorf("skeleton: want openapi 3.1.0 with only GET /orders/{id}/export (shadow, route orders, 3 requests, path parameter id):\n%s", out)
	}
	skelPath := filepath.Join(dir, "shadow.yaml")
	writeFile(t, skelPath, out)
	if spec, err := validate.Load(skelPath); err != nil {
		t.Errorf("the skeleton does not load as a spec: %v\n%s", err, out)
	} else if v := validate.New(spec, validate.Options{}); v.Operation("GET", "/orders/42/export") == nil {
		t.Errorf("the skeleton has no operation for GET /orders/42/export:\n%s", out)
	}

	// The audit adds inventory findings, placed in the config and the spec.
	out, errOut, code = runCmd(t, "", tokenEnv, "audit", "-c", g.cfgPath, "--admin", adminURL, "--format", "json")
	if code != 1 {
		t.Fatalf("breakwater audit --admin: exit %d; want 1 (BW-INV-002 is high)\n%s\n%s", code, out, errOut)
	}
	var audit struct {
		Findings []struct {
			Rule, Severity, Category, File, Message, Fix string
			Line                                         int
		}
	}
	if err := json.Unmarshal([]byte(out), &audit); err != nil {
		t.Fatalf("audit JSON: %v\n%s", err, out)
	}
	var inv []string
	for _, f := range audit.Findings {
		if !strings.HasPrefix(f.Rule, "BW-INV-") {
			continue
		}
		inv = append(inv, f.Rule+" "+f.Message)
		if f.Category != "API9:2023" || f.Fix == "" || f.File == "" || f.Line < 1 {
			t.Errorf("inventory finding without its category, fix or location: %+v", f)
		}
	}
	slices.Sort(inv)
	for _, want := range []string{
		`BW-INV-001 operation "DELETE /orders/{id}" of route "orders" has had no traffic for 40 days`,
		`BW-INV-001 route "reports" has had no traffic for 40 days`,
		`BW-INV-002 GET /orders/{id}/export on route "orders" is not in the route's spec but was served 3 times`,
		`BW-INV-003 deprecated operation "GET /orders/{id}/legacy" of route "orders" is still called: 1 requests`,
	} {
		if !slices.ContainsFunc(inv, func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Errorf("no finding %q; inventory findings:\n%s", want, strings.Join(inv, "\n"))
		}
	}
	if len(inv) != 4 {
		t.Errorf("%d inventory findings; want 4:\n%s", len(inv), strings.Join(inv, "\n"))
	}
	if _, errOut, code := runCmd(t, "", []string{"BREAKWATER_ADMIN_TOKEN=bwadm_wrong"}, "audit", "-c", g.cfgPath, "--admin", adminURL); code != 2 {
		t.Errorf("audit with a wrong admin token: exit %d; want 2\n%s", code, errOut)
	}

	// Restart on the same data_dir: the counts survive.
	g.stop(t)
	g2 := startGateway(t, inventoryConfig, vars)
	g2.dataDir = data
	c2 := g2.client(t)
	after, _ := fetchInventory(t, g2, "")
	checkInventory(t, after, 0)
	if !after.Since.Equal(since) {
		t.Errorf("since %s after the restart; want %s", after.Since, since)
	}
	if got := zombies(after); !slices.Equal(got, wantZombies) {
		t.Errorf("zombies %q after the restart; want %q", got, wantZombies)
	}
	before := rep.find(t, rep.Operations, "orders", "GET /orders/{id}")
	restored := after.find(t, after.Operations, "orders", "GET /orders/{id}")
	if !restored.FirstSeen.Equal(*before.FirstSeen) || !restored.LastSeen.Equal(*before.LastSeen) {
		t.Errorf("first/last seen %v/%v after the restart; want %v/%v", restored.FirstSeen, restored.LastSeen, before.FirstSeen, before.LastSeen)
	}
	// ... and go on: the new process adds to them.
	resp, body := g2.get(t, c2, "/orders/8", http.Header{"X-Api-Key": {readerKey}})
	if resp.StatusCode != 200 {
		t.Fatalf("GET /orders/8 after the restart: %d\n%s", resp.StatusCode, body)
	}
	checkInventory(t, waitInventory(t, g2, 14), 1)

	// A gateway with no saved inventory has just started counting: it
	// reports no zombies, even for the shortest period.
	fresh := startGateway(t, inventoryConfig, map[string]string{"Up": up.URL, "Spec": specPath})
	rep, _ = fetchInventory(t, fresh, "?zombie_after=1h")
	if len(rep.Zombies) != 0 || time.Since(rep.Since) > time.Minute {
		t.Errorf("fresh gateway: since %s, zombies %q; want counting since its start and no zombies", rep.Since, zombies(rep))
	}
}
