package authz

import (
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/interpreter"
)

// hiddenHeaders carry credentials; request.headers never shows them.
func hiddenHeader(lower string) bool {
	switch lower {
	case "authorization", "proxy-authorization", "cookie", "x-api-key":
		return true
	}
	return false
}

// activation resolves the policy variables from an Input, building each only
// when the expression reads it. One activation serves one evaluation; it is
// pooled by its Policy.
type activation struct {
	in *Input

	path, query, queryAll, headers lazyMap

	queryParsed bool
	queryVals   url.Values
	queryErr    bool
}

var _ interpreter.Activation = (*activation)(nil)

// reset drops every reference to the request so the pool keeps nothing alive.
func (a *activation) reset() {
	*a = activation{}
}

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	in := a.in
	switch name {
	case varMethod:
		return types.String(in.Method), true
	case varCanonicalPath:
		return types.String(in.CanonicalPath), true
	case varPath:
		return a.lazy(&a.path, kindPath), true
	case varQuery, varQueryAll:
		if !a.parseQuery() {
			return types.NewErr("query string is malformed"), true
		}
		if name == varQuery {
			return a.lazy(&a.query, kindQuery), true
		}
		return a.lazy(&a.queryAll, kindQueryAll), true
	case varHeaders:
		return a.lazy(&a.headers, kindHeaders), true
	case varConsumerID:
		return types.String(in.Consumer.ID), true
	case varScopes:
		return types.NewStringList(types.DefaultTypeAdapter, in.Consumer.Scopes), true
	case varToken:
		return types.NewStringInterfaceMap(types.DefaultTypeAdapter, in.Consumer.Claims), true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }

func (a *activation) lazy(m *lazyMap, k mapKind) *lazyMap {
	if m.a == nil {
		m.a, m.kind = a, k
	}
	return m
}

// parseQuery parses the raw query once and reports whether it is well formed.
func (a *activation) parseQuery() bool {
	if !a.queryParsed {
		a.queryParsed = true
		v, err := url.ParseQuery(a.in.RawQuery)
		a.queryVals, a.queryErr = v, err != nil
	}
	return !a.queryErr
}

type mapKind uint8

const (
	kindPath mapKind = iota
	kindQuery
	kindQueryAll
	kindHeaders
)

// lazyMap is a CEL map over a part of the request that looks keys up in the
// request itself. Only operations over the whole map (iteration, equality,
// conversion) build a real map, once.
type lazyMap struct {
	a    *activation
	kind mapKind
	full traits.Mapper
}

var _ traits.Mapper = (*lazyMap)(nil)

// Find implements traits.Mapper.
func (m *lazyMap) Find(key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(key), false
	}
	s := string(k)
	switch m.kind {
	case kindPath:
		for _, p := range m.a.in.Params {
			if p.Name == s {
				return types.String(p.Value), true
			}
		}
	case kindQuery:
		if v, ok := m.a.queryVals[s]; ok && len(v) > 0 {
			return types.String(v[0]), true
		}
	case kindQueryAll:
		if v, ok := m.a.queryVals[s]; ok {
			return types.NewStringList(types.DefaultTypeAdapter, v), true
		}
	case kindHeaders:
		if v, ok := headerValue(m.a.in.Header, s); ok {
			return types.String(v), true
		}
	}
	return nil, false
}

// materialize builds the whole map, for the operations that need it.
func (m *lazyMap) materialize() traits.Mapper {
	if m.full != nil {
		return m.full
	}
	in := m.a.in
	switch m.kind {
	case kindPath:
		out := make(map[string]string, len(in.Params))
		for _, p := range in.Params {
			if _, dup := out[p.Name]; !dup {
				out[p.Name] = p.Value
			}
		}
		m.full = types.NewStringStringMap(types.DefaultTypeAdapter, out)
	case kindQuery:
		out := make(map[string]string, len(m.a.queryVals))
		for k, v := range m.a.queryVals {
			if len(v) > 0 {
				out[k] = v[0]
			}
		}
		m.full = types.NewStringStringMap(types.DefaultTypeAdapter, out)
	case kindQueryAll:
		out := make(map[ref.Val]ref.Val, len(m.a.queryVals))
		for k, v := range m.a.queryVals {
			out[types.String(k)] = types.NewStringList(types.DefaultTypeAdapter, v)
		}
		m.full = types.NewRefValMap(types.DefaultTypeAdapter, out)
	default:
		m.full = types.NewStringStringMap(types.DefaultTypeAdapter, allHeaders(in.Header))
	}
	return m.full
}

