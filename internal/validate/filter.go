package validate

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strconv"

	"github.com/pb33f/libopenapi/datamodel/high/base"
)

// Errors FilterResponse returns; the proxy turns each into its masked 502.
var (
	// ErrUndeclaredStatus: the operation declares neither the response's
	// status, nor its range (2XX), nor a default.
	ErrUndeclaredStatus = errors.New("validate: response status not declared by the operation")
	// ErrResponseTooLarge: a response to filter is larger than MaxResponseBytes.
	ErrResponseTooLarge = errors.New("validate: response too large to filter")
	// ErrUnfilterable: a JSON response to filter is not valid JSON, nests
	// deeper than MaxDepth, or has a content encoding other than gzip.
	ErrUnfilterable = errors.New("validate: response cannot be filtered")
)

// filterNode is the compiled shape of one response schema: which object
// properties it declares and how arrays' items look. Composition branches
// (allOf, oneOf, anyOf) are kept as branches; a property declared in any
// branch is kept.
type filterNode struct {
	object, array bool // the schema admits objects / arrays (no type: both)
	props         map[string]*filterNode
	patterns      []patternNode
	addl          addlKind
	addlNode      *filterNode
	items         *filterNode // nil: items not described (kept as they are)
	prefix        []*filterNode
	branches      []*filterNode
	flat          []*filterNode // this node and all branches, transitively (computed after compile)
	raw           bool          // keep the value as it is
}

type patternNode struct {
	re   *regexp.Regexp
	node *filterNode
}

type addlKind uint8

const (
	addlUnset addlKind = iota // no additionalProperties: undeclared properties are removed
	addlTrue
	addlFalse
	addlSchema
)

// rawNode keeps a value untouched.
var rawNode = &filterNode{raw: true}

const maxSchemaDepth = 256

// filter compiles a response schema; recursive schemas become cyclic nodes.
func (c *compiler) filter(sp *base.SchemaProxy) (*filterNode, error) {
	var all []*filterNode
	n, err := c.filterNode(sp, 0, &all)
	if err != nil {
		return nil, err
	}
	for _, x := range all {
		x.flat = flatten(x)
	}
	return n, nil
}

func flatten(n *filterNode) []*filterNode {
	seen := map[*filterNode]bool{}
	var out []*filterNode
	var walk func(*filterNode)
	walk = func(x *filterNode) {
		if x == nil || seen[x] {
			return
		}
		seen[x] = true
		out = append(out, x)
		for _, b := range x.branches {
			walk(b)
		}
	}
	walk(n)
	return out
}

func (c *compiler) filterNode(sp *base.SchemaProxy, depth int, all *[]*filterNode) (*filterNode, error) {
	if sp == nil {
		return rawNode, nil
	}
	if depth > maxSchemaDepth {
		return nil, errors.New("response schema nests too deeply")
	}
	s, err := sp.BuildSchema()
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, errors.New("unresolved response schema")
	}
	key := s
	if low := s.GoLow(); low != nil && low.RootNode != nil {
		if n, ok := c.nodes[low.RootNode]; ok {
			return n, nil
		}
	}
	if n, ok := c.filters[key]; ok {
		return n, nil
	}
	n := &filterNode{}
	c.filters[key] = n
	if low := s.GoLow(); low != nil && low.RootNode != nil {
		c.nodes[low.RootNode] = n
	}
	*all = append(*all, n)
	if s.BooleanSchema != nil {
		n.raw = *s.BooleanSchema
		return n, nil
	}
	n.object = len(s.Type) == 0 || slices.Contains(s.Type, "object")
	n.array = len(s.Type) == 0 || slices.Contains(s.Type, "array")
	if s.Properties != nil {
		n.props = map[string]*filterNode{}
		for name, p := range s.Properties.FromOldest() {
			if n.props[name], err = c.filterNode(p, depth+1, all); err != nil {
				return nil, err
			}
		}
	}
	if s.PatternProperties != nil {
		for pat, p := range s.PatternProperties.FromOldest() {
			re, err := regexp.Compile(pat)
			if err != nil {
				return nil, fmt.Errorf("patternProperties %q: %w", pat, err)
			}
			pn, err := c.filterNode(p, depth+1, all)
			if err != nil {
				return nil, err
			}
			n.patterns = append(n.patterns, patternNode{re, pn})
		}
	}
	if ap := s.AdditionalProperties; ap != nil {
		switch {
		case ap.IsB() && ap.B:
			n.addl = addlTrue
		case ap.IsB():
			n.addl = addlFalse
		case ap.A != nil:
			n.addl = addlSchema
			if n.addlNode, err = c.filterNode(ap.A, depth+1, all); err != nil {
				return nil, err
			}
		}
	}
	if it := s.Items; it != nil && it.IsA() && it.A != nil {
		if n.items, err = c.filterNode(it.A, depth+1, all); err != nil {
			return nil, err
		}
	}
	for _, p := range s.PrefixItems {
		pn, err := c.filterNode(p, depth+1, all)
		if err != nil {
			return nil, err
		}
		n.prefix = append(n.prefix, pn)
	}
	for _, group := range [][]*base.SchemaProxy{s.AllOf, s.OneOf, s.AnyOf} {
		for _, b := range group {
			bn, err := c.filterNode(b, depth+1, all)
			if err != nil {
				return nil, err
			}
			n.branches = append(n.branches, bn)
		}
	}
	return n, nil
}

