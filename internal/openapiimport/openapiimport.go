// Package openapiimport turns an OpenAPI 3.x document into Breakwater route
// configuration (`breakwater import openapi`): one route per path — split
// by method when operations need different settings — with auth and scopes
// from the security requirements, the spec's `x-breakwater` extensions
// merged in, and request validation against the spec turned on. The output
// is a starting point a team reviews, never something served unread: every
// guess is marked with a comment. See docs/import.md.
package openapiimport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/breakwater/breakwater/internal/oasdoc"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/router"
	"github.com/goccy/go-yaml"
)

// Placeholders used when the spec does not say; both pass validation once
// an authenticator of that name exists, so that the output can be tried
// before it is finished.
const (
	PlaceholderAuth     = "change-me"
	PlaceholderUpstream = "http://127.0.0.1:8080"
)

// Extension is the OpenAPI extension whose mapping, on a path item or an
// operation, is merged into the route (the operation's keys win).
const Extension = "x-breakwater"

// Options control Convert.
type Options struct {
	// SpecPath is written as the routes' openapi.spec: the spec's path as
	// the config will see it (relative to the config file's directory).
	SpecPath string
	// Upstream is the target of every route without an x-breakwater
	// upstream. Default PlaceholderUpstream, marked with a comment.
	Upstream string
	// DefaultAuth is the authenticator of operations the spec gives no
	// security requirement. Default PlaceholderAuth, marked with a comment.
	DefaultAuth string
	// SchemeAuth maps security scheme names of the spec to authenticator
	// names. A scheme not in it becomes the authenticator of its own name,
	// lowercased, with characters other than [a-z0-9_-] replaced by "-".
	SchemeAuth map[string]string
}

// Result is the route configuration for a spec.
type Result struct {
	// YAML is a "routes:" document, ready to be pasted into a config.
	YAML []byte
	// Routes is the number of routes in YAML.
	Routes int
	// Warnings name what could not be converted (and was left out) or
	// needs a decision; each is also a comment in YAML.
	Warnings []string
}

// Convert converts an OpenAPI 3.0 or 3.1 document (YAML or JSON). It fails
// when the document does not parse, is not OpenAPI 3, or an x-breakwater
// extension is not a mapping of route fields.
func Convert(spec []byte, o Options) (*Result, error) {
	doc, err := oasdoc.Decode(spec)
	if err != nil {
		return nil, err
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.") {
		return nil, errors.New(`not an OpenAPI 3 document (no "openapi: 3.x"); convert Swagger 2.0 first`)
	}
	if o.Upstream == "" {
		o.Upstream = PlaceholderUpstream
	}
	c := &converter{o: o, names: map[string]bool{}, schemes: map[string]string{}, fields: routeFields()}
	comps, _ := doc["components"].(map[string]any)
	ss, _ := comps["securitySchemes"].(map[string]any)
	for n, s := range ss {
		sm, _ := s.(map[string]any)
		t, _ := sm["type"].(string)
		c.schemes[n] = t
	}
	base := oasdoc.BasePath(doc)
	topSec, hasTop := doc["security"]
	paths, _ := doc["paths"].(map[string]any)
	keys := make([]string, 0, len(paths))
	for k := range paths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		item, ok := paths[k].(map[string]any)
		if ok {
			if ref, isRef := item["$ref"].(string); isRef {
				item, ok = oasdoc.ResolvePathItem(comps, ref)
			}
		}
		if !ok {
			c.warn(fmt.Sprintf("paths.%s: not a path item (or a $ref outside #/components/pathItems): left out", k))
			continue
		}
		if err := c.path(base, k, item, topSec, hasTop); err != nil {
			return nil, err
		}
	}
	return c.result()
}

type converter struct {
	o        Options
	schemes  map[string]string // security scheme name → type
	fields   map[string]bool   // route fields an extension may set
	names    map[string]bool
	routes   []any
	comments yaml.CommentMap
	warnings []string
}

