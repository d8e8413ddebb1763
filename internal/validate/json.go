package validate

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonError is why a body is not acceptable JSON. Its reason names the
// problem and never quotes the input, so it is safe to send to the client.
type jsonError struct {
	path   []string // location of the offending value (object keys and array indexes)
	reason string
	arrays []bool // arrays[i]: path[i] is an array index
}

// Number literals are bounded before anything converts them: the schema
// library turns numbers into big.Rat, whose cost grows with the exponent.
const (
	reasonSyntax = "is not valid JSON"
	maxNumberLen = 400 // bytes of one number literal
	maxExponent  = 400 // |exponent| as written
)

// scanDepth checks, in one pass over the bytes and before any parsing, that
// arrays and objects nest at most maxDepth deep. Brackets inside strings do
// not count. It is not a validator: malformed JSON is the parser's business.
func scanDepth(b []byte, maxDepth int) bool {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b); i++ {
				if b[i] == '\\' {
					i++
				} else if b[i] == '"' {
					break
				}
			}
		case '{', '[':
			depth++
			if depth > maxDepth {
				return false
			}
		case '}', ']':
			depth--
		}
	}
	return true
}

// parser is a strict JSON (RFC 8259, I-JSON RFC 7493) parser producing the
// values the schema library validates: map[string]any, []any, string,
// json.Number, bool and nil. Unlike encoding/json it refuses duplicate
// object keys, invalid UTF-8, unpaired surrogates and numbers too large to
// mean anything, and it bounds nesting.
type parser struct {
	b        []byte
	i        int
	depth    int
	maxDepth int
	path     []string
	arrays   []bool
	err      *jsonError
}

func parseJSON(b []byte, maxDepth int) (any, *jsonError) {
	p := parser{b: b, maxDepth: maxDepth}
	p.ws()
	v := p.value()
	if p.err != nil {
		return nil, p.err
	}
	p.ws()
	if p.i != len(p.b) {
		return nil, p.fail(reasonSyntax)
	}
	return v, nil
}

func (p *parser) fail(reason string) *jsonError {
	if p.err == nil {
		p.err = &jsonError{reason: reason}
		if reason != reasonSyntax { // a syntax error is the body's, wherever it is
			p.err.path, p.err.arrays = slices.Clone(p.path), slices.Clone(p.arrays)
		}
	}
	return p.err
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) value() any {
	if p.i >= len(p.b) {
		p.fail(reasonSyntax)
		return nil
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		s, ok := p.str()
		if !ok {
			return nil
		}
		return s
	case c == 't':
		return p.lit("true", true)
	case c == 'f':
		return p.lit("false", false)
	case c == 'n':
		return p.lit("null", nil)
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	}
	p.fail(reasonSyntax)
	return nil
}

func (p *parser) lit(word string, v any) any {
	if len(p.b)-p.i < len(word) || string(p.b[p.i:p.i+len(word)]) != word {
		p.fail(reasonSyntax)
		return nil
	}
	p.i += len(word)
	return v
}

// next moves past what follows a member or an element: true after a ','
// (another one follows), false after the closing byte or on a syntax error
// (p.err is set).
func (p *parser) next(closing byte) bool {
	p.ws()
	if p.i < len(p.b) {
		switch p.b[p.i] {
		case ',':
			p.i++
			return true
		case closing:
			p.i++
			p.depth--
			return false
		}
	}
	p.fail(reasonSyntax)
	return false
}

func (p *parser) enter() bool {
	p.depth++
	if p.depth > p.maxDepth {
		p.fail("is nested too deeply")
		return false
	}
	return true
}

func (p *parser) object() any {
	if !p.enter() {
		return nil
	}
	p.i++ // {
	m := make(map[string]any, 8)
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		p.depth--
		return m
	}
	for {
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			p.fail(reasonSyntax)
			return nil
		}
		k, ok := p.str()
		if !ok {
			return nil
		}
		p.path, p.arrays = append(p.path, k), append(p.arrays, false)
		if _, dup := m[k]; dup {
			p.fail("has a duplicate key")
			return nil
		}
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			p.fail(reasonSyntax)
			return nil
		}
		p.i++
		p.ws()
		v := p.value()
		if p.err != nil {
			return nil
		}
		m[k] = v
		p.path, p.arrays = p.path[:len(p.path)-1], p.arrays[:len(p.arrays)-1]
		if !p.next('}') {
			if p.err != nil {
				return nil
			}
			return m
		}
	}
}

