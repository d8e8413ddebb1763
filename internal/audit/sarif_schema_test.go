package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"
	"github.com/xeipuuv/gojsonschema"
)

// TestSARIFSchema validates the SARIF log, byte for byte as written,
// against the OASIS SARIF 2.1.0 JSON schema (sarif-schema-2.1.0.json). The
// schema is read from the go-sarif module, a test dependency that carries
// it in its source: nothing of it is copied into this repository.
func TestSARIFSchema(t *testing.T) {
	rep := runExample(t, Example{Config: "server: {admin: \"0.0.0.0:9901\"}\n", Spec: specHead + "paths:\n  /t:\n    post: {}\n"})
	rep.Findings = append(rep.Findings, Finding{Rule: "BW-CFG-000", Severity: High, Category: "API8:2023", File: "/abs/gw.yaml", Message: "no place", Fix: "x"})
	var buf bytes.Buffer
	if err := WriteSARIF(&buf, rep, "v1.2.3"); err != nil {
		t.Fatal(err)
	}
	schema := gojsonschema.NewStringLoader(sarifSchema(t))
	// The schema does refuse what is not SARIF 2.1.0.
	if bad, err := gojsonschema.Validate(schema, gojsonschema.NewStringLoader(`{"version":"2.0.0","runs":[{"results":[{"level":"fatal"}]}]}`)); err != nil || bad.Valid() {
		t.Fatalf("the schema accepted a log that is not SARIF 2.1.0 (%v)", err)
	}
	res, err := gojsonschema.Validate(schema, gojsonschema.NewBytesLoader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range res.Errors() {
		t.Errorf("SARIF 2.1.0 schema: %s", e)
	}
}

// sarifSchema returns the schema text from go-sarif's source, next to the
// package's sarif.go in the module cache.
func sarifSchema(t *testing.T) string {
	t.Helper()
	file, _ := runtime.FuncForPC(reflect.ValueOf(sarif.NewReport).Pointer()).FileLine(reflect.ValueOf(sarif.NewReport).Pointer())
	src, err := os.ReadFile(filepath.Join(filepath.Dir(file), "schema.go"))
	if err != nil {
		t.Fatalf("the SARIF schema from the go-sarif module: %v", err)
	}
	_, rest, ok := strings.Cut(string(src), "`")
	schema, _, ok2 := strings.Cut(rest, "`")
	if !ok || !ok2 || !strings.Contains(schema, `"Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"`) {
		t.Fatal("schema.go of go-sarif no longer holds the SARIF 2.1.0 schema in a raw string")
	}
	return schema
}
