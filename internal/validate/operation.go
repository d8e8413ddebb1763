package validate

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
)

// Operation is one operation of the spec, with its compiled schemas.
type Operation struct {
	Method       string // upper case, e.g. "GET"
	PathTemplate string // as in the spec, e.g. "/orders/{id}"
	OperationID  string
	Deprecated   bool
	Key          string // Method + " " + PathTemplate: the operation's name in the inventory

	segs     []segment
	bases    []string // operation-level servers; nil: the path's or the document's
	params   []param
	body     *requestBody // nil: the operation declares no request body
	statuses map[int]*response
	ranges   [6]*response // "1XX".."5XX"
	dflt     *response
}

type paramIn uint8

const (
	inPath paramIn = iota
	inQuery
	inHeader
)

var inNames = [...]string{inPath: "path", inQuery: "query", inHeader: "header"}

// param is a compiled path, query or header parameter.
type param struct {
	name     string
	in       paramIn
	required bool
	schema   *checked
	types    []string // the schema's types, to read the text as a JSON value
	array    bool     // the schema is an array: values come as a list
	items    []string // item types of an array
	explode  bool
	sep      string // non-exploded array separator: "," (form, simple), " " (spaceDelimited), "|" (pipeDelimited)
}

type requestBody struct {
	required bool
	media    []media
}

// media is one declared media type: "application/json", "application/*", "*/*".
type media struct {
	typ    string
	json   bool
	schema *checked    // request bodies: nil means no schema to check
	filter *filterNode // responses: nil means nothing to filter
}

type response struct {
	media []media
}

func (c *compiler) operation(method, tmpl string, segs []segment, item *v3.PathItem, op *v3.Operation) (*Operation, error) {
	o := &Operation{Method: method, PathTemplate: tmpl, Key: method + " " + tmpl, OperationID: op.OperationId, segs: segs, statuses: map[int]*response{}}
	if op.Deprecated != nil {
		o.Deprecated = *op.Deprecated
	}
	// Operation parameters override path-item ones with the same name and location.
	var all []*v3.Parameter
	all = append(all, op.Parameters...)
	for _, p := range item.Parameters {
		if !slices.ContainsFunc(op.Parameters, func(q *v3.Parameter) bool { return q.Name == p.Name && q.In == p.In }) {
			all = append(all, p)
		}
	}
	for _, p := range all {
		if p == nil {
			continue
		}
		cp, ok, err := c.param(p)
		if err != nil {
			return nil, fmt.Errorf("parameter %q: %w", p.Name, err)
		}
		if ok {
			o.params = append(o.params, cp)
		}
	}
	if rb := op.RequestBody; rb != nil {
		o.body = &requestBody{required: rb.Required != nil && *rb.Required}
		if rb.Content != nil {
			for mt, m := range rb.Content.FromOldest() {
				typ := normMedia(mt)
				md := media{typ: typ, json: isJSON(typ)}
				if md.json && m != nil && m.Schema != nil {
					s, err := c.schema(m.Schema, schema_validation.SchemaValidationPurposeRequestBody)
					if err != nil {
						return nil, fmt.Errorf("requestBody %s: %w", mt, err)
					}
					md.schema = newChecked(s)
				}
				o.body.media = append(o.body.media, md)
			}
		}
	}
	if op.Responses != nil {
		if op.Responses.Codes != nil {
			for code, r := range op.Responses.Codes.FromOldest() {
				cr, err := c.response(r)
				if err != nil {
					return nil, fmt.Errorf("response %s: %w", code, err)
				}
				switch {
				case len(code) == 3 && (code[1] == 'X' || code[1] == 'x') && (code[2] == 'X' || code[2] == 'x') && code[0] >= '1' && code[0] <= '5':
					o.ranges[code[0]-'0'] = cr
				default:
					n, err := strconv.Atoi(code)
					if err != nil || n < 100 || n > 599 {
						return nil, fmt.Errorf("response code %q is not a status", code)
					}
					o.statuses[n] = cr
				}
			}
		}
		if op.Responses.Default != nil {
			cr, err := c.response(op.Responses.Default)
			if err != nil {
				return nil, fmt.Errorf("response default: %w", err)
			}
			o.dflt = cr
		}
	}
	return o, nil
}

