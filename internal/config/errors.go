package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// embeddedFile names configs that were not read from a file in messages.
const embeddedFile = "<embedded>"

// maxErrors bounds how many problems one load reports; a broken or hostile
// document could otherwise produce one per value.
const maxErrors = 1000

// FieldError is one problem in a config: where it is and what is wrong.
type FieldError struct {
	File      string // the config file, or "<embedded>"
	Line, Col int    // 1-based; 0 when the problem has no place in the file
	Path      string // the field path, e.g. "routes[0].auth"; "" for the whole document
	Msg       string
}

// String formats the error as FILE:LINE:COL: field.path: message.
func (e FieldError) String() string {
	var b strings.Builder
	file := e.File
	if file == "" {
		file = embeddedFile
	}
	b.WriteString(file)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Error implements error.
func (e FieldError) Error() string { return e.String() }

// Errors is every problem found in a config, sorted by line and column.
type Errors []FieldError

// Error returns one line per problem.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.String()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find the individual FieldErrors.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// sortErrors orders problems by file position; problems without a position
// come first, and the order of equal positions is kept.
func sortErrors(es Errors) {
	slices.SortStableFunc(es, func(a, b FieldError) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
}

// collector gathers problems up to maxErrors.
type collector struct {
	file    string
	errs    Errors
	dropped int
}

func (c *collector) add(pos Position, path, msg string) {
	if len(c.errs) >= maxErrors {
		c.dropped++
		return
	}
	if pos.Line <= 0 {
		pos = Position{Line: 1, Col: 1}
	}
	c.errs = append(c.errs, FieldError{File: c.file, Line: pos.Line, Col: pos.Col, Path: path, Msg: msg})
}

// result returns the sorted problems, with a last line counting the ones
// left out.
func (c *collector) result() Errors {
	if len(c.errs) == 0 {
		return nil
	}
	out := slices.Clone(c.errs)
	sortErrors(out)
	if c.dropped > 0 {
		last := out[len(out)-1]
		out = append(out, FieldError{
			File: c.file, Line: last.Line, Col: last.Col,
			Msg: fmt.Sprintf("%d more problems not shown; fix the ones above first", c.dropped),
		})
	}
	return out
}
