package config

import (
	"fmt"
	"github.com/breakwater/breakwater/internal/yamlnode"

	"github.com/goccy/go-yaml/ast"
)

// This file holds what the decoder needs to know about goccy's AST:
// anchors, aliases and tags, node kinds and positions.

// collectAnchors records every anchor of the document and counts its
// nodes. Anchors must be unique.
func (d *decoder) collectAnchors(n ast.Node, depth int) int {
	n = norm(n)
	if n == nil || depth > 4*maxDepth {
		return 0
	}
	count := 1
	switch x := n.(type) {
	case *ast.AnchorNode:
		name := scalarString(x.Name)
		if prev, ok := d.anchors[name]; ok {
			p := nodePos(prev)
			d.errs.add(nodePos(x), "", fmt.Sprintf("anchor &%s is already defined at %d:%d; give each anchor its own name", truncate(name), p.Line, p.Col))
		} else {
			d.anchors[name] = x
		}
		count += d.collectAnchors(x.Value, depth+1)
	case *ast.TagNode:
		count += d.collectAnchors(x.Value, depth+1)
	case *ast.MappingNode:
		for _, mv := range x.Values {
			count += d.collectAnchors(mv, depth+1)
		}
	case *ast.MappingValueNode:
		count += d.collectAnchors(x.Key, depth+1) + d.collectAnchors(x.Value, depth+1)
	case *ast.MappingKeyNode:
		count += d.collectAnchors(x.Value, depth+1)
	case *ast.SequenceNode:
		for _, v := range x.Values {
			count += d.collectAnchors(v, depth+1)
		}
	}
	return count
}

// resolve follows anchors, aliases and standard tags to the node that holds
// the value (nil for an empty value). ok is false, after the problem is
// reported, when there is none.
func (d *decoder) resolve(n ast.Node, path string) (ast.Node, bool) {
	for range 8 {
		switch x := norm(n).(type) {
		case *ast.AnchorNode:
			n = x.Value
		case *ast.AliasNode:
			name := scalarString(x.Value)
			a, ok := d.anchors[name]
			if !ok {
				d.fail(nodePos(x), path, "alias *%s refers to no anchor; define &%s first", truncate(name), truncate(name))
				return nil, false
			}
			if ap, xp := nodePos(a), nodePos(x); ap.Line > xp.Line || ap.Line == xp.Line && ap.Col > xp.Col {
				d.fail(xp, path, "alias *%s comes before its anchor at %d:%d; define the anchor first", truncate(name), ap.Line, ap.Col)
				return nil, false
			}
			n = a.Value
		case *ast.TagNode:
			tag := ""
			if x.Start != nil {
				tag = x.Start.Value
			}
			switch tag {
			case "!!str", "!!int", "!!bool", "!!float", "!!null", "!!map", "!!seq":
			default:
				d.fail(nodePos(x), path, "YAML tag %q is not supported; remove it", truncate(tag))
				return nil, false
			}
			n = x.Value
		default:
			return x, true
		}
	}
	d.fail(nodePos(n), path, "too many anchors, aliases and tags on one value")
	return nil, false
}

// norm turns a typed nil node into a nil interface.
func norm(n ast.Node) ast.Node { return yamlnode.Norm(n) }

// isNull reports whether a node stands for no value.
func isNull(n ast.Node) bool {
	n = norm(n)
	_, null := n.(*ast.NullNode)
	return n == nil || null
}

// kindName names the kind of a node for messages.
func kindName(n ast.Node) string {
	switch norm(n).(type) {
	case nil, *ast.NullNode:
		return "nothing"
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.BoolNode:
		return "a boolean"
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a number"
	}
	return "a string"
}

// scalarString is the text of an anchor or alias name.
func scalarString(n ast.Node) string {
	if n == nil {
		return ""
	}
	if tk := n.GetToken(); tk != nil {
		return tk.Value
	}
	return ""
}

// nodePos is where a node starts: the first key of a block mapping, the
// indicator of a sequence or flow mapping, the token of a scalar.
func nodePos(n ast.Node) Position {
	line, col := yamlnode.Start(n)
	return Position{Line: line, Col: col}
}
