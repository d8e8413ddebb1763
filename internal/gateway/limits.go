package gateway

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/breakwater/breakwater/internal/concurrency"
	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/ratelimit"
	"github.com/breakwater/breakwater/internal/reqctx"
	"github.com/breakwater/breakwater/internal/telemetry"
)

// limitSet is the limits of one consumer or one route, with what can be
// computed from the config alone: the store keys that do not depend on the
// request, and the RateLimit-Policy value. Rate limits and quotas go to the
// rate limit store; concurrency limits (routes only) to the gateway's
// concurrency.Limiter.
type limitSet struct {
	limits []ratelimit.Limit
	keys   []limitKey
	policy string // RateLimit-Policy of the rate limits; "" for none

	conc     []concLimit
	hasConc  bool
	hasRates bool
}

// limitKey says how to build the store key of one limit: fixed by the config
// (the route's own key, a consumer's limits), or from the request's parts.
type limitKey struct {
	fixed string
	scope string // first key part: "route:consumer", "route:header:X-Tenant+ip", "concurrency:ip", …
	index string // position of the limit in routes[].rate_limits
	parts []config.LimitKeyPart
}

// concLimit is one concurrency limit of a route.
type concLimit struct {
	name string // "concurrency:consumer" (then "-2", …), for logs and events
	max  int
	key  limitKey
}

// compileLimits compiles the rate limits of the config. Names identify a
// limit in the RateLimit headers: "consumer" (then "consumer-2", …) for a
// consumer's own limits, "route:<key>" (then "route:<key>-2", …) for a
// route's. Store keys are length-prefixed parts, unique per limit; the keys
// of the kinds consumer, ip and route are those of earlier versions, so
// the persisted state still applies.
func compileLimits(cfg *config.Config) (map[string]*limitSet, []*limitSet, error) {
	consumers := make(map[string]*limitSet)
	for _, c := range cfg.Consumers {
		if len(c.RateLimits) == 0 {
			continue
		}
		ls := &limitSet{}
		for i, r := range c.RateLimits {
			ls.add(ratelimit.Limit{Name: numbered("consumer", i), Rate: r},
				limitKey{fixed: ratelimit.Key("consumer", strconv.Itoa(i), c.ID)})
		}
		if err := ls.finish(); err != nil {
			return nil, nil, fmt.Errorf("consumers %s: %w", c.ID, err)
		}
		consumers[c.ID] = ls
	}
	routes := make([]*limitSet, len(cfg.Routes))
	for i, rc := range cfg.Routes {
		if len(rc.RateLimits) == 0 {
			continue
		}
		ls := &limitSet{}
		seen := map[string]int{}
		for j, rl := range rc.RateLimits {
			parts, err := config.ParseLimitKey(rl.Key)
			if err != nil {
				return nil, nil, fmt.Errorf("routes %s: rate_limits[%d].key: %w", rc.Name, j, err)
			}
			k := limitKey{index: strconv.Itoa(j), parts: parts}
			if rl.Concurrency > 0 {
				k.scope = "concurrency:" + rl.Key
				name := numbered(k.scope, seen[k.scope])
				seen[k.scope]++
				if len(parts) == 1 && parts[0].Kind == config.LimitKeyRoute {
					k.fixed = ratelimit.Key(k.scope, k.index, rc.Name)
				}
				ls.conc = append(ls.conc, concLimit{name: name, max: rl.Concurrency, key: k})
				continue
			}
			k.scope = "route:" + rl.Key
			if len(parts) == 1 && parts[0].Kind == config.LimitKeyRoute {
				k.fixed = ratelimit.Key("route", k.index, rc.Name)
			}
			ls.add(ratelimit.Limit{Name: numbered(k.scope, seen[k.scope]), Rate: rl.Limit}, k)
			seen[k.scope]++
		}
		if err := ls.finish(); err != nil {
			return nil, nil, fmt.Errorf("routes %s: %w", rc.Name, err)
		}
		routes[i] = ls
	}
	return consumers, routes, nil
}

func (ls *limitSet) add(l ratelimit.Limit, key limitKey) {
	ls.limits = append(ls.limits, l)
	ls.keys = append(ls.keys, key)
}

