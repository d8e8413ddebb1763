package redisconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// Default timeouts, used when neither the URL nor Options set them.
const (
	DefaultDialTimeout    = 2 * time.Second
	DefaultCommandTimeout = 500 * time.Millisecond
)

// Errors returned by Conn.Do without calling Redis.
var (
	// ErrOpen: the circuit breaker is open (Redis failed recently).
	ErrOpen = errors.New("redis: circuit breaker open")
	// ErrClosed: the Conn was closed.
	ErrClosed = errors.New("redis: connection closed")
)

// Options configure New.
type Options struct {
	// Address is the parsed store.redis URL.
	Address Address
	// TLSConfig is the TLS client configuration for the rediss schemes;
	// nil means the system roots and TLS 1.2 or later. It is cloned. The
	// server name is taken from each address when ServerName is empty.
	TLSConfig *tls.Config
	// DialTimeout and CommandTimeout apply when the URL does not set them
	// (defaults DefaultDialTimeout and DefaultCommandTimeout).
	DialTimeout    time.Duration
	CommandTimeout time.Duration
	// Breaker tunes the circuit breaker.
	Breaker BreakerOptions
	// Now is the clock of the breaker (default time.Now).
	Now func() time.Time
}

// Conn is a Redis client guarded by a circuit breaker, shared by the Redis
// stores. It is safe for concurrent use.
//
// Every call through Do has the command timeout. After Breaker.Failures
// consecutive calls that Redis did not answer (a network error, a timeout,
// a node loading or a cluster down; not an error reply such as a script
// error), the breaker opens: calls fail at once with ErrOpen for the
// cool-down, then one call at a time probes Redis; the first that succeeds
// closes the breaker. If Redis cannot be reached when the Conn is created,
// New still succeeds with the breaker open, and the probes connect later:
// the gateway starts, and recovers by itself, whatever Redis does.
type Conn struct {
	addr    Address
	opt     rueidis.ClientOption
	timeout time.Duration // per command
	dial    time.Duration
	br      *breaker

	mu     sync.Mutex // guards connecting and closing the client
	client atomic.Pointer[rueidis.Client]
	closed atomic.Bool

	calls    atomic.Uint64
	failures atomic.Uint64
	rejected atomic.Uint64
}

