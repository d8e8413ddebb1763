package telemetry

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/secret"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var hookSecret = secret.New(strings.Repeat("k", 32))

// sink is a webhook receiver that checks every request like a careful
// SIEM would, and records the events it accepted.
type sink struct {
	t      *testing.T
	mu     sync.Mutex
	events []Event
	posts  int
	// answer, when set, decides the status of the n-th POST (1-based).
	answer func(n int) int
	bad    atomic.Int64 // requests that failed verification
	got    chan struct{}
}

func newSink(t *testing.T) *sink { return &sink{t: t, got: make(chan struct{}, 1000)} }

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	s.mu.Lock()
	s.posts++
	n := s.posts
	s.mu.Unlock()
	ts := r.Header.Get(WebhookTimestampHeader)
	sig, _ := strings.CutPrefix(r.Header.Get(WebhookSignatureHeader), "sha256=")
	want := WebhookSignature([]byte(hookSecret.Reveal()), ts, body)
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" ||
		len(r.Header.Get(WebhookDeliveryHeader)) != 32 || !hmac.Equal([]byte(sig), []byte(want)) {
		s.bad.Add(1)
		http.Error(w, "bad", http.StatusUnauthorized)
		return
	}
	if sec, err := strconv.ParseInt(ts, 10, 64); err != nil || time.Since(time.Unix(sec, 0)).Abs() > time.Minute {
		s.bad.Add(1)
		http.Error(w, "stale", http.StatusUnauthorized)
		return
	}
	if s.answer != nil {
		if code := s.answer(n); code != http.StatusOK {
			w.WriteHeader(code)
			return
		}
	}
	var evs []Event
	if err := json.Unmarshal(body, &evs); err != nil {
		s.bad.Add(1)
		http.Error(w, "not json", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.events = append(s.events, evs...)
	s.mu.Unlock()
	s.got <- struct{}{}
}

func (s *sink) received() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

func (s *sink) postCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.posts
}

// waitFor polls cond for up to 10s (shared, noisy machines).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startHook runs a webhook against srv until the test ends; stop cancels
// it and waits for Run to return.
func startHook(t *testing.T, srv *httptest.Server, o WebhookOptions) (w *Webhook, stop func()) {
	t.Helper()
	o.URL, o.Secret, o.Client = srv.URL, hookSecret, srv.Client()
	w, err := NewWebhook(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Error("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return w, stop
}

func ev(i int) Event {
	return Event{Time: time.Unix(1700000000, 0).UTC(), Kind: EventAuthFailure, Severity: SeverityWarning,
		RequestID: "req-" + strconv.Itoa(i), ClientIP: "192.0.2.7", Reason: "unknown key"}
}

func TestWebhookBatchesSignedOverTLS(t *testing.T) {
	s := newSink(t)
	srv := httptest.NewTLSServer(s)
	defer srv.Close()
	w, _ := startHook(t, srv, WebhookOptions{Batch: 5, Interval: time.Hour})
	for i := range 10 {
		w.Send(ev(i))
	}
	waitFor(t, "two full batches", func() bool { return len(s.received()) == 10 })
	if n := s.postCount(); n != 2 {
		t.Errorf("%d POSTs, want 2 batches of 5", n)
	}
	if s.bad.Load() != 0 {
		t.Errorf("%d requests failed verification", s.bad.Load())
	}
	got := s.received()
	for i, e := range got {
		if e.RequestID != "req-"+strconv.Itoa(i) || e.Kind != EventAuthFailure {
			t.Errorf("event %d = %+v (order or content lost)", i, e)
		}
	}
	st := w.Stats()
	if st.Delivered != 10 || st.Dropped != 0 || st.FailedBatches != 0 || st.Queued != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestWebhookIntervalSendsPartialBatch(t *testing.T) {
	s := newSink(t)
	srv := httptest.NewServer(s) // http on loopback is allowed
	defer srv.Close()
	w, _ := startHook(t, srv, WebhookOptions{Batch: 100, Interval: 20 * time.Millisecond})
	for i := range 3 {
		w.Send(ev(i))
	}
	waitFor(t, "the interval's batch", func() bool { return len(s.received()) == 3 })
}

func TestWebhookRetriesThenSucceeds(t *testing.T) {
	s := newSink(t)
	s.answer = func(n int) int {
		switch n {
		case 1:
			return http.StatusServiceUnavailable
		case 2:
			return http.StatusTooManyRequests
		}
		return http.StatusOK
	}
	srv := httptest.NewTLSServer(s)
	defer srv.Close()
	w, _ := startHook(t, srv, WebhookOptions{Batch: 2, Interval: time.Hour, Backoff: time.Millisecond})
	w.Send(ev(1))
	w.Send(ev(2))
	waitFor(t, "delivery after two failures", func() bool { return w.Stats().Delivered == 2 })
	if n := s.postCount(); n != 3 {
		t.Errorf("%d POSTs, want 3", n)
	}
	if st := w.Stats(); st.FailedBatches != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestWebhookGivesUp(t *testing.T) {
	for _, tt := range []struct {
		name      string
		status    int
		wantPosts int
	}{
		{"5xx exhausts the attempts", http.StatusBadGateway, 3},
		{"4xx is final", http.StatusBadRequest, 1},
		{"redirect is not followed", http.StatusFound, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var redirected atomic.Int64
			s := newSink(t)
			s.answer = func(int) int { return tt.status }
			mux := http.NewServeMux()
			mux.Handle("/", s)
			mux.HandleFunc("/elsewhere", func(http.ResponseWriter, *http.Request) { redirected.Add(1) })
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.status == http.StatusFound && r.URL.Path == "/" {
					s.mu.Lock()
					s.posts++
					s.mu.Unlock()
					http.Redirect(w, r, "/elsewhere", http.StatusFound)
					return
				}
				mux.ServeHTTP(w, r)
			}))
			defer srv.Close()
			w, _ := startHook(t, srv, WebhookOptions{Batch: 1, Interval: time.Hour, Attempts: 3, Backoff: time.Millisecond})
			w.Send(ev(1))
			waitFor(t, "the batch to be given up", func() bool { return w.Stats().FailedBatches == 1 })
			if n := s.postCount(); n != tt.wantPosts {
				t.Errorf("%d POSTs, want %d", n, tt.wantPosts)
			}
			if st := w.Stats(); st.FailedEvents != 1 || st.Delivered != 0 {
				t.Errorf("stats = %+v", st)
			}
			if redirected.Load() != 0 {
				t.Error("the redirect was followed")
			}
		})
	}
}

