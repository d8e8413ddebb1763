package tokens

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/authn"
	"github.com/breakwater/breakwater/internal/secret"
)

// clock is an injected, settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// memRevocations is a small in-memory state.Revocations.
type memRevocations struct {
	mu   sync.Mutex
	jtis map[string]time.Time
	err  error // returned by every call when set
}

func newMemRevocations() *memRevocations { return &memRevocations{jtis: map[string]time.Time{}} }

func (m *memRevocations) Revoke(_ context.Context, jti string, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.jtis[jti] = until
	return nil
}

func (m *memRevocations) Revoked(_ context.Context, jti string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return false, m.err
	}
	_, ok := m.jtis[jti]
	return ok, nil
}

func (m *memRevocations) setErr(err error) {
	m.mu.Lock()
	m.err = err
	m.mu.Unlock()
}

var errStore = errors.New("store down")

func openRing(t testing.TB, dir, alg string, clk *clock) *KeyRing {
	t.Helper()
	k, err := OpenKeyRing(KeyRingOptions{Dir: dir, Algorithm: alg, RotateEvery: 24 * time.Hour, MaxTokenTTL: 15 * time.Minute, Now: clk.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const (
	testIssuer = "https://api.example.com"
	acmeSecret = "acme-secret-with-enough-entropy-0123456789"
	zetaSecret = "zeta-secret-with-enough-entropy-9876543210"
)

type fixture struct {
	clk     *clock
	keys    *KeyRing
	revs    *memRevocations
	srv     *Server
	mu      sync.Mutex
	events  []string
	limited map[string]bool
}

func consumer(id string, scopes ...string) *authn.Consumer {
	return &authn.Consumer{ID: id, Scopes: scopes, ScopeText: strings.Join(scopes, " ")}
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{clk: newClock(), revs: newMemRevocations(), limited: map[string]bool{}}
	f.keys = openRing(t, t.TempDir(), EdDSA, f.clk)
	srv, err := NewServer(Options{
		Issuer: testIssuer,
		TTL:    15 * time.Minute,
		Keys:   f.keys,
		Clients: []Client{
			{ID: "acme", SecretHash: secret.SumString(acmeSecret), Consumer: consumer("acme", "orders:read", "orders:write")},
			{ID: "zeta", SecretHash: secret.SumString(zetaSecret), Consumer: consumer("zeta", "orders:read")},
			{ID: "odd:id é+", SecretHash: secret.SumString("p@ss:w+rd/=%"), Consumer: consumer("odd")},
		},
		Revocations: f.revs,
		Limit: func(_ context.Context, key string) (bool, time.Duration) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.limited[key] {
				return false, 1500 * time.Millisecond
			}
			return true, 0
		},
		OnFailure: func(_ *http.Request, clientID, reason string) {
			f.mu.Lock()
			f.events = append(f.events, clientID+": "+reason)
			f.mu.Unlock()
		},
		Now: f.clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	return f
}

func (f *fixture) lastEvent() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.events) == 0 {
		return ""
	}
	return f.events[len(f.events)-1]
}

// post sends a form to path through ServeHTTP.
func (f *fixture) post(path, body string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			r.Header.Del(hdr[i])
			continue
		}
		r.Header.Add(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, r)
	return w
}

func form(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v.Encode()
}

// issueToken gets a token for a client by client_secret_post.
func (f *fixture) issueToken(t testing.TB, id, sec string) string {
	t.Helper()
	w := f.post(TokenPath, form("grant_type", "client_credentials", "client_id", id, "client_secret", sec))
	if w.Code != http.StatusOK {
		t.Fatalf("token: %d %s", w.Code, w.Body)
	}
	var tr tokenResponse
	if err := jsonDecode(w.Body, &tr); err != nil {
		t.Fatal(err)
	}
	return tr.AccessToken
}

func jsonDecode(r io.Reader, v any) error {
	return json.NewDecoder(r).Decode(v)
}
