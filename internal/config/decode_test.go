package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// decodeOnly decodes src without defaults or validation.
func decodeOnly(t *testing.T, dir, src string, lookup func(string) (string, bool)) (*Config, Errors) {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cfg := &Config{File: filepath.Join(dir, "bw.yaml"), Dir: dir}
	errs := &collector{file: cfg.File}
	decodeDocument(cfg, []byte(src), lookup, errs)
	return cfg, errs.result()
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		// Unknown fields, with suggestions.
		{"typo suggestion", "routes:\n  - name: r\n    upstrem: {}\n",
			[]string{`3:5: routes[0].upstrem: unknown field; did you mean "upstream"?`}},
		{"transposition", "routes:\n  - nmae: r\n", []string{`2:5: routes[0].nmae: unknown field; did you mean "name"?`}},
		{"dash for underscore", "server:\n  limits:\n    max-body: 1MiB\n",
			[]string{`3:5: server.limits.max-body: unknown field; did you mean "max_body"?`}},
		{"missing underscore", "tls:\n  selfsigned: true\n", []string{`2:3: tls.selfsigned: unknown field; did you mean "self_signed"?`}},
		{"case", "Server: {}\n", []string{`1:1: Server: unknown field; did you mean "server"?`}},
		{"in a map value", "authenticators:\n  k: {type: api_key, heder: X}\n",
			[]string{`2:22: authenticators.k.heder: unknown field; did you mean "header"?`}},
		{"in a credential", "consumers:\n  - id: a\n    credentials:\n      - apikey: x\n",
			[]string{`4:9: consumers[0].credentials[0].apikey: unknown field; did you mean "api_key"?`}},
		{"no close match lists fields", "zzzzzz: 1\n",
			[]string{"1:1: zzzzzz: unknown field; valid fields here: version, server, tls, store, admin, authenticators, token_endpoint, consumers, routes, docs, cors"}},

		// Duplicate keys.
		{"duplicate top-level key", "version: 1\nversion: 1\n", []string{"2:1: version: duplicate key; it is first defined at 1:1"}},
		{"duplicate map key", "authenticators:\n  a: {type: api_key}\n  a: {type: api_key}\n",
			[]string{"3:3: authenticators.a: duplicate key; it is first defined at 2:3"}},
		{"duplicate flow key", "tls: {self_signed: true, self_signed: false}\n",
			[]string{"1:26: tls.self_signed: duplicate key; it is first defined at 1:7"}},

		// Wrong node kinds.
		{"list for mapping", "server: [a]\n", []string{"1:9: server: expected a mapping (key: value), got a list"}},
		{"scalar for mapping", "server: x\n", []string{"1:9: server: expected a mapping (key: value), got a string"}},
		{"mapping for list", "routes: {a: 1}\n", []string{"1:9: routes: expected a list, got a mapping"}},
		{"scalar for list", "consumers: acme\n", []string{"1:12: consumers: expected a list, got a string"}},
		{"list for scalar", "server:\n  https: [a]\n", []string{"2:10: server.https: expected a single value, got a list"}},
		{"mapping for scalar", "version: {a: 1}\n", []string{"1:10: version: expected a single value, got a mapping"}},
		{"scope in a flow list", "consumers: [{id: a, scopes: [orders:read]}]\n", []string{`consumers[0].scopes[0]: expected a single value, got a mapping: YAML reads "orders:read" in a flow list or mapping as a key and a value; quote it: "orders:read"`}},
		{"document is a list", "- a\n- b\n", []string{"1:1: expected a mapping (key: value), got a list"}},
		{"document is a scalar", "hello\n", []string{"1:1: expected a mapping (key: value), got a string"}},
		{"null key", "server: {~: 1}\n", []string{"1:10: server: empty key"}},

		// Bad scalars.
		{"word for int", "version: one\n", []string{`1:10: version: "one" is not a whole number`}},
		{"float for int", "version: 1.5\n", []string{`1:10: version: "1.5" is not a whole number`}},
		{"huge int", "version: 99999999999999999999\n", []string{"1:10: version: 99999999999999999999 is out of range"}},
		{"huge limit", "server: {limits: {max_connections: 99999999999999999999999}}\n",
			[]string{"1:36: server.limits.max_connections: 99999999999999999999999 is out of range"}},
		{"yes for bool", "tls: {self_signed: yes}\n", []string{`1:20: tls.self_signed: "yes" is not a boolean; write true or false`}},
		{"number for bool", "tls: {self_signed: 1}\n", []string{`1:20: tls.self_signed: "1" is not a boolean`}},
		{"duration without unit", "server: {shutdown_timeout: 10}\n", []string{`1:28: server.shutdown_timeout: "10" is not a duration`}},
		{"negative duration", "server: {shutdown_timeout: -5s}\n", []string{`1:28: server.shutdown_timeout: "-5s": durations cannot be negative`}},
		{"bad size", "server: {limits: {max_body: 1.5MiB}}\n", []string{`1:29: server.limits.max_body: "1.5MiB" is not a size`}},
		{"size overflow", "server: {limits: {max_body: 9999999999GiB}}\n", []string{`1:29: server.limits.max_body: "9999999999GiB" is too large a size`}},
		{"bad rate", "consumers: [{id: a, rate_limits: [\"10/w\"]}]\n", []string{`1:35: consumers[0].rate_limits[0]: "10/w" is not a rate`}},
		{"bad digest", "admin: {token_hash: md5:abc}\n", []string{`1:21: admin.token_hash: want "sha256:" followed by 64 hex digits`}},

		// Anchors, aliases and tags.
		{"undefined alias", "server: *nope\n", []string{"1:9: server: alias *nope refers to no anchor"}},
		{"alias before anchor", "server: {https: *p}\ntls: {min_version: &p x}\n", []string{"1:17: server.https: alias *p comes before its anchor at 2:20"}},
		{"duplicate anchor", "server: {https: &a x, http: &a y}\n", []string{"1:29: anchor &a is already defined at 1:17"}},
		{"custom tag", "version: !custom 1\n", []string{`1:10: version: YAML tag "!custom" is not supported`}},
		{"merge of a scalar", "server: {<<: x}\n", []string{"1:14: server: a merge key (<<) takes a mapping or a list of mappings, got a string"}},

		// Documents.
		{"syntax error", "routes: [a, b\nversion: 1\n", []string{"2:1: YAML syntax error:"}},
		{"tab indentation", "server:\n\thttps: x\n", []string{"2:1: YAML syntax error:"}},
		{"two documents", "version: 1\n---\nversion: 1\n", []string{`3:1: a config holds one YAML document`}},
		{"NUL", "version: 1\x00\n", []string{"1:11: NUL character"}},
		{"invalid UTF-8", "version: 1\nserver: {https: \"\xff\"}\n", []string{"2:18: invalid UTF-8"}},
		{"control character", "version: 1\x01\n", []string{"1:11: control character U+0001"}},
		{"deep nesting", "version: " + strings.Repeat("[", 40) + strings.Repeat("]", 40) + "\n",
			[]string{"1:", "collections are nested more than 32 deep"}},
		{"deep block nesting", strings.Repeat("- ", 40) + "x\n", []string{"collections are nested more than 32 deep"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := decodeOnly(t, "", tt.src, testEnv)
			text := errs.Error()
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("missing %q in:\n%s", w, text)
				}
			}
		})
	}
}

