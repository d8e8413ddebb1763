// This file: security events (docs/events.md lists them).
//
// A security event is something an operator may have to act on: a failed
// authentication, a denial, a refused request, a config reload. Every event
// goes to a bounded ring that GET /admin/events serves, and to the log as one
// "security event" record. The ring keeps the newest Capacity events; the
// log is rate limited per (kind, client IP) so that an attacker cannot turn
// cheap bad requests into expensive log lines.
//
// Emit never blocks: the ring is lock-free (an atomic sequence number and one
// atomic pointer per slot), and with a nil Logger Emit allocates nothing but
// the event's own slot. Every field is gateway-written and bounded on the
// way in (see Emit).
package telemetry

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/breakwater/breakwater/internal/problem"
)

// EventKind is what happened. The set is fixed: Emit records any kind, but
// /admin/events filters only on these, and docs/events.md describes each.
type EventKind string

// The event kinds. Later capabilities add theirs here (and to kindSeverity
// and docs/events.md): "validation_failure", "anomaly".
const (
	EventAuthFailure        EventKind = "auth_failure"         // 401: no valid credential
	EventForbidden          EventKind = "forbidden"            // 403: authenticated, not allowed
	EventAmbiguousPath      EventKind = "ambiguous_path"       // 400: pathcanon refused the path
	EventMalformedRequest   EventKind = "malformed_request"    // 400/414/431: target, headers or message not acceptable
	EventBodyTooLarge       EventKind = "body_too_large"       // 413
	EventValidationFailed   EventKind = "validation_failed"    // 400/415: the request does not match its OpenAPI operation
	EventOverloaded         EventKind = "overloaded"           // 503: max_in_flight reached
	EventRateLimited        EventKind = "rate_limited"         // 429: a rate limit or quota
	EventConnectionRejected EventKind = "connection_rejected"  // a connection cap closed a connection at accept
	EventConfigReload       EventKind = "config_reload"        // a new config is running
	EventConfigReloadFailed EventKind = "config_reload_failed" // a reload was refused; the old config keeps running
	EventBan                EventKind = "ban"                  // a client was banned for a while (docs/bans.md)
	EventBanLifted          EventKind = "ban_lifted"           // an operator lifted a ban (DELETE /admin/bans/{key})

	// Anomalies (anomaly.go, docs/events.md): a client deviating from normal traffic.
	EventAnomalyCredentialStuffing EventKind = "anomaly_credential_stuffing" // many 401s
	EventAnomalyEnumeration        EventKind = "anomaly_enumeration"         // many 403/404s on routes with path parameters
	EventAnomalyScanning           EventKind = "anomaly_scanning"            // many 404s elsewhere
	EventAnomalyRateLimited        EventKind = "anomaly_rate_limited"        // many 429s
	EventAnomalySpike              EventKind = "anomaly_spike"               // far more requests than the client's baseline
)

// Severities, from least to most urgent. Records of "warning" and "high"
// events are logged at WARN, "info" at INFO.
const (
	SeverityInfo    = "info"
	SeverityWarning = "warning"
	SeverityHigh    = "high"
)

// kindSeverity is each kind's default severity (the order is the one of
// docs/events.md).
var kindSeverity = map[EventKind]string{
	EventAuthFailure:        SeverityWarning,
	EventForbidden:          SeverityWarning,
	EventAmbiguousPath:      SeverityWarning,
	EventMalformedRequest:   SeverityInfo,
	EventBodyTooLarge:       SeverityInfo,
	EventValidationFailed:   SeverityWarning,
	EventOverloaded:         SeverityWarning,
	EventRateLimited:        SeverityInfo,
	EventConnectionRejected: SeverityWarning,
	EventConfigReload:       SeverityInfo,
	EventConfigReloadFailed: SeverityHigh,
	EventBan:                SeverityHigh,
	EventBanLifted:          SeverityInfo,

	EventAnomalyCredentialStuffing: SeverityHigh,
	EventAnomalyEnumeration:        SeverityHigh,
	EventAnomalyScanning:           SeverityWarning,
	EventAnomalyRateLimited:        SeverityWarning,
	EventAnomalySpike:              SeverityWarning,
}

