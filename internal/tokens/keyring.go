// Package tokens makes Breakwater an OAuth2 authorization server for the
// client credentials grant: the gateway's signing keys (KeyRing, with
// rotation and a JWKS), the token, introspection and revocation endpoints and
// the RFC 8414 metadata (Server), and the X-Gateway-Identity token that tells
// an upstream who called it (KeyRing.Identity).
package tokens

import (
	"cmp"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// KeyFileName is the name of the key file inside KeyRingOptions.Dir.
	KeyFileName = "signing-keys.json"
	// IdentityTTL is the lifetime of an X-Gateway-Identity token.
	IdentityTTL = 60 * time.Second
	// DefaultIdentityIssuer is the iss of Identity tokens unless
	// KeyRingOptions.Issuer says otherwise.
	DefaultIdentityIssuer = "breakwater"

	// maxKeys bounds the ring (and the key file read back from disk).
	maxKeys = 32
	// maxKeyFileSize bounds the key file read from disk.
	maxKeyFileSize = 1 << 20
	// rereadEvery is the shortest interval between two reads of the key
	// file triggered by an unknown kid.
	rereadEvery = 10 * time.Second
	// dropGrace is kept on top of MaxTokenTTL before a retired key goes.
	dropGrace = time.Minute
	// prePublish is how long before its activation the next key appears in
	// the JWKS, so that verifiers caching the JWKS (max-age=60) know it
	// before the first token it signs. Bounded by RotateEvery/2.
	prePublish = 5 * time.Minute
	// clockSlack tolerates the time between a caller computing exp and Sign
	// checking it.
	clockSlack = 5 * time.Second
	// maxKIDLen bounds the kid that may trigger a re-read of the key file.
	maxKIDLen = 128
)

// KeyRingOptions configure a KeyRing.
type KeyRingOptions struct {
	// Dir holds KeyFileName (created 0700 when missing). Required.
	Dir string
	// Algorithm is EdDSA, ES256 or RS256. Required.
	Algorithm string
	// RotateEvery is the age at which the active key is replaced. Required (> 0).
	RotateEvery time.Duration
	// MaxTokenTTL is the longest lifetime of a token the ring signs; a
	// retired key is kept until MaxTokenTTL + 1m after its retirement.
	// Values below IdentityTTL are raised to IdentityTTL. Required (> 0).
	MaxTokenTTL time.Duration
	// Issuer is the iss of Identity tokens; "" means DefaultIdentityIssuer.
	Issuer string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives rotation events (kids only, never key material); nil
	// discards them.
	Logger *slog.Logger
}

// entry is one key of the ring with its life cycle. Guarded by KeyRing.mu.
type entry struct {
	key       *signingKey
	created   time.Time
	activated time.Time     // zero while pending (published, not yet signing)
	retired   time.Time     // zero while pending or active
	maxTTL    time.Duration // longest token lifetime while the key was active
}

// snapshot is what readers see; it is replaced, never modified.
type snapshot struct {
	active *signingKey
	maxTTL time.Duration
	byKID  map[string]*signingKey
	jwks   []byte
}

// KeyRing holds the gateway's signing keys. It lives for the whole process
// (it outlives config reloads). Sign, Identity, PublicKey and JWKS are safe
// for concurrent use and never block on rotation.
//
// Several instances may share Dir: each merges the key file into its ring
// before it changes anything, and re-reads it when asked for an unknown
// kid, so they converge on the same keys. Without a file lock two instances
// rotating in the same instant may each publish a key; both stay valid.
type KeyRing struct {
	path   string
	dir    string
	issuer string
	now    func() time.Time
	log    *slog.Logger
	cur    atomic.Pointer[snapshot]

	mu          sync.Mutex // guards everything below
	alg         string
	rotateEvery time.Duration
	maxTTL      time.Duration
	entries     []*entry
	lastReread  time.Time
}

