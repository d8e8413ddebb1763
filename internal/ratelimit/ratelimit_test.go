package ratelimit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/config"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mustRate(tb testing.TB, s string) config.Rate {
	tb.Helper()
	r, err := config.ParseRate(s)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func lim(tb testing.TB, name, rate string) Limit {
	return Limit{Name: name, Rate: mustRate(tb, rate)}
}

// try decides one request and fails the test on error.
func try(tb testing.TB, s Store, now time.Time, keys []string, limits ...Limit) Decision {
	tb.Helper()
	var d Decision
	if err := s.Decide(context.Background(), now, Request{Keys: keys, Limits: limits}, &d); err != nil {
		tb.Fatal(err)
	}
	return d
}

// atOnce is n requests at +0 on an idle key, each admitted.
func atOnce(n int64) []step {
	steps := make([]step, n)
	for i := range steps {
		steps[i] = step{0, true, n - 1 - int64(i), 0}
	}
	return steps
}

type step struct {
	at        time.Duration // since t0
	allowed   bool
	remaining int64         // when allowed
	retry     time.Duration // when rejected
}

func TestGCRA(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		rate  string
		steps []step
	}{
		{"10/s", append(atOnce(10), []step{ // T = 100ms: 10 at once, then one per T
			{0, false, 0, time.Second}, // wait 100ms, rounded up to 1s
			{99 * ms, false, 0, time.Second},
			{100*ms - 1, false, 0, time.Second},
			{100 * ms, true, 0, 0}, // exact boundary
			{150 * ms, false, 0, time.Second},
			{200 * ms, true, 0, 0},
			{10 * time.Second, true, 9, 0}, // fully refilled
		}...)},
		{"100/s burst 2", append(atOnce(102), []step{ // 102 at once, then one per 10ms
			{0, false, 0, time.Second},
			{10 * ms, true, 0, 0}, {10 * ms, false, 0, time.Second},
			{2 * time.Second, true, 101, 0}, // fully refilled
		}...)},
		{"1/s burst 2", []step{
			{0, true, 2, 0}, {0, true, 1, 0}, {0, true, 0, 0},
			{0, false, 0, time.Second},         // wait exactly 1s
			{500 * ms, false, 0, time.Second},  // wait 500ms → 1s
			{time.Second, true, 0, 0},          // one refilled
			{2500 * ms, true, 0, 0},            // 1.5s later: one more (bucket at 1.5 of 3)
			{2500 * ms, false, 0, time.Second}, // 0.5s short
			{10 * time.Second, true, 2, 0},     // full again
		}},
		{"1/m", []step{
			{0, true, 0, 0},
			{time.Second, false, 0, 59 * time.Second},
			{59*time.Second + 1, false, 0, 1 * time.Second},
			{time.Minute, true, 0, 0},
		}},
		{"3/s", append(atOnce(3), []step{ // T rounds up to 333333334ns
			{0, false, 0, time.Second},
			{333333333, false, 0, time.Second},
			{333333334, true, 0, 0},
		}...)},
		{"1000000000/s", []step{ // T = 1ns: no overflow, no division by zero
			{0, true, 999999999, 0}, {0, true, 999999998, 0},
		}},
		{"1000000000/s burst 1000000000000", []step{
			{0, true, 1000999999999, 0}, {0, true, 1000999999998, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.rate, func(t *testing.T) {
			m := NewMemory(MemoryOptions{})
			l := lim(t, "r", tt.rate)
			for i, s := range tt.steps {
				d := try(t, m, t0.Add(s.at), []string{"k"}, l)
				if d.Allowed != s.allowed || (s.allowed && d.Remaining != s.remaining) || (!s.allowed && (d.RetryAfter != s.retry || d.Remaining != 0)) {
					t.Fatalf("step %d at +%v: got allowed=%v remaining=%d retry=%v, want %+v", i, s.at, d.Allowed, d.Remaining, d.RetryAfter, s)
				}
				if !d.Allowed && d.Reset != d.RetryAfter {
					t.Fatalf("step %d: Reset %v != RetryAfter %v on a rejection", i, d.Reset, d.RetryAfter)
				}
			}
		})
	}
}

func TestGCRAReset(t *testing.T) {
	m := NewMemory(MemoryOptions{})
	l := lim(t, "r", "10/s burst 4")
	for i := range 3 {
		d := try(t, m, t0, []string{"k"}, l)
		if want := time.Duration(i+1) * 100 * time.Millisecond; d.Reset != want {
			t.Fatalf("request %d: Reset = %v, want %v (time until drained)", i, d.Reset, want)
		}
	}
}

func TestQuota(t *testing.T) {
	day := 24 * time.Hour
	midnight := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	t.Run("UTC day", func(t *testing.T) {
		m := NewMemory(MemoryOptions{})
		l := lim(t, "daily", "3/d")
		at := midnight.Add(-90 * time.Minute)
		for i := range 3 {
			d := try(t, m, at, []string{"k"}, l)
			if !d.Allowed || d.Remaining != int64(2-i) || d.Reset != 90*time.Minute || d.Quota != 3 || d.Window != day {
				t.Fatalf("request %d: %+v", i, d)
			}
		}
		d := try(t, m, at, []string{"k"}, l)
		if d.Allowed || d.RetryAfter != 90*time.Minute {
			t.Fatalf("4th: %+v, want rejected until midnight", d)
		}
		d = try(t, m, midnight.Add(-1500*time.Millisecond), []string{"k"}, l)
		if d.Allowed || d.RetryAfter != 2*time.Second {
			t.Fatalf("1.5s before midnight: %+v, want Retry-After 2s", d)
		}
		d = try(t, m, midnight.Add(-1), []string{"k"}, l)
		if d.Allowed || d.RetryAfter != time.Second {
			t.Fatalf("1ns before midnight: %+v, want Retry-After 1s", d)
		}
		d = try(t, m, midnight, []string{"k"}, l)
		if !d.Allowed || d.Remaining != 2 || d.Reset != day {
			t.Fatalf("at midnight: %+v, want a new window", d)
		}
	})
	t.Run("time zone does not matter", func(t *testing.T) {
		m := NewMemory(MemoryOptions{})
		l := lim(t, "daily", "1/d")
		tz := time.FixedZone("UTC+5", 5*3600)
		try(t, m, midnight.Add(-time.Hour).In(tz), []string{"k"}, l)
		if d := try(t, m, midnight.Add(-time.Minute).In(tz), []string{"k"}, l); d.Allowed {
			t.Fatal("same UTC day admitted twice")
		}
	})
	t.Run("30d aligned to the epoch", func(t *testing.T) {
		// 2026-03-01 is day 20513 since the epoch; 30-day windows start
		// on day 20490 (2026-02-06) and 20520 (2026-03-08).
		start := time.Date(2026, 2, 6, 0, 0, 0, 0, time.UTC)
		end := time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC)
		m := NewMemory(MemoryOptions{})
		l := lim(t, "monthly", "2/30d")
		try(t, m, start, []string{"k"}, l)
		d := try(t, m, t0, []string{"k"}, l)
		if !d.Allowed || d.Remaining != 0 || d.Reset != end.Sub(t0) {
			t.Fatalf("second: %+v, want Reset %v", d, end.Sub(t0))
		}
		if d := try(t, m, end.Add(-1), []string{"k"}, l); d.Allowed || d.RetryAfter != time.Second {
			t.Fatalf("before the end: %+v", d)
		}
		if d := try(t, m, end, []string{"k"}, l); !d.Allowed || d.Remaining != 1 {
			t.Fatalf("at the end: %+v", d)
		}
	})
	t.Run("hours", func(t *testing.T) {
		m := NewMemory(MemoryOptions{})
		l := lim(t, "hourly", "1/h")
		try(t, m, t0.Add(59*time.Minute), []string{"k"}, l)
		if d := try(t, m, t0.Add(60*time.Minute), []string{"k"}, l); !d.Allowed {
			t.Fatal("a new clock hour did not reset the quota")
		}
	})
}

