// Package cli implements the breakwater command line: one file per
// subcommand, each with complete --help.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/breakwater/breakwater/internal/telemetry"
)

// Build information, set with -ldflags "-X ...cli.version=v1.2.3 -X ...cli.commit=abc";
// empty values are read from the binary's build information.
var (
	version = ""
	commit  = ""
)

func buildInfo() telemetry.BuildInfo {
	return telemetry.BuildInfo{Version: version, Commit: commit}.Complete()
}

// Env is what a command may touch of the outside world.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	LookupEnv      func(string) (string, bool)
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env Env, args []string) int
}

func commands() []command {
	return []command{
		{"serve", "run the gateway from a config file", runServe},
		{"demo", "run the gateway on an embedded default: demo API, key, curl commands", runDemo},
		{"validate", "check a config file without serving", runValidate},
		{"audit", "static security audit of a config and OpenAPI specs", runAuditCmd},
		{"import", "print routes for an OpenAPI spec (import openapi SPEC)", runImport},
		{"keys", "generate API keys (keys new)", runKeys},
		{"secret", "hash a secret for the config (secret hash)", runSecret},
		{"inventory", "print the traffic-derived API inventory of a running gateway", runInventory},
		{"version", "print version, commit and Go version", runVersion},
	}
}

// Run runs the command line args (without the program name) and returns the
// process exit code: 0 success, 1 failure (invalid config, findings), 2 usage.
func Run(ctx context.Context, env Env, args []string) int {
	if env.LookupEnv == nil {
		env.LookupEnv = os.LookupEnv
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 {
			return Run(ctx, env, []string{args[1], "--help"})
		}
		usage(env.Stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" {
		args[0] = "version"
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, env, args[1:])
		}
	}
	fmt.Fprintf(env.Stderr, "breakwater: unknown command %q; run 'breakwater --help' for the list\n", args[0])
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Breakwater — a security-first API gateway.

Usage:
  breakwater <command> [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run 'breakwater <command> --help' for the flags of a command.
Documentation: docs/ in the source tree (start with docs/getting-started.md).
`)
}

// newFlags returns a FlagSet whose --help prints text and the flags.
func newFlags(env Env, name, synopsis, text string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: breakwater %s\n\n%s\n", synopsis, strings.TrimSpace(text))
		var hasFlags bool
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprint(out, "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parse parses flags; it returns (exit code, done) where done means the
// command must return that code now (help shown, or a usage error).
func parse(fs *flag.FlagSet, env Env, args []string) (int, bool) {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			fs.SetOutput(env.Stdout)
			fs.Usage()
			return 0, true
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, true
		}
		return 2, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "breakwater %s: unexpected argument %q; see 'breakwater %s --help'\n", fs.Name(), fs.Arg(0), fs.Name())
		return 2, true
	}
	return 0, false
}

func runVersion(ctx context.Context, env Env, args []string) int {
	fs := newFlags(env, "version", "version", "Prints the version, the commit and the Go version the binary was built with.")
	if code, done := parse(fs, env, args); done {
		return code
	}
	b := buildInfo()
	fmt.Fprintf(env.Stdout, "breakwater %s\ncommit %s\n%s\n", b.Version, b.Commit, b.GoVersion)
	return 0
}
