package config

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/breakwater/breakwater/internal/secret"
)

// Monitoring configures what the gateway reports beyond metrics and the
// event ring: access-log sampling, tracing, the event webhook and anomaly
// detection (docs/monitoring.md, docs/tracing.md, docs/events.md). Every
// part is off unless its section is written, except access-log sampling,
// which logs every request when left out.
type Monitoring struct {
	AccessLog *AccessLogSampling `yaml:"access_log"`
	Tracing   *Tracing           `yaml:"tracing"`
	Webhook   *EventWebhook      `yaml:"webhook"`
	Anomaly   *Anomaly           `yaml:"anomaly"`
}

// AccessLogSampling thins the access log of successful requests.
type AccessLogSampling struct {
	// Sample is the fraction (0 to 1) of successful requests (status < 400,
	// no security event) that are logged, chosen by a hash of the request
	// id. Errors and requests with a security event are always logged.
	// Default 1: every request; 0 logs only errors and security events.
	Sample float64 `yaml:"sample"`
}

// Tracing exports OpenTelemetry spans over OTLP/HTTP (protobuf).
type Tracing struct {
	// Endpoint is the collector's base URL, "https://otel.example.com:4318";
	// spans are sent to its /v1/traces (a URL with a path other than "/"
	// is used as written). https is required except on loopback. Required.
	Endpoint string `yaml:"endpoint"`
	// Sample is the fraction (0 to 1) of new traces recorded. A trace
	// continued from a trusted proxy follows the proxy's decision.
	// Default 1.
	Sample float64 `yaml:"sample"`
	// ServiceName is the service.name resource attribute. Default "breakwater".
	ServiceName string `yaml:"service_name"`
	// Timeout bounds one export and the final flush at shutdown.
	// Default 5s; at most 1m.
	Timeout Duration `yaml:"timeout"`
}

// EventWebhook posts security events, in batches, to a collector (a SIEM).
type EventWebhook struct {
	// URL receives POSTs of JSON arrays of events. https is required except
	// on loopback. Required.
	URL string `yaml:"url"`
	// Secret keys the HMAC-SHA256 signature of every POST
	// (X-Breakwater-Signature). At least 32 bytes; write it as
	// "${ENV_VAR}" or "file:PATH". Required.
	Secret secret.Value `yaml:"secret"`
	// MinSeverity drops events below it: info, warning or high.
	// Default info: every event.
	MinSeverity string `yaml:"min_severity"`
	// Batch is the most events in one POST; a full batch is sent at once.
	// Default 100; 1 to 1000.
	Batch int `yaml:"batch"`
	// Interval is how long events may wait for a batch to fill.
	// Default 5s; 100ms to 1h.
	Interval Duration `yaml:"interval"`
	// Queue is how many events wait at most; when it is full the oldest is
	// dropped (and counted). Default 10000; at least Batch, at most 1000000.
	Queue int `yaml:"queue"`
	// Timeout bounds one POST, and the final flush at shutdown.
	// Default 5s; at most 1m.
	Timeout Duration `yaml:"timeout"`
	// Attempts is how many times a batch is tried before it is dropped
	// (exponential backoff with jitter in between). Default 5; 1 to 10.
	Attempts int `yaml:"attempts"`
}

// Anomaly detects clients (IP addresses and consumers) that deviate from
// normal traffic and emits anomaly_* security events. A ratio of 0 or a
// spike_factor of 0 turns that check off.
type Anomaly struct {
	// Window is the sliding window the ratios are computed over, and the
	// least time between two events of one kind about one client.
	// Default 5m; 1m to 24h.
	Window Duration `yaml:"window"`
	// MinRequests is the least number of requests in the window before a
	// client is judged. Default 20.
	MinRequests int `yaml:"min_requests"`
	// UnauthorizedRatio: share of 401 answers → anomaly_credential_stuffing.
	// Default 0.5.
	UnauthorizedRatio float64 `yaml:"unauthorized_ratio"`
	// ForbiddenRatio: share of 403 answers among requests to routes with
	// path parameters → anomaly_enumeration. Default 0.5.
	ForbiddenRatio float64 `yaml:"forbidden_ratio"`
	// NotFoundRatio: share of 404 answers among requests to routes with
	// path parameters → anomaly_enumeration; among the other requests
	// (no route, routes without parameters) → anomaly_scanning. Default 0.5.
	NotFoundRatio float64 `yaml:"not_found_ratio"`
	// RateLimitedRatio: share of 429 answers → anomaly_rate_limited.
	// Default 0.5.
	RateLimitedRatio float64 `yaml:"rate_limited_ratio"`
	// SpikeFactor: requests in the window above this many times the
	// client's baseline → anomaly_spike. Default 10; else more than 1.
	SpikeFactor float64 `yaml:"spike_factor"`
	// Ban asks the ban machinery to ban a client found credential
	// stuffing, enumerating or scanning. Default false.
	Ban bool `yaml:"ban"`
	// MaxKeys bounds the clients tracked, per kind of key (IP addresses,
	// consumers); the longest idle is forgotten first. Default 100000;
	// 100 to 10000000.
	MaxKeys int `yaml:"max_keys"`
}

