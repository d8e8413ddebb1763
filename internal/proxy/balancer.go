package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// target is one upstream server.
//
// Its health has two independent parts: active checks (activeDown, written
// only by its check loop) and passive failures (fails, ejectedUntil,
// lastFail, written by requests). A target is picked when neither says it is
// down.
type target struct {
	raw     string // as configured, for logs
	scheme  string // "http" or "https"
	host    string // URL host as configured: the Host header sent upstream
	addr    string // host:port, for State.Upstream and logs
	base    string // decoded base path without trailing slash ("" for none)
	baseRaw string // the same, escaped

	activeDown   atomic.Bool
	fails        atomic.Int32 // consecutive passive failures
	ejectedUntil atomic.Int64 // unix nanoseconds; 0: not ejected
	lastFail     atomic.Int64 // unix nanoseconds of the last passive failure
}

// up reports whether the target may be picked at now (unix nanoseconds).
func (t *target) up(now int64) bool {
	return !t.activeDown.Load() && now >= t.ejectedUntil.Load()
}

// setURL points u at this target: scheme, host, base path joined with the
// canonical path, and rawQuery. Everything else the client's URL may have
// carried (user info, opaque form, fragment) is dropped.
func (t *target) setURL(u *url.URL, path, rawPath, rawQuery string) {
	*u = url.URL{
		Scheme:   t.scheme,
		Host:     t.host,
		Path:     t.base + path,
		RawQuery: rawQuery,
	}
	if rawPath != path || t.baseRaw != t.base {
		u.RawPath = t.baseRaw + rawPath
	}
}

// parseTargets checks and parses the configured target URLs.
func parseTargets(raws []string) ([]*target, error) {
	if len(raws) == 0 {
		return nil, errors.New("targets: at least one target is required")
	}
	targets := make([]*target, 0, len(raws))
	seen := make(map[string]bool, len(raws))
	for i, raw := range raws {
		t, err := parseTarget(raw)
		if err != nil {
			return nil, fmt.Errorf("targets[%d]: %w", i, err)
		}
		key := t.scheme + "://" + t.addr + t.baseRaw
		if seen[key] {
			return nil, fmt.Errorf("targets[%d]: %q is listed twice", i, raw)
		}
		seen[key] = true
		targets = append(targets, t)
	}
	return targets, nil
}

func parseTarget(raw string) (*target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("not a URL: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%q: scheme must be http or https", raw)
	case u.Host == "" || u.Opaque != "":
		return nil, fmt.Errorf("%q: no host (write scheme://host:port)", raw)
	case u.User != nil:
		return nil, fmt.Errorf("%q: credentials in a target URL are not allowed", raw)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("%q: a target may not have a query or fragment", raw)
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	t := &target{
		raw:     raw,
		scheme:  u.Scheme,
		host:    u.Host,
		addr:    net.JoinHostPort(u.Hostname(), port),
		base:    strings.TrimRight(u.Path, "/"),
		baseRaw: strings.TrimRight(u.EscapedPath(), "/"),
	}
	return t, nil
}

// escapePath and unescapePath convert between the decoded and the escaped
// form of a path.
func escapePath(p string) string { return (&url.URL{Path: p}).EscapedPath() }

func unescapePath(p string) (string, error) { return url.PathUnescape(p) }

// balancer picks targets round robin among those that are up.
//
// Passive health: a connection error or timeout counts a failure; maxFails
// consecutive failures eject the target for failTimeout. When that expires
// the target is picked again; its failure count is kept until a success, so
// one more failure ejects it again at once, and one success restores it.
type balancer struct {
	targets     []*target
	next        atomic.Uint64
	maxFails    int32
	failTimeout time.Duration
}

func newBalancer(targets []*target, maxFails int, failTimeout time.Duration) *balancer {
	return &balancer{
		targets:     targets,
		maxFails:    int32(min(maxFails, 1<<20)),
		failTimeout: failTimeout,
	}
}

// pick returns the next target that is up at now and not in exclude, or
// nil. The choice is exact round robin over the eligible targets, so the
// load of a target that is down spreads evenly over the others.
func (b *balancer) pick(now int64, exclude []*target) *target {
	if len(b.targets) == 1 {
		t := b.targets[0]
		if t.up(now) && !slices.Contains(exclude, t) {
			return t
		}
		return nil
	}
	n := 0
	for _, t := range b.targets {
		if t.up(now) && !slices.Contains(exclude, t) {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	k := int((b.next.Add(1) - 1) % uint64(n))
	var last *target
	for _, t := range b.targets {
		if t.up(now) && !slices.Contains(exclude, t) {
			if k == 0 {
				return t
			}
			k--
			last = t
		}
	}
	return last // a target went down between the two passes
}

// fallback returns, when pick found nothing, the target that failed least
// recently among those active checks do not mark down — or nil when every
// target is down per active checks (which are authoritative).
func (b *balancer) fallback() *target {
	var best *target
	for _, t := range b.targets {
		if t.activeDown.Load() {
			continue
		}
		if best == nil || t.lastFail.Load() < best.lastFail.Load() {
			best = t
		}
	}
	return best
}

// healthy counts the targets that are up at now.
func (b *balancer) healthy(now int64) int {
	n := 0
	for _, t := range b.targets {
		if t.up(now) {
			n++
		}
	}
	return n
}

// succeeded records a successful exchange with t: its failures are forgotten.
func (b *balancer) succeeded(t *target) {
	// Load before Store: the common case writes nothing, so targets'
	// cache lines are not bounced between cores.
	if t.fails.Load() != 0 {
		t.fails.Store(0)
	}
	if t.ejectedUntil.Load() != 0 {
		t.ejectedUntil.Store(0)
	}
}

// failed records a connection failure or timeout of t at now. It reports
// whether this failure ejected a target that was not ejected.
func (b *balancer) failed(t *target, now int64) bool {
	t.lastFail.Store(now)
	if b.maxFails == 0 {
		return false // passive checks off (max_fails: 0)
	}
	n := t.fails.Add(1)
	if n > b.maxFails {
		t.fails.Store(b.maxFails) // keep it bounded
	}
	if n < b.maxFails {
		return false
	}
	prev := t.ejectedUntil.Swap(now + int64(b.failTimeout))
	return prev <= now
}

// reset forgets the passive failures of t (active checks found it up).
func (b *balancer) reset(t *target) {
	t.fails.Store(0)
	t.ejectedUntil.Store(0)
}