func (ls *limitSet) finish() error {
	if n := len(ls.limits) + len(ls.conc); n > config.MaxRateLimits {
		return fmt.Errorf("%d rate limits; at most %d", n, config.MaxRateLimits)
	}
	for _, l := range ls.limits {
		if err := l.Validate(); err != nil {
			return err
		}
	}
	for _, c := range ls.conc {
		if c.max < 1 || c.max > config.MaxConcurrency {
			return fmt.Errorf("%s: concurrency %d; want 1 to %d", c.name, c.max, config.MaxConcurrency)
		}
	}
	ls.hasRates, ls.hasConc = len(ls.limits) > 0, len(ls.conc) > 0
	if ls.hasRates {
		ls.policy = string(ratelimit.AppendPolicy(nil, ls.limits...))
	}
	return nil
}

func numbered(name string, i int) string {
	if i == 0 {
		return name
	}
	return name + "-" + strconv.Itoa(i+1)
}

// maxKeyValue is the longest claim value kept as it is in a key; longer
// values, and every header value, are replaced by a digest.
const maxKeyValue = 64

// key builds the store key of k for a request on route. ok is false when
// the request has no value for a part that needs one (a consumer key on a
// request without consumer, which a validated config never builds).
func (k *limitKey) key(route string, r *http.Request, st *reqctx.State) (string, bool) {
	if k.fixed != "" {
		return k.fixed, true
	}
	var buf [3 + config.MaxLimitKeyParts]string
	parts := append(buf[:0], k.scope, k.index, route)
	for _, p := range k.parts {
		switch p.Kind {
		case config.LimitKeyConsumer:
			if st.Consumer == nil {
				return "", false
			}
			parts = append(parts, st.Consumer.ID)
		case config.LimitKeyIP:
			parts = append(parts, st.ClientIPText)
		case config.LimitKeyHeader:
			parts = append(parts, headerValue(r.Header[p.Name]))
		case config.LimitKeyClaim:
			if st.Consumer == nil {
				return "", false
			}
			parts = append(parts, claimValue(st.Consumer.Claims[p.Name]))
		}
	}
	return ratelimit.Key(parts...), true
}

// headerValue is the key part of a request header: "" when the header is
// absent or empty (all such requests share one counter), otherwise "#" and
// the first 16 bytes of the SHA-256 of its values joined with ",". Hashing
// bounds the memory of a key whatever the client sends, and keeps header
// values — which may be credentials — out of the persisted state.
func headerValue(vals []string) string {
	n := 0
	for _, v := range vals {
		n += len(v)
	}
	if n == 0 {
		return ""
	}
	h := sha256.New()
	for i, v := range vals {
		if i > 0 {
			h.Write([]byte{','})
		}
		h.Write([]byte(v))
	}
	var sum [sha256.Size]byte
	var out [17]byte
	out[0] = '#'
	copy(out[1:], h.Sum(sum[:0]))
	return string(out[:])
}

// claimValue is the key part of a token claim: "" when the claim is absent
// or neither a string nor a number; "=" and the value when it has at most
// maxKeyValue bytes; "#" and a digest (as headerValue) when longer.
func claimValue(v any) string {
	var s string
	switch c := v.(type) {
	case string:
		s = c
	case float64:
		s = strconv.FormatFloat(c, 'g', -1, 64)
	case json.Number:
		s = c.String()
	case int:
		s = strconv.Itoa(c)
	case int64:
		s = strconv.FormatInt(c, 10)
	default:
		return ""
	}
	if len(s) <= maxKeyValue {
		return "=" + s
	}
	sum := sha256.Sum256([]byte(s))
	var out [17]byte
	out[0] = '#'
	copy(out[1:], sum[:16])
	return string(out[:])
}

// slots are the concurrency slots a request holds; release gives them back
// when the request is done (deferred in ServeHTTP, so it runs on panics and
// aborts too). The zero value holds nothing.
type slots struct {
	c    *concurrency.Limiter
	keys [config.MaxRateLimits]string
	n    int
}

func (h slots) release() {
	if h.n > 0 {
		h.c.Release(h.keys[:h.n])
	}
}

