package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/ratelimit"
	"github.com/breakwater/breakwater/internal/redisconn"
	"github.com/breakwater/breakwater/internal/state"
	"github.com/prometheus/client_golang/prometheus"
)

// sharedStores are the stores of state that several gateway instances
// share through Redis (store.redis), each falling back as
// store.on_unavailable says while Redis cannot be reached. Without Redis
// they are the embedded stores themselves.
type sharedStores struct {
	limiter ratelimit.Store
	nonces  state.Nonces
	revoked state.Revocations
	conn    *redisconn.Conn // nil: embedded only
}

// openStores connects to store.redis when it is set. A Redis that is down
// at start is not an error: the breaker is open, on_unavailable applies, and
// the stores are used as soon as it answers.
func openStores(ctx context.Context, s config.Store, local *ratelimit.Memory, localSec *state.Memory,
	reg prometheus.Registerer, log *slog.Logger) (*sharedStores, error) {
	if s.Redis == "" {
		return &sharedStores{limiter: local, nonces: localSec, revoked: localSec}, nil
	}
	addr, err := redisconn.ParseURL(s.Redis)
	if err != nil {
		return nil, fmt.Errorf("store.redis: %w", err)
	}
	conn, err := redisconn.New(ctx, redisconn.Options{Address: addr})
	if err != nil {
		return nil, fmt.Errorf("store.redis: %w", err)
	}
	fb := &fallback{mode: s.OnUnavailable, log: log}
	if err := fb.register(reg, conn); err != nil {
		conn.Close()
		return nil, err
	}
	log.Info("shared store", "redis", addr.String(), "on_unavailable", s.OnUnavailable)
	sec := &fallbackState{primary: state.NewRedis(conn, time.Now), local: localSec, fallback: fb}
	return &sharedStores{
		limiter: &fallbackLimiter{primary: ratelimit.NewRedis(conn), local: local, fallback: fb},
		nonces:  sec, revoked: sec, conn: conn,
	}, nil
}

// close disconnects from Redis.
func (s *sharedStores) close() {
	if s.conn != nil {
		s.conn.Close()
	}
}

// fallback applies store.on_unavailable: "local" uses this instance's own
// state (limits then hold per instance), "deny" refuses (503 for limited
// requests, 401 for credentials that need the store), "allow" lets the
// request through unlimited. Every fallback is counted; the log says so at
// most once every 10 seconds.
type fallback struct {
	mode     string
	log      *slog.Logger
	count    atomic.Uint64
	lastLogN atomic.Int64 // unix nanoseconds of the last log line
}

// note records one fallback caused by err.
func (f *fallback) note(err error) {
	f.count.Add(1)
	now := time.Now().UnixNano()
	if last := f.lastLogN.Load(); now-last > int64(10*time.Second) && f.lastLogN.CompareAndSwap(last, now) {
		f.log.Warn("shared store unavailable", "on_unavailable", f.mode, "fallbacks", f.count.Load(), "err", err.Error())
	}
}

// register exports the Redis connection's health and the fallbacks.
func (f *fallback) register(reg prometheus.Registerer, conn *redisconn.Conn) error {
	if reg == nil {
		return nil
	}
	stat := func(v func(redisconn.Stats) float64) func() float64 { return func() float64 { return v(conn.Stats()) } }
	cs := []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "breakwater_store_calls_total",
			Help: "Calls to the shared store (Redis)."}, stat(func(s redisconn.Stats) float64 { return float64(s.Calls) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "breakwater_store_errors_total",
			Help: "Calls to the shared store that failed (network, timeout, cluster down)."}, stat(func(s redisconn.Stats) float64 { return float64(s.Failures) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "breakwater_store_rejected_total",
			Help: "Calls not made because the store's circuit breaker was open."}, stat(func(s redisconn.Stats) float64 { return float64(s.Rejected) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "breakwater_store_breaker_open",
			Help: "1 while the shared store's circuit breaker is open (Redis considered down)."}, func() float64 {
			if conn.Healthy() {
				return 0
			}
			return 1
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "breakwater_store_fallbacks_total",
			Help:        "Decisions taken by store.on_unavailable because the shared store was unavailable.",
			ConstLabels: prometheus.Labels{"on_unavailable": f.mode}}, func() float64 { return float64(f.count.Load()) }),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("store metrics: %w", err)
		}
	}
	return nil
}

// fallbackLimiter decides rate limits in Redis, or as on_unavailable says.
type fallbackLimiter struct {
	primary ratelimit.Store
	local   ratelimit.Store
	*fallback
}

func (f *fallbackLimiter) Decide(ctx context.Context, now time.Time, req ratelimit.Request, d *ratelimit.Decision) error {
	err := f.primary.Decide(ctx, now, req, d)
	if err == nil || !errors.Is(err, ratelimit.ErrUnavailable) {
		return err
	}
	f.note(err)
	switch f.mode {
	case "local":
		return f.local.Decide(ctx, now, req, d)
	case "allow":
		*d = ratelimit.Decision{Allowed: true, Index: -1}
		return nil
	}
	return err
}

// fallbackState keeps nonces and revocations in Redis, or as on_unavailable
// says. A revocation is always recorded locally too when Redis is down, so
// this instance at least honours it; "allow" never makes a revoked token
// valid that this instance knows about.
type fallbackState struct {
	primary interface {
		state.Nonces
		state.Revocations
	}
	local interface {
		state.Nonces
		state.Revocations
	}
	*fallback
}

func unavailable(err error) bool { return errors.Is(err, state.ErrUnavailable) }

func (f *fallbackState) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	ok, err := f.primary.Claim(ctx, key, ttl)
	if !unavailable(err) {
		return ok, err
	}
	f.note(err)
	switch f.mode {
	case "local":
		return f.local.Claim(ctx, key, ttl)
	case "allow":
		return true, nil
	}
	return false, err
}

func (f *fallbackState) Revoke(ctx context.Context, jti string, until time.Time) error {
	err := f.primary.Revoke(ctx, jti, until)
	if !unavailable(err) {
		return err
	}
	f.note(err)
	if lerr := f.local.Revoke(ctx, jti, until); lerr != nil || f.mode == "deny" {
		return errors.Join(err, lerr)
	}
	return nil
}

func (f *fallbackState) Revoked(ctx context.Context, jti string) (bool, error) {
	revoked, err := f.primary.Revoked(ctx, jti)
	if !unavailable(err) {
		return revoked, err
	}
	f.note(err)
	if f.mode == "deny" {
		return false, err
	}
	return f.local.Revoked(ctx, jti)
}
