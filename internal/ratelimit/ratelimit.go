// Package ratelimit decides whether a request is within its rate limits and
// quotas, and says what to put in the RateLimit headers.
//
// # Rates and quotas
//
// A [Limit] carries a parsed [config.Rate] ("N/period [burst B]"). How it is
// enforced depends on the period:
//
//   - Period under one hour ("100/s burst 50", "300/m"): a rate, enforced
//     with GCRA (the generic cell rate algorithm: a token bucket kept as one
//     timestamp per key, the theoretical arrival time TAT). The emission
//     interval is T = Per/N (rounded up to a whole nanosecond, so the rate is
//     never more generous than written) and the tolerance is
//     τ = (N − 1 + Burst)·T. A request at time now is admitted when
//     TAT − now ≤ τ, and then TAT = max(TAT, now) + T. So an idle key admits
//     N + Burst requests at once — one period's allowance plus the burst —
//     and then one every T: "300/m" admits 300 at once, then 5 a second;
//     "100/s burst 50" admits 150 at once, then 100 a second. Over any
//     interval of length d an idle key admits at most N + Burst + ⌊d/T⌋
//     requests. The window is rolling: nothing is aligned to the clock.
//   - Period of one hour or more ("1000000/d", "5/30d", "100/h"): a quota,
//     a counter over fixed windows aligned to the Unix epoch in UTC:
//     [k·Per, (k+1)·Per). For "/d" the windows are UTC days, for "/h" clock
//     hours, for "/30d" blocks of 30 days counted from 1970-01-01T00:00:00Z
//     (not calendar months). The counter starts at zero at the beginning of
//     each window; at most N requests are admitted per window. A burst is
//     meaningless for a quota and is rejected ([Limit.Validate]).
//
// # All or nothing
//
// [Store.Decide] checks every limit of one request together: either every
// limit admits the request and every one is charged, or the request is
// rejected and none is charged. A client rejected by a daily quota does not
// burn its per-second rate, and one rejected by its per-second rate does not
// burn its daily quota.
//
// # Keys
//
// Each limit of a request is charged against a key, built with [Key] or
// [AppendKey] from length-prefixed parts so that keys of different scopes
// never collide. A key must name the limit as well as the identity: the two
// limits of a consumer ("100/s burst 50" and "1000000/d") need two keys.
//
// # Time
//
// Time is a parameter (as in golang.org/x/time/rate): Decide takes now, so
// tests never sleep and a store can be driven by any clock. Times before
// the Unix epoch count as the epoch.
//
// # Stores
//
// [Memory] is the embedded store: sharded, exact under concurrency, with a
// bound on the number of keys. A Redis store will implement [Store] with one
// Lua script per request that receives every key and limit, applies the same
// arithmetic as this package (see decide in gcra.go, which is the reference)
// and commits only if all admit, in one round trip.
//
// # Persistence
//
// [Memory.Snapshot] writes the live state (TATs and quota counters; idle keys
// are omitted since they equal the initial state) and [Memory.Restore] reads
// it back, so the gateway can save it to its data directory at shutdown and
// periodically and a restart does not reset a daily quota. The format is
// versioned and checksummed; the choice of file, schedule and atomic rename
// belongs to the caller.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/breakwater/breakwater/internal/config"
)

// Limit is one rate limit or quota as configured.
type Limit struct {
	// Name identifies the limit in the RateLimit headers and in metrics,
	// such as "consumer" or "route:ip". Printable ASCII.
	Name string
	// Rate is the parsed rate; see the package documentation for how it is
	// enforced.
	Rate config.Rate
}

// Validate reports whether the limit can be enforced: N and Per positive,
// Burst zero or more and zero for quotas, Name non-empty printable ASCII.
// The gateway calls it when it loads the config; Decide refuses a request
// with an invalid limit.
func (l Limit) Validate() error {
	if err := l.check(); err != nil {
		return err
	}
	if l.Name == "" {
		return errors.New("ratelimit: a limit needs a name")
	}
	for i := range len(l.Name) {
		if c := l.Name[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("ratelimit: limit name %q: only printable ASCII is allowed", l.Name)
		}
	}
	return nil
}

// check is the part of Validate that Decide needs so that the arithmetic is
// defined.
func (l Limit) check() error {
	r := l.Rate
	switch {
	case r.N <= 0:
		return fmt.Errorf("ratelimit: limit %q: the number of requests must be more than 0", l.Name)
	case r.Per <= 0:
		return fmt.Errorf("ratelimit: limit %q: the period must be more than 0", l.Name)
	case r.Burst < 0:
		return fmt.Errorf("ratelimit: limit %q: the burst cannot be negative", l.Name)
	case r.Burst > 0 && r.IsQuota():
		return fmt.Errorf("ratelimit: limit %q (%s): a burst applies only to rates with a period under an hour; quotas count requests per window", l.Name, r)
	}
	return nil
}

// Request is every limit that applies to one HTTP request.
type Request struct {
	// Keys[i] is the key Limits[i] is charged against; keys must be
	// distinct within a request. They are kept by the store as given, so
	// they must be ordinary (immutable) strings.
	Keys []string
	// Limits are the limits, in any order.
	Limits []Limit
}

