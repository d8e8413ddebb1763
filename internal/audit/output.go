package audit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// ANSI colours of the severity headings in text output.
var severityColours = [...]string{"\x1b[2m", "\x1b[36m", "\x1b[33m", "\x1b[31m", "\x1b[1;31m"}

const colourReset = "\x1b[0m"

// WriteText writes the report for people: a summary line with the score,
// then the findings grouped by severity, worst first. colour adds ANSI
// colours (use it only on a terminal).
func WriteText(w io.Writer, rep *Report, colour bool) error {
	bw := bufio.NewWriter(w)
	counts := rep.Counts()
	var parts []string
	for s := Critical; s >= Info; s-- {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	summary := "no findings"
	if len(parts) > 0 {
		summary = fmt.Sprintf("%d findings (%s)", len(rep.Findings), strings.Join(parts, ", "))
	}
	fmt.Fprintf(bw, "breakwater audit: %d files, %s, %d ignored; score %d/100\n", len(rep.Files), summary, rep.Ignored, rep.Score)
	current := Severity(-1)
	for _, f := range rep.Findings {
		if f.Severity != current {
			current = f.Severity
			heading := strings.ToUpper(current.String())
			if colour && current >= Info && current <= Critical {
				heading = severityColours[current] + heading + colourReset
			}
			fmt.Fprintf(bw, "\n%s (%d)\n", heading, counts[current])
		}
		fmt.Fprintf(bw, "  %s: %s [%s, %s %s]\n", f.Location(), f.Message, f.Rule, f.Category, CategoryName(f.Category))
		if f.Fix != "" {
			fmt.Fprintf(bw, "      fix: %s\n", f.Fix)
		}
	}
	return bw.Flush()
}

// jsonReport is the shape of --format json.
type jsonReport struct {
	Score    int            `json:"score"`
	Files    []string       `json:"files"`
	Ignored  int            `json:"ignored"`
	Summary  map[string]int `json:"summary"`
	Findings []Finding      `json:"findings"`
}

// WriteJSON writes the report as one JSON object: score, files, ignored,
// summary (count per severity) and findings.
func WriteJSON(w io.Writer, rep *Report) error {
	counts := rep.Counts()
	out := jsonReport{Score: rep.Score, Files: rep.Files, Ignored: rep.Ignored, Summary: map[string]int{}, Findings: rep.Findings}
	if out.Files == nil {
		out.Files = []string{}
	}
	if out.Findings == nil {
		out.Findings = []Finding{}
	}
	for s := Info; s <= Critical; s++ {
		out.Summary[s.String()] = counts[s]
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// SARIF 2.1.0, as GitHub code scanning reads it.
type (
	sarifLog struct {
		Schema  string     `json:"$schema"`
		Version string     `json:"version"`
		Runs    []sarifRun `json:"runs"`
	}
	sarifRun struct {
		Tool    sarifTool     `json:"tool"`
		Results []sarifResult `json:"results"`
	}
	sarifTool struct {
		Driver sarifDriver `json:"driver"`
	}
	sarifDriver struct {
		Name           string      `json:"name"`
		InformationURI string      `json:"informationUri"`
		Version        string      `json:"version,omitempty"`
		Rules          []sarifRule `json:"rules"`
	}
	sarifRule struct {
		ID                   string         `json:"id"`
		Name                 string         `json:"name"`
		ShortDescription     sarifText      `json:"shortDescription"`
		FullDescription      sarifText      `json:"fullDescription"`
		Help                 sarifHelp      `json:"help"`
		DefaultConfiguration sarifConfig    `json:"defaultConfiguration"`
		Properties           sarifRuleProps `json:"properties"`
	}
	sarifText struct {
		Text string `json:"text"`
	}
	sarifHelp struct {
		Text     string `json:"text"`
		Markdown string `json:"markdown"`
	}
	sarifConfig struct {
		Level string `json:"level"`
	}
	sarifRuleProps struct {
		Tags             []string `json:"tags"`
		SecuritySeverity string   `json:"security-severity,omitempty"`
		Precision        string   `json:"precision"`
	}
	sarifResult struct {
		RuleID    string          `json:"ruleId"`
		RuleIndex int             `json:"ruleIndex"`
		Level     string          `json:"level"`
		Message   sarifText       `json:"message"`
		Locations []sarifLocation `json:"locations"`
	}
	sarifLocation struct {
		PhysicalLocation sarifPhysical `json:"physicalLocation"`
	}
	sarifPhysical struct {
		ArtifactLocation sarifArtifact `json:"artifactLocation"`
		Region           *sarifRegion  `json:"region,omitempty"`
	}
	sarifArtifact struct {
		URI string `json:"uri"`
	}
	sarifRegion struct {
		StartLine   int `json:"startLine"`
		StartColumn int `json:"startColumn,omitempty"`
	}
)

// sarifLevel maps a severity to a SARIF result level.
func sarifLevel(s Severity) string {
	switch {
	case s >= High:
		return "error"
	case s == Medium:
		return "warning"
	}
	return "note"
}

// securitySeverity is the CVSS-like score GitHub ranks alerts by:
// ≥ 9.0 critical, 7.0–8.9 high, 4.0–6.9 medium, 0.1–3.9 low.
func securitySeverity(s Severity) string {
	switch s {
	case Critical:
		return "9.5"
	case High:
		return "8.0"
	case Medium:
		return "5.5"
	case Low:
		return "3.0"
	}
	return ""
}

// sarifURI turns a file name into a SARIF artifact URI: relative paths
// stay relative (with forward slashes), absolute ones become file URIs.
func sarifURI(p string) string {
	s := filepath.ToSlash(p)
	if filepath.IsAbs(p) {
		if !strings.HasPrefix(s, "/") {
			s = "/" + s
		}
		return "file://" + s
	}
	return strings.TrimPrefix(s, "./")
}

// WriteSARIF writes the report as a SARIF 2.1.0 log with every rule of the
// catalogue in tool.driver.rules. version is the tool's version ("" to
// leave it out).
func WriteSARIF(w io.Writer, rep *Report, version string) error {
	rules := Rules()
	index := make(map[string]int, len(rules))
	driver := sarifDriver{Name: "breakwater", InformationURI: "https://github.com/breakwater/breakwater/blob/main/docs/audit.md", Version: version}
	for i, r := range rules {
		index[r.ID] = i
		driver.Rules = append(driver.Rules, sarifRule{
			ID:                   r.ID,
			Name:                 ruleName(r.Title),
			ShortDescription:     sarifText{r.Title},
			FullDescription:      sarifText{fmt.Sprintf("%s (OWASP %s %s).", r.Title, r.Category, CategoryName(r.Category))},
			Help:                 sarifHelp{Text: r.Fix, Markdown: fmt.Sprintf("**Fix:** %s\n\nSee docs/audit.md#%s.", r.Fix, strings.ToLower(r.ID))},
			DefaultConfiguration: sarifConfig{Level: sarifLevel(r.Severity)},
			Properties: sarifRuleProps{
				Tags:             []string{"security", "owasp-api-top-10-2023", r.Category, r.Severity.String()},
				SecuritySeverity: securitySeverity(r.Severity),
				Precision:        "high",
			},
		})
	}
	run := sarifRun{Tool: sarifTool{Driver: driver}, Results: []sarifResult{}}
	for _, f := range rep.Findings {
		loc := sarifLocation{PhysicalLocation: sarifPhysical{ArtifactLocation: sarifArtifact{URI: sarifURI(f.File)}}}
		if f.Line > 0 {
			loc.PhysicalLocation.Region = &sarifRegion{StartLine: f.Line, StartColumn: max(f.Col, 1)}
		}
		run.Results = append(run.Results, sarifResult{
			RuleID: f.Rule, RuleIndex: index[f.Rule], Level: sarifLevel(f.Severity),
			Message:   sarifText{f.Message + ". Fix: " + f.Fix},
			Locations: []sarifLocation{loc},
		})
	}
	log := sarifLog{
		Schema:  "https://json.schemastore.org/sarif-2.1.0.json",
		Version: "2.1.0",
		Runs:    []sarifRun{run},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(log)
}

// ruleName turns a title into the PascalCase name SARIF viewers show.
func ruleName(title string) string {
	var b strings.Builder
	for _, w := range strings.FieldsFunc(title, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) {
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	return b.String()
}