func TestAllOrNothing(t *testing.T) {
	rate := lim(t, "rate", "1/s burst 4") // 5 at once
	daily := lim(t, "daily", "1/d")
	m := NewMemory(MemoryOptions{})
	keys := []string{"rate-key", "daily-key"}

	if d := try(t, m, t0, keys, rate, daily); !d.Allowed || d.LimitName != "daily" || d.Index != 1 || d.Remaining != 0 {
		t.Fatalf("first: %+v, want allowed with daily as the most restrictive", d)
	}
	for range 3 { // rejected by the second limit: the first is not charged
		d := try(t, m, t0, keys, rate, daily)
		if d.Allowed || d.LimitName != "daily" || d.Index != 1 {
			t.Fatalf("rejected: %+v", d)
		}
		if want := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC).Sub(t0); d.RetryAfter != want {
			t.Fatalf("RetryAfter %v, want %v", d.RetryAfter, want)
		}
	}
	if d := try(t, m, t0, keys[:1], rate); !d.Allowed || d.Remaining != 3 {
		t.Fatalf("rate alone: %+v, want 3 left (only the first request charged it)", d)
	}

	// Rejected by the first limit: the second is not charged.
	m = NewMemory(MemoryOptions{})
	strict := lim(t, "strict", "1/m")
	quota := lim(t, "quota", "10/d")
	try(t, m, t0, []string{"s", "q"}, strict, quota)
	for range 5 {
		if d := try(t, m, t0, []string{"s", "q"}, strict, quota); d.Allowed || d.LimitName != "strict" || d.RetryAfter != time.Minute {
			t.Fatalf("%+v", d)
		}
	}
	if d := try(t, m, t0, []string{"q"}, quota); d.Remaining != 8 {
		t.Fatalf("quota alone: %+v, want 8 left", d)
	}

	// Several limits reject: RetryAfter is the longest wait.
	three := []Limit{strict, lim(t, "q0", "1/d"), lim(t, "slow", "1/h")}
	if d := try(t, m, t0, []string{"s2", "q2", "x"}, three...); !d.Allowed {
		t.Fatalf("%+v", d)
	}
	d := try(t, m, t0, []string{"s2", "q2", "x"}, three...) // waits: 1m, 12h (midnight), 1h
	if d.Allowed || d.LimitName != "q0" || d.RetryAfter != 12*time.Hour {
		t.Fatalf("%+v, want q0 binding for 12h", d)
	}
}

