package jwtauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of JWKSOptions.
const (
	DefaultRefresh    = 5 * time.Minute
	DefaultMinRefetch = 30 * time.Second
	DefaultTimeout    = 5 * time.Second
	DefaultMaxBytes   = 1 << 20
	maxRedirects      = 3
)

// JWKSOptions configures a remote JSON Web Key Set.
type JWKSOptions struct {
	// URL of the key set: https, or http only on a loopback host
	// (127.0.0.0/8, ::1, localhost). It must not carry credentials.
	URL string
	// Client makes the requests; nil means a client of its own. Its
	// CheckRedirect is replaced (on a copy) so redirects obey the URL rule.
	Client *http.Client
	// Refresh is the period of background fetches (0: DefaultRefresh).
	Refresh time.Duration
	// MinRefetch is the least time between two fetches triggered by an
	// unknown kid or a missing set (0: DefaultMinRefetch).
	MinRefetch time.Duration
	// Timeout bounds one fetch, body included (0: DefaultTimeout).
	Timeout time.Duration
	// MaxBytes bounds the response body (0: DefaultMaxBytes).
	MaxBytes int64
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Logger receives fetch failures and skipped keys (nil: discarded).
	Logger *slog.Logger
}

// JWKS is a remote key set: fetched at Start and every Refresh, refetched
// (rate limited, one fetch shared by all waiters) when a kid is unknown,
// and kept when a later fetch fails. It is safe for concurrent use; one
// JWKS should be shared by every authenticator that names the same URL.
type JWKS struct {
	url        string
	client     *http.Client
	refresh    time.Duration
	minRefetch time.Duration
	timeout    time.Duration
	maxBytes   int64
	now        func() time.Time
	log        *slog.Logger

	set     atomic.Pointer[keySet] // nil until the first good fetch
	started atomic.Bool
	fetches atomic.Int64 // fetches started, for tests and metrics

	mu          sync.Mutex
	lastRefetch time.Time  // last on-demand fetch
	inflight    *fetchCall // the fetch under way, if any
}

// fetchCall is one fetch that several callers may wait for.
type fetchCall struct {
	done chan struct{}
	err  error
}

// NewJWKS checks the options and returns a JWKS that holds no keys yet:
// call Start, or let the first Key call fetch.
func NewJWKS(o JWKSOptions) (*JWKS, error) {
	if err := checkURL(o.URL); err != nil {
		return nil, fmt.Errorf("jwks url: %w", err)
	}
	if o.Refresh < 0 || o.MinRefetch < 0 || o.Timeout < 0 || o.MaxBytes < 0 {
		return nil, errors.New("jwks: durations and sizes must not be negative")
	}
	j := &JWKS{
		url:        o.URL,
		refresh:    orDefault(o.Refresh, DefaultRefresh),
		minRefetch: orDefault(o.MinRefetch, DefaultMinRefetch),
		timeout:    orDefault(o.Timeout, DefaultTimeout),
		maxBytes:   orDefault(o.MaxBytes, DefaultMaxBytes),
		now:        o.Now,
		log:        o.Logger,
	}
	if j.now == nil {
		j.now = time.Now
	}
	if j.log == nil {
		j.log = slog.New(slog.DiscardHandler)
	}
	j.log = j.log.With("jwks_url", redactURL(o.URL))
	var c http.Client
	if o.Client != nil {
		c = *o.Client
	}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return errors.New("too many redirects")
		}
		return checkURL(req.URL.String())
	}
	j.client = &c
	return j, nil
}

func orDefault[T int64 | time.Duration](v, d T) T {
	if v == 0 {
		return d
	}
	return v
}

// checkURL enforces https, or http on a loopback host.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a valid URL")
	}
	if u.User != nil {
		return errors.New("must not carry credentials")
	}
	if u.Host == "" || u.Hostname() == "" {
		return errors.New("has no host")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return errors.New("must be https (http only on loopback)")
	}
	return fmt.Errorf("scheme %q is not https", u.Scheme)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.EqualFold(host, "localhost.") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid)"
	}
	u.RawQuery, u.Fragment = "", ""
	return u.String()
}

