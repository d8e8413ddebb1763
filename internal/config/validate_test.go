package config

import (
	"strings"
	"testing"
)

const (
	hashA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	hashB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// validationDir holds the files that rows refer to.
func validationDir(t *testing.T) string {
	dir := t.TempDir()
	writeFile(t, dir, "certs/cert.pem", "cert")
	writeFile(t, dir, "certs/key.pem", "key")
	writeFile(t, dir, "specs/orders.yaml", "openapi: 3.1.0")
	return dir
}

func TestValidBase(t *testing.T) {
	expectErrors(t, "", validBase)
}

type validationRow struct {
	name string
	src  string
	want []string // empty: the config is valid
}

func runValidationRows(t *testing.T, rows []validationRow) {
	dir := validationDir(t)
	for _, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			expectErrors(t, dir, tt.src, tt.want...)
		})
	}
}

func TestValidateServer(t *testing.T) {
	runValidationRows(t, []validationRow{
		{"version missing", "server: {}\n", []string{`1:1: version: required; write "version: 1"`}},
		{"version 2", "version: 2\n", []string{"1:10: version: unsupported version 2; this Breakwater reads version 1"}},
		{"version 0 written", "version: 0\n", []string{"1:10: version: unsupported version 0"}},
		{"https without port", "server:\n  https: \"8443\"\n",
			[]string{`2:10: server.https: "8443" is not a listen address: want host:port, such as ":8443" or "127.0.0.1:9901"`}},
		{"https bad port", "server: {https: \":99999\"}\n", []string{`1:17: server.https: ":99999" is not a listen address: the port must be a number from 0 to 65535`}},
		{"https named port", "server: {https: \":https\"}\n", []string{`1:17: server.https: ":https" is not a listen address: the port`}},
		{"https bad host", "server: {https: \"bad_host!:80\"}\n", []string{`1:17: server.https: "bad_host!:80" is not a listen address: "bad_host!" is neither an IP address nor a host name`}},
		{"https empty", "server: {https: \"\"}\n", []string{`1:17: server.https: required`}},
		{"http same as https", "server: {https: \":8443\", http: \"0.0.0.0:8443\"}\n", []string{"1:32: server.http: uses the same address as server.https"}},
		{"admin same as https", "server: {https: \"127.0.0.1:8443\", admin: \"127.0.0.1:8443\"}\n", []string{"1:42: server.admin: uses the same address as server.https"}},
		{"admin empty", "server: {admin: \"\"}\n", []string{`1:17: server.admin: required; a listen address such as "127.0.0.1:9901", or "off"`}},
		{"admin bad", "server: {admin: localhost}\n", []string{`1:17: server.admin: "localhost" is not a listen address`}},
		{"trusted proxies", "server:\n  trusted_proxies: [10.0.0.1, 10.0.0.0/8, 0.0.0.0/0, \"::1\", \"fd00::/8\", 10.0.0.1/8, nope, 10.0.0.0/33]\n",
			[]string{
				`2:73: server.trusted_proxies[5]: "10.0.0.1/8" has bits set after the prefix length; did you mean 10.0.0.0/8?`,
				`2:85: server.trusted_proxies[6]: "nope" is neither an IP address nor a CIDR prefix`,
				`2:91: server.trusted_proxies[7]: "10.0.0.0/33" is not a CIDR prefix such as 10.0.0.0/8`,
			}},
		{"zero limits", "server:\n  shutdown_timeout: 0s\n  limits:\n    max_body: 0\n    max_header_bytes: 0B\n    read_header_timeout: 0s\n    max_connections: -1\n    max_in_flight: 0\n",
			[]string{
				"2:21: server.shutdown_timeout: must be more than 0",
				"4:15: server.limits.max_body: must be more than 0",
				"5:23: server.limits.max_header_bytes: must be more than 0",
				"6:26: server.limits.read_header_timeout: must be more than 0",
				"7:22: server.limits.max_connections: must be more than 0",
				"8:20: server.limits.max_in_flight: must be more than 0",
			}},
		{"per-IP above total", "server: {limits: {max_connections: 10, max_connections_per_ip: 20}}\n",
			[]string{"1:64: server.limits.max_connections_per_ip: is more than max_connections (10)"}},
		{"write timeout zero is fine", strings.Replace(validBase, `server: {admin: "off"}`, `server: {admin: "off", limits: {write_timeout: 0s}}`, 1), nil},
		{"admin on needs a token", strings.Replace(validBase, `server: {admin: "off"}`, `server: {admin: "127.0.0.1:9901"}`, 1),
			[]string{`1:1: admin.token_hash: required while server.admin is on; make one with "breakwater secret hash", or set server.admin: off`}},
		{"admin token from env", strings.Replace(validBase, `server: {admin: "off"}`, "admin: {token_hash: \"${ADMIN_HASH}\"}", 1), nil},
		{"store on_unavailable", "store: {on_unavailable: maybe}\n", []string{`1:25: store.on_unavailable: "maybe" is not one of local, deny, allow`}},
		{"store redis url", "store: {redis: \"http://x\"}\n", []string{`1:16: store.redis: redis URL: unknown scheme "http"; want redis, rediss, redis-sentinel`}},
	})
}

