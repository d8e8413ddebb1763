package httpsig

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"github.com/breakwater/breakwater/internal/authn"
)

// component is one covered component identifier (RFC 9421 §2).
type component struct {
	id      item   // as it appeared: a string with parameters
	name    string // id.bare.s
	derived bool   // name starts with '@'
	qname   string // @query-param: the name parameter (encoded form)
	key     string // field: the key parameter (dictionary member)
	hasKey  bool
	bs      bool
}

// derivedNames are the derived components a request may cover. @status is
// a response component; @signature-params is never covered.
var derivedNames = [...]string{"@method", "@target-uri", "@authority", "@scheme", "@request-target", "@path", "@query", "@query-param"}

func isDerived(name string) bool {
	for _, n := range derivedNames {
		if n == name {
			return true
		}
	}
	return false
}

var (
	errComponentName  = errors.New("not a lowercase field name or a supported derived component")
	errComponentParam = errors.New("unsupported or misplaced component parameter")
)

// newComponent checks an identifier and reads its parameters. Only what
// this package can compute is accepted: sf (re-serialisation by field
// type), req (responses) and tr (trailers) are refused.
func newComponent(it item) (component, error) {
	if it.bare.kind != kindString {
		return component{}, errComponentName
	}
	c := component{id: it, name: it.bare.s}
	if strings.HasPrefix(c.name, "@") {
		if !isDerived(c.name) {
			return component{}, errComponentName
		}
		c.derived = true
	} else {
		if c.name == "" {
			return component{}, errComponentName
		}
		for i := 0; i < len(c.name); i++ {
			if ch := c.name[i]; !isTChar(ch) || (ch >= 'A' && ch <= 'Z') {
				return component{}, errComponentName
			}
		}
	}
	hasName := false
	for _, p := range it.params {
		switch {
		case p.key == "name" && c.name == "@query-param" && p.val.kind == kindString:
			c.qname, hasName = p.val.s, true
		case p.key == "key" && !c.derived && p.val.kind == kindString:
			c.key, c.hasKey = p.val.s, true
		case p.key == "bs" && !c.derived && p.val.kind == kindBoolean && p.val.i == 1:
			c.bs = true
		default:
			return component{}, errComponentParam
		}
	}
	if c.name == "@query-param" && !hasName {
		return component{}, errComponentParam
	}
	if c.bs && c.hasKey {
		return component{}, errComponentParam // RFC 9421 §2.1.3: bs excludes key
	}
	return c, nil
}

// sameComponent reports whether two identifiers name the same thing. RFC
// 9421 forbids covering one component twice.
func sameComponent(a, b *component) bool {
	return a.name == b.name && a.qname == b.qname && a.hasKey == b.hasKey && a.key == b.key && a.bs == b.bs
}

// coveredBy reports whether this required component is among covered: same
// name, same @query-param name, same dictionary key; bs does not matter.
func (c *component) coveredBy(covered []component) bool {
	for i := range covered {
		o := &covered[i]
		if o.name == c.name && o.qname == c.qname && o.hasKey == c.hasKey && o.key == c.key {
			return true
		}
	}
	return false
}

func coveredComponents(list []item) ([]component, error) {
	if len(list) > MaxComponents {
		return nil, fail(authn.Malformed, "too many covered components")
	}
	cs := make([]component, 0, len(list))
	for _, it := range list {
		c, err := newComponent(it)
		if err != nil {
			return nil, fail(authn.Invalid, "covered component: "+err.Error())
		}
		for i := range cs {
			if sameComponent(&cs[i], &c) {
				return nil, fail(authn.Malformed, "component covered twice")
			}
		}
		cs = append(cs, c)
	}
	return cs, nil
}

// parseRequired reads a RequiredComponents entry: `@method`,
// `content-digest`, `@query-param;name="id"` or the same with the name
// quoted.
func parseRequired(s string) (component, error) {
	if !strings.HasPrefix(s, `"`) {
		name, rest, _ := strings.Cut(s, ";")
		if rest != "" {
			rest = ";" + rest
		}
		s = `"` + name + `"` + rest
	}
	p := sfParser{s: s}
	it, err := p.item()
	if err != nil || !p.eof() {
		return component{}, errSF
	}
	return newComponent(it)
}

// target is the request target split once: the raw path and query as the
// client sent them (never re-encoded).
type target struct {
	raw      string // r.RequestURI
	path     string // absolute path, "/" when empty
	query    string // without '?'
	hasQuery bool
	ok       bool // origin-form or absolute-form
}

func parseTarget(r *http.Request) target {
	raw := r.RequestURI
	if raw == "" && r.URL != nil {
		raw = r.URL.RequestURI() // a request built by hand (tests, clients)
	}
	t := target{raw: raw}
	rest := raw
	if !strings.HasPrefix(rest, "/") {
		// absolute-form: scheme "://" authority path-abempty [ "?" query ]
		_, after, found := strings.Cut(rest, "://")
		if !found {
			return t // asterisk-form, authority-form: no path
		}
		if i := strings.IndexAny(after, "/?"); i >= 0 {
			rest = after[i:]
		} else {
			rest = ""
		}
	}
	t.path, t.query, t.hasQuery = strings.Cut(rest, "?")
	if t.path == "" {
		t.path = "/"
	}
	t.ok = true
	return t
}

// authority is r.Host normalised (RFC 9421 §2.2.3): lowercase, without the
// scheme's default port.
func (a *Authenticator) authority(r *http.Request) string {
	h := strings.ToLower(r.Host)
	switch {
	case a.scheme == "https" && strings.HasSuffix(h, ":443"):
		h = h[:len(h)-4]
	case a.scheme == "http" && strings.HasSuffix(h, ":80"):
		h = h[:len(h)-3]
	}
	return h
}