// Decision is the outcome of Decide. A caller may reuse one Decision for
// many calls: every field is overwritten.
type Decision struct {
	// Allowed is true when every limit admitted the request (and each was
	// charged), false when at least one rejected it (and none was charged).
	Allowed bool
	// RetryAfter is set when the request was rejected: the time until the
	// binding limit admits one request again, rounded up to whole seconds
	// and at least one second, for the Retry-After header. When several
	// limits reject, it is the longest of their waits.
	RetryAfter time.Duration

	// The fields below describe one limit for the RateLimit header: when
	// the request was rejected the binding limit (the one RetryAfter
	// comes from), otherwise the limit with the fewest remaining requests
	// after this one (ties: the later reset).

	// Index is the position of that limit in Request.Limits, -1 when the
	// request had no limits (and the other fields are zero).
	Index int
	// LimitName is its Limit.Name.
	LimitName string
	// Quota and Window are its N and Per, for RateLimit-Policy q and w.
	Quota  int64
	Window time.Duration
	// Remaining is how many more requests it admits right now (0 when
	// rejected). For a GCRA rate this counts the burst, so it may exceed
	// Quota when Burst ≥ N.
	Remaining int64
	// Reset is the time until it is back to its full allowance: the end of
	// the window for a quota, the time until the bucket has fully drained
	// for a rate. When rejected it equals RetryAfter, as the draft asks.
	Reset time.Duration
}

// Store decides rate limits. Implementations are safe for concurrent use.
type Store interface {
	// Decide checks every (key, limit) of req together at time now and
	// writes the outcome to d: either all admit and all are charged, or
	// the request is rejected and none is charged. An error (invalid
	// limit, mismatched lengths, duplicate key, an unreachable backend)
	// leaves d undefined and charges nothing; the caller decides whether
	// to fail open or closed.
	Decide(ctx context.Context, now time.Time, req Request, d *Decision) error
}

// Errors returned by Decide for a malformed request.
var (
	ErrMismatch     = errors.New("ratelimit: a request needs exactly one key per limit")
	ErrDuplicateKey = errors.New("ratelimit: a request uses the same key for two limits")
)

// checkRequest validates req before any state is read.
func checkRequest(req Request) error {
	if len(req.Keys) != len(req.Limits) {
		return ErrMismatch
	}
	for i := range req.Limits {
		if err := req.Limits[i].check(); err != nil {
			return err
		}
		for j := range i {
			if req.Keys[i] == req.Keys[j] {
				return ErrDuplicateKey
			}
		}
	}
	return nil
}

// AppendPolicy appends a RateLimit-Policy field value listing the limits,
// such as `"consumer";q=100;w=1, "daily";q=1000000;w=86400`, following
// draft-ietf-httpapi-ratelimit-headers-08 to -10 (a List of Items; each item
// a policy name as an sf-string with the parameters q, the quota, and w,
// the window in seconds). The value depends only on the config, so the
// gateway can compute it once per route and consumer. For a GCRA rate q and
// w are the nominal N and Per; the burst is not expressed (the draft has no
// parameter for it).
func AppendPolicy(dst []byte, limits ...Limit) []byte {
	for i, l := range limits {
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = appendSFString(dst, l.Name)
		dst = append(dst, ";q="...)
		dst = strconv.AppendInt(dst, sfInt(l.Rate.N), 10)
		dst = append(dst, ";w="...)
		dst = strconv.AppendInt(dst, seconds(l.Rate.Per), 10)
	}
	return dst
}

// AppendRateLimit appends the RateLimit field value for d, such as
// `"consumer";r=42;t=1` (draft-ietf-httpapi-ratelimit-headers-08 to -10: the
// policy name, r the remaining requests, t the seconds until reset, rounded
// up). It appends nothing when the request had no limits.
func (d *Decision) AppendRateLimit(dst []byte) []byte {
	if d.Index < 0 {
		return dst
	}
	dst = appendSFString(dst, d.LimitName)
	dst = append(dst, ";r="...)
	dst = strconv.AppendInt(dst, sfInt(d.Remaining), 10)
	dst = append(dst, ";t="...)
	return strconv.AppendInt(dst, seconds(d.Reset), 10)
}

// maxSFInt is the largest Integer a structured field may carry (RFC 9651).
const maxSFInt = 999_999_999_999_999

func sfInt(n int64) int64 { return max(0, min(n, maxSFInt)) }

// seconds rounds d up to whole seconds, at least 0, within maxSFInt.
func seconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return sfInt(int64((d-1)/time.Second) + 1)
}

// appendSFString appends s as a structured-field String: quoted, with " and
// \ escaped; bytes outside printable ASCII (refused by Validate) become '?'.
func appendSFString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := range len(s) {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20 || c > 0x7e:
			dst = append(dst, '?')
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// retryAfter rounds a wait up to whole seconds, at least one second.
func retryAfter(wait int64) time.Duration {
	if wait <= int64(time.Second) {
		return time.Second
	}
	s := (wait-1)/int64(time.Second) + 1
	if s > math.MaxInt64/int64(time.Second) {
		return time.Duration(math.MaxInt64 / int64(time.Second) * int64(time.Second))
	}
	return time.Duration(s * int64(time.Second))
}
