package gateway

import (
	"net/http"
	"strconv"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/ratelimit"
	"github.com/breakwater/breakwater/internal/reqctx"
	"github.com/breakwater/breakwater/internal/telemetry"
)

// maxLimitsPerRequest bounds the limits one request is charged against
// (consumer limits plus route limits); validation keeps configs far below.
const maxLimitsPerRequest = 16

// routeLimit is one entry of routes[].rate_limits, compiled.
type routeLimit struct {
	key   string // consumer | ip | route
	limit ratelimit.Limit
	scope string // first part of the store key: unique per route and entry
}

// compileLimits turns the rate limits of the config into store limits.
// Names identify a limit in the RateLimit headers: "consumer" (then
// "consumer-2", …) for a consumer's own limits, "route:<key>" (then
// "route:<key>-2", …) for a route's.
func compileLimits(cfg *config.Config) (map[string][]ratelimit.Limit, [][]routeLimit, error) {
	consumers := make(map[string][]ratelimit.Limit)
	for _, c := range cfg.Consumers {
		for i, r := range c.RateLimits {
			l := ratelimit.Limit{Name: numbered("consumer", i), Rate: r}
			if err := l.Validate(); err != nil {
				return nil, nil, err
			}
			consumers[c.ID] = append(consumers[c.ID], l)
		}
	}
	routes := make([][]routeLimit, len(cfg.Routes))
	for i, rc := range cfg.Routes {
		seen := map[string]int{}
		for j, rl := range rc.RateLimits {
			name := numbered("route:"+rl.Key, seen[rl.Key])
			seen[rl.Key]++
			l := ratelimit.Limit{Name: name, Rate: rl.Limit}
			if err := l.Validate(); err != nil {
				return nil, nil, err
			}
			routes[i] = append(routes[i], routeLimit{key: rl.Key, limit: l, scope: "route:" + strconv.Itoa(j) + ":" + rl.Key})
		}
	}
	return consumers, routes, nil
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
	var keys [maxLimitsPerRequest]string
	var limits [maxLimitsPerRequest]ratelimit.Limit
	n := 0
	if st.Consumer != nil {
		for i, l := range s.consumerLimits[st.Consumer.ID] {
			if n == maxLimitsPerRequest {
				break
			}
			keys[n], limits[n] = ratelimit.Key("consumer", strconv.Itoa(i), st.Consumer.ID), l
			n++
		}
	}
	for _, rl := range rt.limits {
		if n == maxLimitsPerRequest {
			break
		}
		var id string
		switch rl.key {
		case "consumer":
			if st.Consumer == nil {
				continue
			}
			id = st.Consumer.ID
		case "ip":
			id = st.ClientIP.String()
		}
		keys[n], limits[n] = ratelimit.Key(rl.scope, rt.name, id), rl.limit
		n++
	}
	if n == 0 {
		return true
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
	var buf [256]byte
	h["Ratelimit-Policy"] = []string{string(ratelimit.AppendPolicy(buf[:0], limits[:n]...))}
	h["Ratelimit"] = []string{string(d.AppendRateLimit(buf[:0]))}
	if d.Allowed {
		return true
	}
	h["Retry-After"] = []string{strconv.FormatInt(int64((d.RetryAfter+999_999_999)/1_000_000_000), 10)}
	g.refuse(w, r, st, http.StatusTooManyRequests, telemetry.RejectRateLimited, "rate limited: "+d.LimitName)
	return false
}
