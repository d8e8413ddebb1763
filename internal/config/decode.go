package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"github.com/breakwater/breakwater/internal/secret"
)

// aliasAllowance is how many values aliases may add to a document beyond
// the nodes it holds: enough for any sensible reuse, far too few for an
// alias bomb ("billion laughs").
const aliasAllowance = 100_000

// extensionPrefix starts top-level keys that are ignored, so that they can
// hold anchors: "x-upstream: &up {...}".
const extensionPrefix = "x-"

// maxMergeDepth bounds merge keys (<<) that merge mappings that merge.
const maxMergeDepth = 8

// decoder fills a Config from the YAML AST, strictly: every key must name a
// field, every value must fit its field, and every problem is collected
// with its position.
type decoder struct {
	dir     string
	lookup  func(string) (string, bool)
	errs    *collector
	pos     map[string]Position
	failed  map[string]bool // paths whose value could not be decoded
	anchors map[string]*ast.AnchorNode
	budget  int // values left to decode; aliases spend it too
	spent   bool
	fields  map[reflect.Type]*structFields
}

// decodeDocument parses data and decodes it into cfg. fatal is set when the
// document could not be parsed at all.
func decodeDocument(cfg *Config, data []byte, lookup func(string) (string, bool), errs *collector) (failed map[string]bool, fatal bool) {
	if pos, msg, ok := checkText(data); !ok {
		errs.add(pos, "", msg)
		return nil, true
	}
	tokens := lexer.Tokenize(strings.TrimPrefix(string(data), "\ufeff"))
	if tk := tokens.InvalidToken(); tk != nil {
		errs.add(tokenPos(tk), "", "YAML syntax error: "+tk.Error)
		return nil, true
	}
	if pos, msg, ok := checkTokens(tokens); !ok {
		errs.add(pos, "", msg)
		return nil, true
	}
	file, err := parse(tokens)
	if err != nil {
		pos, msg := syntaxError(err)
		errs.add(pos, "", "YAML syntax error: "+msg)
		return nil, true
	}
	var body ast.Node
	for _, doc := range file.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		if body != nil {
			errs.add(nodePos(doc.Body), "", `a config holds one YAML document; remove the second one (after "---")`)
			break
		}
		body = doc.Body
	}
	d := &decoder{
		dir:     cfg.Dir,
		lookup:  lookup,
		errs:    errs,
		pos:     map[string]Position{},
		failed:  map[string]bool{},
		anchors: map[string]*ast.AnchorNode{},
		fields:  map[reflect.Type]*structFields{},
	}
	cfg.Positions = d.pos
	if body == nil {
		d.pos[""] = Position{Line: 1, Col: 1}
		return d.failed, false
	}
	d.budget = d.collectAnchors(body, 0) + aliasAllowance
	d.decodeValue(body, reflect.ValueOf(cfg).Elem(), "")
	return d.failed, false
}

// parse runs the YAML parser; a panic in it is reported, never propagated.
func parse(tokens token.Tokens) (f *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the YAML parser failed: %v", r)
		}
	}()
	return parser.Parse(tokens, 0, parser.AllowDuplicateMapKey())
}

// syntaxError extracts the position and message of a parser error.
func syntaxError(err error) (Position, string) {
	var tokErr interface {
		GetToken() *token.Token
		GetMessage() string
	}
	if errors.As(err, &tokErr) {
		return tokenPos(tokErr.GetToken()), tokErr.GetMessage()
	}
	return Position{Line: 1, Col: 1}, err.Error()
}

// fail records a problem with the value at path.
func (d *decoder) fail(pos Position, path, format string, args ...any) {
	d.failed[path] = true
	d.errs.add(pos, path, fmt.Sprintf(format, args...))
}

// spend takes one value from the budget and reports whether any was left.
func (d *decoder) spend(n ast.Node, path string) bool {
	if d.budget > 0 {
		d.budget--
		return true
	}
	if !d.spent {
		d.spent = true
		pos, ok := d.pos[path]
		if !ok {
			pos = nodePos(n)
		}
		d.fail(pos, path, "aliases expand this document to too many values; use fewer aliases")
	}
	return false
}

