package state

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

type banClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *banClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *banClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newBanClock() *banClock            { return &banClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func banned(t *testing.T, m Bans, k string) bool {
	t.Helper()
	ok, err := m.Banned(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestMemoryBans(t *testing.T) {
	ctx := context.Background()
	c := newBanClock()
	m := NewMemoryBans(BanOptions{Now: c.Now})
	if banned(t, m, "ip:192.0.2.1") || !m.Empty() {
		t.Fatal("a new store bans nobody")
	}
	until := c.Now().Add(15 * time.Minute)
	if isNew, err := m.Ban(ctx, Ban{Key: "ip:192.0.2.1", Reason: "auth_failures", Until: until}); !isNew || err != nil {
		t.Fatalf("first ban: %v %v", isNew, err)
	}
	if isNew, _ := m.Ban(ctx, Ban{Key: "ip:192.0.2.1", Reason: "client_errors", Until: until.Add(-time.Minute)}); isNew {
		t.Fatal("a second ban of a banned key is not new")
	}
	if !banned(t, m, "ip:192.0.2.1") || banned(t, m, "ip:192.0.2.2") || banned(t, m, "ip:192.0.2.10") {
		t.Fatal("wrong keys banned")
	}
	list, total, _ := m.List(ctx, 10)
	if total != 1 || len(list) != 1 || !list[0].Until.Equal(until) || list[0].Reason != "auth_failures" {
		t.Fatalf("a shorter ban must not shorten the first: %+v", list)
	}
	// Extended by a longer one.
	_, _ = m.Ban(ctx, Ban{Key: "ip:192.0.2.1", Reason: "client_errors", Until: until.Add(time.Hour)})
	if list, _, _ = m.List(ctx, 10); !list[0].Until.Equal(until.Add(time.Hour)) {
		t.Fatalf("not extended: %+v", list)
	}
	// A ban in the past is not recorded.
	if isNew, err := m.Ban(ctx, Ban{Key: "ip:192.0.2.3", Until: c.Now()}); isNew || err != nil || banned(t, m, "ip:192.0.2.3") {
		t.Fatal("a ban ending now was recorded")
	}
	// Expiry by time.
	c.Add(time.Hour + 15*time.Minute)
	if banned(t, m, "ip:192.0.2.1") {
		t.Fatal("ban outlived its end")
	}
	if !m.Empty() {
		t.Fatal("an expired ban found by Banned is forgotten")
	}
	// Lift.
	_, _ = m.Ban(ctx, Ban{Key: "consumer:acme", Reason: "client_errors", Until: c.Now().Add(time.Minute)})
	if ok, _ := m.Lift(ctx, "consumer:acme"); !ok || banned(t, m, "consumer:acme") {
		t.Fatal("lift failed")
	}
	if ok, _ := m.Lift(ctx, "consumer:acme"); ok {
		t.Fatal("lifting twice reports a ban")
	}
	// Invalid keys.
	for _, k := range []string{"", strings.Repeat("k", MaxBanKey+1)} {
		if _, err := m.Ban(ctx, Ban{Key: k, Until: c.Now().Add(time.Minute)}); err == nil {
			t.Errorf("key of %d bytes accepted", len(k))
		}
	}
}

func TestMemoryBansList(t *testing.T) {
	ctx := context.Background()
	c := newBanClock()
	m := NewMemoryBans(BanOptions{Now: c.Now})
	for i := range 5 {
		_, _ = m.Ban(ctx, Ban{Key: "ip:192.0.2." + strconv.Itoa(i), Reason: "auth_failures", Until: c.Now().Add(time.Duration(5-i) * time.Minute)})
	}
	list, total, _ := m.List(ctx, 2)
	if total != 5 || len(list) != 2 || list[0].Key != "ip:192.0.2.4" || list[1].Key != "ip:192.0.2.3" {
		t.Fatalf("list: %d %+v", total, list)
	}
	c.Add(150 * time.Second)
	if _, total, _ = m.List(ctx, 100); total != 3 {
		t.Fatalf("expired bans listed: %d", total)
	}
}

func TestMemoryBansBound(t *testing.T) {
	ctx := context.Background()
	c := newBanClock()
	m := NewMemoryBans(BanOptions{MaxBans: 3, Now: c.Now})
	for i := range 3 {
		if _, err := m.Ban(ctx, Ban{Key: "ip:192.0.2." + strconv.Itoa(i), Until: c.Now().Add(time.Duration(i+1) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Ban(ctx, Ban{Key: "ip:192.0.2.9", Until: c.Now().Add(time.Hour)}); !errors.Is(err, ErrFull) {
		t.Fatalf("full store: %v, want ErrFull", err)
	}
	if !banned(t, m, "ip:192.0.2.0") {
		t.Fatal("an unexpired ban was forgotten to make room")
	}
	c.Add(90 * time.Second) // the first has expired: room for one
	if isNew, err := m.Ban(ctx, Ban{Key: "ip:192.0.2.9", Until: c.Now().Add(time.Hour)}); !isNew || err != nil {
		t.Fatalf("after expiry: %v %v", isNew, err)
	}
}

func TestMemoryBansSnapshot(t *testing.T) {
	ctx := context.Background()
	c := newBanClock()
	m := NewMemoryBans(BanOptions{Now: c.Now})
	_, _ = m.Ban(ctx, Ban{Key: "ip:192.0.2.1", Reason: "auth_failures", Until: c.Now().Add(10 * time.Minute)})
	_, _ = m.Ban(ctx, Ban{Key: "ip:2001:db8:1:2::/64", Reason: "client_errors", Until: c.Now().Add(time.Minute)})
	_, _ = m.Ban(ctx, Ban{Key: "consumer:acme", Reason: "client_errors", Until: c.Now().Add(500 * time.Millisecond)})
	var buf bytes.Buffer
	if err := m.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.Count(buf.String(), `"key"`) != 3 {
		t.Fatalf("snapshot: %s", buf.String())
	}
	c.Add(2 * time.Minute) // restart later: only the 10-minute ban is left
	r := NewMemoryBans(BanOptions{Now: c.Now})
	if err := r.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	list, total, _ := r.List(ctx, 10)
	if total != 1 || list[0].Key != "ip:192.0.2.1" || list[0].Reason != "auth_failures" || !banned(t, r, "ip:192.0.2.1") {
		t.Fatalf("restored: %+v", list)
	}
	for name, bad := range map[string]string{
		"not json":     "{",
		"version":      `{"version":2,"bans":[]}`,
		"bad key":      `{"version":1,"bans":[{"key":"host:x","reason":"r","until":99999999999}]}`,
		"key too long": `{"version":1,"bans":[{"key":"consumer:` + strings.Repeat("a", 200) + `","until":99999999999}]}`,
	} {
		if err := NewMemoryBans(BanOptions{Now: c.Now}).Restore(strings.NewReader(bad)); err == nil {
			t.Errorf("%s: restored", name)
		}
	}
	// Absurd times are skipped, not overflowed into the past or the future.
	big := NewMemoryBans(BanOptions{Now: c.Now})
	if err := big.Restore(strings.NewReader(`{"version":1,"bans":[{"key":"ip:192.0.2.7","until":9223372036854775807},{"key":"ip:192.0.2.8","until":-5}]}`)); err != nil {
		t.Fatal(err)
	}
	if !big.Empty() {
		t.Fatal("absurd Until restored")
	}
}

func TestBanKeys(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"ip:203.0.113.7", "ip:203.0.113.7", true},
		{"ip:2001:DB8:1:2:3:4:5:6", "ip:2001:db8:1:2::/64", true},
		{"ip:2001:db8:1:2::/64", "ip:2001:db8:1:2::/64", true},
		{"ip:::ffff:192.0.2.1", "ip:192.0.2.1", true},
		{"consumer:acme", "consumer:acme", true},
		{"consumer:a.b_c-1", "consumer:a.b_c-1", true},
		// Attack and typo rows.
		{"", "", false},
		{"ip:", "", false},
		{"ip:fe80::1%eth0", "", false},
		{"ip:192.0.2.0/24", "", false},
		{"ip:2001:db8::/48", "", false},
		{"ip:2001:db8::/128", "", false},
		{"ip:::ffff:192.0.2.0/64", "", false},
		{"ip:host.example", "", false},
		{"consumer:", "", false},
		{"consumer:a b", "", false},
		{"consumer:a\x00b", "", false},
		{"consumer:é", "", false},
		{"Consumer:acme", "", false},
		{"acme", "", false},
		{"consumer:" + strings.Repeat("a", MaxBanKey), "", false},
	} {
		got, err := ParseBanKey(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseBanKey(%q) = %q, %v; want %q ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	if k := BanKeyIP(netip.MustParseAddr("2001:db8:1:2:aaaa::1")); k != "ip:2001:db8:1:2::/64" {
		t.Errorf("IPv6 ban key %q", k)
	}
	if k := BanKeyIP(netip.Addr{}); k != "" {
		t.Errorf("invalid address gives %q", k)
	}
	if BanKeyConsumer("") != "" || BanKeyConsumer("acme") != "consumer:acme" {
		t.Error("BanKeyConsumer")
	}
}

// FuzzParseBanKey: no panic; an accepted key is canonical (parsing it again
// gives itself) and within MaxBanKey.
func FuzzParseBanKey(f *testing.F) {
	for _, s := range []string{"ip:203.0.113.7", "ip:2001:db8::1", "ip:2001:db8::/64", "consumer:acme", "ip:::ffff:1.2.3.4", "consumer:\x00", "ip:1.2.3.4%x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseBanKey(s)
		if err != nil {
			return
		}
		if len(k) > MaxBanKey || k == "" {
			t.Fatalf("ParseBanKey(%q) = %q", s, k)
		}
		if again, err := ParseBanKey(k); err != nil || again != k {
			t.Fatalf("not canonical: %q → %q → %q, %v", s, k, again, err)
		}
	})
}

func BenchmarkBannedEmpty(b *testing.B) {
	m := NewMemoryBans(BanOptions{})
	ctx := context.Background()
	for b.Loop() {
		_, _ = m.Banned(ctx, "ip:192.0.2.1")
	}
}

func BenchmarkBanned(b *testing.B) {
	m := NewMemoryBans(BanOptions{})
	ctx := context.Background()
	for i := range 10000 {
		_, _ = m.Ban(ctx, Ban{Key: "ip:10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256), Until: time.Now().Add(time.Hour)})
	}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = m.Banned(ctx, "ip:192.0.2.1")
	}
}
