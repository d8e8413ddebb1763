package inventory

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/pb33f/libopenapi"
)

func TestHandler(t *testing.T) {
	inv, c := newTest(t, Options{})
	inv.Record(Hit{Route: "users", Operation: "GET /users/{id}", Status: 200, Consumer: "alice"})
	inv.Record(Hit{Route: "users", Method: "GET", Path: "/internal/debug", Status: 200})
	c.Advance(40 * 24 * time.Hour)
	h := inv.Handler()
	for _, tc := range []struct {
		query  string
		status int
		check  func(t *testing.T, rep *Report)
	}{
		{"", 200, func(t *testing.T, rep *Report) {
			if len(rep.Routes) != 2 || len(rep.Operations) != 3 || len(rep.Shadow) != 1 || len(rep.Zombies) != 5 {
				t.Errorf("report %+v", rep)
			}
		}},
		{"?zombie_after=60d", 200, func(t *testing.T, rep *Report) {
			if len(rep.Zombies) != 0 || rep.ZombieAfter != "1440h0m0s" {
				t.Errorf("zombies %+v with 60d", rep.Zombies)
			}
		}},
		{"?zombie_after=1m", 400, nil},
		{"?zombie_after=99999d", 400, nil},
		{"?zombie_after=x", 400, nil},
		{"?zombie_after=1d&zombie_after=2d", 400, nil},
		{"?limit=1", 400, nil},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/admin/inventory"+tc.query, nil))
		if rec.Code != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.query, rec.Code, rec.Body, tc.status)
			continue
		}
		if tc.check == nil {
			continue
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("content type %q", ct)
		}
		var rep Report
		if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{`"routes"`, `"operations"`, `"shadow"`, `"zombies"`, `"deprecated"`, `"generated_at"`, `"since"`} {
			if !strings.Contains(rec.Body.String(), key) {
				t.Errorf("no %s in %s", key, rec.Body)
			}
		}
		tc.check(t, &rep)
	}
}

func TestFetch(t *testing.T) {
	inv, _ := newTest(t, Options{})
	inv.Record(Hit{Route: "health", Status: 200})
	const token = "s3cret-admin-token"
	mux := http.NewServeMux()
	mux.HandleFunc("/admin/inventory", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		inv.Handler().ServeHTTP(w, r)
	})
	mux.HandleFunc("/redirect/admin/inventory", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/admin/inventory", http.StatusFound)
	})
	mux.HandleFunc("/big/admin/inventory", func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte(" "), MaxReportBytes+10))
	})
	mux.HandleFunc("/html/admin/inventory", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>")) })
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	ctx := context.Background()

	rep, err := Fetch(ctx, srv.Client(), srv.URL+"/", token, "10d")
	if err != nil {
		t.Fatal(err)
	}
	if find(rep.Routes, "health", "").Requests != 1 || rep.ZombieAfter != "240h0m0s" {
		t.Errorf("fetched %+v", rep)
	}
	for _, tc := range []struct{ admin, token, want string }{
		{srv.URL, "wrong", "refused the admin token"},
		{srv.URL + "/redirect", token, "302"},
		{srv.URL + "/big", token, "larger than"},
		{srv.URL + "/html", token, "not an inventory"},
		{"ftp://x", token, "want http"},
		{"http://user:pw@127.0.0.1:1", token, "no user"},
		{"http://127.0.0.1:1", token, "reading the inventory"},
	} {
		_, err := Fetch(ctx, srv.Client(), tc.admin, tc.token, "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Fetch(%s): %v, want %q", tc.admin, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "pw") {
			t.Errorf("error shows a secret: %v", err)
		}
	}
}

