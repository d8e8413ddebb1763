package router

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

type segKind uint8

const (
	literal  segKind = iota // matches itself
	param                   // {name}: one non-empty segment
	wildcard                // final /**: the prefix and any subtree
)

type segment struct {
	kind segKind
	text string // the literal, or the parameter name
}

// parseTemplate splits a path template into segments. The template "/" is
// one empty literal segment, as is the last segment of "/a/".
func parseTemplate(t string) ([]segment, string) {
	if t == "" || t[0] != '/' {
		return nil, `must start with "/"`
	}
	if !utf8.ValidString(t) {
		return nil, "is not valid UTF-8"
	}
	parts := strings.Split(t[1:], "/")
	segs := make([]segment, 0, len(parts))
	names := make(map[string]bool)
	for i, p := range parts {
		last := i == len(parts)-1
		switch {
		case p == "**":
			if !last {
				return nil, `"**" is only allowed as the last segment ("/prefix/**")`
			}
			segs = append(segs, segment{kind: wildcard})
		case p == "":
			if !last {
				return nil, `has an empty segment ("//"); paths are matched after duplicate slashes are collapsed`
			}
			segs = append(segs, segment{kind: literal})
		case p[0] == '{':
			name, ok := strings.CutSuffix(p[1:], "}")
			if !ok || !validName(name) {
				return nil, `has an invalid parameter ` + quote(p) + `: write {name}, a whole segment, with a name made of letters, digits and "_" that does not start with a digit`
			}
			if names[name] {
				return nil, "uses the parameter {" + name + "} twice"
			}
			names[name] = true
			segs = append(segs, segment{kind: param, text: name})
		default:
			if msg := checkLiteral(p); msg != "" {
				return nil, msg
			}
			segs = append(segs, segment{kind: literal, text: p})
		}
	}
	return segs, ""
}

// checkLiteral reports what makes p unfit as a literal segment, or "".
func checkLiteral(p string) string {
	if strings.Trim(p, ".") == "" {
		return "has a dot segment " + quote(p) + "; paths are matched after dot segments are removed"
	}
	for _, r := range p {
		switch {
		case r == '{' || r == '}':
			return "has " + quote(p) + `: a parameter must be a whole segment, {name}`
		case r == '*':
			return "has " + quote(p) + `: use {name} for one segment, or a final "/**" for a subtree`
		case r == '%':
			return "has " + quote(p) + ": templates match decoded paths; write the character instead of its percent-escape"
		case r == ';':
			return "has " + quote(p) + `: ";" starts path parameters, which are removed before matching`
		case r == '\\' || r == '?' || r == '#':
			return "has " + quote(p) + `: "\", "?" and "#" cannot occur in a canonical path`
		case unicode.IsControl(r):
			return "has a control character"
		}
	}
	return ""
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// shape is the template with parameter names removed: two templates with
// the same shape match the same paths.
func shape(segs []segment) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		switch s.kind {
		case literal:
			b.WriteString(s.text)
		case param:
			b.WriteString("{}")
		case wildcard:
			b.WriteString("**")
		}
	}
	return b.String()
}

// quote quotes s for an error message, truncated so that a huge template
// does not make a huge message.
func quote(s string) string {
	const max = 40
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return `"` + s + `"`
}
