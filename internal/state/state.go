// Package state holds the security state that outlives a request and, once a
// shared store is configured, is shared by every gateway instance: nonces of
// signed requests and revoked access tokens. The embedded implementation
// (Memory) is bounded and persisted to the data directory.
package state

import (
	"context"
	"errors"
	"time"
)

// Nonces remembers one-time values (HTTP message signature nonces).
type Nonces interface {
	// Claim records key as used until ttl has passed. It returns false when
	// key was already claimed and has not expired: a replay.
	Claim(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// Revocations remembers revoked access tokens by their jti.
type Revocations interface {
	// Revoke marks jti as revoked until the token would have expired anyway.
	Revoke(ctx context.Context, jti string, until time.Time) error
	// Revoked reports whether jti has been revoked.
	Revoked(ctx context.Context, jti string) (bool, error)
}

// ErrFull is returned when a bounded store has no room left for a new entry
// that has not expired: the caller must fail closed.
var ErrFull = errors.New("state store full")
