package docs

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/breakwater/breakwater/internal/oasdoc"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
)

// MaxSpecBytes bounds one OpenAPI document read by ReadSpecs.
const MaxSpecBytes = 16 << 20

// Spec is one OpenAPI 3.x document, YAML or JSON.
type Spec struct {
	Name string // for error messages: the file name as written in the config
	Data []byte
}

// ReadSpecs reads the docs.specs files, each relative to dir unless
// absolute, refusing any larger than MaxSpecBytes.
func ReadSpecs(dir string, files []string) ([]Spec, error) {
	out := make([]Spec, 0, len(files))
	for _, f := range files {
		p := f
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		data, err := readLimited(p)
		if err != nil {
			return nil, fmt.Errorf("docs spec %s: %w", f, err)
		}
		out = append(out, Spec{Name: f, Data: data})
	}
	return out, nil
}

func readLimited(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, MaxSpecBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxSpecBytes {
		return nil, fmt.Errorf("larger than %d bytes", MaxSpecBytes)
	}
	return data, nil
}

// methodKeys are the operation keys of a path item, in display order.
func methodKeys() [8]string {
	return [...]string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}
}

func isMethodKey(k string) bool {
	switch k {
	case "get", "put", "post", "delete", "options", "head", "patch", "trace":
		return true
	}
	return false
}

// operation is one (method, path) of the merged document.
type operation struct {
	method string // uppercase
	path   string // gateway path template
}

// merged is the union of the configured specs, rewritten so that paths are
// the gateway's paths and nothing internal remains.
type merged struct {
	doc   map[string]any // without "paths"
	paths map[string]map[string]any
	keys  []string    // sorted keys of paths
	ops   []operation // in keys order, then methods order
}

// merge combines specs into one document: paths are prefixed with the path
// of each spec's first server URL (the gateway serves them there); the
// top-level security of a spec is copied into its operations that have
// none; servers become the gateway itself ("/"); x-breakwater extensions,
// servers of paths and operations, and webhooks are removed. A path present
// in two specs, or a component of the same name with different content, is
// an error.
func merge(specs []Spec) (*merged, error) {
	if len(specs) == 0 {
		return nil, errors.New("no spec to document")
	}
	m := &merged{paths: map[string]map[string]any{}}
	components := map[string]map[string]any{}
	var tags []any
	tagSeen := map[string]bool{}
	var version string
	for i, s := range specs {
		name := s.Name
		if name == "" {
			name = fmt.Sprintf("spec %d", i)
		}
		doc, err := oasdoc.Decode(s.Data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		v, _ := doc["openapi"].(string)
		if !strings.HasPrefix(v, "3.") {
			return nil, fmt.Errorf("%s: not an OpenAPI 3 document (no \"openapi: 3.x\")", name)
		}
		if version == "" {
			version = v
			m.doc = map[string]any{"openapi": v, "info": doc["info"]}
			for _, k := range []string{"jsonSchemaDialect", "externalDocs"} {
				if x, ok := doc[k]; ok {
					m.doc[k] = x
				}
			}
		} else if minor(v) != minor(version) {
			return nil, fmt.Errorf("%s: OpenAPI %s cannot be merged with OpenAPI %s of %s; serve specs of one version", name, v, version, specs[0].Name)
		}
		base := oasdoc.BasePath(doc)
		comps, _ := doc["components"].(map[string]any)
		paths, _ := doc["paths"].(map[string]any)
		for k, raw := range paths {
			item, ok := raw.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: paths.%s is not a mapping", name, k)
			}
			if ref, ok := item["$ref"].(string); ok {
				if item, ok = oasdoc.ResolvePathItem(comps, ref); !ok {
					return nil, fmt.Errorf("%s: paths.%s: $ref %q is not a path item under #/components/pathItems; bundle the spec", name, k, ref)
				}
			}
			full := base + k
			if base != "" && k == "/" {
				full = base + "/"
			}
			if _, dup := m.paths[full]; dup {
				return nil, fmt.Errorf("%s: path %s is documented by another spec too", name, full)
			}
			m.paths[full] = cleanItem(item, doc["security"])
		}
		for section, raw := range comps {
			entries, ok := raw.(map[string]any)
			if !ok {
				continue
			}
			dst := components[section]
			if dst == nil {
				dst = map[string]any{}
				components[section] = dst
			}
			for n, e := range entries {
				if old, ok := dst[n]; ok && !reflect.DeepEqual(old, e) {
					return nil, fmt.Errorf("%s: components.%s.%s differs from the one of another spec; rename one", name, section, n)
				}
				dst[n] = e
			}
		}
		list, _ := doc["tags"].([]any)
		for _, t := range list {
			tm, _ := t.(map[string]any)
			n, _ := tm["name"].(string)
			if n != "" && !tagSeen[n] {
				tagSeen[n] = true
				tags = append(tags, t)
			}
		}
	}
	if len(components) > 0 {
		c := make(map[string]any, len(components))
		for k, v := range components {
			c[k] = v
		}
		m.doc["components"] = c
	}
	if len(tags) > 0 {
		m.doc["tags"] = tags
	}
	m.doc["servers"] = []any{map[string]any{"url": "/", "description": "this gateway"}}
	for k := range m.paths {
		m.keys = append(m.keys, k)
	}
	sort.Strings(m.keys)
	for _, k := range m.keys {
		for _, meth := range methodKeys() {
			if _, ok := m.paths[k][meth]; ok {
				m.ops = append(m.ops, operation{method: strings.ToUpper(meth), path: k})
			}
		}
	}
	return m, nil
}

