package inventory

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/problem"
)

// Report is the inventory as GET /admin/inventory serves it.
type Report struct {
	// GeneratedAt is when the report was made.
	GeneratedAt time.Time `json:"generated_at"`
	// Since is when counting started: zombies are routes without traffic
	// since then at the most.
	Since time.Time `json:"since"`
	// Source is "redis" (the merged view of every instance) or "local"
	// (this instance: no Redis, or Redis did not answer).
	Source string `json:"source"`
	// ZombieAfter is the period without traffic that makes a zombie, as a
	// Go duration ("720h0m0s").
	ZombieAfter string `json:"zombie_after"`
	// Routes are the configured routes, in config order.
	Routes []Stats `json:"routes"`
	// Operations are the spec operations of the routes, in config order.
	Operations []Stats `json:"operations"`
	// Shadow are the endpoints called on routes with a spec that match no
	// operation, most requests first.
	Shadow []Stats `json:"shadow"`
	// ShadowEvicted counts shadow endpoints dropped to stay within bounds.
	ShadowEvicted int64 `json:"shadow_evicted"`
	// Zombies are the routes and operations without traffic for ZombieAfter.
	Zombies []Zombie `json:"zombies"`
	// Deprecated are the deprecated operations that were called.
	Deprecated []Stats `json:"deprecated"`
}

// Stats are the counters of one route, operation or shadow endpoint.
type Stats struct {
	Route string `json:"route"`
	// Operation is "METHOD /template" ("" for a route).
	Operation string `json:"operation,omitempty"`
	// Method and Path split Operation (operations and shadow endpoints).
	Method     string `json:"method,omitempty"`
	Path       string `json:"path,omitempty"`
	Deprecated bool   `json:"deprecated,omitempty"`
	Requests   int64  `json:"requests"`
	// Status counts the responses by class.
	Status StatusClasses `json:"status"`
	// Consumers are the first consumer ids seen (at most the configured
	// number), sorted; ConsumersOverflow estimates the distinct others.
	Consumers         []string `json:"consumers"`
	ConsumersOverflow int64    `json:"consumers_overflow"`
	// DistinctConsumers is len(Consumers) + ConsumersOverflow; when
	// ConsumersSaturated it is a lower bound.
	DistinctConsumers  int64      `json:"distinct_consumers"`
	ConsumersSaturated bool       `json:"consumers_saturated,omitempty"`
	FirstSeen          *time.Time `json:"first_seen,omitempty"`
	LastSeen           *time.Time `json:"last_seen,omitempty"`
}

// StatusClasses counts responses per status class.
type StatusClasses struct {
	S2xx int64 `json:"2xx"`
	S3xx int64 `json:"3xx"`
	S4xx int64 `json:"4xx"`
	S5xx int64 `json:"5xx"`
}

// Zombie is a route or operation without traffic for the zombie period.
type Zombie struct {
	// Kind is "route" or "operation".
	Kind      string `json:"kind"`
	Route     string `json:"route"`
	Operation string `json:"operation,omitempty"`
	// LastSeen is the last request (absent: none since counting started).
	LastSeen *time.Time `json:"last_seen,omitempty"`
	// IdleDays is the number of whole days without traffic, counted from
	// LastSeen or, without one, from Report.Since.
	IdleDays int `json:"idle_days"`
}

// snapshotStats are the values of an entry a report is made from.
type entryStats struct {
	e           *entry
	deprecated  bool
	requests    int64
	status      [4]int64
	first, last int64
	consumers   []string
	bits        *[overflowWords]uint64
}

func (e *entry) stats() entryStats {
	s := entryStats{e: e, deprecated: e.deprecated.Load(), requests: e.requests.Load(),
		first: e.first.Load(), last: e.last.Load(), consumers: e.consumerList(), bits: e.bits()}
	for i := range s.status {
		s.status[i] = e.status[i].Load()
	}
	return s
}

func unixTime(ns int64) *time.Time {
	if ns <= 0 {
		return nil
	}
	t := time.Unix(0, ns).UTC()
	return &t
}

func (s entryStats) public() Stats {
	e := s.e
	out := Stats{Route: e.route, Operation: e.op, Deprecated: s.deprecated, Requests: s.requests,
		Status:    StatusClasses{s.status[0], s.status[1], s.status[2], s.status[3]},
		Consumers: s.consumers, FirstSeen: unixTime(s.first), LastSeen: unixTime(s.last)}
	if e.op != "" {
		out.Method, out.Path = splitOp(e.op)
	}
	if out.Consumers == nil {
		out.Consumers = []string{}
	}
	out.ConsumersOverflow, out.ConsumersSaturated = estimate(s.bits)
	out.DistinctConsumers = int64(len(out.Consumers)) + out.ConsumersOverflow
	return out
}