func TestDecodeValues(t *testing.T) {
	src := `version: !!int 1
server:
  https: ":${PORT}"
  limits:
    max_connections: "${PORT}"
    max_body: 64KiB
    read_timeout: 1d12h
routes:
  - name: a
    path: /a
    upstream: &up {targets: ["http://127.0.0.1:9000"], timeout: 5s}
    auth: keys
    methods: [GET]
  - name: b
    path: /b
    upstream: *up
    auth: [keys, own]
  - name: c
    path: /c
    upstream: {<<: *up, timeout: 7s}
    auth: none
    max_body: ~
    mask_upstream_errors: false
consumers:
  - id: a
    scopes: ["$${X}", "a$b", "${ISSUER}"]
    rate_limits: ["100/s burst 50", "5/30d"]
`
	cfg, errs := decodeOnly(t, "", src, testEnv)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"version", cfg.Version, 1},
		{"env in string", cfg.Server.HTTPS, ":8443"},
		{"env in int", cfg.Server.Limits.MaxConnections, 8443},
		{"size", cfg.Server.Limits.MaxBody, Size(64 << 10)},
		{"duration", cfg.Server.Limits.ReadTimeout.D(), 36 * time.Hour},
		{"scalar Strings", fmt.Sprint(cfg.Routes[0].Auth), "[keys]"},
		{"list Strings", fmt.Sprint(cfg.Routes[1].Auth), "[keys own]"},
		{"alias", cfg.Routes[1].Upstream.Timeout.D(), 5 * time.Second},
		{"alias targets", fmt.Sprint(cfg.Routes[1].Upstream.Targets), "[http://127.0.0.1:9000]"},
		{"merge overrides", cfg.Routes[2].Upstream.Timeout.D(), 7 * time.Second},
		{"merge inherits", fmt.Sprint(cfg.Routes[2].Upstream.Targets), "[http://127.0.0.1:9000]"},
		{"null pointer", cfg.Routes[2].MaxBody == nil, true},
		{"bool pointer", *cfg.Routes[2].MaskUpstreamErrors, false},
		{"escaped ${", cfg.Consumers[0].Scopes[0], "${X}"},
		{"lone $", cfg.Consumers[0].Scopes[1], "a$b"},
		{"env in list", cfg.Consumers[0].Scopes[2], "https://idp.example.com"},
		{"rate", cfg.Consumers[0].RateLimits[0], Rate{N: 100, Per: time.Second, Burst: 50, Text: "100/s burst 50"}},
		{"rate count", cfg.Consumers[0].RateLimits[1].Per, 30 * 24 * time.Hour},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestEnvSubstitution(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"missing variable", `server: {https: "${NOPE}"}`, "1:17: server.https: environment variable NOPE is not set"},
		{"several missing", `server: {https: "${A}:${B}:${A}"}`, "1:17: server.https: environment variables A, B are not set"},
		{"unterminated", `server: {https: "${PORT"}`, `1:17: server.https: "${" is not closed by "}"`},
		{"bad name", `server: {https: "${1A}"}`, `1:17: server.https: "1A" is not a variable name`},
		{"empty name", `server: {https: "${}"}`, `1:17: server.https: "" is not a variable name`},
		{"in a list", "consumers: [{id: a, scopes: [x, \"${NOPE}\"]}]", "1:33: consumers[0].scopes[1]: environment variable NOPE is not set"},
		{"in a digest", `admin: {token_hash: "${NOPE}"}`, "1:21: admin.token_hash: environment variable NOPE is not set"},
		{"in a file path", `admin: {token_hash: "file:${NOPE}"}`, "1:21: admin.token_hash: environment variable NOPE is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := decodeOnly(t, "", tt.src, testEnv)
			if !strings.Contains(errs.Error(), tt.want) {
				t.Errorf("missing %q in:\n%v", tt.want, errs)
			}
		})
	}
	// Substituted values are never read again as ${...} or file:.
	cfg, errs := decodeOnly(t, "", `server: {https: "${V}"}`+"\nadmin: {token_hash: \"${H}\"}\n", func(name string) (string, bool) {
		return map[string]string{"V": "${PORT}", "H": "sha256:" + strings.Repeat("0f", 32)}[name], true
	})
	if len(errs) > 0 || cfg.Server.HTTPS != "${PORT}" || cfg.Admin.TokenHash.IsZero() {
		t.Errorf("got %q, %v, %v", cfg.Server.HTTPS, cfg.Admin.TokenHash, errs)
	}
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	hash := "sha256:" + strings.Repeat("ab", 32)
	writeFile(t, dir, "secrets/admin.hash", hash+"\n")
	writeFile(t, dir, "secrets/crlf.hash", hash+"\r\n")
	writeFile(t, dir, "secrets/sig.key", "c2VjcmV0\n\n")
	writeFile(t, dir, "secrets/big", strings.Repeat("x", 64<<10+1))
	writeFile(t, dir, "secrets/max", strings.Repeat("x", 64<<10))

	t.Run("digest and value", func(t *testing.T) {
		src := "admin: {token_hash: file:secrets/admin.hash}\n" +
			"authenticators:\n  i: {type: introspection, client_secret: file:secrets/sig.key}\n" +
			"consumers:\n  - id: a\n    credentials:\n      - http_signature: {secret: \"file:${DIR}/secrets/max\"}\n" +
			"tls: {cert_file: \"file:secrets/admin.hash\"}\n"
		cfg, errs := decodeOnly(t, dir, src, func(n string) (string, bool) { return dir, n == "DIR" })
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		if cfg.Admin.TokenHash.String() != hash {
			t.Errorf("token_hash = %v", cfg.Admin.TokenHash)
		}
		if got := cfg.Authenticators["i"].ClientSecret.Reveal(); got != "c2VjcmV0\n" {
			t.Errorf("client_secret = %q; want one trailing newline dropped", got)
		}
		if got := cfg.Consumers[0].Credentials[0].HTTPSignature.Secret.Reveal(); len(got) != 64<<10 {
			t.Errorf("64 KiB secret has %d bytes", len(got))
		}
		if cfg.TLS.CertFile != "file:secrets/admin.hash" {
			t.Errorf("file: was read for a field that is not a secret: %q", cfg.TLS.CertFile)
		}
	})
	t.Run("crlf", func(t *testing.T) {
		cfg, errs := decodeOnly(t, dir, "admin: {token_hash: file:secrets/crlf.hash}\n", testEnv)
		if len(errs) > 0 || cfg.Admin.TokenHash.String() != hash {
			t.Errorf("got %v, %v", cfg.Admin.TokenHash, errs)
		}
	})
	errRows := []struct{ name, src, want string }{
		{"missing file", "admin: {token_hash: file:secrets/nope}\n", "1:21: admin.token_hash: reading secret file "},
		{"missing file names the error", "admin: {token_hash: file:secrets/nope}\n", "no such file or directory"},
		{"too large", "admin: {token_hash: file:secrets/big}\n", "1:21: admin.token_hash: secret file " + filepath.Join(dir, "secrets/big") + " is larger than 64 KiB"},
		{"directory", "admin: {token_hash: file:secrets}\n", "1:21: admin.token_hash: reading secret file " + filepath.Join(dir, "secrets") + ": not a regular file"},
		{"no path", "admin: {token_hash: \"file:\"}\n", `1:21: admin.token_hash: "file:" needs a path`},
		{"content is checked", "admin: {token_hash: file:secrets/sig.key}\n", `1:21: admin.token_hash: want "sha256:"`},
	}
	for _, tt := range errRows {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := decodeOnly(t, dir, tt.src, testEnv)
			if !strings.Contains(errs.Error(), tt.want) {
				t.Errorf("missing %q in:\n%v", tt.want, errs)
			}
		})
	}
}

