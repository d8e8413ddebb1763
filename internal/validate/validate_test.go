package validate

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func load(t testing.TB, file string, o Options) *Validator {
	t.Helper()
	s, err := Load(file)
	if err != nil {
		t.Fatalf("Load(%s): %v", file, err)
	}
	return New(s, o)
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, bytes.Repeat([]byte("#"), MaxSpecBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		file string
		want string // "" = loads; else a fragment of the error
	}{
		{"testdata/orders31.yaml", ""},
		{"testdata/orders30.yaml", ""},
		{"testdata/orders31.json", ""},
		{"testdata/split/api.yaml", ""},
		{"testdata/remote.yaml", "is remote"},
		{"testdata/escape.yaml", "leaves the spec's directory"},
		{"testdata/swagger.yaml", "not supported"},
		{"testdata/missing.yaml", "missing.yaml"},
		{big, "larger than"},
	}
	for _, c := range cases {
		_, err := Load(c.file)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("Load(%s): %v", c.file, err)
		case c.want != "" && err == nil:
			t.Errorf("Load(%s) succeeded, want error with %q", c.file, c.want)
		case c.want != "" && (!strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), filepath.Base(c.file))):
			t.Errorf("Load(%s) = %v, want %q and the file name", c.file, err, c.want)
		}
	}
}

func TestRefFile(t *testing.T) {
	cases := []struct{ from, ref, want, err string }{
		{"api.yaml", "#/components/schemas/X", "", ""},
		{"api.yaml", "schemas/a.yaml#/X", "schemas/a.yaml", ""},
		{"sub/b.yaml", "../c.yaml", "c.yaml", ""},
		{"api.yaml", "http://example.com/x.yaml", "", "remote"},
		{"api.yaml", "HTTPS://example.com/x.yaml", "", "remote"},
		{"api.yaml", "//example.com/x.yaml", "", "remote"},
		{"api.yaml", "file:///etc/passwd", "", "remote"},
		{"api.yaml", "/etc/passwd", "", "absolute"},
		{"sub/b.yaml", "../../x.yaml", "", "leaves"},
	}
	for _, c := range cases {
		got, err := refFile(c.from, c.ref)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("refFile(%q, %q) error = %v, want %q", c.from, c.ref, err, c.err)
			}
			continue
		}
		if err != nil || filepath.ToSlash(got) != c.want {
			t.Errorf("refFile(%q, %q) = %q, %v; want %q", c.from, c.ref, got, err, c.want)
		}
	}
}

func TestOperation(t *testing.T) {
	v31 := load(t, "testdata/orders31.yaml", Options{})
	v30 := load(t, "testdata/orders30.yaml", Options{})
	cases := []struct {
		v            *Validator
		method, path string
		want         string // operationId, "" = nil
	}{
		{v31, "GET", "/v1/orders", "listOrders"},
		{v31, "GET", "/v1/orders/", "listOrders"},
		{v31, "POST", "/v1/orders", "createOrder"},
		{v31, "HEAD", "/v1/orders", "listOrders"},
		{v31, "PUT", "/v1/orders", ""},
		{v31, "GET", "/orders", ""},      // outside the server base
		{v31, "GET", "/v1orders", ""},    // base is a path prefix, not a string prefix
		{v31, "GET", "/v2/orders/1", ""}, // another base
		{v31, "GET", "/v1/orders/7", "getOrder"},
		{v31, "GET", "/v1/orders/mine", "myOrders"}, // literal beats template
		{v31, "DELETE", "/v1/orders/7", "deleteOrder"},
		{v31, "GET", "/v1/orders/7/items", ""},
		{v31, "GET", "/v1/files/report.json", "getFile"},
		{v31, "GET", "/v1/files/.json", ""},
		{v31, "GET", "/v1/files/report.xml", ""},
		{v30, "PUT", "/api/v2/orders/3", "putOrder"}, // server variables take their defaults
		{v30, "PUT", "/orders/3", ""},
	}
	for _, c := range cases {
		op := c.v.Operation(c.method, c.path)
		got := ""
		if op != nil {
			got = op.OperationID
		}
		if got != c.want {
			t.Errorf("Operation(%s %s) = %q, want %q", c.method, c.path, got, c.want)
		}
	}
	if op := v31.Operation("DELETE", "/v1/orders/7"); !op.Deprecated || op.PathTemplate != "/orders/{id}" || op.Method != "DELETE" {
		t.Errorf("deleteOrder = %+v", op)
	}
}

