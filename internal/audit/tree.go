package audit

import (
	"errors"
	"fmt"
	"github.com/breakwater/breakwater/internal/yamlnode"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Bounds on one document (config or spec), checked before and while the
// YAML parser runs: it recurses once per nesting level, so a deep document
// would cost it the stack, and aliases could otherwise expand a small file
// into a huge tree ("billion laughs").
const (
	maxDocument = 16 << 20  // bytes
	maxDepth    = 64        // nesting of collections
	maxTokens   = 4 << 20   // a dense 16 MiB spec has about 3 million
	maxExpanded = 4_000_000 // nodes of the tree with every alias expanded
)

// kind is the shape of a node.
type kind uint8

const (
	kindNull kind = iota
	kindScalar
	kindMap
	kindSeq
)

// node is a YAML or JSON value with where it was written. Aliases share the
// node of their anchor, so the tree is a DAG; size bounds any walk of it.
type node struct {
	kind   kind
	str    string // scalar text
	quoted bool   // a string scalar (not a number, boolean or null)
	pos    Pos    // where the value starts
	keyPos Pos    // where its key starts, for mapping values; else pos
	keys   []string
	vals   []*node
	index  map[string]int // for large mappings
	size   int            // nodes below and including this one, aliases expanded (saturating)
}

// Pos is a 1-based place in a file.
type Pos struct {
	Line, Col int
}

// get returns the value of key in a mapping, or nil.
func (n *node) get(key string) *node {
	if n == nil || n.kind != kindMap {
		return nil
	}
	if n.index != nil {
		if i, ok := n.index[key]; ok {
			return n.vals[i]
		}
		return nil
	}
	for i, k := range n.keys {
		if k == key {
			return n.vals[i]
		}
	}
	return nil
}

// mapKeys returns a mapping's keys; nil for anything else.
func (n *node) mapKeys() []string {
	if n == nil || n.kind != kindMap {
		return nil
	}
	return n.keys
}

// at follows keys from n.
func (n *node) at(keys ...string) *node {
	for _, k := range keys {
		n = n.get(k)
	}
	return n
}

// text is a scalar's text; "" for anything else.
func (n *node) text() string {
	if n == nil || n.kind != kindScalar {
		return ""
	}
	return n.str
}

// has reports whether the mapping has key (even with a null value).
func (n *node) has(key string) bool {
	if n == nil || n.kind != kindMap {
		return false
	}
	if n.index != nil {
		_, ok := n.index[key]
		return ok
	}
	for _, k := range n.keys {
		if k == key {
			return true
		}
	}
	return false
}

// items returns a sequence's elements; a scalar counts as a list of one.
func (n *node) items() []*node {
	switch {
	case n == nil:
		return nil
	case n.kind == kindSeq:
		return n.vals
	case n.kind == kindScalar:
		return []*node{n}
	}
	return nil
}

// strings returns the scalar texts of a list (or of a single scalar).
func (n *node) strings() []string {
	var out []string
	for _, v := range n.items() {
		if v.kind == kindScalar {
			out = append(out, v.str)
		}
	}
	return out
}

// isMap reports whether n is a mapping.
func (n *node) isMap() bool { return n != nil && n.kind == kindMap }

// bool reports whether the scalar is YAML true.
func (n *node) bool() bool {
	t := n.text()
	return t == "true" || t == "True" || t == "TRUE"
}

// where returns the key position of n when it has one.
func (n *node) where() Pos {
	if n == nil {
		return Pos{}
	}
	if n.keyPos.Line > 0 {
		return n.keyPos
	}
	return n.pos
}

// errSyntax marks documents that are not YAML or JSON.
var errSyntax = errors.New("not valid YAML or JSON")

// parseDocument parses YAML or JSON text into a tree. The error names the
// place of the first problem.
func parseDocument(data []byte) (*node, error) {
	if len(data) > maxDocument {
		return nil, fmt.Errorf("%d bytes, more than the limit of %d MiB", len(data), maxDocument>>20)
	}
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%w: invalid UTF-8", errSyntax)
	}
	if i := strings.IndexByte(string(data), 0); i >= 0 {
		return nil, fmt.Errorf("%w: NUL byte at offset %d", errSyntax, i)
	}
	tokens := lexer.Tokenize(strings.TrimPrefix(string(data), "\ufeff"))
	if tk := tokens.InvalidToken(); tk != nil {
		p := tokenPos(tk)
		return nil, fmt.Errorf("%w: %d:%d: %s", errSyntax, p.Line, p.Col, tk.Error)
	}
	if err := checkDepth(tokens); err != nil {
		return nil, err
	}
	file, err := safeParse(tokens)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSyntax, err)
	}
	var body ast.Node
	for _, doc := range file.Docs {
		if doc != nil && norm(doc.Body) != nil {
			body = doc.Body
			break
		}
	}
	b := &builder{anchors: map[string]*node{}}
	root := b.build(body, 0)
	if b.err != nil {
		return nil, b.err
	}
	if root.size > maxExpanded {
		return nil, fmt.Errorf("aliases expand the document to more than %d values", maxExpanded)
	}
	return root, nil
}

// safeParse runs the YAML parser; a panic in it is an error, never a crash.
func safeParse(tokens token.Tokens) (f *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the YAML parser failed: %v", r)
		}
	}()
	f, err = parser.Parse(tokens, 0)
	if err == nil && f == nil {
		err = errors.New("empty parse result")
	}
	return f, err
}

