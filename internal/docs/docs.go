// Package docs is the gated documentation portal: each authenticated
// consumer gets, at {docs.path}/openapi.json, the merged OpenAPI document of
// docs.specs with only the operations it may call, and at {docs.path}/ a
// Swagger UI page that renders it. The viewer is embedded in the binary and
// served from {docs.path}/assets/, so the page works offline under a strict
// Content-Security-Policy (script-src 'self', no inline script). See
// docs/portal.md.
package docs

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/breakwater/breakwater/internal/authn"
	"github.com/breakwater/breakwater/internal/problem"
	"github.com/breakwater/breakwater/internal/reqctx"
)

//go:embed assets/index.html assets/init.js assets/swagger-ui-bundle.js assets/swagger-ui.css
//go:embed assets/LICENSE assets/NOTICE assets/swagger-ui-bundle.js.LICENSE.txt
var assetFS embed.FS

// Security headers of the portal's answers.
const (
	// PageCSP is the Content-Security-Policy of the HTML page: scripts,
	// styles and fonts only from the gateway, no inline script, no framing.
	PageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; " +
		"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	// DataCSP is the Content-Security-Policy of the JSON document and the assets.
	DataCSP = "default-src 'none'; frame-ancestors 'none'"
)

// cacheEntries bounds the rendered documents kept, one per distinct set of
// operations a consumer may call.
const cacheEntries = 32

// Options configure a Portal.
type Options struct {
	// Path is docs.path, such as "/docs": the page is Path+"/", the
	// document Path+"/openapi.json", the viewer Path+"/assets/…".
	Path string
	// Specs are the documents of docs.specs (see ReadSpecs). Several specs
	// are merged into one document; see merge for the rules.
	Specs []Spec
	// Allowed reports whether the consumer may call method (uppercase) on
	// pathTemplate, the gateway path of an operation: the path of the spec's
	// first server URL followed by the spec's path ("/v1" + "/orders/{id}").
	// It is called once per operation per request and must not depend on
	// anything but its arguments. Required.
	Allowed func(consumer *authn.Consumer, method, pathTemplate string) bool
}

// Portal serves the documentation. It is safe for concurrent use; build a
// new one on reload.
type Portal struct {
	base    string // Path without a trailing slash ("" for "/")
	allowed func(*authn.Consumer, string, string) bool
	spec    *merged
	page    []byte
	assets  map[string]asset

	mu    sync.Mutex
	cache map[string][]byte // allow bitmap → rendered document
	order []string          // cache keys, oldest first
}

type asset struct {
	data        []byte
	contentType string
	etag        string
	gz          *gzipped // compressed on first use; nil for small files
}

// gzipped is an asset's gzip encoding, made once, when first asked for.
type gzipped struct {
	once sync.Once
	data []byte
}

func (g *gzipped) get(plain []byte) []byte {
	g.once.Do(func() {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.DefaultCompression)
		_, _ = zw.Write(plain)
		if zw.Close() == nil {
			g.data = b.Bytes()
		}
	})
	return g.data
}

// acceptsGzip reports whether Accept-Encoding lists gzip without q=0.
func acceptsGzip(h http.Header) bool {
	for _, line := range h["Accept-Encoding"] {
		for part := range strings.SplitSeq(line, ",") {
			name, params, _ := strings.Cut(part, ";")
			if strings.EqualFold(strings.TrimSpace(name), "gzip") {
				q := strings.ReplaceAll(strings.ToLower(params), " ", "")
				return !strings.HasPrefix(q, "q=0") || strings.HasPrefix(q, "q=0.") && strings.Trim(q[4:], "0") != ""
			}
		}
	}
	return false
}

