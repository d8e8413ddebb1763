package audit

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/breakwater/breakwater/internal/inventory"
)

// runExample audits an example in a fresh directory: the config as
// breakwater.yaml, the spec as openapi.yaml (also passed as --spec).
func runExample(t testing.TB, ex Example, ignore ...string) *Report {
	t.Helper()
	dir := t.TempDir()
	o := Options{Ignore: ignore, LookupEnv: func(string) (string, bool) { return "", false }}
	if ex.Config != "" {
		o.Config = filepath.Join(dir, "breakwater.yaml")
		if err := os.WriteFile(o.Config, []byte(ex.Config), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	spec := filepath.Join(dir, "openapi.yaml")
	if ex.Spec != "" {
		o.Specs = []string{spec}
		if err := os.WriteFile(spec, []byte(ex.Spec), 0o600); err != nil {
			t.Fatal(err)
		}
	} else if strings.Contains(ex.Config, "openapi.yaml") {
		if err := os.WriteFile(spec, []byte(specHead), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if ex.Inventory != "" {
		o.Inventory = &inventory.Report{}
		if err := json.Unmarshal([]byte(ex.Inventory), o.Inventory); err != nil {
			t.Fatalf("example inventory: %v", err)
		}
		o.InventorySource = "http://127.0.0.1:9901/admin/inventory"
	}
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep
}

func ruleFindings(rep *Report, id string) []Finding {
	var out []Finding
	for _, f := range rep.Findings {
		if f.Rule == id {
			out = append(out, f)
		}
	}
	return out
}

// TestRules runs every rule's example (it must fire, with a location in
// the right file) and its fixed version (it must not).
func TestRules(t *testing.T) {
	for _, r := range Rules() {
		t.Run(r.ID, func(t *testing.T) {
			bad := runExample(t, r.Example)
			got := ruleFindings(bad, r.ID)
			if len(got) == 0 {
				t.Fatalf("example does not fire %s; findings: %v", r.ID, bad.Findings)
			}
			for _, f := range got {
				if f.Line < 1 || f.Col < 1 {
					t.Errorf("%s at %s: no line:col", r.ID, f.Location())
				}
				if f.Severity != r.Severity || f.Category != r.Category || f.Fix != r.Fix || f.Message == "" {
					t.Errorf("finding %+v does not carry the rule's data", f)
				}
			}
			good := runExample(t, r.Good)
			if got := ruleFindings(good, r.ID); len(got) > 0 {
				t.Fatalf("fixed example still fires: %v", got)
			}
		})
	}
}

func TestCatalogue(t *testing.T) {
	rules := Rules()
	if len(rules) < 45 {
		t.Errorf("%d rules, want at least 45", len(rules))
	}
	id := regexp.MustCompile(`^BW-(CFG|INV|SPEC|XREF)-\d{3}$`)
	seen := map[string]bool{}
	for i, r := range rules {
		if !id.MatchString(r.ID) || seen[r.ID] {
			t.Errorf("rule %d: bad or duplicate id %q", i, r.ID)
		}
		seen[r.ID] = true
		if i > 0 && rules[i-1].ID >= r.ID {
			t.Errorf("rule %s is out of order", r.ID)
		}
		if CategoryName(r.Category) == "" {
			t.Errorf("%s: unknown category %q", r.ID, r.Category)
		}
		if r.Title == "" || r.Fix == "" || r.Severity < Info || r.Severity > Critical {
			t.Errorf("%s: incomplete", r.ID)
		}
	}
	for _, c := range []string{"API1:2023", "API2:2023", "API3:2023", "API4:2023", "API5:2023", "API7:2023", "API8:2023", "API9:2023"} {
		if !slices.ContainsFunc(rules, func(r Rule) bool { return r.Category == c }) {
			t.Errorf("no rule in %s", c)
		}
	}
}
