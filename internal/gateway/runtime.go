package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/breakwater/breakwater/internal/admin"
	"github.com/breakwater/breakwater/internal/audit"
	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/dashboard"
	"github.com/breakwater/breakwater/internal/edge"
	"github.com/breakwater/breakwater/internal/inventory"
	"github.com/breakwater/breakwater/internal/ratelimit"
	"github.com/breakwater/breakwater/internal/secret"
	"github.com/breakwater/breakwater/internal/state"
	"github.com/breakwater/breakwater/internal/telemetry"
	"github.com/breakwater/breakwater/internal/tracing"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a Runtime.
type Options struct {
	Logger *slog.Logger // operational log
	Access *slog.Logger // access log (nil: none)
	// Load reads the config again for a reload. Nil: reloads are refused.
	Load func() (*config.Config, error)
	// Build is exported as breakwater_build_info; empty fields are read
	// from the binary.
	Build telemetry.BuildInfo
	// LookupEnv resolves ${NAME} for the dashboard's audit of the running
	// config. Nil: the process environment.
	LookupEnv func(string) (string, bool)
}

// Addrs are the addresses the runtime listens on.
type Addrs struct {
	HTTPS, HTTP, Admin string // "" when not listening
}

// Runtime is a serving gateway process: the HTTPS listener, the optional
// HTTP redirect listener, the admin listener, and the gateway behind them.
type Runtime struct {
	gw     *Gateway
	certs  *edge.Certs
	o      Options
	addrs  Addrs
	ready  atomic.Bool
	errs   chan error
	reload sync.Mutex

	// The process's one metrics registry: it outlives reloads.
	registry *prometheus.Registry
	metrics  *telemetry.Metrics

	// The embedded stores' state, saved to data_dir periodically and at
	// shutdown.
	persist        []persisted
	stopBackground context.CancelFunc // ends periodic saves, ban syncs, inventory flushes, the webhook
	tracer         *tracing.Tracer
	dash           *dashboard.Dashboard
	stores         *sharedStores // Redis, when store.redis is set

	servers []*http.Server
	conns   []net.Listener
	capped  []*edge.LimitedListener // connection caps, updated on reload
}

