package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/breakwater/breakwater/internal/problem"
)

// clock is an injected clock, safe for concurrent use.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }

func reasons(evs []Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Reason)
	}
	return out
}

// TestEventKinds pins the kinds and their severities: docs/events.md and
// every dashboard or alert filtering on them depend on these strings.
func TestEventKinds(t *testing.T) {
	want := map[EventKind]string{
		"auth_failure":         "warning",
		"forbidden":            "warning",
		"ambiguous_path":       "warning",
		"malformed_request":    "info",
		"body_too_large":       "info",
		"validation_failed":    "warning",
		"overloaded":           "warning",
		"rate_limited":         "info",
		"connection_rejected":  "warning",
		"config_reload":        "info",
		"config_reload_failed": "high",
		"ban":                  "high",
		"ban_lifted":           "info",

		"anomaly_credential_stuffing": "high",
		"anomaly_enumeration":         "high",
		"anomaly_scanning":            "warning",
		"anomaly_rate_limited":        "warning",
		"anomaly_spike":               "warning",
	}
	got := map[EventKind]string{}
	for _, k := range EventKinds() {
		got[k] = k.Severity()
		if !k.Known() {
			t.Errorf("%s not Known", k)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("kinds\n got %v\nwant %v", got, want)
	}
	if !slices.IsSorted(EventKinds()) {
		t.Error("EventKinds not sorted")
	}
	if EventKind("nope").Known() || EventKind("nope").Severity() != SeverityWarning {
		t.Error("unknown kind")
	}
}

func TestEventRingWrapsNewestFirst(t *testing.T) {
	e := NewEvents(EventsOptions{Capacity: 4})
	if got := e.List(EventQuery{}); got == nil || len(got) != 0 || e.Overwritten() != 0 {
		t.Fatalf("empty ring: %v, %d", got, e.Overwritten())
	}
	for i := 1; i <= 3; i++ {
		e.Emit(Event{Kind: EventAuthFailure, Reason: strconv.Itoa(i)})
	}
	if got := reasons(e.List(EventQuery{})); !slices.Equal(got, []string{"3", "2", "1"}) || e.Overwritten() != 0 {
		t.Fatalf("before wrap: %v, overwritten %d", got, e.Overwritten())
	}
	for i := 4; i <= 10; i++ {
		e.Emit(Event{Kind: EventAuthFailure, Reason: strconv.Itoa(i)})
	}
	if got := reasons(e.List(EventQuery{})); !slices.Equal(got, []string{"10", "9", "8", "7"}) {
		t.Fatalf("after wrap: %v", got)
	}
	if e.Overwritten() != 6 || e.Capacity() != 4 {
		t.Fatalf("overwritten %d, capacity %d", e.Overwritten(), e.Capacity())
	}
	if got := reasons(e.List(EventQuery{Limit: 2})); !slices.Equal(got, []string{"10", "9"}) {
		t.Fatalf("limit 2: %v", got)
	}
	if got := e.List(EventQuery{Limit: 1000}); len(got) != 4 {
		t.Fatalf("limit over capacity: %d events", len(got))
	}
	if NewEvents(EventsOptions{}).Capacity() != 1000 {
		t.Fatal("default capacity")
	}
}

func TestEventDefaults(t *testing.T) {
	clk := newClock()
	e := NewEvents(EventsOptions{Now: clk.Now})
	paris := time.FixedZone("CET", 3600)
	given := time.Date(2026, 1, 2, 3, 4, 5, 0, paris)
	e.Emit(Event{Kind: EventConfigReloadFailed})                          // time from the clock, severity high
	e.Emit(Event{Kind: EventConfigReload, Severity: "high", Time: given}) // kept, in UTC
	e.Emit(Event{Kind: EventForbidden, Severity: "CRITICAL!!"})           // not a severity: the kind's
	e.Emit(Event{Kind: "made_up", Time: time.Now()})                      // unknown kinds are recorded too
	evs := e.List(EventQuery{})
	if evs[3].Time != clk.Now() || evs[3].Severity != SeverityHigh {
		t.Errorf("defaults: %+v", evs[3])
	}
	if !evs[2].Time.Equal(given) || evs[2].Time.Location() != time.UTC || evs[2].Severity != SeverityHigh {
		t.Errorf("given: %+v", evs[2])
	}
	if evs[1].Severity != SeverityWarning {
		t.Errorf("bad severity: %+v", evs[1])
	}
	if evs[0].Kind != "made_up" || evs[0].Time != evs[0].Time.Round(0) {
		t.Errorf("unknown kind, or monotonic reading kept: %+v", evs[0])
	}
}

func TestEventQuery(t *testing.T) {
	clk := newClock()
	e := NewEvents(EventsOptions{Capacity: 500, Now: clk.Now})
	t0 := clk.Now()
	for i := range 300 {
		k := EventAuthFailure
		if i%3 == 0 {
			k = EventForbidden
		}
		e.Emit(Event{Kind: k, Reason: strconv.Itoa(i)})
		clk.Add(time.Second)
	}
	if got := e.List(EventQuery{}); len(got) != DefaultEventLimit || got[0].Reason != "299" {
		t.Fatalf("default limit: %d, first %q", len(got), got[0].Reason)
	}
	got := e.List(EventQuery{Kind: EventForbidden, Limit: 500})
	if len(got) != 100 || got[0].Reason != "297" || got[99].Reason != "0" {
		t.Fatalf("kind: %d %q…%q", len(got), got[0].Reason, got[len(got)-1].Reason)
	}
	for _, ev := range got {
		if ev.Kind != EventForbidden {
			t.Fatalf("kind filter let %v through", ev)
		}
	}
	got = e.List(EventQuery{Since: t0.Add(290 * time.Second), Limit: 500}) // at or after
	if r := reasons(got); !slices.Equal(r, []string{"299", "298", "297", "296", "295", "294", "293", "292", "291", "290"}) {
		t.Fatalf("since: %v", r)
	}
	got = e.List(EventQuery{Kind: EventForbidden, Since: t0.Add(290 * time.Second), Limit: 2})
	if r := reasons(got); !slices.Equal(r, []string{"297", "294"}) {
		t.Fatalf("kind+since+limit: %v", r)
	}
	if got := e.List(EventQuery{Kind: EventOverloaded}); len(got) != 0 {
		t.Fatalf("no overloaded events, got %d", len(got))
	}
}

func TestEventTruncation(t *testing.T) {
	e := NewEvents(EventsOptions{})
	long := strings.Repeat("é", 200) // 400 bytes, 2-byte runes: a cut at 256 lands on a boundary
	odd := "x" + long                // a cut at 256 lands inside a rune: back off one byte
	detail := map[string]string{}
	for i := range 12 {
		detail[fmt.Sprintf("k%02d", i)] = "v"
	}
	detail["k00"] = long
	detail[strings.Repeat("K", 100)] = "long key" // sorts before k00: kept, key cut to 64
	e.Emit(Event{
		Kind: EventKind(strings.Repeat("k", 100)), RequestID: long, ClientIP: "10.0.0.1", Route: odd,
		Consumer: long, Authenticator: long, Reason: long, Detail: detail,
	})
	ev := e.List(EventQuery{})[0]
	for name, s := range map[string]string{"request_id": ev.RequestID, "route": ev.Route, "consumer": ev.Consumer, "authenticator": ev.Authenticator, "reason": ev.Reason} {
		if len(s) > MaxEventField || len(s) < MaxEventField-3 || !utf8.ValidString(s) {
			t.Errorf("%s: %d bytes, valid %v", name, len(s), utf8.ValidString(s))
		}
	}
	if len(ev.Route) != 255 || len(ev.Reason) != 256 || len(ev.Kind) != 64 {
		t.Errorf("cut points: route %d, reason %d, kind %d", len(ev.Route), len(ev.Reason), len(ev.Kind))
	}
	if len(ev.Detail) != MaxEventDetail {
		t.Fatalf("detail: %d entries", len(ev.Detail))
	}
	want := []string{strings.Repeat("K", 64), "k00", "k01", "k02", "k03", "k04", "k05", "k06"}
	var keys []string
	for k, v := range ev.Detail {
		keys = append(keys, k)
		if len(v) > MaxEventField {
			t.Errorf("detail %s: %d bytes", k, len(v))
		}
	}
	slices.Sort(keys)
	if !slices.Equal(keys, want) {
		t.Errorf("detail keys %v", keys)
	}
	if len(detail) != 13 || len(detail["k00"]) != 400 {
		t.Error("the caller's map was changed")
	}

	// A small Detail is kept as it is (no copy).
	small := map[string]string{"limit": "max_in_flight"}
	e.Emit(Event{Kind: EventOverloaded, Detail: small})
	if got := e.List(EventQuery{Limit: 1})[0].Detail; fmt.Sprintf("%p", got) != fmt.Sprintf("%p", small) {
		t.Error("small detail copied")
	}
	e.Emit(Event{Kind: EventOverloaded, Detail: map[string]string{}})
	if got := e.List(EventQuery{Limit: 1})[0].Detail; got != nil {
		t.Error("empty detail kept")
	}
}

func TestEventClientIP(t *testing.T) {
	for in, want := range map[string]string{
		"":                       "",
		"192.0.2.1":              "192.0.2.1",
		"2001:db8::1":            "2001:db8::1",
		"fe80::1%eth0":           "fe80::1%eth0",
		"192.0.2.1:443":          "192.0.2.1",
		"[2001:db8::1]:8443":     "2001:db8::1",
		"example.com":            "invalid",
		"192.0.2.1, 198.51.100.": "invalid",
		"<script>":               "invalid",
		strings.Repeat("1", 500): "invalid",
	} {
		e := NewEvents(EventsOptions{Capacity: 1})
		e.Emit(Event{Kind: EventAuthFailure, ClientIP: in})
		if got := e.List(EventQuery{})[0].ClientIP; got != want {
			t.Errorf("%.20q: got %q, want %q", in, got, want)
		}
	}
}

// TestEventsConcurrent runs with -race: writers from many goroutines while
// List and the handler read. Every listed event must be whole (its fields
// agree with each other) and each writer's events must come newest first.
func TestEventsConcurrent(t *testing.T) {
	const writers, each = 16, 2000
	e := NewEvents(EventsOptions{Capacity: 256, Logger: slog.New(slog.DiscardHandler)})
	h := e.Handler()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	check := func(evs []Event) {
		last := map[string]int{}
		for _, ev := range evs {
			w, n, ok := strings.Cut(ev.Reason, "/")
			i, err := strconv.Atoi(n)
			if !ok || err != nil || ev.Route != "r"+w || ev.RequestID != ev.Reason || ev.Detail["n"] != n {
				t.Errorf("torn event %+v", ev)
				return
			}
			if prev, seen := last[w]; seen && i >= prev {
				t.Errorf("writer %s: %d listed after %d", w, i, prev)
				return
			}
			last[w] = i
		}
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				check(e.List(EventQuery{Limit: 256}))
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", "/admin/events?limit=50&kind=auth_failure", nil))
				var body EventsResponse
				if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &body) != nil {
					t.Errorf("handler: %d %s", rec.Code, rec.Body)
					return
				}
				check(body.Events)
			}
		}()
	}
	var ww sync.WaitGroup
	for w := range writers {
		ww.Add(1)
		go func() {
			defer ww.Done()
			for i := range each {
				r := fmt.Sprintf("%d/%d", w, i)
				e.Emit(Event{Kind: EventAuthFailure, ClientIP: fmt.Sprintf("10.0.0.%d", w), Route: fmt.Sprintf("r%d", w),
					RequestID: r, Reason: r, Detail: map[string]string{"n": strconv.Itoa(i)}})
			}
		}()
	}
	ww.Wait()
	close(stop)
	wg.Wait()
	evs := e.List(EventQuery{Limit: 256})
	if len(evs) != 256 || e.Overwritten() != writers*each-256 {
		t.Fatalf("after: %d events, overwritten %d", len(evs), e.Overwritten())
	}
	check(evs)
}