func sampleReport(t *testing.T) *Report {
	t.Helper()
	inv, c := newTest(t, Options{})
	inv.Record(Hit{Route: "users", Method: "DELETE", Path: "/users/42", Status: 204, Consumer: "ops"})
	inv.Record(Hit{Route: "users", Method: "DELETE", Path: "/users/43", Status: 204})
	inv.Record(Hit{Route: "users", Method: "GET", Path: "/users/42/orders/7", Status: 200})
	inv.Record(Hit{Route: "users", Method: "PROPFIND", Path: "/dav", Status: 405})
	inv.Record(Hit{Route: "users", Operation: "GET /v1/users", Status: 200, Consumer: "legacy\x1b[2J"})
	c.Advance(31 * 24 * time.Hour)
	return inv.Report(0)
}

func TestSkeleton(t *testing.T) {
	out, err := Skeleton(sampleReport(t))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string `yaml:"openapi"`
		Info    struct {
			Title, Version, Description string
		} `yaml:"info"`
		Paths map[string]map[string]struct {
			Description string `yaml:"description"`
			Parameters  []struct {
				Name     string `yaml:"name"`
				In       string `yaml:"in"`
				Required bool   `yaml:"required"`
			} `yaml:"parameters"`
			Shadow    bool           `yaml:"x-breakwater-shadow"`
			Route     string         `yaml:"x-breakwater-route"`
			Responses map[string]any `yaml:"responses"`
		} `yaml:"paths"`
	}
	if err := yaml.Unmarshal(out, &doc); err != nil {
		t.Fatalf("skeleton is not YAML of the expected shape: %v\n%s", err, out)
	}
	if doc.OpenAPI != "3.1.0" || len(doc.Paths) != 2 || !strings.Contains(doc.Info.Description, "PROPFIND /dav") {
		t.Fatalf("skeleton:\n%s", out)
	}
	del := doc.Paths["/users/{id}"]["delete"]
	if !del.Shadow || del.Route != "users" || !strings.Contains(del.Description, "2 requests") || len(del.Responses) == 0 {
		t.Errorf("DELETE /users/{id}: %+v", del)
	}
	get := doc.Paths["/users/{id}/orders/{id2}"]["get"]
	if len(get.Parameters) != 2 || get.Parameters[1].Name != "id2" || get.Parameters[1].In != "path" || !get.Parameters[1].Required {
		t.Errorf("path parameters: %+v", get.Parameters)
	}
	// A real OpenAPI 3.1 parser reads it.
	parsed, err := libopenapi.NewDocument(out)
	if err != nil {
		t.Fatal(err)
	}
	model, err := parsed.BuildV3Model()
	if err != nil || model.Model.Paths.PathItems.Len() != 2 {
		t.Fatalf("libopenapi: %v", err)
	}
	empty, err := Skeleton(&Report{})
	if err != nil || !strings.Contains(string(empty), "paths: {}") {
		t.Errorf("empty skeleton: %v\n%s", err, empty)
	}
}

func TestWriteText(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteText(&buf, sampleReport(t)); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"ROUTES (2)", "OPERATIONS (3)", "SHADOW ENDPOINTS", "/users/{id}/orders/{id2}", "ZOMBIES", "≥ 31",
		"DEPRECATED OPERATIONS STILL CALLED (1)", "legacy?[2J"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("an escape sequence reached the terminal:\n%q", out)
	}
}

func BenchmarkRecord(b *testing.B) {
	for _, bc := range []struct {
		name string
		hit  Hit
	}{
		{"route", Hit{Route: "health", Status: 200}},
		{"operation+consumer", Hit{Route: "users", Operation: "GET /users/{id}", Status: 200, Consumer: "alice"}},
		{"shadow", Hit{Route: "users", Method: "GET", Path: "/users/42/avatar", Status: 404, Consumer: "alice"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			inv, _ := newTest(b, Options{Now: time.Now})
			inv.Record(bc.hit)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				inv.Record(bc.hit)
			}
		})
	}
	b.Run("operation+consumer/parallel", func(b *testing.B) {
		inv, _ := newTest(b, Options{Now: time.Now})
		hit := Hit{Route: "users", Operation: "GET /users/{id}", Status: 200, Consumer: "alice"}
		inv.Record(hit)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				inv.Record(hit)
			}
		})
	})
}