// EventKinds returns the known kinds, sorted.
func EventKinds() []EventKind {
	ks := make([]EventKind, 0, len(kindSeverity))
	for k := range kindSeverity {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// Known reports whether k is one of the kinds above.
func (k EventKind) Known() bool { _, ok := kindSeverity[k]; return ok }

// Severity is k's default severity ("warning" for an unknown kind).
func (k EventKind) Severity() string {
	if s, ok := kindSeverity[k]; ok {
		return s
	}
	return SeverityWarning
}

// Limits on an event's fields, applied by Emit.
const (
	MaxEventField   = 256 // bytes of Reason, Route, Consumer, …, and of each Detail value (cut at a UTF-8 boundary)
	MaxEventDetail  = 8   // Detail entries (the first 8 keys in sorted order are kept)
	maxEventKindLen = 64  // bytes of Kind, Severity and of each Detail key
)

// Event is one security event. Every text is written by the gateway
// (config names, fixed reasons, the client's IP address) — never a header,
// path or body a client chose.
type Event struct {
	Time          time.Time         `json:"time"` // zero: set by Emit
	Kind          EventKind         `json:"kind"`
	Severity      string            `json:"severity"` // info, warning or high; empty or other: the kind's default
	RequestID     string            `json:"request_id,omitempty"`
	ClientIP      string            `json:"client_ip,omitempty"` // a textual IP; "host:port" is cut to the host, anything else becomes "invalid"
	Route         string            `json:"route,omitempty"`     // route name from the config
	Consumer      string            `json:"consumer,omitempty"`  // consumer id, when known
	Authenticator string            `json:"authenticator,omitempty"`
	Reason        string            `json:"reason,omitempty"` // gateway-written text, never client input
	Detail        map[string]string `json:"detail,omitempty"` // optional, small; Emit keeps it: do not change it afterwards
}

// EventsOptions configure NewEvents.
type EventsOptions struct {
	Capacity int              // events kept (default 1000)
	Logger   *slog.Logger     // where "security event" records go (nil: not logged)
	Now      func() time.Time // clock (default time.Now); tests inject one
	// OnEmit, when set, is called with every event after it is recorded
	// (bounded, its defaults filled), on the goroutine that called Emit. It
	// must not block: Webhook.Send is one.
	OnEmit func(Event)
}

// Log flood protection: per (kind, client IP), at most logPerSecond records
// a second; the next record logged for that pair carries "suppressed", the
// number left out. At most logKeys pairs are tracked a second; pairs beyond
// share one allowance. The ring records every event regardless.
const (
	logPerSecond = 10
	logKeys      = 10000
)

// Events is the security event stream: a bounded ring and a rate-limited
// log. Its methods are safe for concurrent use.
type Events struct {
	ring   []atomic.Pointer[eventSlot]
	next   atomic.Uint64 // events emitted so far; event n (1-based) lives in ring[(n-1)%len(ring)]
	log    *slog.Logger
	now    func() time.Time
	onEmit func(Event)

	mu        sync.Mutex // guards the log limiter below
	second    int64      // the Unix second the counts are for
	counts    map[logKey]*logCount
	overflow  logCount // pairs that found the map full
	flushed   uint64   // suppressed counts of pairs that went quiet, for the next summary record
	flushKeys int
}

type eventSlot struct {
	seq uint64
	ev  Event
}

type logKey struct {
	kind EventKind
	ip   string
}

type logCount struct {
	logged     int // records logged this second
	suppressed uint64
}

// NewEvents returns an empty event stream.
func NewEvents(o EventsOptions) *Events {
	if o.Capacity <= 0 {
		o.Capacity = 1000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Events{
		ring:   make([]atomic.Pointer[eventSlot], o.Capacity),
		log:    o.Logger,
		now:    o.Now,
		onEmit: o.OnEmit,
		counts: make(map[logKey]*logCount),
	}
}

// Capacity is the number of events the ring keeps.
func (e *Events) Capacity() int { return len(e.ring) }

// Overwritten is the number of events pushed out of the ring by newer ones
// since the start ("dropped" at /admin/events).
func (e *Events) Overwritten() uint64 {
	if n, c := e.next.Load(), uint64(len(e.ring)); n > c {
		return n - c
	}
	return 0
}

// Emit records ev. It never blocks on a reader and, with a nil Logger,
// allocates only the ring slot holding ev (a field longer than its limit
// is copied when cut, so the ring never pins a large string). A zero Time
// is set to now; Time is kept in UTC; Severity defaults to the kind's;
// texts are cut to MaxEventField bytes, Detail to MaxEventDetail entries.
func (e *Events) Emit(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = e.now()
	}
	ev.Time = ev.Time.UTC() // also drops the monotonic reading
	ev.Kind = EventKind(bound(string(ev.Kind), maxEventKindLen))
	switch ev.Severity {
	case SeverityInfo, SeverityWarning, SeverityHigh:
	default:
		ev.Severity = ev.Kind.Severity()
	}
	ev.ClientIP = textualIP(ev.ClientIP)
	ev.RequestID = bound(ev.RequestID, MaxEventField)
	ev.Route = bound(ev.Route, MaxEventField)
	ev.Consumer = bound(ev.Consumer, MaxEventField)
	ev.Authenticator = bound(ev.Authenticator, MaxEventField)
	ev.Reason = bound(ev.Reason, MaxEventField)
	ev.Detail = boundDetail(ev.Detail)

	s := &eventSlot{ev: ev}
	s.seq = e.next.Add(1)
	p := &e.ring[(s.seq-1)%uint64(len(e.ring))]
	for {
		// A writer that lapped this one (Capacity events later) may have
		// stored first: its event is newer, keep it.
		old := p.Load()
		if old != nil && old.seq > s.seq || p.CompareAndSwap(old, s) {
			break
		}
	}

	if e.log != nil {
		e.logEvent(&s.ev)
	}
	if e.onEmit != nil {
		e.onEmit(s.ev)
	}
}

// EventQuery selects events for List.
type EventQuery struct {
	Kind  EventKind // "": every kind
	Since time.Time // zero: any time; else events with Time at or after Since
	Limit int       // at most this many (≤ 0: 100; at most Capacity)
}

// DefaultEventLimit is the number of events List returns when the query has
// no Limit.
const DefaultEventLimit = 100

// List returns the events matching q, newest (last emitted) first. The
// events are copies, except Detail maps, which are shared: do not change
// them.
func (e *Events) List(q EventQuery) []Event {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultEventLimit
	}
	c := uint64(len(e.ring))
	limit = min(limit, int(c))
	n := e.next.Load()
	out := make([]Event, 0, min(uint64(limit), n))
	for seq := n; seq > 0 && n-seq < c && len(out) < limit; seq-- {
		s := e.ring[(seq-1)%c].Load()
		if s == nil || s.seq != seq {
			continue // not stored yet, or overwritten since n was read
		}
		if q.Kind != "" && s.ev.Kind != q.Kind || !q.Since.IsZero() && s.ev.Time.Before(q.Since) {
			continue
		}
		out = append(out, s.ev)
	}
	return out
}

// EventsResponse is the body of GET /admin/events.
type EventsResponse struct {
	Events  []Event `json:"events"`
	Dropped uint64  `json:"dropped"` // Overwritten(): events the ring no longer holds
}

// Handler serves GET /admin/events (it does not check the admin token: the
// admin listener does). Query parameters, each at most once: kind (a known
// kind), since (RFC 3339), limit (1…Capacity, default 100). Anything else
// is a 400 problem document saying which parameter is wrong.
func (e *Events) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			problem.Write(w, r, http.StatusMethodNotAllowed)
			return
		}
		q, msg := e.parseQuery(r.URL.RawQuery)
		if msg != "" {
			problem.WriteDetail(w, r, http.StatusBadRequest, msg)
			return
		}
		body, err := json.Marshal(EventsResponse{Events: e.List(q), Dropped: e.Overwritten()})
		if err != nil { // cannot happen: every field is a string, a time or a map of strings
			problem.Write(w, r, http.StatusInternalServerError)
			return
		}
		body = append(body, '\n')
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
	})
}

