package httpsig

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// This file is a parser and serializer for the parts of RFC 8941
// (Structured Field Values) that message signatures need: dictionaries whose
// members are items or inner lists, with parameters. It is stricter than
// RFC 8941 in one respect: a repeated dictionary key or parameter key is an
// error instead of "last one wins", because a signature header that says
// two things about one label is an attack, not a mistake worth tolerating.

// errSF is the one error of the parser: the reason that reaches the log
// never quotes client bytes.
var errSF = errors.New("invalid structured field")

type itemKind uint8

const (
	kindInteger itemKind = iota + 1
	kindDecimal          // i holds the value in thousandths
	kindString
	kindToken
	kindBytes
	kindBoolean
)

// bareItem is one RFC 8941 bare item.
type bareItem struct {
	kind itemKind
	i    int64  // integer, decimal (×1000), boolean (0 or 1)
	s    string // string, token
	b    []byte // byte sequence
}

type param struct {
	key string
	val bareItem
}

type item struct {
	bare   bareItem
	params []param
}

// member is one dictionary member: an item, or an inner list with its own
// parameters.
type member struct {
	key    string
	isList bool
	item   item   // when !isList
	list   []item // when isList
	params []param
}

func (m *member) param(key string) (bareItem, bool) {
	ps := m.item.params
	if m.isList {
		ps = m.params
	}
	return findParam(ps, key)
}

func findParam(ps []param, key string) (bareItem, bool) {
	for _, p := range ps {
		if p.key == key {
			return p.val, true
		}
	}
	return bareItem{}, false
}

type dictionary []member

func (d dictionary) get(key string) (*member, bool) {
	for i := range d {
		if d[i].key == key {
			return &d[i], true
		}
	}
	return nil, false
}

// sfParser walks the input string. Every loop advances or returns, and
// every collection it builds is bounded by the caller's limits, so an input
// of n bytes costs O(n) time and memory.
type sfParser struct {
	s string
	i int
}

func (p *sfParser) eof() bool { return p.i >= len(p.s) }

func (p *sfParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *sfParser) skipSP() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *sfParser) skipOWS() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// parseDictionary parses a whole field value as a dictionary of at most
// maxMembers members, each of at most maxList items and maxParams
// parameters.
func parseDictionary(s string, maxMembers int) (dictionary, error) {
	p := sfParser{s: s}
	p.skipSP()
	var d dictionary
	for !p.eof() {
		if len(d) == maxMembers {
			return nil, errSF
		}
		key, err := p.key()
		if err != nil {
			return nil, err
		}
		if _, dup := d.get(key); dup {
			return nil, errSF
		}
		m := member{key: key}
		if p.peek() == '=' {
			p.i++
			if p.peek() == '(' {
				m.isList = true
				if m.list, m.params, err = p.innerList(); err != nil {
					return nil, err
				}
			} else if m.item, err = p.item(); err != nil {
				return nil, err
			}
		} else {
			m.item.bare = bareItem{kind: kindBoolean, i: 1}
			if m.item.params, err = p.params(); err != nil {
				return nil, err
			}
		}
		d = append(d, m)
		p.skipOWS()
		if p.eof() {
			return d, nil
		}
		if p.s[p.i] != ',' {
			return nil, errSF
		}
		p.i++
		p.skipOWS()
		if p.eof() {
			return nil, errSF // trailing comma
		}
	}
	return d, nil
}

const (
	maxListItems = 64
	maxParams    = 16
)

func (p *sfParser) innerList() ([]item, []param, error) {
	p.i++ // '('
	var items []item
	for {
		p.skipSP()
		if p.eof() {
			return nil, nil, errSF
		}
		if p.s[p.i] == ')' {
			p.i++
			ps, err := p.params()
			return items, ps, err
		}
		if len(items) == maxListItems {
			return nil, nil, errSF
		}
		it, err := p.item()
		if err != nil {
			return nil, nil, err
		}
		items = append(items, it)
		if c := p.peek(); c != ' ' && c != ')' {
			return nil, nil, errSF
		}
	}
}

