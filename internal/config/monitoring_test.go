package config

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/secret"
)

// checkMonitoring runs the monitoring defaults and checks on m as if it
// were the monitoring section of a config whose file wrote the given paths
// (relative to "monitoring."), and returns the problems found.
func checkMonitoring(m *Monitoring, written ...string) Errors {
	c := &Config{Positions: map[string]Position{}}
	for i, p := range written {
		c.Positions["monitoring."+p] = Position{Line: i + 2, Col: 3}
	}
	monitoringDefaults(c, m)
	v := &validator{c: c, errs: &collector{file: "bw.yaml"}}
	v.monitoring(m)
	return v.errs.result()
}

var goodSecret = secret.New(strings.Repeat("s", MinWebhookSecret))

func TestMonitoringDefaults(t *testing.T) {
	m := &Monitoring{
		AccessLog: &AccessLogSampling{},
		Tracing:   &Tracing{Endpoint: "http://127.0.0.1:4318"},
		Webhook:   &EventWebhook{URL: "https://siem.example.com/hook", Secret: goodSecret},
		Anomaly:   &Anomaly{},
	}
	if errs := checkMonitoring(m); errs != nil {
		t.Fatalf("defaults are not valid:\n%v", errs)
	}
	if m.AccessLog.Sample != 1 || m.Tracing.Sample != 1 || m.Tracing.ServiceName != "breakwater" || m.Tracing.Timeout.D() != 5*time.Second {
		t.Errorf("access log / tracing defaults: %+v %+v", m.AccessLog, m.Tracing)
	}
	w := m.Webhook
	if w.Batch != 100 || w.Interval.D() != 5*time.Second || w.Queue != 10000 || w.Timeout.D() != 5*time.Second || w.Attempts != 5 || w.MinSeverity != "info" {
		t.Errorf("webhook defaults: %+v", w)
	}
	a := m.Anomaly
	if a.Window.D() != 5*time.Minute || a.MinRequests != 20 || a.UnauthorizedRatio != .5 || a.ForbiddenRatio != .5 ||
		a.NotFoundRatio != .5 || a.RateLimitedRatio != .5 || a.SpikeFactor != 10 || a.MaxKeys != 100000 || a.Ban {
		t.Errorf("anomaly defaults: %+v", a)
	}

	// Written zeros stay zero: sampling nothing, checks turned off.
	m = &Monitoring{AccessLog: &AccessLogSampling{}, Anomaly: &Anomaly{}}
	if errs := checkMonitoring(m, "access_log.sample", "anomaly.unauthorized_ratio", "anomaly.spike_factor"); errs != nil {
		t.Fatalf("written zeros refused:\n%v", errs)
	}
	if m.AccessLog.Sample != 0 || m.Anomaly.UnauthorizedRatio != 0 || m.Anomaly.SpikeFactor != 0 || m.Anomaly.ForbiddenRatio != .5 {
		t.Errorf("written zeros were replaced: %+v %+v", m.AccessLog, m.Anomaly)
	}

	// A large batch raises the default queue with it.
	m = &Monitoring{Webhook: &EventWebhook{URL: "https://h.example/x", Secret: goodSecret, Batch: 1000}}
	monitoringDefaults(&Config{}, m)
	if m.Webhook.Queue != 10000 {
		t.Errorf("queue = %d", m.Webhook.Queue)
	}
	monitoringDefaults(&Config{}, nil) // no section: nothing to do, no panic
}