// New returns a Conn for o.Address. It tries to connect once, within the
// dial timeout (or until ctx is done); on failure the breaker starts open.
// It fails only for an unusable configuration.
func New(ctx context.Context, o Options) (*Conn, error) {
	a := o.Address
	if len(a.Addrs) == 0 {
		return nil, errors.New("redis: no address")
	}
	dial := firstPositive(a.DialTimeout, o.DialTimeout, DefaultDialTimeout)
	cmd := firstPositive(a.CommandTimeout, o.CommandTimeout, DefaultCommandTimeout)
	now := o.Now
	if now == nil {
		now = time.Now
	}
	opt := rueidis.ClientOption{
		InitAddress:  a.Addrs,
		Username:     a.Username,
		Password:     a.Password.Reveal(),
		ClientName:   "breakwater",
		SelectDB:     a.DB,
		DisableCache: true, // no client-side caching: every read is fresh
		DisableRetry: true, // the breaker decides; a retry would hide an outage
		// Dead connections are noticed by the command timeout; this bounds
		// reads and writes of the connection itself (and its PINGs).
		ConnWriteTimeout: dial + cmd,
		ShuffleInit:      true,
	}
	opt.Dialer.Timeout = dial
	if a.TLS {
		if o.TLSConfig != nil {
			opt.TLSConfig = o.TLSConfig.Clone()
		} else {
			opt.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	}
	switch a.Mode {
	case Standalone:
		opt.ForceSingleClient = true
	case Sentinel:
		opt.Sentinel = rueidis.SentinelOption{MasterSet: a.MasterSet, TLSConfig: opt.TLSConfig, Dialer: opt.Dialer}
		if a.SentinelAuth {
			opt.Sentinel.Username, opt.Sentinel.Password = a.Username, a.Password.Reveal()
		}
	}
	c := &Conn{addr: a, opt: opt, timeout: cmd, dial: dial, br: newBreaker(o.Breaker, now)}
	cctx, cancel := context.WithTimeout(ctx, dial)
	defer cancel()
	if _, err := c.connect(cctx); err != nil {
		c.failures.Add(1)
		c.br.trip()
	}
	return c, nil
}

func firstPositive(ds ...time.Duration) time.Duration {
	for _, d := range ds {
		if d > 0 {
			return d
		}
	}
	return 0
}

// connect creates the client if there is none yet.
func (c *Conn) connect(ctx context.Context) (rueidis.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return nil, ErrClosed
	}
	if p := c.client.Load(); p != nil {
		return *p, nil
	}
	type result struct {
		cl  rueidis.Client
		err error
	}
	ch := make(chan result, 1)
	go func() { // rueidis.NewClient takes no context
		cl, err := rueidis.NewClient(c.opt)
		ch <- result{cl, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-ctx.Done():
		go func() { // close a client that arrives too late
			if r := <-ch; r.err == nil {
				r.cl.Close()
			}
		}()
		return nil, fmt.Errorf("redis: connect to %s: %w", c.addr.Mode, ctx.Err())
	}
	if r.err != nil {
		return nil, fmt.Errorf("redis: connect to %s: %w", c.addr.Mode, r.err)
	}
	if c.addr.Mode == Cluster && r.cl.Mode() != rueidis.ClientModeCluster {
		r.cl.Close()
		return nil, errors.New("redis: connect: a redis-cluster URL names servers that are not in cluster mode")
	}
	c.client.Store(&r.cl)
	return r.cl, nil
}

// Do runs f with the client and a context bounded by the command timeout,
// unless the breaker is open (ErrOpen) or the Conn is closed (ErrClosed).
// The error f returns decides the breaker: nil or an error reply from
// Redis counts as a success, anything else as a failure, except when ctx
// itself ended first, which counts as neither. f must return the error of
// the command it ran (wrapped or not), and run at most a few commands.
func (c *Conn) Do(ctx context.Context, f func(ctx context.Context, cl rueidis.Client) error) error {
	if c.closed.Load() {
		return ErrClosed
	}
	ok, probe := c.br.allow()
	if !ok {
		c.rejected.Add(1)
		return ErrOpen
	}
	c.calls.Add(1)
	var cl rueidis.Client
	if p := c.client.Load(); p != nil {
		cl = *p
	} else {
		dctx, cancel := context.WithTimeout(ctx, c.dial)
		var err error
		cl, err = c.connect(dctx)
		cancel()
		if err != nil {
			c.record(ctx, probe, err)
			return err
		}
	}
	deadline := time.Now().Add(c.timeout)
	cctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	err := f(cctx, cl)
	if err != nil && errors.Is(err, context.DeadlineExceeded) {
		// The caller's own deadline, if it came first, says nothing
		// about Redis (a client may see it a moment before ctx does).
		if pd, ok := ctx.Deadline(); ok && !pd.After(deadline) {
			c.br.abandon(probe)
			return err
		}
	}
	c.record(ctx, probe, err)
	return err
}

func (c *Conn) record(ctx context.Context, probe bool, err error) {
	switch {
	case err == nil || !outage(err):
		c.br.success(probe)
	case ctx.Err() != nil || c.closed.Load():
		c.br.abandon(probe)
	default:
		c.failures.Add(1)
		c.br.failure(probe)
	}
}

// outage reports whether err means Redis did not answer, or answered that
// it cannot serve.
func outage(err error) bool {
	re, ok := rueidis.IsRedisErr(err)
	if !ok {
		return true
	}
	if re.IsNil() {
		return false
	}
	if re.IsLoading() || re.IsClusterDown() || re.IsTryAgain() {
		return true
	}
	msg := re.Error()
	for _, p := range []string{"MASTERDOWN", "READONLY", "BUSY ", "NOREPLICAS", "OOM"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// Healthy reports whether the breaker is closed: Redis answered the last
// calls (or fewer than Breaker.Failures have failed in a row).
func (c *Conn) Healthy() bool { return !c.closed.Load() && State(c.br.state.Load()) == Closed }

// Stats are counters since New, for metrics.
type Stats struct {
	// Calls is the number of calls that went to Redis.
	Calls uint64
	// Failures is the number of those that Redis did not answer (and
	// of failed connection attempts).
	Failures uint64
	// Rejected is the number of calls refused by the open breaker.
	Rejected uint64
	// Opened is the number of times the breaker opened.
	Opened uint64
	// State is the breaker's current state.
	State State
}

// Stats returns the counters.
func (c *Conn) Stats() Stats {
	return Stats{
		Calls:    c.calls.Load(),
		Failures: c.failures.Load(),
		Rejected: c.rejected.Load(),
		Opened:   c.br.opened.Load(),
		State:    State(c.br.state.Load()),
	}
}

// Address returns the address the Conn was created with.
func (c *Conn) Address() Address { return c.addr }

// Close closes the client and stops its goroutines. Later calls of Do
// return ErrClosed. Close is idempotent.
func (c *Conn) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Swap(true) {
		return
	}
	if p := c.client.Swap(nil); p != nil {
		(*p).Close()
	}
}
