package tracing

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/breakwater/breakwater/internal/config"
)

// receiver is an OTLP/HTTP collector that keeps the bodies it was sent.
type receiver struct {
	mu     sync.Mutex
	bodies [][]byte
	bad    []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	rc.mu.Lock()
	defer rc.mu.Unlock()
	switch {
	case r.Method != http.MethodPost:
		rc.bad = append(rc.bad, "method "+r.Method)
	case r.URL.Path != "/v1/traces":
		rc.bad = append(rc.bad, "path "+r.URL.Path)
	case r.Header.Get("Content-Type") != "application/x-protobuf":
		rc.bad = append(rc.bad, "content type "+r.Header.Get("Content-Type"))
	case len(body) == 0:
		rc.bad = append(rc.bad, "empty body")
	}
	rc.bodies = append(rc.bodies, body)
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

func (rc *receiver) all() []byte {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return bytes.Join(rc.bodies, nil)
}

func newTracer(t *testing.T, endpoint string, sample float64) *Tracer {
	t.Helper()
	tr, err := New(context.Background(), &config.Tracing{Endpoint: endpoint, Sample: sample, ServiceName: "bw-test",
		Timeout: config.Duration(5 * time.Second)}, "v1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// pipeline runs the spans the gateway starts for one request.
func pipeline(tr *Tracer, in http.Header, trusted bool) (out http.Header, traceID trace.TraceID) {
	ctx := tr.Extract(context.Background(), in, trusted)
	ctx, req := tr.StartRequest(ctx, "GET", "req-1")
	req.SetRoute("items")
	_, auth := tr.StartAuthenticate(ctx)
	auth.SetConsumer("acme")
	auth.End()
	_, lim := tr.StartLimits(ctx)
	lim.End()
	_, val := tr.StartValidate(ctx)
	val.Fail("body does not match the schema")
	val.End()
	uctx, up := tr.StartUpstream(ctx)
	up.SetUpstream("10.0.0.1:8080")
	out = http.Header{"Traceparent": {"00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01"}, "Tracestate": {"evil=1"}}
	tr.Inject(uctx, out)
	up.SetStatus(502)
	up.End()
	req.SetStatus(200)
	req.End()
	return out, trace.SpanContextFromContext(ctx).TraceID()
}

func TestExportOverOTLPHTTP(t *testing.T) {
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	tr := newTracer(t, srv.URL, 1)
	out, id := pipeline(tr, http.Header{"Traceparent": {parent}}, true)
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rc.bad) > 0 {
		t.Fatalf("bad requests: %v", rc.bad)
	}
	body := rc.all()
	for _, name := range []string{SpanRequest, SpanAuthenticate, SpanLimits, SpanValidate, SpanUpstream, "bw-test", "v1.2.3", "items", "acme", "10.0.0.1:8080"} {
		if !bytes.Contains(body, []byte(name)) {
			t.Errorf("the export does not contain %q", name)
		}
	}
	if id.String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("trace id %s: the trusted parent was not continued", id)
	}
	tp := out.Get("Traceparent")
	if !strings.HasPrefix(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-") || strings.Contains(tp, "00f067aa0ba902b7") || len(out.Values("Traceparent")) != 1 {
		t.Errorf("upstream traceparent %q", tp)
	}
	if out.Get("Tracestate") != "" {
		t.Errorf("the client's tracestate reached the upstream: %q", out.Get("Tracestate"))
	}
	// After shutdown, spans are dropped quietly.
	pipeline(tr, http.Header{}, false)
}

func TestExtractTrust(t *testing.T) {
	tr := newTracer(t, "http://127.0.0.1:9/", 1) // nothing listens: export fails, quietly
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = tr.Shutdown(ctx)
	}()
	rows := []struct {
		name    string
		h       http.Header
		trusted bool
		cont    bool
	}{
		{"trusted proxy", http.Header{"Traceparent": {parent}}, true, true},
		{"untrusted client", http.Header{"Traceparent": {parent}}, false, false},
		{"trusted, malformed", http.Header{"Traceparent": {"00-zz-00f067aa0ba902b7-01"}}, true, false},
		{"trusted, all-zero trace id", http.Header{"Traceparent": {"00-00000000000000000000000000000000-00f067aa0ba902b7-01"}}, true, false},
		{"trusted, version ff", http.Header{"Traceparent": {"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}, true, false},
		{"trusted, huge header", http.Header{"Traceparent": {strings.Repeat("0", 1<<16)}}, true, false},
		{"trusted, none", http.Header{}, true, false},
	}
	for _, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			_, id := pipeline(tr, tt.h, tt.trusted)
			if got := id.String() == "4bf92f3577b34da6a3ce929d0e0e4736"; got != tt.cont {
				t.Errorf("continued = %v (trace %s), want %v", got, id, tt.cont)
			}
			if !id.IsValid() {
				t.Error("no trace started")
			}
		})
	}
}

