package cli

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/gateway"
	"github.com/breakwater/breakwater/internal/validate"
)

type logFlags struct {
	level     string
	accessLog string
}

func (l *logFlags) register(fs interface {
	StringVar(p *string, name, value, usage string)
}) {
	fs.StringVar(&l.level, "log-level", "info", "operational log level: debug, info, warn or error")
	fs.StringVar(&l.accessLog, "access-log", "stdout", "where the JSON access log goes: stdout, stderr or off")
}

// loggers returns the operational logger (JSON on stderr) and the access
// logger (JSON, or nil when off).
func (l *logFlags) loggers(env Env) (*slog.Logger, *slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.level)); err != nil {
		return nil, nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", l.level)
	}
	logger := slog.New(slog.NewJSONHandler(env.Stderr, &slog.HandlerOptions{Level: level}))
	var w io.Writer
	switch l.accessLog {
	case "stdout":
		w = env.Stdout
	case "stderr":
		w = env.Stderr
	case "off":
		return logger, nil, nil
	default:
		return nil, nil, fmt.Errorf("--access-log %q: want stdout, stderr or off", l.accessLog)
	}
	return logger, slog.New(slog.NewJSONHandler(w, nil)).With("log", "access"), nil
}

func configFlag(fs interface {
	StringVar(p *string, name, value, usage string)
}) *string {
	var path string
	fs.StringVar(&path, "c", "", "config file (YAML)")
	fs.StringVar(&path, "config", "", "config file (YAML); same as -c")
	return &path
}

func runServe(ctx context.Context, env Env, args []string) int {
	fs := newFlags(env, "serve", "serve -c FILE [--log-level L] [--access-log stdout|stderr|off]", `
Runs the gateway from a config file (see docs/configuration.md).

  SIGHUP, a change of the file, or POST /admin/reload   reload atomically:
      a config with problems is not applied; the running one stays in force
      and the problems are logged.
  SIGTERM, SIGINT   stop accepting connections, let in-flight requests finish
      (at most server.shutdown_timeout), exit 0.

A config that fails validation is never served: the process exits 1 with
one line per problem, as 'breakwater validate' prints them.`)
	path := configFlag(fs)
	var lf logFlags
	lf.register(fs)
	if code, done := parse(fs, env, args); done {
		return code
	}
	if *path == "" {
		fmt.Fprintln(env.Stderr, "breakwater serve: -c FILE is required; see 'breakwater serve --help'")
		return 2
	}
	logger, access, err := lf.loggers(env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "breakwater serve: %v\n", err)
		return 2
	}
	load := func() (*config.Config, error) { return config.Load(*path, env.LookupEnv) }
	cfg, err := load()
	if err != nil {
		printConfigErrors(env.Stderr, err)
		return 1
	}
	rt, err := gateway.Start(ctx, cfg, gateway.Options{Build: buildInfo(), Logger: logger, Access: access, Load: load})
	if err != nil {
		logger.Error("cannot start", "err", err.Error())
		fmt.Fprintf(env.Stderr, "breakwater serve: %v\n", err)
		return 1
	}
	a := rt.Addrs()
	logger.Info("breakwater serving", "https", a.HTTPS, "http", a.HTTP, "admin", a.Admin, "config", *path)
	return runUntilDone(ctx, rt, logger, *path, cfg.Server.ShutdownTimeout.D())
}

