package config

import ()

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
	return []feature{
		{"ACME certificates are", "use cert_file with key_file", when(func(c *Config) bool { return c.TLS.ACME != nil }, "tls.acme")},
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