const goodOrder = `{"customer":"ann","items":[{"sku":"ABC-1234","quantity":5}]}`

type reqCase struct {
	name    string
	method  string
	path    string // with query
	ct      string // Content-Type ("-" for none)
	body    string
	headers map[string]string
	status  int    // 0 = valid
	field   string // exact
	reason  string // fragment
}

func runRequests(t *testing.T, v *Validator, cases []reqCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(c.method, "https://api.example.com"+c.path, strings.NewReader(c.body))
			if c.body == "" {
				r.Body = http.NoBody
			}
			switch c.ct {
			case "":
				r.Header.Set("Content-Type", "application/json")
			case "-":
			default:
				r.Header.Set("Content-Type", c.ct)
			}
			for k, val := range c.headers {
				r.Header.Set(k, val)
			}
			path, _, _ := strings.Cut(c.path, "?")
			op := v.Operation(c.method, path)
			if op == nil {
				t.Fatalf("no operation for %s %s", c.method, path)
			}
			p := v.ValidateRequest(op, r, nil)
			if c.status == 0 {
				if p != nil {
					t.Fatalf("problem %+v, want none", p)
				}
				return
			}
			if p == nil {
				t.Fatalf("no problem, want %d %s", c.status, c.field)
			}
			if p.Status != c.status || p.Field != c.field || !strings.Contains(p.Reason, c.reason) {
				t.Fatalf("problem %+v, want %d %q %q", p, c.status, c.field, c.reason)
			}
			// The problem never echoes the input: attack rows carry EVIL.
			if strings.Contains(p.Field+p.Reason, "EVIL") || strings.Contains(p.Reason, "xyz") {
				t.Fatalf("problem echoes input: %+v", p)
			}
		})
	}
}

