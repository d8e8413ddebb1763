package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzParse feeds arbitrary documents to Parse: it must never panic, must
// finish in bounded time, and must return either a config that validates
// again or Errors that each name the file and a position.
func FuzzParse(f *testing.F) {
	f.Add([]byte(validBase))
	dir := f.TempDir()
	file := filepath.Join(dir, "fuzz.yaml")
	lookup := func(name string) (string, bool) {
		if name == "SET" {
			return "value", true
		}
		return "", false
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		cfg, err := Parse(data, file, lookup)
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Parse took %v for %d bytes", d, len(data))
		}
		if (cfg == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v", cfg != nil, err)
		}
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("Parse returned %T %v, want non-empty Errors", err, err)
			}
			if len(errs) > maxErrors+1 {
				t.Errorf("%d errors, more than the bound", len(errs))
			}
			for _, e := range errs {
				if e.File != file || e.Line < 1 || e.Col < 1 || e.Msg == "" {
					t.Errorf("malformed error %#v", e)
				}
				if !strings.HasPrefix(e.String(), file+":") {
					t.Errorf("error %q does not start with the file name", e)
				}
			}
			return
		}
		Defaults(cfg)
		if errs := Validate(cfg); len(errs) > 0 {
			t.Errorf("a parsed config no longer validates after Defaults again: %v", errs)
		}
	})
}