func TestValidateTLS(t *testing.T) {
	noTLS := strings.Replace(validBase, "tls: {self_signed: true}\n", "", 1)
	withTLS := func(tls string) string { return strings.Replace(validBase, "tls: {self_signed: true}", tls, 1) }
	runValidationRows(t, []validationRow{
		{"no certificate source", noTLS, []string{"1:1: tls: choose where the certificate comes from: cert_file with key_file, self_signed: true (development only), or acme"}},
		{"cert files", withTLS("tls: {cert_file: certs/cert.pem, key_file: certs/key.pem, min_version: 1.3}"), nil},
		{"two sources", withTLS("tls: {self_signed: true, cert_file: certs/cert.pem, key_file: certs/key.pem}"),
			[]string{"3:20: tls.self_signed: conflicts with tls.cert_file; choose one of cert_file with key_file, self_signed or acme"}},
		{"cert without key", withTLS("tls: {cert_file: certs/cert.pem}"), []string{"3:6: tls.key_file: required with tls.cert_file"}},
		{"key without cert", withTLS("tls: {key_file: certs/key.pem}"), []string{"3:6: tls.cert_file: required with tls.key_file"}},
		{"missing files", withTLS("tls: {cert_file: nope.pem, key_file: certs}"),
			[]string{"3:18: tls.cert_file: cannot read ", "nope.pem: no such file or directory", "3:38: tls.key_file: cannot read ", "certs: not a regular file"}},
		{"old TLS", withTLS("tls: {self_signed: true, min_version: 1.1}"), []string{`3:39: tls.min_version: "1.1" is not supported; use "1.2" or "1.3"`}},
		{"TLS 1.0 string", withTLS(`tls: {self_signed: true, min_version: "1.0"}`), []string{`3:39: tls.min_version: "1.0" is not supported`}},
		{"hsts preload", withTLS("tls: {self_signed: true, hsts: {max_age: 1d, preload: true}}"),
			[]string{"3:55: tls.hsts.preload: needs include_subdomains: true and max_age of at least 365d"}},
		{"hsts off", withTLS("tls: {self_signed: true, hsts: {max_age: 0s}}"), nil},
		{"acme", withTLS("tls: {acme: {domains: [\"bad domain\"]}}"),
			[]string{
				"3:13: tls.acme.email: required",
				`3:24: tls.acme.domains[0]: "bad domain" is not a host name`,
				"3:13: tls.acme: ACME certificates are not available in this version of Breakwater yet; use cert_file with key_file",
			}},
		{"client CA", withTLS("tls: {self_signed: true, client_ca_file: ca.pem}"),
			[]string{
				"3:42: tls.client_ca_file: cannot read ",
			}},
	})
}

