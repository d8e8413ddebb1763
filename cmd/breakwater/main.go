// Command breakwater is a security-first API gateway. See `breakwater --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/breakwater/breakwater/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, LookupEnv: os.LookupEnv}, os.Args[1:])
	stop()
	os.Exit(code)
}