func serve(e *Events, method, target string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.Handler().ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}

func TestEventsHandler(t *testing.T) {
	clk := newClock()
	e := NewEvents(EventsOptions{Capacity: 3, Now: clk.Now})

	rec := serve(e, "GET", "/admin/events")
	if rec.Code != 200 || rec.Body.String() != `{"events":[],"dropped":0}`+"\n" {
		t.Fatalf("empty: %d %s", rec.Code, rec.Body)
	}
	if rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("headers %v", rec.Header())
	}

	e.Emit(Event{Kind: EventConfigReload, Reason: "old"})
	clk.Add(time.Minute)
	e.Emit(Event{Kind: EventAuthFailure, RequestID: "rid-1", ClientIP: "192.0.2.7", Route: "items",
		Authenticator: "keys", Reason: "unknown_key", Detail: map[string]string{"scheme": "api_key"}})
	clk.Add(time.Minute)
	e.Emit(Event{Kind: EventForbidden, ClientIP: "192.0.2.7", Route: "items", Consumer: "acme", Reason: "missing scope items:write"})
	clk.Add(time.Minute)
	e.Emit(Event{Kind: EventConfigReloadFailed, Reason: "2 problems"})

	rec = serve(e, "GET", "/admin/events?kind=auth_failure")
	want := `{"events":[{"time":"2026-03-01T12:01:00Z","kind":"auth_failure","severity":"warning","request_id":"rid-1",` +
		`"client_ip":"192.0.2.7","route":"items","authenticator":"keys","reason":"unknown_key","detail":{"scheme":"api_key"}}],"dropped":1}` + "\n"
	if rec.Code != 200 || rec.Body.String() != want {
		t.Fatalf("kind:\n got %s\nwant %s", rec.Body, want)
	}

	for target, want := range map[string][]string{
		"/admin/events":                                   {"2 problems", "missing scope items:write", "unknown_key"},
		"/admin/events?limit=1":                           {"2 problems"},
		"/admin/events?limit=3":                           {"2 problems", "missing scope items:write", "unknown_key"},
		"/admin/events?since=2026-03-01T12:02:00Z":        {"2 problems", "missing scope items:write"},
		"/admin/events?since=2026-03-01T13:01:30%2B01:00": {"2 problems", "missing scope items:write"},
		"/admin/events?since=2026-03-01T12:02:00.5Z":      {"2 problems"},
		"/admin/events?since=2026-03-01T12:02:00Z&kind=config_reload_failed&limit=2": {"2 problems"},
		"/admin/events?kind=body_too_large":                                          {},
	} {
		rec := serve(e, "GET", target)
		var body EventsResponse
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &body) != nil {
			t.Errorf("%s: %d %s", target, rec.Code, rec.Body)
			continue
		}
		if got := reasons(body.Events); !slices.Equal(got, want) || body.Dropped != 1 {
			t.Errorf("%s: %q, dropped %d; want %q", target, got, body.Dropped, want)
		}
	}

	if rec := serve(e, "HEAD", "/admin/events"); rec.Code != 200 || rec.Body.Len() != 0 {
		t.Errorf("HEAD: %d, %d bytes", rec.Code, rec.Body.Len())
	}
	if rec := serve(e, "POST", "/admin/events"); rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d %v", rec.Code, rec.Header())
	}
}