func TestValidateAuthenticators(t *testing.T) {
	withAuth := func(auth string) string {
		return strings.Replace(validBase, "  keys: {type: api_key}\n", "  keys: {type: api_key}\n"+auth, 1)
	}
	runValidationRows(t, []validationRow{
		{"names", withAuth("  Keys: {type: api_key}\n  none: {type: api_key}\n  a.b: {type: api_key}\n"),
			[]string{
				`6:3: authenticators.Keys: "Keys" is not a valid name; use 1 to 64 lowercase letters, digits, "_" and "-"`,
				`7:3: authenticators.none: "none" is reserved for public routes (auth: none); choose another name`,
				`8:3: authenticators.a.b: "a.b" is not a valid name`,
			}},
		{"type missing", withAuth("  k: {header: X}\n"), []string{"6:3: authenticators.k.type: required; one of api_key, http_signature, introspection, jwt, mtls"}},
		{"type unknown", withAuth("  k: {type: basic}\n"), []string{`6:13: authenticators.k.type: unknown type "basic"; want one of api_key, http_signature, introspection, jwt, mtls`}},
		{"foreign fields", withAuth("  k: {type: api_key, issuer: x, leeway: 0s}\n"),
			[]string{
				"6:30: authenticators.k.issuer: not a field of api_key authenticators (it belongs to type jwt); remove it",
				"6:41: authenticators.k.leeway: not a field of api_key authenticators (it belongs to type jwt); remove it",
			}},
		{"bad header", withAuth("  k: {type: api_key, header: \"X API\"}\n"), []string{`6:30: authenticators.k.header: "X API" is not a valid header name`}},
		{"query only", withAuth("  k: {type: api_key, query: api_key}\n"), nil},
		{"jwt", withAuth("  k: {type: jwt, issuer: \"https://idp\", jwks_url: \"http://idp.example.com/jwks\", algorithms: [HS256, none, RS256], leeway: 1h}\n"),
			[]string{
				"6:51: authenticators.k.jwks_url: must use https (http is allowed only on loopback addresses)",
				"6:3: authenticators.k.audience: required",
				`6:95: authenticators.k.algorithms[0]: "HS256" is not allowed; want one of RS256,`,
				`6:102: authenticators.k.algorithms[1]: "none" is not allowed`,
				"6:124: authenticators.k.leeway: must be from 0 to 5m",
			}},
		{"jwt self", withAuth("  k: {type: jwt, issuer: self, jwks_url: \"https://x/jwks\"}\n"),
			[]string{
				"6:26: authenticators.k.issuer: issuer self needs token_endpoint to be configured",
				"6:42: authenticators.k.jwks_url: tokens of issuer self are checked with Breakwater's own keys; remove jwks_url",
			}},
		{"introspection", withAuth("  k: {type: introspection, url: \"http://idp.example.com/i\"}\n"),
			[]string{
				"6:33: authenticators.k.url: must use https",
				"6:3: authenticators.k.client_id: required",
				`6:3: authenticators.k.client_secret: required; write it as "${ENV_VAR}" or "file:PATH"`,
			}},
		{"introspection on loopback", withAuth("  k: {type: introspection, url: \"http://127.0.0.1/i\", client_id: gw, client_secret: \"s\"}\n"),
			nil},
		{"http_signature", withAuth("  k: {type: http_signature, max_age: 2h, required_components: [\"@method\", \"\", \"@bogus\", Content-Digest]}\n"),
			[]string{
				"6:38: authenticators.k.max_age: at most 1h",
				`6:75: authenticators.k.required_components[1]: "" is not a component`,
				`6:79: authenticators.k.required_components[2]: "@bogus" is not a component`,
				`6:89: authenticators.k.required_components[3]: "Content-Digest" is not a component`,
			}},
		{"http_signature max_age 0", withAuth("  k: {type: http_signature, max_age: 0s}\n"),
			[]string{"6:38: authenticators.k.max_age: must be more than 0"}},
		{"mtls", withAuth("  k: {type: mtls, header: X}\n"),
			[]string{
				"6:27: authenticators.k.header: not a field of mtls authenticators (it belongs to type api_key); remove it",
				"6:13: authenticators.k.type: mtls authenticators need tls.client_ca_file",
			}},
		{"mtls crl", withAuth("  k: {type: mtls, crl_file: nope.crl}\n"),
			[]string{"6:29: authenticators.k.crl_file: cannot read "}},
		{"jwt self with algorithms and claim", withAuth("  k: {type: jwt, issuer: self, algorithms: [RS256], consumer_claim: \"a b\"}\n"),
			[]string{
				"6:44: authenticators.k.algorithms: tokens of issuer self are checked with the algorithm of each of Breakwater's own keys",
				`6:69: authenticators.k.consumer_claim: "a b" is not a claim name`,
			}},
	})
}

func TestValidateConsumers(t *testing.T) {
	withConsumers := func(c string) string { return validBase + "consumers:\n" + c }
	runValidationRows(t, []validationRow{
		{"valid", withConsumers("  - {id: acme.v2_x-1, scopes: [\"orders:read\", a/b], credentials: [{api_key: \"" + hashA + "\"}]}\n"), nil},
		{"ids", withConsumers("  - {credentials: [{api_key: \"" + hashA + "\"}]}\n  - {id: bad id, credentials: [{api_key: \"" + hashB + "\"}]}\n  - {id: a, credentials: [{api_key: \"" + hashA[:10] + "\"}]}\n  - {id: a}\n"),
			[]string{
				"12:5: consumers[0].id: required",
				`13:10: consumers[1].id: "bad id" is not a valid id; use 1 to 64 letters, digits, ".", "_" and "-"`,
				`15:10: consumers[3].id: "a" is already the id of consumers[2]`,
				"15:5: consumers[3].credentials: required; a consumer needs at least one credential, such as api_key",
			}},
		{"credential kinds", withConsumers("  - id: a\n    credentials:\n      - {}\n      - {api_key: \"" + hashA + "\", mtls: {subject_cn: x}}\n"),
			[]string{
				"14:9: consumers[0].credentials[0]: set one of api_key, jwt, oauth_client, mtls, http_signature",
				"15:100: consumers[0].credentials[1].mtls: a credential entry sets one kind, but this one also sets api_key; write each as its own list entry",
			}},
		{"duplicate api keys", withConsumers("  - {id: a, credentials: [{api_key: \"" + hashA + "\"}]}\n  - {id: b, credentials: [{api_key: \"" + hashB + "\"}, {api_key: \"" + hashA + "\"}]}\n"),
			[]string{"13:123: consumers[1].credentials[1].api_key: the same key is already used at consumers[0].credentials[0].api_key; every key must be unique"}},
		{"scopes", withConsumers("  - {id: a, scopes: [\"has space\", \"\", 'q\"'], credentials: [{api_key: \"" + hashA + "\"}]}\n"),
			[]string{
				`12:22: consumers[0].scopes[0]: "has space" is not a scope`,
				`12:35: consumers[0].scopes[1]: "" is not a scope`,
				`12:39: consumers[0].scopes[2]: "q\"" is not a scope`,
			}},
		{"other credentials", withConsumers(`  - id: a
    credentials:
      - jwt: {authenticator: keys}
      - oauth_client: {client_id: c1}
      - oauth_client: {client_id: c1, secret_hash: "` + hashA + `"}
      - mtls: {subject_cn: a, san_dns: b}
      - mtls: {sha256: "zz"}
      - http_signature: {key_id: k, alg: hmac-sha256, secret: "c2hvcnQ="}
      - http_signature: {key_id: k, alg: rsa}
      - http_signature: {key_id: k2, alg: ed25519, secret: x}
    rate_limits: ["10/s"]
`),
			[]string{
				`14:30: consumers[0].credentials[0].jwt.authenticator: "keys" is not a jwt authenticator`,
				`14:14: consumers[0].credentials[0].jwt.subject: required`,
				"15:23: consumers[0].credentials[1].oauth_client.secret_hash: required",
				`16:35: consumers[0].credentials[2].oauth_client.client_id: "c1" is already used at consumers[0].credentials[1].oauth_client.client_id`,
				"17:40: consumers[0].credentials[3].mtls.san_dns: conflicts with subject_cn",
				"18:24: consumers[0].credentials[4].mtls.sha256: want the certificate's SHA-256 fingerprint as 64 hex digits",
				"19:63: consumers[0].credentials[5].http_signature.secret: want base64 of at least 32 bytes",
				`20:42: consumers[0].credentials[6].http_signature.alg: "rsa" is not one of hmac-sha256, ed25519, ecdsa-p256-sha256`,
				"15:23: consumers[0].credentials[1].oauth_client: oauth_client credentials need token_endpoint to be configured",
				`20:34: consumers[0].credentials[6].http_signature.key_id: "k" is already used at consumers[0].credentials[5].http_signature.key_id`,
				"21:25: consumers[0].credentials[7].http_signature.public_key: required for ed25519",
				"21:60: consumers[0].credentials[7].http_signature.secret: not used with ed25519",
			}},
	})
}

