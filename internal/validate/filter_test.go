package validate

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func newResponse(status int, ct, body string) *http.Response {
	h := http.Header{}
	if ct != "" {
		h.Set("Content-Type", ct)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}
}

func TestFilterResponse(t *testing.T) {
	v := load(t, "testdata/orders31.yaml", Options{MaxResponseBytes: 4096})
	cases := []struct {
		name, method, path string
		status             int
		ct, body           string
		want               string // filtered body; "" with err set: error
		err                error
	}{
		{name: "undeclared property removed", method: "GET", path: "/v1/orders/1", status: 200, ct: "application/json",
			body: `{"id":1,"customer":"ann","password_hash":"x","total":9.50}`, want: `{"id":1,"customer":"ann","total":9.50}`},
		{name: "nested in array items", method: "GET", path: "/v1/orders/1", status: 200, ct: "application/json",
			body: `{"id":1,"items":[{"sku":"A","quantity":1,"cost":3},{"sku":"B","internal":{"x":1}}]}`,
			want: `{"id":1,"items":[{"sku":"A","quantity":1},{"sku":"B"}]}`},
		{name: "top-level array", method: "GET", path: "/v1/orders", status: 200, ct: "application/json; charset=utf-8",
			body: `[{"id":1,"ssn":"x"},{"id":2,"customer":"b","debug":[1,2]}]`, want: `[{"id":1},{"id":2,"customer":"b"}]`},
		{name: "range response 4XX", method: "GET", path: "/v1/orders", status: 404, ct: "application/problem+json",
			body: `{"title":"Not Found","status":404,"stack":"at db.go:12"}`, want: `{"title":"Not Found","status":404}`},
		{name: "allOf merges", method: "GET", path: "/v1/shapes", status: 200, ct: "application/json",
			body: `{"base":{"id":1,"name":"n","secret":true}}`, want: `{"base":{"id":1,"name":"n"}}`},
		{name: "oneOf keeps any branch's properties", method: "GET", path: "/v1/shapes", status: 200, ct: "application/json",
			body: `{"one":{"kind":"circle","radius":1,"side":2,"x":3}}`, want: `{"one":{"kind":"circle","radius":1,"side":2}}`},
		{name: "anyOf in array", method: "GET", path: "/v1/shapes", status: 200, ct: "application/json",
			body: `[1]`, want: `[1]`},
		{name: "anyOf items", method: "GET", path: "/v1/shapes", status: 200, ct: "application/json",
			body: `{"any":[{"kind":"square","side":2,"owner":"x"},{"radius":1,"z":0}],"extra":1}`,
			want: `{"any":[{"kind":"square","side":2},{"radius":1}]}`},
		{name: "recursive schema", method: "GET", path: "/v1/tree", status: 200, ct: "application/json",
			body: `{"name":"r","x":1,"children":[{"name":"c","children":[{"name":"g","y":2}],"z":3}]}`,
			want: `{"name":"r","children":[{"name":"c","children":[{"name":"g"}]}]}`},
		{name: "additionalProperties true keeps", method: "GET", path: "/v1/open", status: 200, ct: "application/json",
			body: `{"meta":{"a":"1","b":{"deep":true}},"drop":1}`, want: `{"meta":{"a":"1","b":{"deep":true}}}`},
		{name: "schema without properties keeps", method: "GET", path: "/v1/open", status: 200, ct: "application/json",
			body: `{"free":{"anything":[1,{"x":2}]}}`, want: `{"free":{"anything":[1,{"x":2}]}}`},
		{name: "additionalProperties schema filters values", method: "GET", path: "/v1/open", status: 200, ct: "application/json",
			body: `{"labels":{"a":{"v":"1","w":"2"},"b":{"v":"3"}}}`, want: `{"labels":{"a":{"v":"1"},"b":{"v":"3"}}}`},
		{name: "oneOf scalar branch does not open objects", method: "GET", path: "/v1/open", status: 200, ct: "application/json",
			body: `{"mixed":{"k":"v","secret":1}}`, want: `{"mixed":{"k":"v"}}`},
		{name: "oneOf scalar", method: "GET", path: "/v1/open", status: 200, ct: "application/json",
			body: `{"mixed":"s"}`, want: `{"mixed":"s"}`},
		{name: "type mismatch drops object content", method: "GET", path: "/v1/orders/1", status: 200, ct: "application/json",
			body: `{"customer":{"card":"4111"}}`, want: `{"customer":{}}`},
		{name: "strings and escapes kept exactly", method: "GET", path: "/v1/orders/1", status: 200, ct: "application/json",
			body: "{\"customer\":\"a\\\"b\\u00e9\",\"t\\u006fken\":\"x\"}", want: "{\"customer\":\"a\\\"b\\u00e9\"}"},
		{name: "undeclared status masked", method: "GET", path: "/v1/orders/mine", status: 500, ct: "text/html",
			body: `<pre>stack trace</pre>`, err: ErrUndeclaredStatus},
		{name: "undeclared 2xx masked", method: "POST", path: "/v1/orders", status: 200, ct: "application/json", body: `{}`, err: ErrUndeclaredStatus},
		{name: "default declared", method: "GET", path: "/v1/orders/1", status: 503, ct: "text/plain", body: `busy`, want: `busy`},
		{name: "304 allowed", method: "GET", path: "/v1/orders/mine", status: 304, body: ``, want: ``},
		{name: "no schema passes", method: "DELETE", path: "/v1/orders/1", status: 204, body: ``, want: ``},
		{name: "non-JSON passes", method: "GET", path: "/v1/orders/mine", status: 200, ct: "text/csv", body: "a,b\n", want: "a,b\n"},
		{name: "JSON under an undeclared JSON type still filtered", method: "GET", path: "/v1/orders/1", status: 200,
			ct: "application/vnd.x+json", body: `{"id":1,"x":2}`, want: `{"id":1}`},
		{name: "invalid JSON", method: "GET", path: "/v1/orders/1", status: 200, ct: "application/json", body: `{"id":1,`, err: ErrUnfilterable},
		{name: "too large", method: "GET", path: "/v1/orders/1", status: 200, ct: "application/json",
			body: `{"customer":"` + strings.Repeat("a", 5000) + `"}`, err: ErrResponseTooLarge},
		{name: "too deep", method: "GET", path: "/v1/orders/1", status: 200, ct: "application/json",
			body: strings.Repeat("[", 100) + strings.Repeat("]", 100), err: ErrUnfilterable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			op := v.Operation(c.method, c.path)
			if op == nil {
				t.Fatal("no operation")
			}
			resp := newResponse(c.status, c.ct, c.body)
			err := v.FilterResponse(op, resp)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("err = %v, want %v", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			if string(got) != c.want {
				t.Fatalf("body = %s, want %s", got, c.want)
			}
			if resp.ContentLength != int64(len(got)) || resp.Header.Get("Content-Length") != strconv.Itoa(len(got)) {
				t.Fatalf("Content-Length %d / %q for %d bytes", resp.ContentLength, resp.Header.Get("Content-Length"), len(got))
			}
		})
	}
}

