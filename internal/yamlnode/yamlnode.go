// Package yamlnode holds what the config decoder and the audit both need
// from goccy/go-yaml's syntax tree: where a node starts.
package yamlnode

import (
	"reflect"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// Norm turns a typed nil node into a nil interface.
func Norm(n ast.Node) ast.Node {
	if n == nil {
		return nil
	}
	if v := reflect.ValueOf(n); v.Kind() == reflect.Pointer && v.IsNil() {
		return nil
	}
	return n
}

// Start is where a node starts (1-based line and column; 0, 0 when
// unknown): the first key of a block mapping, the indicator of a sequence
// or flow mapping, the token of a scalar.
func Start(n ast.Node) (line, col int) {
	switch x := Norm(n).(type) {
	case nil:
		return 0, 0
	case *ast.MappingNode:
		if !x.IsFlowStyle && len(x.Values) > 0 && x.Values[0] != nil && x.Values[0].Key != nil {
			return Start(x.Values[0].Key)
		}
		return TokenStart(x.Start)
	case *ast.MappingValueNode:
		if x.Key != nil {
			return Start(x.Key)
		}
	case *ast.SequenceNode:
		return TokenStart(x.Start)
	case *ast.AnchorNode:
		return TokenStart(x.Start)
	case *ast.AliasNode:
		return TokenStart(x.Start)
	case *ast.TagNode:
		return TokenStart(x.Start)
	case *ast.LiteralNode:
		return TokenStart(x.Start)
	}
	return TokenStart(n.GetToken())
}

// TokenStart is where a token starts (0, 0 when unknown).
func TokenStart(tk *token.Token) (line, col int) {
	if tk == nil || tk.Position == nil {
		return 0, 0
	}
	return tk.Position.Line, tk.Position.Column
}