func (p *sfParser) item() (item, error) {
	b, err := p.bareItem()
	if err != nil {
		return item{}, err
	}
	ps, err := p.params()
	return item{bare: b, params: ps}, err
}

func (p *sfParser) params() ([]param, error) {
	var ps []param
	for p.peek() == ';' {
		p.i++
		p.skipSP()
		k, err := p.key()
		if err != nil {
			return nil, err
		}
		if _, dup := findParam(ps, k); dup || len(ps) == maxParams {
			return nil, errSF
		}
		v := bareItem{kind: kindBoolean, i: 1}
		if p.peek() == '=' {
			p.i++
			if v, err = p.bareItem(); err != nil {
				return nil, err
			}
		}
		ps = append(ps, param{key: k, val: v})
	}
	return ps, nil
}

func isLCAlpha(c byte) bool { return c >= 'a' && c <= 'z' }
func isDigit(c byte) bool   { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool   { return isLCAlpha(c) || c >= 'A' && c <= 'Z' }

// isTChar reports an RFC 9110 token character.
func isTChar(c byte) bool {
	if isAlpha(c) || isDigit(c) {
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

func (p *sfParser) key() (string, error) {
	start := p.i
	if c := p.peek(); !isLCAlpha(c) && c != '*' {
		return "", errSF
	}
	p.i++
	for !p.eof() {
		c := p.s[p.i]
		if !isLCAlpha(c) && !isDigit(c) && c != '_' && c != '-' && c != '.' && c != '*' {
			break
		}
		p.i++
	}
	return p.s[start:p.i], nil
}

func (p *sfParser) bareItem() (bareItem, error) {
	c := p.peek()
	switch {
	case c == '-' || isDigit(c):
		return p.number()
	case c == '"':
		return p.str()
	case c == ':':
		return p.bytes()
	case c == '?':
		if p.i+1 < len(p.s) && (p.s[p.i+1] == '0' || p.s[p.i+1] == '1') {
			v := int64(p.s[p.i+1] - '0')
			p.i += 2
			return bareItem{kind: kindBoolean, i: v}, nil
		}
		return bareItem{}, errSF
	case isAlpha(c) || c == '*':
		start := p.i
		p.i++
		for !p.eof() && (isTChar(p.s[p.i]) || p.s[p.i] == ':' || p.s[p.i] == '/') {
			p.i++
		}
		return bareItem{kind: kindToken, s: p.s[start:p.i]}, nil
	}
	return bareItem{}, errSF
}

func (p *sfParser) number() (bareItem, error) {
	neg := false
	if p.peek() == '-' {
		neg = true
		p.i++
	}
	if !isDigit(p.peek()) {
		return bareItem{}, errSF
	}
	var intPart, frac int64
	intDigits, fracDigits, dot := 0, 0, false
	for !p.eof() {
		c := p.s[p.i]
		switch {
		case isDigit(c) && !dot:
			intDigits++
			if intDigits > 15 {
				return bareItem{}, errSF
			}
			intPart = intPart*10 + int64(c-'0')
		case isDigit(c):
			fracDigits++
			if fracDigits > 3 {
				return bareItem{}, errSF
			}
			frac = frac*10 + int64(c-'0')
		case c == '.' && !dot:
			if intDigits > 12 {
				return bareItem{}, errSF
			}
			dot = true
		default:
			goto done
		}
		p.i++
	}
done:
	sign := int64(1)
	if neg {
		sign = -1
	}
	if !dot {
		return bareItem{kind: kindInteger, i: sign * intPart}, nil
	}
	if fracDigits == 0 {
		return bareItem{}, errSF
	}
	for range 3 - fracDigits {
		frac *= 10
	}
	return bareItem{kind: kindDecimal, i: sign * (intPart*1000 + frac)}, nil
}

func (p *sfParser) str() (bareItem, error) {
	p.i++ // opening quote
	start := p.i
	escaped := false
	for !p.eof() {
		c := p.s[p.i]
		switch {
		case c == '\\':
			escaped = true
			p.i++
			if p.eof() || (p.s[p.i] != '"' && p.s[p.i] != '\\') {
				return bareItem{}, errSF
			}
		case c == '"':
			raw := p.s[start:p.i]
			p.i++
			if !escaped {
				return bareItem{kind: kindString, s: raw}, nil
			}
			out := make([]byte, 0, len(raw))
			for j := 0; j < len(raw); j++ {
				if raw[j] == '\\' {
					j++
				}
				out = append(out, raw[j])
			}
			return bareItem{kind: kindString, s: string(out)}, nil
		case c < 0x20 || c > 0x7e:
			return bareItem{}, errSF
		}
		p.i++
	}
	return bareItem{}, errSF
}

func isBase64(c byte) bool {
	return isAlpha(c) || isDigit(c) || c == '+' || c == '/' || c == '='
}

func (p *sfParser) bytes() (bareItem, error) {
	p.i++ // ':'
	start := p.i
	for !p.eof() && isBase64(p.s[p.i]) {
		p.i++
	}
	if p.peek() != ':' {
		return bareItem{}, errSF
	}
	// RFC 8941 §4.2.7: parsers should accept missing padding and non-zero
	// pad bits; both decode to the same bytes.
	enc := p.s[start:p.i]
	trimmed := strings.TrimRight(enc, "=")
	if len(enc)-len(trimmed) > 2 {
		return bareItem{}, errSF
	}
	b, err := base64.RawStdEncoding.DecodeString(trimmed)
	if err != nil {
		return bareItem{}, errSF
	}
	p.i++
	return bareItem{kind: kindBytes, b: b}, nil
}

// Serialization (RFC 8941 §4.1). The parser only builds values the
// serializer can write, so these never fail.

func appendBareItem(dst []byte, b bareItem) []byte {
	switch b.kind {
	case kindInteger:
		return strconv.AppendInt(dst, b.i, 10)
	case kindDecimal:
		v := b.i
		if v < 0 {
			dst = append(dst, '-')
			v = -v
		}
		dst = strconv.AppendInt(dst, v/1000, 10)
		dst = append(dst, '.')
		frac := v % 1000
		switch {
		case frac%100 == 0:
			return strconv.AppendInt(dst, frac/100, 10)
		case frac%10 == 0:
			return append(dst, byte('0'+frac/100), byte('0'+frac/10%10))
		default:
			return append(dst, byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
		}
	case kindString:
		return appendString(dst, b.s)
	case kindToken:
		return append(dst, b.s...)
	case kindBytes:
		dst = append(dst, ':')
		dst = base64.StdEncoding.AppendEncode(dst, b.b)
		return append(dst, ':')
	case kindBoolean:
		if b.i == 1 {
			return append(dst, "?1"...)
		}
		return append(dst, "?0"...)
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '"')
}

func appendParams(dst []byte, ps []param) []byte {
	for _, p := range ps {
		dst = append(dst, ';')
		dst = append(dst, p.key...)
		if p.val.kind == kindBoolean && p.val.i == 1 {
			continue
		}
		dst = append(dst, '=')
		dst = appendBareItem(dst, p.val)
	}
	return dst
}

func appendItem(dst []byte, it item) []byte {
	return appendParams(appendBareItem(dst, it.bare), it.params)
}

func appendInnerList(dst []byte, items []item, ps []param) []byte {
	dst = append(dst, '(')
	for i, it := range items {
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = appendItem(dst, it)
	}
	dst = append(dst, ')')
	return appendParams(dst, ps)
}

// appendMemberValue serializes a member's value (what follows "key=").
func appendMemberValue(dst []byte, m *member) []byte {
	if m.isList {
		return appendInnerList(dst, m.list, m.params)
	}
	return appendItem(dst, m.item)
}