// Start fetches the set now, in the background, and then every Refresh
// until ctx ends. It never blocks; later calls do nothing.
func (j *JWKS) Start(ctx context.Context) {
	if !j.started.CompareAndSwap(false, true) {
		return
	}
	go func() {
		t := time.NewTicker(j.refresh)
		defer t.Stop()
		for {
			if c := j.share(ctx); c != nil {
				j.wait(ctx, c)
			}
			if ctx.Err() != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// Key returns the key with id kid. An unknown kid triggers one refetch if
// none was triggered within MinRefetch; concurrent callers share it.
func (j *JWKS) Key(ctx context.Context, kid string) (Key, error) {
	if s := j.set.Load(); s != nil {
		if k, ok := s.byKID[kid]; ok {
			return k, nil
		}
	}
	j.refetch(ctx)
	s := j.set.Load()
	if s == nil {
		return Key{}, ErrKeysUnavailable
	}
	if k, ok := s.byKID[kid]; ok {
		return k, nil
	}
	return Key{}, ErrUnknownKey
}

// Keys implements KeyLister. It fetches (rate limited) only when the set
// has never been loaded.
func (j *JWKS) Keys(ctx context.Context) ([]Key, error) {
	s := j.set.Load()
	if s == nil {
		j.refetch(ctx)
		if s = j.set.Load(); s == nil {
			return nil, ErrKeysUnavailable
		}
	}
	return s.all, nil
}

// refetch joins a fetch under way, or starts one unless an on-demand fetch
// started less than MinRefetch ago; it waits at most until ctx ends.
func (j *JWKS) refetch(ctx context.Context) {
	j.mu.Lock()
	c := j.inflight
	if c == nil {
		now := j.now()
		if !j.lastRefetch.IsZero() && now.Sub(j.lastRefetch) < j.minRefetch {
			j.mu.Unlock()
			return
		}
		j.lastRefetch = now
		c = j.startLocked(ctx)
	}
	j.mu.Unlock()
	j.wait(ctx, c)
}

// share joins the fetch under way or starts one, without rate limit (the
// periodic refresh). It returns nil once ctx has ended.
func (j *JWKS) share(ctx context.Context) *fetchCall {
	j.mu.Lock()
	defer j.mu.Unlock()
	if ctx.Err() != nil {
		return nil
	}
	if j.inflight != nil {
		return j.inflight
	}
	return j.startLocked(ctx)
}

// startLocked starts a fetch; j.mu must be held. The fetch is detached
// from the cancellation of the request that triggered it (other callers may
// be waiting for it) but bounded by the timeout.
func (j *JWKS) startLocked(ctx context.Context) *fetchCall {
	c := &fetchCall{done: make(chan struct{})}
	j.inflight = c
	j.fetches.Add(1)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), j.timeout)
	go func() {
		defer cancel()
		c.err = j.fetch(fctx)
		if c.err != nil {
			level := slog.LevelWarn
			if j.set.Load() == nil {
				level = slog.LevelError
			}
			j.log.Log(fctx, level, "jwks fetch failed; keeping the last good set", "err", c.err, "have_keys", j.set.Load() != nil)
		}
		j.mu.Lock()
		j.inflight = nil
		j.mu.Unlock()
		close(c.done)
	}()
	return c
}

func (j *JWKS) wait(ctx context.Context, c *fetchCall) {
	select {
	case <-c.done:
	case <-ctx.Done():
	}
}

// fetch loads the set once and installs it if it holds a usable key.
func (j *JWKS) fetch(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		_ = resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	if !isJSON(resp.Header.Get("Content-Type")) {
		return fmt.Errorf("content type %q is not json", resp.Header.Get("Content-Type"))
	}
	if resp.ContentLength > j.maxBytes {
		return fmt.Errorf("body of %d bytes exceeds %d", resp.ContentLength, j.maxBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, j.maxBytes+1))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if int64(len(body)) > j.maxBytes {
		return fmt.Errorf("body exceeds %d bytes", j.maxBytes)
	}
	set, skips, err := parseJWKS(body)
	if err != nil {
		return err
	}
	for _, s := range skips {
		j.log.WarnContext(ctx, "jwks key skipped", "index", s.index, "kid", s.kid, "reason", s.reason)
	}
	if len(set.all) == 0 {
		return errors.New("no usable key in the set")
	}
	j.set.Store(set)
	j.log.DebugContext(ctx, "jwks loaded", "keys", len(set.all), "skipped", len(skips))
	return nil
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "application/jwk-set+json" || strings.HasSuffix(mt, "+json")
}
