// This file: the security event webhook (monitoring.webhook, docs/events.md).

package telemetry

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/secret"
	"github.com/prometheus/client_golang/prometheus"
)

// Webhook headers. The signature is the hex HMAC-SHA256, keyed with the
// webhook secret, of the timestamp header's value, a ".", and the body:
// a receiver recomputes it, compares in constant time and refuses
// timestamps too far from its clock (replays).
const (
	WebhookSignatureHeader = "X-Breakwater-Signature" // "sha256=<hex>"
	WebhookTimestampHeader = "X-Breakwater-Timestamp" // Unix seconds of this attempt
	WebhookDeliveryHeader  = "X-Breakwater-Delivery"  // random id of the batch, the same on every retry
)

// Webhook bounds and defaults.
const (
	webhookMaxResponse  = 64 << 10 // response body bytes read (and discarded)
	webhookMaxBackoff   = 30 * time.Second
	webhookFirstBackoff = 500 * time.Millisecond
)

// WebhookOptions configure NewWebhook. Zero values take the defaults of
// config.EventWebhook.
type WebhookOptions struct {
	URL         string       // https, or http on loopback; required
	Secret      secret.Value // HMAC key, at least config.MinWebhookSecret bytes; required
	MinSeverity string       // info (default), warning or high: events below are not sent
	Batch       int          // events per POST at most (default 100)
	Interval    time.Duration
	Queue       int           // events waiting at most (default 10000); the oldest is dropped when full
	Timeout     time.Duration // one POST; also bounds the final flush (default 5s)
	Attempts    int           // tries per batch (default 5)
	// Backoff is the wait before the first retry (default 500ms); it
	// doubles with every retry up to 30s, with jitter (half of it random).
	Backoff time.Duration
	// Client sends the POSTs (default: a client of its own with TLS 1.2+).
	// Redirects are never followed, whatever the client says.
	Client *http.Client
	Logger *slog.Logger     // delivery problems (nil: not logged)
	Now    func() time.Time // clock of the timestamp header (default time.Now)
}

// WebhookOptionsFrom maps the config section to options.
func WebhookOptionsFrom(c *config.EventWebhook) WebhookOptions {
	return WebhookOptions{
		URL: c.URL, Secret: c.Secret, MinSeverity: c.MinSeverity, Batch: c.Batch, Interval: c.Interval.D(),
		Queue: c.Queue, Timeout: c.Timeout.D(), Attempts: c.Attempts,
	}
}

// Webhook sends security events to an HTTP endpoint in signed JSON
// batches. Send never blocks; Run does the sending. Its methods are safe
// for concurrent use.
type Webhook struct {
	url      string
	key      []byte
	minSev   int
	batch    int
	interval time.Duration
	timeout  time.Duration
	attempts int
	backoff  time.Duration
	client   *http.Client
	log      *slog.Logger
	now      func() time.Time

	wake chan struct{} // a full batch is waiting

	mu   sync.Mutex // guards the queue
	buf  []Event    // ring
	head int        // oldest
	n    int        // queued

	delivered, dropped, failedBatches, failedEvents atomic.Uint64
}

// WebhookStats are the webhook's counters since it was made.
type WebhookStats struct {
	Delivered     uint64 // events the endpoint accepted (2xx)
	Dropped       uint64 // events pushed out of a full queue
	FailedBatches uint64 // batches given up (attempts exhausted, a 4xx answer, or shutdown)
	FailedEvents  uint64 // events in those batches
	Queued        int    // events waiting now
}