// Get implements traits.Indexer.
func (m *lazyMap) Get(key ref.Val) ref.Val {
	v, found := m.Find(key)
	if !found {
		return types.ValOrErr(v, "no such key: %v", key)
	}
	return v
}

// Contains implements traits.Container.
func (m *lazyMap) Contains(key ref.Val) ref.Val {
	v, found := m.Find(key)
	if !found && v != nil {
		return types.MaybeNoSuchOverloadErr(v)
	}
	return types.Bool(found)
}

// Size implements traits.Sizer.
func (m *lazyMap) Size() ref.Val { return m.materialize().Size() }

// Iterator implements traits.Iterable.
func (m *lazyMap) Iterator() traits.Iterator { return m.materialize().Iterator() }

// ConvertToNative implements ref.Val.
func (m *lazyMap) ConvertToNative(t reflect.Type) (any, error) {
	return m.materialize().ConvertToNative(t)
}

// ConvertToType implements ref.Val.
func (m *lazyMap) ConvertToType(t ref.Type) ref.Val {
	switch t {
	case types.MapType:
		return m
	case types.TypeType:
		return types.MapType
	}
	return types.NewErr("type conversion error from map to '%s'", t)
}

// Equal implements ref.Val.
func (m *lazyMap) Equal(other ref.Val) ref.Val {
	if o, ok := other.(*lazyMap); ok {
		other = o.materialize()
	}
	return m.materialize().Equal(other)
}

// Type implements ref.Val.
func (m *lazyMap) Type() ref.Type { return types.MapType }

// Value implements ref.Val.
func (m *lazyMap) Value() any { return m.materialize().Value() }

// maxCanonicalKey is the longest header name canonicalized without
// allocating.
const maxCanonicalKey = 64

// headerValue returns the values of the header named lower (which must be
// lowercase), joined with ", ", unless the header is hidden.
func headerValue(h http.Header, lower string) (string, bool) {
	if lower == "" || hiddenHeader(lower) || hasUpper(lower) {
		return "", false
	}
	var buf [maxCanonicalKey]byte
	if len(lower) <= len(buf) {
		if b, ok := canonicalKey(buf[:0], lower); ok {
			// The conversion in the index expression does not allocate.
			if v, ok := h[string(b)]; ok {
				return joinValues(v), true
			}
		}
	} else if v, ok := h[http.CanonicalHeaderKey(lower)]; ok {
		return joinValues(v), true
	}
	// Names that are not canonical: maps filled by hand, and names that are
	// not valid tokens (which net/http servers refuse anyway). Compare every
	// name, in a stable order. When the canonical name is present, it alone
	// gives the value.
	var names []string
	for name := range h {
		if strings.EqualFold(name, lower) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return "", false
	}
	slices.Sort(names)
	var vals []string
	for _, n := range names {
		vals = append(vals, h[n]...)
	}
	return joinValues(vals), true
}

func joinValues(v []string) string {
	if len(v) == 1 {
		return v[0]
	}
	return strings.Join(v, ", ")
}

// allHeaders returns the visible headers with lowercase names, each with the
// value headerValue gives it.
func allHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for name := range h {
		lower := strings.ToLower(name)
		if _, done := out[lower]; done {
			continue
		}
		if v, ok := headerValue(h, lower); ok {
			out[lower] = v
		}
	}
	return out
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// canonicalKey appends the canonical form of the lowercase header name s to
// b the way net/textproto does: upper case at the start and after each '-'.
// It reports false for names that are not valid tokens, which the standard
// library does not canonicalize.
func canonicalKey(b []byte, s string) ([]byte, bool) {
	upper := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isTokenByte(c) {
			return nil, false
		}
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		b = append(b, c)
		upper = c == '-'
	}
	return b, true
}

func isTokenByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