// OpenKeyRing loads Dir/signing-keys.json, creating Dir (0700) and the file
// (0600, written atomically) and generating the first key when there is
// none. A key file readable or writable by group or others is refused.
func OpenKeyRing(o KeyRingOptions) (*KeyRing, error) {
	if o.Dir == "" {
		return nil, errors.New("key ring: no directory")
	}
	if err := checkParams(o.Algorithm, o.RotateEvery, o.MaxTokenTTL); err != nil {
		return nil, fmt.Errorf("key ring: %w", err)
	}
	k := &KeyRing{
		dir:         o.Dir,
		path:        keyFilePath(o.Dir),
		issuer:      cmp.Or(o.Issuer, DefaultIdentityIssuer),
		now:         o.Now,
		log:         o.Logger,
		alg:         o.Algorithm,
		rotateEvery: o.RotateEvery,
		maxTTL:      max(o.MaxTokenTTL, IdentityTTL),
	}
	if k.now == nil {
		k.now = time.Now
	}
	if k.log == nil {
		k.log = slog.New(slog.DiscardHandler)
	}
	if err := ensureDir(o.Dir, k.log); err != nil {
		return nil, err
	}
	recs, found, err := readKeyFile(k.path)
	if err != nil {
		return nil, err
	}
	if len(recs) > maxKeys {
		return nil, fmt.Errorf("key file %s holds %d keys, more than %d", k.path, len(recs), maxKeys)
	}
	for _, r := range recs {
		e, err := r.entry()
		if err != nil {
			return nil, fmt.Errorf("key file %s: %w", k.path, err)
		}
		k.entries = append(k.entries, e)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	changed, err := k.normalize(k.now())
	if err != nil {
		return nil, err
	}
	if changed || !found {
		if err := k.persist(); err != nil {
			return nil, err
		}
	}
	k.publish()
	return k, nil
}

func checkParams(alg string, rotateEvery, maxTTL time.Duration) error {
	if err := checkAlg(alg); err != nil {
		return err
	}
	if rotateEvery <= 0 {
		return fmt.Errorf("rotate_every %v: want a positive duration", rotateEvery)
	}
	if maxTTL <= 0 {
		return fmt.Errorf("maximum token lifetime %v: want a positive duration", maxTTL)
	}
	// Retired keys are kept for a token lifetime: rotating faster than the
	// ring can hold them would drop keys whose tokens are still valid.
	if n := (max(maxTTL, IdentityTTL)+dropGrace)/rotateEvery + 3; n > maxKeys {
		return fmt.Errorf("rotate_every %v is too short for tokens living %v: the ring keeps at most %d keys", rotateEvery, maxTTL, maxKeys)
	}
	return nil
}

// Configure applies a reloaded config. An algorithm change rotates at once
// (the old key stays published until its tokens have expired). The ring
// remembers the longest token lifetime each key was used with, so lowering
// maxTokenTTL never drops a key that signed a still-valid token.
func (k *KeyRing) Configure(alg string, rotateEvery, maxTokenTTL time.Duration) error {
	if err := checkParams(alg, rotateEvery, maxTokenTTL); err != nil {
		return fmt.Errorf("key ring: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.alg, k.rotateEvery, k.maxTTL = alg, rotateEvery, max(maxTokenTTL, IdentityTTL)
	err := k.maintainLocked(k.now())
	k.publish() // the snapshot carries maxTTL
	return err
}

// Start runs the rotation in a goroutine until ctx is done and returns at
// once. Call it once. The ring checks the key file and its keys every
// minute (more often for short rotate_every): it pre-publishes the next key,
// rotates when the active key is older than RotateEvery, drops retired keys
// once every token they signed has expired, and persists every change.
func (k *KeyRing) Start(ctx context.Context) {
	go func() {
		t := time.NewTicker(k.tickInterval())
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := k.maintain(); err != nil {
					k.log.Error("signing key maintenance failed", "err", err)
				}
			}
		}
	}()
}

func (k *KeyRing) tickInterval() time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	return min(max(k.rotateEvery/20, time.Second), time.Minute)
}