// Report returns this instance's inventory (not merged with others).
// zombieAfter ≤ 0 means the configured period.
func (inv *Inventory) Report(zombieAfter time.Duration) *Report {
	var stats []entryStats
	for _, e := range inv.entries() {
		stats = append(stats, e.stats())
	}
	return inv.build(stats, inv.since.Load(), inv.shadowEvicted.Load(), "local", zombieAfter)
}

// build makes a report of the entries' values.
func (inv *Inventory) build(stats []entryStats, since, evicted int64, source string, zombieAfter time.Duration) *Report {
	if zombieAfter <= 0 {
		zombieAfter = inv.o.ZombieAfter
	}
	now := inv.o.Now()
	rep := &Report{GeneratedAt: now.UTC(), Since: time.Unix(0, since).UTC(), Source: source,
		ZombieAfter: zombieAfter.String(), ShadowEvicted: evicted,
		Routes: []Stats{}, Operations: []Stats{}, Shadow: []Stats{}, Zombies: []Zombie{}, Deprecated: []Stats{}}
	for _, s := range stats {
		st := s.public()
		switch s.e.kind {
		case kindRoute:
			rep.Routes = append(rep.Routes, st)
		case kindOperation:
			rep.Operations = append(rep.Operations, st)
			if st.Deprecated && st.Requests > 0 {
				rep.Deprecated = append(rep.Deprecated, st)
			}
		case kindShadow:
			rep.Shadow = append(rep.Shadow, st)
			continue
		}
		from := s.last
		if from == 0 {
			from = since
		}
		if idle := now.Sub(time.Unix(0, from)); idle >= zombieAfter {
			rep.Zombies = append(rep.Zombies, Zombie{Kind: s.e.kind, Route: s.e.route, Operation: s.e.op,
				LastSeen: unixTime(s.last), IdleDays: int(idle / (24 * time.Hour))})
		}
	}
	slices.SortStableFunc(rep.Shadow, func(a, b Stats) int {
		return cmp.Or(cmp.Compare(b.Requests, a.Requests), cmp.Compare(a.Route, b.Route), cmp.Compare(a.Operation, b.Operation))
	})
	slices.SortStableFunc(rep.Deprecated, func(a, b Stats) int { return cmp.Compare(b.Requests, a.Requests) })
	return rep
}

// Bounds of ?zombie_after=.
const (
	minZombieAfter = time.Hour
	maxZombieAfter = 10 * 365 * 24 * time.Hour
)

// Handler serves GET /admin/inventory: the merged view from Redis when it
// is configured and answers (after flushing this instance's deltas), this
// instance's otherwise. ?zombie_after=90d asks for another zombie period
// (1h to 3650d). It does not check the admin token: mount it behind it.
func (inv *Inventory) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		for name := range q {
			if name != "zombie_after" {
				problem.WriteDetail(w, r, http.StatusBadRequest, "unknown query parameter (allowed: zombie_after)")
				return
			}
		}
		var za time.Duration
		if vs := q["zombie_after"]; len(vs) > 0 {
			d, err := config.ParseDuration(vs[0])
			if len(vs) > 1 || err != nil || d.D() < minZombieAfter || d.D() > maxZombieAfter {
				problem.WriteDetail(w, r, http.StatusBadRequest, "query parameter 'zombie_after': a duration from 1h to 3650d, such as 30d")
				return
			}
			za = d.D()
		}
		rep := inv.View(r.Context(), za)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	})
}

// View returns the merged view from Redis when configured and reachable,
// else this instance's report. zombieAfter ≤ 0 means the configured period.
func (inv *Inventory) View(ctx context.Context, zombieAfter time.Duration) *Report {
	if inv.o.Redis == nil {
		return inv.Report(zombieAfter)
	}
	if err := inv.Flush(ctx); err != nil {
		inv.o.Logger.Warn("inventory: redis unavailable, serving this instance's view", "err", err.Error())
		return inv.Report(zombieAfter)
	}
	rep, err := inv.merged(ctx, zombieAfter)
	if err != nil {
		inv.o.Logger.Warn("inventory: redis unavailable, serving this instance's view", "err", err.Error())
		return inv.Report(zombieAfter)
	}
	return rep
}