// Start binds every listener of cfg and starts serving. It returns once the
// gateway accepts connections; Shutdown stops it.
func Start(ctx context.Context, cfg *config.Config, o Options) (_ *Runtime, err error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	certs, err := edge.ServerTLS(cfg.TLS, cfg.Resolve, cfg.Server.DataDir)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	metrics, err := telemetry.NewMetrics(reg, o.Build)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mon := cfg.Monitoring
	if mon == nil {
		mon = &config.Monitoring{}
	}
	var webhook *telemetry.Webhook
	eo := telemetry.EventsOptions{Logger: o.Logger}
	if mon.Webhook != nil {
		wo := telemetry.WebhookOptionsFrom(mon.Webhook)
		wo.Logger = o.Logger
		if webhook, err = telemetry.NewWebhook(wo); err != nil {
			return nil, fmt.Errorf("monitoring.webhook: %w", err)
		}
		if err := webhook.Register(reg); err != nil {
			return nil, fmt.Errorf("monitoring.webhook: %w", err)
		}
		eo.OnEmit = webhook.Send
	}
	events := telemetry.NewEvents(eo)
	tracer, err := tracing.New(ctx, mon.Tracing, o.Build.Version)
	if err != nil {
		return nil, fmt.Errorf("monitoring.tracing: %w", err)
	}
	// Embedded state, loaded from data_dir; shared through Redis when
	// store.redis is set.
	limiter := ratelimit.NewMemory(ratelimit.MemoryOptions{})
	security := state.NewMemory(state.MemoryOptions{})
	memBans := state.NewMemoryBans(state.BanOptions{})
	stores, err := openStores(ctx, cfg.Store, limiter, security, reg, o.Logger)
	if err != nil {
		return nil, err
	}
	inv := inventory.New(inventory.Options{Redis: stores.conn, Logger: o.Logger})
	persist := persistedState(cfg.Server.DataDir, limiter, security, memBans, inv)
	for _, p := range persist {
		p.load(time.Now(), o.Logger)
	}
	background, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var bans state.Bans = memBans
	if stores.conn != nil {
		shared := state.NewRedisBans(stores.conn, memBans, nil, o.Logger)
		go shared.Run(background, state.DefaultBanSync)
		bans = shared
	}
	go inv.Run(background)
	if webhook != nil {
		go webhook.Run(background)
	}
	rt := &Runtime{certs: certs, o: o, errs: make(chan error, 3), registry: reg, metrics: metrics,
		persist: persist, stores: stores, stopBackground: stopBackground, tracer: tracer}
	dash, err := dashboard.New(dashboard.Options{
		CurrentTokenHash: func() secret.Digest { return rt.Config().Admin.TokenHash },
		Metrics:          reg,
		Events:           func(n int) []telemetry.Event { return events.List(telemetry.EventQuery{Limit: n}) },
		Inventory:        func() any { return inv.View(context.Background(), 0) },
		Audit: func(ctx context.Context) (*audit.Report, error) {
			file := rt.Config().File
			if file == "" {
				return nil, errors.New("the running config is embedded (demo); audit a config file with breakwater audit")
			}
			return audit.Run(ctx, audit.Options{Config: file, LookupEnv: o.LookupEnv})
		},
		Config: func() any { return admin.View(rt.Config()) },
		Logger: o.Logger,
	})
	if err != nil {
		stopBackground()
		stores.close()
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	rt.dash = dash
	gw, err := New(ctx, cfg, Deps{Logger: o.Logger, Access: o.Access, Metrics: metrics, Events: events,
		Limiter: stores.limiter, Nonces: stores.nonces, Revocations: stores.revoked, Bans: bans, Inventory: inv, Redis: stores.conn,
		Tracer: tracer, Observer: dash})
	if err != nil {
		stopBackground()
		stores.close()
		dash.Close()
		return nil, err
	}
	rt.gw = gw
	defer func() {
		if err != nil {
			rt.closeNow()
		}
	}()

	lim := cfg.Server.Limits
	// net/http's own errors (TLS handshake noise from clients, mostly) go
	// to the log at debug level; failed handshakes are also counted.
	errorLog := log.New(handshakeCounter{out: slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug).Writer(),
		count: metrics.HandshakeFailed}, "", 0)

	// HTTPS: connection caps → TLS → HTTP with timeouts.
	ln, err := net.Listen("tcp", cfg.Server.HTTPS)
	if err != nil {
		return nil, fmt.Errorf("server.https: %w", err)
	}
	onReject := func(reason string, ip netip.Addr) {
		metrics.ConnectionRejected(reason)
		// Quick in the accept loop: the event's log line is rate-limited per
		// client address, so a flood from one address costs a ring write.
		events.Emit(telemetry.Event{Kind: telemetry.EventConnectionRejected, Reason: reason, ClientIP: ip.String()})
	}
	capped := edge.LimitListener(ln, lim.MaxConnections, lim.MaxConnectionsPerIP, onReject)
	metrics.AddListener("https", capped.Open)
	rt.conns = append(rt.conns, capped)
	rt.capped = append(rt.capped, capped)
	rt.addrs.HTTPS = ln.Addr().String()
	// DisableGeneralOptionsHandler: "OPTIONS *" reaches the gateway (and is
	// refused there with a problem document) instead of net/http's own 200.
	https := &http.Server{Handler: gw, ErrorLog: errorLog, TLSConfig: certs.Config(), DisableGeneralOptionsHandler: true}
	edge.ServerTimeouts(https, lim)
	rt.serve(https, tls.NewListener(capped, certs.Config()))

	if cfg.Server.HTTP != "" {
		l, err := net.Listen("tcp", cfg.Server.HTTP)
		if err != nil {
			return nil, fmt.Errorf("server.http: %w", err)
		}
		c := edge.LimitListener(l, lim.MaxConnections, lim.MaxConnectionsPerIP, onReject)
		metrics.AddListener("http", c.Open)
		rt.conns = append(rt.conns, c)
		rt.capped = append(rt.capped, c)
		rt.addrs.HTTP = l.Addr().String()
		srv := &http.Server{Handler: edge.RedirectHandler(rt.addrs.HTTPS), ErrorLog: errorLog, DisableGeneralOptionsHandler: true}
		edge.ServerTimeouts(srv, lim)
		rt.serve(srv, c)
	}

	if cfg.Server.Admin != "" && cfg.Server.Admin != "off" {
		l, err := net.Listen("tcp", cfg.Server.Admin)
		if err != nil {
			return nil, fmt.Errorf("server.admin: %w", err)
		}
		rt.conns = append(rt.conns, l)
		rt.addrs.Admin = l.Addr().String()
		srv := &http.Server{
			Handler: admin.New(admin.Options{
				Gateway:   rt,
				Reload:    rt.Reload,
				Stats:     func() any { return gw.Stats() },
				Metrics:   reg,
				Events:    events.Handler(),
				Bans:      gw,
				Inventory: inv.Handler(),
				Dashboard: dash,
			}),
			ErrorLog:          errorLog,
			ReadHeaderTimeout: config.DefaultReadHeaderTimeout.D(),
			ReadTimeout:       10 * time.Second, // admin requests have small bodies
			WriteTimeout:      70 * time.Second, // room for a 60s /debug/pprof/profile
			IdleTimeout:       config.DefaultIdleTimeout.D(),
			MaxHeaderBytes:    int(config.DefaultMaxHeaderBytes),
		}
		rt.serve(srv, l)
	}
	go saveEvery(background, persist, stateSaveInterval, o.Logger)
	rt.ready.Store(true)
	return rt, nil
}

func (rt *Runtime) serve(srv *http.Server, l net.Listener) {
	rt.servers = append(rt.servers, srv)
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			rt.errs <- err
		}
	}()
}