func TestValidateRoutes(t *testing.T) {
	head := "version: 1\nserver: {admin: \"off\"}\ntls: {self_signed: true}\nauthenticators: {keys: {type: api_key}, own: {type: api_key, header: X-Own}}\nroutes:\n"
	up := "upstream: {targets: [\"http://127.0.0.1:9000\"]}"
	route := func(fields string) string {
		return head + "  - {name: r, path: /r, " + up + ", auth: keys, " + fields + "}\n"
	}
	runValidationRows(t, []validationRow{
		{"valid", head + "  - {name: r, host: api.example.com, path: /, " + up + ", auth: none}\n" +
			"  - {name: r2, host: \"*.example.com\", path: \"/v1/{id}/**\", methods: [GET, HEAD, PURGE], " + up + ", auth: [keys, own], scopes: [a]}\n" +
			"  - {name: r3, path: \"/a/\", " + up + ", auth: own, max_body: 1KiB}\n", nil},
		{"auth missing", head + "  - name: r\n    path: /r\n    " + up + "\n",
			[]string{`6:5: routes[0].auth: required; list authenticators, or write "auth: none" for a public route`}},
		{"auth empty list", head + "  - {name: r, path: /r, " + up + ", auth: []}\n",
			[]string{`6:79: routes[0].auth: required; list authenticators`}},
		{"auth none with others", head + "  - {name: r, path: /r, " + up + ", auth: [none, keys]}\n",
			[]string{`6:80: routes[0].auth[0]: "none" must stand alone; a route is either public or needs authentication`}},
		{"auth unknown and twice", head + "  - {name: r, path: /r, " + up + ", auth: [keys, nope, keys]}\n",
			[]string{
				`6:86: routes[0].auth[1]: unknown authenticator "nope" (defined: keys, own)`,
				`6:92: routes[0].auth[2]: "keys" is listed twice`,
			}},
		{"auth unknown scalar", head + "  - {name: r, path: /r, " + up + ", auth: nope}\n",
			[]string{`6:79: routes[0].auth: unknown authenticator "nope" (defined: keys, own)`}},
		{"public route with scopes", head + "  - {name: r, path: /r, " + up + ", auth: none, scopes: [a]}\n",
			[]string{"6:93: routes[0].scopes: a public route (auth: none) has no consumer to hold scopes"}},
		{"names", head + "  - {path: /a, " + up + ", auth: keys}\n  - {name: \"a b\", path: /b, " + up + ", auth: keys}\n  - {name: c, path: /c, " + up + ", auth: keys}\n  - {name: c, path: /d, " + up + ", auth: keys}\n",
			[]string{
				"6:5: routes[0].name: required",
				`7:12: routes[1].name: "a b" is not a valid name`,
				`9:12: routes[3].name: "c" is already the name of routes[2]`,
			}},
		{"host", route("host: \"api.example.com:8443\""), []string{`6:91: routes[0].host: host "api.example.com:8443" has a port`}},
		{"path missing", head + "  - {name: r, " + up + ", auth: keys}\n", []string{`6:5: routes[0].path: required; such as "/v1/orders/{id}" or "/v1/**"`}},
		{"methods", route("methods: [get, \"G T\", GET, GET]"),
			[]string{
				`6:95: routes[0].methods[0]: methods are case-sensitive and uppercase; write "GET"`,
				`6:100: routes[0].methods[1]: "G T" is not an HTTP method`,
				`6:112: routes[0].methods[3]: "GET" is listed twice`,
			}},
		{"conflicting routes", head + "  - {name: a, path: \"/x/{id}\", methods: [GET, POST], " + up + ", auth: keys}\n  - {name: b, path: \"/x/{other}\", methods: [POST], " + up + ", auth: keys}\n  - {name: c, path: \"/x/{id}\", methods: [PUT], " + up + ", auth: keys}\n  - {name: d, path: /y, " + up + ", auth: keys}\n  - {name: e, path: /y, " + up + ", auth: keys}\n  - {name: f, host: a.example.com, path: /y, " + up + ", auth: keys}\n",
			[]string{
				`7:21: routes[1].path: routes[0] ("a") already matches the same host, path and method POST`,
				`10:21: routes[4].path: routes[3] ("d") already matches the same host, path and method (any)`,
			}},
		{"max_body", route("max_body: 0"), []string{"6:95: routes[0].max_body: must be more than 0"}},
		{"rate limits", route("rate_limits: [{key: consumer, limit: \"10/s burst 5\"}, {key: ip, limit: \"100/m\"}, {key: route, limit: \"1000000/d\"}]"), nil},
		{"health checks too often", strings.Replace(route("methods: [GET]"), `upstream: {targets: ["http://127.0.0.1:9000"]}`, `upstream: {targets: ["http://127.0.0.1:9000"], health_check: {interval: 10ms, timeout: 5ms}}`, 1),
			[]string{`routes[0].upstream.health_check.interval: 10ms is too short`}},
		{"burst on a quota", route("rate_limits: [{key: ip, limit: \"1000/d burst 5\"}]"),
			[]string{`6:116: routes[0].rate_limits[0].limit: "1000/d burst 5": a burst applies to rates with a period under an hour`}},
		{"too many limits", route("rate_limits: [{key: ip, limit: 1/s}, {key: ip, limit: 2/s}, {key: ip, limit: 3/s}, {key: ip, limit: 4/s}, {key: ip, limit: 5/s}, {key: ip, limit: 6/s}, {key: ip, limit: 7/s}, {key: ip, limit: 8/s}, {key: ip, limit: 9/s}]"),
			[]string{`routes[0].rate_limits: 9 limits; at most 8`}},
		{"consumer limit on a public route", head + "  - {name: r, path: /r, " + up + ", auth: none, rate_limits: [{key: consumer, limit: \"1/s\"}]}\n",
			[]string{`6:105: routes[0].rate_limits[0].key: a route with "auth: none" has no consumer to count; use key: ip or key: route`}},
		{"policies", route("policy: \"request.path.id == consumer.nope\"") + "  - {name: p, path: /p, " + up + ", auth: none, policy: \"true\"}\n" +
			"  - {name: q, path: /q, " + up + ", auth: keys, policy: \"request.method\"}\n",
			[]string{
				"6:93: routes[0].policy: expression 1:20: undeclared reference to 'consumer': consumer has id and scopes",
				"7:93: routes[1].policy: a public route (auth: none) has no consumer for a policy to judge",
				"8:93: routes[2].policy: expression 1:1: policy must be a bool expression, but its type is string",
			}},
		{"valid policy", route(`policy: "request.path.id == consumer.id || 'admin' in consumer.scopes"`), nil},
		{"refused route features", route("policy: \"true\", rate_limits: [{key: user, limit: \"1/s\"}, {key: ip}], openapi: {spec: specs/none.yaml}"),
			[]string{
				`6:121: routes[0].rate_limits[0].key: "user" is not one of consumer, ip, route`,
				`6:142: routes[0].rate_limits[1].limit: required; a rate such as "10/s burst 20"`,
				"6:170: routes[0].openapi.spec: cannot read ",
			}},
	})
}