func TestPositions(t *testing.T) {
	src := validBase + `consumers:
  - id: a
    credentials:
      - api_key: "sha256:` + strings.Repeat("11", 32) + `"
  - id: b
    credentials:
      - api_key: "sha256:` + strings.Repeat("22", 32) + `"
server2: x
`
	src = strings.Replace(src, `server: {admin: "off"}`, "server:\n  admin: \"off\"\n  limits:\n    max_body: 1MiB", 1)
	src = strings.Replace(src, "server2: x\n", "", 1)
	cfg, errs := parseIn(t, "", src)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	want := map[string]Position{
		"":                                    {1, 1},
		"version":                             {1, 10},
		"server":                              {3, 3},
		"server.limits":                       {5, 5},
		"server.limits.max_body":              {5, 15},
		"authenticators.keys":                 {8, 3},
		"authenticators.keys.type":            {8, 16},
		"routes[0]":                           {10, 5},
		"routes[0].auth":                      {13, 11},
		"routes[0].upstream.targets[0]":       {12, 26},
		"consumers[1].credentials[0].api_key": {20, 18},
	}
	for path, pos := range want {
		if got, ok := cfg.Positions[path]; !ok || got != pos {
			t.Errorf("Positions[%q] = %v, %v; want %v", path, got, ok, pos)
		}
	}
	// Pos falls back to the nearest written ancestor.
	if got := cfg.Pos("routes[0].upstream.timeout"); got != cfg.Positions["routes[0].upstream"] {
		t.Errorf("Pos(unwritten) = %v, want the position of routes[0].upstream", got)
	}
	if got := cfg.Pos("nothing.here[3]"); got != (Position{1, 1}) {
		t.Errorf("Pos(unknown) = %v, want the document", got)
	}
	if got := (&Config{}).Pos("x"); got != (Position{}) {
		t.Errorf("Pos without positions = %v", got)
	}
}

