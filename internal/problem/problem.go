// Package problem writes every error response of the gateway as an RFC 9457
// problem document. It is the only place that writes error bodies: clients
// see a status, a title and a request id — never an internal error string.
package problem

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/breakwater/breakwater/internal/reqctx"
)

// ContentType is the media type of problem documents.
const ContentType = "application/problem+json"

// Write sends a problem document with the standard title for status.
func Write(w http.ResponseWriter, r *http.Request, status int) {
	write(w, reqctx.From(r).RequestID, status, "")
}

// WriteDetail is Write with a detail message. The detail must be written by
// the gateway (e.g. "query parameter 'limit': must be ≤ 100") and must never
// echo client input or an internal error.
func WriteDetail(w http.ResponseWriter, r *http.Request, status int, detail string) {
	write(w, reqctx.From(r).RequestID, status, detail)
}

// Unauthorized sends the uniform 401: the body is byte-identical for every
// reason (apart from request_id), so a client learns nothing from it.
func Unauthorized(w http.ResponseWriter, r *http.Request, wwwAuthenticate string) {
	if wwwAuthenticate != "" {
		w.Header().Set("WWW-Authenticate", wwwAuthenticate)
	}
	write(w, reqctx.From(r).RequestID, http.StatusUnauthorized, "")
}

// Body returns the problem document for status as bytes, for callers that
// must replace a body rather than write a response (e.g. masking an upstream
// error inside a reverse proxy).
func Body(requestID string, status int) []byte {
	return appendBody(make([]byte, 0, 128), requestID, status, "")
}

func write(w http.ResponseWriter, requestID string, status int, detail string) {
	body := appendBody(make([]byte, 0, 128), requestID, status, detail)
	h := w.Header()
	h.Del("Content-Encoding")
	h.Del("Content-Range")
	h.Del("ETag")
	h.Del("Last-Modified")
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func appendBody(b []byte, requestID string, status int, detail string) []byte {
	title := http.StatusText(status)
	if title == "" {
		title = "Error"
	}
	b = append(b, `{"type":"about:blank","title":`...)
	b = strconv.AppendQuote(b, title)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	if detail != "" {
		d, _ := json.Marshal(detail)
		b = append(b, `,"detail":`...)
		b = append(b, d...)
	}
	b = append(b, `,"request_id":`...)
	b = strconv.AppendQuote(b, requestID)
	return append(b, '}')
}
