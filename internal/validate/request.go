package validate

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/breakwater/breakwater/internal/reqctx"
)

// Defaults of Options' zero values.
const (
	DefaultMaxBodyBytes     = 1 << 20
	DefaultMaxDepth         = 64
	DefaultMaxResponseBytes = 8 << 20
)

// Options bound what the validator reads. Zero values take the defaults.
type Options struct {
	// MaxBodyBytes bounds the request bodies read for validation; a larger
	// body is refused with 413. Zero means DefaultMaxBodyBytes (1 MiB).
	MaxBodyBytes int64
	// MaxDepth bounds JSON nesting (objects and arrays), checked by a byte
	// scan before any parsing. Zero means DefaultMaxDepth (64).
	MaxDepth int
	// MaxResponseBytes bounds the responses buffered for filtering; a larger
	// one is an error (the proxy answers 502). Zero means
	// DefaultMaxResponseBytes (8 MiB).
	MaxResponseBytes int64
}

// Validator checks requests against a Spec and filters responses. It is
// safe for concurrent use.
type Validator struct {
	s *Spec
	o Options
}

// New returns a Validator for s with o's limits (zero values: defaults).
func New(s *Spec, o Options) *Validator {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = DefaultMaxResponseBytes
	}
	return &Validator{s: s, o: o}
}

// ValidateRequest checks r against op: path, query and header parameters,
// the content type, a required body and the body's schema. It reads the
// body at most MaxBodyBytes and restores r.Body and r.GetBody, so the
// upstream gets the same bytes. params holds path parameter values by the
// spec's names (the caller's router may have them); those missing are taken
// from the request's canonical path (reqctx) matched against op's template.
// It returns nil or a Problem whose Field and Reason never echo the input.
// A nil op (a request the spec does not describe) is not checked.
func (v *Validator) ValidateRequest(op *Operation, r *http.Request, params map[string]string) *Problem {
	if op == nil {
		return nil
	}
	var (
		query    url.Values
		queryOK  bool
		pathVals map[string]string
	)
	for i := range op.params {
		p := &op.params[i]
		var vals []string
		switch p.in {
		case inPath:
			val, ok := params[p.name]
			if !ok {
				if pathVals == nil {
					pathVals = v.pathParams(op, r)
				}
				val, ok = pathVals[p.name]
			}
			if ok {
				vals = []string{val}
			}
		case inQuery:
			if !queryOK {
				var err error
				query, err = url.ParseQuery(r.URL.RawQuery)
				if err != nil {
					return badRequest("query", "is malformed")
				}
				queryOK = true
			}
			vals = query[p.name]
		case inHeader:
			vals = r.Header.Values(p.name)
		}
		if prob := v.checkParam(p, vals); prob != nil {
			return prob
		}
	}
	return v.checkBody(op, r)
}

// pathParams matches the request's canonical path against op's template.
func (v *Validator) pathParams(op *Operation, r *http.Request) map[string]string {
	p := reqctx.From(r).Path
	if p == "" {
		p = r.URL.Path
	}
	out := map[string]string{}
	bases := op.bases
	if bases == nil {
		bases = v.s.basesAll
	}
	for _, b := range bases {
		rel, ok := stripBase(p, b)
		if ok && matchSegs(op.segs, splitPath(rel), func(name, value string) { out[name] = value }) {
			return out
		}
	}
	return out
}

func (v *Validator) checkParam(p *param, vals []string) *Problem {
	field := inNames[p.in] + "." + p.name
	if p.in == inHeader {
		field = "header." + p.name
	}
	if len(vals) == 0 {
		if p.required {
			return badRequest(field, "is required")
		}
		return nil
	}
	for _, s := range vals {
		if !utf8.ValidString(s) {
			return badRequest(field, "is not valid UTF-8")
		}
	}
	if p.schema == nil {
		return nil
	}
	var val any
	if p.array {
		var items []string
		if p.explode && p.in == inQuery {
			items = vals
		} else {
			if len(vals) > 1 {
				return badRequest(field, "must be given once")
			}
			if vals[0] != "" {
				items = strings.Split(vals[0], p.sep)
			}
		}
		arr := make([]any, len(items))
		for i, it := range items {
			x, reason := coerce(p.items, it)
			if reason != "" {
				return badRequest(field, reason)
			}
			arr[i] = x
		}
		val = arr
	} else {
		if len(vals) > 1 {
			return badRequest(field, "must be given once")
		}
		x, reason := coerce(p.types, vals[0])
		if reason != "" {
			return badRequest(field, reason)
		}
		val = x
	}
	if err := p.schema.validate(val); err != nil {
		return schemaProblem(field, err, val)
	}
	return nil
}