func TestResolve(t *testing.T) {
	c := &Config{Dir: "/etc/breakwater"}
	for in, want := range map[string]string{
		"":              "",
		"certs/a.pem":   "/etc/breakwater/certs/a.pem",
		"../a.pem":      "/etc/a.pem",
		"/abs/a.pem":    "/abs/a.pem",
		"./certs/a.pem": "/etc/breakwater/certs/a.pem",
	} {
		if got := c.Resolve(in); got != want {
			t.Errorf("Resolve(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAliasBombs(t *testing.T) {
	var merge strings.Builder
	merge.WriteString("x0: &a0 {https: \":1\", http: \":2\"}\n")
	for i := 1; i <= 7; i++ {
		fmt.Fprintf(&merge, "x%d: &a%d {<<: [%s]}\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d,", i-1), 10), ","))
	}
	merge.WriteString("server: *a7\n")

	var laughs strings.Builder
	laughs.WriteString("x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&laughs, "x%d: &a%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d,", i-1), 9), ","))
	}
	laughs.WriteString("consumers: [{id: a, scopes: *a9}]\nroutes: *a9\n")

	var wide strings.Builder
	wide.WriteString("routes:\n  - &r {name: a, path: /a, methods: &m [" + strings.TrimSuffix(strings.Repeat("GET,", 500), ",") + "]}\n")
	for range 400 {
		wide.WriteString("  - *r\n")
	}

	for name, src := range map[string]string{"merge": merge.String(), "laughs": laughs.String(), "wide": wide.String()} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			_, errs := parseIn(t, "", src)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
			if len(errs) == 0 || len(errs) > maxErrors+1 {
				t.Errorf("%d errors", len(errs))
			}
			if name != "laughs" && !strings.Contains(errs.Error(), "aliases expand this document to too many values") {
				t.Errorf("alias expansion not refused:\n%.2000s", errs.Error())
			}
		})
	}
}