func TestValidateRequest31(t *testing.T) {
	v := load(t, "testdata/orders31.yaml", Options{MaxBodyBytes: 64 << 10})
	deep := strings.Repeat("[", 10000) + strings.Repeat("]", 10000)
	deepObj := `{"customer":"a","items":` + strings.Repeat(`[`, 70) + strings.Repeat(`]`, 70) + `}`
	tenant := map[string]string{"X-Tenant": "acme"}
	cases := []reqCase{
		{name: "valid", method: "POST", path: "/v1/orders", body: goodOrder},
		{name: "valid full", method: "POST", path: "/v1/orders", body: `{"customer":"ann","email":"a@b.example","kind":"retail","priority":2,"price":9.5,
			"placed":"2024-01-02T03:04:05Z","items":[{"sku":"ABC-1234","quantity":5,"note":null}],"coupon":null,"gift":false,
			"address":{"street":"Main","city":"X","zip":"12345"},"channel":"web","ref":"123e4567-e89b-12d3-a456-426614174000","tags":["a","b"]}`},
		{name: "charset utf-8", method: "POST", path: "/v1/orders", ct: "application/json; charset=UTF-8", body: goodOrder},
		{name: "mass assignment", method: "POST", path: "/v1/orders", body: `{"customer":"a","isAdmin":true,"items":[{"sku":"ABC-1234","quantity":5}]}`,
			status: 400, field: "body.isAdmin", reason: "is not allowed"},
		{name: "mass assignment nested", method: "POST", path: "/v1/orders", body: `{"customer":"a","items":[{"sku":"ABC-1234","quantity":5,"price":0}]}`,
			status: 400, field: "body.items[0].price", reason: "is not allowed"},
		{name: "mass assignment hostile key", method: "POST", path: "/v1/orders", body: `{"customer":"a","<script>EVIL":1,"items":[{"sku":"ABC-1234","quantity":5}]}`,
			status: 400, field: "body.*", reason: "is not allowed"},
		{name: "type confusion", method: "POST", path: "/v1/orders", body: `{"customer":"a","items":[{"sku":"ABC-1234","quantity":"5"}]}`,
			status: 400, field: "body.items[0].quantity", reason: "must be integer"},
		{name: "type confusion float", method: "POST", path: "/v1/orders", body: `{"customer":"a","items":[{"sku":"ABC-1234","quantity":1.5}]}`,
			status: 400, field: "body.items[0].quantity", reason: "must be integer"},
		{name: "type confusion object", method: "POST", path: "/v1/orders", body: `{"customer":{"$ne":""},"items":[{"sku":"ABC-1234","quantity":1}]}`,
			status: 400, field: "body.customer", reason: "must be string"},
		{name: "out of range", method: "POST", path: "/v1/orders", body: `{"customer":"a","items":[{"sku":"ABC-1234","quantity":500}]}`,
			status: 400, field: "body.items[0].quantity", reason: "must be at most 100"},
		{name: "negative", method: "POST", path: "/v1/orders", body: `{"customer":"a","items":[{"sku":"ABC-1234","quantity":-1}]}`,
			status: 400, field: "body.items[0].quantity", reason: "must be at least 1"},
		{name: "exclusive minimum", method: "POST", path: "/v1/orders", body: `{"customer":"a","price":0,"items":[{"sku":"ABC-1234","quantity":1}]}`,
			status: 400, field: "body.price", reason: "must be greater than 0"},
		{name: "overlong string", method: "POST", path: "/v1/orders", body: `{"customer":"` + strings.Repeat("EVIL", 20) + `","items":[{"sku":"ABC-1234","quantity":1}]}`,
			status: 400, field: "body.customer", reason: "at most 40 characters"},
		{name: "pattern", method: "POST", path: "/v1/orders", body: `{"customer":"a","items":[{"sku":"EVIL';--","quantity":1}]}`,
			status: 400, field: "body.items[0].sku", reason: "must match the pattern"},
		{name: "enum", method: "POST", path: "/v1/orders", body: `{"customer":"a","channel":"EVIL","items":[{"sku":"ABC-1234","quantity":1}]}`,
			status: 400, field: "body.channel", reason: `must be one of "web", "app", "phone"`},
		{name: "const 3.1", method: "POST", path: "/v1/orders", body: `{"customer":"a","kind":"EVIL","items":[{"sku":"ABC-1234","quantity":1}]}`,
			status: 400, field: "body.kind", reason: `must be "retail"`},
		{name: "null where not allowed", method: "POST", path: "/v1/orders", body: `{"customer":null,"items":[{"sku":"ABC-1234","quantity":1}]}`,
			status: 400, field: "body.customer", reason: "must be string"},
		{name: "format email", method: "POST", path: "/v1/orders", body: `{"customer":"a","email":"EVIL","items":[{"sku":"ABC-1234","quantity":1}]}`,
			status: 400, field: "body.email", reason: "must be a valid email"},
		{name: "format date-time", method: "POST", path: "/v1/orders", body: `{"customer":"a","placed":"yesterday EVIL","items":[{"sku":"ABC-1234","quantity":1}]}`,
			status: 400, field: "body.placed", reason: "must be a valid date-time"},
		{name: "format uuid", method: "POST", path: "/v1/orders", body: `{"customer":"a","ref":"EVIL","items":[{"sku":"ABC-1234","quantity":1}]}`,
			status: 400, field: "body.ref", reason: "must be a valid uuid"},
		{name: "unique items", method: "POST", path: "/v1/orders", body: `{"customer":"a","tags":["x","x"],"items":[{"sku":"ABC-1234","quantity":1}]}`,
			status: 400, field: "body.tags", reason: "duplicate"},
		{name: "min items", method: "POST", path: "/v1/orders", body: `{"customer":"a","items":[]}`,
			status: 400, field: "body.items", reason: "at least 1 items"},
		{name: "missing required", method: "POST", path: "/v1/orders", body: `{"customer":"a"}`,
			status: 400, field: "body.items", reason: "is required"},
		{name: "missing required nested", method: "POST", path: "/v1/orders", body: `{"customer":"a","items":[{"sku":"ABC-1234"}]}`,
			status: 400, field: "body.items[0].quantity", reason: "is required"},
		{name: "huge exponent", method: "POST", path: "/v1/orders", body: `{"customer":"a","items":[{"sku":"ABC-1234","quantity":1e400}]}`,
			status: 400, field: "body.items[0].quantity", reason: "out of range"},
		{name: "huge exponent big.Rat bomb", method: "POST", path: "/v1/orders", body: `{"customer":"a","price":1e-999999999,"items":[{"sku":"ABC-1234","quantity":1}]}`,
			status: 400, field: "body.price", reason: "out of range"},
		{name: "100-digit integer", method: "POST", path: "/v1/orders", body: `{"customer":"a","items":[{"sku":"ABC-1234","quantity":` + strings.Repeat("9", 100) + `}]}`,
			status: 400, field: "body.items[0].quantity", reason: "must be at most 100"},
		{name: "100-digit price", method: "POST", path: "/v1/orders", body: `{"customer":"a","price":` + strings.Repeat("9", 100) + `,"items":[{"sku":"ABC-1234","quantity":1}]}`,
			status: 400, field: "body.price", reason: "must be at most 1000000"},
		{name: "duplicate key", method: "POST", path: "/v1/orders", body: `{"customer":"a","customer":"b","items":[{"sku":"ABC-1234","quantity":1}]}`,
			status: 400, field: "body.customer", reason: "duplicate key"},
		{name: "duplicate nested key", method: "POST", path: "/v1/orders", body: `{"customer":"a","items":[{"sku":"ABC-1234","quantity":1,"quantity":1000}]}`,
			status: 400, field: "body.items[0].quantity", reason: "duplicate key"},
		{name: "duplicate key escaped", method: "POST", path: "/v1/orders", body: `{"customer":"a","cust\u006fmer":"b","items":[]}`,
			status: 400, field: "body.customer", reason: "duplicate key"},
		{name: "deep nesting 10000", method: "POST", path: "/v1/orders", body: deep,
			status: 400, field: "body", reason: "nested too deeply"},
		{name: "deep nesting in object", method: "POST", path: "/v1/orders", body: deepObj,
			status: 400, field: "body", reason: "nested too deeply"},
		{name: "non-UTF-8", method: "POST", path: "/v1/orders", body: "{\"customer\":\"\xff\xfe\",\"items\":[]}",
			status: 400, field: "body", reason: "UTF-8"},
		{name: "lone surrogate", method: "POST", path: "/v1/orders", body: `{"customer":"\ud800","items":[]}`,
			status: 400, field: "body.customer", reason: "UTF-8"},
		{name: "invalid JSON", method: "POST", path: "/v1/orders", body: `{"customer":"a",}`,
			status: 400, field: "body", reason: "not valid JSON"},
		{name: "invalid JSON nested", method: "POST", path: "/v1/orders", body: `{"customer":"a","items":[{"sku":EVIL}]}`,
			status: 400, field: "body", reason: "not valid JSON"},
		{name: "trailing data", method: "POST", path: "/v1/orders", body: goodOrder + `{}`,
			status: 400, field: "body", reason: "not valid JSON"},
		{name: "BOM", method: "POST", path: "/v1/orders", body: "\ufeff" + goodOrder,
			status: 400, field: "body", reason: "not valid JSON"},
		{name: "wrong content type", method: "POST", path: "/v1/orders", ct: "text/plain", body: goodOrder,
			status: 415, field: "header.Content-Type", reason: "must be application/json"},
		{name: "form content type", method: "POST", path: "/v1/orders", ct: "application/x-www-form-urlencoded", body: "customer=EVIL",
			status: 415, field: "header.Content-Type"},
		{name: "no content type", method: "POST", path: "/v1/orders", ct: "-", body: goodOrder,
			status: 415, field: "header.Content-Type"},
		{name: "bad charset", method: "POST", path: "/v1/orders", ct: "application/json; charset=utf-16", body: goodOrder,
			status: 415, field: "header.Content-Type", reason: "utf-8"},
		{name: "missing required body", method: "POST", path: "/v1/orders",
			status: 400, field: "body", reason: "is required"},
		{name: "body on an operation without one", method: "DELETE", path: "/v1/orders/1", body: `{"a":1}`,
			status: 400, field: "body", reason: "not accepted"},
		{name: "too large", method: "POST", path: "/v1/orders", body: `{"customer":"` + strings.Repeat("a", 70<<10) + `"}`,
			status: 413, field: "body", reason: "too large"},

		{name: "query valid", method: "GET", path: "/v1/orders?limit=10&status=open&tags=a&tags=b", headers: tenant},
		{name: "query no params", method: "GET", path: "/v1/orders", headers: tenant},
		{name: "query type confusion", method: "GET", path: "/v1/orders?limit=EVIL", headers: tenant,
			status: 400, field: "query.limit", reason: "must be integer"},
		{name: "query out of range", method: "GET", path: "/v1/orders?limit=1000", headers: tenant,
			status: 400, field: "query.limit", reason: "must be at most 100"},
		{name: "query huge", method: "GET", path: "/v1/orders?limit=1e999", headers: tenant,
			status: 400, field: "query.limit", reason: "out of range"},
		{name: "query pollution", method: "GET", path: "/v1/orders?limit=1&limit=1000", headers: tenant,
			status: 400, field: "query.limit", reason: "given once"},
		{name: "query enum", method: "GET", path: "/v1/orders?status=EVIL", headers: tenant,
			status: 400, field: "query.status", reason: "must be one of"},
		{name: "query array item", method: "GET", path: "/v1/orders?tags=EVILEVILEVIL", headers: tenant,
			status: 400, field: "query.tags[0]", reason: "at most 8 characters"},
		{name: "query array too long", method: "GET", path: "/v1/orders?tags=a&tags=b&tags=c&tags=d", headers: tenant,
			status: 400, field: "query.tags", reason: "at most 3 items"},
		{name: "query malformed", method: "GET", path: "/v1/orders?limit=%zz", headers: tenant,
			status: 400, field: "query", reason: "malformed"},
		{name: "query non-UTF-8", method: "GET", path: "/v1/orders?status=%ff", headers: tenant,
			status: 400, field: "query.status", reason: "UTF-8"},
		{name: "header missing", method: "GET", path: "/v1/orders",
			status: 400, field: "header.X-Tenant", reason: "is required"},
		{name: "header pattern", method: "GET", path: "/v1/orders", headers: map[string]string{"X-Tenant": "EVIL TENANT"},
			status: 400, field: "header.X-Tenant", reason: "pattern"},
		{name: "path param typed", method: "GET", path: "/v1/orders/42"},
		{name: "path param type confusion", method: "GET", path: "/v1/orders/EVIL",
			status: 400, field: "path.id", reason: "must be integer"},
		{name: "path param minimum", method: "GET", path: "/v1/orders/0",
			status: 400, field: "path.id", reason: "at least 1"},
		{name: "path param int64 overflow", method: "GET", path: "/v1/orders/99999999999999999999",
			status: 400, field: "path.id", reason: "int64"},
		{name: "path param partial segment", method: "GET", path: "/v1/files/" + strings.Repeat("x", 17) + ".json",
			status: 400, field: "path.name", reason: "at most 16"},
	}
	runRequests(t, v, cases)
}