// settings are what an operation needs of its route.
type settings struct {
	Auth     []string       `json:"auth"`
	Scopes   []string       `json:"scopes"`
	Notes    []string       `json:"notes"`
	Ext      map[string]any `json:"ext"`
	authNote string         // line comment on auth
}

func (c *converter) warn(msg string) { c.warnings = append(c.warnings, msg) }

// path converts one path item into one route per distinct settings.
func (c *converter) path(base, k string, item map[string]any, topSec any, hasTop bool) error {
	full := base + k
	if base != "" && k == "/" {
		full = base + "/"
	}
	if _, err := router.New([]router.Spec{{Path: full}}); err != nil {
		var se *router.SpecError
		msg := err.Error()
		if errors.As(err, &se) {
			msg = se.Msg
		}
		c.warn(fmt.Sprintf("paths.%s: %s: left out", k, msg))
		return nil
	}
	pathExt, err := c.extension(item, "paths."+k)
	if err != nil {
		return err
	}
	type group struct {
		s       settings
		methods []string
	}
	var groups []*group
	byKey := map[string]*group{}
	for _, m := range [...]string{"get", "put", "post", "delete", "options", "head", "patch", "trace"} {
		op, ok := item[m].(map[string]any)
		if !ok {
			continue
		}
		where := "paths." + k + "." + m
		opExt, err := c.extension(op, where)
		if err != nil {
			return err
		}
		s := c.security(op, topSec, hasTop)
		s.Ext = mergeExt(pathExt, opExt)
		kb, _ := json.Marshal(s)
		key := string(kb) + s.authNote
		g := byKey[key]
		if g == nil {
			g = &group{s: s}
			byKey[key] = g
			groups = append(groups, g)
		}
		g.methods = append(g.methods, strings.ToUpper(m))
	}
	if len(groups) == 0 {
		c.warn(fmt.Sprintf("paths.%s: no operation: left out", k))
	}
	for _, g := range groups {
		suffix := ""
		if len(groups) > 1 {
			suffix = "-" + strings.ToLower(strings.Join(g.methods, "-"))
		}
		c.route(full, suffix, g.methods, g.s)
	}
	return nil
}

// security turns the operation's (or the document's) security
// requirements into auth and scopes.
func (c *converter) security(op map[string]any, topSec any, hasTop bool) settings {
	var s settings
	sec, has := op["security"]
	if has {
		if l, ok := sec.([]any); ok && len(l) == 0 {
			s.Auth = []string{"none"}
			s.authNote = " security: [] in the spec: a public operation"
			return s
		}
	} else if hasTop {
		sec = topSec
	}
	reqs, _ := sec.([]any)
	if len(reqs) == 0 {
		if c.o.DefaultAuth != "" {
			s.Auth = []string{c.o.DefaultAuth}
			return s
		}
		s.Auth = []string{PlaceholderAuth}
		s.authNote = " placeholder: the spec names no security requirement; name this route's authenticators"
		return s
	}
	var scopeSets []string
	for _, r := range reqs {
		req, _ := r.(map[string]any)
		if len(req) == 0 {
			s.Notes = append(s.Notes, "the spec lets this operation be called without credentials ({}); Breakwater requires them here: write auth: none if it is public")
			continue
		}
		names := make([]string, 0, len(req))
		for n := range req {
			names = append(names, n)
		}
		sort.Strings(names)
		if len(names) > 1 {
			s.Notes = append(s.Notes, fmt.Sprintf("the spec requires %s together; a Breakwater route accepts any one of its authenticators: review", strings.Join(names, " and ")))
		}
		var scopes []string
		for _, n := range names {
			a := c.authName(n)
			if !slices.Contains(s.Auth, a) {
				s.Auth = append(s.Auth, a)
			}
			t, known := c.schemes[n]
			if !known {
				s.Notes = append(s.Notes, fmt.Sprintf("security scheme %q is not in components.securitySchemes", n))
			}
			if t == "oauth2" || t == "openIdConnect" {
				list, _ := req[n].([]any)
				for _, x := range list {
					if str, ok := x.(string); ok && str != "" {
						scopes = append(scopes, str)
					}
				}
			}
		}
		slices.Sort(scopes)
		scopes = slices.Compact(scopes)
		scopeSets = append(scopeSets, strings.Join(scopes, " "))
		s.Scopes = append(s.Scopes, scopes...)
	}
	slices.Sort(s.Scopes)
	s.Scopes = slices.Compact(s.Scopes)
	if slices.Sort(scopeSets); len(slices.Compact(scopeSets)) > 1 {
		s.Notes = append(s.Notes, "the spec's alternatives need different scopes; Breakwater requires all the scopes listed of every caller: review")
	}
	if len(s.Auth) == 0 {
		s.Auth = []string{PlaceholderAuth}
		s.authNote = " placeholder: name this route's authenticators"
	}
	return s
}

