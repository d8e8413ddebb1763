package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Tools.
const (
	toolSpectral   = "Spectral"
	toolBreakwater = "Breakwater"
)

// otherCategory is the category of Spectral findings that do not come from
// the OWASP ruleset (Spectral's own invalid-ref, for one).
const otherCategory = "other"

// finding is one result of either tool, normalised.
type finding struct {
	Tool     string
	Rule     string   // "owasp:api4:2023-array-limit", "BW-SPEC-010"
	Category string   // "API4:2023" or otherCategory
	Severity string   // as the tool says it
	File     string   // relative to the specs directory
	Line     int      // 1-based; 0 when unknown
	Col      int      // 1-based
	Path     []string // keys from the spec's root; nil when unknown
	Message  string
	Concern  string // the shared concern (see concerns); "" when the other tool has no rule for it
	Matched  bool   // the other tool reports the same concern at the same place
}

// location formats FILE:LINE.
func (f finding) location() string {
	if f.Line == 0 {
		return f.File
	}
	return fmt.Sprintf("%s:%d", f.File, f.Line)
}

// concern is one thing both tools look for, under their rule names.
type concern struct {
	Name       string
	Spectral   []string
	Breakwater []string
}

// concerns pairs the rules of @stoplight/spectral-owasp-ruleset 2.x with
// the BW-SPEC rules that check the same thing (not always in the same way:
// docs/audit.md says where they differ). Spectral's invalid-ref is its
// resolver's, not the ruleset's, but the audit has a rule for it too.
var concerns = []concern{
	{"integer ids", []string{"owasp:api1:2023-no-numeric-ids"}, []string{"BW-SPEC-001"}},
	{"insecure HTTP auth scheme", []string{"owasp:api2:2023-auth-insecure-schemes"}, []string{"BW-SPEC-002"}},
	{"HTTP Basic", []string{"owasp:api2:2023-no-http-basic"}, []string{"BW-SPEC-003"}},
	{"JWT best practices (RFC 8725)", []string{"owasp:api2:2023-jwt-best-practices"}, []string{"BW-SPEC-004"}},
	{"API key in the URL", []string{"owasp:api2:2023-no-api-keys-in-url"}, []string{"BW-SPEC-005"}},
	{"credential parameter in the URL", []string{"owasp:api2:2023-no-credentials-in-url"}, []string{"BW-SPEC-006"}},
	{"read without security", []string{"owasp:api2:2023-read-restricted"}, []string{"BW-SPEC-007"}},
	{"write without security", []string{"owasp:api2:2023-write-restricted"}, []string{"BW-SPEC-008"}},
	{"OAuth2 flow without refreshUrl", []string{"owasp:api2:2023-short-lived-access-tokens"}, []string{"BW-SPEC-009"}},
	{"open additional/unevaluated properties", []string{
		"owasp:api3:2023-no-additionalProperties", "owasp:api3:2023-constrained-additionalProperties",
		"owasp:api3:2023-no-unevaluatedProperties", "owasp:api3:2023-constrained-unevaluatedProperties",
	}, []string{"BW-SPEC-027"}},
	{"array without maxItems", []string{"owasp:api4:2023-array-limit"}, []string{"BW-SPEC-010"}},
	{"string without maxLength", []string{"owasp:api4:2023-string-limit"}, []string{"BW-SPEC-011"}},
	{"string without format/pattern", []string{"owasp:api4:2023-string-restricted"}, []string{"BW-SPEC-012"}},
	{"integer without minimum/maximum", []string{"owasp:api4:2023-integer-limit", "owasp:api4:2023-integer-limit-legacy"}, []string{"BW-SPEC-013"}},
	{"integer without format", []string{"owasp:api4:2023-integer-format"}, []string{"BW-SPEC-014"}},
	{"no 429 response", []string{"owasp:api4:2023-rate-limit-responses-429"}, []string{"BW-SPEC-015"}},
	{"429 without Retry-After", []string{"owasp:api4:2023-rate-limit-retry-after"}, []string{"BW-SPEC-016"}},
	{"no rate limit headers", []string{"owasp:api4:2023-rate-limit"}, []string{"BW-SPEC-017"}},
	{"admin security", []string{"owasp:api5:2023-admin-security-unique"}, []string{"BW-SPEC-018"}},
	{"URL parameter (SSRF)", []string{"owasp:api7:2023-concerning-url-parameter"}, []string{"BW-SPEC-019"}},
	{"no Access-Control-Allow-Origin", []string{"owasp:api8:2023-define-cors-origin"}, []string{"BW-SPEC-020"}},
	{"no 401 response", []string{"owasp:api8:2023-define-error-responses-401"}, []string{"BW-SPEC-021"}},
	{"no 500 response", []string{"owasp:api8:2023-define-error-responses-500"}, []string{"BW-SPEC-022"}},
	{"no 400/422 response", []string{"owasp:api8:2023-define-error-validation"}, []string{"BW-SPEC-023"}},
	{"plain HTTP server", []string{"owasp:api8:2023-no-server-http", "owasp:api8:2023-no-scheme-http"}, []string{"BW-SPEC-024"}},
	{"server inventory", []string{"owasp:api9:2023-inventory-access", "owasp:api9:2023-inventory-environment"}, []string{"BW-SPEC-025", "BW-SPEC-026"}},
	{"dangling $ref", []string{"invalid-ref"}, []string{"BW-SPEC-036"}},
}

