// Command breakwater is a security-first API gateway. See `breakwater --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/breakwater/breakwater/internal/cli"
)

// defaultGCPercent trades memory for CPU: a gateway's live heap is small
// (tens of MiB), and collecting at 5× it instead of 2× measured about 4%
// more requests per second on one core (docs/performance.md). The GOGC and
// GOMEMLIMIT environment variables still decide when set.
const defaultGCPercent = 400

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, LookupEnv: os.LookupEnv}, os.Args[1:])
	stop()
	os.Exit(code)
}
