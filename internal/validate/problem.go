package validate

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/pb33f/jsonschema/v6"
	"github.com/pb33f/jsonschema/v6/kind"
)

// Problem is why a request does not match its operation. Field and Reason
// are built from the spec and from positions only — never from the
// request's values — so both are safe to send to the client.
type Problem struct {
	// Status is 400, 413 (body over MaxBodyBytes) or 415 (content type
	// not declared by the operation).
	Status int
	// Field locates the failure: "body", "body.items[2].quantity",
	// "query.limit", "path.id", "header.X-Tenant".
	Field string
	// Reason says what is wrong, e.g. "must be at most 100".
	Reason string
}

// Error implements error, so a Problem can travel as one.
func (p *Problem) Error() string { return p.Field + ": " + p.Reason }

func badRequest(field, reason string) *Problem {
	return &Problem{Status: 400, Field: field, Reason: reason}
}

// safeName renders a client-chosen object key in a Field: kept when it is
// short and plain, replaced by "*" otherwise, so no arbitrary input is
// reflected to the client.
func safeName(s string) string {
	if s == "" || len(s) > 64 {
		return "*"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '$' || c == '@') {
			return "*"
		}
	}
	return s
}

// fieldPath joins a base ("body", "query.tags") and an instance location.
// arrays tells which segments are array indexes; when nil, it is inferred
// from the value v the location walks.
func fieldPath(base string, loc []string, v any) string {
	var sb strings.Builder
	sb.WriteString(base)
	for _, seg := range loc {
		switch x := v.(type) {
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(x) {
				sb.WriteString("[*]")
				v = nil
				continue
			}
			sb.WriteString("[" + seg + "]")
			v = x[i]
		case map[string]any:
			sb.WriteString("." + safeName(seg))
			v = x[seg]
		default:
			sb.WriteString("." + safeName(seg))
			v = nil
		}
	}
	return sb.String()
}

func jsonErrorProblem(base string, e *jsonError) *Problem {
	var sb strings.Builder
	sb.WriteString(base)
	for i, seg := range e.path {
		if e.arrays[i] {
			sb.WriteString("[" + seg + "]")
		} else {
			sb.WriteString("." + safeName(seg))
		}
	}
	return badRequest(sb.String(), e.reason)
}

// schemaProblem turns a validation error into a Problem naming the first
// failing field. Composite keywords (anyOf, oneOf, not) are reported where
// they stand rather than by one of their branches.
func schemaProblem(base string, err error, v any) *Problem {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return badRequest(base, "is invalid")
	}
	leaf := ve
	for {
		switch leaf.ErrorKind.(type) {
		case *kind.AnyOf, *kind.OneOf, *kind.Not:
		default:
			if len(leaf.Causes) > 0 {
				leaf = leaf.Causes[0]
				continue
			}
		}
		break
	}
	field := fieldPath(base, leaf.InstanceLocation, v)
	switch k := leaf.ErrorKind.(type) {
	case *kind.Required:
		if len(k.Missing) > 0 {
			return badRequest(field+"."+safeName(k.Missing[0]), "is required")
		}
	case *kind.DependentRequired:
		if len(k.Missing) > 0 {
			return badRequest(field+"."+safeName(k.Missing[0]), "is required")
		}
	case *kind.AdditionalProperties:
		if len(k.Properties) > 0 {
			return badRequest(field+"."+safeName(k.Properties[0]), "is not allowed")
		}
	case *kind.FalseSchema:
		return badRequest(field, "is not allowed")
	}
	return badRequest(field, reason(leaf.ErrorKind))
}

// reason words an error kind from what the schema wants, never from what
// the request had.
func reason(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Type:
		return "must be " + strings.Join(k.Want, " or ")
	case *kind.Enum:
		return "must be one of " + listValues(k.Want)
	case *kind.Const:
		return "must be " + listValues([]any{k.Want})
	case *kind.Format:
		return "must be a valid " + k.Want
	case *kind.MinLength:
		return fmt.Sprintf("must be at least %d characters long", k.Want)
	case *kind.MaxLength:
		return fmt.Sprintf("must be at most %d characters long", k.Want)
	case *kind.Pattern:
		return "must match the pattern " + k.Want
	case *kind.Minimum:
		return "must be at least " + ratText(k.Want)
	case *kind.Maximum:
		return "must be at most " + ratText(k.Want)
	case *kind.ExclusiveMinimum:
		return "must be greater than " + ratText(k.Want)
	case *kind.ExclusiveMaximum:
		return "must be less than " + ratText(k.Want)
	case *kind.MultipleOf:
		return "must be a multiple of " + ratText(k.Want)
	case *kind.MinItems:
		return fmt.Sprintf("must have at least %d items", k.Want)
	case *kind.MaxItems:
		return fmt.Sprintf("must have at most %d items", k.Want)
	case *kind.UniqueItems:
		return "must not contain duplicate items"
	case *kind.MinProperties:
		return fmt.Sprintf("must have at least %d properties", k.Want)
	case *kind.MaxProperties:
		return fmt.Sprintf("must have at most %d properties", k.Want)
	case *kind.AnyOf:
		return "must match at least one of the allowed schemas"
	case *kind.OneOf:
		if len(k.Subschemas) > 1 {
			return "must match exactly one of the allowed schemas, matches several"
		}
		return "must match exactly one of the allowed schemas"
	case *kind.Not:
		return "must not match the excluded schema"
	case *kind.PropertyNames:
		return "has a property name that is not allowed"
	case *kind.Contains, *kind.MinContains:
		return "must contain a matching item"
	case *kind.MaxContains:
		return "contains too many matching items"
	case *kind.AdditionalItems:
		return "has more items than allowed"
	}
	return "is invalid"
}

// listValues renders schema-defined values (enum, const) compactly.
func listValues(vs []any) string {
	if len(vs) > 10 {
		return "the allowed values"
	}
	parts := make([]string, 0, len(vs))
	for _, v := range vs {
		b, err := json.Marshal(v)
		if err != nil || len(b) > 64 {
			return "the allowed values"
		}
		parts = append(parts, string(b))
	}
	return strings.Join(parts, ", ")
}

func ratText(r *big.Rat) string {
	if r == nil {
		return "the bound"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}