func TestEventsHandlerBadParams(t *testing.T) {
	e := NewEvents(EventsOptions{Capacity: 50})
	for target, detail := range map[string]string{
		"?kind=nope":                         "query parameter 'kind': unknown event kind (see docs/events.md)",
		"?kind=":                             "query parameter 'kind': unknown event kind (see docs/events.md)",
		"?kind=auth_failure&kind=ban":        "query parameter 'kind': given more than once",
		"?since=yesterday":                   "query parameter 'since': must be an RFC 3339 time, e.g. 2006-01-02T15:04:05Z",
		"?since=2026-03-01":                  "query parameter 'since': must be an RFC 3339 time, e.g. 2006-01-02T15:04:05Z",
		"?since=1772366400":                  "query parameter 'since': must be an RFC 3339 time, e.g. 2006-01-02T15:04:05Z",
		"?limit=0":                           "query parameter 'limit': must be an integer from 1 to 50",
		"?limit=-1":                          "query parameter 'limit': must be an integer from 1 to 50",
		"?limit=51":                          "query parameter 'limit': must be an integer from 1 to 50",
		"?limit=ten":                         "query parameter 'limit': must be an integer from 1 to 50",
		"?limit=99999999999999999999":        "query parameter 'limit': must be an integer from 1 to 50",
		"?limit=1&limit=2":                   "query parameter 'limit': given more than once",
		"?<script>=1":                        "unknown query parameter (allowed: kind, since, limit)",
		"?<script>=1&<script>=2":             "query parameter '?': given more than once",
		"?kind=%zz":                          "query string: not valid URL encoding",
		"?kind=auth_failure;limit=1":         "query string: not valid URL encoding",
		"?kind=" + strings.Repeat("a", 2000): "query string: too long",
	} {
		rec := serve(e, "GET", "/admin/events"+target)
		var doc map[string]any
		if rec.Code != 400 || rec.Header().Get("Content-Type") != problem.ContentType || json.Unmarshal(rec.Body.Bytes(), &doc) != nil {
			t.Errorf("%.40s: %d %s", target, rec.Code, rec.Body)
			continue
		}
		if doc["detail"] != detail || doc["status"] != float64(400) {
			t.Errorf("%.40s: detail %q, want %q", target, doc["detail"], detail)
		}
	}
}

