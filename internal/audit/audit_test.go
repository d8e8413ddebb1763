package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInlineIgnore(t *testing.T) {
	tests := []struct {
		name       string
		spec       string
		get, post  bool // BW-SPEC-007 on get, BW-SPEC-008 on post still reported
		ignoredMin int
	}{
		{"none", specHead + "paths:\n  /t:\n    get: {}\n    post: {}\n", true, true, 0},
		{"root", specHead + "x-breakwater-ignore: [BW-SPEC-007, BW-SPEC-008]\npaths:\n  /t:\n    get: {}\n    post: {}\n", false, false, 2},
		{"path item", specHead + "paths:\n  /t:\n    x-breakwater-ignore: [BW-SPEC-008]\n    get: {}\n    post: {}\n", true, false, 1},
		{"operation", specHead + "paths:\n  /t:\n    get: {x-breakwater-ignore: [bw-spec-007]}\n    post: {}\n", false, true, 1},
		{"other operation", specHead + "paths:\n  /t:\n    get: {}\n    post: {x-breakwater-ignore: [BW-SPEC-007]}\n", true, true, 0},
		{"scalar", specHead + "paths:\n  /t:\n    get: {x-breakwater-ignore: BW-SPEC-007}\n    post: {}\n", false, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := runExample(t, Example{Spec: tt.spec})
			if got := len(ruleFindings(rep, "BW-SPEC-007")) > 0; got != tt.get {
				t.Errorf("BW-SPEC-007 reported: %v, want %v", got, tt.get)
			}
			if got := len(ruleFindings(rep, "BW-SPEC-008")) > 0; got != tt.post {
				t.Errorf("BW-SPEC-008 reported: %v, want %v", got, tt.post)
			}
			if rep.Ignored < tt.ignoredMin {
				t.Errorf("ignored %d, want ≥ %d", rep.Ignored, tt.ignoredMin)
			}
		})
	}
	// Config: a top-level list.
	rep := runExample(t, Example{Config: "x-breakwater-ignore: [BW-CFG-004]\ntls: {self_signed: true}\n"})
	if len(ruleFindings(rep, "BW-CFG-004")) > 0 || rep.Ignored == 0 {
		t.Errorf("config inline ignore: %+v", rep)
	}
}

func TestValidationFindings(t *testing.T) {
	// A secret from an unset variable is not a problem; a wrong version is,
	// at its place.
	cfg := "version: 2\ntls: {self_signed: true}\nserver: {admin: \"off\"}\nauthenticators:\n  op: {type: introspection, url: \"https://idp.example.com/i\", client_id: gw, client_secret: \"${UNSET_SECRET}\"}\n"
	rep := runExample(t, Example{Config: cfg})
	got := ruleFindings(rep, "BW-CFG-000")
	if len(got) == 0 {
		t.Fatal("no BW-CFG-000")
	}
	for _, f := range got {
		if strings.Contains(f.Message, "UNSET_SECRET") || strings.Contains(f.Message, placeholder) {
			t.Errorf("finding about the unset variable: %s", f.Message)
		}
	}
	if got[0].Line != 1 || !strings.Contains(got[0].Message, "version") {
		t.Errorf("first BW-CFG-000: %+v", got[0])
	}
	if len(ruleFindings(rep, "BW-CFG-022")) > 0 {
		t.Error("a ${ENV} secret reported as written in clear")
	}
}

func TestBadInput(t *testing.T) {
	deep := strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000)
	bomb := "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
	for name, data := range map[string]string{
		"syntax":      "openapi: [\n",
		"deep":        deep,
		"alias bomb":  bomb,
		"nul":         "openapi: 3.1.0\x00",
		"invalid utf": "openapi: \xff\n",
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "s.yaml")
			if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Run(context.Background(), Options{Specs: []string{p}})
			if !errors.Is(err, ErrInput) {
				t.Fatalf("err = %v, want ErrInput", err)
			}
		})
	}
	if _, err := Run(context.Background(), Options{Specs: []string{t.TempDir()}}); !errors.Is(err, ErrInput) {
		t.Errorf("directory: %v", err)
	}
	if _, err := Run(context.Background(), Options{}); !errors.Is(err, ErrInput) {
		t.Errorf("nothing: %v", err)
	}
}