func TestFilterResponseGzip(t *testing.T) {
	v := load(t, "testdata/orders31.yaml", Options{})
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, _ = zw.Write([]byte(`{"id":1,"secret":"s"}`))
	_ = zw.Close()
	resp := newResponse(200, "application/json", b.String())
	resp.Header.Set("Content-Encoding", "gzip")
	if err := v.FilterResponse(v.Operation("GET", "/v1/orders/1"), resp); err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	if string(got) != `{"id":1}` || resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("body %s, encoding %q", got, resp.Header.Get("Content-Encoding"))
	}
	resp = newResponse(200, "application/json", "x")
	resp.Header.Set("Content-Encoding", "br")
	if err := v.FilterResponse(v.Operation("GET", "/v1/orders/1"), resp); !errors.Is(err, ErrUnfilterable) {
		t.Errorf("br: %v", err)
	}
}

// blockingBody returns one chunk, then blocks until released: a filter that
// buffered it would hang.
type blockingBody struct {
	first   []byte
	release chan struct{}
}

func (b *blockingBody) Read(p []byte) (int, error) {
	if len(b.first) > 0 {
		n := copy(p, b.first)
		b.first = b.first[n:]
		return n, nil
	}
	<-b.release
	return 0, io.EOF
}

func (b *blockingBody) Close() error { return nil }

func TestFilterResponseStreams(t *testing.T) {
	v := load(t, "testdata/orders31.yaml", Options{})
	cases := []struct {
		name, method, path, ct string
		status                 int
	}{
		{"no response schema", "GET", "/v1/files/a.json", "application/json", 200},
		{"non-JSON media type", "GET", "/v1/orders/mine", "text/csv", 200},
		{"default without content", "GET", "/v1/orders/1", "application/json", 500},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := &blockingBody{first: []byte(`{"chunk":1`), release: make(chan struct{})}
			defer close(body.release)
			resp := &http.Response{StatusCode: c.status, Header: http.Header{"Content-Type": {c.ct}}, Body: body, ContentLength: -1}
			done := make(chan error, 1)
			go func() { done <- v.FilterResponse(v.Operation(c.method, c.path), resp) }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("FilterResponse buffered a response it should stream")
			}
			if resp.Body != body {
				t.Fatal("body replaced")
			}
		})
	}
}

func TestFilterNilOperation(t *testing.T) {
	v := load(t, "testdata/orders31.yaml", Options{})
	if err := v.FilterResponse(nil, newResponse(500, "text/plain", "x")); err != nil {
		t.Error(err)
	}
}