// Route paths, hosts and conflicts are checked by the router the gateway
// builds (internal/router has the full template table); here: that its
// findings arrive at the right positions.
func TestValidatePaths(t *testing.T) {
	for path, want := range map[string]string{
		"/v1/../x":   `8:11: routes[0].path: template "/v1/../x" has a dot segment ".."`,
		"/a//b":      `8:11: routes[0].path: template "/a//b" has an empty segment`,
		"/a/%2F":     `8:11: routes[0].path: template "/a/%2F" has "%2F": templates match decoded paths`,
		"/a/**/b":    `8:11: routes[0].path: template "/a/**/b" "**" is only allowed as the last segment`,
		"/{id}/{id}": `8:11: routes[0].path: template "/{id}/{id}" uses the parameter {id} twice`,
	} {
		src := strings.Replace(validBase, "path: /v1/things/{id}", "path: "+path, 1)
		expectErrors(t, "", src, want)
	}
}

func TestValidateUpstream(t *testing.T) {
	head := "version: 1\nserver: {admin: \"off\"}\ntls: {self_signed: true}\nroutes:\n  - name: r\n    path: /r\n    auth: none\n    upstream:\n"
	runValidationRows(t, []validationRow{
		{"valid", head + "      targets: [\"https://a.example.com:8443/base\", \"http://[::1]:9000\"]\n      tls: {ca_file: certs/cert.pem, cert_file: certs/cert.pem, key_file: certs/key.pem, server_name: a.example.com}\n      health_check: {}\n      retries: 0\n      max_fails: 0\n", nil},
		{"targets missing", head + "      timeout: 1s\n", []string{`9:7: routes[0].upstream.targets: required; at least one URL such as "http://127.0.0.1:9000"`}},
		{"bad targets", head + "      targets:\n        - ftp://x\n        - \"http://\"\n        - http://u:p@h\n        - http://h?x=1\n        - http://h?\n        - http://h#f\n        - 127.0.0.1:9000\n        - http://h:0\n        - http://h_x\n        - /relative\n",
			[]string{
				`10:11: routes[0].upstream.targets[0]: "ftp://x": the scheme must be http or https`,
				`11:11: routes[0].upstream.targets[1]: "http://" has no host`,
				"12:11: routes[0].upstream.targets[2]: credentials in a target URL leak into logs; remove them",
				`13:11: routes[0].upstream.targets[3]: "http://h?x=1" has a query`,
				`14:11: routes[0].upstream.targets[4]: "http://h?" has a query`,
				`15:11: routes[0].upstream.targets[5]: "http://h#f" has a fragment`,
				`16:11: routes[0].upstream.targets[6]: "127.0.0.1:9000" is not a URL`,
				`17:11: routes[0].upstream.targets[7]: "http://h:0": the port must be a number from 1 to 65535`,
				`18:11: routes[0].upstream.targets[8]: "h_x" is neither an IP address nor a host name`,
				`19:11: routes[0].upstream.targets[9]: "/relative": the scheme must be http or https`,
			}},
		{"tls without https", head + "      targets: [\"http://h\"]\n      tls: {cert_file: certs/cert.pem, ca_file: nope.pem, server_name: \"a b\"}\n",
			[]string{
				"10:12: routes[0].upstream.tls: no target uses https; remove tls or use https:// targets",
				"10:12: routes[0].upstream.tls.key_file: required with cert_file",
				"10:49: routes[0].upstream.tls.ca_file: cannot read ",
				`10:72: routes[0].upstream.tls.server_name: "a b" is not a host name`,
			}},
		{"numbers", head + "      targets: [\"http://h\"]\n      timeout: 0s\n      retries: 11\n      max_fails: -1\n      health_check: {path: x, interval: 1s, timeout: 2s, healthy_threshold: 0}\n",
			[]string{
				"10:16: routes[0].upstream.timeout: must be more than 0",
				"11:16: routes[0].upstream.retries: must be from 0 to 10",
				"12:18: routes[0].upstream.max_fails: must not be negative; 0 turns passive health checks off",
				`13:28: routes[0].upstream.health_check.path: must start with "/"`,
				"13:54: routes[0].upstream.health_check.timeout: is longer than the interval (1s)",
				"13:77: routes[0].upstream.health_check.healthy_threshold: must be more than 0",
			}},
	})
}