// coerce reads parameter text as the JSON value the schema's types expect;
// text that fits none stays a string, for the schema to refuse with "must
// be integer" and the like.
func coerce(types []string, s string) (any, string) {
	if slices.Contains(types, "integer") || slices.Contains(types, "number") {
		if n, ok := scanNumber([]byte(s)); ok && n == len(s) {
			if reason := checkNumber([]byte(s)); reason != "" {
				return nil, reason
			}
			return json.Number(s), ""
		}
	}
	if slices.Contains(types, "boolean") && (s == "true" || s == "false") {
		return s == "true", ""
	}
	if slices.Contains(types, "null") && s == "null" && !slices.Contains(types, "string") {
		return nil, ""
	}
	return s, ""
}

func (v *Validator) checkBody(op *Operation, r *http.Request) *Problem {
	var b []byte
	if r.Body != nil && r.Body != http.NoBody {
		var prob *Problem
		b, prob = v.readBody(r)
		if prob != nil {
			return prob
		}
	}
	if len(b) == 0 {
		if op.body != nil && op.body.required {
			return badRequest("body", "is required")
		}
		return nil
	}
	if op.body == nil {
		return badRequest("body", "is not accepted by this operation")
	}
	ct := r.Header.Get("Content-Type")
	typ, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return &Problem{Status: http.StatusUnsupportedMediaType, Field: "header.Content-Type", Reason: "must be " + mediaList(op.body.media)}
	}
	m := matchMedia(op.body.media, typ)
	if m == nil {
		return &Problem{Status: http.StatusUnsupportedMediaType, Field: "header.Content-Type", Reason: "must be " + mediaList(op.body.media)}
	}
	if !isJSON(typ) || typ == "*/*" || typ == "application/*" {
		return nil // not JSON: the schema is not checked
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return &Problem{Status: http.StatusUnsupportedMediaType, Field: "header.Content-Type", Reason: "charset must be utf-8"}
	}
	return v.checkJSON(m, b)
}

// checkJSON validates a JSON body: UTF-8, nesting depth (by a byte scan
// before parsing), strict parsing, then the schema.
func (v *Validator) checkJSON(m *media, b []byte) *Problem {
	if !utf8.Valid(b) {
		return badRequest("body", "is not valid UTF-8")
	}
	if !scanDepth(b, v.o.MaxDepth) {
		return badRequest("body", "is nested too deeply")
	}
	val, jerr := parseJSON(b, v.o.MaxDepth)
	if jerr != nil {
		return jsonErrorProblem("body", jerr)
	}
	if m.schema == nil {
		return nil
	}
	if err := m.schema.validate(val); err != nil {
		return schemaProblem("body", err, val)
	}
	return nil
}

// readBody reads the whole body (at most MaxBodyBytes) and puts the bytes
// back for the upstream.
func (v *Validator) readBody(r *http.Request) ([]byte, *Problem) {
	limit := v.o.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, &Problem{Status: http.StatusRequestEntityTooLarge, Field: "body", Reason: "is too large"}
	}
	size := 512
	if r.ContentLength > 0 {
		size = int(r.ContentLength) + 1
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	_, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	_ = r.Body.Close()
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &Problem{Status: http.StatusRequestEntityTooLarge, Field: "body", Reason: "is too large"}
		}
		return nil, badRequest("body", "could not be read")
	}
	if int64(buf.Len()) > limit {
		return nil, &Problem{Status: http.StatusRequestEntityTooLarge, Field: "body", Reason: "is too large"}
	}
	b := buf.Bytes()
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	r.ContentLength = int64(len(b))
	return b, nil
}

func mediaList(ms []media) string {
	if len(ms) == 0 {
		return "absent"
	}
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.typ
	}
	return strings.Join(parts, " or ")
}