// Monitoring defaults, documented on the fields they fill.
const (
	DefaultAccessLogSample    = 1.0
	DefaultTracingSample      = 1.0
	DefaultTracingServiceName = "breakwater"
	DefaultTracingTimeout     = Duration(5 * time.Second)
	DefaultWebhookBatch       = 100
	DefaultWebhookInterval    = Duration(5 * time.Second)
	DefaultWebhookQueue       = 10000
	DefaultWebhookTimeout     = Duration(5 * time.Second)
	DefaultWebhookAttempts    = 5
	DefaultWebhookSeverity    = "info"
	DefaultAnomalyWindow      = Duration(5 * time.Minute)
	DefaultAnomalyMinRequests = 20
	DefaultAnomalyRatio       = 0.5
	DefaultAnomalySpikeFactor = 10.0
	DefaultAnomalyMaxKeys     = 100000
	// MinWebhookSecret is the least length of monitoring.webhook.secret.
	MinWebhookSecret = 32
)

// monitoringDefaults fills the left-out fields of m, the monitoring
// section of c (Defaults calls it with c.Monitoring). A value written as 0
// stays 0 (a ratio of 0 turns its check off).
func monitoringDefaults(c *Config, m *Monitoring) {
	if m == nil {
		return
	}
	unset := func(path string, zero bool) bool { return zero && !c.written("monitoring."+path) }
	if a := m.AccessLog; a != nil {
		setIf(unset("access_log.sample", a.Sample == 0), &a.Sample, DefaultAccessLogSample)
	}
	if t := m.Tracing; t != nil {
		setIf(unset("tracing.sample", t.Sample == 0), &t.Sample, DefaultTracingSample)
		setIf(unset("tracing.service_name", t.ServiceName == ""), &t.ServiceName, DefaultTracingServiceName)
		setIf(unset("tracing.timeout", t.Timeout == 0), &t.Timeout, DefaultTracingTimeout)
	}
	if w := m.Webhook; w != nil {
		setIf(unset("webhook.min_severity", w.MinSeverity == ""), &w.MinSeverity, DefaultWebhookSeverity)
		setIf(unset("webhook.batch", w.Batch == 0), &w.Batch, DefaultWebhookBatch)
		setIf(unset("webhook.interval", w.Interval == 0), &w.Interval, DefaultWebhookInterval)
		setIf(unset("webhook.queue", w.Queue == 0), &w.Queue, max(DefaultWebhookQueue, w.Batch))
		setIf(unset("webhook.timeout", w.Timeout == 0), &w.Timeout, DefaultWebhookTimeout)
		setIf(unset("webhook.attempts", w.Attempts == 0), &w.Attempts, DefaultWebhookAttempts)
	}
	if a := m.Anomaly; a != nil {
		setIf(unset("anomaly.window", a.Window == 0), &a.Window, DefaultAnomalyWindow)
		setIf(unset("anomaly.min_requests", a.MinRequests == 0), &a.MinRequests, DefaultAnomalyMinRequests)
		setIf(unset("anomaly.unauthorized_ratio", a.UnauthorizedRatio == 0), &a.UnauthorizedRatio, DefaultAnomalyRatio)
		setIf(unset("anomaly.forbidden_ratio", a.ForbiddenRatio == 0), &a.ForbiddenRatio, DefaultAnomalyRatio)
		setIf(unset("anomaly.not_found_ratio", a.NotFoundRatio == 0), &a.NotFoundRatio, DefaultAnomalyRatio)
		setIf(unset("anomaly.rate_limited_ratio", a.RateLimitedRatio == 0), &a.RateLimitedRatio, DefaultAnomalyRatio)
		setIf(unset("anomaly.spike_factor", a.SpikeFactor == 0), &a.SpikeFactor, DefaultAnomalySpikeFactor)
		setIf(unset("anomaly.max_keys", a.MaxKeys == 0), &a.MaxKeys, DefaultAnomalyMaxKeys)
	}
}