// limit charges the request against every limit that applies to it — the
// consumer's own and the route's, rates, quotas and concurrency — all
// together: a request refused by one limit is charged to none and holds no
// concurrency slot. It answers the refusal itself (403 for a banned
// consumer, 429 for a limit) and then returns false. When it returns true
// the request holds the returned slots until it releases them. Limited
// responses carry RateLimit-Policy and RateLimit
// (draft-ietf-httpapi-ratelimit-headers), refusals Retry-After.
func (g *Gateway) limit(s *snapshot, rt *route, w http.ResponseWriter, r *http.Request, st *reqctx.State) (slots, bool) {
	var held slots
	if g.consumerBanned(s, w, r, st) {
		return held, false
	}
	var own *limitSet
	if st.Consumer != nil {
		own = s.consumerLimits[st.Consumer.ID]
	}
	rl := rt.limits
	if own == nil && rl == nil {
		return held, true
	}

	// Concurrency first: a request it refuses is charged to no rate; one
	// the rates refuse gives its slots back at once.
	if rl != nil && rl.hasConc {
		var maxes, which [config.MaxRateLimits]int
		n := 0
		for i := range rl.conc {
			k, ok := rl.conc[i].key.key(rt.name, r, st)
			if !ok {
				continue
			}
			held.keys[n], maxes[n], which[n] = k, rl.conc[i].max, i
			n++
		}
		held.c = s.defence.conc
		if i := held.c.Acquire(held.keys[:n], maxes[:n]); i >= 0 {
			h := w.Header()
			if p := policy(own, rl); p != "" {
				h["Ratelimit-Policy"] = []string{p}
			}
			h["Retry-After"] = retryOne
			g.refuse(w, r, st, http.StatusTooManyRequests, telemetry.RejectConcurrencyLimited, "concurrency limited: "+rl.conc[which[i]].name)
			g.emit(st, telemetry.EventRateLimited)
			return slots{}, false
		}
		held.n = n
	}
	if (own == nil || !own.hasRates) && (rl == nil || !rl.hasRates) {
		return held, true
	}

	var keys [2 * config.MaxRateLimits]string
	var limits [2 * config.MaxRateLimits]ratelimit.Limit
	n := 0
	if own != nil {
		for i := range own.limits {
			keys[n], limits[n] = own.keys[i].fixed, own.limits[i]
			n++
		}
	}
	if rl != nil {
		for i := range rl.limits {
			k, ok := rl.keys[i].key(rt.name, r, st)
			if !ok {
				continue
			}
			keys[n], limits[n] = k, rl.limits[i]
			n++
		}
	}
	var d ratelimit.Decision
	err := g.limiter.Decide(r.Context(), st.Start, ratelimit.Request{Keys: keys[:n], Limits: limits[:n]}, &d)
	if err != nil {
		held.release()
		if r.Context().Err() != nil {
			// The client went away while the shared store was asked: nothing
			// failed, and nobody is left to answer.
			st.Reason = "client closed request"
			return slots{}, false
		}
		// The embedded store fails only on a request it cannot evaluate,
		// which a validated config never builds; a shared store that
		// cannot be reached fails as store.on_unavailable says. Either
		// way: fail closed.
		g.logger.Error("rate limit decision failed", "route", rt.name, "request_id", st.RequestID, "err", err.Error())
		g.refuse(w, r, st, http.StatusServiceUnavailable, telemetry.RejectOverloaded, "rate limit store error")
		return slots{}, false
	}
	h := w.Header()
	h["Ratelimit-Policy"] = []string{policy(own, rl)}
	var buf [64]byte
	h["Ratelimit"] = []string{string(d.AppendRateLimit(buf[:0]))}
	if d.Allowed {
		return held, true
	}
	held.release()
	h["Retry-After"] = []string{strconv.FormatInt(int64(d.RetryAfter/time.Second), 10)}
	g.metrics.RateLimited(rt.name, d.LimitName)
	g.refuse(w, r, st, http.StatusTooManyRequests, telemetry.RejectRateLimited, "rate limited: "+d.LimitName)
	return slots{}, false
}

var retryOne = []string{"1"}

// policy is the RateLimit-Policy of the rate limits of a consumer and a
// route ("" when neither has one).
func policy(own, rl *limitSet) string {
	var a, b string
	if own != nil {
		a = own.policy
	}
	if rl != nil {
		b = rl.policy
	}
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + ", " + b
}