func TestValidateMonitoring(t *testing.T) {
	hook := func(f func(w *EventWebhook)) *Monitoring {
		w := &EventWebhook{URL: "https://siem.example.com/hook", Secret: goodSecret}
		f(w)
		return &Monitoring{Webhook: w}
	}
	trace := func(f func(t *Tracing)) *Monitoring {
		tr := &Tracing{Endpoint: "https://otel.example.com:4318"}
		f(tr)
		return &Monitoring{Tracing: tr}
	}
	anomaly := func(f func(a *Anomaly)) *Monitoring {
		a := &Anomaly{}
		f(a)
		return &Monitoring{Anomaly: a}
	}
	rows := []struct {
		name    string
		m       *Monitoring
		written []string
		want    []string // substrings of the problems; none: valid
	}{
		{"nil section", nil, nil, nil},
		{"empty section", &Monitoring{}, nil, nil},
		{"sample 0.1", &Monitoring{AccessLog: &AccessLogSampling{Sample: 0.1}}, nil, nil},
		{"sample above 1", &Monitoring{AccessLog: &AccessLogSampling{Sample: 1.5}}, nil, []string{"monitoring.access_log.sample: must be a number from 0 to 1"}},
		{"sample negative", &Monitoring{AccessLog: &AccessLogSampling{Sample: -0.1}}, nil, []string{"access_log.sample: must be a number from 0 to 1"}},
		{"sample NaN", &Monitoring{AccessLog: &AccessLogSampling{Sample: math.NaN()}}, nil, []string{"access_log.sample: must be a number"}},
		{"sample +Inf", &Monitoring{AccessLog: &AccessLogSampling{Sample: math.Inf(1)}}, nil, []string{"access_log.sample: must be a number"}},

		{"tracing loopback http", trace(func(t *Tracing) { t.Endpoint = "http://127.0.0.1:4318" }), nil, nil},
		{"tracing localhost http", trace(func(t *Tracing) { t.Endpoint = "http://localhost:4318/v1/traces" }), nil, nil},
		{"tracing endpoint missing", trace(func(t *Tracing) { t.Endpoint = "" }), nil, []string{"monitoring.tracing.endpoint: required"}},
		{"tracing http remote", trace(func(t *Tracing) { t.Endpoint = "http://otel.example.com:4318" }), nil, []string{"tracing.endpoint: must use https"}},
		{"tracing credentials in URL", trace(func(t *Tracing) { t.Endpoint = "https://u:p@otel.example.com" }), nil, []string{"tracing.endpoint: credentials in the URL"}},
		{"tracing query", trace(func(t *Tracing) { t.Endpoint = "https://otel.example.com/?token=x" }), nil, []string{"a query or fragment is not allowed"}},
		{"tracing fragment", trace(func(t *Tracing) { t.Endpoint = "https://otel.example.com/#x" }), nil, []string{"a query or fragment is not allowed"}},
		{"tracing scheme", trace(func(t *Tracing) { t.Endpoint = "grpc://otel.example.com:4317" }), nil, []string{"the scheme must be https"}},
		{"tracing not a URL", trace(func(t *Tracing) { t.Endpoint = "otel:4318" }), nil, []string{"is not an absolute URL"}},
		{"tracing sample", trace(func(t *Tracing) { t.Sample = 2 }), nil, []string{"tracing.sample: must be a number from 0 to 1"}},
		{"tracing service name control", trace(func(t *Tracing) { t.ServiceName = "bw\n" }), nil, []string{"tracing.service_name: must be 1 to 128 printable"}},
		{"tracing service name empty written", trace(func(t *Tracing) {}), []string{"tracing.service_name"}, []string{"tracing.service_name: must be 1 to 128"}},
		{"tracing timeout too long", trace(func(t *Tracing) { t.Timeout = Duration(2 * time.Minute) }), nil, []string{"tracing.timeout: must be from 1ms to 1m"}},

		{"webhook loopback http", hook(func(w *EventWebhook) { w.URL = "http://[::1]:9000/hook" }), nil, nil},
		{"webhook url missing", hook(func(w *EventWebhook) { w.URL = "" }), nil, []string{"monitoring.webhook.url: required"}},
		{"webhook http remote", hook(func(w *EventWebhook) { w.URL = "http://siem.example.com/hook" }), nil, []string{"webhook.url: must use https"}},
		{"webhook secret missing", hook(func(w *EventWebhook) { w.Secret = secret.Value{} }), nil, []string{"webhook.secret: required"}},
		{"webhook secret short", hook(func(w *EventWebhook) { w.Secret = secret.New("hunter2") }), nil, []string{"webhook.secret: is 7 bytes; at least 32"}},
		{"webhook severity", hook(func(w *EventWebhook) { w.MinSeverity = "critical" }), nil, []string{`webhook.min_severity: "critical" is not one of info, warning, high`}},
		{"webhook batch zero written", hook(func(w *EventWebhook) {}), []string{"webhook.batch"}, []string{"webhook.batch: must be from 1 to 1000"}},
		{"webhook batch huge", hook(func(w *EventWebhook) { w.Batch = 5000; w.Queue = 10000 }), nil, []string{"webhook.batch: must be from 1 to 1000"}},
		{"webhook queue below batch", hook(func(w *EventWebhook) { w.Batch = 100; w.Queue = 10 }), nil, []string{"webhook.queue: must be at least batch (100)"}},
		{"webhook queue huge", hook(func(w *EventWebhook) { w.Queue = 2_000_000 }), nil, []string{"webhook.queue: must be at most 1000000"}},
		{"webhook interval tiny", hook(func(w *EventWebhook) { w.Interval = Duration(time.Millisecond) }), nil, []string{"webhook.interval: must be from 100ms to 1h"}},
		{"webhook attempts", hook(func(w *EventWebhook) { w.Attempts = 11 }), nil, []string{"webhook.attempts: must be from 1 to 10"}},
		{"webhook timeout", hook(func(w *EventWebhook) { w.Timeout = Duration(time.Hour) }), nil, []string{"webhook.timeout: must be from 1ms to 1m"}},

		{"anomaly ban", anomaly(func(a *Anomaly) { a.Ban = true }), nil, nil},
		{"anomaly window short", anomaly(func(a *Anomaly) { a.Window = Duration(time.Second) }), nil, []string{"anomaly.window: must be from 1m to 24h"}},
		{"anomaly min requests written 0", anomaly(func(a *Anomaly) {}), []string{"anomaly.min_requests"}, []string{"anomaly.min_requests: must be more than 0"}},
		{"anomaly ratios", anomaly(func(a *Anomaly) {
			a.UnauthorizedRatio, a.ForbiddenRatio, a.NotFoundRatio, a.RateLimitedRatio = 1.1, -1, math.NaN(), 7
		}), nil,
			[]string{"unauthorized_ratio: must be", "forbidden_ratio: must be", "not_found_ratio: must be", "rate_limited_ratio: must be"}},
		{"anomaly spike 1", anomaly(func(a *Anomaly) { a.SpikeFactor = 1 }), nil, []string{"anomaly.spike_factor: must be more than 1"}},
		{"anomaly spike NaN", anomaly(func(a *Anomaly) { a.SpikeFactor = math.NaN() }), nil, []string{"anomaly.spike_factor: must be more than 1"}},
		{"anomaly max keys", anomaly(func(a *Anomaly) { a.MaxKeys = 10 }), nil, []string{"anomaly.max_keys: must be from 100 to 10000000"}},
	}
	for _, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			errs := checkMonitoring(tt.m, tt.written...)
			if len(tt.want) == 0 {
				if errs != nil {
					t.Fatalf("unexpected problems:\n%v", errs)
				}
				return
			}
			if len(errs) != len(tt.want) {
				t.Errorf("got %d problems, want %d:\n%v", len(errs), len(tt.want), errs)
			}
			text := errs.Error()
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("missing %q in:\n%s", w, text)
				}
			}
			if strings.Contains(text, goodSecret.Reveal()) || strings.Contains(text, "hunter2") {
				t.Errorf("a problem shows the secret:\n%s", text)
			}
		})
	}
}

func TestParseFloat(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"0.1", 0.1, true}, {"1", 1, true}, {"0", 0, true}, {"1e-3", 0.001, true}, {"-0.5", -0.5, true},
		{"NaN", 0, false}, {"inf", 0, false}, {"-Infinity", 0, false}, {"", 0, false}, {"0.1 ", 0, false},
		{"ten", 0, false}, {"1e999", 0, false}, {"0,5", 0, false},
	} {
		got, err := parseFloat(tt.in)
		if (err == nil) != tt.ok || tt.ok && got != tt.want {
			t.Errorf("parseFloat(%q) = %v, %v", tt.in, got, err)
		}
	}
}