func TestValidateRequest30(t *testing.T) {
	v := load(t, "testdata/orders30.yaml", Options{})
	cases := []reqCase{
		{name: "valid", method: "PUT", path: "/api/v2/orders/3?dry=true", body: `{"quantity":9}`},
		{name: "nullable", method: "PUT", path: "/api/v2/orders/3", body: `{"quantity":9,"note":null,"color":null}`},
		{name: "nullable enum value", method: "PUT", path: "/api/v2/orders/3", body: `{"quantity":9,"color":"red"}`},
		{name: "enum", method: "PUT", path: "/api/v2/orders/3", body: `{"quantity":9,"color":"EVIL"}`,
			status: 400, field: "body.color", reason: "must be one of"},
		{name: "exclusiveMaximum boolean", method: "PUT", path: "/api/v2/orders/3", body: `{"quantity":10}`,
			status: 400, field: "body.quantity", reason: "must be less than 10"},
		{name: "mass assignment", method: "PUT", path: "/api/v2/orders/3", body: `{"quantity":1,"role":"admin"}`,
			status: 400, field: "body.role", reason: "is not allowed"},
		{name: "boolean query", method: "PUT", path: "/api/v2/orders/3?dry=EVIL", body: `{"quantity":1}`,
			status: 400, field: "query.dry", reason: "must be boolean"},
		{name: "path param", method: "PUT", path: "/api/v2/orders/x", body: `{"quantity":1}`,
			status: 400, field: "path.id", reason: "must be integer"},
		{name: "overlong nullable", method: "PUT", path: "/api/v2/orders/3", body: `{"quantity":1,"note":"EVILEVILEVIL"}`,
			status: 400, field: "body.note", reason: "at most 10"},
	}
	runRequests(t, v, cases)
}