// decodeValue decodes n into v, whose field path is path.
func (d *decoder) decodeValue(n ast.Node, v reflect.Value, path string) {
	if !d.spend(n, path) {
		return
	}
	d.pos[path] = nodePos(n)
	if n, ok := d.resolve(n, path); ok {
		d.decodeResolved(n, v, path)
	}
}

// decodeResolved decodes a node that is neither anchor, alias nor tag.
func (d *decoder) decodeResolved(n ast.Node, v reflect.Value, path string) {
	if d.decodeSpecial(n, v, path) {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			v.SetZero()
			return
		}
		elem := reflect.New(v.Type().Elem())
		d.decodeResolved(n, elem.Elem(), path)
		v.Set(elem)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.String:
		if s, ok := d.text(n, path); ok {
			v.SetString(s)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		s, ok := d.text(n, path)
		if !ok {
			return
		}
		i, err := strconv.ParseInt(s, 10, v.Type().Bits())
		switch {
		case errors.Is(err, strconv.ErrRange):
			d.fail(nodePos(n), path, "%s is out of range", truncate(s))
		case err != nil:
			d.fail(nodePos(n), path, "%q is not a whole number", truncate(s))
		default:
			v.SetInt(i)
		}
	case reflect.Float64:
		s, ok := d.text(n, path)
		if !ok {
			return
		}
		if f, err := parseFloat(s); err != nil {
			d.fail(nodePos(n), path, "%s", err)
		} else {
			v.SetFloat(f)
		}
	case reflect.Bool:
		s, ok := d.text(n, path)
		if !ok {
			return
		}
		switch strings.ToLower(s) {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			d.fail(nodePos(n), path, "%q is not a boolean; write true or false", truncate(s))
		}
	default:
		d.fail(nodePos(n), path, "internal error: cannot decode into %s", v.Type())
	}
}

// decodeSpecial decodes the scalar types of this package and of package
// secret. It reports whether v is one of them.
func (d *decoder) decodeSpecial(n ast.Node, v reflect.Value, path string) bool {
	if !v.CanAddr() {
		return false
	}
	parse := func(f func(string) error) {
		if s, ok := d.text(n, path); ok {
			if err := f(s); err != nil {
				d.fail(nodePos(n), path, "%s", err)
			}
		}
	}
	switch p := v.Addr().Interface().(type) {
	case *Duration:
		parse(func(s string) (err error) { *p, err = ParseDuration(s); return })
	case *Size:
		parse(func(s string) (err error) { *p, err = ParseSize(s); return })
	case *Rate:
		parse(func(s string) (err error) { *p, err = ParseRate(s); return })
	case *Strings:
		if seq, ok := n.(*ast.SequenceNode); ok {
			d.decodeSlice(seq, v, path)
		} else if s, ok := d.text(n, path); ok {
			*p = Strings{s}
		}
	case *secret.Value:
		if s, ok := d.secretText(n, path); ok {
			*p = secret.New(s)
		}
	case *secret.Digest:
		if s, ok := d.secretText(n, path); ok {
			dg, err := secret.ParseDigest(s)
			if err != nil {
				d.fail(nodePos(n), path, "%s", err)
				return true
			}
			*p = dg
		}
	default:
		return false
	}
	return true
}

// rawText returns the text of a scalar node. ok is false for null, and for
// collections after reporting them.
func (d *decoder) rawText(n ast.Node, path string) (string, bool) {
	switch x := norm(n).(type) {
	case nil, *ast.NullNode:
		return "", false
	case *ast.StringNode:
		return x.Value, true
	case *ast.LiteralNode:
		if x.Value == nil {
			return "", true
		}
		return x.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return x.GetToken().Value, true
	}
	if k, v, ok := gluedPair(n); ok {
		d.fail(nodePos(n), path, `expected a single value, got a mapping: YAML reads "%s:%s" in a flow list or mapping as a key and a value; quote it: "%s:%s"`,
			truncate(k), truncate(v), truncate(k), truncate(v))
		return "", false
	}
	d.fail(nodePos(n), path, "expected a single value, got %s", kindName(n))
	return "", false
}