// openObject tells whether n, on its own, keeps every property of an
// object: it says nothing about properties and has no branches that might.
func (n *filterNode) openObject() bool {
	if n.addl == addlTrue {
		return true
	}
	return n.props == nil && n.patterns == nil && n.addl == addlUnset && len(n.branches) == 0
}

// propNodes returns the nodes that describe property key of an object
// under set (nil: the property is removed).
func propNodes(set []*filterNode, key string, buf []*filterNode) []*filterNode {
	out := buf[:0]
	for _, top := range set {
		if top.raw {
			return append(out[:0], rawNode)
		}
		for _, n := range top.flat {
			if n.raw {
				return append(out[:0], rawNode)
			}
			if !n.object {
				continue
			}
			if p, ok := n.props[key]; ok {
				out = append(out, p)
				continue
			}
			matched := false
			for _, pn := range n.patterns {
				if pn.re.MatchString(key) {
					out = append(out, pn.node)
					matched = true
				}
			}
			if matched {
				continue
			}
			switch {
			case n.addl == addlSchema:
				out = append(out, n.addlNode)
			case n.openObject():
				return append(out[:0], rawNode)
			}
		}
	}
	return out
}

// itemNodes returns the nodes that describe item i of an array under set.
func itemNodes(set []*filterNode, i int, buf []*filterNode) []*filterNode {
	out := buf[:0]
	for _, top := range set {
		if top.raw {
			return append(out[:0], rawNode)
		}
		for _, n := range top.flat {
			if n.raw {
				return append(out[:0], rawNode)
			}
			if !n.array {
				continue
			}
			switch {
			case i < len(n.prefix):
				out = append(out, n.prefix[i])
			case n.items != nil:
				out = append(out, n.items)
			case len(n.branches) == 0:
				return append(out[:0], rawNode)
			}
		}
	}
	return out
}

// FilterResponse is meant for httputil.ReverseProxy.ModifyResponse. A
// status the operation does not declare (nor its range, nor default; 304
// is allowed) gives ErrUndeclaredStatus, which the proxy must turn into its
// masked 502. A JSON body with a response schema is buffered (at most
// MaxResponseBytes, else ErrResponseTooLarge), every property the schema
// does not declare is removed, and Content-Length is fixed; a gzip body is
// decoded and sent identity-encoded. Other responses pass through streamed,
// untouched.
func (v *Validator) FilterResponse(op *Operation, resp *http.Response) error {
	if op == nil {
		return nil
	}
	r := op.response(resp.StatusCode)
	if r == nil {
		if resp.StatusCode == http.StatusNotModified {
			return nil
		}
		return ErrUndeclaredStatus
	}
	if resp.Body == nil || resp.Body == http.NoBody || len(r.media) == 0 {
		return nil
	}
	typ, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || !isJSON(typ) || typ == "*/*" || typ == "application/*" {
		return nil // not JSON: streamed as it is
	}
	m := matchMedia(r.media, typ)
	if m == nil || m.filter == nil {
		// A JSON body under a media type the response does not name is
		// filtered by the response's first JSON schema, not passed whole.
		m = nil
		for i := range r.media {
			if r.media[i].filter != nil {
				m = &r.media[i]
				break
			}
		}
		if m == nil {
			return nil
		}
	}
	body := io.Reader(resp.Body)
	gz := false
	switch enc := resp.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			return fmt.Errorf("%w: gzip: %w", ErrUnfilterable, err)
		}
		defer zr.Close()
		body, gz = zr, true
	default:
		return fmt.Errorf("%w: content encoding %q", ErrUnfilterable, enc)
	}
	if resp.ContentLength > v.o.MaxResponseBytes && !gz {
		return ErrResponseTooLarge
	}
	var buf bytes.Buffer
	_, err = buf.ReadFrom(io.LimitReader(body, v.o.MaxResponseBytes+1))
	_ = resp.Body.Close()
	if err != nil {
		return fmt.Errorf("reading the response to filter: %w", err)
	}
	if int64(buf.Len()) > v.o.MaxResponseBytes {
		return ErrResponseTooLarge
	}
	out, err := filterJSON(buf.Bytes(), m.filter, v.o.MaxDepth)
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.TransferEncoding = nil
	resp.Uncompressed = gz || resp.Uncompressed
	resp.Header.Del("Content-Encoding")
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	return nil
}

