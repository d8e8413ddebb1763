package inventory

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a test clock that moves only when told.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

var testRoutes = []RouteInfo{
	{Name: "users", Spec: true, Operations: []OperationInfo{
		{Operation: "GET /users/{id}"},
		{Operation: "POST /users"},
		{Operation: "GET /v1/users", Deprecated: true},
	}},
	{Name: "health"},
}

func newTest(t testing.TB, o Options) (*Inventory, *clock) {
	t.Helper()
	c := newClock()
	if o.Now == nil {
		o.Now = c.Now
	}
	inv := New(o)
	inv.Configure(testRoutes)
	return inv, c
}

func find(list []Stats, route, op string) *Stats {
	for i := range list {
		if list[i].Route == route && list[i].Operation == op {
			return &list[i]
		}
	}
	return nil
}

func TestRecordCounts(t *testing.T) {
	type want struct {
		route, op string
		requests  int64
		status    StatusClasses
		consumers []string
	}
	for _, tc := range []struct {
		name string
		hits []Hit
		want []want
		// shadow: "route METHOD /path" → requests
		shadow  map[string]int64
		unknown int64
	}{
		{name: "an operation counts on its route too",
			hits: []Hit{{Route: "users", Operation: "GET /users/{id}", Status: 200, Consumer: "alice"}},
			want: []want{
				{"users", "", 1, StatusClasses{S2xx: 1}, []string{"alice"}},
				{"users", "GET /users/{id}", 1, StatusClasses{S2xx: 1}, []string{"alice"}},
				{"users", "POST /users", 0, StatusClasses{}, []string{}},
			}},
		{name: "status classes",
			hits: []Hit{{Route: "health", Status: 204}, {Route: "health", Status: 302}, {Route: "health", Status: 404},
				{Route: "health", Status: 503}, {Route: "health", Status: 0}, {Route: "health", Status: 101}, {Route: "health", Status: 999}},
			want: []want{{"health", "", 7, StatusClasses{1, 1, 1, 1}, []string{}}}},
		{name: "consumers counted once, sorted",
			hits: []Hit{{Route: "health", Status: 200, Consumer: "bob"}, {Route: "health", Status: 200, Consumer: "alice"},
				{Route: "health", Status: 200, Consumer: "bob"}, {Route: "health", Status: 200}},
			want: []want{{"health", "", 4, StatusClasses{S2xx: 4}, []string{"alice", "bob"}}}},
		{name: "unknown route is not counted",
			hits:    []Hit{{Route: "nope", Status: 200}, {Route: "", Status: 200}},
			want:    []want{{"health", "", 0, StatusClasses{}, []string{}}},
			unknown: 2},
		{name: "route without spec has no shadow",
			hits: []Hit{{Route: "health", Method: "GET", Path: "/health/123", Status: 200}},
			want: []want{{"health", "", 1, StatusClasses{S2xx: 1}, []string{}}}},
		{name: "shadow request on a route with a spec",
			hits: []Hit{{Route: "users", Method: "DELETE", Path: "/users/42", Status: 204, Consumer: "mallory"},
				{Route: "users", Method: "DELETE", Path: "/users/43", Status: 403}},
			want:   []want{{"users", "", 2, StatusClasses{S2xx: 1, S4xx: 1}, []string{"mallory"}}},
			shadow: map[string]int64{"users DELETE /users/{id}": 2}},
		{name: "attack: hostile method and path stay bounded and printable",
			hits:   []Hit{{Route: "users", Method: "GET\r\nX: y", Path: "/a/\x1b[31m/" + strings.Repeat("b", 10000), Status: 400}},
			want:   []want{{"users", "", 1, StatusClasses{S4xx: 1}, []string{}}},
			shadow: map[string]int64{"users OTHER /a/{id}/{id2}": 1}},
		{name: "operation Configure did not announce is created",
			hits: []Hit{{Route: "users", Operation: "PUT /users/{id}", Status: 200}},
			want: []want{{"users", "PUT /users/{id}", 1, StatusClasses{S2xx: 1}, []string{}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv, _ := newTest(t, Options{})
			for _, h := range tc.hits {
				inv.Record(h)
			}
			rep := inv.Report(0)
			all := append(append([]Stats{}, rep.Routes...), rep.Operations...)
			for _, w := range tc.want {
				s := find(all, w.route, w.op)
				if s == nil {
					t.Fatalf("no entry %q %q in %+v", w.route, w.op, all)
				}
				if s.Requests != w.requests || s.Status != w.status || fmt.Sprint(s.Consumers) != fmt.Sprint(w.consumers) {
					t.Errorf("%s %s: %d %+v %v; want %d %+v %v", w.route, w.op, s.Requests, s.Status, s.Consumers, w.requests, w.status, w.consumers)
				}
				if s.DistinctConsumers != int64(len(w.consumers)) {
					t.Errorf("%s %s: %d distinct consumers, want %d", w.route, w.op, s.DistinctConsumers, len(w.consumers))
				}
			}
			got := map[string]int64{}
			for _, s := range rep.Shadow {
				got[s.Route+" "+s.Method+" "+s.Path] = s.Requests
			}
			if fmt.Sprint(got) != fmt.Sprint(orEmpty(tc.shadow)) {
				t.Errorf("shadow %v, want %v", got, tc.shadow)
			}
			if inv.Unknown() != tc.unknown {
				t.Errorf("unknown %d, want %d", inv.Unknown(), tc.unknown)
			}
		})
	}
}

func orEmpty(m map[string]int64) map[string]int64 {
	if m == nil {
		return map[string]int64{}
	}
	return m
}

func TestFirstLastSeen(t *testing.T) {
	inv, c := newTest(t, Options{})
	t0 := c.Now()
	inv.Record(Hit{Route: "health", Status: 200})
	c.Advance(time.Hour)
	inv.Record(Hit{Route: "health", Status: 200})
	s := find(inv.Report(0).Routes, "health", "")
	if !s.FirstSeen.Equal(t0) || !s.LastSeen.Equal(t0.Add(time.Hour)) {
		t.Errorf("first %v last %v; want %v and an hour later", s.FirstSeen, s.LastSeen, t0)
	}
	if s := find(inv.Report(0).Routes, "users", ""); s.FirstSeen != nil || s.LastSeen != nil {
		t.Errorf("route never called has first/last seen: %+v", s)
	}
}

func TestConsumersCap(t *testing.T) {
	inv, _ := newTest(t, Options{MaxConsumers: 3})
	for i := range 50 {
		inv.Record(Hit{Route: "health", Status: 200, Consumer: fmt.Sprintf("c%02d", i)})
		inv.Record(Hit{Route: "health", Status: 200, Consumer: fmt.Sprintf("c%02d", i)}) // twice: still one
	}
	inv.Record(Hit{Route: "health", Status: 200, Consumer: strings.Repeat("x", 10000)}) // too long to list
	s := find(inv.Report(0).Routes, "health", "")
	if fmt.Sprint(s.Consumers) != "[c00 c01 c02]" {
		t.Errorf("consumers %v, want the first three", s.Consumers)
	}
	// 47 + 1 distinct others, estimated: linear counting is within a few
	// percent at this load.
	if s.ConsumersOverflow < 44 || s.ConsumersOverflow > 52 || s.DistinctConsumers != 3+s.ConsumersOverflow {
		t.Errorf("overflow %d, distinct %d; want about 48 and 3 more", s.ConsumersOverflow, s.DistinctConsumers)
	}
}

func TestZombies(t *testing.T) {
	inv, c := newTest(t, Options{ZombieAfter: 30 * 24 * time.Hour})
	inv.Record(Hit{Route: "users", Operation: "GET /users/{id}", Status: 200})
	c.Advance(29 * 24 * time.Hour)
	if z := inv.Report(0).Zombies; len(z) != 0 {
		t.Fatalf("zombies after 29 days: %+v", z)
	}
	inv.Record(Hit{Route: "users", Operation: "POST /users", Status: 201})
	c.Advance(2 * 24 * time.Hour) // 31 days after the start, 2 after POST
	rep := inv.Report(0)
	var got []string
	for _, z := range rep.Zombies {
		got = append(got, fmt.Sprintf("%s %s %q %d %v", z.Kind, z.Route, z.Operation, z.IdleDays, z.LastSeen != nil))
	}
	want := []string{
		`operation users "GET /users/{id}" 31 true`,
		`operation users "GET /v1/users" 31 false`,
		`route health "" 31 false`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("zombies:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := len(inv.Report(60 * 24 * time.Hour).Zombies); n != 0 {
		t.Errorf("%d zombies with a 60-day period, want 0", n)
	}
	if rep.ZombieAfter != "720h0m0s" {
		t.Errorf("zombie_after %q", rep.ZombieAfter)
	}
}

func TestDeprecated(t *testing.T) {
	inv, _ := newTest(t, Options{})
	inv.Record(Hit{Route: "users", Operation: "GET /v1/users", Status: 200, Consumer: "legacy-app"})
	inv.Record(Hit{Route: "users", Operation: "GET /users/{id}", Deprecated: true, Status: 200, Consumer: "b"}) // the spec says so now
	inv.Record(Hit{Route: "users", Operation: "POST /users", Status: 200})
	dep := inv.Report(0).Deprecated
	if len(dep) != 2 || dep[0].Consumers[0] == "" {
		t.Fatalf("deprecated %+v, want two operations with their consumers", dep)
	}
	if s := find(dep, "users", "GET /v1/users"); s == nil || fmt.Sprint(s.Consumers) != "[legacy-app]" {
		t.Errorf("GET /v1/users: %+v", s)
	}
}

func TestShadowBound(t *testing.T) {
	inv, c := newTest(t, Options{MaxShadow: 3})
	for i, p := range []string{"/a", "/b", "/c", "/a", "/d", "/e"} {
		c.Advance(time.Duration(i+1) * time.Second)
		inv.Record(Hit{Route: "users", Method: "GET", Path: p, Status: 404})
	}
	rep := inv.Report(0)
	var got []string
	for _, s := range rep.Shadow {
		got = append(got, s.Path)
	}
	// /b then /c were the least recently seen when /d and /e came.
	if strings.Join(got, " ") != "/a /d /e" || rep.ShadowEvicted != 2 {
		t.Errorf("shadow %v evicted %d; want /a /d /e and 2", got, rep.ShadowEvicted)
	}
}

func TestConfigureKeepsAndDrops(t *testing.T) {
	inv, _ := newTest(t, Options{})
	inv.Record(Hit{Route: "users", Operation: "GET /users/{id}", Status: 200})
	inv.Record(Hit{Route: "health", Status: 200})
	inv.Configure([]RouteInfo{{Name: "users", Spec: true, Operations: []OperationInfo{{Operation: "GET /users/{id}", Deprecated: true}}}})
	rep := inv.Report(0)
	if len(rep.Routes) != 1 || rep.Routes[0].Requests != 1 {
		t.Errorf("routes after reload: %+v", rep.Routes)
	}
	if s := find(rep.Operations, "users", "GET /users/{id}"); s == nil || s.Requests != 1 || !s.Deprecated {
		t.Errorf("operation after reload: %+v", s)
	}
}

func TestConcurrentRecord(t *testing.T) {
	inv, _ := newTest(t, Options{MaxConsumers: 10, MaxShadow: 5})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				inv.Record(Hit{Route: "users", Operation: "GET /users/{id}", Status: 200, Consumer: fmt.Sprint("c", i%20)})
				inv.Record(Hit{Route: "users", Method: "GET", Path: fmt.Sprint("/x", i%7, "/", g), Status: 404})
			}
		}()
	}
	for range 20 {
		_ = inv.Report(0)
		var buf bytes.Buffer
		_ = inv.Snapshot(&buf)
	}
	wg.Wait()
	rep := inv.Report(0)
	if s := find(rep.Operations, "users", "GET /users/{id}"); s.Requests != 8000 || len(s.Consumers) != 10 {
		t.Errorf("%d requests, %d consumers listed; want 8000 and 10", s.Requests, len(s.Consumers))
	}
	if len(rep.Shadow) > 5 {
		t.Errorf("%d shadow entries, more than the bound", len(rep.Shadow))
	}
}