// logLines decodes the JSON lines a slog.JSONHandler wrote.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	buf.Reset()
	return out
}

func TestEventLogRecord(t *testing.T) {
	var buf bytes.Buffer
	clk := newClock()
	e := NewEvents(EventsOptions{Logger: slog.New(slog.NewJSONHandler(&buf, nil)), Now: clk.Now})
	e.Emit(Event{Kind: EventAuthFailure, RequestID: "rid", ClientIP: "192.0.2.1", Route: "items", Consumer: "c",
		Authenticator: "keys", Reason: "unknown_key", Detail: map[string]string{"b": "2", "a": "1"}})
	e.Emit(Event{Kind: EventConfigReload})
	e.Emit(Event{Kind: EventConfigReloadFailed, Reason: "1 problem"})
	lines := logLines(t, &buf)
	if len(lines) != 3 {
		t.Fatalf("%d lines", len(lines))
	}
	want := `map[authenticator:keys client_ip:192.0.2.1 consumer:c detail:map[a:1 b:2] kind:auth_failure level:WARN msg:security event ` +
		`reason:unknown_key request_id:rid route:items severity:warning time:2026-03-01T12:00:00Z]`
	if got := fmt.Sprint(lines[0]); got != want {
		t.Errorf("record\n got %s\nwant %s", got, want)
	}
	if got := fmt.Sprint(lines[1]); got != `map[kind:config_reload level:INFO msg:security event severity:info time:2026-03-01T12:00:00Z]` {
		t.Errorf("info record %s", got)
	}
	if lines[2]["level"] != "WARN" || lines[2]["severity"] != "high" {
		t.Errorf("high record %v", lines[2])
	}

	// A logger above INFO: info events are not logged (and not counted).
	e = NewEvents(EventsOptions{Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})), Now: clk.Now})
	e.Emit(Event{Kind: EventConfigReload})
	e.Emit(Event{Kind: EventForbidden})
	if lines := logLines(t, &buf); len(lines) != 1 || lines[0]["kind"] != "forbidden" {
		t.Errorf("WARN logger: %v", lines)
	}
}

