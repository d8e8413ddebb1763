package cli

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/demoapi"
	"github.com/breakwater/breakwater/internal/edge"
	"github.com/breakwater/breakwater/internal/gateway"
	"github.com/breakwater/breakwater/internal/secret"
)

//go:embed demo.yaml
var demoConfig []byte

func runDemo(ctx context.Context, env Env, args []string) int {
	fs := newFlags(env, "demo", "demo [--https ADDR] [--admin ADDR]", `
Runs the gateway on an embedded default config — no file, no network, no
Redis: a self-signed certificate (kept in a temporary directory), a built-in
demo orders API behind the gateway, freshly generated API keys, an OAuth2
client (token endpoint and access tokens) and admin token, and the admin
listener. It prints curl commands that work as printed
(with --cacert, never -k). Ctrl-C stops it and removes the temporary files.

The embedded config is internal/cli/demo.yaml in the source tree.`)
	httpsAddr := fs.String("https", "127.0.0.1:8443", "address of the HTTPS listener")
	adminAddr := fs.String("admin", "127.0.0.1:9901", "address of the admin listener")
	var lf logFlags
	lf.register(fs)
	if code, done := parse(fs, env, args); done {
		return code
	}
	logger, access, err := lf.loggers(env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "breakwater demo: %v\n", err)
		return 2
	}

	dir, err := os.MkdirTemp("", "breakwater-demo-")
	if err != nil {
		fmt.Fprintf(env.Stderr, "breakwater demo: creating a temporary directory: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)

	// The demo API, on a loopback port of its own.
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(env.Stderr, "breakwater demo: starting the demo API: %v\n", err)
		return 1
	}
	upstream := &http.Server{Handler: demoapi.New().Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = upstream.Serve(upLn) }()
	defer upstream.Close()

	var creds [4]string // reader key, writer key, admin token, OAuth2 client secret
	for i, p := range []string{"bw_", "bw_", "bwadm_", "bwcs_"} {
		if creds[i], err = secret.NewKey(p); err != nil {
			fmt.Fprintf(env.Stderr, "breakwater demo: %v\n", err)
			return 1
		}
	}
	base := "https://" + *httpsAddr
	if h, p, err := net.SplitHostPort(*httpsAddr); err == nil && (h == "127.0.0.1" || h == "0.0.0.0" || h == "") {
		base = "https://localhost:" + p
	}
	vars := map[string]string{
		"BW_DEMO_ISSUER":      base,
		"BW_DEMO_CLIENT_HASH": secret.SumString(creds[3]).String(),
		"BW_DEMO_HTTPS":       *httpsAddr,
		"BW_DEMO_ADMIN":       *adminAddr,
		"BW_DEMO_DATA":        dir,
		"BW_DEMO_UPSTREAM":    "http://" + upLn.Addr().String(),
		"BW_DEMO_KEY_HASH":    secret.SumString(creds[0]).String(),
		"BW_DEMO_WRITER_HASH": secret.SumString(creds[1]).String(),
		"BW_DEMO_ADMIN_HASH":  secret.SumString(creds[2]).String(),
	}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	cfg, err := config.Parse(demoConfig, "", lookup)
	if err != nil {
		printConfigErrors(env.Stderr, err)
		return 1
	}
	rt, err := gateway.Start(ctx, cfg, gateway.Options{Build: buildInfo(), Logger: logger, Access: access})
	if err != nil {
		fmt.Fprintf(env.Stderr, "breakwater demo: %v\n", err)
		var opErr *net.OpError
		if errors.As(err, &opErr) {
			fmt.Fprintln(env.Stderr, "  another program may use that port: choose others with --https 127.0.0.1:PORT --admin 127.0.0.1:PORT")
		}
		return 1
	}
	a := rt.Addrs()
	ca := edge.CAFile(dir)
	fmt.Fprintf(env.Stdout, `
Breakwater demo is running.

  gateway   %[1]s   (TLS certificate signed by the demo CA below)
  admin     http://%[2]s
  dashboard http://%[2]s/dashboard/   (sign in with the admin token: %[6]s)
  demo CA   %[3]s

Try it (copy and paste):

  # a public route
  curl --cacert %[3]s %[1]s/health

  # no key, or a wrong key: the same 401, whatever the reason
  curl --cacert %[3]s -i %[1]s/v1/orders
  curl --cacert %[3]s -i -H 'X-API-Key: bw_wrong' %[1]s/v1/orders

  # the demo-client key (scope orders:read)
  curl --cacert %[3]s -H 'X-API-Key: %[4]s' %[1]s/v1/orders
  curl --cacert %[3]s -H 'X-API-Key: %[4]s' %[1]s/v1/orders/ord-1

  # OAuth2: demo-client trades its secret for a 15-minute access token, then calls with it
  curl --cacert %[3]s -u 'demo-client:%[7]s' -d grant_type=client_credentials %[1]s/oauth2/token
  curl --cacert %[3]s -H "Authorization: Bearer $(curl -s --cacert %[3]s -u 'demo-client:%[7]s' -d grant_type=client_credentials %[1]s/oauth2/token | sed 's/.*"access_token":"\([^"]*\)".*/\1/')" %[1]s/v1/orders/ord-1

  # the keys that verify its tokens (and the X-Gateway-Identity the upstream receives)
  curl --cacert %[3]s %[1]s/.well-known/jwks.json

  # writing needs orders:write: 403 for demo-client, 201 for demo-writer
  curl --cacert %[3]s -i -H 'X-API-Key: %[4]s' -H 'Content-Type: application/json' -d '{"item":"buoy","quantity":2}' %[1]s/v1/orders
  curl --cacert %[3]s -i -H 'X-API-Key: %[5]s' -H 'Content-Type: application/json' -d '{"item":"buoy","quantity":2}' %[1]s/v1/orders

  # the backend leaks a stack trace on this one; the gateway masks it
  curl --cacert %[3]s -i -H 'X-API-Key: %[4]s' %[1]s/v1/orders/crash

  # rate limits: RateLimit headers on every answer of a limited route (20 per minute here; 429 + Retry-After beyond)
  curl --cacert %[3]s -si -H 'X-API-Key: %[4]s' %[1]s/v1/orders/ord-2 | grep -i '^ratelimit'

  # an ambiguous path is refused before routing
  curl --cacert %[3]s -i --path-as-is '%[1]s/v1/orders/..%%2f..%%2fadmin'

  # admin listener: health is open, the rest needs the admin token
  curl http://%[2]s/readyz
  curl -H 'Authorization: Bearer %[6]s' http://%[2]s/admin/config
  curl -sH 'Authorization: Bearer %[6]s' http://%[2]s/metrics | grep '^breakwater_requests_total'
  curl -H 'Authorization: Bearer %[6]s' 'http://%[2]s/admin/events?limit=5'

Press Ctrl-C to stop.

`, base, a.Admin, ca, creds[0], creds[1], creds[2], creds[3])
	return runUntilDone(ctx, rt, logger, "", 5*time.Second)
}
