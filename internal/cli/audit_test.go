package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const auditConfig = `version: 1
server:
  admin: "off"
tls:
  self_signed: true
  min_version: "1.3"
authenticators:
  keys: { type: api_key, header: X-API-Key }
consumers:
  - id: acme
    scopes: ["orders:read"]
    credentials:
      - api_key: "sha256:0000000000000000000000000000000000000000000000000000000000000000"
routes:
  - name: orders-read
    path: /v1/orders/{id}
    methods: [GET]
    upstream: { targets: ["http://127.0.0.1:9000"], timeout: 10s }
    auth: [keys]
    scopes: ["orders:read"]
    rate_limits:
      - { key: consumer, limit: "10/s burst 20" }
`

const auditSpec = `openapi: 3.1.0
info: {title: Orders, version: "1"}
servers: [{url: "https://api.example.com", description: production}]
security: [{keys: []}]
paths:
  /v1/orders/{id}:
    get:
      operationId: getOrder
      parameters:
        - {name: id, in: path, required: true, schema: {type: string, format: uuid, maxLength: 36}}
      responses:
        "200":
          description: ok
          headers:
            RateLimit: {schema: {type: string, maxLength: 100, pattern: "^.*$"}}
            Access-Control-Allow-Origin: {schema: {type: string, maxLength: 100, format: uri}}
          content:
            application/json:
              schema: {type: object, additionalProperties: false, properties: {id: {type: string, format: uuid, maxLength: 36}}}
        "400": {description: bad}
        "401": {description: who}
        "429": {description: slow, headers: {Retry-After: {schema: {type: integer, format: int32, minimum: 0, maximum: 60}}}}
        "5XX": {description: error}
components:
  securitySchemes:
    keys: {type: apiKey, in: header, name: X-API-Key}
`

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runAuditArgs(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, LookupEnv: func(string) (string, bool) { return "", false }}
	code := runAuditCmd(context.Background(), env, args)
	return code, out.String(), errb.String()
}

func TestAuditExitCodes(t *testing.T) {
	// The clean pair has only the self-signed certificate (medium) and
	// info findings.
	dir := writeFiles(t, map[string]string{
		"gw.yaml":     auditConfig,
		"orders.yaml": auditSpec,
		"weak.yaml":   strings.Replace(auditConfig, `admin: "off"`, `admin: "0.0.0.0:9901"`, 1),
		"broken.yaml": "openapi: [\n",
		"inline.yaml": "x-breakwater-ignore: [BW-CFG-007, BW-CFG-008]\n" + strings.Replace(auditConfig, `admin: "off"`, `admin: "0.0.0.0:9901"`, 1),
	})
	cfg, spec := filepath.Join(dir, "gw.yaml"), filepath.Join(dir, "orders.yaml")
	weak, inline := filepath.Join(dir, "weak.yaml"), filepath.Join(dir, "inline.yaml")
	tests := []struct {
		name string
		args []string
		code int
		want string // in stdout or stderr
	}{
		{"clean", []string{"-c", cfg, "--spec", spec}, 0, "score"},
		{"medium at fail-on medium", []string{"-c", cfg, "--spec", spec, "--fail-on", "medium"}, 1, "BW-CFG-004"},
		{"ignored medium", []string{"-c", cfg, "--spec", spec, "--fail-on", "medium", "--ignore", "BW-CFG-004"}, 0, "1 ignored"},
		{"critical finding", []string{"-c", weak, "--spec", spec}, 1, "BW-CFG-008"},
		{"critical ignored by flags", []string{"-c", weak, "--spec", spec, "--ignore", "BW-CFG-007,BW-CFG-008", "--ignore", "BW-CFG-000"}, 0, "ignored"},
		{"critical ignored inline", []string{"-c", inline, "--spec", spec, "--ignore", "BW-CFG-000"}, 0, "ignored"},
		{"fail-on critical", []string{"-c", weak, "--spec", spec, "--fail-on", "critical", "--ignore", "BW-CFG-008"}, 0, "BW-CFG-007"},
		{"spec only", []string{"--spec", spec}, 0, "1 files"},
		{"missing config", []string{"-c", filepath.Join(dir, "nope.yaml")}, 2, "nope.yaml"},
		{"unparseable spec", []string{"--spec", filepath.Join(dir, "broken.yaml")}, 2, "broken.yaml"},
		{"nothing to audit", nil, 2, "-c FILE or --spec SPEC"},
		{"bad format", []string{"-c", cfg, "--format", "xml"}, 2, "--format"},
		{"bad fail-on", []string{"-c", cfg, "--fail-on", "info"}, 2, "--fail-on"},
		{"unknown rule", []string{"-c", cfg, "--ignore", "BW-NOPE-1"}, 2, "no such rule"},
		{"extra argument", []string{"-c", cfg, "extra"}, 2, "unexpected argument"},
		{"rules", []string{"--rules"}, 0, "BW-XREF-004"},
		{"help", []string{"--help"}, 0, "x-breakwater-ignore"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runAuditArgs(t, tt.args...)
			if code != tt.code || !strings.Contains(out+errOut, tt.want) {
				t.Fatalf("exit %d (want %d), want %q in\nstdout: %s\nstderr: %s", code, tt.code, tt.want, out, errOut)
			}
			if strings.Contains(out, "\x1b[") {
				t.Error("colour on a buffer that is not a terminal")
			}
		})
	}
}

func TestAuditFormats(t *testing.T) {
	dir := writeFiles(t, map[string]string{"gw.yaml": auditConfig, "orders.yaml": auditSpec})
	cfg, spec := filepath.Join(dir, "gw.yaml"), filepath.Join(dir, "orders.yaml")

	code, out, _ := runAuditArgs(t, "-c", cfg, "--spec", spec, "--format", "json")
	var rep struct {
		Score    int            `json:"score"`
		Files    []string       `json:"files"`
		Summary  map[string]int `json:"summary"`
		Findings []struct {
			Rule, Severity, Category, File, Message, Fix string
			Line, Col                                    int
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 {
		t.Fatalf("json: exit %d, %v\n%s", code, err, out)
	}
	if len(rep.Files) != 2 || rep.Summary["medium"] != 1 || rep.Score != 96 || len(rep.Findings) == 0 {
		t.Errorf("json report: %+v", rep)
	}
	for _, f := range rep.Findings {
		if f.Rule == "" || f.Severity == "" || f.Category == "" || f.File == "" || f.Line < 1 || f.Col < 1 || f.Fix == "" {
			t.Errorf("incomplete finding %+v", f)
		}
	}

	code, out, _ = runAuditArgs(t, "-c", cfg, "--spec", spec, "--format", "sarif")
	var log struct {
		Version string `json:"version"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Name  string            `json:"name"`
					Rules []json.RawMessage `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID string `json:"ruleId"`
				Level  string `json:"level"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(out), &log); err != nil || code != 0 {
		t.Fatalf("sarif: exit %d, %v", code, err)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 || log.Runs[0].Tool.Driver.Name != "breakwater" ||
		len(log.Runs[0].Tool.Driver.Rules) < 45 || len(log.Runs[0].Results) != len(rep.Findings) {
		t.Errorf("sarif log: %+v", log)
	}
}