// monitoring checks m, the monitoring section of the config (Validate
// calls it with c.Monitoring, after Defaults).
func (v *validator) monitoring(m *Monitoring) {
	if m == nil {
		return
	}
	if a := m.AccessLog; a != nil {
		v.fraction("monitoring.access_log.sample", a.Sample)
	}
	if t := m.Tracing; t != nil {
		p := "monitoring.tracing."
		v.collectorURL(p+"endpoint", t.Endpoint, "the OTLP/HTTP collector, such as \"http://127.0.0.1:4318\"")
		v.fraction(p+"sample", t.Sample)
		if t.ServiceName == "" || len(t.ServiceName) > 128 || !isPrintableASCII(t.ServiceName) {
			v.errf(p+"service_name", "must be 1 to 128 printable ASCII characters")
		}
		v.between(p+"timeout", t.Timeout, Duration(time.Millisecond), Duration(time.Minute), "1ms to 1m")
	}
	if w := m.Webhook; w != nil {
		p := "monitoring.webhook."
		v.collectorURL(p+"url", w.URL, "where events are posted, such as \"https://siem.example.com/hook\"")
		switch n := len(w.Secret.Reveal()); {
		case n == 0:
			v.errf(p+"secret", `required; the HMAC key of X-Breakwater-Signature, e.g. "${WEBHOOK_SECRET}"`)
		case n < MinWebhookSecret:
			v.errf(p+"secret", "is %d bytes; at least %d are required (e.g. openssl rand -hex 32)", n, MinWebhookSecret)
		}
		switch w.MinSeverity {
		case "info", "warning", "high":
		default:
			v.errf(p+"min_severity", "%q is not one of info, warning, high", truncate(w.MinSeverity))
		}
		if w.Batch < 1 || w.Batch > 1000 {
			v.errf(p+"batch", "must be from 1 to 1000")
		}
		v.between(p+"interval", w.Interval, Duration(100*time.Millisecond), Duration(time.Hour), "100ms to 1h")
		switch {
		case w.Queue > 1_000_000:
			v.errf(p+"queue", "must be at most 1000000")
		case w.Queue < w.Batch:
			v.errf(p+"queue", "must be at least batch (%d)", w.Batch)
		}
		v.between(p+"timeout", w.Timeout, Duration(time.Millisecond), Duration(time.Minute), "1ms to 1m")
		if w.Attempts < 1 || w.Attempts > 10 {
			v.errf(p+"attempts", "must be from 1 to 10")
		}
	}
	if a := m.Anomaly; a != nil {
		p := "monitoring.anomaly."
		v.between(p+"window", a.Window, Duration(time.Minute), Duration(24*time.Hour), "1m to 24h")
		if a.MinRequests < 1 {
			v.errf(p+"min_requests", "must be more than 0")
		}
		v.fraction(p+"unauthorized_ratio", a.UnauthorizedRatio)
		v.fraction(p+"forbidden_ratio", a.ForbiddenRatio)
		v.fraction(p+"not_found_ratio", a.NotFoundRatio)
		v.fraction(p+"rate_limited_ratio", a.RateLimitedRatio)
		if f := a.SpikeFactor; f != 0 && !(f > 1 && f <= 1e6) {
			v.errf(p+"spike_factor", "must be more than 1 (at most 1000000), or 0 to turn spike detection off")
		}
		if a.MaxKeys < 100 || a.MaxKeys > 10_000_000 {
			v.errf(p+"max_keys", "must be from 100 to 10000000")
		}
	}
}

// fraction reports a value at path that is not a number from 0 to 1.
func (v *validator) fraction(path string, f float64) {
	if !(f >= 0 && f <= 1) { // also refuses NaN
		v.errf(path, "must be a number from 0 to 1")
	}
}

// between reports a duration at path outside [lo, hi]; bounds says what
// they are ("1m to 24h").
func (v *validator) between(path string, d, lo, hi Duration, bounds string) {
	if d < lo || d > hi {
		v.errf(path, "must be from %s", bounds)
	}
}

// collectorURL checks the URL of a service the gateway reports to: https
// (http on loopback), no credentials, query or fragment.
func (v *validator) collectorURL(path, s, what string) {
	if s == "" {
		v.errf(path, "required; %s", what)
		return
	}
	if err := checkHTTPSURL(s); err != nil {
		v.errf(path, "%s", err)
		return
	}
	u, _ := url.Parse(s) // checkHTTPSURL parsed it
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#") {
		v.errf(path, "%q: a query or fragment is not allowed", truncate(s))
	}
}

func isPrintableASCII(s string) bool {
	for i := range len(s) {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// parseFloat is how a number field of the config is read: a decimal
// number, never NaN or infinite. The decoder uses it for float64 fields.
func parseFloat(s string) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a number such as 0.25", truncate(s))
	}
	return f, nil
}
