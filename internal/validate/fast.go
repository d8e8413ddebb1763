package validate

import (
	"encoding/json"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pb33f/jsonschema/v6"
)

// checked is a compiled schema with an optional fast path.
//
// The schema library is exact but slow on the hot path (every number goes
// through fmt and big.Rat, every keyword through its generic machinery).
// accepts walks the library's own compiled schema and answers only "valid"
// or "don't know": when it says valid, the value is valid (it never accepts
// what the library would refuse: it refuses whenever in doubt, and schemas
// with keywords it does not implement have no fast path at all); anything
// else goes to the library, which decides and words the problem.
type checked struct {
	s    *jsonschema.Schema
	fast bool
}

func newChecked(s *jsonschema.Schema) *checked {
	return &checked{s: s, fast: fastSupported(s, map[*jsonschema.Schema]bool{})}
}

// validate returns nil or the library's validation error.
func (c *checked) validate(v any) error {
	if c.fast && accepts(c.s, v, 0) {
		return nil
	}
	return c.s.Validate(v)
}

// fastSupported tells whether every schema reachable from s uses only the
// keywords accepts implements.
func fastSupported(s *jsonschema.Schema, seen map[*jsonschema.Schema]bool) bool {
	if s == nil || seen[s] {
		return true
	}
	seen[s] = true
	if s.RecursiveRef != nil || s.DynamicRef != nil || s.If != nil || s.Then != nil || s.Else != nil ||
		s.PropertyNames != nil || len(s.Dependencies) > 0 || len(s.DependentSchemas) > 0 || len(s.DependentRequired) > 0 ||
		s.UnevaluatedProperties != nil || s.UnevaluatedItems != nil || s.Contains != nil || s.MinContains != nil ||
		s.MaxContains != nil || s.AdditionalItems != nil || s.Items != nil || s.ContentEncoding != nil ||
		s.ContentMediaType != nil || s.ContentSchema != nil || len(s.Extensions) > 0 {
		return false
	}
	subs := []*jsonschema.Schema{s.Ref, s.Not, s.Items2020}
	subs = append(subs, s.AllOf...)
	subs = append(subs, s.AnyOf...)
	subs = append(subs, s.OneOf...)
	subs = append(subs, s.PrefixItems...)
	for _, p := range s.Properties {
		subs = append(subs, p)
	}
	for _, p := range s.PatternProperties {
		subs = append(subs, p)
	}
	if ap, ok := s.AdditionalProperties.(*jsonschema.Schema); ok {
		subs = append(subs, ap)
	}
	for _, x := range subs {
		if !fastSupported(x, seen) {
			return false
		}
	}
	return true
}

// maxFastSteps bounds schema steps that do not descend into the value
// ($ref, allOf...), so a schema cycle cannot recurse forever.
const maxFastSteps = 64

