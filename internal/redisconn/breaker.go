package redisconn

import (
	"sync"
	"sync/atomic"
	"time"
)

// State is the state of the circuit breaker.
type State int32

// The breaker states.
const (
	// Closed: calls go to Redis.
	Closed State = iota
	// Open: calls fail at once with ErrOpen until the cool-down ends.
	Open
	// HalfOpen: the cool-down has ended; one call at a time (the probe)
	// goes to Redis, the others fail at once.
	HalfOpen
)

// String returns "closed", "open" or "half-open".
func (s State) String() string {
	switch s {
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	default:
		return "closed"
	}
}

// BreakerOptions tune the circuit breaker. The zero value is ready to use.
type BreakerOptions struct {
	// Failures is the number of consecutive failed calls that opens the
	// breaker (default 5).
	Failures int
	// MinCooldown is how long the breaker stays open the first time
	// (default 1s); each failed probe doubles it, up to MaxCooldown
	// (default 30s). A successful probe closes the breaker and resets it.
	MinCooldown time.Duration
	MaxCooldown time.Duration
}

// breaker is a consecutive-failure circuit breaker. The closed state is
// decided with atomics only; transitions take the mutex.
type breaker struct {
	o   BreakerOptions
	now func() time.Time

	state atomic.Int32 // State
	fails atomic.Int64 // consecutive failures while closed

	mu       sync.Mutex
	until    time.Time     // end of the cool-down (open)
	cooldown time.Duration // the current cool-down
	probing  bool          // a probe is in flight (half-open)

	opened atomic.Uint64
}

func newBreaker(o BreakerOptions, now func() time.Time) *breaker {
	if o.Failures <= 0 {
		o.Failures = 5
	}
	if o.MinCooldown <= 0 {
		o.MinCooldown = time.Second
	}
	if o.MaxCooldown <= 0 {
		o.MaxCooldown = 30 * time.Second
	}
	o.MaxCooldown = max(o.MaxCooldown, o.MinCooldown)
	return &breaker{o: o, now: now, cooldown: o.MinCooldown}
}

// allow reports whether a call may go to Redis and whether it is the probe
// of a half-open breaker. Every allowed call must be followed by exactly
// one of success, failure or abandon with the same probe flag.
func (b *breaker) allow() (ok, probe bool) {
	if State(b.state.Load()) == Closed {
		return true, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch State(b.state.Load()) {
	case Closed:
		return true, false
	case Open:
		if b.now().Before(b.until) {
			return false, false
		}
		b.state.Store(int32(HalfOpen))
	}
	if b.probing {
		return false, false
	}
	b.probing = true
	return true, true
}

// success records a call that Redis answered.
func (b *breaker) success(probe bool) {
	if !probe {
		if b.fails.Load() != 0 {
			b.fails.Store(0)
		}
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
	b.cooldown = b.o.MinCooldown
	b.fails.Store(0)
	b.state.Store(int32(Closed))
}

// failure records a call that Redis did not answer.
func (b *breaker) failure(probe bool) {
	if !probe {
		if b.fails.Add(1) < int64(b.o.Failures) {
			return
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		if State(b.state.Load()) == Closed {
			b.openLocked()
		}
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
	b.cooldown = min(2*b.cooldown, b.o.MaxCooldown)
	b.openLocked()
}

// trip opens the breaker at once (a failed connection attempt).
func (b *breaker) trip() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.openLocked()
}

// abandon records a call whose outcome says nothing about Redis (the
// caller gave up first).
func (b *breaker) abandon(probe bool) {
	if probe {
		b.mu.Lock()
		b.probing = false
		b.mu.Unlock()
	}
}

func (b *breaker) openLocked() {
	b.until = b.now().Add(b.cooldown)
	b.state.Store(int32(Open))
	b.opened.Add(1)
}