// NewWebhook checks o and returns a webhook; call Run to start sending.
func NewWebhook(o WebhookOptions) (*Webhook, error) {
	u, err := url.Parse(o.URL)
	if err != nil || u.Host == "" || u.User != nil {
		return nil, errors.New("webhook: the URL must be absolute, without credentials")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopbackHost(u.Hostname()) {
			return nil, errors.New("webhook: the URL must use https (http only on loopback)")
		}
	default:
		return nil, errors.New("webhook: the URL must use https (http only on loopback)")
	}
	if n := len(o.Secret.Reveal()); n < config.MinWebhookSecret {
		return nil, fmt.Errorf("webhook: the secret has %d bytes; at least %d are required", n, config.MinWebhookSecret)
	}
	minSev := 0
	switch o.MinSeverity {
	case "", SeverityInfo:
	case SeverityWarning:
		minSev = 1
	case SeverityHigh:
		minSev = 2
	default:
		return nil, fmt.Errorf("webhook: unknown severity %q", o.MinSeverity)
	}
	o.Batch = cmpOr(o.Batch, config.DefaultWebhookBatch)
	o.Interval = cmpOr(o.Interval, config.DefaultWebhookInterval.D())
	o.Queue = max(cmpOr(o.Queue, config.DefaultWebhookQueue), o.Batch)
	o.Timeout = cmpOr(o.Timeout, config.DefaultWebhookTimeout.D())
	o.Attempts = cmpOr(o.Attempts, config.DefaultWebhookAttempts)
	o.Backoff = cmpOr(o.Backoff, webhookFirstBackoff)
	if o.Batch < 0 || o.Queue < 0 || o.Interval < 0 || o.Timeout < 0 || o.Attempts < 0 || o.Backoff < 0 {
		return nil, errors.New("webhook: negative batch, queue, interval, timeout, attempts or backoff")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	var client http.Client
	if o.Client != nil {
		client = *o.Client
	} else {
		client.Transport = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: o.Timeout}).DialContext,
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:   o.Timeout,
			ResponseHeaderTimeout: o.Timeout,
			MaxIdleConns:          2,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		}
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Webhook{
		url: o.URL, key: []byte(o.Secret.Reveal()), minSev: minSev, batch: o.Batch, interval: o.Interval,
		timeout: o.Timeout, attempts: o.Attempts, backoff: o.Backoff, client: &client, log: o.Logger, now: o.Now,
		wake: make(chan struct{}, 1),
		buf:  make([]Event, o.Queue),
	}, nil
}

func cmpOr[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func severityRank(s string) int {
	switch s {
	case SeverityHigh:
		return 2
	case SeverityWarning:
		return 1
	}
	return 0
}

// Send queues ev for delivery. It never blocks and does not allocate: when
// the queue is full the oldest event is dropped and counted. Use it as
// EventsOptions.OnEmit (events then arrive bounded and with their
// severity set).
func (w *Webhook) Send(ev Event) {
	sev := ev.Severity
	if sev == "" {
		sev = ev.Kind.Severity()
	}
	if severityRank(sev) < w.minSev {
		return
	}
	w.mu.Lock()
	if w.n == len(w.buf) {
		w.buf[w.head] = Event{}
		w.head = (w.head + 1) % len(w.buf)
		w.n--
		w.dropped.Add(1)
	}
	w.buf[(w.head+w.n)%len(w.buf)] = ev
	w.n++
	full := w.n >= w.batch
	w.mu.Unlock()
	if full {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// take moves up to batch events from the queue into dst; with fullOnly,
// only when a whole batch is waiting.
func (w *Webhook) take(dst []Event, fullOnly bool) []Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	if fullOnly && w.n < w.batch {
		return dst[:0]
	}
	k := min(w.n, w.batch)
	dst = dst[:0]
	for range k {
		dst = append(dst, w.buf[w.head])
		w.buf[w.head] = Event{} // release Detail maps
		w.head = (w.head + 1) % len(w.buf)
	}
	w.n -= k
	return dst
}

// Stats returns the webhook's counters.
func (w *Webhook) Stats() WebhookStats {
	w.mu.Lock()
	n := w.n
	w.mu.Unlock()
	return WebhookStats{Delivered: w.delivered.Load(), Dropped: w.dropped.Load(),
		FailedBatches: w.failedBatches.Load(), FailedEvents: w.failedEvents.Load(), Queued: n}
}

// Register exports the counters on reg: breakwater_webhook_events_total
// {result="delivered"|"dropped"|"failed"}, breakwater_webhook_failed_batches_total
// and breakwater_webhook_queue_length.
func (w *Webhook) Register(reg prometheus.Registerer) error {
	events := func(result string, v *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "breakwater_webhook_events_total",
			Help:        "Security events handed to the webhook, by result: delivered, dropped (queue full) or failed (their batch was given up).",
			ConstLabels: prometheus.Labels{"result": result},
		}, func() float64 { return float64(v.Load()) })
	}
	for _, c := range []prometheus.Collector{
		events("delivered", &w.delivered),
		events("dropped", &w.dropped),
		events("failed", &w.failedEvents),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "breakwater_webhook_failed_batches_total",
			Help: "Webhook batches given up: attempts exhausted, refused with a 4xx, or cut off by shutdown.",
		}, func() float64 { return float64(w.failedBatches.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "breakwater_webhook_queue_length",
			Help: "Security events waiting for the webhook.",
		}, func() float64 { return float64(w.Stats().Queued) }),
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("webhook metrics: %w", err)
		}
	}
	return nil
}