func TestSnapshotRestore(t *testing.T) {
	inv, c := newTest(t, Options{MaxConsumers: 2})
	inv.Record(Hit{Route: "users", Operation: "GET /users/{id}", Status: 200, Consumer: "a"})
	for i := range 10 {
		inv.Record(Hit{Route: "health", Status: 500, Consumer: fmt.Sprint("c", i)})
	}
	inv.Record(Hit{Route: "users", Method: "PATCH", Path: "/users/7/secret", Status: 404})
	var buf bytes.Buffer
	if err := inv.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	before := inv.Report(0)

	// A restart, later: restore before Configure.
	c.Advance(time.Hour)
	next := New(Options{Now: c.Now, MaxConsumers: 2})
	if err := next.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	next.Configure(testRoutes)
	after := next.Report(0)
	if !after.Since.Equal(before.Since) {
		t.Errorf("since %v, want %v (the first start)", after.Since, before.Since)
	}
	for _, list := range [][2][]Stats{{before.Routes, after.Routes}, {before.Operations, after.Operations}, {before.Shadow, after.Shadow}} {
		if fmt.Sprint(list[0]) != fmt.Sprint(list[1]) {
			t.Errorf("restored %+v\nwant %+v", list[1], list[0])
		}
	}

	for _, tc := range []struct{ name, snap string }{
		{"not JSON", "{"},
		{"wrong version", `{"version":2,"entries":[]}`},
		{"unknown field", `{"version":1,"entries":[],"x":1}`},
		{"bad kind", `{"version":1,"entries":[{"kind":"x","route":"r","status":[0,0,0,0],"flushed_status":[0,0,0,0]}]}`},
		{"negative count", `{"version":1,"entries":[{"kind":"route","route":"r","requests":-1,"status":[0,0,0,0],"flushed_status":[0,0,0,0]}]}`},
		{"flushed more than counted", `{"version":1,"entries":[{"kind":"route","route":"r","requests":1,"flushed_requests":2,"status":[0,0,0,0],"flushed_status":[0,0,0,0]}]}`},
		{"too many consumers", `{"version":1,"entries":[{"kind":"route","route":"r","consumers":["a","b","c"],"status":[0,0,0,0],"flushed_status":[0,0,0,0]}]}`},
		{"route with op", `{"version":1,"entries":[{"kind":"route","route":"r","op":"GET /","status":[0,0,0,0],"flushed_status":[0,0,0,0]}]}`},
		{"short bitmap", `{"version":1,"entries":[{"kind":"route","route":"r","overflow":[1],"status":[0,0,0,0],"flushed_status":[0,0,0,0]}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := New(Options{MaxConsumers: 2})
			if err := inv.Restore(strings.NewReader(tc.snap)); err == nil {
				t.Errorf("snapshot %s accepted", tc.snap)
			}
		})
	}
}