func (c *compiler) response(r *v3.Response) (*response, error) {
	out := &response{}
	if r == nil || r.Content == nil {
		return out, nil
	}
	for mt, m := range r.Content.FromOldest() {
		typ := normMedia(mt)
		md := media{typ: typ, json: isJSON(typ)}
		if md.json && m != nil && m.Schema != nil {
			f, err := c.filter(m.Schema)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", mt, err)
			}
			md.filter = f
		}
		out.media = append(out.media, md)
	}
	return out, nil
}

func (c *compiler) param(p *v3.Parameter) (param, bool, error) {
	cp := param{name: p.Name, required: p.Required != nil && *p.Required}
	style := p.Style
	switch p.In {
	case "path":
		cp.in, cp.required = inPath, true
		if style == "" {
			style = "simple"
		}
	case "query":
		cp.in = inQuery
		if style == "" {
			style = "form"
		}
	case "header":
		cp.in = inHeader
		// OpenAPI: Accept, Content-Type and Authorization header parameters are ignored.
		switch http.CanonicalHeaderKey(p.Name) {
		case "Accept", "Content-Type", "Authorization":
			return cp, false, nil
		}
		if style == "" {
			style = "simple"
		}
	default: // cookie parameters are not validated
		return cp, false, nil
	}
	cp.explode = style == "form"
	if p.Explode != nil {
		cp.explode = *p.Explode
	}
	switch style {
	case "spaceDelimited":
		cp.sep = " "
	case "pipeDelimited":
		cp.sep = "|"
	default:
		cp.sep = ","
	}
	if p.Schema == nil {
		return cp, true, nil // content-typed parameters: presence only
	}
	sch, err := p.Schema.BuildSchema()
	if err != nil {
		return cp, false, err
	}
	if sch == nil {
		return cp, false, errors.New("unresolved schema")
	}
	cp.types = schemaTypes(sch)
	if slices.Contains(cp.types, "array") {
		cp.array = true
		if sch.Items != nil && sch.Items.IsA() && sch.Items.A != nil {
			if is, err := sch.Items.A.BuildSchema(); err == nil && is != nil {
				cp.items = schemaTypes(is)
			}
		}
	}
	if slices.Contains(cp.types, "object") {
		// Object-valued parameters (deepObject and kin) are not decoded:
		// checked for presence only.
		return cp, true, nil
	}
	ls, err := c.schema(p.Schema, schema_validation.SchemaValidationPurposeRequestBody)
	if err != nil {
		return cp, false, err
	}
	cp.schema = newChecked(ls)
	return cp, true, nil
}

// schemaTypes returns a schema's declared types, following a lone allOf /
// $ref chain far enough to find them.
func schemaTypes(s *base.Schema) []string {
	for depth := 0; s != nil && depth < 8; depth++ {
		if len(s.Type) > 0 {
			t := slices.Clone(s.Type)
			if s.Nullable != nil && *s.Nullable {
				t = append(t, "null")
			}
			return t
		}
		if len(s.AllOf) != 1 || s.AllOf[0] == nil {
			return nil
		}
		s = s.AllOf[0].Schema()
	}
	return nil
}