// New merges the specs and prepares the portal. It fails when a spec does
// not parse, is not OpenAPI 3, or conflicts with another (same path, or a
// component of the same name with other content).
func New(o Options) (*Portal, error) {
	if o.Allowed == nil {
		return nil, errors.New("docs: Options.Allowed is required")
	}
	if !strings.HasPrefix(o.Path, "/") {
		return nil, fmt.Errorf("docs.path %q: must start with /", o.Path)
	}
	spec, err := merge(o.Specs)
	if err != nil {
		return nil, fmt.Errorf("docs.specs: %w", err)
	}
	p := &Portal{base: strings.TrimRight(o.Path, "/"), allowed: o.Allowed, spec: spec,
		assets: map[string]asset{}, cache: map[string][]byte{}}
	if p.page, err = assetFS.ReadFile("assets/index.html"); err != nil {
		return nil, fmt.Errorf("docs: embedded page: %w", err)
	}
	for name, ct := range map[string]string{
		"init.js":                          "text/javascript; charset=utf-8",
		"swagger-ui-bundle.js":             "text/javascript; charset=utf-8",
		"swagger-ui.css":                   "text/css; charset=utf-8",
		"LICENSE":                          "text/plain; charset=utf-8",
		"NOTICE":                           "text/plain; charset=utf-8",
		"swagger-ui-bundle.js.LICENSE.txt": "text/plain; charset=utf-8",
	} {
		data, err := assetFS.ReadFile("assets/" + name)
		if err != nil {
			return nil, fmt.Errorf("docs: embedded asset: %w", err)
		}
		sum := sha256.Sum256(data)
		a := asset{data: data, contentType: ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		if len(data) > 16<<10 {
			a.gz = &gzipped{}
		}
		p.assets[name] = a
	}
	return p, nil
}

// Handles reports whether the canonical path belongs to the portal: Path
// itself or anything under Path+"/".
func (p *Portal) Handles(path string) bool {
	rest, ok := strings.CutPrefix(path, p.base)
	return ok && (rest == "" || rest[0] == '/')
}

// Public reports whether the canonical path is one of the viewer's files,
// which hold nothing about the API: the gateway may serve them without
// authentication (a browser does not send an API key header with them).
func (p *Portal) Public(path string) bool {
	name, ok := strings.CutPrefix(path, p.base+"/assets/")
	if !ok {
		return false
	}
	_, ok = p.assets[name]
	return ok
}

// ServeHTTP answers GET and HEAD: Path → a redirect to Path+"/";
// Path+"/" → the page; Path+"/openapi.json" → the consumer's document;
// Path+"/assets/NAME" → an embedded file. The page and the document need
// the consumer the gateway authenticated (reqctx); without one they answer
// 401. Anything else under Path is a 404, another method a 405.
func (p *Portal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := reqctx.From(r)
	path := st.Path
	if path == "" {
		path = r.URL.Path
	}
	rest, ok := strings.CutPrefix(path, p.base)
	if !ok || (rest != "" && rest[0] != '/') {
		problem.Write(w, r, http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		problem.Write(w, r, http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if name, ok := strings.CutPrefix(rest, "/assets/"); ok {
		a, ok := p.assets[name]
		if !ok {
			problem.Write(w, r, http.StatusNotFound)
			return
		}
		h.Set("Content-Type", a.contentType)
		h.Set("Content-Security-Policy", DataCSP)
		h.Set("Cache-Control", "max-age=3600")
		data, etag := a.data, a.etag
		if a.gz != nil {
			h.Set("Vary", "Accept-Encoding")
			if gz := a.gz.get(a.data); gz != nil && acceptsGzip(r.Header) {
				data, etag = gz, strings.TrimSuffix(etag, `"`)+`-gz"`
				h.Set("Content-Encoding", "gzip")
			}
		}
		h.Set("ETag", etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
		return
	}
	switch rest {
	case "":
		h.Set("Location", p.base+"/")
		w.WriteHeader(http.StatusPermanentRedirect)
		return
	case "/", "/openapi.json":
	default:
		problem.Write(w, r, http.StatusNotFound)
		return
	}
	c := st.Consumer
	if c == nil {
		problem.Unauthorized(w, r, "")
		return
	}
	h.Set("Cache-Control", "no-store")
	if rest == "/" {
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", PageCSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		_, _ = w.Write(p.page)
		return
	}
	body, err := p.Document(c)
	if err != nil {
		st.Reason = "docs: rendering the document failed"
		problem.Write(w, r, http.StatusInternalServerError)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Security-Policy", DataCSP)
	_, _ = w.Write(body)
}

// Document returns the consumer's OpenAPI document as JSON: the merged
// specs with only the operations Allowed lets it call, paths left without
// an operation removed, and only the components, tags and security schemes
// the remaining operations use. The slice is shared: do not modify it.
func (p *Portal) Document(c *authn.Consumer) ([]byte, error) {
	ops := p.spec.ops
	allow := make([]bool, len(ops))
	key := make([]byte, (len(ops)+7)/8)
	for i, op := range ops {
		if p.allowed(c, op.method, op.path) {
			allow[i] = true
			key[i/8] |= 1 << (i % 8)
		}
	}
	p.mu.Lock()
	body, ok := p.cache[string(key)]
	p.mu.Unlock()
	if ok {
		return body, nil
	}
	body, err := p.spec.render(allow)
	if err != nil {
		return nil, fmt.Errorf("rendering the documentation: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.cache[string(key)]; !ok {
		if len(p.order) >= cacheEntries {
			delete(p.cache, p.order[0])
			p.order = append(p.order[:0], p.order[1:]...)
		}
		p.cache[string(key)] = body
		p.order = append(p.order, string(key))
	}
	return body, nil
}