// concernOf returns the concern of a rule of either tool ("" for none).
func concernOf(rule string) string {
	for _, c := range concerns {
		if slices.Contains(c.Spectral, rule) || slices.Contains(c.Breakwater, rule) {
			return c.Name
		}
	}
	return ""
}

// owaspRule matches the rule names of the OWASP ruleset.
var owaspRule = regexp.MustCompile(`^owasp:api(\d+):(\d{4})-`)

// spectralCategory maps a Spectral rule name to its OWASP category.
func spectralCategory(code string) string {
	m := owaspRule.FindStringSubmatch(code)
	if m == nil {
		return otherCategory
	}
	return "API" + m[1] + ":" + m[2]
}

// spectralResult is one element of `spectral lint -f json`.
type spectralResult struct {
	Code     json.RawMessage `json:"code"` // a string, or a number for some parser errors
	Path     []any           `json:"path"`
	Message  string          `json:"message"`
	Severity int             `json:"severity"`
	Source   string          `json:"source"`
	Range    struct {
		Start struct {
			Line      int `json:"line"`      // 0-based
			Character int `json:"character"` // 0-based
		} `json:"start"`
	} `json:"range"`
}

var spectralSeverities = [...]string{"error", "warning", "info", "hint"}

// parseSpectral reads Spectral's JSON output; file names a source for the
// report (relative to the specs directory).
func parseSpectral(data []byte, file func(source string) string) ([]finding, error) {
	var results []spectralResult
	if err := json.Unmarshal(data, &results); err != nil {
		return nil, fmt.Errorf("reading Spectral's JSON: %w", err)
	}
	out := make([]finding, 0, len(results))
	for _, r := range results {
		var code string
		if err := json.Unmarshal(r.Code, &code); err != nil {
			code = string(r.Code)
		}
		sev := "?"
		if r.Severity >= 0 && r.Severity < len(spectralSeverities) {
			sev = spectralSeverities[r.Severity]
		}
		path := make([]string, len(r.Path))
		for i, p := range r.Path {
			path[i] = fmt.Sprint(p)
		}
		out = append(out, finding{
			Tool: toolSpectral, Rule: code, Category: spectralCategory(code), Severity: sev,
			File: file(r.Source), Line: r.Range.Start.Line + 1, Col: r.Range.Start.Character + 1,
			Path: path, Message: r.Message, Concern: concernOf(code),
		})
	}
	return out, nil
}

// bwReport is what `breakwater audit --format json` writes.
type bwReport struct {
	Findings []struct {
		Rule     string `json:"rule"`
		Severity string `json:"severity"`
		Category string `json:"category"`
		File     string `json:"file"`
		Line     int    `json:"line"`
		Col      int    `json:"col"`
		Message  string `json:"message"`
	} `json:"findings"`
}

// parseBreakwater reads the audit's JSON output. index returns the
// position index of a file as the audit names it (nil when unknown).
func parseBreakwater(data []byte, file func(string) string, index func(string) positionIndex) ([]finding, error) {
	var r bwReport
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("reading breakwater's JSON: %w", err)
	}
	out := make([]finding, 0, len(r.Findings))
	for _, f := range r.Findings {
		var path []string
		if idx := index(f.File); idx != nil {
			path = idx[pos{f.Line, f.Col}]
		}
		out = append(out, finding{
			Tool: toolBreakwater, Rule: f.Rule, Category: f.Category, Severity: f.Severity,
			File: file(f.File), Line: f.Line, Col: f.Col, Path: path,
			Message: f.Message, Concern: concernOf(f.Rule),
		})
	}
	return out, nil
}