// normMedia lower-cases a media type and drops its parameters.
func normMedia(mt string) string {
	if t, _, err := mime.ParseMediaType(mt); err == nil {
		return t
	}
	mt, _, _ = strings.Cut(mt, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

// isJSON tells whether a media type carries JSON: application/json,
// application/*+json, and wildcards that include them.
func isJSON(t string) bool {
	return t == "application/json" || strings.HasSuffix(t, "+json") || t == "*/*" || t == "application/*"
}

// matchMedia finds the declared media type for a request's: exact first,
// then "type/*", then "*/*".
func matchMedia(ms []media, typ string) *media {
	for i := range ms {
		if ms[i].typ == typ {
			return &ms[i]
		}
	}
	major, _, _ := strings.Cut(typ, "/")
	for i := range ms {
		if ms[i].typ == major+"/*" {
			return &ms[i]
		}
	}
	for i := range ms {
		if ms[i].typ == "*/*" {
			return &ms[i]
		}
	}
	return nil
}

// segment is one path template segment: a literal, or prefix{param}suffix.
type segment struct {
	lit            string
	param          string
	prefix, suffix string
}

func parseTemplate(t string) ([]segment, error) {
	if !strings.HasPrefix(t, "/") {
		return nil, errors.New("path must start with /")
	}
	t = strings.TrimSuffix(t[1:], "/")
	if t == "" {
		return nil, nil
	}
	parts := strings.Split(t, "/")
	segs := make([]segment, len(parts))
	for i, p := range parts {
		open := strings.IndexByte(p, '{')
		if open < 0 {
			if strings.ContainsAny(p, "}") {
				return nil, errors.New("unbalanced braces")
			}
			segs[i] = segment{lit: p}
			continue
		}
		end := strings.IndexByte(p[open:], '}')
		if end < 0 {
			return nil, errors.New("unbalanced braces")
		}
		end += open
		if strings.ContainsAny(p[end+1:], "{}") || strings.ContainsAny(p[:open], "}") {
			return nil, errors.New("one parameter per segment is supported")
		}
		name := p[open+1 : end]
		if name == "" {
			return nil, errors.New("empty parameter name")
		}
		segs[i] = segment{param: name, prefix: p[:open], suffix: p[end+1:]}
	}
	return segs, nil
}

// rankOf orders templates so that literal segments win over partial ones
// and partial over bare parameters, segment by segment (OpenAPI: concrete
// paths match before templated ones).
func rankOf(segs []segment) string {
	b := make([]byte, len(segs))
	for i, s := range segs {
		switch {
		case s.param == "":
			b[i] = '0'
		case s.prefix != "" || s.suffix != "":
			b[i] = '1'
		default:
			b[i] = '2'
		}
	}
	return string(b)
}

// match matches path segments against the template, calling set for each
// parameter (set may be nil).
func matchSegs(segs []segment, parts []string, set func(name, value string)) bool {
	if len(segs) != len(parts) {
		return false
	}
	for i, s := range segs {
		p := parts[i]
		if s.param == "" {
			if p != s.lit {
				return false
			}
			continue
		}
		if len(p) <= len(s.prefix)+len(s.suffix) || !strings.HasPrefix(p, s.prefix) || !strings.HasSuffix(p, s.suffix) {
			return false
		}
		if set != nil {
			set(s.param, p[len(s.prefix):len(p)-len(s.suffix)])
		}
	}
	return true
}

// splitPath splits "/a/b/" into ["a" "b"] (a trailing slash is ignored).
func splitPath(p string) []string {
	p = strings.TrimPrefix(p, "/")
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// stripBase removes a server base path from p; ok is false when p is not under it.
func stripBase(p, base string) (string, bool) {
	if base == "" {
		return p, true
	}
	if !strings.HasPrefix(p, base) {
		return "", false
	}
	rest := p[len(base):]
	if rest == "" {
		return "/", true
	}
	if rest[0] != '/' {
		return "", false
	}
	return rest, true
}

// Operation finds the spec operation for a request path (the gateway's
// canonical, decoded path) and method, honouring the spec's servers[] base
// paths (document, path-item and operation level). HEAD falls back to the
// GET operation. It returns nil when the spec has no such operation (a
// "shadow" request: the caller decides).
func (v *Validator) Operation(method, path string) *Operation {
	o, _ := v.s.find(method, path)
	return o
}

// find returns the operation and the request path relative to its server base.
func (s *Spec) find(method, p string) (*Operation, string) {
	for _, base := range s.allBases() {
		rel, ok := stripBase(p, base)
		if !ok {
			continue
		}
		parts := splitPath(rel)
		for _, pe := range s.byCount[len(parts)] {
			if !matchSegs(pe.segs, parts, nil) {
				continue
			}
			o := pe.ops[method]
			if o == nil && method == http.MethodHead {
				o = pe.ops[http.MethodGet]
			}
			if o == nil {
				continue
			}
			bases := o.bases
			if bases == nil {
				bases = pe.bases
			}
			if bases == nil {
				bases = s.bases
			}
			if slices.Contains(bases, base) {
				return o, rel
			}
		}
	}
	return nil, ""
}

// allBases is every server base the document uses, longest first.
func (s *Spec) allBases() []string { return s.basesAll }
