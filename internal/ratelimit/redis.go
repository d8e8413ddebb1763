package ratelimit

import (
	"context"
	"crypto/sha256"
	_ "embed" // the Lua script
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/breakwater/breakwater/internal/redisconn"
)

// ErrUnavailable wraps every error of Redis.Decide that comes from Redis
// rather than from the request: the breaker is open, Redis did not answer
// within the command timeout, or it answered with an error. The gateway
// applies store.on_unavailable to it.
var ErrUnavailable = errors.New("rate limit store unavailable")

//go:embed redis.lua
var decideScript string

// Redis is the Store shared by gateway instances through Redis. It is safe
// for concurrent use.
//
// # One atomic call per request
//
// Decide sends every key and limit of a request to one Lua script
// (EVALSHA, falling back to EVAL when Redis does not know the script yet),
// which reads every key, decides each limit with the arithmetic of decide
// in gcra.go and writes all of them only if all admit: all or nothing, in
// one round trip, exact under any concurrency and across instances. The
// script returns the state it read, and Decide recomputes each outcome with
// decide itself, so the Decision fields are those Memory would give for
// the same state, by construction. Lua numbers are doubles, so the script
// handles 19-digit nanosecond times as two exact parts; Go passes it every
// value that does not depend on the stored state (now+τ, T, the window
// end), computed by the same functions Memory uses.
//
// # Keys
//
// A key of the request is stored as "{bw:rl}k" + key, or "{bw:rl}h" +
// base64url(SHA-256(key)) when the key is longer than 256 bytes (a long
// header or claim value costs Redis a fixed amount). Each carries a TTL: the
// time until its state is idle (a drained bucket, the end of a quota
// window), rounded up to the millisecond, plus one second; an idle key
// behaves exactly like a missing one, so Redis forgets it by itself.
//
// # Redis Cluster
//
// A script may only touch keys of one hash slot, and the keys of one
// request belong to different owners: the consumer's own limits, the
// route's, the client IP's. A tag derived from the request (its first key,
// say) would give the same limit a different Redis key in different
// requests — the route-wide counter split per consumer — so it would not
// limit anything. A tag derived from each key alone would put the keys of
// one request in different slots, and a request split by slot is not
// atomic: it could be charged by one slot and refused by another. Every
// rate limit key therefore carries the same tag, {bw:rl}: in a cluster they
// all live in one slot, on one master (and its replicas). That keeps the
// limits exact and all-or-nothing; the cost is that rate limiting does not
// scale out with the cluster — one Redis core runs some 50-100 thousand of
// these scripts a second — while the other shared state (nonces,
// revocations) spreads over every slot. The tag is used in every mode, so
// keys do not change when a standalone Redis becomes a cluster.
//
// # Time
//
// Decide uses the now it is given (the gateway's clock), not Redis TIME:
// decisions are then identical to Memory's, tests drive time, and Reset
// and RetryAfter are relative to the request the gateway is answering.
// Instances whose clocks disagree by s share limits slightly unevenly: the
// one ahead sees a TAT s nearer and may admit up to s/T requests early,
// which the others then owe (the total over time is unchanged); a quota
// window ends up to s early on one instance. With NTP (skew well under
// 10 ms) that is below one request for any rate up to 100/s.
type Redis struct {
	conn   *redisconn.Conn
	script *rueidis.Lua
}

// NewRedis returns a Store that keeps its state in Redis through conn,
// which it does not close.
func NewRedis(conn *redisconn.Conn) *Redis {
	return &Redis{conn: conn, script: rueidis.NewLuaScript(decideScript)}
}

var _ Store = (*Redis)(nil)

// Key layout and limits; see the type documentation.
const (
	redisTag     = "{bw:rl}"
	maxRawKey    = 256
	ttlSlackMS   = "1000"
	digits       = 19
	argsPerLimit = 4
)

