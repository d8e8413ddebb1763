package gateway

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/ratelimit"
	"github.com/breakwater/breakwater/internal/reqctx"
	"github.com/breakwater/breakwater/internal/telemetry"
)

// limitSet is the rate limits of one consumer or one route, with what can be
// computed from the config alone: the store keys that do not depend on the
// request, and the RateLimit-Policy value.
type limitSet struct {
	limits []ratelimit.Limit
	kinds  []string // route limits: consumer | ip | route
	keys   []string // the store key when fixed by the config, else ""
	policy string   // RateLimit-Policy of these limits
}

// compileLimits compiles the rate limits of the config. Names identify a
// limit in the RateLimit headers: "consumer" (then "consumer-2", …) for a
// consumer's own limits, "route:<key>" (then "route:<key>-2", …) for a
// route's. Store keys are length-prefixed parts, unique per limit.
func compileLimits(cfg *config.Config) (map[string]*limitSet, []*limitSet, error) {
	consumers := make(map[string]*limitSet)
	for _, c := range cfg.Consumers {
		if len(c.RateLimits) == 0 {
			continue
		}
		ls := &limitSet{}
		for i, r := range c.RateLimits {
			ls.add(ratelimit.Limit{Name: numbered("consumer", i), Rate: r}, "consumer",
				ratelimit.Key("consumer", strconv.Itoa(i), c.ID))
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
			fixed := ""
			if rl.Key == "route" {
				fixed = ratelimit.Key("route", strconv.Itoa(j), rc.Name)
			}
			ls.add(ratelimit.Limit{Name: numbered("route:"+rl.Key, seen[rl.Key]), Rate: rl.Limit}, rl.Key, fixed)
			seen[rl.Key]++
		}
		if err := ls.finish(); err != nil {
			return nil, nil, fmt.Errorf("routes %s: %w", rc.Name, err)
		}
		routes[i] = ls
	}
	return consumers, routes, nil
}

func (ls *limitSet) add(l ratelimit.Limit, kind, key string) {
	ls.limits = append(ls.limits, l)
	ls.kinds = append(ls.kinds, kind)
	ls.keys = append(ls.keys, key)
}

func (ls *limitSet) finish() error {
	if len(ls.limits) > config.MaxRateLimits {
		return fmt.Errorf("%d rate limits; at most %d", len(ls.limits), config.MaxRateLimits)
	}
	for _, l := range ls.limits {
		if err := l.Validate(); err != nil {
			return err
		}
	}
	ls.policy = string(ratelimit.AppendPolicy(nil, ls.limits...))
	return nil
}

func numbered(name string, i int) string {
	if i == 0 {
		return name
	}
	return name + "-" + strconv.Itoa(i+1)
}

// limit charges the request against every limit that applies to it — the
// consumer's own and the route's — all together: a request refused by one
// limit is charged to none. It answers 429 itself and returns false when the
// request may not go on. Limited responses carry RateLimit-Policy and
// RateLimit (draft-ietf-httpapi-ratelimit-headers), refusals Retry-After.
func (g *Gateway) limit(s *snapshot, rt *route, w http.ResponseWriter, r *http.Request, st *reqctx.State) bool {
	var own *limitSet
	if st.Consumer != nil {
		own = s.consumerLimits[st.Consumer.ID]
	}
	if own == nil && rt.limits == nil {
		return true
	}
	var keys [2 * config.MaxRateLimits]string
	var limits [2 * config.MaxRateLimits]ratelimit.Limit
	n := 0
	if own != nil {
		n += copy(keys[:], own.keys)
		copy(limits[:], own.limits)
	}
	if rl := rt.limits; rl != nil {
		for i, l := range rl.limits {
			key := rl.keys[i]
			switch rl.kinds[i] {
			case "consumer":
				if st.Consumer == nil {
					continue
				}
				key = ratelimit.Key("route:consumer", strconv.Itoa(i), rt.name, st.Consumer.ID)
			case "ip":
				key = ratelimit.Key("route:ip", strconv.Itoa(i), rt.name, st.ClientIPText)
			}
			keys[n], limits[n] = key, l
			n++
		}
	}
	var d ratelimit.Decision
	err := g.limiter.Decide(r.Context(), st.Start, ratelimit.Request{Keys: keys[:n], Limits: limits[:n]}, &d)
	if err != nil {
		// The embedded store fails only on a request it cannot evaluate,
		// which a validated config never builds: fail closed.
		g.logger.Error("rate limit decision failed", "route", rt.name, "request_id", st.RequestID, "err", err.Error())
		g.refuse(w, r, st, http.StatusServiceUnavailable, telemetry.RejectOverloaded, "rate limit store error")
		return false
	}
	h := w.Header()
	switch {
	case own != nil && rt.limits != nil:
		h["Ratelimit-Policy"] = []string{own.policy + ", " + rt.limits.policy}
	case own != nil:
		h["Ratelimit-Policy"] = []string{own.policy}
	default:
		h["Ratelimit-Policy"] = []string{rt.limits.policy}
	}
	var buf [64]byte
	h["Ratelimit"] = []string{string(d.AppendRateLimit(buf[:0]))}
	if d.Allowed {
		return true
	}
	h["Retry-After"] = []string{strconv.FormatInt(int64(d.RetryAfter/time.Second), 10)}
	g.refuse(w, r, st, http.StatusTooManyRequests, telemetry.RejectRateLimited, "rate limited: "+d.LimitName)
	return false
}