func TestValidateRefusedSections(t *testing.T) {
	runValidationRows(t, []validationRow{
		{"token endpoint", validBase + "token_endpoint: {issuer: \"https://api.example.com\", algorithm: HS256, ttl: 48h, rotate_every: 10m, rate_limit: \"5/d burst 2\"}\n",
			[]string{
				`11:64: token_endpoint.algorithm: "HS256" is not one of EdDSA, ES256, RS256`,
				"11:76: token_endpoint.ttl: at most 24h",
				"11:95: token_endpoint.rotate_every: at least 1h",
				`11:112: token_endpoint.rate_limit: "5/d burst 2": a burst applies to rates`,
			}},
		{"token endpoint defaults", validBase + "token_endpoint: {issuer: \"https://api.example.com\"}\n", nil},
		{"docs", validBase + "docs: {path: docs, auth: [none, nope], specs: [specs/orders.yaml, specs/x.yaml]}\n",
			[]string{
				`11:14: docs.path: must be a plain path such as "/docs"`,
				`11:27: docs.auth[0]: "none" is not allowed here; name authenticators`,
				`11:33: docs.auth[1]: unknown authenticator "nope" (defined: keys)`,
				"11:67: docs.specs[1]: cannot read ",
			}},
		{"cors", validBase + "cors: {allowed_origins: [\"*\", \"https://app.example.com\", \"https://x.example.com/path\", \"app.example.com\"], allow_credentials: true, allowed_methods: [get], allowed_headers: [\"a b\"]}\n",
			[]string{
				`11:26: cors.allowed_origins[0]: "*" together with allow_credentials lets any site act as the user; list the origins`,
				`11:58: cors.allowed_origins[2]: "https://x.example.com/path" is not an origin`,
				`11:88: cors.allowed_origins[3]: "app.example.com" is not an origin`,
				`11:151: cors.allowed_methods[0]: methods are case-sensitive and uppercase`,
				`11:175: cors.allowed_headers[0]: "a b" is not a header name`,
			}},
		{"redis", validBase + "store: {redis: \"redis-cluster://10.0.0.1:6379,10.0.0.2:6379\"}\n", nil},
	})
}