func TestWebhookSlowEndpointDropsOldestAndNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	var posts atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then a client that goes away cancels r's context
		posts.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	w, stop := startHook(t, srv, WebhookOptions{Batch: 5, Queue: 10, Interval: time.Hour, Timeout: 5 * time.Second, Attempts: 1})
	w.Send(ev(0))
	for i := 1; i < 5; i++ {
		w.Send(ev(i))
	}
	waitFor(t, "the first POST to hang", func() bool { return posts.Load() == 1 })
	// The sender is stuck; Send must still return at once.
	done := make(chan struct{})
	go func() {
		for i := 5; i < 1005; i++ {
			w.Send(ev(i))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Send blocked on a slow endpoint")
	}
	st := w.Stats()
	if st.Queued != 10 || st.Dropped != 990 {
		t.Errorf("stats = %+v, want 10 queued and 990 dropped", st)
	}
	// The newest survive: the queue dropped the oldest.
	w.mu.Lock()
	newest := w.buf[(w.head+w.n-1)%len(w.buf)].RequestID
	oldest := w.buf[w.head].RequestID
	w.mu.Unlock()
	if newest != "req-1004" || oldest != "req-995" {
		t.Errorf("queue holds %s … %s, want req-995 … req-1004", oldest, newest)
	}
	// Shutdown: the stuck POST is cut off and the final flush is bounded.
	start := time.Now()
	stop()
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("shutdown took %v", d)
	}
}

func TestWebhookFinalFlush(t *testing.T) {
	s := newSink(t)
	srv := httptest.NewTLSServer(s)
	defer srv.Close()
	w, stop := startHook(t, srv, WebhookOptions{Batch: 4, Interval: time.Hour})
	for i := range 3 { // less than a batch: only the flush sends it
		w.Send(ev(i))
	}
	stop()
	if got := len(s.received()); got != 3 {
		t.Errorf("final flush delivered %d events, want 3", got)
	}
	if st := w.Stats(); st.Delivered != 3 || st.Queued != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestWebhookFinalFlushBounded(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done() // never answers
	}))
	defer srv.Close()
	w, stop := startHook(t, srv, WebhookOptions{Batch: 2, Interval: time.Hour, Timeout: 200 * time.Millisecond})
	w.mu.Lock() // queue without waking the sender: everything is left for the flush
	for i := range 7 {
		w.buf[i] = ev(i)
	}
	w.n = 7
	w.mu.Unlock()
	start := time.Now()
	stop()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("flush took %v, want about the 200ms timeout", d)
	}
	if st := w.Stats(); st.FailedEvents != 7 || st.Delivered != 0 || st.Queued != 0 {
		t.Errorf("stats = %+v, want all 7 counted as failed", st)
	}
}

