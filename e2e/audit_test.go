package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const auditSpec = `openapi: 3.0.3
info: { title: Orders, version: "1" }
servers: [{ url: "http://api.example.com" }]
paths:
  /orders/{id}:
    get:
      parameters: [{ name: id, in: path, required: true, schema: { type: integer } }]
      responses: { "200": { description: ok, content: { application/json: { schema: { type: object, properties: { password: { type: string } } } } } } }
    delete:
      parameters: [{ name: id, in: path, required: true, schema: { type: integer } }]
      responses: { "204": { description: gone } }
`

const auditConfig = `version: 1
server: { https: "127.0.0.1:8443", admin: "0.0.0.0:9901", data_dir: data }
tls: { self_signed: true }
admin: { token_hash: "{{.AdminHash}}" }
authenticators:
  keys: { type: api_key, query: api_key }
consumers:
  - { id: acme, credentials: [ { api_key: "{{.ReaderHash}}" } ] }
routes:
  - name: orders
    path: /orders/**
    upstream: { targets: ["http://10.0.0.5:9000"] }
    auth: none
`

// breakwater audit finds the classic mistakes of a config and a spec, exits
// 1 for CI, and writes SARIF that code scanning reads.
func TestAuditCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfgPath, specPath := filepath.Join(dir, "breakwater.yaml"), filepath.Join(dir, "orders.yaml")
	writeFile(t, cfgPath, render(t, auditConfig, configVars(dir)))
	writeFile(t, specPath, auditSpec)

	out, errOut, code := runCmd(t, "", nil, "audit", "-c", cfgPath, "--spec", specPath, "--format", "json")
	if code != 1 {
		t.Fatalf("exit %d; want 1 (findings at or above high)\n%s\n%s", code, out, errOut)
	}
	var rep struct {
		Findings []struct{ Rule, Severity, Category, File, Message, Fix string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("JSON report: %v\n%s", err, out)
	}
	found := map[string]bool{}
	for _, f := range rep.Findings {
		if f.Rule == "" || f.Category == "" || f.Fix == "" || f.File == "" {
			t.Errorf("finding without rule, category, fix or location: %+v", f)
		}
		found[f.Message] = true
	}
	for _, want := range []string{"admin", "query", "10.0.0.5", "password"} {
		hit := false
		for m := range found {
			hit = hit || strings.Contains(strings.ToLower(m), strings.ToLower(want))
		}
		if !hit {
			t.Errorf("no finding mentions %q; findings:\n%v", want, rep.Findings)
		}
	}

	out, _, code = runCmd(t, "", nil, "audit", "-c", cfgPath, "--spec", specPath, "--format", "sarif")
	var sarif struct {
		Version string
		Runs    []struct {
			Tool struct {
				Driver struct{ Rules []map[string]any }
			}
			Results []struct {
				RuleID    string
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string }
						Region           struct{ StartLine int }
					}
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &sarif); err != nil || code != 1 {
		t.Fatalf("SARIF: exit %d, %v\n%s", code, err, out)
	}
	if sarif.Version != "2.1.0" || len(sarif.Runs) != 1 || len(sarif.Runs[0].Results) == 0 || len(sarif.Runs[0].Tool.Driver.Rules) == 0 {
		t.Fatalf("SARIF shape: %s", out)
	}
	for _, r := range sarif.Runs[0].Results {
		if r.RuleID == "" || len(r.Locations) == 0 || r.Locations[0].PhysicalLocation.Region.StartLine < 1 {
			t.Errorf("SARIF result without rule or location: %+v", r)
		}
	}

	if _, errOut, code := runCmd(t, "", nil, "audit", "-c", filepath.Join(dir, "missing.yaml")); code != 2 {
		t.Errorf("unreadable config: exit %d; want 2\n%s", code, errOut)
	}
}

// breakwater import openapi prints routes that, once given an
// authenticator, load as a config.
func TestImportCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	spec := filepath.Join(dir, "orders.yaml")
	writeFile(t, spec, auditSpec)
	out, errOut, code := runCmd(t, "", nil, "import", "openapi", spec, "--upstream", "http://127.0.0.1:9000", "--auth", "keys")
	if code != 0 || !strings.Contains(out, "routes:") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	cfg := "version: 1\nserver: { admin: \"off\", data_dir: data }\ntls: { self_signed: true }\n" +
		"authenticators:\n  keys: { type: api_key }\n" + out
	cfgPath := filepath.Join(dir, "breakwater.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runCmd(t, "", nil, "validate", "-c", cfgPath); code != 0 {
		t.Errorf("the imported routes do not validate (exit %d):\n%s\n%s", code, errOut, numbered(cfg))
	}
}
