package validate

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
	pbyaml "github.com/pb33f/go-yaml"
	"github.com/pb33f/jsonschema/v6"
	"github.com/pb33f/libopenapi"
	"github.com/pb33f/libopenapi-validator/config"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
	"github.com/pb33f/libopenapi/index"
)

// Limits on what Load reads.
const (
	// MaxSpecBytes bounds each file of a spec (the root and every file it references).
	MaxSpecBytes = 10 << 20
	maxSpecFiles = 256
)

// Spec is a parsed OpenAPI 3.0.x or 3.1.x document with every schema the
// validator and the response filter need compiled once, at load.
type Spec struct {
	file    string
	version string  // the document's "openapi" field
	ver     float32 // 3.0 or 3.1, for the schema compiler
	bases   []string
	// basesAll is every server base path of the document, longest first.
	basesAll []string
	byCount  map[int][]*pathEntry // path templates by segment count
}

// Version returns the document's "openapi" version string.
func (s *Spec) Version() string { return s.version }

type pathEntry struct {
	template string
	segs     []segment
	rank     string // sorts more specific templates first
	ops      map[string]*Operation
	bases    []string // path-level servers override the document's; nil: the document's
}

// Load reads, resolves and compiles the OpenAPI document at file (YAML or
// JSON). References may name local files relative to the spec (inside its
// directory); remote references are refused. Errors name the file.
func Load(file string) (*Spec, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, fmt.Errorf("openapi spec %s: %w", file, err)
	}
	dir, name := filepath.Split(abs)
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("openapi spec %s: %w", file, err)
	}
	defer root.Close()
	data, err := readLimited(root, name)
	if err != nil {
		return nil, fmt.Errorf("openapi spec %s: %w", file, err)
	}
	if err := checkRefs(root, name, data); err != nil {
		return nil, fmt.Errorf("openapi spec %s: %w", file, err)
	}
	s, err := build(abs, dir, data)
	if err != nil {
		return nil, fmt.Errorf("openapi spec %s: %w", file, err)
	}
	s.file = file
	return s, nil
}

func readLimited(root *os.Root, name string) ([]byte, error) {
	f, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSpecBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxSpecBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, MaxSpecBytes)
	}
	return b, nil
}

// checkRefs walks every $ref reachable from the document before the
// OpenAPI library sees it: a reference with a scheme or a network path
// (http, https, file, //host) is refused, so loading a spec can never make
// the gateway fetch a URL (SSRF); a file reference must resolve inside the
// spec's directory (os.Root refuses escapes, symlinks included).
func checkRefs(root *os.Root, first string, data []byte) error {
	seen := map[string]bool{first: true}
	queue := []string{first}
	docs := map[string][]byte{first: data}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		var doc any
		if err := yaml.Unmarshal(docs[name], &doc); err != nil {
			return fmt.Errorf("%s: not YAML or JSON: %w", name, err)
		}
		delete(docs, name)
		var refs []string
		collectRefs(doc, &refs)
		for _, ref := range refs {
			target, err := refFile(name, ref)
			if err != nil {
				return err
			}
			if target == "" || seen[target] {
				continue
			}
			if len(seen) >= maxSpecFiles {
				return fmt.Errorf("%s: more than %d referenced files", name, maxSpecFiles)
			}
			seen[target] = true
			b, err := readLimited(root, target)
			if err != nil {
				return fmt.Errorf("%s: $ref %q: %w", name, ref, err)
			}
			docs[target] = b
			queue = append(queue, target)
		}
	}
	return nil
}

func collectRefs(v any, refs *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "$ref" {
				*refs = append(*refs, s)
				continue
			}
			collectRefs(e, refs)
		}
	case []any:
		for _, e := range x {
			collectRefs(e, refs)
		}
	}
}

// refFile returns the file a reference in file from points to, relative
// to the spec's directory ("" for a reference inside the same document).
func refFile(from, ref string) (string, error) {
	u, err := url.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("%s: $ref %q is not a valid reference", from, ref)
	}
	if u.Scheme != "" || u.Host != "" || strings.HasPrefix(ref, "//") {
		return "", fmt.Errorf("%s: $ref %q is remote; only references to local files are allowed", from, ref)
	}
	if u.Path == "" {
		return "", nil
	}
	if path.IsAbs(u.Path) {
		return "", fmt.Errorf("%s: $ref %q is an absolute path; use a path relative to the spec", from, ref)
	}
	target := path.Clean(path.Join(path.Dir(filepath.ToSlash(from)), u.Path))
	if target == ".." || strings.HasPrefix(target, "../") {
		return "", fmt.Errorf("%s: $ref %q leaves the spec's directory", from, ref)
	}
	return filepath.FromSlash(target), nil
}