func TestSampleZeroFollowsTrustedParent(t *testing.T) {
	tr := newTracer(t, "http://127.0.0.1:9/", 0)
	defer func() { _ = tr.Shutdown(context.Background()) }()
	ctx, s := tr.StartRequest(context.Background(), "GET", "r")
	if s.Recording() {
		t.Error("sample 0 recorded a new trace")
	}
	s.End()
	ctx = tr.Extract(ctx, http.Header{"Traceparent": {parent}}, true)
	_, s = tr.StartRequest(ctx, "GET", "r")
	if !s.Recording() {
		t.Error("a sampled trusted parent was not followed")
	}
	s.End()
}

func TestNilTracer(t *testing.T) {
	var tr *Tracer
	h := http.Header{"Traceparent": {parent}}
	out, id := pipeline(tr, h, true)
	if id.IsValid() {
		t.Error("a nil tracer started a trace")
	}
	if out.Get("Traceparent") == "" {
		t.Error("a nil tracer changed the upstream headers")
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
	if tr, err := New(context.Background(), nil, ""); tr != nil || err != nil {
		t.Errorf("New(nil) = %v, %v", tr, err)
	}
}

func TestNewRefuses(t *testing.T) {
	for _, ep := range []string{"", "otel:4318", "ftp://h/", "https://u:p@h/"} {
		if _, err := New(context.Background(), &config.Tracing{Endpoint: ep, Sample: 1, ServiceName: "x"}, ""); err == nil {
			t.Errorf("%q accepted", ep)
		} else if strings.Contains(err.Error(), "u:p") {
			t.Errorf("error shows credentials: %v", err)
		}
	}
}

func TestShutdownBounded(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	tr, err := New(context.Background(), &config.Tracing{Endpoint: srv.URL, Sample: 1, ServiceName: "x", Timeout: config.Duration(300 * time.Millisecond)}, "")
	if err != nil {
		t.Fatal(err)
	}
	pipeline(tr, http.Header{}, false)
	start := time.Now()
	_ = tr.Shutdown(context.Background()) // the collector never answers
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Shutdown took %v", d)
	}
}

// FuzzExtract feeds trusted traceparent/tracestate headers to the
// propagator and the span path: nothing may panic, and a continued trace
// is always a valid one.
func FuzzExtract(f *testing.F) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }))
	f.Cleanup(srv.Close)
	tr, err := New(context.Background(), &config.Tracing{Endpoint: srv.URL, Sample: 0, ServiceName: "fuzz",
		Timeout: config.Duration(5 * time.Second)}, "")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	f.Add(parent, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", "")
	f.Add("", "a=b")
	f.Fuzz(func(t *testing.T, traceparent, tracestate string) {
		h := http.Header{"Traceparent": {traceparent}, "Tracestate": {tracestate}}
		out, id := pipeline(tr, h, true)
		if !id.IsValid() {
			t.Fatalf("no valid trace for %q", traceparent)
		}
		if len(out.Values("Traceparent")) > 1 {
			t.Fatalf("several traceparents sent upstream: %q", out.Values("Traceparent"))
		}
	})
}

func BenchmarkNilTracer(b *testing.B) {
	var tr *Tracer
	ctx := context.Background()
	h := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		c := tr.Extract(ctx, h, true)
		c, req := tr.StartRequest(c, "GET", "id")
		_, a := tr.StartAuthenticate(c)
		a.End()
		_, l := tr.StartLimits(c)
		l.End()
		_, v := tr.StartValidate(c)
		v.End()
		uc, u := tr.StartUpstream(c)
		tr.Inject(uc, h)
		u.SetStatus(200)
		u.End()
		req.SetRoute("items")
		req.End()
	}
}

func benchmarkTracer(b *testing.B, sample float64) {
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	tr, err := New(context.Background(), &config.Tracing{Endpoint: srv.URL, Sample: sample, ServiceName: "bench", Timeout: config.Duration(5 * time.Second)}, "")
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = tr.Shutdown(context.Background()) }()
	h := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		pipeline(tr, h, false)
	}
}

// BenchmarkTracerNotSampled is tracing on, the request not sampled.
func BenchmarkTracerNotSampled(b *testing.B) { benchmarkTracer(b, 0) }

// BenchmarkTracerSampled is tracing on, every request recorded and exported.
func BenchmarkTracerSampled(b *testing.B) { benchmarkTracer(b, 1) }