// maintain is one step of Start, at the ring's clock.
func (k *KeyRing) maintain() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.maintainLocked(k.now())
}

func (k *KeyRing) maintainLocked(now time.Time) error {
	merged, err := k.rereadLocked(now)
	if err != nil {
		k.log.Warn("signing key file not merged", "err", err)
	}
	changed, err := k.normalize(now)
	if err != nil {
		return err
	}
	if changed {
		if err := k.persist(); err != nil {
			return err
		}
	}
	if changed || merged {
		k.publish()
	}
	return nil
}

// normalize brings the entries to a consistent state at now: exactly one
// active key of the configured algorithm, at most one pending key, every
// other key retired, expired keys dropped. It reports whether anything
// changed.
func (k *KeyRing) normalize(now time.Time) (bool, error) {
	changed := false
	// Drop retired keys whose tokens have all expired.
	kept := k.entries[:0]
	for _, e := range k.entries {
		if !e.retired.IsZero() && now.After(e.retired.Add(e.maxTTL+dropGrace)) {
			k.log.Info("signing key dropped", "kid", e.key.kid)
			changed = true
			continue
		}
		kept = append(kept, e)
	}
	clear(k.entries[len(kept):])
	k.entries = kept

	var active, pending *entry
	for _, e := range k.entries {
		if !e.retired.IsZero() || e.key.alg != k.alg {
			continue
		}
		if !e.activated.IsZero() {
			if active == nil || e.activated.After(active.activated) ||
				(e.activated.Equal(active.activated) && e.key.kid > active.key.kid) {
				active = e
			}
		} else if pending == nil || e.created.After(pending.created) ||
			(e.created.Equal(pending.created) && e.key.kid > pending.key.kid) {
			pending = e
		}
	}
	prePub := min(prePublish, k.rotateEvery/2)
	switch {
	case active == nil && pending != nil:
		active, pending = pending, nil
		active.activated = now
		changed = true
		k.log.Info("signing key activated", "kid", active.key.kid, "alg", active.key.alg)
	case active != nil && now.Sub(active.activated) >= k.rotateEvery && pending != nil:
		active, pending = pending, nil
		active.activated = now
		changed = true
		k.log.Info("signing key rotated", "kid", active.key.kid, "alg", active.key.alg)
	}
	if active == nil || now.Sub(active.activated) >= k.rotateEvery {
		e, err := k.newEntry(now)
		if err != nil {
			return changed, err
		}
		e.activated = now
		active = e
		changed = true
		k.log.Info("signing key created and activated", "kid", e.key.kid, "alg", e.key.alg)
	}
	if pending == nil && now.Sub(active.activated) >= k.rotateEvery-prePub {
		e, err := k.newEntry(now)
		if err != nil {
			return changed, err
		}
		pending = e
		changed = true
		k.log.Info("next signing key published", "kid", e.key.kid, "alg", e.key.alg)
	}
	if active.maxTTL < k.maxTTL {
		active.maxTTL = k.maxTTL
		changed = true
	}
	for _, e := range k.entries {
		if e != active && e != pending && e.retired.IsZero() {
			e.retired = now
			e.maxTTL = max(e.maxTTL, k.maxTTL)
			changed = true
			if !e.activated.IsZero() {
				k.log.Info("signing key retired", "kid", e.key.kid, "alg", e.key.alg)
			}
		}
	}
	if len(k.entries) > maxKeys {
		// Only reachable through a key file written by someone else: keep
		// the active and pending keys and the newest others.
		slices.SortFunc(k.entries, func(a, b *entry) int { return b.created.Compare(a.created) })
		kept := []*entry{active}
		if pending != nil {
			kept = append(kept, pending)
		}
		for _, e := range k.entries {
			switch {
			case e == active || e == pending:
			case len(kept) < maxKeys:
				kept = append(kept, e)
			default:
				k.log.Warn("signing key dropped: ring full", "kid", e.key.kid)
			}
		}
		k.entries = kept
		changed = true
	}
	return changed, nil
}

