// Command spectral compares `breakwater audit` with Spectral and its OWASP
// API Security Top 10 2023 ruleset on the same OpenAPI specs, and prints
// per OWASP category what each tool found and what only one of them found.
// It is not part of CI: it needs Node.js and npm, and installs Spectral
// (pinned versions) under bench/spectral/.npm the first time it runs.
//
//	go run ./bench/spectral                     # the specs in bench/spectral/specs
//	go run ./bench/spectral -markdown > out.md  # the tables as docs/audit.md has them
//	go run ./bench/spectral path/to/spec.yaml … # other specs
//
// The results and conclusions are in docs/audit.md ("Comparison with
// Spectral's OWASP ruleset").
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The versions installed when bench/spectral/.npm has no Spectral yet.
const (
	spectralCLI   = "@stoplight/spectral-cli@6.16.3"
	owaspRuleset  = "@stoplight/spectral-owasp-ruleset@2.0.1"
	installTime   = 5 * time.Minute
	lintTime      = 3 * time.Minute
	buildTime     = 5 * time.Minute
	maxToolOutput = 64 << 20 // bytes read from a tool's standard output
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "spectral comparison:", err)
		os.Exit(1)
	}
}

// options are the command line.
type options struct {
	root       string // the repository
	breakwater string // a built binary; "" builds one
	markdown   bool
	install    bool
	examples   int
	specs      []string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("spectral", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.breakwater, "breakwater", "", "breakwater binary to use (default: go build ./cmd/breakwater into a temporary directory)")
	fs.BoolVar(&o.markdown, "markdown", false, "write the report as Markdown")
	fs.BoolVar(&o.install, "install", true, "npm install Spectral under bench/spectral/.npm when it is missing")
	fs.IntVar(&o.examples, "examples", 2, "examples shown per rule found by one tool only")
	if err := fs.Parse(args); err != nil {
		return err
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	o.root = root
	dir := filepath.Join(root, "bench", "spectral")
	o.specs = fs.Args()
	if len(o.specs) == 0 {
		o.specs, err = filepath.Glob(filepath.Join(dir, "specs", "*"))
		if err != nil {
			return fmt.Errorf("listing specs: %w", err)
		}
	}
	if len(o.specs) == 0 {
		return errors.New("no specs to compare")
	}
	for i, s := range o.specs {
		if o.specs[i], err = filepath.Abs(s); err != nil {
			return fmt.Errorf("spec %s: %w", s, err)
		}
	}
	slices.Sort(o.specs)

	spectral := filepath.Join(dir, ".npm", "node_modules", ".bin", "spectral")
	if _, err := os.Stat(spectral); err != nil {
		if !o.install {
			return fmt.Errorf("%s is missing (run without -install=false to install it): %w", spectral, err)
		}
		fmt.Fprintf(stderr, "installing %s and %s under %s\n", spectralCLI, owaspRuleset, filepath.Join(dir, ".npm"))
		if _, err := command(ctx, installTime, root, "npm", "install", "--prefix", filepath.Join(dir, ".npm"),
			"--no-audit", "--no-fund", "--silent", spectralCLI, owaspRuleset); err != nil {
			return fmt.Errorf("installing Spectral: %w", err)
		}
	}
	if o.breakwater == "" {
		tmp, err := os.MkdirTemp("", "bw-spectral-")
		if err != nil {
			return fmt.Errorf("temporary directory: %w", err)
		}
		defer os.RemoveAll(tmp)
		o.breakwater = filepath.Join(tmp, "breakwater")
		if _, err := command(ctx, buildTime, root, "go", "build", "-o", o.breakwater, "./cmd/breakwater"); err != nil {
			return fmt.Errorf("building breakwater: %w", err)
		}
	}

	c := comparison{Examples: o.examples}
	rel := func(file string) string {
		if r, err := filepath.Rel(filepath.Join(dir, "specs"), file); err == nil && !strings.HasPrefix(r, "..") {
			return filepath.ToSlash(r)
		}
		return file
	}
	indexes := map[string]positionIndex{}
	refIndexes := map[string]refIndex{}
	for _, s := range o.specs {
		c.Specs = append(c.Specs, rel(s))
		data, err := os.ReadFile(s)
		if err != nil {
			return fmt.Errorf("reading %s: %w", s, err)
		}
		idx, err := indexPositions(data)
		if err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		indexes[s] = idx
		if refIndexes[rel(s)], err = parseRefIndex(data); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}

	version, err := command(ctx, lintTime, dir, spectral, "--version")
	if err != nil {
		return fmt.Errorf("spectral --version: %w", err)
	}
	c.SpectralVersion = strings.TrimSpace(string(version))
	c.RulesetVersion, err = packageVersion(filepath.Join(dir, ".npm", "node_modules", "@stoplight", "spectral-owasp-ruleset", "package.json"))
	if err != nil {
		return err
	}

	// Spectral exits 1 when it finds an error; only its JSON tells whether it ran.
	out, err := command(ctx, lintTime, dir, spectral, append([]string{"lint", "--format", "json", "--ruleset", filepath.Join(dir, "ruleset.yaml")}, o.specs...)...)
	if err != nil && !exitCode(err, 1) {
		return fmt.Errorf("spectral lint: %w", err)
	}
	if c.Spectral, err = parseSpectral(out, rel); err != nil {
		return err
	}

	// breakwater audit exits 1 when a finding is at or above --fail-on.
	bwArgs := []string{"audit", "--format", "json"}
	for _, s := range o.specs {
		bwArgs = append(bwArgs, "--spec", s)
	}
	out, err = command(ctx, lintTime, root, o.breakwater, bwArgs...)
	if err != nil && !exitCode(err, 1) {
		return fmt.Errorf("breakwater audit: %w", err)
	}
	if c.Breakwater, err = parseBreakwater(out, rel, func(f string) positionIndex { return indexes[f] }); err != nil {
		return err
	}

	unplaced := 0
	for _, f := range c.Breakwater {
		if f.Path == nil {
			unplaced++
		}
	}
	if unplaced > 0 {
		fmt.Fprintf(stderr, "warning: %d breakwater findings are at no key of their spec; they are matched by line only\n", unplaced)
	}
	match(c.Spectral, c.Breakwater, func(file string, path []string) [][]string {
		return refIndexes[file].refsUnder(path)
	})
	sortFindings(c.Spectral)
	sortFindings(c.Breakwater)
	return render(stdout, c, o.markdown)
}

// repoRoot finds the directory of go.mod from the working directory up.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "bench", "spectral", "ruleset.yaml")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run this from the breakwater repository (no go.mod with bench/spectral/ruleset.yaml above the working directory)")
		}
		dir = parent
	}
}

