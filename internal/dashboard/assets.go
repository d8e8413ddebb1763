package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"path"
	"strconv"
	"strings"
)

//go:embed assets
var assetFS embed.FS // read-only

// staticAssets are the files served under /dashboard/assets/ (the pages
// are templates, not assets).
var staticAssets = []string{"app.js", "app.css", "uPlot.iife.min.js", "uPlot.min.css", "uPlot-LICENSE.txt"}

// contentTypes by extension: nothing is sniffed.
var contentTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".txt": "text/plain; charset=utf-8",
}

type asset struct {
	body   []byte
	ctype  string
	etag   string
	hashed bool // served under its content-hashed name: immutable
}

// assetSet holds the static files by the names they are served under (the
// plain name and the content-hashed one, "app.1a2b3c4d5e6f.js") and the
// page templates, which link the hashed names.
type assetSet struct {
	files  map[string]asset
	hashed map[string]string // plain name → hashed name
	pages  *template.Template
}

func loadAssets() (*assetSet, error) {
	s := &assetSet{files: map[string]asset{}, hashed: map[string]string{}}
	for _, name := range staticAssets {
		body, err := assetFS.ReadFile("assets/" + name)
		if err != nil {
			return nil, fmt.Errorf("dashboard: asset %s: %w", name, err)
		}
		ext := path.Ext(name)
		sum := sha256.Sum256(body)
		h := hex.EncodeToString(sum[:6])
		a := asset{body: body, ctype: contentTypes[ext], etag: `"` + h + `"`}
		s.files[name] = a
		hn := strings.TrimSuffix(name, ext) + "." + h + ext
		a.hashed = true
		s.files[hn] = a
		s.hashed[name] = hn
	}
	funcs := template.FuncMap{"asset": func(name string) (string, error) {
		hn, ok := s.hashed[name]
		if !ok {
			return "", fmt.Errorf("no asset %q", name)
		}
		return Prefix + "assets/" + hn, nil
	}}
	pages, err := template.New("").Funcs(funcs).ParseFS(assetFS, "assets/*.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard: pages: %w", err)
	}
	s.pages = pages
	return s, nil
}

// serve answers GET/HEAD /dashboard/assets/{name}: hashed names are
// immutable for a year; plain names are revalidated with their ETag.
func (s *assetSet) serve(w http.ResponseWriter, r *http.Request, name string) {
	a, ok := s.files[name]
	if !ok {
		plain(w, http.StatusNotFound, "not found")
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("ETag", a.etag)
	if a.hashed {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(a.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(a.body)
	}
}

// etagMatch reports whether an If-None-Match list names etag (weak
// comparison, as RFC 9110 wants for If-None-Match).
func etagMatch(list, etag string) bool {
	if len(list) > 1024 {
		return false
	}
	for t := range strings.SplitSeq(list, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// pageData is what the page templates see.
type pageData struct {
	Message string // sign-in page: a fixed message, never client input
	CSRF    string // app page: the session's CSRF token
}

// render writes a page.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, name string, data pageData) {
	var buf bytes.Buffer
	if err := d.assets.pages.ExecuteTemplate(&buf, name, data); err != nil {
		d.log.Error("dashboard page", "page", name, "err", err)
		plain(w, http.StatusInternalServerError, "internal error")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}