// accepts reports whether v certainly satisfies s.
func accepts(s *jsonschema.Schema, v any, steps int) bool {
	if steps > maxFastSteps {
		return false
	}
	if s.Bool != nil {
		return *s.Bool
	}
	if s.Not != nil || len(s.OneOf) > 0 {
		// Both need a proof that some schema is NOT matched, which this
		// path never gives: the library decides.
		return false
	}
	if s.Ref != nil && !accepts(s.Ref, v, steps+1) {
		return false
	}
	if s.Types != nil && !s.Types.IsEmpty() && !typeOK(s.Types, v) {
		return false
	}
	if s.Enum != nil {
		found := false
		for _, e := range s.Enum.Values {
			if fastEqual(e, v) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if s.Const != nil && !fastEqual(*s.Const, v) {
		return false
	}
	if s.Format != nil && s.Format.Validate != nil && s.Format.Validate(v) != nil {
		return false
	}
	for _, x := range s.AllOf {
		if !accepts(x, v, steps+1) {
			return false
		}
	}
	if len(s.AnyOf) > 0 {
		ok := false
		for _, x := range s.AnyOf {
			if accepts(x, v, steps+1) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	switch x := v.(type) {
	case string:
		return stringOK(s, x)
	case json.Number:
		return numberOK(s, x)
	case map[string]any:
		return objectOK(s, x)
	case []any:
		return arrayOK(s, x)
	}
	return true
}

// Bits of jsonschema.Types (v6.0.3: null, boolean, number, integer,
// string, array, object from bit 1); TestTypeBits pins them.
const (
	tNull = 1 << (iota + 1)
	tBoolean
	tNumber
	tInteger
	tString
	tArray
	tObject
)

func typeOK(t *jsonschema.Types, v any) bool {
	want := int(*t)
	switch x := v.(type) {
	case nil:
		return want&tNull != 0
	case bool:
		return want&tBoolean != 0
	case string:
		return want&tString != 0
	case map[string]any:
		return want&tObject != 0
	case []any:
		return want&tArray != 0
	case json.Number:
		return want&tNumber != 0 || want&tInteger != 0 && isIntLiteral(string(x))
	}
	return false
}

// isIntLiteral: a literal without fraction or exponent (1.0 and 1e2 are
// integers too, but those are left to the library).
func isIntLiteral(s string) bool {
	return !strings.ContainsAny(s, ".eE")
}

func stringOK(s *jsonschema.Schema, x string) bool {
	if s.MinLength != nil || s.MaxLength != nil {
		n := utf8.RuneCountInString(x)
		if s.MinLength != nil && n < *s.MinLength || s.MaxLength != nil && n > *s.MaxLength {
			return false
		}
	}
	if s.Pattern != nil && !s.Pattern.MatchString(x) {
		return false
	}
	return true
}

func numberOK(s *jsonschema.Schema, n json.Number) bool {
	if s.Minimum == nil && s.Maximum == nil && s.ExclusiveMinimum == nil && s.ExclusiveMaximum == nil && s.MultipleOf == nil {
		return true
	}
	if isIntLiteral(string(n)) {
		if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
			return intCmp(s.Minimum, i, func(c int) bool { return c >= 0 }) &&
				intCmp(s.Maximum, i, func(c int) bool { return c <= 0 }) &&
				intCmp(s.ExclusiveMinimum, i, func(c int) bool { return c > 0 }) &&
				intCmp(s.ExclusiveMaximum, i, func(c int) bool { return c < 0 }) &&
				s.MultipleOf == nil
		}
	}
	r, ok := new(big.Rat).SetString(string(n))
	if !ok {
		return false
	}
	return ratCmp(s.Minimum, r, func(c int) bool { return c >= 0 }) &&
		ratCmp(s.Maximum, r, func(c int) bool { return c <= 0 }) &&
		ratCmp(s.ExclusiveMinimum, r, func(c int) bool { return c > 0 }) &&
		ratCmp(s.ExclusiveMaximum, r, func(c int) bool { return c < 0 }) &&
		(s.MultipleOf == nil || new(big.Rat).Quo(r, s.MultipleOf).IsInt())
}

// intCmp checks bound (nil: none) against i: ok(sign(i - bound)).
func intCmp(bound *big.Rat, i int64, ok func(int) bool) bool {
	if bound == nil {
		return true
	}
	if bound.IsInt() && bound.Num().IsInt64() {
		b := bound.Num().Int64()
		c := 0
		if i < b {
			c = -1
		} else if i > b {
			c = 1
		}
		return ok(c)
	}
	return ok(new(big.Rat).SetInt64(i).Cmp(bound))
}

func ratCmp(bound, r *big.Rat, ok func(int) bool) bool {
	return bound == nil || ok(r.Cmp(bound))
}

func objectOK(s *jsonschema.Schema, m map[string]any) bool {
	if s.MinProperties != nil && len(m) < *s.MinProperties || s.MaxProperties != nil && len(m) > *s.MaxProperties {
		return false
	}
	for _, r := range s.Required {
		if _, ok := m[r]; !ok {
			return false
		}
	}
	for k, val := range m {
		p, declared := s.Properties[k]
		if declared && !accepts(p, val, 0) {
			return false
		}
		matched := false
		for re, ps := range s.PatternProperties {
			if re.MatchString(k) {
				matched = true
				if !accepts(ps, val, 0) {
					return false
				}
			}
		}
		if declared || matched {
			continue
		}
		switch ap := s.AdditionalProperties.(type) {
		case nil:
		case bool:
			if !ap {
				return false
			}
		case *jsonschema.Schema:
			if !accepts(ap, val, 0) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func arrayOK(s *jsonschema.Schema, a []any) bool {
	if s.MinItems != nil && len(a) < *s.MinItems || s.MaxItems != nil && len(a) > *s.MaxItems {
		return false
	}
	if s.UniqueItems {
		if len(a) > 64 {
			return false // quadratic: the library decides
		}
		for i := range a {
			for j := i + 1; j < len(a); j++ {
				if fastEqual(a[i], a[j]) {
					return false
				}
			}
		}
	}
	for i, x := range a {
		var sub *jsonschema.Schema
		if i < len(s.PrefixItems) {
			sub = s.PrefixItems[i]
		} else {
			sub = s.Items2020
		}
		if sub != nil && !accepts(sub, x, 0) {
			return false
		}
	}
	return true
}

// fastEqual is JSON equality; numbers compare by value. When unsure (a
// number type it does not know) it says false, which sends the decision
// to the library.
func fastEqual(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case string:
		y, ok := b.(string)
		return ok && x == y
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !fastEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !fastEqual(v, w) {
				return false
			}
		}
		return true
	}
	if x, ok := a.(json.Number); ok {
		if y, ok := b.(json.Number); ok && x == y {
			return true
		}
	}
	ra, ok1 := toRat(a)
	rb, ok2 := toRat(b)
	return ok1 && ok2 && ra.Cmp(rb) == 0
}

func toRat(v any) (*big.Rat, bool) {
	switch x := v.(type) {
	case json.Number:
		if isIntLiteral(string(x)) {
			if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
				return new(big.Rat).SetInt64(i), true
			}
		}
		return new(big.Rat).SetString(string(x))
	case float64:
		r := new(big.Rat)
		if r.SetFloat64(x) == nil {
			return nil, false
		}
		return r, true
	case int:
		return new(big.Rat).SetInt64(int64(x)), true
	case int64:
		return new(big.Rat).SetInt64(x), true
	}
	return nil, false
}