// authName is the authenticator for a security scheme.
func (c *converter) authName(scheme string) string {
	if a, ok := c.o.SchemeAuth[scheme]; ok {
		return a
	}
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(scheme) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	n := strings.TrimRight(b.String(), "-")
	if len(n) > 64 {
		n = n[:64]
	}
	if n == "" || n == "none" {
		n = "scheme-" + n
	}
	return strings.TrimRight(n, "-")
}

// extension returns the x-breakwater mapping of a path item or operation.
func (c *converter) extension(m map[string]any, where string) (map[string]any, error) {
	raw, ok := m[Extension]
	if !ok {
		return nil, nil
	}
	ext, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s.%s: must be a mapping of route fields, such as {max_body: 64KiB}", where, Extension)
	}
	for k := range ext {
		if !c.fields[k] {
			return nil, fmt.Errorf("%s.%s.%s: not a route field an extension may set (path and methods come from the spec)", where, Extension, k)
		}
	}
	return ext, nil
}

// mergeExt merges the operation's extension over the path's; openapi
// mappings are merged key by key.
func mergeExt(path, op map[string]any) map[string]any {
	if len(path) == 0 && len(op) == 0 {
		return nil
	}
	out := map[string]any{}
	for _, m := range []map[string]any{path, op} {
		for k, v := range m {
			old, oldMap := out[k].(map[string]any)
			nv, newMap := v.(map[string]any)
			if k == "openapi" && oldMap && newMap {
				merged := map[string]any{}
				for kk, vv := range old {
					merged[kk] = vv
				}
				for kk, vv := range nv {
					merged[kk] = vv
				}
				v = merged
			}
			out[k] = v
		}
	}
	return out
}

