package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/breakwater/breakwater/internal/openapiimport"
)

// maxImportSpec bounds the spec `import openapi` reads.
const maxImportSpec = 16 << 20

const importSynopsis = "import openapi SPEC [--upstream URL] [--auth NAME | --auth SCHEME=NAME]... [--spec-path PATH]"

const importHelp = `
Prints Breakwater routes for an OpenAPI 3.0 or 3.1 spec (YAML or JSON), to
paste under a config's "routes:" and review:

  - one route per path, split by method when operations differ; the path is
    the path of the spec's first server URL followed by the spec's path
    ({id} templates are kept; paths Breakwater cannot match are left out
    with a comment);
  - auth from the security requirements: each security scheme becomes the
    authenticator of its own name (lowercased) unless --auth SCHEME=NAME maps
    it; "auth: none" only for operations with "security: []"; an operation
    without a requirement gets --auth NAME, or the placeholder "change-me";
  - scopes: the OAuth2 / OpenID Connect scopes of the requirements;
  - the spec's x-breakwater extensions of paths and operations (route fields
    such as rate_limits, max_body, upstream, policy) merged in;
  - openapi: {spec: SPEC, validate_requests: true}.

Every guess is marked "placeholder" or "REVIEW" in a comment, and listed on
standard error. Exit 0 with routes printed, 1 when the spec cannot be read
or converted, 2 on a usage error.

Example:
  breakwater import openapi specs/orders.yaml --upstream http://127.0.0.1:9000 \
      --auth keys --auth oauth2=own >> breakwater.yaml`

func runImport(ctx context.Context, env Env, args []string) int {
	if len(args) == 0 || args[0] != "openapi" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fmt.Fprintf(env.Stdout, "Usage: breakwater %s\n%s\n", importSynopsis, importHelp)
			return 0
		}
		fmt.Fprintln(env.Stderr, "breakwater import: want 'import openapi SPEC'; see 'breakwater import --help'")
		return 2
	}
	fs := newFlags(env, "import openapi", importSynopsis, importHelp)
	var o openapiimport.Options
	fs.StringVar(&o.Upstream, "upstream", "", "upstream URL of the routes without an x-breakwater upstream (default: a placeholder)")
	fs.StringVar(&o.SpecPath, "spec-path", "", "the spec's path as the config sees it, for openapi.spec (default: SPEC as given)")
	fs.Func("auth", "NAME: authenticator of operations without a security requirement; SCHEME=NAME: authenticator of a security scheme (repeatable)", func(v string) error {
		scheme, name, mapped := strings.Cut(v, "=")
		if !mapped {
			scheme, name = "", v
		}
		if !validAuthName(name) {
			return fmt.Errorf("%q is not an authenticator name (1 to 64 of a-z, 0-9, _ and -)", name)
		}
		if !mapped {
			o.DefaultAuth = name
			return nil
		}
		if scheme == "" {
			return errors.New("SCHEME=NAME needs a scheme name")
		}
		if o.SchemeAuth == nil {
			o.SchemeAuth = map[string]string{}
		}
		o.SchemeAuth[scheme] = name
		return nil
	})
	spec, code, done := parseWithSpec(fs, env, args[1:])
	if done {
		return code
	}
	if o.SpecPath == "" {
		o.SpecPath = spec
	}
	data, err := readSpec(spec)
	if err != nil {
		fmt.Fprintf(env.Stderr, "breakwater import openapi: %v\n", err)
		return 1
	}
	res, err := openapiimport.Convert(data, o)
	if err != nil {
		fmt.Fprintf(env.Stderr, "breakwater import openapi: %s: %v\n", spec, err)
		return 1
	}
	if _, err := env.Stdout.Write(res.YAML); err != nil {
		fmt.Fprintf(env.Stderr, "breakwater import openapi: writing the routes: %v\n", err)
		return 1
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(env.Stderr, "breakwater import openapi: %s: %s\n", spec, w)
	}
	fmt.Fprintf(env.Stderr, "breakwater import openapi: %d routes from %s; review the lines marked placeholder or REVIEW\n", res.Routes, spec)
	return 0
}

// parseWithSpec parses flags placed before or after the one SPEC argument.
func parseWithSpec(fs *flag.FlagSet, env Env, args []string) (spec string, code int, done bool) {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			fs.SetOutput(env.Stdout)
			fs.Usage()
			return "", 0, true
		}
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return "", 2, true
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	switch len(pos) {
	case 0:
		fmt.Fprintln(env.Stderr, "breakwater import openapi: which spec? see 'breakwater import openapi --help'")
		return "", 2, true
	case 1:
		return pos[0], 0, false
	default:
		fmt.Fprintf(env.Stderr, "breakwater import openapi: unexpected argument %q: one spec at a time\n", pos[1])
		return "", 2, true
	}
}

func readSpec(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the spec: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxImportSpec+1))
	if err != nil {
		return nil, fmt.Errorf("reading the spec %s: %w", path, err)
	}
	if len(data) > maxImportSpec {
		return nil, fmt.Errorf("the spec %s is larger than %d MiB", path, maxImportSpec>>20)
	}
	return data, nil
}

// validAuthName is the config's rule for authenticator names.
func validAuthName(s string) bool {
	if s == "" || len(s) > 64 || s == "none" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