// redisKey returns the Redis key of a store key.
func redisKey(key string) string {
	if len(key) <= maxRawKey {
		return redisTag + "k" + key
	}
	sum := sha256.Sum256([]byte(key))
	return redisTag + "h" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// Decide implements Store. Errors from Redis wrap ErrUnavailable; they come
// back at once, without a call to Redis, while the breaker is open. ctx
// bounds the call together with the command timeout of the connection.
func (s *Redis) Decide(ctx context.Context, now time.Time, req Request, d *Decision) error {
	if err := checkRequest(req); err != nil {
		return err
	}
	n := len(req.Limits)
	if n == 0 {
		*d = Decision{Allowed: true, Index: -1}
		return nil
	}
	t := clampNow(now.UnixNano())
	keys := make([]string, n)
	args := make([]string, 2, 2+argsPerLimit*n)
	args[0], args[1] = pad(t), ttlSlackMS
	for i, k := range req.Keys {
		keys[i] = redisKey(k)
		r := &req.Limits[i].Rate
		if r.IsQuota() {
			per := int64(r.Per)
			end := satAdd(t-t%per, per)
			args = append(args, "q", pad(end), pad(r.N), strconv.FormatInt(ceilMS(end-t), 10))
		} else {
			it := interval(r)
			tau := satMul(satAdd(r.N-1, r.Burst), it)
			args = append(args, "g", pad(satAdd(t, tau)), pad(it), "")
		}
	}

	var reply []rueidis.RedisMessage
	err := s.conn.Do(ctx, func(ctx context.Context, cl rueidis.Client) error {
		var err error
		reply, err = s.script.Exec(ctx, cl, keys, args).ToArray()
		return err
	})
	if err != nil {
		return fmt.Errorf("ratelimit: %w: %w", ErrUnavailable, err)
	}
	if len(reply) != n+1 {
		return fmt.Errorf("ratelimit: %w: script returned %d values for %d keys", ErrUnavailable, len(reply), n)
	}
	verdict, err := reply[0].AsInt64()
	if err != nil {
		return fmt.Errorf("ratelimit: %w: script verdict: %w", ErrUnavailable, err)
	}

	const small = 8
	var outBuf [small]outcome
	outs := outBuf[:0]
	if n > small {
		outs = make([]outcome, 0, n)
	}
	allowed := true
	for i := range n {
		v, err := reply[i+1].ToString()
		if err != nil {
			return fmt.Errorf("ratelimit: %w: script value: %w", ErrUnavailable, err)
		}
		st, found := parseState(v)
		o := decide(&req.Limits[i].Rate, st, found, t)
		allowed = allowed && o.ok
		outs = append(outs, o)
	}
	if allowed != (verdict == 1) {
		// Cannot happen unless the script and decide disagree: a bug.
		return fmt.Errorf("ratelimit: redis script decided %d where the reference decided %v", verdict, allowed)
	}
	fill(d, req.Limits, outs, allowed)
	return nil
}

// parseState reads a stored value the way the script does: 19 digits of
// time then "g" (a GCRA TAT), or 19 digits of window end, "q" and 19 digits
// of count (a quota). Anything else, including a number beyond
// math.MaxInt64, is no state.
func parseState(v string) (state, bool) {
	switch {
	case len(v) == digits+1 && v[digits] == 'g':
		exp, ok := parse19(v[:digits])
		return state{exp: exp, count: gcraMark}, ok
	case len(v) == 2*digits+1 && v[digits] == 'q':
		exp, ok1 := parse19(v[:digits])
		count, ok2 := parse19(v[digits+1:])
		return state{exp: exp, count: count}, ok1 && ok2
	}
	return state{}, false
}

// parse19 parses exactly 19 decimal digits, at most math.MaxInt64.
func parse19(s string) (int64, bool) {
	if len(s) != digits {
		return 0, false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// pad formats n ≥ 0 as 19 digits with leading zeros.
func pad(n int64) string {
	var buf [digits]byte
	b := strconv.AppendInt(buf[:0], n, 10)
	var out [digits]byte
	copy(out[digits-len(b):], b)
	for i := range digits - len(b) {
		out[i] = '0'
	}
	return string(out[:])
}

// ceilMS rounds ns up to whole milliseconds.
func ceilMS(ns int64) int64 {
	if ns <= 0 {
		return 0
	}
	return (ns-1)/int64(time.Millisecond) + 1
}