// Run sends batches until ctx ends: a batch as soon as one is full, and
// whatever is queued every Interval. When ctx ends it makes a final flush
// of the queue, one attempt per batch, bounded by Timeout in all, and
// returns. Run it once, on its own goroutine.
func (w *Webhook) Run(ctx context.Context) {
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	batch := make([]Event, 0, w.batch)
	for {
		fullOnly := false
		select {
		case <-ctx.Done():
			w.flush(batch)
			return
		case <-tick.C:
		case <-w.wake:
			fullOnly = true
		}
		for ctx.Err() == nil {
			batch = w.take(batch, fullOnly)
			if len(batch) == 0 {
				break
			}
			if !w.deliver(ctx, batch) {
				// Cut off by shutdown: the batch gets one more try in the flush.
				w.flush(batch)
				return
			}
			batch = batch[:0]
		}
	}
}

// flush sends pending and the queue, one attempt per batch, within Timeout.
func (w *Webhook) flush(pending []Event) {
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	defer cancel()
	batch := pending
	for {
		if len(batch) == 0 {
			batch = w.take(batch, false)
			if len(batch) == 0 {
				return
			}
		}
		if ctx.Err() != nil {
			w.fail(len(batch))
			batch = batch[:0]
			continue // count every event left as failed
		}
		body, id, err := w.encode(batch)
		if err == nil {
			var ok bool
			ok, _, _ = w.post(ctx, body, id)
			if ok {
				w.delivered.Add(uint64(len(batch)))
				batch = batch[:0]
				continue
			}
		}
		w.fail(len(batch))
		batch = batch[:0]
	}
}

func (w *Webhook) fail(events int) {
	w.failedBatches.Add(1)
	w.failedEvents.Add(uint64(events))
}

// encode returns the JSON body of a batch and a new delivery id.
func (w *Webhook) encode(batch []Event) (body []byte, id string, err error) {
	body, err = json.Marshal(batch)
	if err != nil {
		return nil, "", fmt.Errorf("encoding webhook batch: %w", err)
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return body, hex.EncodeToString(b[:]), nil
}

// deliver sends one batch with retries and counts the outcome. It
// reports false only when ctx ended before the batch was delivered or
// given up (then nothing is counted: the caller flushes it).
func (w *Webhook) deliver(ctx context.Context, batch []Event) bool {
	body, id, err := w.encode(batch)
	if err != nil { // cannot happen: events are strings, times and string maps
		w.logf("webhook batch not encoded", "err", err)
		w.fail(len(batch))
		return true
	}
	wait := w.backoff
	for attempt := 1; ; attempt++ {
		ok, retry, after := w.post(ctx, body, id)
		if ok {
			w.delivered.Add(uint64(len(batch)))
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if !retry || attempt >= w.attempts {
			w.logf("webhook batch given up", "events", len(batch), "attempts", attempt, "delivery", id)
			w.fail(len(batch))
			return true
		}
		d := wait/2 + mrand.N(wait/2+1) // jitter: half of the wait is random
		d = max(d, min(after, webhookMaxBackoff))
		wait = min(2*wait, webhookMaxBackoff)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return false // not counted: the caller flushes it
		case <-t.C:
		}
	}
}

// post makes one attempt. It reports whether the endpoint took the batch,
// whether another attempt may help, and a Retry-After the endpoint asked for.
func (w *Webhook) post(ctx context.Context, body []byte, id string) (ok, retry bool, after time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		w.logf("webhook request not built", "err", err)
		return false, false, 0
	}
	ts := strconv.FormatInt(w.now().Unix(), 10)
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "breakwater-webhook")
	h.Set(WebhookTimestampHeader, ts)
	h.Set(WebhookDeliveryHeader, id)
	h.Set(WebhookSignatureHeader, "sha256="+WebhookSignature(w.key, ts, body))
	resp, err := w.client.Do(req)
	if err != nil {
		// The URL (which may hold a token in its path) stays out of the log.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		w.logf("webhook delivery failed", "delivery", id, "err", err.Error())
		return false, true, 0
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, webhookMaxResponse))
	_ = resp.Body.Close()
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return true, false, 0
	case s == http.StatusRequestTimeout, s == http.StatusTooEarly, s == http.StatusTooManyRequests, s >= 500:
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
			after = time.Duration(min(secs, 3600)) * time.Second
		}
		w.logf("webhook endpoint refused a batch, will retry", "delivery", id, "status", s)
		return false, true, after
	default:
		w.logf("webhook endpoint refused a batch", "delivery", id, "status", s)
		return false, false, 0
	}
}

func (w *Webhook) logf(msg string, args ...any) {
	if w.log != nil {
		w.log.Warn(msg, args...)
	}
}

// WebhookSignature is the hex HMAC-SHA256 with key of timestamp + "." +
// body: what X-Breakwater-Signature carries after "sha256=". Receivers
// compute it the same way and compare with hmac.Equal.
func WebhookSignature(key []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}
