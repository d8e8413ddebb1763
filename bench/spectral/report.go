package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/breakwater/breakwater/internal/audit"
)

// comparison is everything the report shows.
type comparison struct {
	SpectralVersion string // spectral --version
	RulesetVersion  string // @stoplight/spectral-owasp-ruleset's package.json
	Specs           []string
	Spectral        []finding
	Breakwater      []finding
	Examples        int // per rule and tool in the example lists
}

// writer writes the report as plain text or as Markdown.
type writer struct {
	w        io.Writer
	markdown bool
	err      error
}

func (w *writer) printf(format string, args ...any) {
	if w.err == nil {
		_, w.err = fmt.Fprintf(w.w, format, args...)
	}
}

func (w *writer) heading(level int, title string) {
	if w.markdown {
		w.printf("%s %s\n\n", strings.Repeat("#", level), title)
		return
	}
	w.printf("%s\n%s\n\n", title, strings.Repeat("-="[level%2:level%2+1], len([]rune(title))))
}

// table writes rows under a header; in Markdown, "|" in cells is escaped.
func (w *writer) table(header []string, rows [][]string) {
	if w.markdown {
		esc := func(cells []string) string {
			out := make([]string, len(cells))
			for i, c := range cells {
				out[i] = strings.ReplaceAll(c, "|", `\|`)
			}
			return "| " + strings.Join(out, " | ") + " |\n"
		}
		w.printf("%s", esc(header))
		sep := make([]string, len(header))
		for i := range sep {
			sep[i] = "---"
		}
		w.printf("| %s |\n", strings.Join(sep, " | "))
		for _, r := range rows {
			w.printf("%s", esc(r))
		}
		w.printf("\n")
		return
	}
	if w.err != nil {
		return
	}
	tw := tabwriter.NewWriter(w.w, 2, 8, 2, ' ', 0)
	for _, r := range append([][]string{header}, rows...) {
		if _, err := fmt.Fprintln(tw, strings.Join(r, "\t")); err != nil {
			w.err = err
			return
		}
	}
	w.err = tw.Flush()
	w.printf("\n")
}

// code quotes a rule name in Markdown.
func (w *writer) code(s string) string {
	if w.markdown && s != "" {
		return "`" + s + "`"
	}
	return s
}