func TestConcurrencyExact(t *testing.T) {
	const (
		goroutines = 32
		perG       = 500
		k          = 3000
	)
	rate := Limit{Name: "rate", Rate: config.Rate{N: 1, Per: time.Second, Burst: k - 1}} // k at once
	quota := lim(t, "quota", "5000/d")
	own := lim(t, "own", "1000/s burst 1000")
	m := NewMemory(MemoryOptions{})
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			keys := []string{"shared-rate", "shared-quota", Key("own", fmt.Sprint(g))}
			req := Request{Keys: keys, Limits: []Limit{rate, quota, own}}
			var d Decision
			for range perG {
				// Reverse the order for half of the goroutines: lock
				// ordering must not depend on it.
				r := req
				if g%2 == 1 {
					r = Request{Keys: []string{keys[2], keys[1], keys[0]}, Limits: []Limit{own, quota, rate}}
				}
				if err := m.Decide(context.Background(), t0, r, &d); err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := admitted.Load(); got != k {
		t.Fatalf("admitted %d, want exactly %d", got, k)
	}
	if d := try(t, m, t0, []string{"shared-quota"}, quota); d.Remaining != 5000-k-1 {
		t.Fatalf("quota charged %d times, want %d", 5000-1-d.Remaining, k)
	}
}

func TestEviction(t *testing.T) {
	const max = 1024 // one shard
	one := lim(t, "r", "1/m")
	key := func(i int) string { return Key("k", fmt.Sprint(i)) }

	t.Run("idle keys go first and nothing changes", func(t *testing.T) {
		m := NewMemory(MemoryOptions{MaxKeys: max})
		short := lim(t, "s", "1/s")
		for i := range max {
			l := one
			if i%2 == 0 {
				l = short
			}
			try(t, m, t0, []string{key(i)}, l)
		}
		later := t0.Add(2 * time.Second) // the 1/s keys are idle, the 1/m are not
		try(t, m, later, []string{"new"}, one)
		if got := m.Len(); got != max/2+1 {
			t.Fatalf("Len = %d, want %d (idle keys swept)", got, max/2+1)
		}
		for i := 1; i < max; i += 2 {
			if d := try(t, m, later, []string{key(i)}, one); d.Allowed {
				t.Fatalf("live key %d was forgiven", i)
			}
		}
	})
	t.Run("least recently used when none is idle", func(t *testing.T) {
		m := NewMemory(MemoryOptions{MaxKeys: max})
		for i := range max {
			try(t, m, t0, []string{key(i)}, one)
		}
		if d := try(t, m, t0, []string{key(0)}, one); d.Allowed { // rejected, but used
			t.Fatal("key 0 admitted twice")
		}
		try(t, m, t0, []string{"new"}, one)
		if got := m.Len(); got != max {
			t.Fatalf("Len = %d, want %d", got, max)
		}
		if d := try(t, m, t0, []string{key(0)}, one); d.Allowed {
			t.Fatal("recently used key 0 was evicted")
		}
		if d := try(t, m, t0, []string{key(1)}, one); !d.Allowed {
			t.Fatal("least recently used key 1 was kept")
		}
	})
	t.Run("a request never evicts its own keys", func(t *testing.T) {
		m := NewMemory(MemoryOptions{MaxKeys: 2}) // one shard of 2
		limits := []Limit{lim(t, "a", "1/m"), lim(t, "b", "1/m"), lim(t, "c", "1/m")}
		if d := try(t, m, t0, []string{"a", "b", "c"}, limits...); !d.Allowed {
			t.Fatal(d)
		}
		if d := try(t, m, t0, []string{"a", "b", "c"}, limits...); d.Allowed {
			t.Fatal("second request admitted: a key of the first was evicted while deciding")
		}
		if got := m.Len(); got != 3 {
			t.Fatalf("Len = %d, want 3 (over the bound by the request's own keys)", got)
		}
	})
	t.Run("bounded under a flood", func(t *testing.T) {
		m := NewMemory(MemoryOptions{MaxKeys: 4096})
		for i := range 50000 {
			try(t, m, t0.Add(time.Duration(i)*time.Microsecond), []string{key(i)}, one)
		}
		if got := m.Len(); got > 4096 {
			t.Fatalf("Len = %d, over the bound", got)
		}
	})
}

func TestRetryAfterRounding(t *testing.T) {
	for _, tt := range []struct {
		wait int64
		want time.Duration
	}{
		{1, time.Second}, {int64(time.Second) - 1, time.Second}, {int64(time.Second), time.Second},
		{int64(time.Second) + 1, 2 * time.Second}, {int64(90 * time.Minute), 90 * time.Minute},
		{math.MaxInt64, time.Duration(math.MaxInt64 / int64(time.Second) * int64(time.Second))},
	} {
		if got := retryAfter(tt.wait); got != tt.want {
			t.Errorf("retryAfter(%d) = %v, want %v", tt.wait, got, tt.want)
		}
	}
}

func TestExtremeRates(t *testing.T) {
	m := NewMemory(MemoryOptions{})
	for _, r := range []config.Rate{
		{N: math.MaxInt64, Per: 1},
		{N: 1, Per: config.QuotaPeriod - 1, Burst: math.MaxInt64},
		{N: math.MaxInt64, Per: math.MaxInt64},
		{N: 1, Per: math.MaxInt64},
		{N: 7, Per: 1, Burst: math.MaxInt64},
	} {
		for _, now := range []time.Time{t0, {}, time.Unix(0, math.MaxInt64), time.Unix(-1<<40, 0)} {
			key := Key(fmt.Sprint(r), fmt.Sprint(now.UnixNano()))
			d := try(t, m, now, []string{key}, Limit{Name: "x", Rate: r})
			if !d.Allowed {
				t.Fatalf("%+v at %v: first request rejected: %+v", r, now, d)
			}
			try(t, m, now, []string{key}, Limit{Name: "x", Rate: r})
		}
	}
}

func TestRequestErrors(t *testing.T) {
	m := NewMemory(MemoryOptions{})
	l := lim(t, "a", "1/s")
	var d Decision
	for _, tt := range []struct {
		req  Request
		want string
	}{
		{Request{Keys: []string{"a"}}, "one key per limit"},
		{Request{Keys: []string{"a", "a"}, Limits: []Limit{l, l}}, "same key"},
		{Request{Keys: []string{"a"}, Limits: []Limit{{Name: "z", Rate: config.Rate{N: 0, Per: time.Second}}}}, "more than 0"},
		{Request{Keys: []string{"a"}, Limits: []Limit{{Name: "z", Rate: config.Rate{N: 1}}}}, "period"},
		{Request{Keys: []string{"a"}, Limits: []Limit{{Name: "z", Rate: config.Rate{N: 1, Per: time.Second, Burst: -1}}}}, "negative"},
		{Request{Keys: []string{"a"}, Limits: []Limit{lim(t, "q", "100/d burst 5")}}, "burst applies only"},
	} {
		err := m.Decide(context.Background(), t0, tt.req, &d)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: err = %v, want %q", tt.req, err, tt.want)
		}
	}
	if m.Len() != 0 {
		t.Fatal("a refused request left state behind")
	}
	if err := m.Decide(context.Background(), t0, Request{}, &d); err != nil || !d.Allowed || d.Index != -1 {
		t.Fatalf("no limits: %v %+v", err, d)
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		l  Limit
		ok bool
	}{
		{lim(t, "consumer", "100/s burst 50"), true},
		{lim(t, "route:ip", "1000000/d"), true},
		{lim(t, "", "1/s"), false},
		{lim(t, "bad\nname", "1/s"), false},
		{lim(t, "q", "5/30d burst 1"), false},
		{lim(t, "r", "59/59m burst 1"), true},
	} {
		if err := tt.l.Validate(); (err == nil) != tt.ok {
			t.Errorf("%+v: Validate() = %v", tt.l, err)
		}
	}
}