// checkDepth bounds the nesting of flow collections and of block
// collections (by indentation), before the recursive parser sees them.
func checkDepth(tokens token.Tokens) error {
	if len(tokens) > maxTokens {
		return fmt.Errorf("more than %d YAML tokens", maxTokens)
	}
	flow := 0
	var cols []int
	for _, tk := range tokens {
		switch tk.Type {
		case token.SequenceStartType, token.MappingStartType:
			flow++
		case token.SequenceEndType, token.MappingEndType:
			if flow > 0 {
				flow--
			}
			continue
		case token.DocumentHeaderType:
			cols = cols[:0]
			continue
		case token.CommentType:
			continue
		}
		if flow == 0 {
			col := tokenPos(tk).Col
			for len(cols) > 0 && cols[len(cols)-1] > col {
				cols = cols[:len(cols)-1]
			}
			if len(cols) == 0 || cols[len(cols)-1] < col {
				cols = append(cols, col)
			}
		}
		if flow+len(cols) > 2*maxDepth {
			p := tokenPos(tk)
			return fmt.Errorf("%d:%d: collections are nested more than %d deep", p.Line, p.Col, maxDepth)
		}
	}
	return nil
}

// builder turns goccy's AST into nodes.
type builder struct {
	anchors map[string]*node
	err     error
}

func (b *builder) build(n ast.Node, depth int) *node {
	n = norm(n)
	if depth > 4*maxDepth {
		if b.err == nil {
			b.err = fmt.Errorf("%d:%d: values are nested more than %d deep", nodePos(n).Line, nodePos(n).Col, maxDepth)
		}
		return &node{pos: nodePos(n), size: 1}
	}
	switch x := n.(type) {
	case nil:
		return &node{size: 1}
	case *ast.NullNode:
		return &node{pos: nodePos(x), size: 1}
	case *ast.AnchorNode:
		v := b.build(x.Value, depth+1)
		if name := tokenText(x.Name); name != "" {
			b.anchors[name] = v
		}
		return v
	case *ast.AliasNode:
		if v, ok := b.anchors[tokenText(x.Value)]; ok {
			return v
		}
		return &node{pos: nodePos(x), size: 1}
	case *ast.TagNode:
		return b.build(x.Value, depth+1)
	case *ast.MappingNode:
		return b.mapping(x.Values, nodePos(x), depth)
	case *ast.MappingValueNode:
		return b.mapping([]*ast.MappingValueNode{x}, nodePos(x), depth)
	case *ast.SequenceNode:
		out := &node{kind: kindSeq, pos: nodePos(x), size: 1}
		for _, v := range x.Values {
			c := b.build(v, depth+1)
			out.vals = append(out.vals, c)
			out.size = addSize(out.size, c.size)
		}
		return out
	case *ast.StringNode:
		return &node{kind: kindScalar, str: x.Value, quoted: true, pos: nodePos(x), size: 1}
	case *ast.LiteralNode:
		s := ""
		if x.Value != nil {
			s = x.Value.Value
		}
		return &node{kind: kindScalar, str: s, quoted: true, pos: nodePos(x), size: 1}
	case *ast.CommentGroupNode, *ast.CommentNode:
		return &node{size: 1}
	}
	return &node{kind: kindScalar, str: tokenText(n), pos: nodePos(n), size: 1}
}

func (b *builder) mapping(values []*ast.MappingValueNode, pos Pos, depth int) *node {
	out := &node{kind: kindMap, pos: pos, size: 1}
	var merged []*node
	for _, mv := range values {
		if mv == nil {
			continue
		}
		if _, ok := mv.Key.(*ast.MergeKeyNode); ok {
			src := b.build(mv.Value, depth+1)
			if src.kind == kindSeq {
				merged = append(merged, src.vals...)
			} else {
				merged = append(merged, src)
			}
			continue
		}
		k := norm(ast.Node(mv.Key))
		if mk, ok := k.(*ast.MappingKeyNode); ok {
			k = norm(mk.Value)
		}
		key := ""
		switch kx := k.(type) {
		case *ast.StringNode:
			key = kx.Value
		case nil:
		default:
			key = tokenText(kx)
		}
		v := b.build(mv.Value, depth+1)
		if v.keyPos.Line == 0 { // a node shared by aliases keeps its first key
			v.keyPos = nodePos(k)
		}
		if v.pos.Line == 0 {
			v.pos = v.keyPos
		}
		out.put(key, v)
	}
	for _, m := range merged {
		if m.kind != kindMap {
			continue
		}
		for i, k := range m.keys {
			if !out.has(k) {
				out.put(k, m.vals[i])
			}
		}
	}
	return out
}

// put appends a key (a later duplicate is ignored).
func (n *node) put(key string, v *node) {
	if n.has(key) {
		return
	}
	n.keys = append(n.keys, key)
	n.vals = append(n.vals, v)
	n.size = addSize(n.size, v.size)
	if n.index != nil {
		n.index[key] = len(n.keys) - 1
	} else if len(n.keys) > 16 {
		n.index = make(map[string]int, 32)
		for i, k := range n.keys {
			n.index[k] = i
		}
	}
}

func addSize(a, b int) int {
	if a+b > maxExpanded+1 || a+b < 0 {
		return maxExpanded + 1
	}
	return a + b
}

// norm turns a typed nil node into a nil interface.
func norm(n ast.Node) ast.Node { return yamlnode.Norm(n) }

func tokenText(n ast.Node) string {
	n = norm(n)
	if n == nil {
		return ""
	}
	if tk := n.GetToken(); tk != nil {
		return tk.Value
	}
	return ""
}

// nodePos is where a node starts.
func nodePos(n ast.Node) Pos {
	line, col := yamlnode.Start(n)
	return Pos{Line: line, Col: col}
}

func tokenPos(tk *token.Token) Pos {
	line, col := yamlnode.TokenStart(tk)
	return Pos{Line: line, Col: col}
}