// Every row of notYetAvailable is exercised by some test above; this guards
// against a row that can never fire.
func TestNotYetAvailableRowsFire(t *testing.T) {
	c := &Config{
		Consumers: []Consumer{{RateLimits: []Rate{{N: 1}}}},
		Docs:      &Docs{},
		CORS:      &CORS{},
		TLS:       TLS{ACME: &ACME{}},
	}
	for _, f := range notYetAvailable() {
		if len(f.uses(c)) == 0 {
			t.Errorf("row %q does not fire", f.subject)
		}
	}
	msgs := Validate(c).Error()
	if n := strings.Count(msgs, "not available in this version of Breakwater yet"); n != len(notYetAvailable()) {
		t.Errorf("%d refusals for %d rows:\n%s", n, len(notYetAvailable()), msgs)
	}
}

func TestMultipleErrorsAtOnce(t *testing.T) {
	src := `version: 3
server:
  https: "nope"
  limits: {max_body: 0}
tls: {self_signed: true, min_version: "1.0"}
routes:
  - name: r
    path: v1
    upstream: {targets: []}
`
	_, errs := parseIn(t, "", src)
	want := []string{
		"1:1: admin.token_hash: required while server.admin is on",
		"1:10: version: unsupported version 3",
		"3:10: server.https: ",
		"4:22: server.limits.max_body: must be more than 0",
		"5:39: tls.min_version: ",
		"7:5: routes[0].auth: required",
		`8:11: routes[0].path: template "v1" must start with`,
		"9:25: routes[0].upstream.targets: required",
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), errs)
	}
	for i, w := range want {
		if !strings.Contains(errs[i].String(), w) {
			t.Errorf("error %d = %q, want it to contain %q (sorted by position)", i, errs[i], w)
		}
	}
	if strings.Count(errs.Error(), "\n") != len(want)-1 {
		t.Errorf("Errors.Error is not one line per problem:\n%s", errs.Error())
	}
}

func TestDecodeErrorsSilenceValidation(t *testing.T) {
	// A value that failed to decode is not also reported as missing or zero.
	src := strings.Replace(validBase, `server: {admin: "off"}`, `server: {admin: "off", limits: {max_body: lots}}`, 1)
	src = strings.Replace(src, "auth: keys", "auth: {a: b}", 1)
	_, errs := parseIn(t, "", src)
	if len(errs) != 2 {
		t.Errorf("want exactly the 2 decode errors, got:\n%v", errs)
	}
}

// Problems only the router sees in methods are reported too.
func TestValidateRouterMethods(t *testing.T) {
	src := strings.Replace(validBase, "path: /v1/things/{id}", "path: /v1/things/{id}\n    methods: [\"*\"]", 1)
	expectErrors(t, "", src, `routes[0].methods`)
}