func TestValidateRequestSplitSpec(t *testing.T) {
	v := load(t, "testdata/split/api.yaml", Options{})
	runRequests(t, v, []reqCase{
		{name: "valid", method: "POST", path: "/pets", body: `{"name":"rex"}`},
		{name: "file ref schema", method: "POST", path: "/pets", body: `{"name":"rex","owner":1}`, status: 400, field: "body.owner", reason: "not allowed"},
	})
}

func TestParamsFromCaller(t *testing.T) {
	v := load(t, "testdata/orders31.yaml", Options{})
	op := v.Operation("GET", "/v1/orders/7")
	r := httptest.NewRequest("GET", "/v1/orders/7", nil)
	if p := v.ValidateRequest(op, r, map[string]string{"id": "x"}); p == nil || p.Field != "path.id" {
		t.Errorf("caller's params not used: %+v", p)
	}
	if p := v.ValidateRequest(nil, r, nil); p != nil {
		t.Errorf("nil operation: %+v", p)
	}
}

// The body the upstream gets is the body the client sent.
func TestBodyRestored(t *testing.T) {
	v := load(t, "testdata/orders31.yaml", Options{})
	r := httptest.NewRequest("POST", "/v1/orders", strings.NewReader(goodOrder))
	r.ContentLength = -1
	r.Header.Set("Content-Type", "application/json")
	if p := v.ValidateRequest(v.Operation("POST", "/v1/orders"), r, nil); p != nil {
		t.Fatal(p)
	}
	b, _ := io.ReadAll(r.Body)
	if string(b) != goodOrder || r.ContentLength != int64(len(goodOrder)) {
		t.Errorf("body = %q (%d)", b, r.ContentLength)
	}
	rc, err := r.GetBody()
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(rc)
	if string(b) != goodOrder {
		t.Errorf("GetBody = %q", b)
	}
}

