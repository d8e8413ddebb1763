package validate

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// body1KB is a typical order of about 1 KB against NewOrder (15 properties).
var body1KB = []byte(`{"customer":"Ann Example","email":"ann@example.com","kind":"retail","priority":2,"price":1249.5,` +
	`"placed":"2024-05-01T10:20:30Z","gift":false,"channel":"web","ref":"123e4567-e89b-12d3-a456-426614174000",` +
	`"coupon":null,"notes":"Leave the parcel at the back door, please; ring twice.",` +
	`"address":{"street":"1 Main Street","city":"Springfield","zip":"12345"},"tags":["spring","promo","vip"],` +
	`"items":[` + strings.Repeat(`{"sku":"ABC-1234","quantity":3,"note":"gift wrap"},`, 9) + `{"sku":"XYZ-9876","quantity":1,"note":null}]}`)

func BenchmarkValidateRequest1KB(b *testing.B) {
	v := load(b, "testdata/orders31.yaml", Options{})
	op := v.Operation("POST", "/v1/orders")
	r := httptest.NewRequest("POST", "/v1/orders", nil)
	r.Header.Set("Content-Type", "application/json")
	b.SetBytes(int64(len(body1KB)))
	b.ReportAllocs()
	for b.Loop() {
		r.Body = io.NopCloser(bytes.NewReader(body1KB))
		r.ContentLength = int64(len(body1KB))
		if p := v.ValidateRequest(op, r, nil); p != nil {
			b.Fatal(p)
		}
	}
}

func BenchmarkValidateRequestParams(b *testing.B) {
	v := load(b, "testdata/orders31.yaml", Options{})
	op := v.Operation("GET", "/v1/orders")
	r := httptest.NewRequest("GET", "/v1/orders?limit=10&status=open&tags=a&tags=b", nil)
	r.Header.Set("X-Tenant", "acme")
	b.ReportAllocs()
	for b.Loop() {
		if p := v.ValidateRequest(op, r, nil); p != nil {
			b.Fatal(p)
		}
	}
}

func BenchmarkOperation(b *testing.B) {
	v := load(b, "testdata/orders31.yaml", Options{})
	b.ReportAllocs()
	for b.Loop() {
		if v.Operation("GET", "/v1/orders/42") == nil {
			b.Fatal("no operation")
		}
	}
}

func BenchmarkFilterResponse1KB(b *testing.B) {
	v := load(b, "testdata/orders31.yaml", Options{})
	op := v.Operation("GET", "/v1/orders")
	body := []byte(`[` + strings.Repeat(`{"id":1234,"customer":"Ann Example","secret":"x","total":12.5,"items":[{"sku":"ABC-1234","quantity":3,"cost":1}]},`, 7) +
		`{"id":1}]`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body))}
		if err := v.FilterResponse(op, resp); err != nil {
			b.Fatal(err)
		}
	}
}
