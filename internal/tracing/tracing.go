// Package tracing exports OpenTelemetry spans of the request path over
// OTLP/HTTP (docs/tracing.md).
//
// A nil *Tracer is tracing turned off: every method is then a no-op that
// costs a nil check and allocates nothing, so the gateway calls them
// unconditionally. The W3C traceparent of a request is honoured only when
// the caller says the peer is a trusted proxy; otherwise the request
// starts a new trace. Nothing here touches OpenTelemetry's global state.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/breakwater/breakwater/internal/config"
)

// Span names.
const (
	SpanRequest      = "breakwater.request"
	SpanAuthenticate = "breakwater.authenticate"
	SpanLimits       = "breakwater.limits"
	SpanValidate     = "breakwater.validate"
	SpanUpstream     = "breakwater.upstream"
)

// tracesPath is where OTLP/HTTP collectors take spans.
const tracesPath = "/v1/traces"

// Tracer starts the gateway's spans and exports them. Its methods are safe
// for concurrent use; a nil *Tracer does nothing.
type Tracer struct {
	tp      *sdktrace.TracerProvider
	tracer  trace.Tracer
	prop    propagation.TraceContext
	timeout time.Duration
}

// New returns a tracer exporting to cfg.Endpoint with a batch span
// processor, sampling cfg.Sample of new traces (continued traces follow
// their parent's decision). cfg has had config.Defaults applied. A nil cfg
// returns a nil Tracer: tracing off. version is the service.version
// attribute ("" leaves it out). ctx bounds only the setup.
func New(ctx context.Context, cfg *config.Tracing, version string) (*Tracer, error) {
	if cfg == nil {
		return nil, nil
	}
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || u.Host == "" || u.User != nil || u.Scheme != "https" && u.Scheme != "http" {
		return nil, errors.New("tracing: the endpoint must be an http(s) URL without credentials")
	}
	timeout := cfg.Timeout.D()
	if timeout <= 0 {
		timeout = config.DefaultTracingTimeout.D()
	}
	path := u.Path
	if path == "" || path == "/" {
		path = tracesPath
	}
	exp, err := otlptracehttp.New(ctx,
		otlptracehttp.WithEndpointURL(cfg.Endpoint),
		otlptracehttp.WithURLPath(path),
		otlptracehttp.WithTimeout(timeout),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{
			Enabled: true, InitialInterval: 500 * time.Millisecond, MaxInterval: timeout, MaxElapsedTime: 2 * timeout,
		}),
		// Its own client: a bounded exchange that never follows redirects.
		otlptracehttp.WithHTTPClient(&http.Client{
			Timeout:       timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", cfg.ServiceName)}
	if version != "" {
		attrs = append(attrs, attribute.String("service.version", version))
	}
	sample := cfg.Sample
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(sample))),
		sdktrace.WithBatcher(exp,
			sdktrace.WithMaxQueueSize(4096),
			sdktrace.WithMaxExportBatchSize(512),
			sdktrace.WithBatchTimeout(5*time.Second),
			sdktrace.WithExportTimeout(timeout),
		),
		sdktrace.WithRawSpanLimits(sdktrace.SpanLimits{
			AttributeValueLengthLimit: 256, AttributeCountLimit: 32, EventCountLimit: 8, LinkCountLimit: 4,
			AttributePerEventCountLimit: 8, AttributePerLinkCountLimit: 8,
		}),
	)
	return &Tracer{tp: tp, tracer: tp.Tracer("github.com/breakwater/breakwater"), timeout: timeout}, nil
}

// Shutdown exports the spans still queued and stops the exporter, within
// the tracer's timeout (or ctx's deadline, if sooner).
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	if err := t.tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}

// Extract returns ctx carrying the remote span of the request's W3C
// traceparent/tracestate headers when trusted (the peer is a trusted
// proxy), and ctx unchanged otherwise: a client outside cannot choose the
// trace, nor force sampling, of its requests.
func (t *Tracer) Extract(ctx context.Context, h http.Header, trusted bool) context.Context {
	if t == nil || !trusted {
		return ctx
	}
	return t.prop.Extract(ctx, propagation.HeaderCarrier(h))
}

