package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/breakwater/breakwater/internal/inventory"
)

// adminTokenEnv is the environment variable the admin token is read from
// when --token is not given.
const adminTokenEnv = "BREAKWATER_ADMIN_TOKEN"

// adminToken returns the admin token: --token if given, else the
// environment's BREAKWATER_ADMIN_TOKEN.
func adminToken(env Env, flagValue string) (string, bool) {
	if t := strings.TrimSpace(flagValue); t != "" {
		return t, true
	}
	t, ok := env.LookupEnv(adminTokenEnv)
	t = strings.TrimSpace(t)
	return t, ok && t != ""
}

func runInventory(ctx context.Context, env Env, args []string) int {
	fs := newFlags(env, "inventory", "inventory --admin URL [--token T] [--format text|json] [--openapi] [--zombie-after D]", `
Prints the traffic-derived API inventory of a running gateway, read from
its admin listener (GET /admin/inventory): for every route and every
operation of the routes' OpenAPI specs, the requests, status classes,
distinct consumers and first and last seen; the shadow endpoints (calls on
a route with a spec that match no operation); the zombies (routes and
operations without traffic for --zombie-after, counted from the last
request or, for those never called, from when the gateway started
counting); and the deprecated operations still called, with who calls
them. With Redis (store.redis) the view is that of every instance.

The admin token: set BREAKWATER_ADMIN_TOKEN (preferred: a --token value is
visible to other users in the process list and stays in shell history),
or pass --token.

Output:
  --format text   tables for people (default)
  --format json   the /admin/inventory document
  --openapi       an OpenAPI 3.1 skeleton (YAML) of the shadow endpoints:
                  paths, methods, the {id} path parameters guessed from the
                  requests, how often and when each was seen, and
                  x-breakwater-shadow: true; document them or remove them

Exit status: 0 printed, 1 the gateway could not be read, 2 usage error.

Example:
  BREAKWATER_ADMIN_TOKEN=... breakwater inventory --admin http://127.0.0.1:9901
  breakwater inventory --admin http://127.0.0.1:9901 --openapi > shadow.yaml`)
	admin := fs.String("admin", "http://127.0.0.1:9901", "base URL of the gateway's admin listener (server.admin)")
	token := fs.String("token", "", "admin token (prefer the environment variable "+adminTokenEnv+")")
	format := fs.String("format", "text", "output format: text or json")
	openapi := fs.Bool("openapi", false, "print an OpenAPI 3.1 skeleton (YAML) of the shadow endpoints instead")
	zombieAfter := fs.String("zombie-after", "", "list routes and operations without traffic for this long as zombies, e.g. 90d (default: the gateway's, 30d)")
	if code, done := parse(fs, env, args); done {
		return code
	}
	if *format != "text" && *format != "json" {
		fmt.Fprintf(env.Stderr, "breakwater inventory: --format %q: want text or json\n", *format)
		return 2
	}
	tok, ok := adminToken(env, *token)
	if !ok {
		fmt.Fprintf(env.Stderr, "breakwater inventory: no admin token: set %s (or pass --token)\n", adminTokenEnv)
		return 2
	}
	if _, err := inventory.Endpoint(*admin); err != nil {
		fmt.Fprintf(env.Stderr, "breakwater inventory: --admin: %v\n", err)
		return 2
	}
	rep, err := inventory.Fetch(ctx, nil, *admin, tok, *zombieAfter)
	if err != nil {
		fmt.Fprintf(env.Stderr, "breakwater inventory: %v\n", err)
		return 1
	}
	switch {
	case *openapi:
		var out []byte
		if out, err = inventory.Skeleton(rep); err == nil {
			_, err = env.Stdout.Write(out)
		}
	case *format == "json":
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	default:
		err = inventory.WriteText(env.Stdout, rep)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "breakwater inventory: writing the inventory: %v\n", err)
		return 1
	}
	return 0
}
