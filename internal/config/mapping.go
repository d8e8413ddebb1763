package config

import (
	"fmt"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// entry is one key of a mapping, after merge keys are applied.
type entry struct {
	key    string
	keyPos Position
	value  ast.Node
}

// entries lists the keys of a mapping node in document order. Duplicate
// keys are reported; keys merged with "<<" come after the mapping's own
// keys, which override them. A null node has no entries; any other
// non-mapping is reported.
func (d *decoder) entries(n ast.Node, path string) []entry {
	if isNull(n) {
		return nil
	}
	own, merged := d.mappingKeys(n, path, 0)
	seen := make(map[string]Position, len(own))
	out := make([]entry, 0, len(own)+len(merged))
	for _, e := range own {
		if first, dup := seen[e.key]; dup {
			d.fail(e.keyPos, joinPath(path, e.key), "duplicate key; it is first defined at %d:%d", first.Line, first.Col)
			continue
		}
		seen[e.key] = e.keyPos
		out = append(out, e)
	}
	for _, e := range merged {
		if _, dup := seen[e.key]; dup {
			continue
		}
		seen[e.key] = e.keyPos
		out = append(out, e)
	}
	return out
}

// mappingKeys returns the keys written in a mapping and, separately, the
// ones it merges in, in order of precedence.
func (d *decoder) mappingKeys(n ast.Node, path string, depth int) (own, merged []entry) {
	var values []*ast.MappingValueNode
	switch x := n.(type) {
	case *ast.MappingNode:
		values = x.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{x}
	default:
		d.fail(nodePos(n), path, "expected a mapping (key: value), got %s", kindName(n))
		return nil, nil
	}
	for _, mv := range values {
		if mv == nil {
			continue
		}
		if !d.spend(mv, path) {
			return own, merged
		}
		if _, ok := mv.Key.(*ast.MergeKeyNode); ok {
			merged = append(merged, d.mergeKeys(mv.Value, path, depth)...)
			continue
		}
		key, ok := d.keyText(mv.Key, path)
		if !ok {
			continue
		}
		own = append(own, entry{key: key, keyPos: nodePos(mv.Key), value: mv.Value})
	}
	return own, merged
}

// mergeKeys returns the keys that a merge key ("<<: *base" or
// "<<: [*a, *b]") brings in; earlier mappings take precedence.
func (d *decoder) mergeKeys(n ast.Node, path string, depth int) []entry {
	if depth >= maxMergeDepth {
		d.fail(nodePos(n), path, "merge keys (<<) nest more than %d deep", maxMergeDepth)
		return nil
	}
	n, ok := d.resolve(n, path)
	if !ok {
		return nil
	}
	var sources []ast.Node
	if seq, isSeq := n.(*ast.SequenceNode); isSeq {
		for _, item := range seq.Values {
			if item, ok := d.resolve(item, path); ok {
				sources = append(sources, item)
			}
		}
	} else {
		sources = []ast.Node{n}
	}
	var out []entry
	for _, src := range sources {
		switch src.(type) {
		case *ast.MappingNode, *ast.MappingValueNode:
		default:
			d.fail(nodePos(src), path, "a merge key (<<) takes a mapping or a list of mappings, got %s", kindName(src))
			continue
		}
		own, merged := d.mappingKeys(src, path, depth+1)
		out = append(out, own...)
		out = append(out, merged...)
	}
	return out
}

// keyText returns a mapping key as a string; keys must be scalars.
func (d *decoder) keyText(k ast.Node, path string) (string, bool) {
	if mk, ok := norm(k).(*ast.MappingKeyNode); ok {
		k = mk.Value
	}
	k, ok := d.resolve(k, path)
	if !ok {
		return "", false
	}
	switch x := k.(type) {
	case nil, *ast.NullNode:
		d.fail(nodePos(k), path, "empty key; write a field name before the colon")
		return "", false
	case *ast.StringNode:
		return x.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return x.GetToken().Value, true
	}
	d.fail(nodePos(k), path, "a key must be a plain name, not %s", kindName(k))
	return "", false
}

// unknownField explains a key that names no field, suggesting the nearest
// valid one or listing them all.
func unknownField(key string, valid []string) string {
	if s := suggest(key, valid); s != "" {
		return fmt.Sprintf("unknown field; did you mean %q?", s)
	}
	return "unknown field; valid fields here: " + strings.Join(valid, ", ")
}

// suggest returns the valid name closest to key by edit distance, ignoring
// case and "-" versus "_", or "" when none is close.
func suggest(key string, valid []string) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	k := norm(key)
	if len(k) > 64 {
		return ""
	}
	best, bestDist := "", len(k)/3+1
	if bestDist > 3 {
		bestDist = 3
	}
	for _, v := range valid {
		if dist := editDistance(k, norm(v)); dist <= bestDist && (best == "" || dist < editDistance(k, norm(best))) {
			best = v
		}
	}
	return best
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and transpositions of adjacent bytes.
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