func build(abs, dir string, data []byte) (*Spec, error) {
	cfg := datamodel.NewDocumentConfiguration()
	cfg.BasePath = dir
	cfg.SpecFilePath = abs
	cfg.AllowFileReferences = true
	cfg.AllowRemoteReferences = false
	doc, err := libopenapi.NewDocumentWithConfiguration(data, cfg)
	if err != nil {
		return nil, err
	}
	ver := doc.GetVersion()
	s := &Spec{version: ver}
	switch {
	case strings.HasPrefix(ver, "3.0."), ver == "3.0":
		s.ver = 3.0
	case strings.HasPrefix(ver, "3.1."), ver == "3.1":
		s.ver = 3.1
	default:
		return nil, fmt.Errorf("openapi version %q is not supported (3.0.x or 3.1.x)", ver)
	}
	model, err := doc.BuildV3Model()
	if err = ignoreCircular(err); err != nil {
		return nil, err
	}
	if model == nil {
		return nil, errors.New("not an OpenAPI document")
	}
	m := &model.Model
	c := &compiler{opts: config.NewValidationOptions(config.WithFormatAssertions(), config.WithOpenAPIMode()), ver: s.ver,
		filters: map[*base.Schema]*filterNode{}, nodes: map[*pbyaml.Node]*filterNode{}}
	s.bases = serverBases(m.Servers)
	s.byCount = map[int][]*pathEntry{}
	if m.Paths == nil || m.Paths.PathItems == nil {
		s.basesAll = s.bases
		return s, nil
	}
	for tmpl, item := range m.Paths.PathItems.FromOldest() {
		segs, err := parseTemplate(tmpl)
		if err != nil {
			return nil, fmt.Errorf("paths %q: %w", tmpl, err)
		}
		pe := &pathEntry{template: tmpl, segs: segs, rank: rankOf(segs), ops: map[string]*Operation{}}
		if len(item.Servers) > 0 {
			pe.bases = serverBases(item.Servers)
		}
		for method, op := range item.GetOperations().FromOldest() {
			o, err := c.operation(strings.ToUpper(method), tmpl, segs, item, op)
			if err != nil {
				return nil, fmt.Errorf("paths %q %s: %w", tmpl, strings.ToUpper(method), err)
			}
			if len(op.Servers) > 0 {
				o.bases = serverBases(op.Servers)
			}
			pe.ops[o.Method] = o
		}
		s.byCount[len(segs)] = append(s.byCount[len(segs)], pe)
	}
	set := map[string]bool{}
	for _, b := range s.bases {
		set[b] = true
	}
	for _, l := range s.byCount {
		sort.SliceStable(l, func(i, j int) bool { return l[i].rank < l[j].rank })
		for _, pe := range l {
			for _, b := range pe.bases {
				set[b] = true
			}
			for _, o := range pe.ops {
				for _, b := range o.bases {
					set[b] = true
				}
			}
		}
	}
	for b := range set {
		s.basesAll = append(s.basesAll, b)
	}
	sort.Slice(s.basesAll, func(i, j int) bool {
		if len(s.basesAll[i]) != len(s.basesAll[j]) {
			return len(s.basesAll[i]) > len(s.basesAll[j])
		}
		return s.basesAll[i] < s.basesAll[j]
	})
	return s, nil
}

// ignoreCircular drops circular-reference reports: recursive schemas (trees,
// linked lists) are legal and the schema compiler handles them.
func ignoreCircular(err error) error {
	if err == nil {
		return nil
	}
	var keep []error
	for _, e := range unwrapAll(err) {
		var re *index.ResolvingError
		if errors.As(e, &re) && re.CircularReference != nil {
			continue
		}
		keep = append(keep, e)
	}
	return errors.Join(keep...)
}

func unwrapAll(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unwrapAll(e)...)
		}
		return out
	}
	return []error{err}
}

// serverBases returns the path prefixes of servers[] URLs ("" for none or "/"),
// with {variables} replaced by their defaults.
func serverBases(servers []*v3.Server) []string {
	var out []string
	for _, sv := range servers {
		raw := sv.URL
		if sv.Variables != nil {
			for name, v := range sv.Variables.FromOldest() {
				raw = strings.ReplaceAll(raw, "{"+name+"}", v.Default)
			}
		}
		u, err := url.Parse(raw)
		if err != nil {
			continue
		}
		p := strings.TrimRight(u.Path, "/")
		if !strings.HasPrefix(p, "/") && p != "" {
			p = "/" + p
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		out = []string{""}
	}
	// Longest first, so /v1/admin wins over /v1.
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// compiler compiles the schemas of one document.
type compiler struct {
	opts    *config.ValidationOptions
	ver     float32
	filters map[*base.Schema]*filterNode
	nodes   map[*pbyaml.Node]*filterNode // the same schema reached by several references
}

// schema compiles a schema for validation in the given direction; nil for
// an absent schema.
func (c *compiler) schema(sp *base.SchemaProxy, purpose schema_validation.SchemaValidationPurpose) (*jsonschema.Schema, error) {
	if sp == nil {
		return nil, nil
	}
	sch, err := sp.BuildSchema()
	if err != nil {
		return nil, err
	}
	if sch == nil {
		return nil, errors.New("unresolved schema")
	}
	cs, err := schema_validation.CompileSchemaForValidation(sch, purpose, c.opts, c.ver)
	if err != nil {
		return nil, err
	}
	if cs == nil || cs.CompiledSchema == nil {
		return nil, errors.New("schema did not compile")
	}
	return cs.CompiledSchema, nil
}

// Operations returns every operation of the spec, sorted by path template
// and method.
func (s *Spec) Operations() []*Operation {
	var out []*Operation
	for _, entries := range s.byCount {
		for _, pe := range entries {
			for _, o := range pe.ops {
				out = append(out, o)
			}
		}
	}
	slices.SortFunc(out, func(a, b *Operation) int {
		if c := strings.Compare(a.PathTemplate, b.PathTemplate); c != 0 {
			return c
		}
		return strings.Compare(a.Method, b.Method)
	})
	return out
}

// Spec returns the spec the validator checks against.
func (v *Validator) Spec() *Spec { return v.s }