// A body cut by the gateway's max_body (http.MaxBytesReader) is a 413.
func TestGatewayBodyLimit(t *testing.T) {
	v := load(t, "testdata/orders31.yaml", Options{})
	r := httptest.NewRequest("POST", "/v1/orders", strings.NewReader(goodOrder))
	r.ContentLength = -1
	r.Header.Set("Content-Type", "application/json")
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 10)
	if p := v.ValidateRequest(v.Operation("POST", "/v1/orders"), r, nil); p == nil || p.Status != 413 {
		t.Errorf("problem = %+v, want 413", p)
	}
}

// Ten thousand levels of nesting fail fast, without parsing.
func TestDeepNestingFast(t *testing.T) {
	v := load(t, "testdata/orders31.yaml", Options{})
	body := strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000)
	op := v.Operation("POST", "/v1/orders")
	start := time.Now()
	r := httptest.NewRequest("POST", "/v1/orders", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	p := v.ValidateRequest(op, r, nil)
	if p == nil || p.Reason != "is nested too deeply" {
		t.Fatalf("problem = %+v", p)
	}
	if d := time.Since(start); d > 2*time.Second { // generous: shared machines
		t.Errorf("took %v", d)
	}
}

func TestProblemError(t *testing.T) {
	p := &Problem{Status: 400, Field: "body.x", Reason: "is required"}
	if p.Error() != "body.x: is required" {
		t.Error(p.Error())
	}
}

// One Validator serves concurrent requests (run with -race).
func TestConcurrent(t *testing.T) {
	v := load(t, "testdata/orders31.yaml", Options{})
	post, get := v.Operation("POST", "/v1/orders"), v.Operation("GET", "/v1/orders/1")
	done := make(chan struct{})
	for i := 0; i < 8; i++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for j := 0; j < 50; j++ {
				r := httptest.NewRequest("POST", "/v1/orders", strings.NewReader(goodOrder))
				r.Header.Set("Content-Type", "application/json")
				if p := v.ValidateRequest(post, r, nil); p != nil {
					t.Error(p)
					return
				}
				if err := v.FilterResponse(get, newResponse(200, "application/json", `{"id":1,"x":2}`)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := 0; i < 8; i++ {
		<-done
	}
}