// gluedPair recognises a value such as orders:read written unquoted in a
// flow collection, which YAML parses as the mapping {orders: read}.
func gluedPair(n ast.Node) (key, value string, ok bool) {
	var mv *ast.MappingValueNode
	switch x := norm(n).(type) {
	case *ast.MappingValueNode:
		mv = x
	case *ast.MappingNode:
		if len(x.Values) == 1 {
			mv = x.Values[0]
		}
	}
	if mv == nil || norm(mv.Key) == nil || norm(mv.Value) == nil {
		return "", "", false
	}
	kt, vt := mv.Key.GetToken(), mv.Value.GetToken()
	if kt == nil || vt == nil || kt.Position == nil || vt.Position == nil {
		return "", "", false
	}
	glued := kt.Position.Line == vt.Position.Line && vt.Position.Column == kt.Position.Column+len(kt.Value)+1
	return kt.Value, vt.Value, glued
}

// text returns a scalar with ${NAME} substituted.
func (d *decoder) text(n ast.Node, path string) (string, bool) {
	s, ok := d.rawText(n, path)
	if !ok {
		return "", false
	}
	s, err := expandEnv(s, d.lookup)
	if err != nil {
		d.fail(nodePos(n), path, "%s", err)
		return "", false
	}
	return s, true
}

// secretText is text for secrets, which may also be read from "file:PATH".
func (d *decoder) secretText(n ast.Node, path string) (string, bool) {
	s, ok := d.rawText(n, path)
	if !ok {
		return "", false
	}
	file, fromFile := strings.CutPrefix(s, filePrefix)
	if fromFile {
		s = file
	}
	s, err := expandEnv(s, d.lookup)
	if err == nil && fromFile {
		s, err = readSecretFile(d.dir, s)
	}
	if err != nil {
		d.fail(nodePos(n), path, "%s", err)
		return "", false
	}
	return s, true
}

// decodeSlice decodes a sequence; null leaves the slice empty.
func (d *decoder) decodeSlice(n ast.Node, v reflect.Value, path string) {
	if isNull(n) {
		v.SetZero()
		return
	}
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		d.fail(nodePos(n), path, "expected a list, got %s", kindName(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(seq.Values), len(seq.Values))
	for i, item := range seq.Values {
		d.decodeValue(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(s)
}

// decodeStruct decodes a mapping into the fields named by yaml tags.
func (d *decoder) decodeStruct(n ast.Node, v reflect.Value, path string) {
	entries := d.entries(n, path)
	fields := d.fieldsOf(v.Type())
	for _, e := range entries {
		p := joinPath(path, e.key)
		i, ok := fields.index[e.key]
		if !ok && path == "" && strings.HasPrefix(e.key, extensionPrefix) {
			continue // a place for anchors, ignored
		}
		if !ok {
			d.fail(e.keyPos, p, "%s", unknownField(e.key, fields.names))
			continue
		}
		d.decodeValue(e.value, v.Field(i), p)
	}
}

// decodeMap decodes a mapping into a map with string keys.
func (d *decoder) decodeMap(n ast.Node, v reflect.Value, path string) {
	entries := d.entries(n, path)
	if entries == nil {
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMapWithSize(v.Type(), len(entries)))
	}
	for _, e := range entries {
		elem := reflect.New(v.Type().Elem()).Elem()
		p := joinPath(path, e.key)
		d.decodeValue(e.value, elem, p)
		d.pos[p] = e.keyPos // a map entry is known by its key
		v.SetMapIndex(reflect.ValueOf(e.key).Convert(v.Type().Key()), elem)
	}
}

// structFields are the decodable fields of a struct type.
type structFields struct {
	index map[string]int // yaml name → field index
	names []string       // in declaration order
}

func (d *decoder) fieldsOf(t reflect.Type) *structFields {
	if f, ok := d.fields[t]; ok {
		return f
	}
	f := &structFields{index: map[string]int{}}
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if !sf.IsExported() || name == "" || name == "-" {
			continue
		}
		f.index[name] = i
		f.names = append(f.names, name)
	}
	d.fields[t] = f
	return f
}

// joinPath appends a mapping key to a field path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