// packageVersion reads the version of an npm package.json.
func packageVersion(file string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("ruleset version: %w", err)
	}
	var p struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return "", fmt.Errorf("ruleset version in %s: %w", file, err)
	}
	return p.Version, nil
}

// limitedBuffer keeps at most max bytes and remembers that it dropped some.
type limitedBuffer struct {
	bytes.Buffer
	max       int
	truncated bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); len(p) > room {
		b.truncated = true
		b.Buffer.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

// command runs a program with a timeout and returns its standard output
// (at most maxToolOutput bytes); the error carries the end of its standard
// error.
func command(ctx context.Context, timeout time.Duration, dir, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	stdout := &limitedBuffer{max: maxToolOutput}
	stderr := &limitedBuffer{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	if stdout.truncated {
		return nil, fmt.Errorf("%s wrote more than %d MiB", name, maxToolOutput>>20)
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = "…" + msg[len(msg)-2000:]
		}
		if msg != "" {
			return stdout.Bytes(), fmt.Errorf("%w: %s", err, msg)
		}
		return stdout.Bytes(), fmt.Errorf("%s: %w", name, err)
	}
	return stdout.Bytes(), nil
}

// exitCode reports whether err is the program exiting with code.
func exitCode(err error, code int) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && ee.ExitCode() == code
}
