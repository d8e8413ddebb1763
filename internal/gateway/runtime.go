package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/breakwater/breakwater/internal/admin"
	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/edge"
	"github.com/breakwater/breakwater/internal/ratelimit"
	"github.com/breakwater/breakwater/internal/state"
	"github.com/breakwater/breakwater/internal/telemetry"
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
	// shutdown; stopSaving ends the periodic saves.
	persist    []persisted
	stopSaving context.CancelFunc
	stores     *sharedStores // Redis, when store.redis is set

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
	certs, err := edge.ServerTLS(cfg.TLS, cfg.Resolve, cfg.Server.DataDir)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	metrics, err := telemetry.NewMetrics(reg, o.Build)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	events := telemetry.NewEvents(telemetry.EventsOptions{Logger: o.Logger})
	limiter := ratelimit.NewMemory(ratelimit.MemoryOptions{})
	security := state.NewMemory(state.MemoryOptions{})
	persist := persistedState(cfg.Server.DataDir, limiter, security)
	for _, p := range persist {
		p.load(time.Now(), o.Logger)
	}
	stores, err := openStores(ctx, cfg.Store, limiter, security, reg, o.Logger)
	if err != nil {
		return nil, err
	}
	gw, err := New(ctx, cfg, Deps{Logger: o.Logger, Access: o.Access, Metrics: metrics, Events: events,
		Limiter: stores.limiter, Nonces: stores.nonces, Revocations: stores.revoked})
	if err != nil {
		stores.close()
		return nil, err
	}
	rt := &Runtime{gw: gw, certs: certs, o: o, errs: make(chan error, 3), registry: reg, metrics: metrics,
		persist: persist, stores: stores}
	defer func() {
		if err != nil {
			rt.closeNow()
		}
	}()

	lim := cfg.Server.Limits
	errorLog := slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug) // TLS handshake noise from clients

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
				Gateway: rt,
				Reload:  rt.Reload,
				Stats:   func() any { return gw.Stats() },
				Metrics: reg,
				Events:  events.Handler(),
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
	saveCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	rt.stopSaving = stop
	go saveEvery(saveCtx, persist, stateSaveInterval, o.Logger)
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
	if rt.stopSaving != nil {
		rt.stopSaving()
		if err := saveAll(rt.persist, time.Now(), rt.o.Logger); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (rt *Runtime) closeNow() {
	for _, srv := range rt.servers {
		_ = srv.Close()
	}
	for _, c := range rt.conns {
		_ = c.Close()
	}
	rt.gw.Close()
	rt.stores.close()
}
