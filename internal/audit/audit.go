// Package audit is Breakwater's static security audit: rules over a
// gateway config, the OpenAPI specs it names and the two together. Each
// finding carries a stable rule id, a severity, its OWASP API Security Top
// 10 (2023) category, a file:line:col location, a message and a fix.
// Reports render as text, JSON or SARIF 2.1.0. docs/audit.md lists every
// rule.
package audit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/breakwater/breakwater/internal/inventory"
)

// Severity ranks findings; higher is worse.
type Severity int

// Severities, from least to most serious.
const (
	Info Severity = iota
	Low
	Medium
	High
	Critical
)

var severityNames = [...]string{"info", "low", "medium", "high", "critical"}

// String returns the lowercase name: info, low, medium, high or critical.
func (s Severity) String() string {
	if s < Info || s > Critical {
		return "unknown"
	}
	return severityNames[s]
}

// MarshalText writes the name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a name written by MarshalText.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseSeverity reads info, low, medium, high or critical.
func ParseSeverity(name string) (Severity, error) {
	for i, n := range severityNames {
		if strings.EqualFold(name, n) {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("unknown severity %q: want info, low, medium, high or critical", name)
}

// Finding is one problem found by a rule.
type Finding struct {
	Rule     string   `json:"rule"`     // "BW-CFG-003"
	Severity Severity `json:"severity"` // the rule's severity
	Category string   `json:"category"` // "API8:2023"
	File     string   `json:"file"`     // as given on the command line or named by the config
	Line     int      `json:"line"`     // 1-based; 0 when the finding has no place in the file
	Col      int      `json:"col"`      // 1-based
	Message  string   `json:"message"`
	Fix      string   `json:"fix"`

	doc *node    // the document the finding is in, for inline ignores
	ptr []string // keys from doc's root to the place, for inline ignores
}

// Location formats FILE:LINE:COL (FILE alone without a line).
func (f Finding) Location() string {
	if f.Line <= 0 {
		return f.File
	}
	return fmt.Sprintf("%s:%d:%d", f.File, f.Line, f.Col)
}

// Report is the outcome of an audit.
type Report struct {
	Findings []Finding `json:"findings"` // sorted by severity (worst first), file, line, column
	Ignored  int       `json:"ignored"`  // findings dropped by --ignore or x-breakwater-ignore
	Files    []string  `json:"files"`    // config and specs audited, in order
	Score    int       `json:"score"`    // 100 without findings; see Score
}

// Score is 100 minus 25 per critical, 10 per high, 4 per medium and 1 per
// low finding, and never below 0. Info findings cost nothing.
func Score(findings []Finding) int {
	weights := [...]int{0, 1, 4, 10, 25}
	score := 100
	for _, f := range findings {
		if f.Severity >= Info && f.Severity <= Critical {
			score -= weights[f.Severity]
		}
	}
	return max(score, 0)
}

// Failed reports whether any finding is at or above threshold.
func (r *Report) Failed(threshold Severity) bool {
	for _, f := range r.Findings {
		if f.Severity >= threshold {
			return true
		}
	}
	return false
}

// Counts returns how many findings there are of each severity.
func (r *Report) Counts() [Critical + 1]int {
	var c [Critical + 1]int
	for _, f := range r.Findings {
		if f.Severity >= Info && f.Severity <= Critical {
			c[f.Severity]++
		}
	}
	return c
}

// Options say what to audit.
type Options struct {
	// Config is the gateway config file; "" audits Specs alone. The config
	// is audited even when it fails validation: every validation problem is
	// a BW-CFG-000 finding.
	Config string
	// Specs are OpenAPI files audited besides those the config names
	// (routes[].openapi.spec, docs.specs); a file named twice is audited once.
	Specs []string
	// Ignore lists rule ids whose findings are dropped. Unknown ids are an
	// error.
	Ignore []string
	// LookupEnv resolves ${NAME} when the config is validated; nil means
	// os.LookupEnv. A variable that is not set does not count as a problem:
	// the audit needs no secrets.
	LookupEnv func(string) (string, bool)
	// Progress, when set, is called after each spec with the number done
	// and the total.
	Progress func(done, total int)
	// Inventory, when set, is a running gateway's traffic-derived
	// inventory (inventory.Fetch): the BW-INV rules report its zombies,
	// shadow endpoints and deprecated operations still called, located on
	// the route in Config (or the operation in its spec) when there is
	// one, else at InventorySource.
	Inventory *inventory.Report
	// InventorySource names where Inventory was read, such as
	// "http://127.0.0.1:9901/admin/inventory".
	InventorySource string
}

// ErrInput marks problems with the input: a file that cannot be read or
// parsed, an unknown rule id. The command line exits 2 on them.
var ErrInput = errors.New("audit input")

// maxSpecs bounds how many specs one audit reads.
const maxSpecs = 10_000

// Run audits the config and specs of o.
func Run(ctx context.Context, o Options) (*Report, error) {
	ignore := map[string]bool{}
	for _, id := range o.Ignore {
		id = strings.ToUpper(strings.TrimSpace(id))
		if _, ok := ruleByID(id); !ok {
			return nil, fmt.Errorf("%w: --ignore %q: no such rule; 'breakwater audit --rules' lists them", ErrInput, id)
		}
		ignore[id] = true
	}
	if o.Config == "" && len(o.Specs) == 0 && o.Inventory == nil {
		return nil, fmt.Errorf("%w: nothing to audit: give a config, a spec, an admin URL or several", ErrInput)
	}
	a := &auditor{}
	rep := &Report{}
	var cfg *configDoc
	if o.Config != "" {
		data, err := readFile(o.Config)
		if err != nil {
			return nil, err
		}
		root, err := parseDocument(data)
		if err != nil {
			return nil, fmt.Errorf("%w: config %s: %w", ErrInput, o.Config, err)
		}
		cfg = &configDoc{file: o.Config, dir: filepath.Dir(o.Config), root: root}
		rep.Files = append(rep.Files, o.Config)
		a.validate(cfg, data, o.LookupEnv)
		a.configRules(cfg)
	}
	var paths []string
	seen := map[string]bool{}
	add := func(p string) {
		key := p
		if abs, err := filepath.Abs(p); err == nil {
			key = abs
		}
		if !seen[key] {
			seen[key] = true
			paths = append(paths, p)
		}
	}
	if cfg != nil {
		for _, ref := range cfg.specRefs() {
			add(cfg.resolve(ref))
		}
	}
	for _, p := range o.Specs {
		add(p)
	}
	if len(paths) > maxSpecs {
		return nil, fmt.Errorf("%w: %d specs, more than the limit of %d", ErrInput, len(paths), maxSpecs)
	}
	var specs []*specDoc
	for i, p := range paths {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		data, err := readFile(p)
		if err != nil {
			return nil, err
		}
		root, err := parseDocument(data)
		if err != nil {
			return nil, fmt.Errorf("%w: spec %s: %w", ErrInput, p, err)
		}
		s := newSpec(p, root)
		specs = append(specs, s)
		rep.Files = append(rep.Files, p)
		a.specRules(s)
		if o.Progress != nil {
			o.Progress(i+1, len(paths))
		}
	}
	if cfg != nil {
		a.crossRules(cfg, specs)
	}
	if o.Inventory != nil {
		source := cmp.Or(o.InventorySource, "inventory")
		rep.Files = append(rep.Files, source)
		a.inventoryRules(cfg, specs, o.Inventory, source)
	}
	for _, f := range a.findings {
		if ignore[f.Rule] || inlineIgnored(f) {
			rep.Ignored++
			continue
		}
		rep.Findings = append(rep.Findings, f)
	}
	slices.SortStableFunc(rep.Findings, func(x, y Finding) int {
		return cmp.Or(cmp.Compare(y.Severity, x.Severity), cmp.Compare(x.File, y.File),
			cmp.Compare(x.Line, y.Line), cmp.Compare(x.Col, y.Col), cmp.Compare(x.Rule, y.Rule))
	})
	rep.Score = Score(rep.Findings)
	return rep, nil
}

// readFile reads a regular file of at most maxDocument bytes.
func readFile(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrInput, p)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxDocument+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w", ErrInput, p, err)
	}
	if len(data) > maxDocument {
		return nil, fmt.Errorf("%w: %s is larger than %d MiB", ErrInput, p, maxDocument>>20)
	}
	return data, nil
}