func (k *KeyRing) newEntry(now time.Time) (*entry, error) {
	key, err := generateKey(k.alg)
	if err != nil {
		return nil, fmt.Errorf("key ring: %w", err)
	}
	e := &entry{key: key, created: now, maxTTL: k.maxTTL}
	k.entries = append(k.entries, e)
	return e, nil
}

// publish makes the entries visible to readers. Called with mu held.
func (k *KeyRing) publish() {
	s := &snapshot{byKID: make(map[string]*signingKey, len(k.entries)), maxTTL: k.maxTTL}
	var set struct {
		Keys []publicJWK `json:"keys"`
	}
	set.Keys = make([]publicJWK, 0, len(k.entries))
	var best, fallback *entry
	for _, e := range k.entries {
		s.byKID[e.key.kid] = e.key
		set.Keys = append(set.Keys, e.key.jwk)
		if e.activated.IsZero() || e.key.alg != k.alg {
			continue
		}
		if fallback == nil || e.activated.After(fallback.activated) {
			fallback = e
		}
		if e.retired.IsZero() && (best == nil || e.activated.After(best.activated)) {
			best = e
		}
	}
	switch {
	case best != nil:
		s.active = best.key
	case fallback != nil:
		// A merged key file retired our key before normalize ran: sign with
		// it until the next maintenance picks the successor.
		s.active = fallback.key
	default:
		s.active = k.cur.Load().active
	}
	b, err := json.Marshal(set)
	if err != nil { // cannot happen: strings only
		panic(fmt.Sprintf("tokens: encoding JWKS: %v", err))
	}
	s.jwks = b
	k.cur.Store(s)
}

// Sign signs claims with the active key; the header carries kid and, when
// typ is not empty, typ. The claims must have an exp no later than now +
// MaxTokenTTL: the ring keeps a retired key only that long.
func (k *KeyRing) Sign(claims jwt.Claims, typ string) (string, error) {
	s := k.cur.Load()
	exp, err := claims.GetExpirationTime()
	if err != nil {
		return "", fmt.Errorf("signing token: reading exp: %w", err)
	}
	if exp == nil {
		return "", errors.New("signing token: no exp claim")
	}
	if exp.After(k.now().Add(s.maxTTL + clockSlack)) {
		return "", fmt.Errorf("signing token: exp is more than %v away, longer than the key ring keeps its keys", s.maxTTL)
	}
	t := jwt.NewWithClaims(s.active.method, claims)
	t.Header["kid"] = s.active.kid
	if typ != "" {
		t.Header["typ"] = typ
	}
	out, err := t.SignedString(s.active.priv)
	if err != nil {
		return "", fmt.Errorf("signing token: %w", err)
	}
	return out, nil
}

// PublicKey returns the public key of kid and its algorithm: the active
// key, the pre-published next key and retired keys still kept. An unknown
// kid makes the ring re-read its file (at most once per 10s) so that an
// instance sharing the directory learns the keys another one created.
func (k *KeyRing) PublicKey(kid string) (pub crypto.PublicKey, alg string, ok bool) {
	if key, ok := k.cur.Load().byKID[kid]; ok {
		return key.pub, key.alg, true
	}
	if kid == "" || len(kid) > maxKIDLen {
		return nil, "", false
	}
	k.mu.Lock()
	now := k.now()
	if now.Sub(k.lastReread) >= rereadEvery || now.Before(k.lastReread) {
		merged, err := k.rereadLocked(now)
		if err != nil {
			k.log.Warn("signing key file not re-read", "err", err)
		}
		if merged {
			k.publish()
		}
	}
	k.mu.Unlock()
	if key, ok := k.cur.Load().byKID[kid]; ok {
		return key.pub, key.alg, true
	}
	return nil, "", false
}

// JWKS returns the public keys as a JWK Set, {"keys":[…]}, each with kid,
// alg and use "sig". The returned slice must not be modified.
func (k *KeyRing) JWKS() []byte { return k.cur.Load().jwks }