// route appends one route.
func (c *converter) route(path, suffix string, methods []string, s settings) {
	name, _ := s.Ext["name"].(string)
	if name == "" {
		name = c.uniqueName(slug(path), suffix)
	}
	c.names[name] = true
	i := len(c.routes)
	at := fmt.Sprintf("$.routes[%d]", i)
	r := yaml.MapSlice{{Key: "name", Value: name}, {Key: "path", Value: path}, {Key: "methods", Value: methods}}
	r = append(r, yaml.MapItem{Key: "auth", Value: s.Auth})
	if v, ok := s.Ext["auth"]; ok {
		r[len(r)-1].Value = v
	} else if s.authNote != "" {
		c.comment(at+".auth", yaml.LineComment(s.authNote))
		if strings.Contains(s.authNote, "placeholder") {
			c.warn(fmt.Sprintf("route %s: %s", name, strings.TrimSpace(s.authNote)))
		}
	}
	if v, ok := s.Ext["scopes"]; ok {
		r = append(r, yaml.MapItem{Key: "scopes", Value: v})
	} else if len(s.Scopes) > 0 {
		r = append(r, yaml.MapItem{Key: "scopes", Value: s.Scopes})
	}
	switch u := s.Ext["upstream"].(type) {
	case string:
		r = append(r, yaml.MapItem{Key: "upstream", Value: map[string]any{"targets": []string{u}}})
	case nil:
		r = append(r, yaml.MapItem{Key: "upstream", Value: map[string]any{"targets": []string{c.o.Upstream}}})
		if c.o.Upstream == PlaceholderUpstream {
			c.comment(at+".upstream", yaml.LineComment(" placeholder: where this API runs (--upstream)"))
		}
	default:
		r = append(r, yaml.MapItem{Key: "upstream", Value: u})
	}
	oa := yaml.MapSlice{{Key: "spec", Value: c.o.SpecPath}, {Key: "validate_requests", Value: true}}
	if ext, ok := s.Ext["openapi"].(map[string]any); ok {
		for _, k := range sortedKeys(ext) {
			if j := slices.IndexFunc(oa, func(it yaml.MapItem) bool { return it.Key == k }); j >= 0 {
				oa[j].Value = ext[k]
			} else {
				oa = append(oa, yaml.MapItem{Key: k, Value: ext[k]})
			}
		}
	}
	r = append(r, yaml.MapItem{Key: "openapi", Value: oa})
	for _, k := range sortedKeys(s.Ext) {
		switch k {
		case "name", "auth", "scopes", "upstream", "openapi":
		default:
			r = append(r, yaml.MapItem{Key: k, Value: s.Ext[k]})
		}
	}
	if len(s.Notes) > 0 {
		notes := make([]string, len(s.Notes))
		for j, n := range s.Notes {
			notes[j] = " REVIEW: " + n
			c.warn(fmt.Sprintf("route %s: %s", name, n))
		}
		c.comment(at, yaml.HeadComment(notes...))
	}
	c.routes = append(c.routes, r)
}

func (c *converter) comment(path string, cm *yaml.Comment) {
	if c.comments == nil {
		c.comments = yaml.CommentMap{}
	}
	c.comments[path] = append(c.comments[path], cm)
}

func (c *converter) uniqueName(base, suffix string) string {
	if len(base)+len(suffix) > 60 {
		base = base[:max(1, 60-len(suffix))]
	}
	name := base + suffix
	for i := 2; c.names[name]; i++ {
		name = fmt.Sprintf("%s%s-%d", base, suffix, i)
	}
	return name
}

func (c *converter) result() (*Result, error) {
	res := &Result{Routes: len(c.routes), Warnings: c.warnings}
	var buf bytes.Buffer
	buf.WriteString("# Routes generated by `breakwater import openapi`. Review them before use:\n")
	buf.WriteString("# lines marked placeholder or REVIEW need a decision.\n")
	for _, w := range c.warnings {
		if !strings.HasPrefix(w, "route ") { // route notes are comments on their route
			fmt.Fprintf(&buf, "# %s\n", w)
		}
	}
	if len(c.routes) == 0 {
		buf.WriteString("routes: []\n")
		res.YAML = buf.Bytes()
		return res, nil
	}
	out, err := yaml.MarshalWithOptions(yaml.MapSlice{{Key: "routes", Value: c.routes}},
		yaml.WithComment(c.comments), yaml.IndentSequence(true))
	if err != nil {
		return nil, fmt.Errorf("writing the routes: %w", err)
	}
	buf.Write(out)
	res.YAML = buf.Bytes()
	return res, nil
}

// routeFields are the route fields an x-breakwater extension may set:
// every yaml field of config.Route except path and methods.
func routeFields() map[string]bool {
	out := map[string]bool{}
	t := reflect.TypeFor[config.Route]()
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if tag != "" && tag != "-" && tag != "path" && tag != "methods" {
			out[tag] = true
		}
	}
	return out
}

// slug makes a route name of a path: "/v1/orders/{id}" → "v1-orders-id".
func slug(path string) string {
	var b strings.Builder
	dash := false
	for _, r := range path {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	s := strings.Trim(b.String(), "-.")
	if s == "" {
		return "root"
	}
	return s
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