// Inject replaces traceparent and tracestate in h (the upstream request's
// headers) with those of the span in ctx. Without a span they are removed,
// so that a client's own traceparent never reaches an upstream as if the
// gateway had sent it.
func (t *Tracer) Inject(ctx context.Context, h http.Header) {
	if t == nil {
		return
	}
	h.Del("Traceparent")
	h.Del("Tracestate")
	t.prop.Inject(ctx, propagation.HeaderCarrier(h))
}

// Span is a started span; the zero Span (from a nil Tracer) does nothing.
// Its methods allocate nothing when tracing is off.
type Span struct {
	s trace.Span
}

// StartRequest starts the server span of a request (call Extract first).
// method is the request's method; requestID its X-Request-Id.
func (t *Tracer) StartRequest(ctx context.Context, method, requestID string) (context.Context, Span) {
	if t == nil {
		return ctx, Span{}
	}
	ctx, s := t.tracer.Start(ctx, SpanRequest, trace.WithSpanKind(trace.SpanKindServer))
	if s.IsRecording() {
		s.SetAttributes(attribute.String("http.request.method", method), attribute.String("breakwater.request_id", requestID))
	}
	return ctx, Span{s}
}

// StartAuthenticate starts the span of authentication.
func (t *Tracer) StartAuthenticate(ctx context.Context) (context.Context, Span) {
	return t.start(ctx, SpanAuthenticate, trace.SpanKindInternal)
}

// StartLimits starts the span of the rate limits and quotas.
func (t *Tracer) StartLimits(ctx context.Context) (context.Context, Span) {
	return t.start(ctx, SpanLimits, trace.SpanKindInternal)
}

// StartValidate starts the span of request validation.
func (t *Tracer) StartValidate(ctx context.Context) (context.Context, Span) {
	return t.start(ctx, SpanValidate, trace.SpanKindInternal)
}

// StartUpstream starts the client span of the upstream call; pass its
// context to Inject.
func (t *Tracer) StartUpstream(ctx context.Context) (context.Context, Span) {
	return t.start(ctx, SpanUpstream, trace.SpanKindClient)
}

func (t *Tracer) start(ctx context.Context, name string, kind trace.SpanKind) (context.Context, Span) {
	if t == nil {
		return ctx, Span{}
	}
	ctx, s := t.tracer.Start(ctx, name, trace.WithSpanKind(kind))
	return ctx, Span{s}
}

// Recording reports whether the span is sampled and recorded.
func (s Span) Recording() bool { return s.s != nil && s.s.IsRecording() }

// SetRoute records the route's name from the config (never a raw path).
func (s Span) SetRoute(name string) {
	if s.Recording() {
		s.s.SetAttributes(attribute.String("http.route", name))
	}
}

// SetConsumer records the authenticated consumer's id.
func (s Span) SetConsumer(id string) {
	if s.Recording() {
		s.s.SetAttributes(attribute.String("breakwater.consumer", id))
	}
}

// SetUpstream records the upstream target (host:port).
func (s Span) SetUpstream(hostPort string) {
	if s.Recording() {
		s.s.SetAttributes(attribute.String("server.address", hostPort))
	}
}

// SetStatus records the HTTP status; a 5xx marks the span as an error.
func (s Span) SetStatus(code int) {
	if !s.Recording() {
		return
	}
	s.s.SetAttributes(attribute.Int("http.response.status_code", code))
	if code >= 500 {
		s.s.SetStatus(codes.Error, "")
	}
}

// Fail marks the span as failed with a gateway-written reason (never
// client input or a credential).
func (s Span) Fail(reason string) {
	if s.Recording() {
		s.s.SetStatus(codes.Error, reason)
	}
}

// End ends the span.
func (s Span) End() {
	if s.s != nil {
		s.s.End()
	}
}