// refsFunc returns the local $ref targets written under a path of a spec
// (each a path from the root); nil when there are none.
type refsFunc func(file string, path []string) [][]string

// samePlace reports whether two findings of one concern are about the same
// thing: the same file, and one's path leads to the other's (an operation
// and its responses, a parameter and its schema) without entering a nested
// schema, directly or through a $ref written under it (an operation whose
// 200 response is a $ref to components/responses/Page and a finding on
// that component). Without a path (the audit's position was not found in
// the index) only the line is compared.
func samePlace(a, b finding, refs refsFunc) bool {
	if a.File != b.File {
		return false
	}
	if a.Path == nil || b.Path == nil {
		return a.Line == b.Line
	}
	if leadsTo(a.Path, b.Path) {
		return true
	}
	if refs == nil {
		return false
	}
	for _, r := range refs(a.File, a.Path) {
		if leadsTo(r, b.Path) {
			return true
		}
	}
	for _, r := range refs(b.File, b.Path) {
		if leadsTo(r, a.Path) {
			return true
		}
	}
	return false
}

// leadsTo reports whether one path is a prefix of the other and the rest
// does not enter a nested schema.
func leadsTo(a, b []string) bool {
	short, long := a, b
	if len(short) > len(long) {
		short, long = long, short
	}
	if len(short) == 0 || !slices.Equal(short, long[:len(short)]) {
		return false
	}
	for _, k := range long[len(short):] {
		if slices.Contains(subschemaKeys, k) {
			return false
		}
	}
	return true
}

// subschemaKeys lead from a schema into another one: an object and one of
// its properties are different places.
var subschemaKeys = []string{"properties", "items", "prefixItems", "patternProperties", "allOf", "anyOf", "oneOf", "not", "$defs", "definitions"}

// match marks the findings of each tool that the other tool also reports:
// same concern, same place.
func match(spectral, bw []finding, refs refsFunc) {
	for i := range spectral {
		for j := range bw {
			if spectral[i].Concern != "" && spectral[i].Concern == bw[j].Concern && samePlace(spectral[i], bw[j], refs) {
				spectral[i].Matched = true
				bw[j].Matched = true
			}
		}
	}
}

// categoryOrder sorts "API2:2023" before "API10:2023", and other last.
func categoryOrder(a, b string) int {
	key := func(c string) (int, string) {
		var n int
		if _, err := fmt.Sscanf(c, "API%d:", &n); err != nil {
			return 1 << 30, c
		}
		return n, c
	}
	an, as := key(a)
	bn, bs := key(b)
	return cmp.Or(cmp.Compare(an, bn), strings.Compare(as, bs))
}

// tally is what one tool found in one category or concern.
type tally struct{ total, only int }

func (t *tally) add(f finding) {
	t.total++
	if !f.Matched {
		t.only++
	}
}

// ruleExamples groups a tool's unmatched findings by rule.
type ruleExamples struct {
	Rule     string
	Count    int
	Examples []finding
}

// unmatchedByRule returns the unmatched findings of one tool in one
// category, grouped by rule (most frequent first), up to max examples each.
func unmatchedByRule(fs []finding, category string, maxExamples int) []ruleExamples {
	byRule := map[string]*ruleExamples{}
	var order []string
	for _, f := range fs {
		if f.Matched || f.Category != category {
			continue
		}
		g, ok := byRule[f.Rule]
		if !ok {
			g = &ruleExamples{Rule: f.Rule}
			byRule[f.Rule] = g
			order = append(order, f.Rule)
		}
		g.Count++
		if len(g.Examples) < maxExamples {
			g.Examples = append(g.Examples, f)
		}
	}
	out := make([]ruleExamples, 0, len(order))
	for _, r := range order {
		out = append(out, *byRule[r])
	}
	slices.SortStableFunc(out, func(a, b ruleExamples) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Rule, b.Rule))
	})
	return out
}

// sortFindings orders findings by file, line, column and rule.
func sortFindings(fs []finding) {
	slices.SortStableFunc(fs, func(a, b finding) int {
		return cmp.Or(strings.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col), strings.Compare(a.Rule, b.Rule))
	})
}
