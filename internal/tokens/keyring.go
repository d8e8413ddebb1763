// Package tokens makes Breakwater an OAuth2 authorization server for the
// client credentials grant: the gateway's signing keys (KeyRing, with
// rotation and a JWKS), the token, introspection and revocation endpoints and
// the RFC 8414 metadata (Server), and the X-Gateway-Identity token that tells
// an upstream who called it (KeyRing.Identity).
package tokens

import (
	"bytes"
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
	// keyStoreTimeout bounds one synchronisation with KeyRingOptions.Store
	// (each call is also bounded by the store itself).
	keyStoreTimeout = 3 * time.Second
	// maxSaveAttempts bounds the load-merge-save rounds of one
	// synchronisation when other instances keep saving first.
	maxSaveAttempts = 5
)

// KeyRingOptions configure a KeyRing.
type KeyRingOptions struct {
	// Dir holds KeyFileName (created 0700 when missing). Required, also
	// with a Store: the file is then the local copy the ring falls back on
	// while the store is unavailable.
	Dir string
	// Store, when set, shares the keys with every instance using the same
	// store (NewRedisKeyStore). The ring merges the store's keys into its
	// own and saves the union with compare-and-set at start, on every
	// maintenance tick and on Configure; an unknown kid makes it re-read
	// the store (at most once per 10s). A store that fails is logged and
	// retried on the next tick: the ring never blocks or fails because of
	// it. nil: the key file in Dir only.
	Store KeyStore
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
// Several instances may share Dir, or a Store: each merges the shared keys
// into its ring before it changes anything, and re-reads them when asked for
// an unknown kid, so they converge on the same keys. With a Store, saves
// are compare-and-set, so two instances rotating in the same instant keep
// both keys (all settle on one; the other is retired and stays published
// until its tokens have expired);
// through a shared Dir, without a file lock, both keys stay valid too, but
// one instance's write may hide the other's key until its next tick.
type KeyRing struct {
	path   string
	dir    string
	issuer string
	now    func() time.Time
	log    *slog.Logger
	store  KeyStore // nil: the file only
	cur    atomic.Pointer[snapshot]
	shared atomic.Bool // the last use of store succeeded

	mu          sync.Mutex // guards everything below
	alg         string
	rotateEvery time.Duration
	maxTTL      time.Duration
	entries     []*entry
	lastReread  time.Time
	fileData    []byte // the key file's content as last read or written
	storeFailed bool   // the last use of store failed (logged once)
	algChanged  bool   // replace keys of another algorithm at the next normalize
}

// OpenKeyRing loads Dir/signing-keys.json, creating Dir (0700) and the file
// (0600, written atomically) and generating the first key when there is
// none. A key file readable or writable by group or others is refused.
// With a Store, the store's keys are merged in and the result saved to
// both; a store that is unavailable (or holds content the ring cannot
// read, which it then leaves alone) is logged, and the ring starts from the
// file alone, within keyStoreTimeout (3s) at worst.
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
		store:       o.Store,
		alg:         o.Algorithm,
		rotateEvery: o.RotateEvery,
		maxTTL:      max(o.MaxTokenTTL, IdentityTTL),
		algChanged:  true, // the keys may come from another config
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
	recs, data, _, err := readKeyFile(k.path)
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
	k.fileData = data
	k.mu.Lock()
	defer k.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), keyStoreTimeout)
	defer cancel()
	if err := k.syncLocked(ctx, k.now()); err != nil {
		return nil, err
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
// (the old key stays published until its tokens have expired). Instances
// sharing the keys sign with the shared active key whatever its algorithm,
// so during a rolling reload they follow the first instance that switched;
// each makes keys of its own configured algorithm when it rotates. The ring
// remembers the longest token lifetime each key was used with, so lowering
// maxTokenTTL never drops a key that signed a still-valid token.
func (k *KeyRing) Configure(alg string, rotateEvery, maxTokenTTL time.Duration) error {
	if err := checkParams(alg, rotateEvery, maxTokenTTL); err != nil {
		return fmt.Errorf("key ring: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if alg != k.alg {
		k.algChanged = true
	}
	k.alg, k.rotateEvery, k.maxTTL = alg, rotateEvery, max(maxTokenTTL, IdentityTTL)
	ctx, cancel := context.WithTimeout(context.Background(), keyStoreTimeout)
	defer cancel()
	err := k.maintainLocked(ctx, k.now())
	k.publish() // the snapshot carries maxTTL
	return err
}

// Start runs the rotation in a goroutine until ctx is done and returns at
// once. Call it once. The ring checks the key file and its keys every
// minute (more often for short rotate_every): it pre-publishes the next key,
// rotates when the active key is older than RotateEvery, drops retired keys
// once every token they signed has expired, and persists every change (to
// the Store too, which it also re-reads on every tick).
func (k *KeyRing) Start(ctx context.Context) {
	go func() {
		t := time.NewTicker(k.tickInterval())
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := k.maintain(ctx); err != nil {
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
func (k *KeyRing) maintain(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, keyStoreTimeout)
	defer cancel()
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.maintainLocked(ctx, k.now())
}

func (k *KeyRing) maintainLocked(ctx context.Context, now time.Time) error {
	before := k.encodeLocked()
	k.lastReread = now
	if _, err := k.mergeFileLocked(); err != nil {
		k.log.Warn("signing key file not merged", "err", err)
	}
	err := k.syncLocked(ctx, now)
	if !bytes.Equal(k.encodeLocked(), before) {
		k.publish()
	}
	return err
}

// syncLocked brings the ring to a consistent state at now and saves it:
// to the store (merging the store's keys first, compare-and-set, again
// after a conflict) and to the key file, each only when it is behind. A
// failing store is noted and skipped. Called with mu held.
func (k *KeyRing) syncLocked(ctx context.Context, now time.Time) error {
	if k.store != nil {
		k.noteStore(k.syncStoreLocked(ctx, now))
	}
	if _, err := k.normalize(now); err != nil {
		return err
	}
	if data := k.encodeLocked(); !bytes.Equal(data, k.fileData) {
		if err := k.persist(data); err != nil {
			return err
		}
	}
	return nil
}

// syncStoreLocked merges the store into the ring, normalizes it and saves
// it unless the store already holds exactly that. Content the ring cannot
// read is not overwritten (it may come from a newer version). Called with
// mu held.
func (k *KeyRing) syncStoreLocked(ctx context.Context, now time.Time) error {
	for range maxSaveAttempts {
		data, ver, err := k.store.Load(ctx)
		if err != nil {
			return err
		}
		if ver != "" {
			recs, err := decodeKeyFile(data)
			if err != nil {
				return fmt.Errorf("signing key store content %w; left as it is", err)
			}
			if err := k.mergeLocked(recs, "key store"); err != nil {
				k.log.Warn("signing keys in the store skipped", "err", err)
			}
		}
		if _, err := k.normalize(now); err != nil {
			return err
		}
		out := k.encodeLocked()
		if ver != "" && bytes.Equal(out, data) {
			return nil
		}
		err = k.store.Save(ctx, out, ver)
		if !errors.Is(err, ErrKeyStoreConflict) {
			return err
		}
		k.log.Debug("signing keys saved by another instance meanwhile; merging again")
	}
	return fmt.Errorf("signing keys not saved after %d attempts: %w", maxSaveAttempts, ErrKeyStoreConflict)
}

// noteStore records the outcome of a use of the store, logging when it
// starts and stops failing. Called with mu held.
func (k *KeyRing) noteStore(err error) {
	if err == nil {
		k.shared.Store(true)
		if k.storeFailed {
			k.storeFailed = false
			k.log.Info("signing keys shared through the store again")
		}
		return
	}
	k.shared.Store(false)
	if !k.storeFailed {
		k.storeFailed = true
		k.log.Warn("signing keys not shared: using the local key file until the store answers", "err", err)
		return
	}
	k.log.Debug("signing key store still failing", "err", err)
}

// Shared reports whether the last use of KeyRingOptions.Store succeeded:
// the ring holds the keys every instance shares. Always false without a
// Store.
func (k *KeyRing) Shared() bool { return k.shared.Load() }

// rereadLocked merges the key file and the store into the ring, without
// saving anything. Called with mu held.
func (k *KeyRing) rereadLocked(ctx context.Context, now time.Time) {
	k.lastReread = now
	if _, err := k.mergeFileLocked(); err != nil {
		k.log.Warn("signing key file not re-read", "err", err)
	}
	if k.store == nil {
		return
	}
	data, ver, err := k.store.Load(ctx)
	k.noteStore(err)
	if err != nil || ver == "" {
		return
	}
	recs, err := decodeKeyFile(data)
	if err != nil {
		k.log.Warn("signing key store not re-read", "err", fmt.Errorf("content %w", err))
		return
	}
	if err := k.mergeLocked(recs, "key store"); err != nil {
		k.log.Warn("signing keys in the store skipped", "err", err)
	}
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
		if !e.retired.IsZero() {
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
	if k.algChanged {
		// The configured algorithm changed (Configure, or a start with the
		// keys of another config): keys of another algorithm are replaced
		// now. Otherwise the shared active key is used whatever its
		// algorithm: instances configured differently for a moment (a
		// rolling reload) would else retire each other's keys on every
		// tick. New keys always have the configured algorithm.
		if active != nil && active.key.alg != k.alg {
			active = nil
		}
		if pending != nil && pending.key.alg != k.alg {
			pending = nil
		}
		k.algChanged = false
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
		if e.activated.IsZero() {
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
// kid makes the ring re-read its file and its Store (at most once per 10s)
// so that an instance sharing them learns the keys another one created.
// It is PublicKeyContext with a background context.
func (k *KeyRing) PublicKey(kid string) (pub crypto.PublicKey, alg string, ok bool) {
	return k.PublicKeyContext(context.Background(), kid)
}

// PublicKeyContext is PublicKey with a context for the re-read of the
// Store (which is also bounded by 3s). A known kid costs a map
// lookup and never waits.
func (k *KeyRing) PublicKeyContext(ctx context.Context, kid string) (pub crypto.PublicKey, alg string, ok bool) {
	if key, ok := k.cur.Load().byKID[kid]; ok {
		return key.pub, key.alg, true
	}
	if kid == "" || len(kid) > maxKIDLen {
		return nil, "", false
	}
	ctx, cancel := context.WithTimeout(ctx, keyStoreTimeout)
	defer cancel()
	k.mu.Lock()
	now := k.now()
	if now.Sub(k.lastReread) >= rereadEvery || now.Before(k.lastReread) {
		before := k.encodeLocked()
		k.rereadLocked(ctx, now)
		if !bytes.Equal(k.encodeLocked(), before) {
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