// auditor collects findings.
type auditor struct {
	findings []Finding
	rules    map[string]Rule
	seen     map[findingKey]bool
}

// findingKey identifies a finding for deduplication: a shared schema or
// route reached from several places is reported once.
type findingKey struct {
	rule, file, msg string
	at              Pos
}

// maxFindings bounds one audit's findings; a generated spec could otherwise
// produce millions.
const maxFindings = 100_000

// emit records a finding of rule id at n (or at pos when n is nil).
func (a *auditor) emit(id, file string, doc *node, ptr []string, at Pos, format string, args ...any) {
	if len(a.findings) >= maxFindings {
		return
	}
	if a.rules == nil {
		a.rules = map[string]Rule{}
		for _, r := range Rules() {
			a.rules[r.ID] = r
		}
		a.seen = map[findingKey]bool{}
	}
	k := findingKey{rule: id, file: file, at: at}
	if id == "BW-CFG-000" || strings.HasPrefix(id, "BW-INV-") {
		// Several problems, or several operations of one route, share a place.
		k.msg = fmt.Sprintf(format, args...)
	}
	if a.seen[k] {
		return
	}
	a.seen[k] = true
	r, ok := a.rules[id]
	if !ok {
		r = Rule{ID: id, Severity: Info, Category: "API8:2023"}
	}
	a.findings = append(a.findings, Finding{
		Rule: id, Severity: r.Severity, Category: r.Category,
		File: file, Line: at.Line, Col: at.Col,
		Message: fmt.Sprintf(format, args...), Fix: r.Fix,
		doc: doc, ptr: slices.Clip(ptr),
	})
}

// ignoreKey is the inline way to accept a risk.
const ignoreKey = "x-breakwater-ignore"

// inlineIgnored reports whether an x-breakwater-ignore list on the
// document's root or on any mapping on the way to the finding names its rule.
func inlineIgnored(f Finding) bool {
	n := f.doc
	for i := 0; n != nil; i++ {
		for _, id := range n.get(ignoreKey).strings() {
			if strings.EqualFold(strings.TrimSpace(id), f.Rule) {
				return true
			}
		}
		if i >= len(f.ptr) {
			return false
		}
		switch n.kind {
		case kindMap:
			n = n.get(f.ptr[i])
		case kindSeq:
			j, err := strconv.Atoi(f.ptr[i])
			if err != nil || j < 0 || j >= len(n.vals) {
				return false
			}
			n = n.vals[j]
		default:
			return false
		}
	}
	return false
}
