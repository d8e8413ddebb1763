package config

import (
	"fmt"
	"maps"
	"slices"
)

// feature is configuration that this version parses and checks but does not
// serve yet. uses returns the paths of the config that use it.
type feature struct {
	subject string // "CEL policies are"
	fix     string // what the user should do instead
	uses    func(c *Config) []string
}

// notYetAvailable is the one list of such configuration. When a feature
// lands, delete its row (and its tests in unavailable_test.go).
func notYetAvailable() []feature {
	const remove = "remove the field"
	return []feature{
		{"jwt authenticators are", "use type api_key", authenticatorsOfType("jwt")},
		{"introspection authenticators are", "use type api_key", authenticatorsOfType("introspection")},
		{"mtls authenticators are", "use type api_key", authenticatorsOfType("mtls")},
		{"http_signature authenticators are", "use type api_key", authenticatorsOfType("http_signature")},
		{"the token endpoint is", "remove the section", when(func(c *Config) bool { return c.TokenEndpoint != nil }, "token_endpoint")},
		{"jwt credentials are", "use api_key credentials", credentialsOfKind("jwt", func(cr Credential) bool { return cr.JWT != nil })},
		{"oauth_client credentials are", "use api_key credentials", credentialsOfKind("oauth_client", func(cr Credential) bool { return cr.OAuthClient != nil })},
		{"mtls credentials are", "use api_key credentials", credentialsOfKind("mtls", func(cr Credential) bool { return cr.MTLS != nil })},
		{"http_signature credentials are", "use api_key credentials", credentialsOfKind("http_signature", func(cr Credential) bool { return cr.HTTPSignature != nil })},
		{"CEL policies are", remove, routesWith("policy", func(r Route) bool { return r.Policy != "" })},
		{"OpenAPI validation is", remove, routesWith("openapi", func(r Route) bool { return r.OpenAPI != nil })},
		{"the documentation portal is", "remove the section", when(func(c *Config) bool { return c.Docs != nil }, "docs")},
		{"CORS is", "remove the section", when(func(c *Config) bool { return c.CORS != nil }, "cors")},
		{"the Redis store is", "remove the field to use the embedded store", when(func(c *Config) bool { return c.Store.Redis != "" }, "store.redis")},
		{"ACME certificates are", "use cert_file with key_file", when(func(c *Config) bool { return c.TLS.ACME != nil }, "tls.acme")},
		{"client certificates are", remove, when(func(c *Config) bool { return c.TLS.ClientCAFile != "" }, "tls.client_ca_file")},
	}
}

// unavailable refuses every use of a feature of notYetAvailable.
func (v *validator) unavailable() {
	for _, f := range notYetAvailable() {
		for _, p := range f.uses(v.c) {
			v.errf(p, "%s not available in this version of Breakwater yet; %s", f.subject, f.fix)
		}
	}
}

func when(used func(c *Config) bool, path string) func(c *Config) []string {
	return func(c *Config) []string {
		if used(c) {
			return []string{path}
		}
		return nil
	}
}

func authenticatorsOfType(t string) func(c *Config) []string {
	return func(c *Config) []string {
		var out []string
		for _, name := range slices.Sorted(maps.Keys(c.Authenticators)) {
			if c.Authenticators[name].Type == t {
				out = append(out, "authenticators."+name+".type")
			}
		}
		return out
	}
}

func credentialsOfKind(kind string, is func(Credential) bool) func(c *Config) []string {
	return func(c *Config) []string {
		var out []string
		for i, co := range c.Consumers {
			for j, cr := range co.Credentials {
				if is(cr) {
					out = append(out, fmt.Sprintf("consumers[%d].credentials[%d].%s", i, j, kind))
				}
			}
		}
		return out
	}
}

func routesWith(field string, uses func(Route) bool) func(c *Config) []string {
	return func(c *Config) []string {
		var out []string
		for i, r := range c.Routes {
			if uses(r) {
				out = append(out, fmt.Sprintf("routes[%d].%s", i, field))
			}
		}
		return out
	}
}