// Addrs returns the bound addresses (useful with port 0).
func (rt *Runtime) Addrs() Addrs { return rt.addrs }

// Registry returns the process's metrics registry (served at /metrics).
func (rt *Runtime) Registry() *prometheus.Registry { return rt.registry }

// Gateway returns the gateway behind the HTTPS listener.
func (rt *Runtime) Gateway() *Gateway { return rt.gw }

// Config implements admin.Gateway.
func (rt *Runtime) Config() *config.Config { return rt.gw.Config() }

// Ready implements admin.Gateway: listening with a config in force. A failed
// reload does not change readiness: the previous config keeps serving.
func (rt *Runtime) Ready() bool { return rt.ready.Load() && rt.gw.Config() != nil }

// Errors reports a listener that stopped serving unexpectedly.
func (rt *Runtime) Errors() <-chan error { return rt.errs }

// Reload reads the config again and applies it atomically. On any error the
// running config stays in force; the error says why, one problem per line.
func (rt *Runtime) Reload(ctx context.Context) error {
	rt.reload.Lock()
	defer rt.reload.Unlock()
	if rt.o.Load == nil {
		return errors.New("this gateway has no config file to reload")
	}
	cfg, err := rt.o.Load()
	if err == nil {
		old := rt.gw.Config()
		err = rt.gw.Apply(cfg)
		if err == nil {
			rt.applyListenerChanges(old, cfg)
			// Only once the config is in force: a refused config must not
			// leave its certificate behind.
			if cerr := rt.certs.Reload(); cerr != nil {
				err = fmt.Errorf("config applied, but the certificate was not reloaded; the previous one is still served: %w", cerr)
			}
		}
	} else {
		rt.gw.countReload(err)
	}
	if err != nil {
		rt.o.Logger.Error("config reload failed; the running config stays in force", "err", err.Error())
		return err
	}
	rt.o.Logger.Info("config reloaded")
	return nil
}

// applyListenerChanges updates what can change on running listeners (the
// connection caps) and warns about what needs a restart.
func (rt *Runtime) applyListenerChanges(old, cfg *config.Config) {
	lim := cfg.Server.Limits
	for _, c := range rt.capped {
		c.SetLimits(lim.MaxConnections, lim.MaxConnectionsPerIP)
	}
	if old == nil {
		return
	}
	if old.Server.HTTPS != cfg.Server.HTTPS || old.Server.HTTP != cfg.Server.HTTP || old.Server.Admin != cfg.Server.Admin {
		rt.o.Logger.Warn("listener addresses changed in the config; restart to apply them")
	}
	ol := old.Server.Limits
	if ol.MaxHeaderBytes != lim.MaxHeaderBytes || ol.ReadHeaderTimeout != lim.ReadHeaderTimeout || ol.ReadTimeout != lim.ReadTimeout ||
		ol.WriteTimeout != lim.WriteTimeout || ol.IdleTimeout != lim.IdleTimeout {
		rt.o.Logger.Warn("server.limits timeouts or max_header_bytes changed; restart to apply them (other limits are applied)")
	}
	if old.TLS.CertFile != cfg.TLS.CertFile || old.TLS.KeyFile != cfg.TLS.KeyFile || old.TLS.MinVersion != cfg.TLS.MinVersion || old.TLS.ClientCAFile != cfg.TLS.ClientCAFile || old.TLS.SelfSigned != cfg.TLS.SelfSigned {
		rt.o.Logger.Warn("tls settings changed (the certificate files themselves are re-read); restart to apply them")
	}
}

// Shutdown stops accepting connections and waits for in-flight requests to
// finish, at most until ctx ends; then it closes what is left.
func (rt *Runtime) Shutdown(ctx context.Context) error {
	rt.ready.Store(false)
	var wg sync.WaitGroup
	errs := make([]error, len(rt.servers))
	for i, srv := range rt.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Shutdown(ctx); err != nil {
				errs[i] = err
				_ = srv.Close()
			}
		}()
	}
	wg.Wait()
	rt.gw.Close()
	rt.stores.close()
	rt.dash.Close()
	if err := rt.tracer.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("tracing: %w", err))
	}
	if rt.stopBackground != nil {
		rt.stopBackground()
		if err := saveAll(rt.persist, time.Now(), rt.o.Logger); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (rt *Runtime) closeNow() {
	if rt.stopBackground != nil {
		rt.stopBackground()
	}
	for _, srv := range rt.servers {
		_ = srv.Close()
	}
	for _, c := range rt.conns {
		_ = c.Close()
	}
	rt.gw.Close()
	rt.stores.close()
}

// handshakeCounter passes net/http's error log through and counts the
// failed TLS handshakes it reports.
type handshakeCounter struct {
	out   io.Writer
	count func()
}

func (h handshakeCounter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("TLS handshake error")) {
		h.count()
	}
	return h.out.Write(p)
}