func TestHeaders(t *testing.T) {
	got := string(AppendPolicy(nil, lim(t, "consumer", "100/s burst 50"), lim(t, "daily", "1000000/d"), lim(t, `q"\`, "5/30d")))
	want := `"consumer";q=100;w=1, "daily";q=1000000;w=86400, "q\"\\";q=5;w=2592000`
	if got != want {
		t.Errorf("AppendPolicy = %s, want %s", got, want)
	}
	d := Decision{Index: 0, LimitName: "consumer", Remaining: 42, Reset: 1500 * time.Millisecond}
	if got := string(d.AppendRateLimit(nil)); got != `"consumer";r=42;t=2` {
		t.Errorf("AppendRateLimit = %s", got)
	}
	d = Decision{Index: -1}
	if got := d.AppendRateLimit(nil); len(got) != 0 {
		t.Errorf("no limits: %q", got)
	}
}

func TestKey(t *testing.T) {
	// Parts that concatenate to the same bytes give different keys.
	sets := [][]string{
		{"route:ip", "a:b", "1.2.3.4"},
		{"route:ip", "a", "b:1.2.3.4"},
		{"route:ip", "a", "b1.2.3.4"},
		{"route:ip", "a:b1.2.3.4"},
		{"route", "ip", "a:b", "1.2.3.4"},
		{"route:ip", "a\x00b", "1.2.3.4"},
		{"route:ip", "a", "\x00b", "1.2.3.4"},
		{"1:a", ""},
		{"1:a"},
		{"", "1:a"},
		{"3:1:a"},
		{},
	}
	seen := map[string]int{}
	for i, s := range sets {
		k := Key(s...)
		if j, dup := seen[k]; dup {
			t.Fatalf("%q and %q share the key %q", sets[j], s, k)
		}
		seen[k] = i
	}
	if got := Key("route:ip", "a:b", "1.2.3.4"); got != "8:route:ip3:a:b7:1.2.3.4" {
		t.Errorf("Key = %q", got)
	}
	if got := Key(strings.Repeat("x", 300)); got != "300:"+strings.Repeat("x", 300) {
		t.Error("long key")
	}
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { buf = AppendKey(buf[:0], "route:ip", "orders", "203.0.113.9") }); n != 0 {
		t.Errorf("AppendKey allocates %v times", n)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	rate := lim(t, "rate", "10/s burst 4")
	quota := lim(t, "quota", "100/d")
	short := lim(t, "short", "1/s")
	m := NewMemory(MemoryOptions{})
	for i := range 50 {
		try(t, m, t0, []string{Key("r", fmt.Sprint(i)), Key("q", fmt.Sprint(i))}, rate, quota)
		try(t, m, t0, []string{Key("q", fmt.Sprint(i))}, quota)
		try(t, m, t0, []string{Key("s", fmt.Sprint(i))}, short)
	}
	now := t0.Add(200 * time.Millisecond) // the 1/s keys are still live, the rates partly drained
	var buf bytes.Buffer
	if err := m.Snapshot(&buf, now); err != nil {
		t.Fatal(err)
	}
	snap := buf.Bytes()

	r := NewMemory(MemoryOptions{})
	if err := r.Restore(bytes.NewReader(snap), now); err != nil {
		t.Fatal(err)
	}
	if r.Len() != 100 { // the rate keys (one request, T = 100ms) are idle at +200ms
		t.Fatalf("restored %d keys, want the 100 live ones", r.Len())
	}
	for i := range 50 {
		for _, c := range []struct {
			keys   []string
			limits []Limit
		}{
			{[]string{Key("r", fmt.Sprint(i)), Key("q", fmt.Sprint(i))}, []Limit{rate, quota}},
			{[]string{Key("s", fmt.Sprint(i))}, []Limit{short}},
		} {
			a, b := try(t, m, now, c.keys, c.limits...), try(t, r, now, c.keys, c.limits...)
			if a != b {
				t.Fatalf("key %d: original %+v, restored %+v", i, a, b)
			}
		}
	}

	// Keys idle by the time of the restore are not loaded.
	r = NewMemory(MemoryOptions{})
	if err := r.Restore(bytes.NewReader(snap), t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if r.Len() != 50 { // only the quota keys are live at +2s
		t.Fatalf("restored %d keys, want the 50 quota keys", r.Len())
	}

	// Damaged snapshots load nothing.
	for name, bad := range map[string][]byte{
		"empty":     nil,
		"truncated": snap[:len(snap)/2],
		"no crc":    snap[:len(snap)-4],
		"flipped":   flip(snap, len(snap)/3),
		"magic":     flip(snap, 0),
		"crc":       flip(snap, len(snap)-1),
	} {
		r := NewMemory(MemoryOptions{})
		err := r.Restore(bytes.NewReader(bad), now)
		if !errors.Is(err, ErrBadSnapshot) || r.Len() != 0 {
			t.Errorf("%s: err = %v, %d keys loaded", name, err, r.Len())
		}
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x10
	return c
}