func (p *parser) array() any {
	if !p.enter() {
		return nil
	}
	p.i++ // [
	a := make([]any, 0, 4)
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		p.depth--
		return a
	}
	for {
		p.ws()
		p.path, p.arrays = append(p.path, strconv.Itoa(len(a))), append(p.arrays, true)
		v := p.value()
		if p.err != nil {
			return nil
		}
		a = append(a, v)
		p.path, p.arrays = p.path[:len(p.path)-1], p.arrays[:len(p.arrays)-1]
		if !p.next(']') {
			if p.err != nil {
				return nil
			}
			return a
		}
	}
}

// str reads a string at p.i (the opening quote).
func (p *parser) str() (string, bool) {
	p.i++
	start := p.i
	// Fast path: no escapes, ASCII or valid UTF-8.
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c == '"' {
			s := p.b[start:p.i]
			p.i++
			return string(s), true
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			p.fail(reasonSyntax)
			return "", false
		}
		if c < utf8.RuneSelf {
			p.i++
			continue
		}
		r, n := utf8.DecodeRune(p.b[p.i:])
		if r == utf8.RuneError && n <= 1 {
			p.fail("is not valid UTF-8")
			return "", false
		}
		p.i += n
	}
	buf := make([]byte, 0, p.i-start+16)
	buf = append(buf, p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return string(buf), true
		case c < 0x20:
			p.fail(reasonSyntax)
			return "", false
		case c == '\\':
			if p.i+1 >= len(p.b) {
				p.fail(reasonSyntax)
				return "", false
			}
			e := p.b[p.i+1]
			p.i += 2
			switch e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := p.hex4()
				if !ok {
					return "", false
				}
				if utf16.IsSurrogate(r) {
					if r >= 0xDC00 || p.i+1 >= len(p.b) || p.b[p.i] != '\\' || p.b[p.i+1] != 'u' {
						p.fail("is not valid UTF-8")
						return "", false
					}
					p.i += 2
					r2, ok := p.hex4()
					if !ok {
						return "", false
					}
					r = utf16.DecodeRune(r, r2)
					if r == utf8.RuneError {
						p.fail("is not valid UTF-8")
						return "", false
					}
				}
				buf = utf8.AppendRune(buf, r)
			default:
				p.fail(reasonSyntax)
				return "", false
			}
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			p.i++
		default:
			r, n := utf8.DecodeRune(p.b[p.i:])
			if r == utf8.RuneError && n <= 1 {
				p.fail("is not valid UTF-8")
				return "", false
			}
			buf = append(buf, p.b[p.i:p.i+n]...)
			p.i += n
		}
	}
	p.fail(reasonSyntax)
	return "", false
}

func (p *parser) hex4() (rune, bool) {
	if len(p.b)-p.i < 4 {
		p.fail(reasonSyntax)
		return 0, false
	}
	var r rune
	for _, c := range p.b[p.i : p.i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			p.fail(reasonSyntax)
			return 0, false
		}
	}
	p.i += 4
	return r, true
}

// number reads a number literal by the RFC 8259 grammar and keeps its text
// (json.Number), so no precision is lost; literals whose magnitude a
// float64 cannot hold, or with absurd exponents, are refused.
func (p *parser) number() any {
	n, ok := scanNumber(p.b[p.i:])
	if !ok {
		p.fail(reasonSyntax)
		return nil
	}
	lit := p.b[p.i : p.i+n]
	p.i += n
	if reason := checkNumber(lit); reason != "" {
		p.fail(reason)
		return nil
	}
	return json.Number(lit)
}

// scanNumber returns the length of the JSON number at the start of b.
func scanNumber(b []byte) (int, bool) {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0, false
		}
	}
	return i, true
}

// checkNumber bounds a syntactically valid number literal: "" when fine,
// else a reason safe for the client.
func checkNumber(lit []byte) string {
	if len(lit) > maxNumberLen {
		return "is a number out of range"
	}
	for i, c := range lit {
		if c == 'e' || c == 'E' {
			exp := lit[i+1:]
			if len(exp) > 0 && (exp[0] == '+' || exp[0] == '-') {
				exp = exp[1:]
			}
			for len(exp) > 1 && exp[0] == '0' {
				exp = exp[1:]
			}
			if len(exp) > 3 {
				return "is a number out of range"
			}
			if e, _ := strconv.Atoi(string(exp)); e > maxExponent {
				return "is a number out of range"
			}
			break
		}
	}
	if f, err := strconv.ParseFloat(string(lit), 64); err != nil && math.IsInf(f, 0) {
		return "is a number out of range"
	}
	return ""
}
