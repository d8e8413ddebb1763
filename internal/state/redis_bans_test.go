package state

import (
	"context"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/redisconn"
	"github.com/breakwater/breakwater/internal/testutil"
)

// A ban decided on one instance is in force on another after a sync, and
// so is its lift; a ban that never reached Redis is not lifted by a sync.
func TestRedisBansShared(t *testing.T) {
	r := testutil.StartRedis(t)
	ctx := context.Background()
	open := func() *RedisBans {
		addr, err := redisconn.ParseURL(r.URL())
		if err != nil {
			t.Fatal(err)
		}
		conn, err := redisconn.New(ctx, redisconn.Options{Address: addr})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(conn.Close)
		return NewRedisBans(conn, NewMemoryBans(BanOptions{}), nil, nil)
	}
	a, b := open(), open()
	until := time.Now().Add(time.Hour)
	if isNew, err := a.Ban(ctx, Ban{Key: "ip:192.0.2.1", Reason: "auth_failures", Until: until}); err != nil || !isNew {
		t.Fatalf("Ban: %v %v", isNew, err)
	}
	if banned, _ := b.Banned(ctx, "ip:192.0.2.1"); banned {
		t.Fatal("banned on b before any sync")
	}
	for _, x := range []*RedisBans{a, b} {
		if err := x.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if banned, _ := b.Banned(ctx, "ip:192.0.2.1"); !banned {
		t.Fatal("not banned on b after a sync")
	}
	list, _, _ := b.List(ctx, 10)
	if len(list) != 1 || list[0].Reason != "auth_failures" || list[0].Until.UnixMilli() != until.UnixMilli() {
		t.Errorf("b's list: %+v", list)
	}
	// A local-only ban survives syncs.
	if _, err := b.local.Ban(ctx, Ban{Key: "ip:192.0.2.9", Reason: "x", Until: until}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Lift(ctx, "ip:192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if banned, _ := b.Banned(ctx, "ip:192.0.2.1"); banned {
		t.Error("a lift on a did not reach b")
	}
	if banned, _ := b.Banned(ctx, "ip:192.0.2.9"); !banned {
		t.Error("a sync lifted a ban that was never shared")
	}

	// Redis down: bans still work on the instance that decided them.
	r.Stop()
	if _, err := a.Ban(ctx, Ban{Key: "ip:192.0.2.2", Reason: "x", Until: until}); err != nil {
		t.Fatalf("Ban with Redis down: %v", err)
	}
	if banned, _ := a.Banned(ctx, "ip:192.0.2.2"); !banned {
		t.Error("a ban decided while Redis was down is not in force locally")
	}
	if err := a.Sync(ctx); err == nil {
		t.Error("Sync with Redis down reported no error")
	}
}
