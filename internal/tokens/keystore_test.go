package tokens

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/breakwater/breakwater/internal/redisconn"
	"github.com/breakwater/breakwater/internal/testutil"
)

// dialRedis connects to srv with a breaker that trips on the first failure
// and probes again after a few milliseconds, so outage tests run fast.
func dialRedis(t testing.TB, srv *testutil.Redis) *redisconn.Conn {
	t.Helper()
	a, err := redisconn.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	c, err := redisconn.New(t.Context(), redisconn.Options{
		Address: a, CommandTimeout: 2 * time.Second, DialTimeout: time.Second,
		Breaker: redisconn.BreakerOptions{Failures: 1, MinCooldown: 5 * time.Millisecond, MaxCooldown: 20 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func storeRing(t testing.TB, dir string, clk *clock, store KeyStore, log *slog.Logger) *KeyRing {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	k, err := OpenKeyRing(KeyRingOptions{Dir: dir, Algorithm: EdDSA, RotateEvery: time.Hour, MaxTokenTTL: 15 * time.Minute,
		Store: store, Now: clk.Now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// storedKIDs returns the kids held in Redis under key.
func storedKIDs(t *testing.T, srv *testutil.Redis, key string) []string {
	t.Helper()
	raw, err := srv.Do("GET", key)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := decodeKeyFile([]byte(raw))
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.KID)
	}
	return out
}

// until calls f until it reports true, for at most 10 s of real time.
func until(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRedisKeyStoreCompareAndSet(t *testing.T) {
	srv := testutil.StartRedis(t)
	s := NewRedisKeyStore(dialRedis(t, srv), "access")
	ctx := t.Context()
	data, ver, err := s.Load(ctx)
	if err != nil || data != nil || ver != "" {
		t.Fatalf("empty store: %q %q %v", data, ver, err)
	}
	one, two, three := []byte(`{"version":1,"keys":[]}`), []byte(`{"version":1, "keys":[]}`), []byte(`{"version":1,  "keys":[]}`)
	if err := s.Save(ctx, one, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, two, ""); !errors.Is(err, ErrKeyStoreConflict) {
		t.Fatalf("create over an existing value: %v", err)
	}
	data, ver, err = s.Load(ctx)
	if err != nil || !bytes.Equal(data, one) || ver != version(one) {
		t.Fatalf("load: %q %q %v", data, ver, err)
	}
	if err := s.Save(ctx, two, ver); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, three, ver); !errors.Is(err, ErrKeyStoreConflict) {
		t.Fatalf("stale version: %v", err)
	}
	if err := s.Save(ctx, three, "0000000000000000000000000000000000000000"); !errors.Is(err, ErrKeyStoreConflict) {
		t.Fatalf("forged version: %v", err)
	}
	if got, _ := srv.Do("GET", "bw:keys:access"); got != string(two) {
		t.Fatalf("stored %q, want the JSON as saved", got)
	}
	for _, bad := range [][]byte{nil, {}, bytes.Repeat([]byte(" "), maxKeyFileSize+1)} {
		if err := s.Save(ctx, bad, version(two)); err == nil || errors.Is(err, ErrKeyStoreConflict) {
			t.Fatalf("saved %d bytes: %v", len(bad), err)
		}
	}
	// A value larger than the limit is refused after reading at most the limit.
	if _, err := srv.Do("SET", "bw:keys:access", strings.Repeat(" ", maxKeyFileSize+10)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Load(ctx); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("oversized value: %v", err)
	}
	// The names are apart.
	if data, _, err := NewRedisKeyStore(dialRedis(t, srv), "identity").Load(ctx); err != nil || data != nil {
		t.Fatalf("identity store sees %q, %v", data, err)
	}
}

func TestRedisSharedRing(t *testing.T) {
	srv := testutil.StartRedis(t)
	conn := dialRedis(t, srv)
	clk := newClock()
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dirA, dirB := t.TempDir(), t.TempDir()
	a := storeRing(t, dirA, clk, NewRedisKeyStore(conn, "access"), log)
	b := storeRing(t, dirB, clk, NewRedisKeyStore(dialRedis(t, srv), "access"), log)
	if !a.Shared() || !b.Shared() {
		t.Fatal("rings not shared")
	}
	if activeKID(a) != activeKID(b) {
		t.Fatal("second instance did not adopt the shared key")
	}
	if got := storedKIDs(t, srv, "bw:keys:access"); len(got) != 1 || got[0] != activeKID(a) {
		t.Fatalf("redis holds %v", got)
	}
	// Both directories hold the local copy, identical to Redis.
	raw, _ := srv.Do("GET", "bw:keys:access")
	for _, dir := range []string{dirA, dirB} {
		if file, err := os.ReadFile(filepath.Join(dir, KeyFileName)); err != nil || string(file) != raw {
			t.Fatalf("local copy in %s differs from redis: %v", dir, err)
		}
	}
	// Another ring name is another set of keys.
	id := storeRing(t, t.TempDir(), clk, NewRedisKeyStore(conn, "identity"), nil)
	if activeKID(id) == activeKID(a) {
		t.Fatal("identity ring shares the access keys")
	}

	// a rotates (algorithm change); b learns the new key on an unknown kid.
	if err := a.Configure(ES256, time.Hour, 15*time.Minute); err != nil {
		t.Fatal(err)
	}
	tok := signAt(t, a, clk, 15*time.Minute)
	if err := verifies(b, tok, clk.Now()); err != nil {
		t.Fatalf("b does not learn a's key from redis: %v", err)
	}
	// a rotates again by age; b learns it by its periodic maintenance,
	// without an unknown-kid re-read.
	clk.Add(time.Hour)
	if err := a.maintain(t.Context()); err != nil {
		t.Fatal(err)
	}
	newKID := activeKID(a)
	if _, ok := b.cur.Load().byKID[newKID]; ok {
		t.Fatal("b knew the key before its maintenance")
	}
	if err := b.maintain(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.cur.Load().byKID[newKID]; !ok || activeKID(b) != newKID {
		t.Fatalf("after maintenance b signs with %s, a with %s", activeKID(b), newKID)
	}
	if err := verifies(a, signAt(t, b, clk, time.Minute), clk.Now()); err != nil {
		t.Fatalf("a does not verify b's token: %v", err)
	}
	// A restart of b on an empty directory gets every key from redis.
	b2, err := OpenKeyRing(KeyRingOptions{Dir: t.TempDir(), Algorithm: ES256, RotateEvery: time.Hour, MaxTokenTTL: 15 * time.Minute,
		Store: NewRedisKeyStore(conn, "access"), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(kids(t, b2), " "), strings.Join(kids(t, a), " "); got != want || activeKID(b2) != activeKID(a) {
		t.Fatalf("restarted instance holds %s, want %s", got, want)
	}
	// Nothing of the private keys reached the logs.
	recs, _ := decodeKeyFile([]byte(raw))
	for _, r := range recs {
		if bytes.Contains(logs.Bytes(), []byte(base64.StdEncoding.EncodeToString(r.PrivateKey)[:20])) {
			t.Fatal("private key in the logs")
		}
	}
}

// raceStore holds every first Load of a round until n rings have loaded,
// so that they all save against the same version: all but one conflict.
type raceStore struct {
	KeyStore
	mu        sync.Mutex
	n, loaded int
	gate      chan struct{}
	conflicts atomic.Int64
}

func (s *raceStore) arm(n int) {
	s.mu.Lock()
	s.n, s.loaded, s.gate = n, 0, make(chan struct{})
	s.mu.Unlock()
}

func (s *raceStore) Load(ctx context.Context) ([]byte, string, error) {
	data, ver, err := s.KeyStore.Load(ctx)
	s.mu.Lock()
	gate := s.gate
	if gate != nil {
		s.loaded++
		if s.loaded == s.n {
			close(gate)
			s.gate = nil
		}
	}
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, "", ctx.Err()
		}
	}
	return data, ver, err
}

func (s *raceStore) Save(ctx context.Context, data []byte, ver string) error {
	err := s.KeyStore.Save(ctx, data, ver)
	if errors.Is(err, ErrKeyStoreConflict) {
		s.conflicts.Add(1)
	}
	return err
}

func TestRedisConcurrentRotationLosesNoKey(t *testing.T) {
	srv := testutil.StartRedis(t)
	clk := newClock()
	const n = 4
	store := &raceStore{KeyStore: NewRedisKeyStore(dialRedis(t, srv), "access")}
	rings := make([]*KeyRing, n)
	for i := range rings {
		rings[i] = storeRing(t, t.TempDir(), clk, store, nil)
	}
	for round := range 4 {
		// Every instance finds the active key too old at the same moment
		// (no pre-published key: they were all down) and makes its own.
		clk.Add(2 * time.Hour)
		store.arm(n)
		var wg sync.WaitGroup
		toks := make([]string, n)
		errs := make([]error, n)
		for i, k := range rings {
			wg.Go(func() {
				if errs[i] = k.maintain(t.Context()); errs[i] == nil {
					var err error
					toks[i], err = k.Sign(jwtClaims(clk.Now().Add(15*time.Minute)), "at+jwt")
					errs[i] = err
				}
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil || !rings[i].Shared() {
				t.Fatalf("round %d ring %d: %v (shared %v)", round, i, err, rings[i].Shared())
			}
		}
		stored := storedKIDs(t, srv, "bw:keys:access")
		for i, k := range rings {
			kid := activeKIDOf(t, toks[i])
			if !strings.Contains(strings.Join(stored, " "), kid) {
				t.Fatalf("round %d: key %s that signed ring %d's token is not in redis %v", round, kid, i, stored)
			}
			_ = k
		}
		// After one more tick every instance knows every key and signs
		// with the same one.
		for _, k := range rings {
			if err := k.maintain(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		for i, k := range rings {
			if activeKID(k) != activeKID(rings[0]) {
				t.Fatalf("round %d: ring %d signs with %s, ring 0 with %s", round, i, activeKID(k), activeKID(rings[0]))
			}
			for j, tok := range toks {
				if err := verifies(k, tok, clk.Now()); err != nil {
					t.Fatalf("round %d: ring %d rejects ring %d's token: %v", round, i, j, err)
				}
			}
		}
	}
	if store.conflicts.Load() == 0 {
		t.Fatal("the race produced no conflict: the test tests nothing")
	}
	t.Logf("%d conflicts resolved", store.conflicts.Load())
}

func TestRedisDownAtStartThenBack(t *testing.T) {
	srv := testutil.StartRedis(t)
	srv.Stop()
	conn := dialRedis(t, srv) // the breaker starts open
	clk := newClock()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	dirA := t.TempDir()
	start := time.Now()
	a := storeRing(t, dirA, clk, NewRedisKeyStore(conn, "access"), log)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("start blocked %v on redis", d)
	}
	if a.Shared() {
		t.Fatal("shared while redis is down")
	}
	if _, err := os.Stat(filepath.Join(dirA, KeyFileName)); err != nil {
		t.Fatalf("no local key file: %v", err)
	}
	tok := signAt(t, a, clk, 15*time.Minute)
	// Ticks while redis is down warn once.
	for range 3 {
		if err := a.maintain(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if c := strings.Count(logs.String(), "signing keys not shared"); c != 1 {
		t.Fatalf("%d warnings, want 1:\n%s", c, logs.String())
	}
	// A restart of a while redis is still down keeps its key (the file).
	a2 := storeRing(t, dirA, clk, NewRedisKeyStore(conn, "access"), nil)
	if activeKID(a2) != activeKID(a) {
		t.Fatal("restart without redis lost the key")
	}

	srv.Start()
	until(t, "a shares its keys", func() bool {
		if err := a.maintain(t.Context()); err != nil {
			t.Fatal(err)
		}
		return a.Shared()
	})
	if !strings.Contains(logs.String(), "shared through the store again") {
		t.Fatal("recovery not logged")
	}
	if got := storedKIDs(t, srv, "bw:keys:access"); len(got) != 1 || got[0] != activeKID(a) {
		t.Fatalf("redis holds %v, want a's key", got)
	}
	b := storeRing(t, t.TempDir(), clk, NewRedisKeyStore(dialRedis(t, srv), "access"), nil)
	if activeKID(b) != activeKID(a) {
		t.Fatal("b does not use the key a created while redis was down")
	}
	if err := verifies(b, tok, clk.Now()); err != nil {
		t.Fatal(err)
	}
}

func TestRedisOutageDivergenceConverges(t *testing.T) {
	srv := testutil.StartRedis(t)
	clk := newClock()
	a := storeRing(t, t.TempDir(), clk, NewRedisKeyStore(dialRedis(t, srv), "access"), nil)
	b := storeRing(t, t.TempDir(), clk, NewRedisKeyStore(dialRedis(t, srv), "access"), nil)
	srv.Stop()
	// Both rotate alone during the outage: each has a key the other lacks.
	clk.Add(2 * time.Hour)
	for _, k := range []*KeyRing{a, b} {
		if err := k.maintain(t.Context()); err != nil {
			t.Fatal(err)
		}
		if k.Shared() {
			t.Fatal("shared while redis is down")
		}
	}
	if activeKID(a) == activeKID(b) {
		t.Fatal("independent rotations made the same key")
	}
	tokA, tokB := signAt(t, a, clk, 15*time.Minute), signAt(t, b, clk, 15*time.Minute)
	srv.Start() // empty: the server keeps nothing on disk
	until(t, "both shared and converged", func() bool {
		for _, k := range []*KeyRing{a, b} {
			if err := k.maintain(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		return a.Shared() && b.Shared() && activeKID(a) == activeKID(b)
	})
	// The instance that saved first learns the other's key on an unknown
	// kid (or at its next tick).
	clk.Add(rereadEvery)
	for _, k := range []*KeyRing{a, b} {
		for _, tok := range []string{tokA, tokB} {
			if err := verifies(k, tok, clk.Now()); err != nil {
				t.Fatalf("token of the outage rejected after recovery: %v", err)
			}
		}
	}
}

func TestKeyStoreBadContent(t *testing.T) {
	srv := testutil.StartRedis(t)
	conn := dialRedis(t, srv)
	clk := newClock()
	// A valid record to tamper with, and more keys than a ring holds.
	var kf keyFile
	for range maxKeys + 1 {
		o := openRing(t, t.TempDir(), EdDSA, clk)
		raw, _ := os.ReadFile(filepath.Join(o.dir, KeyFileName))
		var one keyFile
		if err := json.Unmarshal(raw, &one); err != nil {
			t.Fatal(err)
		}
		kf.Keys = append(kf.Keys, one.Keys...)
	}
	kf.Version = keyFileVersion
	rec := kf.Keys[0]
	secretB64 := base64.StdEncoding.EncodeToString(rec.PrivateKey)
	blob := func(recs ...keyRecord) string {
		b, _ := json.Marshal(keyFile{Version: keyFileVersion, Keys: recs})
		return string(b)
	}
	with := func(f func(*keyRecord)) keyRecord { r := rec; f(&r); return r }
	tooMany, _ := json.Marshal(kf)
	tests := []struct {
		name    string
		content string
		kept    bool // the blob is left as it is (not readable)
	}{
		{"not json", "{nope " + secretB64, true},
		{"wrong structure", `{"version":1,"keys":"` + secretB64 + `"}`, true},
		{"newer version", `{"version":2,"keys":[]}`, true},
		{"too large", strings.Repeat(" ", maxKeyFileSize+1), true},
		{"kid mismatch", blob(with(func(r *keyRecord) { r.KID = "forged" })), false},
		{"kid path traversal", blob(with(func(r *keyRecord) { r.KID = "../../etc/passwd" })), false},
		{"alg mismatch", blob(with(func(r *keyRecord) { r.Alg = RS256 })), false},
		{"alg HS256", blob(with(func(r *keyRecord) { r.Alg = "HS256" })), false},
		{"alg none", blob(with(func(r *keyRecord) { r.Alg = "none" })), false},
		{"garbage key", blob(with(func(r *keyRecord) { r.PrivateKey = []byte("x") })), false},
		{"no created_at", blob(with(func(r *keyRecord) { r.CreatedAt = time.Time{} })), false},
		{"zero ttl", blob(with(func(r *keyRecord) { r.MaxTokenTTLSeconds = 0 })), false},
		{"too many keys", string(tooMany), false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("bad%d", i)
			if _, err := srv.Do("SET", RedisKeyPrefix+name, tt.content); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			k := storeRing(t, t.TempDir(), clk, NewRedisKeyStore(conn, name), slog.New(slog.NewTextHandler(&logs, nil)))
			if n := len(k.cur.Load().byKID); n < 1 || n > maxKeys {
				t.Fatalf("ring holds %d keys", n)
			}
			if strings.Contains(logs.String(), secretB64[:16]) {
				t.Fatal("log quotes key material")
			}
			got, _ := srv.Do("GET", RedisKeyPrefix+name)
			if tt.kept {
				if got != tt.content || k.Shared() {
					t.Fatalf("unreadable content overwritten (shared %v)", k.Shared())
				}
				return
			}
			if !k.Shared() {
				t.Fatal("not shared")
			}
			if tt.name != "too many keys" {
				if _, ok := k.cur.Load().byKID[rec.KID]; ok {
					t.Fatal("tampered record adopted")
				}
				if strings.Contains(got, "forged") || strings.Contains(got, "etc/passwd") || strings.Contains(got, "HS256") {
					t.Fatal("tampered record kept in the store")
				}
			}
		})
	}
}

// memStore is a KeyStore in memory whose calls can be made to fail.
type memStore struct {
	mu    sync.Mutex
	data  []byte
	err   error
	loads int
}

func (m *memStore) Load(context.Context) ([]byte, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.loads++
	if m.err != nil {
		return nil, "", m.err
	}
	if m.data == nil {
		return nil, "", nil
	}
	return m.data, version(m.data), nil
}

func (m *memStore) Save(_ context.Context, data []byte, ver string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	if (m.data == nil && ver != "") || (m.data != nil && version(m.data) != ver) {
		return ErrKeyStoreConflict
	}
	m.data = bytes.Clone(data)
	return nil
}

func (m *memStore) setErr(err error) { m.mu.Lock(); m.err = err; m.mu.Unlock() }

func TestUnknownKIDRereadsStoreAtMostEvery10s(t *testing.T) {
	clk := newClock()
	s := &memStore{}
	a := storeRing(t, t.TempDir(), clk, s, nil)
	b := storeRing(t, t.TempDir(), clk, s, nil)
	for _, kid := range []string{"", strings.Repeat("k", maxKIDLen+1)} {
		before := s.loads
		if _, _, ok := b.PublicKey(kid); ok || s.loads != before {
			t.Fatalf("kid of %d bytes: found %v, %d loads", len(kid), ok, s.loads-before)
		}
	}
	if err := a.Configure(ES256, time.Hour, 15*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := verifies(b, signAt(t, a, clk, time.Minute), clk.Now()); err != nil {
		t.Fatal(err)
	}
	loads := s.loads
	for i := range 100 {
		if _, _, ok := b.PublicKey(fmt.Sprintf("unknown-%d", i)); ok {
			t.Fatal("unknown kid found")
		}
	}
	if s.loads != loads {
		t.Fatalf("%d store loads for 100 unknown kids within 10s", s.loads-loads)
	}
	clk.Add(rereadEvery)
	b.PublicKey("unknown")
	if s.loads != loads+1 {
		t.Fatalf("%d store loads after 10s, want 1", s.loads-loads)
	}
	// A failing store makes PublicKey fail closed for unknown kids, not hang.
	s.setErr(errors.New("store down"))
	clk.Add(rereadEvery)
	if _, _, ok := b.PublicKey("unknown"); ok || b.Shared() {
		t.Fatal("unknown kid with a failing store")
	}
	if _, _, ok := b.PublicKey(activeKID(a)); !ok {
		t.Fatal("known kid refused while the store fails")
	}
}

func TestStoreSaveFailureKeepsLocalCopy(t *testing.T) {
	clk := newClock()
	s := &memStore{err: errors.New("store down")}
	dir := t.TempDir()
	k := storeRing(t, dir, clk, s, nil)
	if k.Shared() || s.data != nil {
		t.Fatal("saved through a failing store")
	}
	clk.Add(2 * time.Hour)
	if err := k.maintain(t.Context()); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, KeyFileName))
	if err != nil || !strings.Contains(string(raw), activeKID(k)) {
		t.Fatalf("local copy not written while the store fails: %v", err)
	}
	s.setErr(nil)
	if err := k.maintain(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !k.Shared() || !bytes.Equal(s.data, raw) {
		t.Fatal("store not caught up with the local copy")
	}
}

func jwtClaims(exp time.Time) jwt.RegisteredClaims {
	return jwt.RegisteredClaims{Subject: "x", ExpiresAt: jwt.NewNumericDate(exp)}
}

// activeKIDOf returns the kid in a token's header.
func activeKIDOf(t *testing.T, tok string) string {
	t.Helper()
	p, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := p.Header["kid"].(string)
	return kid
}

// Instances configured with different algorithms for a while (a rolling
// reload) share one active key instead of replacing each other's keys on
// every tick.
func TestMixedAlgorithmsDoNotChurn(t *testing.T) {
	clk := newClock()
	s := &memStore{}
	a := storeRing(t, t.TempDir(), clk, s, nil)
	b := storeRing(t, t.TempDir(), clk, s, nil)
	if err := a.Configure(ES256, time.Hour, 15*time.Minute); err != nil { // a reloaded first
		t.Fatal(err)
	}
	for range 50 {
		clk.Add(30 * time.Second)
		for _, k := range []*KeyRing{a, b} {
			if err := k.maintain(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		if activeKID(a) != activeKID(b) {
			t.Fatalf("a signs with %s, b with %s", activeKID(a), activeKID(b))
		}
	}
	// 25 minutes: the EdDSA key is retired, the ES256 key active, and the
	// next one pre-published at most (not one key per tick).
	if n := len(a.cur.Load().byKID); n > 3 {
		t.Fatalf("%d keys after 50 ticks", n)
	}
	if a.cur.Load().active.alg != ES256 {
		t.Fatal("a does not sign with ES256")
	}
	// b reloaded too: no further rotation.
	kid := activeKID(a)
	if err := b.Configure(ES256, time.Hour, 15*time.Minute); err != nil {
		t.Fatal(err)
	}
	if activeKID(b) != kid {
		t.Fatal("b rotated although the shared key already has its algorithm")
	}
}

// A start with another algorithm than the stored keys rotates at once
// (the config changed while the gateway was down); the old key stays.
func TestOpenWithAnotherAlgorithmRotates(t *testing.T) {
	clk := newClock()
	s := &memStore{}
	old := storeRing(t, t.TempDir(), clk, s, nil)
	tok := signAt(t, old, clk, 15*time.Minute)
	k, err := OpenKeyRing(KeyRingOptions{Dir: t.TempDir(), Algorithm: ES256, RotateEvery: time.Hour, MaxTokenTTL: 15 * time.Minute, Store: s, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if k.cur.Load().active.alg != ES256 {
		t.Fatal("started with another algorithm and kept it")
	}
	if err := verifies(k, tok, clk.Now()); err != nil {
		t.Fatal(err)
	}
}