// signatureBase builds the RFC 9421 §2.5 signature base.
func (a *Authenticator) signatureBase(r *http.Request, t *target, covered []component, in *member) ([]byte, error) {
	buf := make([]byte, 0, 512)
	for i := range covered {
		c := &covered[i]
		buf = appendItem(buf, c.id)
		buf = append(buf, ':', ' ')
		start := len(buf)
		var err error
		if c.derived {
			buf, err = a.appendDerived(buf, r, t, c)
		} else {
			buf, err = appendField(buf, r, c)
		}
		if err != nil {
			return nil, err
		}
		for _, ch := range buf[start:] {
			if ch == '\n' || ch == '\r' {
				return nil, fail(authn.Invalid, "component value contains a line break")
			}
		}
		buf = append(buf, '\n')
	}
	buf = append(buf, `"@signature-params": `...)
	return appendInnerList(buf, in.list, in.params), nil
}

func (a *Authenticator) appendDerived(dst []byte, r *http.Request, t *target, c *component) ([]byte, error) {
	switch c.name {
	case "@method":
		return append(dst, r.Method...), nil
	case "@authority":
		return append(dst, a.authority(r)...), nil
	case "@scheme":
		return append(dst, a.scheme...), nil
	case "@request-target":
		return append(dst, t.raw...), nil
	}
	if !t.ok {
		return nil, fail(authn.Invalid, "request target has no path for "+c.name)
	}
	switch c.name {
	case "@target-uri":
		dst = append(dst, a.scheme...)
		dst = append(dst, "://"...)
		dst = append(dst, a.authority(r)...)
		dst = append(dst, t.path...)
		if t.hasQuery {
			dst = append(dst, '?')
			dst = append(dst, t.query...)
		}
		return dst, nil
	case "@path":
		return append(dst, t.path...), nil
	case "@query":
		dst = append(dst, '?')
		return append(dst, t.query...), nil
	case "@query-param":
		v, err := queryParam(t.query, c.qname)
		if err != nil {
			return nil, err
		}
		return appendFormEncoded(dst, v), nil
	}
	return nil, fail(authn.Invalid, "unsupported derived component")
}

// queryParam finds the one parameter whose name, decoded and re-encoded
// (RFC 9421 §2.2.8), equals qname, and returns its decoded value.
func queryParam(query, qname string) (string, error) {
	var (
		val   string
		found bool
		tmp   []byte
	)
	for query != "" {
		var pair string
		pair, query, _ = strings.Cut(query, "&")
		if pair == "" {
			continue
		}
		n, v, _ := strings.Cut(pair, "=")
		name, ok := formDecode(n)
		if !ok {
			return "", fail(authn.Invalid, "query has an invalid percent-encoding")
		}
		tmp = appendFormEncoded(tmp[:0], name)
		if string(tmp) != qname {
			continue
		}
		if found {
			return "", fail(authn.Invalid, "covered query parameter occurs more than once")
		}
		if val, ok = formDecode(v); !ok {
			return "", fail(authn.Invalid, "query has an invalid percent-encoding")
		}
		found = true
	}
	if !found {
		return "", fail(authn.Invalid, "covered query parameter is absent")
	}
	return val, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// formDecode is application/x-www-form-urlencoded decoding: '+' is a
// space, %XX a byte. Unlike the WHATWG parser it refuses a stray '%'.
func formDecode(s string) (string, bool) {
	if !strings.ContainsAny(s, "%+") {
		return s, true
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			out = append(out, ' ')
		case '%':
			if i+2 >= len(s) {
				return "", false
			}
			h, ok1 := unhex(s[i+1])
			l, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return "", false
			}
			out = append(out, h<<4|l)
			i += 2
		default:
			out = append(out, c)
		}
	}
	return string(out), true
}

// appendFormEncoded percent-encodes s with the WHATWG
// application/x-www-form-urlencoded percent-encode set, spaces as %20 (as
// RFC 9421 §2.2.8 does).
func appendFormEncoded(dst []byte, s string) []byte {
	const hexdig = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlpha(c) || isDigit(c) || c == '*' || c == '-' || c == '.' || c == '_' {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', hexdig[c>>4], hexdig[c&15])
	}
	return dst
}

// appendField appends an HTTP field's component value (RFC 9421 §2.1):
// every line trimmed, joined by ", "; with bs each line as a byte
// sequence; with key one member of the field parsed as a dictionary.
func appendField(dst []byte, r *http.Request, c *component) ([]byte, error) {
	var vs []string
	if c.name == "host" {
		vs = []string{r.Host} // Go moves Host out of r.Header
	} else {
		vs = r.Header.Values(c.name)
	}
	if len(vs) == 0 {
		return nil, fail(authn.Invalid, "covered field is absent: "+c.name)
	}
	if c.hasKey {
		joined, ok := headerValue(http.Header{"X": vs}, "X")
		if !ok {
			return nil, fail(authn.Malformed, "covered dictionary field too large")
		}
		d, err := parseDictionary(joined, maxListItems)
		if err != nil {
			return nil, fail(authn.Invalid, "covered field is not a dictionary")
		}
		m, ok := d.get(c.key)
		if !ok {
			return nil, fail(authn.Invalid, "covered dictionary key is absent")
		}
		return appendMemberValue(dst, m), nil
	}
	for i, v := range vs {
		if i > 0 {
			dst = append(dst, ',', ' ')
		}
		v = strings.Trim(v, " \t")
		if c.bs {
			dst = append(dst, ':')
			dst = base64.StdEncoding.AppendEncode(dst, []byte(v))
			dst = append(dst, ':')
			continue
		}
		dst = append(dst, v...)
	}
	return dst, nil
}
