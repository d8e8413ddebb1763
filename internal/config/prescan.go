package config

import (
	"fmt"
	"github.com/breakwater/breakwater/internal/yamlnode"
	"unicode/utf8"

	"github.com/goccy/go-yaml/token"
)

// Bounds on a document, checked before the YAML parser sees it: the parser
// recurses once per nesting level and once per key of a block mapping, so
// deep or very wide documents would cost it minutes or the stack.
const (
	maxDocument = 4 << 20 // bytes
	maxDepth    = 32      // nesting of block and flow collections
	maxKeys     = 1000    // keys of one block mapping
	maxTokens   = 1 << 20 // a dense 4 MiB config has about 800,000
)

// checkText rejects documents that are too large or are not text: invalid
// UTF-8, NUL and other control characters YAML does not allow.
func checkText(data []byte) (Position, string, bool) {
	if len(data) > maxDocument {
		return Position{1, 1}, fmt.Sprintf("the config is %d bytes, more than the limit of 4 MiB", len(data)), false
	}
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			return Position{line, col}, "invalid UTF-8; a config must be UTF-8 text", false
		case r == 0:
			return Position{line, col}, "NUL character; a config must be text", false
		case r < 0x20 && r != '\t' && r != '\n' && r != '\r', r == 0x7f:
			return Position{line, col}, fmt.Sprintf("control character %U is not allowed in YAML", r), false
		}
		i += n
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return Position{}, "", true
}

// level is one open block collection: the column of its entries and how
// many keys it has.
type level struct {
	col, keys int
}

// checkTokens bounds nesting depth and the width of block mappings using
// the token stream, which the lexer builds in linear time.
func checkTokens(tokens token.Tokens) (Position, string, bool) {
	if len(tokens) > maxTokens {
		return tokenPos(tokens[maxTokens]), fmt.Sprintf("the config has more than %d YAML tokens", maxTokens), false
	}
	flow := 0
	var stack []level
	for i, tk := range tokens {
		pos := tokenPos(tk)
		switch tk.Type {
		case token.SequenceStartType, token.MappingStartType:
			flow++
			if flow+len(stack) > maxDepth {
				return pos, fmt.Sprintf("collections are nested more than %d deep", maxDepth), false
			}
			continue
		case token.SequenceEndType, token.MappingEndType:
			if flow > 0 {
				flow--
			}
			continue
		case token.DocumentHeaderType:
			stack = stack[:0]
			continue
		}
		if flow > 0 {
			continue
		}
		isKey := tk.Type != token.MappingValueType && tk.Type != token.CommentType && nextIsValueIndicator(tokens, i)
		if tk.Type != token.SequenceEntryType && tk.Type != token.MappingKeyType && !isKey {
			continue
		}
		col := pos.Col
		for len(stack) > 0 && stack[len(stack)-1].col > col {
			stack = stack[:len(stack)-1]
		}
		if len(stack) == 0 || stack[len(stack)-1].col < col {
			stack = append(stack, level{col: col})
			if flow+len(stack) > maxDepth {
				return pos, fmt.Sprintf("collections are nested more than %d deep", maxDepth), false
			}
		}
		if isKey {
			top := &stack[len(stack)-1]
			top.keys++
			if top.keys > maxKeys {
				return pos, fmt.Sprintf("a mapping has more than %d keys", maxKeys), false
			}
		}
	}
	return Position{}, "", true
}

// nextIsValueIndicator reports whether the token after i, comments aside,
// is the ":" of a block mapping.
func nextIsValueIndicator(tokens token.Tokens, i int) bool {
	for _, tk := range tokens[i+1:] {
		if tk.Type == token.CommentType {
			continue
		}
		return tk.Type == token.MappingValueType
	}
	return false
}

func tokenPos(tk *token.Token) Position {
	line, col := yamlnode.TokenStart(tk)
	return Position{Line: line, Col: col}
}