// response finds the declared response for a status: exact, range, default.
func (o *Operation) response(status int) *response {
	if r, ok := o.statuses[status]; ok {
		return r
	}
	if c := status / 100; c >= 1 && c <= 5 && o.ranges[c] != nil {
		return o.ranges[c]
	}
	return o.dflt
}

// filterJSON rewrites body keeping only what root declares. The output is
// compact JSON; scalars keep their exact text.
func filterJSON(body []byte, root *filterNode, maxDepth int) ([]byte, error) {
	if !scanDepth(body, maxDepth) {
		return nil, fmt.Errorf("%w: nested deeper than %d", ErrUnfilterable, maxDepth)
	}
	w := rewriter{p: parser{b: body, maxDepth: maxDepth}, out: make([]byte, 0, len(body))}
	w.p.ws()
	w.value([]*filterNode{root})
	if w.p.err == nil {
		w.p.ws()
		if w.p.i != len(body) {
			w.p.fail(reasonSyntax)
		}
	}
	if w.p.err != nil {
		return nil, fmt.Errorf("%w: %s", ErrUnfilterable, w.p.err.reason)
	}
	return w.out, nil
}

// rewriter copies JSON from p to out, dropping undeclared properties.
type rewriter struct {
	p   parser
	out []byte
}

func (w *rewriter) value(set []*filterNode) {
	p := &w.p
	if p.i >= len(p.b) {
		p.fail(reasonSyntax)
		return
	}
	if len(set) == 1 && set[0].raw {
		start := p.i
		w.skip()
		w.out = append(w.out, p.b[start:p.i]...)
		return
	}
	switch p.b[p.i] {
	case '{':
		w.object(set)
	case '[':
		w.array(set)
	default:
		start := p.i
		w.skip()
		w.out = append(w.out, p.b[start:p.i]...)
	}
}

func (w *rewriter) object(set []*filterNode) {
	p := &w.p
	if !p.enter() {
		return
	}
	p.i++
	w.out = append(w.out, '{')
	first := true
	var buf [4]*filterNode
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		p.depth--
		w.out = append(w.out, '}')
		return
	}
	for {
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			p.fail(reasonSyntax)
			return
		}
		kstart := p.i
		key, ok := p.str()
		if !ok {
			return
		}
		kend := p.i
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			p.fail(reasonSyntax)
			return
		}
		p.i++
		p.ws()
		if children := propNodes(set, key, buf[:0]); len(children) > 0 {
			if !first {
				w.out = append(w.out, ',')
			}
			first = false
			w.out = append(w.out, p.b[kstart:kend]...)
			w.out = append(w.out, ':')
			w.value(slices.Clone(children))
		} else {
			w.skip()
		}
		if p.err != nil {
			return
		}
		if !p.next('}') {
			if p.err == nil {
				w.out = append(w.out, '}')
			}
			return
		}
	}
}

func (w *rewriter) array(set []*filterNode) {
	p := &w.p
	if !p.enter() {
		return
	}
	p.i++
	w.out = append(w.out, '[')
	var buf [4]*filterNode
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		p.depth--
		w.out = append(w.out, ']')
		return
	}
	for i := 0; ; i++ {
		p.ws()
		if i > 0 {
			w.out = append(w.out, ',')
		}
		w.value(slices.Clone(itemNodes(set, i, buf[:0])))
		if p.err != nil {
			return
		}
		if !p.next(']') {
			if p.err == nil {
				w.out = append(w.out, ']')
			}
			return
		}
	}
}

// skip moves past one value, checking its syntax.
func (w *rewriter) skip() {
	p := &w.p
	if p.i >= len(p.b) {
		p.fail(reasonSyntax)
		return
	}
	switch c := p.b[p.i]; {
	case c == '{' || c == '[':
		save := w.out
		w.out = w.out[len(w.out):]
		if c == '{' {
			w.object(nil)
		} else {
			w.array(nil)
		}
		w.out = save
	case c == '"':
		p.str()
	case c == 't':
		p.lit("true", nil)
	case c == 'f':
		p.lit("false", nil)
	case c == 'n':
		p.lit("null", nil)
	case c == '-' || c >= '0' && c <= '9':
		n, ok := scanNumber(p.b[p.i:])
		if !ok {
			p.fail(reasonSyntax)
			return
		}
		p.i += n
	default:
		p.fail(reasonSyntax)
	}
}
