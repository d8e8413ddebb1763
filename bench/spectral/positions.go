package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/breakwater/breakwater/internal/yamlnode"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// maxIndexDepth bounds the recursion of the position index.
const maxIndexDepth = 256

// pos is a 1-based place in a spec, as breakwater audit reports it.
type pos struct{ line, col int }

// positionIndex maps the places where breakwater audit puts its findings to
// the path of keys from the document's root: the key of every mapping entry
// (the audit reports a value at its key) and the start of every sequence
// item. Where two places coincide (a sequence item that is a block mapping
// starts at its first key) the outer one wins, as in the audit. The root
// is left out: it starts where its first key does, and the audit's
// findings there (BW-SPEC-025 on openapi) are about that key.
type positionIndex map[pos][]string

// indexPositions parses a YAML or JSON spec with the parser the audit uses.
func indexPositions(data []byte) (idx positionIndex, err error) {
	defer func() {
		if r := recover(); r != nil {
			idx, err = nil, fmt.Errorf("the YAML parser failed: %v", r)
		}
	}()
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, fmt.Errorf("parsing: %w", err)
	}
	if f == nil {
		return nil, errors.New("parsing: empty document")
	}
	idx = positionIndex{}
	for _, doc := range f.Docs {
		if doc != nil && yamlnode.Norm(doc.Body) != nil {
			idx.walk(doc.Body, nil, 0)
			break
		}
	}
	return idx, nil
}

// add records where n starts, unless an outer node already starts there.
func (idx positionIndex) add(n ast.Node, path []string) {
	line, col := yamlnode.Start(n)
	if line == 0 {
		return
	}
	if _, ok := idx[pos{line, col}]; !ok {
		idx[pos{line, col}] = append([]string{}, path...)
	}
}

func (idx positionIndex) walk(n ast.Node, path []string, depth int) {
	if depth > maxIndexDepth {
		return
	}
	switch x := yamlnode.Norm(n).(type) {
	case *ast.AnchorNode:
		idx.walk(x.Value, path, depth+1)
	case *ast.TagNode:
		idx.walk(x.Value, path, depth+1)
	case *ast.MappingNode:
		for _, mv := range x.Values {
			idx.entry(mv, path, depth)
		}
	case *ast.MappingValueNode:
		idx.entry(x, path, depth)
	case *ast.SequenceNode:
		for i, v := range x.Values {
			p := with(path, strconv.Itoa(i))
			idx.add(v, p)
			idx.walk(v, p, depth+1)
		}
	}
}

func (idx positionIndex) entry(mv *ast.MappingValueNode, path []string, depth int) {
	key, ok := keyText(mv)
	if !ok {
		return
	}
	k := yamlnode.Norm(mv.Key)
	if mk, ok := k.(*ast.MappingKeyNode); ok {
		k = yamlnode.Norm(mk.Value)
	}
	p := with(path, key)
	idx.add(k, p)
	idx.walk(mv.Value, p, depth+1)
}

// with returns path and more in a new slice.
func with(path []string, more ...string) []string {
	out := make([]string, 0, len(path)+len(more))
	return append(append(out, path...), more...)
}

// maxRefs bounds the $refs collected under one path.
const maxRefs = 1000

// refIndex holds a spec as plain values, to find the $refs under a path.
type refIndex struct{ root any }

// refsUnder returns the targets of the local $refs written under path
// (not followed further), as paths from the root.
func (r refIndex) refsUnder(path []string) [][]string {
	n := r.root
	for _, k := range path {
		switch x := n.(type) {
		case map[string]any:
			n = x[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			n = x[i]
		default:
			return nil
		}
	}
	var out [][]string
	var walk func(n any, depth int)
	walk = func(n any, depth int) {
		if depth > maxIndexDepth || len(out) >= maxRefs {
			return
		}
		switch x := n.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				if p, ok := pointerPath(ref); ok {
					out = append(out, p)
				}
			}
			for _, v := range x {
				walk(v, depth+1)
			}
		case []any:
			for _, v := range x {
				walk(v, depth+1)
			}
		}
	}
	walk(n, 0)
	return out
}

// pointerPath decodes a local reference ("#/components/schemas/a~1b").
func pointerPath(ref string) ([]string, bool) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, false
	}
	parts := strings.Split(rest, "/")
	for i, p := range parts {
		parts[i] = strings.NewReplacer("~1", "/", "~0", "~").Replace(p)
	}
	return parts, true
}

// parseRefIndex parses a YAML or JSON spec into plain values (mappings,
// sequences and the text of scalars; aliases are left out).
func parseRefIndex(data []byte) (r refIndex, err error) {
	defer func() {
		if p := recover(); p != nil {
			r, err = refIndex{}, fmt.Errorf("the YAML parser failed: %v", p)
		}
	}()
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return refIndex{}, fmt.Errorf("parsing: %w", err)
	}
	if f == nil {
		return refIndex{}, errors.New("parsing: empty document")
	}
	for _, doc := range f.Docs {
		if doc != nil && yamlnode.Norm(doc.Body) != nil {
			return refIndex{root: plain(doc.Body, 0)}, nil
		}
	}
	return refIndex{}, nil
}

func plain(n ast.Node, depth int) any {
	if depth > maxIndexDepth {
		return nil
	}
	switch x := yamlnode.Norm(n).(type) {
	case nil, *ast.AliasNode, *ast.NullNode:
		return nil
	case *ast.AnchorNode:
		return plain(x.Value, depth+1)
	case *ast.TagNode:
		return plain(x.Value, depth+1)
	case *ast.MappingNode:
		m := make(map[string]any, len(x.Values))
		for _, mv := range x.Values {
			if k, ok := keyText(mv); ok {
				m[k] = plain(mv.Value, depth+1)
			}
		}
		return m
	case *ast.MappingValueNode:
		m := map[string]any{}
		if k, ok := keyText(x); ok {
			m[k] = plain(x.Value, depth+1)
		}
		return m
	case *ast.SequenceNode:
		s := make([]any, len(x.Values))
		for i, v := range x.Values {
			s[i] = plain(v, depth+1)
		}
		return s
	case *ast.StringNode:
		return x.Value
	default:
		if tk := x.GetToken(); tk != nil {
			return tk.Value
		}
		return nil
	}
}

// keyText is the key of a mapping entry; false for merge keys and entries
// without a key.
func keyText(mv *ast.MappingValueNode) (string, bool) {
	if mv == nil {
		return "", false
	}
	if _, ok := mv.Key.(*ast.MergeKeyNode); ok {
		return "", false
	}
	k := yamlnode.Norm(mv.Key)
	if mk, ok := k.(*ast.MappingKeyNode); ok {
		k = yamlnode.Norm(mk.Value)
	}
	switch kx := k.(type) {
	case nil:
		return "", false
	case *ast.StringNode:
		return kx.Value, true
	default:
		if tk := kx.GetToken(); tk != nil {
			return tk.Value, true
		}
		return "", true
	}
}