func TestDocumentLimits(t *testing.T) {
	big := "version: 1\n" + strings.Repeat("#", maxDocument)
	_, errs := parseIn(t, "", big)
	if !strings.Contains(errs.Error(), "1:1: the config is 4194315 bytes, more than the limit of 4 MiB") {
		t.Errorf("got %v", errs)
	}
	wide := "version: 1\nauthenticators:\n"
	for i := range maxKeys + 1 {
		wide += fmt.Sprintf("  a%d: {type: api_key}\n", i)
	}
	_, errs = parseIn(t, "", wide)
	if !strings.Contains(errs.Error(), "1003:3: a mapping has more than 1000 keys") {
		t.Errorf("got %.500s", errs.Error())
	}
	for _, src := range []string{"", "# only a comment\n", "---\n", "~\n"} {
		_, errs := parseIn(t, "", src)
		if !strings.Contains(errs.Error(), `version: required; write "version: 1"`) {
			t.Errorf("%q: got %v", src, errs)
		}
	}
}

func TestSuggest(t *testing.T) {
	valid := []string{"name", "host", "path", "methods", "upstream", "auth", "scopes", "max_body", "mask_upstream_errors"}
	tests := map[string]string{
		"upstrem":   "upstream",
		"upstreams": "upstream",
		"Upstream":  "upstream",
		"nmae":      "name",
		"auht":      "auth",
		"max-body":  "max_body",
		"maxbody":   "max_body",
		"method":    "methods",
		"hots":      "host",
		"a":         "",
		"zzzz":      "",
		"timeout":   "",
		"":          "",
	}
	for in, want := range tests {
		if got := suggest(in, valid); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
	if d := editDistance("kitten", "sitting"); d != 3 {
		t.Errorf("editDistance = %d", d)
	}
	if d := editDistance("ab", "ba"); d != 1 {
		t.Errorf("editDistance(transposition) = %d", d)
	}
}