// minor returns "3.0" of "3.0.3".
func minor(v string) string {
	if i := strings.IndexByte(v[2:], '.'); i >= 0 {
		return v[:2+i]
	}
	return v
}

// cleanItem copies a path item without servers and x-breakwater, giving
// each operation without security the spec's top-level security.
func cleanItem(item map[string]any, security any) map[string]any {
	out := make(map[string]any, len(item))
	for k, v := range item {
		switch {
		case k == "servers" || k == "x-breakwater" || k == "$ref":
		case isMethodKey(k):
			op, ok := v.(map[string]any)
			if !ok {
				continue
			}
			c := make(map[string]any, len(op)+1)
			for ok, ov := range op {
				if ok != "servers" && ok != "x-breakwater" {
					c[ok] = ov
				}
			}
			if _, has := c["security"]; !has && security != nil {
				c["security"] = security
			}
			out[k] = c
		default:
			out[k] = v
		}
	}
	return out
}

// render returns the document with only the operations allow keeps, the
// paths left empty removed, and only the components, tags and security
// schemes still referenced.
func (m *merged) render(allow []bool) ([]byte, error) {
	doc := make(map[string]any, len(m.doc)+1)
	for k, v := range m.doc {
		doc[k] = v
	}
	paths := map[string]any{}
	usedTags := map[string]bool{}
	usedSchemes := map[string]bool{}
	i := 0
	for _, k := range m.keys {
		item := m.paths[k]
		kept := map[string]any{}
		for _, meth := range methodKeys() {
			op, ok := item[meth]
			if !ok {
				continue
			}
			if allow[i] {
				kept[meth] = op
				noteTagsAndSchemes(op, usedTags, usedSchemes)
			}
			i++
		}
		if len(kept) == 0 {
			continue
		}
		for f, v := range item {
			if !isMethodKey(f) {
				kept[f] = v
			}
		}
		paths[k] = kept
	}
	doc["paths"] = paths
	if c, ok := m.doc["components"].(map[string]any); ok {
		doc["components"] = prune(c, paths, usedSchemes)
	}
	if tags, ok := m.doc["tags"].([]any); ok {
		var keep []any
		for _, t := range tags {
			n, _ := t.(map[string]any)["name"].(string)
			if usedTags[n] {
				keep = append(keep, t)
			}
		}
		if keep == nil {
			delete(doc, "tags")
		} else {
			doc["tags"] = keep
		}
	}
	return json.Marshal(doc)
}

func noteTagsAndSchemes(op any, tags, schemes map[string]bool) {
	o, _ := op.(map[string]any)
	list, _ := o["tags"].([]any)
	for _, t := range list {
		if s, ok := t.(string); ok {
			tags[s] = true
		}
	}
	reqs, _ := o["security"].([]any)
	for _, r := range reqs {
		rm, _ := r.(map[string]any)
		for s := range rm {
			schemes[s] = true
		}
	}
}

// prune keeps the components reachable from paths through "#/components/…"
// references (and the security schemes operations name), so that a
// consumer does not see the schemas of operations it may not call.
func prune(c map[string]any, paths map[string]any, schemes map[string]bool) map[string]any {
	keep := map[string]map[string]bool{}
	var queue []any
	mark := func(section, name string) {
		entries, _ := c[section].(map[string]any)
		e, ok := entries[name]
		if !ok || keep[section][name] {
			return
		}
		if keep[section] == nil {
			keep[section] = map[string]bool{}
		}
		keep[section][name] = true
		queue = append(queue, e)
	}
	for s := range schemes {
		mark("securitySchemes", s)
	}
	queue = append(queue, paths)
	for len(queue) > 0 {
		v := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		walkStrings(v, func(s string) {
			rest, ok := strings.CutPrefix(s, "#/components/")
			if !ok {
				return
			}
			section, name, _ := strings.Cut(rest, "/")
			if i := strings.IndexByte(name, '/'); i >= 0 {
				name = name[:i]
			}
			mark(section, strings.ReplaceAll(strings.ReplaceAll(name, "~1", "/"), "~0", "~"))
		})
	}
	out := map[string]any{}
	for section, names := range keep {
		entries := c[section].(map[string]any)
		sec := make(map[string]any, len(names))
		for n := range names {
			sec[n] = entries[n]
		}
		out[section] = sec
	}
	return out
}

// walkStrings calls f with every string value inside v.
func walkStrings(v any, f func(string)) {
	switch x := v.(type) {
	case string:
		f(x)
	case map[string]any:
		for _, e := range x {
			walkStrings(e, f)
		}
	case []any:
		for _, e := range x {
			walkStrings(e, f)
		}
	}
}
