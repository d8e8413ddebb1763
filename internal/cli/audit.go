package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/breakwater/breakwater/internal/audit"
	"github.com/breakwater/breakwater/internal/inventory"
)

// listFlag is a repeatable string flag; values may also be comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// progressThreshold is the number of specs above which a progress
// indicator is shown on a terminal.
const progressThreshold = 20

func runAuditCmd(ctx context.Context, env Env, args []string) int {
	fs := newFlags(env, "audit", "audit -c FILE [--spec SPEC]... [--admin URL [--token T]] [--format text|json|sarif] [--fail-on low|medium|high|critical] [--ignore RULE]...", `
Static security audit of a config and of OpenAPI specs: those the config
names (routes[].openapi.spec, docs.specs) and those given with --spec. It
checks the config (auth, TLS, HSTS, admin listener, JWT and introspection
settings, rate and body limits, CORS, trusted proxies, secrets in clear,
...), each spec (the concerns of the Spectral OWASP ruleset and more:
open request objects, implicit and password flows, sensitive response
fields, ...) and the two together (operations without a route, routes
that expose undeclared paths, scopes no route enforces). docs/audit.md
lists every rule with an example and the fix.

With --admin URL, the audit also reads the traffic-derived inventory of
the running gateway (GET /admin/inventory on its admin listener) and adds
BW-INV findings: routes and operations without traffic for the gateway's
zombie period (remove them), shadow endpoints the upstream served that
the spec does not declare, deprecated operations still called and by
whom. The admin token: set BREAKWATER_ADMIN_TOKEN (preferred: a --token
value is visible in the process list and shell history), or --token.

Each finding has a rule id, a severity (info, low, medium, high,
critical), its OWASP API Security Top 10 2023 category, FILE:LINE:COL, a
message and a fix. A config that fails validation is still audited; each
validation problem is a BW-CFG-000 finding. ${NAME} variables that are not
set are not a problem here: the audit needs no secrets.

Accepting a risk:
  --ignore RULE                  drop every finding of RULE
  x-breakwater-ignore: [RULE]    in a spec, on the root, a path, an operation
                                 or any object on the way to the finding;
                                 in a config, as a top-level key

Output (--format):
  text    grouped by severity, with a score from 0 to 100 (colour on a terminal;
          NO_COLOR turns it off)
  json    {"score", "files", "ignored", "summary", "findings": [...]}
  sarif   SARIF 2.1.0 for GitHub code scanning (github/codeql-action/upload-sarif)

Exit status: 0 no finding at or above --fail-on, 1 findings at or above it,
2 usage error, input that cannot be read or parsed, or an inventory that
cannot be read (--admin).

Example:
  breakwater audit -c breakwater.yaml --spec specs/extra.yaml --format sarif > audit.sarif`)
	path := configFlag(fs)
	var specs, ignore listFlag
	fs.Var(&specs, "spec", "OpenAPI spec (YAML or JSON) to audit besides those the config names; repeatable")
	fs.Var(&ignore, "ignore", "rule id whose findings are accepted risks, e.g. BW-SPEC-007; repeatable or comma-separated")
	format := fs.String("format", "text", "output format: text, json or sarif")
	failOn := fs.String("fail-on", "high", "exit 1 when a finding has this severity or worse: low, medium, high or critical")
	listRules := fs.Bool("rules", false, "list the rules (id, severity, category, title) and exit")
	noColour := fs.Bool("no-color", false, "no colours in text output, even on a terminal")
	admin := fs.String("admin", "", "base URL of a running gateway's admin listener, e.g. http://127.0.0.1:9901: add inventory findings (BW-INV)")
	token := fs.String("token", "", "admin token for --admin (prefer the environment variable "+adminTokenEnv+")")
	if code, done := parse(fs, env, args); done {
		return code
	}
	if *listRules {
		for _, r := range audit.Rules() {
			fmt.Fprintf(env.Stdout, "%-12s %-8s %-10s %s\n", r.ID, r.Severity, r.Category, r.Title)
		}
		return 0
	}
	threshold, err := audit.ParseSeverity(*failOn)
	if err != nil || threshold == audit.Info {
		fmt.Fprintf(env.Stderr, "breakwater audit: --fail-on %q: want low, medium, high or critical\n", *failOn)
		return 2
	}
	switch *format {
	case "text", "json", "sarif":
	default:
		fmt.Fprintf(env.Stderr, "breakwater audit: --format %q: want text, json or sarif\n", *format)
		return 2
	}
	if *path == "" && len(specs) == 0 && *admin == "" {
		fmt.Fprintln(env.Stderr, "breakwater audit: -c FILE or --spec SPEC is required (or --admin URL for inventory findings); see 'breakwater audit --help'")
		return 2
	}
	opts := audit.Options{Config: *path, Specs: specs, Ignore: ignore, LookupEnv: env.LookupEnv}
	if *admin != "" {
		tok, ok := adminToken(env, *token)
		if !ok {
			fmt.Fprintf(env.Stderr, "breakwater audit: --admin needs the admin token: set %s (or pass --token)\n", adminTokenEnv)
			return 2
		}
		endpoint, err := inventory.Endpoint(*admin)
		if err != nil {
			fmt.Fprintf(env.Stderr, "breakwater audit: --admin: %v\n", err)
			return 2
		}
		if opts.Inventory, err = inventory.Fetch(ctx, nil, *admin, tok, ""); err != nil {
			fmt.Fprintf(env.Stderr, "breakwater audit: %v\n", err)
			return 2
		}
		opts.InventorySource = endpoint
	}
	if isTerminal(env.Stderr) {
		shown := false
		opts.Progress = func(done, total int) {
			if total <= progressThreshold {
				return
			}
			shown = true
			fmt.Fprintf(env.Stderr, "\rauditing specs: %d/%d", done, total)
			if done == total && shown {
				fmt.Fprintln(env.Stderr)
			}
		}
	}
	rep, err := audit.Run(ctx, opts)
	if err != nil {
		fmt.Fprintf(env.Stderr, "breakwater audit: %v\n", strings.TrimPrefix(err.Error(), audit.ErrInput.Error()+": "))
		return 2
	}
	switch *format {
	case "json":
		err = audit.WriteJSON(env.Stdout, rep)
	case "sarif":
		err = audit.WriteSARIF(env.Stdout, rep, buildInfo().Version)
	default:
		_, noColourEnv := env.LookupEnv("NO_COLOR")
		err = audit.WriteText(env.Stdout, rep, !*noColour && !noColourEnv && isTerminal(env.Stdout))
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "breakwater audit: writing the report: %v\n", err)
		return 2
	}
	if rep.Failed(threshold) {
		return 1
	}
	return 0
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
