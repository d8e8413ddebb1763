package tokens

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func ringOpts(dir, alg string, clk *clock, rotate, maxTTL time.Duration) KeyRingOptions {
	return KeyRingOptions{Dir: dir, Algorithm: alg, RotateEvery: rotate, MaxTokenTTL: maxTTL, Now: clk.Now, Logger: slog.New(slog.DiscardHandler)}
}

func kids(t *testing.T, k *KeyRing) []string {
	t.Helper()
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(k.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, key := range set.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := key[private]; ok {
				t.Fatalf("JWKS publishes private member %q", private)
			}
		}
		if key["use"] != "sig" || key["alg"] == "" || key["kid"] == "" {
			t.Fatalf("JWKS key without use/alg/kid: %v", key)
		}
		out = append(out, key["kid"])
	}
	return out
}

func activeKID(k *KeyRing) string { return k.cur.Load().active.kid }

// signAt signs a token that expires ttl from now.
func signAt(t *testing.T, k *KeyRing, clk *clock, ttl time.Duration) string {
	t.Helper()
	tok, err := k.Sign(jwt.RegisteredClaims{Subject: "x", ExpiresAt: jwt.NewNumericDate(clk.Now().Add(ttl))}, "at+jwt")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// verifies checks tok's signature with the ring's public keys only.
func verifies(k *KeyRing, tok string, now time.Time) error {
	_, err := jwt.Parse(tok, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		pub, alg, ok := k.PublicKey(kid)
		if !ok || alg != t.Method.Alg() {
			return nil, jwt.ErrTokenUnverifiable
		}
		return pub, nil
	}, jwt.WithValidMethods([]string{EdDSA, ES256, RS256}), jwt.WithTimeFunc(func() time.Time { return now }))
	return err
}

