package audit

import (
	"testing"
)

// auditBytes runs every rule that reads the documents, without files.
func auditBytes(configData, specData []byte) []Finding {
	a := &auditor{}
	var cfg *configDoc
	if root, err := parseDocument(configData); err == nil {
		cfg = &configDoc{file: "gw.yaml", dir: ".", root: root}
		a.configRules(cfg)
	}
	var specs []*specDoc
	if root, err := parseDocument(specData); err == nil {
		s := newSpec("openapi.yaml", root)
		a.specRules(s)
		specs = append(specs, s)
	}
	if cfg != nil {
		a.crossRules(cfg, specs)
	}
	for _, f := range a.findings {
		inlineIgnored(f)
	}
	return a.findings
}

// FuzzSpec feeds arbitrary documents to the parser and every spec rule:
// nothing may panic, hang or report a finding without a rule of the catalogue.
func FuzzSpec(f *testing.F) {
	for _, r := range Rules() {
		if r.Example.Spec != "" {
			f.Add([]byte(r.Example.Spec))
		}
	}
	f.Add([]byte(`{"openapi":"3.0.0","paths":{"/a/{id}":{"$ref":"#/paths/~1a~1{id}"}}}`))
	f.Add([]byte("openapi: 3.1.0\ncomponents:\n  schemas:\n    A: {$ref: '#/components/schemas/B'}\n    B: {$ref: '#/components/schemas/A'}\n"))
	f.Add([]byte("a: &a {b: *a}\n"))
	f.Add([]byte("openapi: 3.1.0\npaths:\n  <<: {x: 1}\n"))
	cfg := []byte(route + "    auth: none\n")
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, fd := range auditBytes(cfg, data) {
			if _, ok := ruleByID(fd.Rule); !ok {
				t.Fatalf("unknown rule %s", fd.Rule)
			}
		}
	})
}

// FuzzConfig does the same for the config rules.
func FuzzConfig(f *testing.F) {
	for _, r := range Rules() {
		if r.Example.Config != "" {
			f.Add([]byte(r.Example.Config))
		}
	}
	f.Add([]byte("routes: {a: 1}\nauthenticators: [1, 2]\n"))
	f.Add([]byte("server: {trusted_proxies: \"::/0\", admin: \"[::]:1\"}\n"))
	spec := []byte(specHead + "paths:\n  /v1/things:\n    get: {security: [{o: [\"a\"]}]}\n")
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, fd := range auditBytes(data, spec) {
			if _, ok := ruleByID(fd.Rule); !ok {
				t.Fatalf("unknown rule %s", fd.Rule)
			}
		}
	})
}
