package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/breakwater/breakwater/internal/audit"
)

const yamlSpec = `openapi: 3.1.0
paths:
  /things/{id}:
    get:
      parameters:
        - name: id
          in: path
          schema: {type: integer}
      responses:
        '200': {$ref: '#/components/responses/Thing'}
components:
  responses:
    Thing:
      description: a thing
      headers:
        x-next:
          schema:
            type: string
  schemas:
    "a/b": {type: string}
    Ref: {$ref: '#/components/schemas/a~1b'}
`

const jsonSpec = `{
  "openapi": "3.0.3",
  "servers": [{"url": "http://example.com"}],
  "paths": {"/x": {"post": {"responses": {"201": {"description": "ok"}}}}}
}`

func TestIndexPositions(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		at   pos
		want []string
	}{
		{"root key", yamlSpec, pos{1, 1}, []string{"openapi"}},
		{"operation key", yamlSpec, pos{4, 5}, []string{"paths", "/things/{id}", "get"}},
		{"sequence item is the parameter, not its first key", yamlSpec, pos{6, 11}, []string{"paths", "/things/{id}", "get", "parameters", "0"}},
		{"flow mapping value at its key", yamlSpec, pos{8, 11}, []string{"paths", "/things/{id}", "get", "parameters", "0", "schema"}},
		{"quoted key", yamlSpec, pos{10, 9}, []string{"paths", "/things/{id}", "get", "responses", "200"}},
		{"header named x-", yamlSpec, pos{16, 9}, []string{"components", "responses", "Thing", "headers", "x-next"}},
		{"key with a slash", yamlSpec, pos{20, 5}, []string{"components", "schemas", "a/b"}},
		{"JSON key", jsonSpec, pos{2, 3}, []string{"openapi"}},
		{"JSON sequence item", jsonSpec, pos{3, 15}, []string{"servers", "0"}},
		{"JSON nested key", jsonSpec, pos{4, 20}, []string{"paths", "/x", "post"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idx, err := indexPositions([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			got, ok := idx[tt.at]
			if !ok || !slices.Equal(got, tt.want) {
				t.Errorf("idx[%v] = %q, %v; want %q", tt.at, got, ok, tt.want)
			}
		})
	}
}

func TestIndexPositionsBadInput(t *testing.T) {
	for _, doc := range []string{"a: [", "{\"a\": [}", "\t- x: :"} {
		if _, err := indexPositions([]byte(doc)); err == nil {
			t.Errorf("indexPositions(%q): no error", doc)
		}
		if _, err := parseRefIndex([]byte(doc)); err == nil {
			t.Errorf("parseRefIndex(%q): no error", doc)
		}
	}
	// Deep nesting must not crash the walk.
	deep := strings.Repeat("[", 2000) + strings.Repeat("]", 2000)
	_, _ = indexPositions([]byte(deep))
	_, _ = parseRefIndex([]byte(deep))
}

func TestRefsUnder(t *testing.T) {
	r, err := parseRefIndex([]byte(yamlSpec))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path []string
		want [][]string
	}{
		{[]string{"paths", "/things/{id}", "get"}, [][]string{{"components", "responses", "Thing"}}},
		{[]string{"components", "schemas", "Ref"}, [][]string{{"components", "schemas", "a/b"}}},
		{[]string{"components", "responses"}, nil},
		{[]string{"paths", "/things/{id}", "get", "parameters", "7"}, nil},
		{[]string{"paths", "/things/{id}", "get", "parameters", "x"}, nil},
		{[]string{"nowhere"}, nil},
	}
	for _, tt := range tests {
		if got := r.refsUnder(tt.path); !slices.EqualFunc(got, tt.want, slices.Equal) {
			t.Errorf("refsUnder(%q) = %q; want %q", tt.path, got, tt.want)
		}
	}
	if _, ok := pointerPath("other.yaml#/a"); ok {
		t.Error("an external $ref was taken as local")
	}
}