func TestEventLogSuppression(t *testing.T) {
	var buf bytes.Buffer
	clk := newClock()
	e := NewEvents(EventsOptions{Logger: slog.New(slog.NewJSONHandler(&buf, nil)), Now: clk.Now})
	emit := func(k EventKind, ip string, n int) {
		for range n {
			e.Emit(Event{Kind: k, ClientIP: ip})
		}
	}
	count := func(lines []map[string]any) map[string]int {
		c := map[string]int{}
		for _, l := range lines {
			c[fmt.Sprint(l["kind"], " ", l["client_ip"])]++
		}
		return c
	}

	// Second 0: 25 from one pair, 5 from another IP, 12 of another kind from the first IP.
	emit(EventAuthFailure, "192.0.2.1", 25)
	emit(EventAuthFailure, "192.0.2.2", 5)
	emit(EventForbidden, "192.0.2.1", 12)
	lines := logLines(t, &buf)
	if got := fmt.Sprint(count(lines)); got != "map[auth_failure 192.0.2.1:10 auth_failure 192.0.2.2:5 forbidden 192.0.2.1:10]" {
		t.Fatalf("second 0: %s", got)
	}
	for _, l := range lines {
		if _, ok := l["suppressed"]; ok {
			t.Fatalf("suppressed on a first line: %v", l)
		}
	}
	if n := len(e.List(EventQuery{Limit: 1000})); n != 42 {
		t.Fatalf("the ring must record every event: %d", n)
	}

	// Second 1 (900ms later is still second 0; then cross): the next allowed
	// line of each suppressed pair carries its count.
	clk.Add(900 * time.Millisecond)
	emit(EventAuthFailure, "192.0.2.1", 1)
	if lines := logLines(t, &buf); len(lines) != 0 {
		t.Fatalf("same second: %v", lines)
	}
	clk.Add(200 * time.Millisecond)
	emit(EventAuthFailure, "192.0.2.1", 3)
	lines = logLines(t, &buf)
	if len(lines) != 3 || lines[0]["suppressed"] != float64(16) || lines[1]["suppressed"] != nil {
		t.Fatalf("second 1: %v", lines)
	}

	// The forbidden pair went quiet in second 1: in second 2 its 2
	// suppressed lines are reported by one summary record.
	clk.Add(time.Second)
	emit(EventAuthFailure, "192.0.2.2", 1)
	lines = logLines(t, &buf)
	if len(lines) != 2 || lines[0]["msg"] != "security events suppressed" || lines[0]["suppressed"] != float64(2) ||
		lines[0]["pairs"] != float64(1) || lines[0]["level"] != "WARN" || lines[1]["msg"] != "security event" {
		t.Fatalf("summary: %v", lines)
	}
	clk.Add(time.Second)
	emit(EventAuthFailure, "192.0.2.2", 1)
	if lines := logLines(t, &buf); len(lines) != 1 || lines[0]["msg"] != "security event" {
		t.Fatalf("summary repeated: %v", lines)
	}
}