func TestOpenKeyRingCreatesDirAndFile(t *testing.T) {
	clk := newClock()
	dir := filepath.Join(t.TempDir(), "data", "keys")
	k, err := OpenKeyRing(ringOpts(dir, EdDSA, clk, 24*time.Hour, 15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v, %v; want 0700", fi.Mode().Perm(), err)
	}
	fi, err = os.Stat(filepath.Join(dir, KeyFileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the key file (no temporary files)", len(entries))
	}
	if got := kids(t, k); len(got) != 1 || got[0] != activeKID(k) {
		t.Fatalf("JWKS kids %v, active %s", got, activeKID(k))
	}
	// Reopening loads the same key and writes nothing new.
	k2, err := OpenKeyRing(ringOpts(dir, EdDSA, clk, 24*time.Hour, 15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if activeKID(k2) != activeKID(k) {
		t.Fatal("reopened ring has another active key")
	}
}

func TestOpenKeyRingRefusesBadFiles(t *testing.T) {
	clk := newClock()
	good := t.TempDir()
	openRing(t, good, EdDSA, clk)
	valid, err := os.ReadFile(filepath.Join(good, KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	var kf keyFile
	if err := json.Unmarshal(valid, &kf); err != nil {
		t.Fatal(err)
	}
	secretB64 := base64.StdEncoding.EncodeToString(kf.Keys[0].PrivateKey)
	mutate := func(f func(*keyFile)) []byte {
		var c keyFile
		_ = json.Unmarshal(valid, &c)
		f(&c)
		b, _ := json.Marshal(c)
		return b
	}
	tests := []struct {
		name string
		data []byte
		mode os.FileMode
		want string
	}{
		{"group readable", valid, 0o640, "chmod 600"},
		{"world readable", valid, 0o604, "chmod 600"},
		{"not json", []byte("{nope " + secretB64), 0o600, "not valid JSON"},
		{"wrong structure", []byte(`{"version":1,"keys":"` + secretB64 + `"}`), 0o600, "expected structure"},
		{"wrong version", mutate(func(c *keyFile) { c.Version = 9 }), 0o600, "version 9"},
		{"kid mismatch", mutate(func(c *keyFile) { c.Keys[0].KID = "forged" }), 0o600, "thumbprint"},
		{"alg mismatch", mutate(func(c *keyFile) { c.Keys[0].Alg = RS256 }), 0o600, "cannot sign"},
		{"unknown alg", mutate(func(c *keyFile) { c.Keys[0].Alg = "HS256" }), 0o600, "want EdDSA"},
		{"garbage key", mutate(func(c *keyFile) { c.Keys[0].PrivateKey = []byte("x") }), 0o600, "parsing"},
		{"too large", bytes.Repeat([]byte(" "), maxKeyFileSize+1), 0o600, "larger than"},
		{"too many keys", mutate(func(c *keyFile) {
			for range maxKeys {
				c.Keys = append(c.Keys, c.Keys[0])
			}
		}), 0o600, "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, KeyFileName)
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			_, err := OpenKeyRing(ringOpts(dir, EdDSA, clk, time.Hour, time.Minute))
			if err == nil {
				t.Fatal("opened")
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) || !strings.Contains(msg, path) && tt.name != "kid mismatch" && tt.name != "alg mismatch" && tt.name != "unknown alg" && tt.name != "garbage key" {
				t.Fatalf("error %q: want %q and the path", msg, tt.want)
			}
			if strings.Contains(msg, secretB64[:16]) {
				t.Fatal("error quotes key material")
			}
		})
	}
}

func TestOpenKeyRingRejectsOptions(t *testing.T) {
	clk := newClock()
	for _, o := range []KeyRingOptions{
		{Algorithm: EdDSA, RotateEvery: time.Hour, MaxTokenTTL: time.Hour},
		ringOpts(t.TempDir(), "HS256", clk, time.Hour, time.Hour),
		ringOpts(t.TempDir(), "none", clk, time.Hour, time.Hour),
		ringOpts(t.TempDir(), EdDSA, clk, 0, time.Hour),
		ringOpts(t.TempDir(), EdDSA, clk, time.Hour, -time.Second),
	} {
		if _, err := OpenKeyRing(o); err == nil {
			t.Errorf("OpenKeyRing(%+v) succeeded", o)
		}
	}
}

func TestRotationKeepsOldKeyUntilItsTokensExpire(t *testing.T) {
	for _, alg := range []string{EdDSA, ES256} {
		t.Run(alg, func(t *testing.T) {
			clk := newClock()
			dir := t.TempDir()
			const rotate, ttl = time.Hour, 15 * time.Minute
			k, err := OpenKeyRing(ringOpts(dir, alg, clk, rotate, ttl))
			if err != nil {
				t.Fatal(err)
			}
			first := activeKID(k)

			// Five minutes before rotation the next key is published, not used.
			clk.Add(rotate - prePublish)
			if err := k.maintain(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := kids(t, k); len(got) != 2 || activeKID(k) != first {
				t.Fatalf("after pre-publication: kids %v active %s", got, activeKID(k))
			}
			next := kids(t, k)[1]
			old := signAt(t, k, clk, ttl)

			clk.Add(prePublish)
			if err := k.maintain(t.Context()); err != nil {
				t.Fatal(err)
			}
			if activeKID(k) != next {
				t.Fatalf("active %s, want the pre-published %s", activeKID(k), next)
			}
			if got := kids(t, k); len(got) != 2 {
				t.Fatalf("after rotation: kids %v, want old and new", got)
			}
			if err := verifies(k, old, clk.Now()); err != nil {
				t.Fatalf("token of the retired key: %v", err)
			}
			fresh := signAt(t, k, clk, ttl)

			// A restart on the same directory accepts both.
			k2, err := OpenKeyRing(ringOpts(dir, alg, clk, rotate, ttl))
			if err != nil {
				t.Fatal(err)
			}
			if activeKID(k2) != next {
				t.Fatal("restarted ring signs with another key")
			}
			for _, tok := range []string{old, fresh} {
				if err := verifies(k2, tok, clk.Now()); err != nil {
					t.Fatalf("after restart: %v", err)
				}
			}

			// Still there one second before retired_at + ttl + 1m …
			clk.Add(ttl + dropGrace - time.Second)
			if err := k.maintain(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := kids(t, k); len(got) != 2 {
				t.Fatalf("retired key dropped early: %v", got)
			}
			// … and gone after it, from the ring, the JWKS and the file.
			clk.Add(2 * time.Second)
			if err := k.maintain(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := kids(t, k); len(got) != 1 || got[0] != next {
				t.Fatalf("after expiry: kids %v, want only %s", got, next)
			}
			if _, _, ok := k.PublicKey(first); ok {
				t.Fatal("dropped key still answers")
			}
			clk.Add(rereadEvery)
			if _, _, ok := k2.PublicKey(first); !ok {
				// k2 still holds it in memory: fine until its own maintenance.
				t.Log("k2 dropped it too")
			}
			if err := k2.maintain(t.Context()); err != nil {
				t.Fatal(err)
			}
			if _, _, ok := k2.PublicKey(first); ok {
				t.Fatal("second instance kept the expired key after maintenance")
			}
			raw, _ := os.ReadFile(filepath.Join(dir, KeyFileName))
			if strings.Contains(string(raw), first) {
				t.Fatal("expired key still in the key file")
			}
		})
	}
}

func TestRotationWithoutPrePublication(t *testing.T) {
	// A ring that was down during the pre-publication window rotates anyway.
	clk := newClock()
	k, err := OpenKeyRing(ringOpts(t.TempDir(), EdDSA, clk, time.Hour, 15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	first := activeKID(k)
	clk.Add(3 * time.Hour)
	if err := k.maintain(t.Context()); err != nil {
		t.Fatal(err)
	}
	if activeKID(k) == first {
		t.Fatal("no rotation")
	}
}

func TestConfigure(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	k, err := OpenKeyRing(ringOpts(dir, EdDSA, clk, time.Hour, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	first := activeKID(k)
	old := signAt(t, k, clk, time.Hour)

	// Same algorithm: no rotation.
	if err := k.Configure(EdDSA, 2*time.Hour, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if activeKID(k) != first {
		t.Fatal("Configure without algorithm change rotated")
	}
	if err := k.Configure("HS256", time.Hour, time.Hour); err == nil {
		t.Fatal("HS256 accepted")
	}
	if _, err := k.Sign(jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(clk.Now().Add(time.Hour))}, ""); err == nil {
		t.Fatal("Sign accepted an exp beyond the lowered maximum")
	}

	// Algorithm change: rotates at once, the old key stays published.
	if err := k.Configure(ES256, 2*time.Hour, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if activeKID(k) == first {
		t.Fatal("algorithm change did not rotate")
	}
	tok := signAt(t, k, clk, 5*time.Minute)
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil || parsed.Method.Alg() != ES256 {
		t.Fatalf("new token alg %v, %v", parsed.Method.Alg(), err)
	}
	if err := verifies(k, old, clk.Now()); err != nil {
		t.Fatalf("token of the old algorithm: %v", err)
	}
	// The old key signed hour-long tokens: lowering the maximum to 5m must
	// not drop it before those expire.
	clk.Add(30 * time.Minute)
	if err := k.maintain(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := verifies(k, old, clk.Now()); err != nil {
		t.Fatalf("old key dropped while its tokens are valid: %v", err)
	}
	clk.Add(31*time.Minute + time.Second)
	if err := k.maintain(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := k.PublicKey(first); ok {
		t.Fatal("old key kept after its tokens expired")
	}
}

func TestSharedDirectory(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	a := openRing(t, dir, EdDSA, clk)
	b := openRing(t, dir, EdDSA, clk)
	if activeKID(a) != activeKID(b) {
		t.Fatal("instances sharing a directory use different keys")
	}
	if err := a.Configure(ES256, 24*time.Hour, 15*time.Minute); err != nil {
		t.Fatal(err)
	}
	tok := signAt(t, a, clk, time.Minute)
	if err := verifies(b, tok, clk.Now()); err != nil {
		t.Fatalf("b does not learn a's new key: %v", err)
	}
	// A second unknown kid within 10s does not re-read the file …
	if err := a.Configure(EdDSA, 24*time.Hour, 15*time.Minute); err != nil {
		t.Fatal(err)
	}
	tok2 := signAt(t, a, clk, time.Minute)
	if err := verifies(b, tok2, clk.Now()); err == nil {
		t.Fatal("b re-read the key file twice within 10s")
	}
	// … after 10s it does.
	clk.Add(rereadEvery)
	if err := verifies(b, tok2, clk.Now()); err != nil {
		t.Fatalf("b does not learn a's second key: %v", err)
	}
	// b's maintenance converges on a's active key instead of keeping its own.
	if err := b.maintain(t.Context()); err != nil {
		t.Fatal(err)
	}
	if activeKID(b) != activeKID(a) {
		t.Fatalf("b signs with %s, a with %s", activeKID(b), activeKID(a))
	}
}

func TestSignChecksExp(t *testing.T) {
	clk := newClock()
	k := openRing(t, t.TempDir(), EdDSA, clk)
	for name, c := range map[string]jwt.Claims{
		"no exp":       jwt.RegisteredClaims{Subject: "x"},
		"exp too late": jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(clk.Now().Add(16 * time.Minute))},
	} {
		if _, err := k.Sign(c, "JWT"); err == nil {
			t.Errorf("%s: signed", name)
		}
	}
	tok := signAt(t, k, clk, 15*time.Minute)
	p, _, _ := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if p.Header["kid"] != activeKID(k) || p.Header["typ"] != "at+jwt" {
		t.Fatalf("header %v", p.Header)
	}
}

func TestRotationUnderConcurrentSign(t *testing.T) {
	clk := newClock()
	k, err := OpenKeyRing(ringOpts(t.TempDir(), EdDSA, clk, 2*time.Minute, 15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				now := clk.Now()
				tok, err := k.Sign(jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute))}, "JWT")
				if err == nil {
					err = verifies(k, tok, now)
				}
				if err == nil {
					tok, err = k.Identity(consumer("c", "a"), "r", "id")
					if err == nil {
						err = verifies(k, tok, now)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range 40 {
		clk.Add(30 * time.Second)
		alg := EdDSA
		if i%10 == 9 {
			alg = ES256
		}
		if err := k.Configure(alg, 2*time.Minute, 15*time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := k.maintain(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestStartRotates(t *testing.T) {
	clk := newClock()
	k, err := OpenKeyRing(ringOpts(t.TempDir(), EdDSA, clk, 20*time.Second, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	first := activeKID(k)
	clk.Add(time.Minute)
	k.Start(t.Context())
	deadline := time.Now().Add(30 * time.Second)
	for activeKID(k) == first {
		if time.Now().After(deadline) {
			t.Fatal("Start did not rotate")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestLogsCarryNoKeyMaterial(t *testing.T) {
	var buf bytes.Buffer
	clk := newClock()
	dir := t.TempDir()
	o := ringOpts(dir, EdDSA, clk, time.Hour, time.Minute)
	o.Logger = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	k, err := OpenKeyRing(o)
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Hour)
	if err := k.maintain(t.Context()); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, KeyFileName))
	var kf keyFile
	if err := json.Unmarshal(raw, &kf); err != nil {
		t.Fatal(err)
	}
	if buf.Len() == 0 {
		t.Fatal("no rotation logs")
	}
	for _, r := range kf.Keys {
		if bytes.Contains(buf.Bytes(), []byte(base64.StdEncoding.EncodeToString(r.PrivateKey)[:20])) {
			t.Fatal("private key in the logs")
		}
	}
}
