package ratelimit

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/config"
)

// FuzzDecide drives two limits with arbitrary rates at one fixed instant:
// Decide must never panic or fail for valid limits, and must admit exactly
// min(requests, capacity of each limit), where the capacity at one instant
// is N+Burst for a rate and N for a quota.
func FuzzDecide(f *testing.F) {
	f.Add(int64(100), int64(time.Second), int64(50), int64(1000000), int64(24*time.Hour), int64(0), t0.UnixNano(), uint16(200))
	f.Add(int64(1000000000), int64(1), int64(0), int64(3), int64(30*24*time.Hour), int64(0), int64(0), uint16(10))
	f.Add(int64(math.MaxInt64), int64(math.MaxInt64), int64(math.MaxInt64), int64(1), int64(time.Hour), int64(0), int64(math.MaxInt64), uint16(5))
	f.Add(int64(1), int64(time.Hour-1), int64(math.MaxInt64), int64(7), int64(1), int64(9), int64(-1), uint16(300))
	f.Fuzz(func(t *testing.T, n1, per1, burst1, n2, per2, burst2, now int64, reqs uint16) {
		r1, r2 := fuzzRate(n1, per1, burst1), fuzzRate(n2, per2, burst2)
		limits := []Limit{{Name: "a", Rate: r1}, {Name: "b", Rate: r2}}
		req := Request{Keys: []string{"a", "b"}, Limits: limits}
		m := NewMemory(MemoryOptions{MaxKeys: 16})
		at := time.Unix(0, now)
		count := int64(reqs % 301)
		var admitted int64
		var d Decision
		for range count {
			if err := m.Decide(context.Background(), at, req, &d); err != nil {
				t.Fatal(err)
			}
			if d.Allowed {
				admitted++
			} else if d.RetryAfter < time.Second || d.Remaining != 0 {
				t.Fatalf("rejection with %+v", d)
			}
		}
		if want := min(count, capacity(r1), capacity(r2)); admitted != want {
			t.Fatalf("%v + %v: admitted %d of %d, want %d", r1, r2, admitted, count, want)
		}
	})
}

// fuzzRate turns arbitrary numbers into a valid rate.
func fuzzRate(n, per, burst int64) config.Rate {
	r := config.Rate{N: max(1, n&math.MaxInt64), Per: time.Duration(max(1, per&math.MaxInt64)), Burst: burst & math.MaxInt64}
	if r.IsQuota() {
		r.Burst = 0
	}
	return r
}

func capacity(r config.Rate) int64 {
	if r.IsQuota() {
		return r.N
	}
	return satAdd(r.N, r.Burst)
}
