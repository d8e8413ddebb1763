package validate

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzValidateBody feeds arbitrary bodies to the request validator: it
// must never panic, must answer only 400 or 413, and must accept only
// bodies that encoding/json also finds valid.
func FuzzValidateBody(f *testing.F) {
	for _, s := range []string{
		goodOrder, `{}`, `[]`, `null`, `{"customer":"a","customer":"b"}`, `{"a":1e400}`, `{"a":"\ud800"}`,
		"{\"a\":\"\xff\"}", `[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]`, `{"customer":"a","items":[{"sku":"ABC-1234","quantity":"5"}]}`,
		`{"items":[{"quantity":1e-999999999}]}`, "\x00", `{"a":-0.0e+1}`,
	} {
		f.Add([]byte(s))
	}
	v := load(f, "testdata/orders31.yaml", Options{MaxBodyBytes: 1 << 16, MaxDepth: 16})
	op := v.Operation("POST", "/v1/orders")
	v30 := load(f, "testdata/orders30.yaml", Options{})
	schemas := []*checked{op.body.media[0].schema, v30.Operation("PUT", "/api/v2/orders/1").body.media[0].schema}
	for _, s := range schemas {
		if !s.fast {
			f.Fatal("fast path not enabled")
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		// The fast path never accepts what the schema library refuses.
		if val, err := parseJSON(body, 16); err == nil {
			for _, s := range schemas {
				if accepts(s.s, val, 0) {
					if err := s.s.Validate(val); err != nil {
						t.Fatalf("fast path accepted %q, library: %v", body, err)
					}
				}
			}
		}
		r := httptest.NewRequest("POST", "/v1/orders", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		p := v.ValidateRequest(op, r, nil)
		if p == nil {
			if len(body) > 0 && !json.Valid(body) {
				t.Fatalf("accepted invalid JSON %q", body)
			}
			return
		}
		if p.Status != http.StatusBadRequest && p.Status != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d", p.Status)
		}
		if _, err := parseJSON(body, 16); err == nil && !json.Valid(body) {
			t.Fatalf("parser accepted invalid JSON %q", body)
		}
	})
}

// FuzzFilterJSON: the response rewriter never panics and, when it
// succeeds, writes valid JSON.
func FuzzFilterJSON(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"x":2}`, `[{"id":1,"items":[{"sku":"a","z":1}]}]`, `{"customer":{"a":1}}`, `"s"`, `{"id":1,`,
		`{"items":[[[[1]]]]}`, "{\"t\\u006fken\":1}",
	} {
		f.Add([]byte(s))
	}
	v := load(f, "testdata/orders31.yaml", Options{})
	roots := []*filterNode{
		v.Operation("GET", "/v1/orders/1").statuses[200].media[0].filter,
		v.Operation("GET", "/v1/shapes").statuses[200].media[0].filter,
		v.Operation("GET", "/v1/open").statuses[200].media[0].filter,
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, root := range roots {
			out, err := filterJSON(body, root, 32)
			if err == nil && !json.Valid(out) {
				t.Fatalf("filter of %q wrote invalid JSON %q", body, out)
			}
		}
	})
}