func TestSamePlace(t *testing.T) {
	op := []string{"paths", "/x", "get"}
	refs := func(file string, path []string) [][]string {
		if file == "a.yaml" && slices.Equal(path, with(op, "responses")) {
			return [][]string{{"components", "responses", "Page"}}
		}
		return nil
	}
	tests := []struct {
		name string
		a, b finding
		want bool
	}{
		{"equal paths", finding{File: "a.yaml", Path: with(op, "responses")}, finding{File: "a.yaml", Path: with(op, "responses")}, true},
		{"operation and its responses", finding{File: "a.yaml", Path: op}, finding{File: "a.yaml", Path: with(op, "responses", "200")}, true},
		{"parameter and its schema", finding{File: "a.yaml", Path: with(op, "parameters", "0")}, finding{File: "a.yaml", Path: with(op, "parameters", "0", "schema")}, true},
		{"other file", finding{File: "a.yaml", Path: op}, finding{File: "b.yaml", Path: op}, false},
		{"sibling operations", finding{File: "a.yaml", Path: op}, finding{File: "a.yaml", Path: []string{"paths", "/x", "post"}}, false},
		{"object and its property are different places", finding{File: "a.yaml", Path: []string{"components", "schemas", "U"}},
			finding{File: "a.yaml", Path: []string{"components", "schemas", "U", "properties", "p"}}, false},
		{"object and its additionalProperties keyword", finding{File: "a.yaml", Path: []string{"components", "schemas", "U"}},
			finding{File: "a.yaml", Path: []string{"components", "schemas", "U", "additionalProperties"}}, true},
		{"the root leads nowhere", finding{File: "a.yaml", Path: []string{}}, finding{File: "a.yaml", Path: op}, false},
		{"through a $ref", finding{File: "a.yaml", Path: with(op, "responses")}, finding{File: "a.yaml", Path: []string{"components", "responses", "Page", "headers"}}, true},
		{"through a $ref, other order", finding{File: "a.yaml", Path: []string{"components", "responses", "Page"}}, finding{File: "a.yaml", Path: with(op, "responses")}, true},
		{"unknown path, same line", finding{File: "a.yaml", Line: 3}, finding{File: "a.yaml", Line: 3, Path: op}, true},
		{"unknown path, other line", finding{File: "a.yaml", Line: 3}, finding{File: "a.yaml", Line: 4, Path: op}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := samePlace(tt.a, tt.b, refs); got != tt.want {
				t.Errorf("samePlace = %v; want %v", got, tt.want)
			}
		})
	}
}

const spectralJSON = `[
 {"code": "owasp:api4:2023-array-limit", "path": ["paths", "/x", "get", "parameters", 0, "schema"], "message": "m1", "severity": 0,
  "source": "/s/a.yaml", "range": {"start": {"line": 9, "character": 4}}},
 {"code": "owasp:api8:2023-define-error-responses-401", "path": ["paths", "/x", "get", "responses"], "message": "m2", "severity": 1,
  "source": "/s/a.yaml", "range": {"start": {"line": 11, "character": 6}}},
 {"code": "invalid-ref", "path": ["components"], "message": "m3", "severity": 0, "source": "/s/a.yaml", "range": {"start": {"line": 0, "character": 0}}},
 {"code": 7, "path": [], "message": "m4", "severity": 9, "source": "/s/a.yaml", "range": {"start": {"line": 0, "character": 0}}}
]`

const bwJSON = `{"score": 80, "files": ["/s/a.yaml"], "findings": [
 {"rule": "BW-SPEC-010", "severity": "medium", "category": "API4:2023", "file": "/s/a.yaml", "line": 10, "col": 11, "message": "array", "fix": "f"},
 {"rule": "BW-SPEC-030", "severity": "high", "category": "API3:2023", "file": "/s/a.yaml", "line": 12, "col": 7, "message": "password", "fix": "f"}
]}`

