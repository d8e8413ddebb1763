package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/breakwater/breakwater/internal/audit"
	"github.com/breakwater/breakwater/internal/telemetry"
)

// Bounds of the API's query parameters.
const (
	DefaultEvents = 50  // events when the request names no limit
	MaxEvents     = 500 // the largest limit
	minWindow     = 5 * time.Second
	maxWindow     = ScrapeInterval * (ScrapeHistory - 1)
)

// Available wraps what an optional source returned: Data is absent when
// the source is not wired (Available false).
type Available struct {
	Available bool `json:"available"`
	Data      any  `json:"data,omitempty"`
}

// AuditView is the "data" of GET /dashboard/api/audit.
type AuditView struct {
	Report *audit.Report `json:"report,omitempty"`
	Error  string        `json:"error,omitempty"` // a fixed text when the audit failed (the cause is logged)
	At     time.Time     `json:"at"`              // when the report was made
}

// api serves GET /dashboard/api/{name}: session required; same-origin
// fetches only (Sec-Fetch-Site, when sent).
func (d *Dashboard) api(w http.ResponseWriter, r *http.Request, name string) {
	if _, _, ok := d.sessions.lookup(r, d.now(), d.tokenHash()); !ok {
		writeJSON(w, r, http.StatusUnauthorized, map[string]string{"error": "sign in at " + Prefix})
		return
	}
	if v := r.Header.Values("Sec-Fetch-Site"); len(v) > 0 && (len(v) > 1 || v[0] != "same-origin") {
		d.refuse(w, r, "API request that is not same-origin")
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil || len(r.URL.RawQuery) > 256 {
		writeJSON(w, r, http.StatusBadRequest, map[string]string{"error": "bad query string"})
		return
	}
	switch name {
	case "summary":
		window := DefaultWindow
		if len(q) > 1 || len(q) == 1 && !q.Has("window") {
			writeJSON(w, r, http.StatusBadRequest, map[string]string{"error": "unknown query parameter (allowed: window)"})
			return
		}
		if vs := q["window"]; len(vs) > 0 {
			n, err := strconv.Atoi(vs[0])
			if len(vs) > 1 || err != nil || time.Duration(n)*time.Second < minWindow || time.Duration(n)*time.Second > maxWindow {
				writeJSON(w, r, http.StatusBadRequest, map[string]string{"error": "window: seconds from " +
					strconv.Itoa(int(minWindow/time.Second)) + " to " + strconv.Itoa(int(maxWindow/time.Second))})
				return
			}
			window = time.Duration(n) * time.Second
		}
		d.ensureScraping()
		d.scrapeNow()
		s := summarize(d.scrapes.snapshot(), window)
		s.TopConsumers = d.top.top(TopConsumers)
		writeJSON(w, r, http.StatusOK, s)
	case "events":
		limit := DefaultEvents
		if len(q) > 1 || len(q) == 1 && !q.Has("limit") {
			writeJSON(w, r, http.StatusBadRequest, map[string]string{"error": "unknown query parameter (allowed: limit)"})
			return
		}
		if vs := q["limit"]; len(vs) > 0 {
			n, err := strconv.Atoi(vs[0])
			if len(vs) > 1 || err != nil || n < 1 || n > MaxEvents {
				writeJSON(w, r, http.StatusBadRequest, map[string]string{"error": "limit: an integer from 1 to " + strconv.Itoa(MaxEvents)})
				return
			}
			limit = n
		}
		if d.o.Events == nil {
			writeJSON(w, r, http.StatusOK, Available{})
			return
		}
		evs := d.o.Events(limit)
		if len(evs) > limit {
			evs = evs[:limit]
		}
		if evs == nil {
			evs = []telemetry.Event{}
		}
		writeJSON(w, r, http.StatusOK, Available{Available: true, Data: evs})
	case "inventory", "audit", "config":
		if len(q) > 0 {
			writeJSON(w, r, http.StatusBadRequest, map[string]string{"error": "no query parameters allowed"})
			return
		}
		switch name {
		case "inventory":
			writeJSON(w, r, http.StatusOK, optional(d.o.Inventory))
		case "config":
			writeJSON(w, r, http.StatusOK, optional(d.o.Config))
		default:
			if d.o.Audit == nil {
				writeJSON(w, r, http.StatusOK, Available{})
				return
			}
			writeJSON(w, r, http.StatusOK, Available{Available: true, Data: d.auditView(r.Context())})
		}
	default:
		writeJSON(w, r, http.StatusNotFound, map[string]string{"error": "no such endpoint"})
	}
}

func optional(f func() any) Available {
	if f == nil {
		return Available{}
	}
	v := f()
	return Available{Available: v != nil, Data: v}
}

// auditView returns the cached audit report, or runs the audit when the
// cache is older than AuditCacheTTL. One audit runs at a time; it is not
// cut short when the request that started it goes away.
func (d *Dashboard) auditView(ctx context.Context) AuditView {
	d.auditMu.Lock()
	defer d.auditMu.Unlock()
	now := d.now()
	if d.auditAt.IsZero() || now.Sub(d.auditAt) >= AuditCacheTTL || now.Before(d.auditAt) {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
		rep, err := d.o.Audit(actx)
		cancel()
		d.auditRep, d.auditErr = rep, err
		if err == nil && rep == nil {
			d.auditErr = errors.New("no report")
		}
		d.auditAt = now
		if d.auditErr != nil {
			d.log.Warn("dashboard: audit of the running config", "err", d.auditErr)
		}
	}
	if d.auditErr != nil {
		return AuditView{Error: "the audit failed (see the log)", At: d.auditAt.UTC()}
	}
	return AuditView{Report: d.auditRep, At: d.auditAt.UTC()}
}

// writeJSON writes v with Cache-Control: no-store.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"internal error"}` + "\n")
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}