// render writes the comparison.
func render(out io.Writer, c comparison, markdown bool) error {
	w := &writer{w: out, markdown: markdown}
	w.printf("Spectral %s with @stoplight/spectral-owasp-ruleset %s (every rule on) and breakwater audit --spec, on %d specs: %s.\n\n",
		c.SpectralVersion, c.RulesetVersion, len(c.Specs), strings.Join(c.Specs, ", "))
	w.printf("A finding is \"also found\" when the other tool reports the same concern (a rule pair of the concern table) at the same place: the same file, and a JSON path that leads to the other's (an operation and its responses, a parameter and its schema) without entering a nested schema.\n\n")

	w.heading(3, "Per OWASP API Top 10 2023 category")
	cats := map[string]bool{}
	for _, f := range slices.Concat(c.Spectral, c.Breakwater) {
		cats[f.Category] = true
	}
	order := make([]string, 0, len(cats))
	for k := range cats {
		order = append(order, k)
	}
	slices.SortFunc(order, categoryOrder)
	var rows [][]string
	var sumS, sumB tally
	for _, cat := range order {
		var s, b tally
		for _, f := range c.Spectral {
			if f.Category == cat {
				s.add(f)
				sumS.add(f)
			}
		}
		for _, f := range c.Breakwater {
			if f.Category == cat {
				b.add(f)
				sumB.add(f)
			}
		}
		name := audit.CategoryName(cat)
		if cat == otherCategory {
			name = "not in the OWASP ruleset"
		}
		rows = append(rows, []string{cat, name, strconv.Itoa(s.total), strconv.Itoa(b.total), strconv.Itoa(s.only), strconv.Itoa(b.only)})
	}
	rows = append(rows, []string{"total", "", strconv.Itoa(sumS.total), strconv.Itoa(sumB.total), strconv.Itoa(sumS.only), strconv.Itoa(sumB.only)})
	w.table([]string{"category", "name", "Spectral", "Breakwater", "only Spectral", "only Breakwater"}, rows)

	w.heading(3, "Per spec")
	rows = rows[:0]
	for _, spec := range c.Specs {
		var s, b tally
		for _, f := range c.Spectral {
			if f.File == spec {
				s.add(f)
			}
		}
		for _, f := range c.Breakwater {
			if f.File == spec {
				b.add(f)
			}
		}
		rows = append(rows, []string{spec, strconv.Itoa(s.total), strconv.Itoa(b.total), strconv.Itoa(s.only), strconv.Itoa(b.only)})
	}
	w.table([]string{"spec", "Spectral", "Breakwater", "only Spectral", "only Breakwater"}, rows)

	w.heading(3, "Per concern")
	rows = rows[:0]
	for _, cn := range concerns {
		var s, b tally
		for _, f := range c.Spectral {
			if f.Concern == cn.Name {
				s.add(f)
			}
		}
		for _, f := range c.Breakwater {
			if f.Concern == cn.Name {
				b.add(f)
			}
		}
		rows = append(rows, []string{cn.Name, w.codes(cn.Spectral), w.codes(cn.Breakwater),
			strconv.Itoa(s.total), strconv.Itoa(b.total), strconv.Itoa(s.only), strconv.Itoa(b.only)})
	}
	for _, tool := range []struct {
		name string
		fs   []finding
	}{{toolSpectral, c.Spectral}, {toolBreakwater, c.Breakwater}} {
		counts := map[string]int{}
		for _, f := range tool.fs {
			if f.Concern == "" {
				counts[f.Rule]++
			}
		}
		rules := make([]string, 0, len(counts))
		for r := range counts {
			rules = append(rules, r)
		}
		slices.Sort(rules)
		for _, r := range rules {
			row := []string{"(no counterpart)", "", "", "", "", "", ""}
			if tool.name == toolSpectral {
				row[1], row[3], row[5] = w.code(r), strconv.Itoa(counts[r]), strconv.Itoa(counts[r])
			} else {
				row[2], row[4], row[6] = w.code(r), strconv.Itoa(counts[r]), strconv.Itoa(counts[r])
			}
			rows = append(rows, row)
		}
	}
	w.table([]string{"concern", "Spectral rules", "Breakwater rules", "Spectral", "Breakwater", "only Spectral", "only Breakwater"}, rows)

	w.heading(3, "Found by one tool only, per category")
	for _, cat := range order {
		onlyS := unmatchedByRule(c.Spectral, cat, c.Examples)
		onlyB := unmatchedByRule(c.Breakwater, cat, c.Examples)
		if len(onlyS) == 0 && len(onlyB) == 0 {
			continue
		}
		w.heading(4, cat+" "+audit.CategoryName(cat))
		w.examples("Only Spectral", onlyS)
		w.examples("Only Breakwater", onlyB)
	}
	return w.err
}

func (w *writer) codes(rules []string) string {
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i] = w.code(r)
	}
	return strings.Join(out, ", ")
}

func (w *writer) examples(title string, groups []ruleExamples) {
	if len(groups) == 0 {
		return
	}
	w.printf("%s:\n\n", title)
	for _, g := range groups {
		var ex []string
		for _, f := range g.Examples {
			ex = append(ex, fmt.Sprintf("%s %s", f.location(), f.Message))
		}
		more := ""
		if g.Count > len(g.Examples) {
			more = fmt.Sprintf("; %d more", g.Count-len(g.Examples))
		}
		if w.markdown {
			w.printf("* %s ×%d: %s%s\n", w.code(g.Rule), g.Count, strings.Join(mdEscape(ex), "; "), more)
		} else {
			w.printf("  %s ×%d\n", g.Rule, g.Count)
			for _, e := range ex {
				w.printf("      %s\n", e)
			}
			if more != "" {
				w.printf("      …%s\n", more[1:])
			}
		}
	}
	w.printf("\n")
}

// mdEscape keeps messages from turning into Markdown markup.
func mdEscape(ss []string) []string {
	r := strings.NewReplacer("`", "'", "*", `\*`, "_", `\_`, "<", "&lt;", ">", "&gt;", "[", `\[`, "]", `\]`)
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = r.Replace(s)
	}
	return out
}