// TestEventLogSuppressionBounded: the map of pairs never grows past
// logKeys; pairs beyond share one allowance, and are reset each second.
func TestEventLogSuppressionBounded(t *testing.T) {
	var lines atomic.Int64
	clk := newClock()
	e := NewEvents(EventsOptions{Capacity: 10, Logger: slog.New(countHandler{&lines}), Now: clk.Now})
	for i := range logKeys + 500 {
		e.Emit(Event{Kind: EventAuthFailure, ClientIP: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)})
	}
	if len(e.counts) != logKeys || lines.Load() != logKeys+logPerSecond {
		t.Fatalf("pairs %d, lines %d", len(e.counts), lines.Load())
	}
	clk.Add(time.Second)
	e.Emit(Event{Kind: EventAuthFailure, ClientIP: "192.0.2.1"})
	if len(e.counts) > 1 {
		t.Fatalf("pairs after a second: %d", len(e.counts))
	}
}

type countHandler struct{ n *atomic.Int64 }

func (h countHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (h countHandler) Handle(context.Context, slog.Record) error { h.n.Add(1); return nil }
func (h countHandler) WithAttrs([]slog.Attr) slog.Handler        { return h }
func (h countHandler) WithGroup(string) slog.Handler             { return h }

// TestEmitAllocs: with no logger, Emit allocates the ring slot and nothing
// else.
func TestEmitAllocs(t *testing.T) {
	e := NewEvents(EventsOptions{Capacity: 64})
	detail := map[string]string{"limit": "max_in_flight"}
	ev := Event{Kind: EventAuthFailure, RequestID: "0123456789abcdef", ClientIP: "2001:db8::1", Route: "items",
		Authenticator: "keys", Reason: "unknown_key", Detail: detail}
	if n := testing.AllocsPerRun(1000, func() { e.Emit(ev) }); n != 1 {
		t.Fatalf("Emit: %v allocations, want 1 (the slot)", n)
	}
}

func BenchmarkEmit(b *testing.B) {
	e := NewEvents(EventsOptions{})
	ev := Event{Kind: EventAuthFailure, RequestID: "0123456789abcdef", ClientIP: "192.0.2.1", Route: "items",
		Authenticator: "keys", Reason: "unknown_key"}
	b.ReportAllocs()
	for b.Loop() {
		e.Emit(ev)
	}
}

func BenchmarkEmitParallel(b *testing.B) {
	e := NewEvents(EventsOptions{})
	ev := Event{Kind: EventAuthFailure, RequestID: "0123456789abcdef", ClientIP: "192.0.2.1", Route: "items",
		Authenticator: "keys", Reason: "unknown_key"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			e.Emit(ev)
		}
	})
}

// BenchmarkEmitLogged: one pair over its allowance — the cost of an event
// whose log line is suppressed.
func BenchmarkEmitLoggedSuppressed(b *testing.B) {
	e := NewEvents(EventsOptions{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Now: newClock().Now})
	ev := Event{Kind: EventAuthFailure, ClientIP: "192.0.2.1", Route: "items", Reason: "unknown_key"}
	b.ReportAllocs()
	for b.Loop() {
		e.Emit(ev)
	}
}

func BenchmarkEventsList(b *testing.B) {
	e := NewEvents(EventsOptions{})
	for i := range 1000 {
		e.Emit(Event{Kind: EventAuthFailure, Reason: strconv.Itoa(i)})
	}
	b.ReportAllocs()
	for b.Loop() {
		e.List(EventQuery{Limit: 1000})
	}
}