func TestWebhookMinSeverityAndEventsHook(t *testing.T) {
	s := newSink(t)
	srv := httptest.NewTLSServer(s)
	defer srv.Close()
	w, stop := startHook(t, srv, WebhookOptions{Batch: 10, Interval: time.Hour, MinSeverity: SeverityWarning})
	events := NewEvents(EventsOptions{OnEmit: w.Send})
	events.Emit(Event{Kind: EventConfigReload})                      // info: not sent
	events.Emit(Event{Kind: EventAuthFailure, ClientIP: "[::1]:80"}) // warning: sent, bounded by Emit
	events.Emit(Event{Kind: EventConfigReloadFailed})                // high: sent
	stop()
	got := s.received()
	if len(got) != 2 || got[0].Kind != EventAuthFailure || got[1].Kind != EventConfigReloadFailed {
		t.Fatalf("received %+v", got)
	}
	if got[0].ClientIP != "::1" || got[0].Severity != SeverityWarning || got[0].Time.IsZero() {
		t.Errorf("event not normalised by Emit: %+v", got[0])
	}
}

func TestNewWebhookRefuses(t *testing.T) {
	for _, tt := range []struct {
		name string
		o    WebhookOptions
		want string
	}{
		{"http remote", WebhookOptions{URL: "http://siem.example.com/x", Secret: hookSecret}, "must use https"},
		{"other scheme", WebhookOptions{URL: "ftp://siem.example.com/x", Secret: hookSecret}, "must use https"},
		{"relative", WebhookOptions{URL: "/hook", Secret: hookSecret}, "must be absolute"},
		{"credentials", WebhookOptions{URL: "https://u:p@siem.example.com/x", Secret: hookSecret}, "without credentials"},
		{"short secret", WebhookOptions{URL: "https://siem.example.com/x", Secret: secret.New("short")}, "at least 32"},
		{"severity", WebhookOptions{URL: "https://siem.example.com/x", Secret: hookSecret, MinSeverity: "loud"}, "unknown severity"},
		{"negative", WebhookOptions{URL: "https://siem.example.com/x", Secret: hookSecret, Batch: -1}, "negative"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewWebhook(tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "u:p") || strings.Contains(err.Error(), "short\"") {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
	for _, u := range []string{"http://127.0.0.1:9/x", "http://[::1]:9/x", "http://localhost:9/x", "https://siem.example.com/x"} {
		if _, err := NewWebhook(WebhookOptions{URL: u, Secret: hookSecret}); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
}

func TestWebhookOptionsFromConfig(t *testing.T) {
	c := &config.EventWebhook{URL: "https://h.example/x", Secret: hookSecret, MinSeverity: "high", Batch: 7,
		Interval: config.Duration(time.Second), Queue: 70, Timeout: config.Duration(2 * time.Second), Attempts: 3}
	o := WebhookOptionsFrom(c)
	if o.URL != c.URL || o.Secret.Reveal() != hookSecret.Reveal() || o.MinSeverity != "high" || o.Batch != 7 ||
		o.Interval != time.Second || o.Queue != 70 || o.Timeout != 2*time.Second || o.Attempts != 3 {
		t.Errorf("options = %+v", o)
	}
}

func TestWebhookMetrics(t *testing.T) {
	w, err := NewWebhook(WebhookOptions{URL: "https://h.example/x", Secret: hookSecret, Queue: 2, Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if err := w.Register(reg); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		w.Send(ev(i))
	}
	want := `
# HELP breakwater_webhook_events_total Security events handed to the webhook, by result: delivered, dropped (queue full) or failed (their batch was given up).
# TYPE breakwater_webhook_events_total counter
breakwater_webhook_events_total{result="delivered"} 0
breakwater_webhook_events_total{result="dropped"} 3
breakwater_webhook_events_total{result="failed"} 0
# HELP breakwater_webhook_queue_length Security events waiting for the webhook.
# TYPE breakwater_webhook_queue_length gauge
breakwater_webhook_queue_length 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "breakwater_webhook_events_total", "breakwater_webhook_queue_length"); err != nil {
		t.Error(err)
	}
}

func TestWebhookSignatureVector(t *testing.T) {
	// Pinned so that receivers written from docs/events.md agree.
	got := WebhookSignature([]byte("0123456789abcdef0123456789abcdef"), "1700000000", []byte(`[]`))
	if len(got) != 64 {
		t.Fatalf("signature %q", got)
	}
	if again := WebhookSignature([]byte("0123456789abcdef0123456789abcdef"), "1700000001", []byte(`[]`)); again == got {
		t.Error("the timestamp is not signed")
	}
	t.Logf("vector: %s", got)
}

func BenchmarkWebhookSend(b *testing.B) {
	w, err := NewWebhook(WebhookOptions{URL: "https://h.example/x", Secret: hookSecret, Queue: 1024, Batch: 2000})
	if err != nil {
		b.Fatal(err)
	}
	e := ev(1)
	b.ReportAllocs()
	for b.Loop() {
		w.Send(e)
	}
	_ = fmt.Sprint(w.Stats().Dropped)
}