func TestValidateRouteLimitKeys(t *testing.T) {
	head := "version: 1\nserver: {admin: \"off\"}\ntls: {self_signed: true}\nauthenticators: {keys: {type: api_key}}\nroutes:\n"
	up := "upstream: {targets: [\"http://127.0.0.1:9000\"]}"
	route := func(auth, limits string) string {
		return head + "  - {name: r, path: /r, " + up + ", auth: " + auth + ", rate_limits: [" + limits + "]}\n"
	}
	runValidationRows(t, []validationRow{
		{"every key kind", route("keys", `{key: consumer, limit: 1/s}, {key: ip, limit: 1/s}, {key: route, limit: 1/s}, {key: "header:X-Tenant", limit: 1/s}, {key: "claim:tenant", limit: 1/s}, {key: "consumer+ip", limit: 1/s}, {key: "header:x-tenant+ip+claim:https://example.com/org", limit: 1/s}`), nil},
		{"concurrency", route("keys", `{key: consumer, concurrency: 5}, {key: consumer, limit: "10/s"}`), nil},
		{"public route: ip, route and header keys", route("none", `{key: ip, concurrency: 2}, {key: "header:X-Tenant+ip", limit: 1/s}, {key: route, limit: 1/s}`), nil},
		{"unknown kind", route("keys", `{key: user, limit: 1/s}`),
			[]string{`routes[0].rate_limits[0].key: "user" is not one of consumer, ip, route, header:NAME, claim:NAME`}},
		{"empty key", route("keys", `{key: "", limit: 1/s}`), []string{`routes[0].rate_limits[0].key: required; one of consumer, ip, route`}},
		{"key missing", route("keys", `{limit: 1/s}`), []string{`routes[0].rate_limits[0].key: required`}},
		{"empty part", route("keys", `{key: "consumer++ip", limit: 1/s}`), []string{`routes[0].rate_limits[0].key: "consumer++ip" has an empty part`}},
		{"trailing plus", route("keys", `{key: "ip+", limit: 1/s}`), []string{`has an empty part`}},
		{"part twice", route("keys", `{key: "ip+ip", limit: 1/s}`), []string{`routes[0].rate_limits[0].key: "ip" appears twice`}},
		{"header twice in other case", route("keys", `{key: "header:X-A+header:x-a", limit: 1/s}`), []string{`"header:x-a" appears twice`}},
		{"route combined", route("keys", `{key: "route+ip", limit: 1/s}`), []string{`"route" counts everyone together; it cannot be combined`}},
		{"too many parts", route("keys", `{key: "ip+consumer+header:A+header:B+claim:c", limit: 1/s}`), []string{`routes[0].rate_limits[0].key: 5 parts; at most 4`}},
		{"header name empty", route("keys", `{key: "header:", limit: 1/s}`), []string{`"header:": want a header name`}},
		{"header name with space", route("keys", `{key: "header:X Tenant", limit: 1/s}`), []string{`"header:X Tenant": want a header name`}},
		{"header name with colon", route("keys", `{key: "header:a:b", limit: 1/s}`), []string{`want a header name`}},
		{"header name too long", route("keys", `{key: "header:`+strings.Repeat("a", 65)+`", limit: 1/s}`), []string{`want a header name of 1 to 64`}},
		{"claim name with quote", route("keys", `{key: 'claim:a"b', limit: 1/s}`), []string{`want a claim name`}},
		{"claim name with NUL", route("keys", `{key: "claim:a\0b", limit: 1/s}`), []string{`want a claim name`}},
		{"claim name empty", route("keys", `{key: "claim:", limit: 1/s}`), []string{`want a claim name`}},
		{"uppercase kind", route("keys", `{key: IP, limit: 1/s}`), []string{`"IP" is not one of`}},
		{"consumer on a public route", route("none", `{key: "ip+consumer", limit: 1/s}`),
			[]string{`routes[0].rate_limits[0].key: a route with "auth: none" has no consumer to count`}},
		{"claim on a public route", route("none", `{key: "claim:tenant", concurrency: 1}`),
			[]string{`routes[0].rate_limits[0].key: a route with "auth: none" has no token claims to count`}},
		{"limit and concurrency", route("keys", `{key: ip, limit: 1/s, concurrency: 2}`),
			[]string{`routes[0].rate_limits[0].concurrency: set either limit (a rate) or concurrency (requests in flight), not both`}},
		{"neither", route("keys", `{key: ip}`), []string{`routes[0].rate_limits[0].limit: required; a rate such as "10/s burst 20" (or concurrency: N`}},
		{"concurrency negative", route("keys", `{key: ip, concurrency: -1}`), []string{`routes[0].rate_limits[0].concurrency: -1: want 1 to 1000000 requests in flight`}},
		{"concurrency huge", route("keys", `{key: ip, concurrency: 1000001}`), []string{`concurrency: 1000001: want 1 to 1000000`}},
		{"concurrency not a number", route("keys", `{key: ip, concurrency: many}`), []string{`routes[0].rate_limits[0].concurrency`}},
	})
}

func TestValidateBans(t *testing.T) {
	runValidationRows(t, []validationRow{
		{"full", validBase + "bans: {auth_failures: 10/m, client_errors: \"100/m burst 20\", duration: 15m, key: [ip, consumer]}\n", nil},
		{"one counter, defaults", validBase + "bans: {auth_failures: 5/m}\n", nil},
		{"key as scalar", validBase + "bans: {client_errors: 100/h, key: consumer}\n", nil},
		{"no counter", validBase + "bans: {duration: 1h}\n", []string{`11:7: bans: set auth_failures ("10/m") or client_errors ("100/m"), or remove the section`}},
		{"empty section", validBase + "bans: {}\n", []string{`bans: set auth_failures`}},
		{"bad rate", validBase + "bans: {auth_failures: often}\n", []string{`bans.auth_failures`}},
		{"burst on a quota", validBase + "bans: {client_errors: \"100/d burst 5\"}\n", []string{`bans.client_errors: "100/d burst 5": a burst applies to rates`}},
		{"zero duration", validBase + "bans: {auth_failures: 5/m, duration: 0s}\n", []string{`11:38: bans.duration: must be more than 0`}},
		{"long duration", validBase + "bans: {auth_failures: 5/m, duration: 31d}\n", []string{`bans.duration: 31d: at most 30d`}},
		{"unknown key", validBase + "bans: {auth_failures: 5/m, key: [ip, header]}\n", []string{`bans.key[1]: "header" is not one of ip, consumer`}},
		{"key twice", validBase + "bans: {auth_failures: 5/m, key: [ip, ip]}\n", []string{`bans.key[1]: "ip" appears twice`}},
		{"empty key list", validBase + "bans: {auth_failures: 5/m, key: []}\n", []string{`bans.key: required; ip, consumer or [ip, consumer]`}},
		{"unknown field", validBase + "bans: {auth_failures: 5/m, threshold: 3}\n", []string{`bans.threshold`}},
	})
}
