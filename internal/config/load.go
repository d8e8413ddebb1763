package config

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Load reads the config file at path and returns it decoded, with defaults
// applied and validated. lookupEnv resolves ${NAME}; nil means
// os.LookupEnv. On any problem it returns nil and Errors.
func Load(path string, lookupEnv func(string) (string, bool)) (*Config, error) {
	data, err := readConfig(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: err.Error()}}
	}
	return Parse(data, path, lookupEnv)
}

// readConfig reads at most maxDocument+1 bytes, so that Parse can refuse a
// larger file without it ever being held whole in memory.
func readConfig(path string) ([]byte, error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, fmt.Errorf("reading config %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxDocument+1))
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return data, nil
}

// Parse decodes a config read from file ("" for an embedded config, whose
// relative paths are then resolved against the working directory), applies
// Defaults and Validate. lookupEnv resolves ${NAME}; nil means os.LookupEnv.
// On any problem it returns nil and Errors listing all of them.
func Parse(data []byte, file string, lookupEnv func(string) (string, bool)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	dir := filepath.Dir(file)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	cfg := &Config{File: file, Dir: dir}
	errs := &collector{file: displayName(file)}
	var used envValues
	lookup := func(name string) (string, bool) {
		v, ok := lookupEnv(name)
		if ok {
			used.add(name, v)
		}
		return v, ok
	}
	failed, fatal := decodeDocument(cfg, data, lookup, errs)
	if fatal {
		return nil, used.scrub(errs.result())
	}
	Defaults(cfg)
	for _, e := range Validate(cfg) {
		if !underFailed(e.Path, failed) {
			errs.add(Position{Line: e.Line, Col: e.Col}, e.Path, e.Msg)
		}
	}
	if out := errs.result(); len(out) > 0 {
		return nil, used.scrub(out)
	}
	return cfg, nil
}

// envValues remembers the values ${NAME} expanded to, so that no error
// message shows them: a message quoting a value shows ${NAME} instead.
// Error messages reach logs and the admin API; environment variables are
// where secrets come from.
type envValues struct{ names, values []string }

// minScrubbed is the shortest value hidden: shorter ones (a port, "true")
// are not secrets and would garble unrelated text.
const minScrubbed = 4

func (e *envValues) add(name, value string) {
	if len(value) >= minScrubbed {
		e.names, e.values = append(e.names, name), append(e.values, value)
	}
}

func (e *envValues) scrub(errs Errors) Errors {
	for i := range errs {
		for j, v := range e.values {
			errs[i].Msg = strings.ReplaceAll(errs[i].Msg, v, "${"+e.names[j]+"}")
		}
	}
	return errs
}

// underFailed reports whether path is, or lies under, a path whose value
// could not be decoded: validating its zero value would only add noise.
func underFailed(path string, failed map[string]bool) bool {
	for p := path; ; p = parentPath(p) {
		if failed[p] {
			return true
		}
		if p == "" {
			return false
		}
	}
}

func displayName(file string) string {
	if file == "" {
		return embeddedFile
	}
	return file
}

// Pos returns where the value at path stands in the file, or, when it is
// not written there, where its nearest written ancestor does.
func (c *Config) Pos(path string) Position {
	for p := path; ; p = parentPath(p) {
		if pos, ok := c.Positions[p]; ok {
			return pos
		}
		if p == "" {
			return Position{}
		}
	}
}

// parentPath strips the last key or index from a field path:
// "routes[0].auth" → "routes[0]" → "routes" → "".
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// Resolve returns p, a path written in the config, relative to the config's
// directory. Absolute and empty paths are returned as they are.
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || c.Dir == "" {
		return p
	}
	return filepath.Join(c.Dir, p)
}