// parseQuery returns the query of a request, or a message for a 400 that
// names the parameter and never echoes its value.
func (e *Events) parseQuery(raw string) (EventQuery, string) {
	var q EventQuery
	if len(raw) > 1024 {
		return q, "query string: too long"
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return q, "query string: not valid URL encoding"
	}
	for name, vs := range vals {
		if len(vs) > 1 {
			return q, "query parameter '" + safeName(name) + "': given more than once"
		}
		v := vs[0]
		switch name {
		case "kind":
			if !EventKind(v).Known() {
				return q, "query parameter 'kind': unknown event kind (see docs/events.md)"
			}
			q.Kind = EventKind(v)
		case "since":
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return q, "query parameter 'since': must be an RFC 3339 time, e.g. 2006-01-02T15:04:05Z"
			}
			q.Since = t
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > len(e.ring) {
				return q, "query parameter 'limit': must be an integer from 1 to " + strconv.Itoa(len(e.ring))
			}
			q.Limit = n
		default:
			return q, "unknown query parameter (allowed: kind, since, limit)"
		}
	}
	return q, ""
}

// safeName is a known parameter name, or "?" (never echo client input).
func safeName(name string) string {
	switch name {
	case "kind", "since", "limit":
		return name
	}
	return "?"
}

// logEvent writes ev's record unless its (kind, client IP) pair is over its
// allowance this second.
func (e *Events) logEvent(ev *Event) {
	level := slog.LevelWarn
	if ev.Severity == SeverityInfo {
		level = slog.LevelInfo
	}
	ctx := context.Background()
	if !e.log.Enabled(ctx, level) {
		return
	}
	ok, suppressed, flushed, flushKeys := e.allow(ev.Kind, ev.ClientIP, ev.Time)
	if flushed > 0 {
		// Pairs that were suppressed and then went quiet: one summary
		// record a second at most, so nothing suppressed goes unreported.
		r := slog.NewRecord(ev.Time, slog.LevelWarn, "security events suppressed", 0)
		r.AddAttrs(slog.Uint64("suppressed", flushed), slog.Int("pairs", flushKeys))
		_ = e.log.Handler().Handle(ctx, r)
	}
	if !ok {
		return
	}
	r := slog.NewRecord(ev.Time, level, "security event", 0)
	r.AddAttrs(slog.String("kind", string(ev.Kind)), slog.String("severity", ev.Severity))
	for _, a := range [...]struct{ k, v string }{
		{"request_id", ev.RequestID}, {"client_ip", ev.ClientIP}, {"route", ev.Route},
		{"consumer", ev.Consumer}, {"authenticator", ev.Authenticator}, {"reason", ev.Reason},
	} {
		if a.v != "" {
			r.AddAttrs(slog.String(a.k, a.v))
		}
	}
	if len(ev.Detail) > 0 {
		keys := make([]string, 0, len(ev.Detail))
		for k := range ev.Detail {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		d := make([]any, 0, len(keys))
		for _, k := range keys {
			d = append(d, slog.String(k, ev.Detail[k]))
		}
		r.AddAttrs(slog.Group("detail", d...))
	}
	if suppressed > 0 {
		r.AddAttrs(slog.Uint64("suppressed", suppressed))
	}
	_ = e.log.Handler().Handle(ctx, r)
}

// allow counts one record of (kind, ip) at t. It reports whether to log it
// and, if so, how many records of the pair were left out since its last
// one; and the suppressed counts of pairs that went quiet without another
// record being logged (to be reported in a summary).
func (e *Events) allow(kind EventKind, ip string, t time.Time) (ok bool, suppressed, flushed uint64, flushKeys int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if sec := t.Unix(); sec != e.second {
		e.second = sec
		// A new second: forget pairs with nothing pending; keep for one
		// more second those suppressed after a record was logged (their
		// next record reports the count); flush those that already had
		// their second chance.
		for k, c := range e.counts {
			switch {
			case c.suppressed == 0:
				delete(e.counts, k)
			case c.logged == 0:
				e.flushed += c.suppressed
				e.flushKeys++
				delete(e.counts, k)
			default:
				c.logged = 0
			}
		}
		if e.overflow.suppressed > 0 && e.overflow.logged == 0 {
			e.flushed += e.overflow.suppressed
			e.flushKeys++
			e.overflow.suppressed = 0
		}
		e.overflow.logged = 0
		flushed, flushKeys = e.flushed, e.flushKeys
		e.flushed, e.flushKeys = 0, 0
	}
	c := e.counts[logKey{kind, ip}]
	if c == nil {
		if len(e.counts) < logKeys {
			c = &logCount{}
			e.counts[logKey{kind, ip}] = c
		} else {
			c = &e.overflow
		}
	}
	if c.logged >= logPerSecond {
		c.suppressed++
		return false, 0, flushed, flushKeys
	}
	c.logged++
	suppressed, c.suppressed = c.suppressed, 0
	return true, suppressed, flushed, flushKeys
}

// bound cuts s to at most n bytes at a UTF-8 boundary; a cut string is
// copied so that it does not keep a large one alive.
func bound(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return string([]byte(s[:i]))
}

// boundDetail returns d, or a bounded copy when d is over a limit.
func boundDetail(d map[string]string) map[string]string {
	if len(d) == 0 {
		return nil
	}
	over := len(d) > MaxEventDetail
	for k, v := range d {
		if over {
			break
		}
		over = len(k) > maxEventKindLen || len(v) > MaxEventField
	}
	if !over {
		return d
	}
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make(map[string]string, min(len(keys), MaxEventDetail))
	for _, k := range keys {
		if len(out) == MaxEventDetail {
			break
		}
		out[bound(k, maxEventKindLen)] = bound(d[k], MaxEventField)
	}
	return out
}

// textualIP returns s if it is an IP address, its address part if it is an
// "address:port", and "invalid" otherwise ("" stays ""). It does not
// allocate for addresses without a zone.
func textualIP(s string) string {
	if s == "" {
		return ""
	}
	if len(s) > 64 {
		return "invalid"
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return s
	}
	if _, err := netip.ParseAddrPort(s); err == nil {
		host := s[:strings.LastIndexByte(s, ':')]
		if len(host) > 1 && host[0] == '[' {
			host = host[1 : len(host)-1]
		}
		return host
	}
	return "invalid"
}
