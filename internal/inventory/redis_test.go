package inventory

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/redisconn"
	"github.com/breakwater/breakwater/internal/testutil"
)

func dial(t *testing.T, url string) *redisconn.Conn {
	t.Helper()
	a, err := redisconn.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c, err := redisconn.New(context.Background(), redisconn.Options{Address: a, CommandTimeout: 2 * time.Second,
		Breaker: redisconn.BreakerOptions{Failures: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// twoInstances returns two inventories sharing one Redis and one clock.
func twoInstances(t *testing.T, url string, o Options) (a, b *Inventory, c *clock) {
	t.Helper()
	c = newClock()
	o.Now = c.Now
	o.Redis = dial(t, url)
	a = New(o)
	o.Redis = dial(t, url)
	b = New(o)
	a.Configure(testRoutes)
	b.Configure(testRoutes)
	return a, b, c
}

func TestRedisShared(t *testing.T) {
	srv := testutil.StartRedis(t)
	ctx := context.Background()
	a, b, c := twoInstances(t, srv.URL(), Options{MaxConsumers: 2, MaxShadow: 3})
	t0 := c.Now()
	a.Record(Hit{Route: "users", Operation: "GET /users/{id}", Status: 200, Consumer: "a1"})
	a.Record(Hit{Route: "users", Operation: "GET /users/{id}", Status: 200, Consumer: "a2"})
	c.Advance(time.Minute)
	b.Record(Hit{Route: "users", Operation: "GET /users/{id}", Status: 500, Consumer: "b1"})
	b.Record(Hit{Route: "users", Operation: "GET /users/{id}", Status: 404, Consumer: "a1"})
	a.Record(Hit{Route: "users", Method: "GET", Path: "/users/1/avatar", Status: 404})
	b.Record(Hit{Route: "users", Method: "GET", Path: "/users/2/avatar", Status: 200, Consumer: "b1"})
	b.Record(Hit{Route: "users", Operation: "GET /v1/users", Status: 200, Consumer: "old"})
	for _, inv := range []*Inventory{a, b, a, b} { // twice: a flush without deltas adds nothing
		if err := inv.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rep := a.View(ctx, 0)
	if rep.Source != "redis" {
		t.Fatalf("source %q, want redis", rep.Source)
	}
	op := find(rep.Operations, "users", "GET /users/{id}")
	if op.Requests != 4 || op.Status != (StatusClasses{S2xx: 2, S4xx: 1, S5xx: 1}) {
		t.Errorf("merged operation: %d %+v; want 4 requests, 2/0/1/1", op.Requests, op.Status)
	}
	if len(op.Consumers) != 2 || op.DistinctConsumers != 3 {
		t.Errorf("merged consumers %v, %d distinct; want two listed and 3 distinct", op.Consumers, op.DistinctConsumers)
	}
	if !op.FirstSeen.Equal(t0) || !op.LastSeen.Equal(t0.Add(time.Minute)) {
		t.Errorf("first %v last %v", op.FirstSeen, op.LastSeen)
	}
	if r := find(rep.Routes, "users", ""); r.Requests != 7 {
		t.Errorf("route: %d requests, want 7", r.Requests)
	}
	if len(rep.Shadow) != 1 || rep.Shadow[0].Requests != 2 || rep.Shadow[0].Path != "/users/{id}/avatar" {
		t.Errorf("shadow %+v, want one endpoint with 2 requests", rep.Shadow)
	}
	if len(rep.Deprecated) != 1 || fmt.Sprint(rep.Deprecated[0].Consumers) != "[old]" {
		t.Errorf("deprecated %+v", rep.Deprecated)
	}
	if repB := b.View(ctx, 0); fmt.Sprint(repB.Operations) != fmt.Sprint(rep.Operations) {
		t.Errorf("the instances disagree:\n%+v\n%+v", repB.Operations, rep.Operations)
	}

	// A restart of a restores its counts without counting them twice.
	var snap bytes.Buffer
	if err := a.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	a2 := New(Options{Now: c.Now, MaxConsumers: 2, MaxShadow: 3, Redis: dial(t, srv.URL())})
	if err := a2.Restore(&snap); err != nil {
		t.Fatal(err)
	}
	a2.Configure(testRoutes)
	a2.Record(Hit{Route: "users", Operation: "GET /users/{id}", Status: 200})
	if op := find(a2.View(ctx, 0).Operations, "users", "GET /users/{id}"); op.Requests != 5 {
		t.Errorf("after a restart and one request: %d, want 5", op.Requests)
	}

	// Shadow endpoints are bounded in Redis too.
	for i := range 5 {
		c.Advance(time.Second)
		b.Record(Hit{Route: "users", Method: "POST", Path: fmt.Sprintf("/x%c", 'a'+i), Status: 404})
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rep = a.View(ctx, 0)
	if len(rep.Shadow) != 3 || rep.ShadowEvicted < 3 {
		t.Errorf("%d shadow endpoints, %d evicted; want 3 and at least 3", len(rep.Shadow), rep.ShadowEvicted)
	}

	// Redis gone: each instance serves its own view.
	srv.Stop()
	if rep := a.View(ctx, 0); rep.Source != "local" || find(rep.Operations, "users", "GET /users/{id}").Requests != 2 {
		t.Errorf("without redis: source %q; want local with a's 2 requests", rep.Source)
	}
	a.Record(Hit{Route: "health", Status: 200})
	srv.Start()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rep := a.View(ctx, 0)
		if rep.Source == "redis" {
			// Redis lost everything (no persistence): a's deltas since the
			// last successful flush arrive.
			if r := find(rep.Routes, "health", ""); r.Requests != 1 {
				t.Errorf("after recovery: health %d, want 1", r.Requests)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("redis not used again after it came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestRedisRun(t *testing.T) {
	srv := testutil.StartRedis(t)
	a, b, _ := twoInstances(t, srv.URL(), Options{FlushInterval: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	a.Record(Hit{Route: "health", Status: 200})
	deadline := time.Now().Add(10 * time.Second)
	for find(b.View(context.Background(), 0).Routes, "health", "").Requests != 1 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not flush")
		}
		time.Sleep(10 * time.Millisecond)
	}
	a.Record(Hit{Route: "health", Status: 200})
	cancel()
	<-done // the final flush
	if n := find(b.View(context.Background(), 0).Routes, "health", "").Requests; n != 2 {
		t.Errorf("after Run ended: %d, want 2 (final flush)", n)
	}
}

func TestRedisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	cl := testutil.StartRedisCluster(t)
	a, b, _ := twoInstances(t, cl.URL(), Options{MaxShadow: 1})
	a.Record(Hit{Route: "users", Method: "GET", Path: "/a", Status: 404})
	b.Record(Hit{Route: "users", Method: "GET", Path: "/b", Status: 404})
	ctx := context.Background()
	for _, inv := range []*Inventory{a, b} {
		if err := inv.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rep := a.View(ctx, 0)
	if rep.Source != "redis" || find(rep.Routes, "users", "").Requests != 2 || len(rep.Shadow) != 1 || rep.ShadowEvicted != 1 {
		t.Errorf("cluster view: %+v", rep)
	}
}
