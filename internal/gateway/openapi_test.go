package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/breakwater/breakwater/internal/config"
)

const itemsSpec = `openapi: 3.1.0
info: { title: Items, version: "1" }
paths:
  /items:
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              additionalProperties: false
              required: [name]
              properties:
                name: { type: string, maxLength: 20 }
                quantity: { type: integer, minimum: 1, maximum: 100 }
      responses:
        "201":
          description: created
          content:
            application/json:
              schema:
                type: object
                properties:
                  id: { type: string }
                  name: { type: string }
`

const openapiConfig = `
version: 1
server: { admin: "off", data_dir: "${DATA}" }
tls: { self_signed: true }
routes:
  - name: items
    path: /items/**
    upstream: { targets: ["${UPSTREAM}"] }
    auth: none
    openapi: { spec: "${SPEC}", validate_requests: true, filter_responses: true }
`

func newOpenAPIGateway(t *testing.T, upstream http.HandlerFunc) *Gateway {
	t.Helper()
	up := httptest.NewServer(upstream)
	t.Cleanup(up.Close)
	spec := filepath.Join(t.TempDir(), "items.yaml")
	if err := os.WriteFile(spec, []byte(itemsSpec), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"UPSTREAM": up.URL, "DATA": t.TempDir(), "SPEC": spec}
	cfg, err := config.Parse([]byte(openapiConfig), "", func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	g, err := New(context.Background(), cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

func TestOpenAPIRequests(t *testing.T) {
	reached := 0
	g := newOpenAPIGateway(t, func(w http.ResponseWriter, r *http.Request) {
		reached++
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		w.Write([]byte(`{"id":"i-1","name":"buoy","owner_email":"ceo@example.com","internal_cost":12.5}`))
	})
	post := func(path, ct, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", path, strings.NewReader(body))
		r.RemoteAddr = "192.0.2.1:1"
		r.Header.Set("Content-Type", ct)
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		return w
	}
	for _, tc := range []struct {
		name, path, ct, body string
		want                 int
		field                string
	}{
		{"valid", "/items", "application/json", `{"name":"buoy","quantity":2}`, 201, ""},
		{"mass assignment", "/items", "application/json", `{"name":"buoy","is_admin":true}`, 400, "body"},
		{"type confusion", "/items", "application/json", `{"name":"buoy","quantity":"2"}`, 400, "quantity"},
		{"out of range", "/items", "application/json", `{"name":"buoy","quantity":1000}`, 400, "quantity"},
		{"overlong", "/items", "application/json", `{"name":"` + strings.Repeat("x", 50) + `"}`, 400, "name"},
		{"duplicate keys", "/items", "application/json", `{"name":"a","name":"b"}`, 400, "body"},
		{"deep nesting", "/items", "application/json", strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000), 400, "body"},
		{"wrong content type", "/items", "text/plain", `name=buoy`, 415, ""},
		{"undeclared operation", "/items/1", "application/json", `{}`, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := reached
			w := post(tc.path, tc.ct, tc.body)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if tc.want >= 400 {
				if reached != before {
					t.Error("an invalid request reached the upstream")
				}
				if tc.field != "" && !strings.Contains(w.Body.String(), tc.field) {
					t.Errorf("the problem does not name %q: %s", tc.field, w.Body)
				}
				if strings.Contains(w.Body.String(), "xxxx") || strings.Contains(w.Body.String(), "1000") || strings.Contains(w.Body.String(), "true") {
					t.Errorf("the problem echoes the input: %s", w.Body)
				}
				return
			}
			// Over-exposed data never passes: undeclared properties are removed.
			var got map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if _, leak := got["owner_email"]; leak || got["id"] != "i-1" || len(got) != 2 {
				t.Errorf("filtered response %v; want only id and name", got)
			}
		})
	}
}
