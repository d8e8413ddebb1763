package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// MemoryOptions bound the embedded store.
type MemoryOptions struct {
	// MaxNonces bounds the nonces remembered at once (default 1,000,000:
	// 16,000 signed requests a second with a 60 s max_age).
	MaxNonces int
	// MaxRevocations bounds the revoked tokens remembered at once
	// (default 100,000). Entries leave when their token would have expired.
	MaxRevocations int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Memory is the embedded store of one gateway process. Keys are kept as
// SHA-256 digests, so a client-chosen nonce costs a fixed amount of memory
// whatever its length. When a bound is reached, expired entries are swept;
// if none can be, the new entry is refused with ErrFull (the caller fails
// closed) rather than an unexpired one being forgotten, which would let it
// be replayed or a revoked token work again.
type Memory struct {
	o MemoryOptions

	mu      sync.Mutex
	nonces  map[[sha256.Size]byte]int64 // digest → expiry (unix nanoseconds)
	revoked map[string]int64            // jti → expiry (unix nanoseconds)
	// lastSweep is when a full map was last swept (unix nanoseconds, by
	// map): a full store sweeps at most once a second, so a flood of new
	// entries into a full store costs a map probe each, not a full scan.
	lastNonceSweep, lastRevokeSweep int64
}

// sweepEvery bounds how often a full map is scanned for expired entries.
const sweepEvery = int64(time.Second)

// NewMemory returns an empty store.
func NewMemory(o MemoryOptions) *Memory {
	if o.MaxNonces <= 0 {
		o.MaxNonces = 1_000_000
	}
	if o.MaxRevocations <= 0 {
		o.MaxRevocations = 100_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Memory{o: o, nonces: make(map[[sha256.Size]byte]int64), revoked: make(map[string]int64)}
}

// maxJTI bounds a revoked token id: the gateway's own are 22 characters.
const maxJTI = 256

// Claim implements Nonces.
func (m *Memory) Claim(_ context.Context, key string, ttl time.Duration) (bool, error) {
	d := sha256.Sum256([]byte(key))
	now := m.o.Now().UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	if exp, ok := m.nonces[d]; ok && exp > now {
		return false, nil
	}
	if len(m.nonces) >= m.o.MaxNonces && sweepFull(m.nonces, now, &m.lastNonceSweep) == 0 {
		return false, fmt.Errorf("nonce not recorded: %w", ErrFull)
	}
	m.nonces[d] = now + int64(ttl)
	return true, nil
}

// Revoke implements Revocations.
func (m *Memory) Revoke(_ context.Context, jti string, until time.Time) error {
	if jti == "" || len(jti) > maxJTI {
		return fmt.Errorf("revoke: token id of %d bytes; want 1 to %d", len(jti), maxJTI)
	}
	now := m.o.Now().UnixNano()
	if until.UnixNano() <= now {
		return nil // expired already: nothing to remember
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.revoked[jti]; !ok && len(m.revoked) >= m.o.MaxRevocations && sweepFull(m.revoked, now, &m.lastRevokeSweep) == 0 {
		return fmt.Errorf("revocation not recorded: %w", ErrFull)
	}
	m.revoked[jti] = max(m.revoked[jti], until.UnixNano())
	return nil
}

// Revoked implements Revocations.
func (m *Memory) Revoked(_ context.Context, jti string) (bool, error) {
	now := m.o.Now().UnixNano()
	m.mu.Lock()
	exp, ok := m.revoked[jti]
	m.mu.Unlock()
	return ok && exp > now, nil
}

// Len returns the number of nonces and revocations held (expired ones
// included until swept).
func (m *Memory) Len() (nonces, revocations int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.nonces), len(m.revoked)
}

// sweepFull sweeps a full map unless it was swept less than sweepEvery
// ago, and returns how many entries it deleted.
func sweepFull[K comparable](m map[K]int64, now int64, last *int64) int {
	if now-*last < sweepEvery && *last != 0 {
		return 0
	}
	*last = now
	return sweep(m, now)
}

// sweep deletes expired entries and returns how many it deleted.
func sweep[K comparable](m map[K]int64, now int64) int {
	n := 0
	for k, exp := range m {
		if exp <= now {
			delete(m, k)
			n++
		}
	}
	return n
}

// snapshot is the persisted form: unexpired entries with their expiry in
// unix seconds (rounded up, so nothing is forgotten early).
type snapshot struct {
	Version int              `json:"version"`
	Revoked map[string]int64 `json:"revoked"`
	Nonces  map[string]int64 `json:"nonces"` // hex of the digest
}

const snapshotVersion = 1

// Snapshot writes the unexpired entries to w.
func (m *Memory) Snapshot(w io.Writer) error {
	now := m.o.Now().UnixNano()
	s := snapshot{Version: snapshotVersion, Revoked: map[string]int64{}, Nonces: map[string]int64{}}
	m.mu.Lock()
	for jti, exp := range m.revoked {
		if exp > now {
			s.Revoked[jti] = ceilSeconds(exp)
		}
	}
	for d, exp := range m.nonces {
		if exp > now {
			s.Nonces[hex.EncodeToString(d[:])] = ceilSeconds(exp)
		}
	}
	m.mu.Unlock()
	if err := json.NewEncoder(w).Encode(s); err != nil {
		return fmt.Errorf("state snapshot: %w", err)
	}
	return nil
}

// Restore adds the unexpired entries of a Snapshot to the store. Input is
// bounded by the store's own limits.
func (m *Memory) Restore(r io.Reader) error {
	var s snapshot
	if err := json.NewDecoder(r).Decode(&s); err != nil {
		return fmt.Errorf("state snapshot: %w", err)
	}
	if s.Version != snapshotVersion {
		return fmt.Errorf("state snapshot: version %d; want %d", s.Version, snapshotVersion)
	}
	now := m.o.Now().UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	for jti, sec := range s.Revoked {
		exp := sec * int64(time.Second)
		if exp > now && jti != "" && len(jti) <= maxJTI && len(m.revoked) < m.o.MaxRevocations {
			m.revoked[jti] = max(m.revoked[jti], exp)
		}
	}
	for h, sec := range s.Nonces {
		var d [sha256.Size]byte
		exp := sec * int64(time.Second)
		if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("state snapshot: nonce digest %.16q is not 64 hex digits", h)
		} else {
			copy(d[:], b)
		}
		if exp > now && len(m.nonces) < m.o.MaxNonces {
			m.nonces[d] = max(m.nonces[d], exp)
		}
	}
	return nil
}

func ceilSeconds(ns int64) int64 { return (ns + int64(time.Second) - 1) / int64(time.Second) }