func TestJSONSpecAndProgress(t *testing.T) {
	dir := t.TempDir()
	var specs []string
	for i := range 3 {
		p := filepath.Join(dir, "s"+string(rune('a'+i))+".json")
		if err := os.WriteFile(p, []byte(`{"openapi": "3.0.3", "info": {"title": "t", "version": "1"},
  "paths": {"/u/{id}": {"get": {"parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}]}}}}`), 0o600); err != nil {
			t.Fatal(err)
		}
		specs = append(specs, p, p) // named twice: audited once
	}
	var calls []int
	rep, err := Run(context.Background(), Options{Specs: specs, Progress: func(done, total int) {
		if total != 3 {
			t.Errorf("total %d", total)
		}
		calls = append(calls, done)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 3 || calls[2] != 3 {
		t.Errorf("progress calls %v", calls)
	}
	f := ruleFindings(rep, "BW-SPEC-001")
	if len(f) != 3 || f[0].Line != 2 || f[0].Col < 40 {
		t.Errorf("JSON positions: %+v", f)
	}
}

func TestSeverityAndScore(t *testing.T) {
	for _, s := range []Severity{Info, Low, Medium, High, Critical} {
		got, err := ParseSeverity(strings.ToUpper(s.String()))
		if err != nil || got != s {
			t.Errorf("ParseSeverity(%s) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseSeverity("severe"); err == nil {
		t.Error("unknown severity accepted")
	}
	fs := []Finding{{Severity: Critical}, {Severity: High}, {Severity: Medium}, {Severity: Low}, {Severity: Info}}
	if got := Score(fs); got != 100-25-10-4-1 {
		t.Errorf("score %d", got)
	}
	if got := Score(append(fs, fs...)[:0:0]); got != 100 {
		t.Errorf("empty score %d", got)
	}
	many := make([]Finding, 10)
	for i := range many {
		many[i].Severity = Critical
	}
	if Score(many) != 0 {
		t.Error("score below 0")
	}
}

func TestTextOutput(t *testing.T) {
	rep := runExample(t, Example{Config: "server: {admin: \"0.0.0.0:9901\"}\ntls: {self_signed: true}\n"})
	var plain, colour bytes.Buffer
	if err := WriteText(&plain, rep, false); err != nil {
		t.Fatal(err)
	}
	if err := WriteText(&colour, rep, true); err != nil {
		t.Fatal(err)
	}
	out := plain.String()
	ci, hi, mi := strings.Index(out, "\nCRITICAL ("), strings.Index(out, "\nHIGH ("), strings.Index(out, "\nMEDIUM (")
	if ci < 0 || hi < ci || mi < hi || !strings.Contains(out, "score ") || strings.Contains(out, "\x1b[") {
		t.Errorf("text output:\n%s", out)
	}
	if !strings.Contains(colour.String(), "\x1b[1;31mCRITICAL") {
		t.Error("no colour")
	}
	if !strings.Contains(out, "breakwater.yaml:1:10: server.admin listens on") {
		t.Errorf("location format:\n%s", out)
	}
}

// TestSARIF checks the log for the parts of SARIF 2.1.0 that GitHub code
// scanning requires; TestSARIFSchema checks it against the schema itself.
func TestSARIF(t *testing.T) {
	rep := runExample(t, Example{Config: "server: {admin: \"0.0.0.0:9901\"}\n", Spec: specHead + "paths:\n  /t:\n    post: {}\n"})
	rep.Findings = append(rep.Findings, Finding{Rule: "BW-CFG-000", Severity: High, Category: "API8:2023", File: "/abs/gw.yaml", Message: "no place", Fix: "x"})
	var buf bytes.Buffer
	if err := WriteSARIF(&buf, rep, "v1.2.3"); err != nil {
		t.Fatal(err)
	}
	var log map[string]any
	if err := json.Unmarshal(buf.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	get := func(v any, keys ...string) any {
		for _, k := range keys {
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		}
		return v
	}
	if log["version"] != "2.1.0" || !strings.Contains(log["$schema"].(string), "sarif-2.1.0") {
		t.Fatalf("version/$schema: %v %v", log["version"], log["$schema"])
	}
	runs, _ := log["runs"].([]any)
	if len(runs) != 1 {
		t.Fatalf("runs: %v", runs)
	}
	run := runs[0]
	if get(run, "tool", "driver", "name") != "breakwater" || get(run, "tool", "driver", "version") != "v1.2.3" {
		t.Error("driver name/version")
	}
	rules, _ := get(run, "tool", "driver", "rules").([]any)
	if len(rules) != len(Rules()) {
		t.Fatalf("%d rules", len(rules))
	}
	ids := map[string]int{}
	for i, r := range rules {
		id, _ := get(r, "id").(string)
		ids[id] = i
		if get(r, "shortDescription", "text") == "" || get(r, "help", "text") == "" || get(r, "fullDescription", "text") == "" {
			t.Errorf("rule %s: descriptions", id)
		}
		lvl := get(r, "defaultConfiguration", "level")
		if lvl != "error" && lvl != "warning" && lvl != "note" {
			t.Errorf("rule %s: level %v", id, lvl)
		}
		tags, _ := get(r, "properties", "tags").([]any)
		rule, _ := ruleByID(id)
		var hasCat bool
		for _, tg := range tags {
			hasCat = hasCat || tg == rule.Category
		}
		if !hasCat {
			t.Errorf("rule %s: tags %v lack the OWASP category", id, tags)
		}
		if sev, ok := get(r, "properties", "security-severity").(string); rule.Severity > Info && (!ok || sev == "") {
			t.Errorf("rule %s: no security-severity", id)
		}
	}
	results, _ := get(run, "results").([]any)
	if len(results) != len(rep.Findings) {
		t.Fatalf("%d results for %d findings", len(results), len(rep.Findings))
	}
	for _, r := range results {
		id, _ := get(r, "ruleId").(string)
		if idx, ok := get(r, "ruleIndex").(float64); !ok || int(idx) != ids[id] {
			t.Errorf("%s: ruleIndex %v", id, get(r, "ruleIndex"))
		}
		if get(r, "message", "text") == "" {
			t.Errorf("%s: no message", id)
		}
		locs, _ := get(r, "locations").([]any)
		if len(locs) != 1 {
			t.Fatalf("%s: locations %v", id, locs)
		}
		uri, _ := get(locs[0], "physicalLocation", "artifactLocation", "uri").(string)
		if uri == "" || strings.Contains(uri, `\`) {
			t.Errorf("%s: uri %q", id, uri)
		}
		if region := get(locs[0], "physicalLocation", "region"); region != nil {
			if l, _ := get(region, "startLine").(float64); l < 1 {
				t.Errorf("%s: startLine %v", id, l)
			}
		} else if get(r, "message", "text") != "no place. Fix: x" {
			t.Errorf("%s: no region", id)
		}
		if uri == "file:///abs/gw.yaml" && get(locs[0], "physicalLocation", "region") != nil {
			t.Error("region for a finding without a line")
		}
	}
}

// Header names starting with "x-" are names, not extensions: they are
// audited like any other.
func TestXHeadersAudited(t *testing.T) {
	spec := specHead + "paths:\n  /t:\n    get:\n      responses:\n        \"200\":\n          description: ok\n          headers:\n            x-next:\n              $ref: '#/components/headers/Missing'\n"
	if got := ruleFindings(runExample(t, Example{Spec: spec}), "BW-SPEC-036"); len(got) != 1 {
		t.Errorf("a dangling $ref under header x-next: %d BW-SPEC-036 findings, want 1", len(got))
	}
}

// A 4XX range does not stand for 429: clients must learn of Retry-After.
func TestRangeIsNot429(t *testing.T) {
	spec := specHead + "paths:\n  /t:\n    get:\n      responses:\n        \"200\": {description: ok}\n        4XX: {description: client error}\n"
	if got := ruleFindings(runExample(t, Example{Spec: spec}), "BW-SPEC-015"); len(got) != 1 {
		t.Errorf("BW-SPEC-015 with only a 4XX range: %d findings, want 1", len(got))
	}
}