func parsedFixtures(t *testing.T) ([]finding, []finding) {
	t.Helper()
	rel := func(s string) string { return filepath.Base(s) }
	sp, err := parseSpectral([]byte(spectralJSON), rel)
	if err != nil {
		t.Fatal(err)
	}
	idx := positionIndex{{10, 11}: {"paths", "/x", "get", "parameters", "0", "schema"}}
	bw, err := parseBreakwater([]byte(bwJSON), rel, func(f string) positionIndex {
		if f == "/s/a.yaml" {
			return idx
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sp, bw
}

func TestParse(t *testing.T) {
	sp, bw := parsedFixtures(t)
	want := []finding{
		{Tool: toolSpectral, Rule: "owasp:api4:2023-array-limit", Category: "API4:2023", Severity: "error", File: "a.yaml", Line: 10, Col: 5,
			Path: []string{"paths", "/x", "get", "parameters", "0", "schema"}, Message: "m1", Concern: "array without maxItems"},
		{Tool: toolSpectral, Rule: "owasp:api8:2023-define-error-responses-401", Category: "API8:2023", Severity: "warning", File: "a.yaml", Line: 12, Col: 7,
			Path: []string{"paths", "/x", "get", "responses"}, Message: "m2", Concern: "no 401 response"},
		{Tool: toolSpectral, Rule: "invalid-ref", Category: otherCategory, Severity: "error", File: "a.yaml", Line: 1, Col: 1,
			Path: []string{"components"}, Message: "m3", Concern: "dangling $ref"},
		{Tool: toolSpectral, Rule: "7", Category: otherCategory, Severity: "?", File: "a.yaml", Line: 1, Col: 1, Path: []string{}, Message: "m4"},
	}
	if len(sp) != len(want) {
		t.Fatalf("got %d Spectral findings; want %d", len(sp), len(want))
	}
	for i := range want {
		if !equalFinding(sp[i], want[i]) {
			t.Errorf("Spectral finding %d = %+v; want %+v", i, sp[i], want[i])
		}
	}
	if len(bw) != 2 || !slices.Equal(bw[0].Path, want[0].Path) || bw[0].Concern != "array without maxItems" || bw[1].Path != nil || bw[1].Concern != "" {
		t.Errorf("Breakwater findings = %+v", bw)
	}
	for _, bad := range []string{"", "{", `{"a": 1}`, "[1]"} {
		if _, err := parseSpectral([]byte(bad), filepath.Base); err == nil {
			t.Errorf("parseSpectral(%q): no error", bad)
		}
	}
	if _, err := parseBreakwater([]byte("[]"), filepath.Base, func(string) positionIndex { return nil }); err == nil {
		t.Error("parseBreakwater([]): no error")
	}
}

func equalFinding(a, b finding) bool {
	return a.Tool == b.Tool && a.Rule == b.Rule && a.Category == b.Category && a.Severity == b.Severity && a.File == b.File &&
		a.Line == b.Line && a.Col == b.Col && slices.Equal(a.Path, b.Path) && a.Message == b.Message && a.Concern == b.Concern
}

func TestMatchAndRender(t *testing.T) {
	sp, bw := parsedFixtures(t)
	match(sp, bw, nil)
	if !sp[0].Matched || !bw[0].Matched {
		t.Error("array findings at the same schema are not matched")
	}
	if sp[1].Matched || sp[2].Matched || sp[3].Matched || bw[1].Matched {
		t.Error("findings without a counterpart were matched")
	}
	for _, md := range []bool{false, true} {
		var out bytes.Buffer
		c := comparison{SpectralVersion: "6.0.0", RulesetVersion: "2.0.1", Specs: []string{"a.yaml"}, Spectral: sp, Breakwater: bw, Examples: 1}
		if err := render(&out, c, md); err != nil {
			t.Fatal(err)
		}
		text := out.String()
		row := regexp.MustCompile(`(?m)^\|? ?API4:2023\s*\|?\s*Unrestricted Resource Consumption\s*\|?\s*1\s*\|?\s*1\s*\|?\s*0\s*\|?\s*0`)
		for _, want := range []*regexp.Regexp{
			row,
			regexp.MustCompile(`(?m)^\|? ?total\s*\|?\s*\|?\s*4\s*\|?\s*2\s*\|?\s*3\s*\|?\s*1`),
			regexp.MustCompile(`BW-SPEC-030.? ×1`),
			regexp.MustCompile(`a\.yaml:12 m2`),
		} {
			if !want.MatchString(text) {
				t.Errorf("markdown=%v: report lacks %s:\n%s", md, want, text)
			}
		}
		if md && !strings.Contains(text, "| --- |") {
			t.Errorf("no Markdown table:\n%s", text)
		}
	}
}

func TestCategoryOrder(t *testing.T) {
	got := []string{otherCategory, "API10:2023", "API2:2023", "API1:2023"}
	slices.SortFunc(got, categoryOrder)
	if want := []string{"API1:2023", "API2:2023", "API10:2023", otherCategory}; !slices.Equal(got, want) {
		t.Errorf("sorted = %q; want %q", got, want)
	}
}

// TestConcerns checks the concern table against the audit's rule catalogue
// and, when it is installed, the OWASP ruleset.
func TestConcerns(t *testing.T) {
	known := map[string]audit.Rule{}
	for _, r := range audit.Rules() {
		known[r.ID] = r
	}
	seen := map[string]bool{}
	for _, c := range concerns {
		for _, r := range slices.Concat(c.Spectral, c.Breakwater) {
			if seen[r] {
				t.Errorf("rule %s is in two concerns", r)
			}
			seen[r] = true
		}
		for _, r := range c.Breakwater {
			if _, ok := known[r]; !ok {
				t.Errorf("concern %q: the audit has no rule %s", c.Name, r)
			}
		}
		for _, r := range c.Spectral {
			if r != "invalid-ref" && !owaspRule.MatchString(r) {
				t.Errorf("concern %q: %s is not an OWASP ruleset name", c.Name, r)
			}
		}
	}
	js, err := os.ReadFile(filepath.Join(".npm", "node_modules", "@stoplight", "spectral-owasp-ruleset", "dist", "ruleset.js"))
	if err != nil {
		t.Skipf("the OWASP ruleset is not installed (go run ./bench/spectral installs it): %v", err)
	}
	for _, m := range regexp.MustCompile(`"(owasp:api\d+:\d{4}-[A-Za-z0-9-]+)"`).FindAllSubmatch(js, -1) {
		if !seen[string(m[1])] {
			t.Errorf("the installed ruleset has %s, which no concern names", m[1])
		}
	}
}
