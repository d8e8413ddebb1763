package ratelimit

import (
	"math"

	"github.com/breakwater/breakwater/internal/config"
)

// state is what a store keeps per key: two integers, in nanoseconds since
// the Unix epoch where they are times.
//
//   - GCRA rate: exp = TAT, count = gcraMark.
//   - Quota: exp = end of the window the counter belongs to, count = the
//     requests admitted in that window (≥ 0).
//
// In both cases a state with exp ≤ now is equivalent to no state at all
// (a drained bucket, a past window), so such a key may be dropped at any
// time without changing any decision. A state of the other kind (the
// config changed a limit from rate to quota) is also treated as absent.
type state struct {
	exp   int64
	count int64
}

// gcraMark marks a GCRA state.
const gcraMark = -1

// maxNow bounds the clock so that now + one period never overflows into
// nonsense: times are clamped to [0, maxNow] (year 2116 is far beyond).
const maxNow = 1 << 62

// outcome is the verdict of one limit on one key.
type outcome struct {
	ok        bool
	next      state // the state to commit when every limit admits
	remaining int64 // requests still admitted after this one (0 when !ok)
	reset     int64 // ns until back to the full allowance
	wait      int64 // ns until one request is admitted again (when !ok)
}

// decide applies r to the current state st of a key (found false: no
// state) at time now, without changing anything. It is the reference
// arithmetic that every store implements.
func decide(r *config.Rate, st state, found bool, now int64) outcome {
	if r.IsQuota() {
		return decideQuota(r, st, found, now)
	}
	return decideGCRA(r, st, found, now)
}

// interval is the GCRA emission interval T = ⌈Per/N⌉, at least 1ns.
func interval(r *config.Rate) int64 {
	per, n := int64(r.Per), r.N
	t := per / n
	if per%n != 0 || t == 0 {
		t++
	}
	return t
}

func decideGCRA(r *config.Rate, st state, found bool, now int64) outcome {
	t := interval(r)
	tau := satMul(satAdd(r.N-1, r.Burst), t) // capacity N+Burst: a period's allowance, plus the burst
	tat := now
	if found && st.count == gcraMark && st.exp > now {
		tat = st.exp
	}
	ahead := tat - now // ≥ 0; no overflow: both in [0, MaxInt64]
	if ahead > tau {
		return outcome{reset: ahead, wait: ahead - tau}
	}
	next := satAdd(tat, t)
	return outcome{
		ok:        true,
		next:      state{exp: next, count: gcraMark},
		remaining: (tau - ahead) / t,
		reset:     next - now,
	}
}

func decideQuota(r *config.Rate, st state, found bool, now int64) outcome {
	per := int64(r.Per)
	end := satAdd(now-now%per, per)
	count := int64(0)
	if found && st.count >= 0 && st.exp == end {
		count = st.count
	}
	left := end - now
	if count >= r.N {
		return outcome{reset: left, wait: left}
	}
	return outcome{
		ok:        true,
		next:      state{exp: end, count: count + 1},
		remaining: r.N - count - 1,
		reset:     left,
	}
}

func satAdd(a, b int64) int64 { // a, b ≥ 0
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func satMul(a, b int64) int64 { // a, b ≥ 0
	if a != 0 && b > math.MaxInt64/a {
		return math.MaxInt64
	}
	return a * b
}

// clampNow turns a time in Unix nanoseconds into the range decide expects.
func clampNow(ns int64) int64 { return max(0, min(ns, maxNow)) }