// runUntilDone serves until ctx ends, reloading on SIGHUP and on changes of
// the config file, then drains.
func runUntilDone(ctx context.Context, rt *gateway.Runtime, logger *slog.Logger, path string, drain time.Duration) int {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	changed := make(chan struct{}, 1)
	if path != "" {
		stop, err := watchFile(path, changed)
		if err != nil {
			logger.Warn("cannot watch the config file; reload with SIGHUP or POST /admin/reload", "err", err.Error())
		} else {
			defer stop()
		}
	}

	code := 0
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-hup:
			logger.Info("SIGHUP: reloading")
			_ = rt.Reload(ctx)
		case <-changed:
			logger.Info("config file changed: reloading")
			_ = rt.Reload(ctx)
		case err := <-rt.Errors():
			logger.Error("listener failed", "err", err.Error())
			code = 1
			break loop
		}
	}
	logger.Info("shutting down; draining in-flight requests", "timeout", drain.String())
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := rt.Shutdown(sctx); err != nil {
		logger.Warn("shutdown not clean (drain timed out, or state not saved)", "err", err.Error())
	}
	logger.Info("stopped")
	return code
}

// watchFile signals on changed (coalesced, after a short quiet period) when
// the content of path changes. The directory is watched, not the file, and
// any event in it leads to a comparison of the file's digest: editors save
// by renaming, and Kubernetes swaps a symlinked ..data directory, so events
// do not always name the file itself.
func watchFile(path string, changed chan<- struct{}) (func(), error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		w.Close()
		return nil, err
	}
	if err := w.Add(filepath.Dir(abs)); err != nil {
		w.Close()
		return nil, err
	}
	last := fileDigest(abs)
	done := make(chan struct{})
	go func() {
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		for {
			select {
			case <-done:
				return
			case _, ok := <-w.Events:
				if !ok {
					return
				}
				timer.Reset(250 * time.Millisecond)
			case <-timer.C:
				d := fileDigest(abs)
				if d == last || d == ([sha256.Size]byte{}) {
					continue // unchanged, or unreadable for a moment (mid-swap)
				}
				last = d
				select {
				case changed <- struct{}{}:
				default:
				}
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
			}
		}
	}()
	return func() { close(done); w.Close() }, nil
}

// fileDigest is the SHA-256 of the file's content (following symlinks), or
// zero when it cannot be read — a half-written file is caught by the next event.
func fileDigest(path string) [sha256.Size]byte {
	f, err := os.Open(path)
	if err != nil {
		return [sha256.Size]byte{}
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, 8<<20)); err != nil {
		return [sha256.Size]byte{}
	}
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

func printConfigErrors(w io.Writer, err error) {
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Fprintln(w, e.String())
		}
		return
	}
	fmt.Fprintln(w, strings.TrimSpace(err.Error()))
}

func runValidate(ctx context.Context, env Env, args []string) int {
	fs := newFlags(env, "validate", "validate -c FILE", `
Loads and checks a config without serving it. Exit 0 when it is valid;
otherwise exit 1 and one line per problem:

  FILE:LINE:COL: field.path: what is wrong

Every problem is reported at once. ${NAME} variables must be set in the
environment, and files the config names must exist, exactly as for serve.`)
	path := configFlag(fs)
	if code, done := parse(fs, env, args); done {
		return code
	}
	if *path == "" {
		fmt.Fprintln(env.Stderr, "breakwater validate: -c FILE is required; see 'breakwater validate --help'")
		return 2
	}
	cfg, err := config.Load(*path, env.LookupEnv)
	if err != nil {
		printConfigErrors(env.Stderr, err)
		return 1
	}
	if bad := checkSpecs(env.Stderr, cfg); bad {
		return 1
	}
	fmt.Fprintf(env.Stdout, "%s: valid\n", *path)
	return 0
}

// checkSpecs loads the OpenAPI spec of every route, as serve will, and
// prints each one that does not load at the route's spec field.
func checkSpecs(w io.Writer, cfg *config.Config) (bad bool) {
	for i, r := range cfg.Routes {
		if r.OpenAPI == nil {
			continue
		}
		if _, err := validate.Load(cfg.Resolve(r.OpenAPI.Spec)); err != nil {
			field := fmt.Sprintf("routes[%d].openapi.spec", i)
			pos := cfg.Pos(field)
			fmt.Fprintf(w, "%s:%d:%d: %s: %v\n", cfg.File, pos.Line, pos.Col, field, err)
			bad = true
		}
	}
	return bad
}
