package gateway

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/breakwater/breakwater/internal/concurrency"
	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/ratelimit"
	"github.com/breakwater/breakwater/internal/reqctx"
	"github.com/breakwater/breakwater/internal/state"
	"github.com/breakwater/breakwater/internal/telemetry"
)

// defence is the part of a snapshot that protects against abusive clients
// beyond rate limits: the concurrency counters and the ban store, which
// carry over from one snapshot to the next (a reload neither frees slots
// nor lifts bans), and the bans section of this config.
type defence struct {
	conc *concurrency.Limiter
	bans state.Bans
	mem  *state.MemoryBans // bans when it is the embedded store (fast path, persistence); else nil
	now  func() time.Time  // the clock of ban decisions
	// rules is the bans section compiled; nil when it is off.
	rules *banRules
}

// banRules is the bans section of a config.
type banRules struct {
	ip, consumer bool
	duration     time.Duration
	auth, client *ratelimit.Limit // nil: not counted
}

// buildDefence compiles the bans section and takes the counters and the
// ban store over from the running snapshot (new ones for the first).
func (g *Gateway) buildDefence(cfg *config.Config) *defence {
	d := &defence{}
	if prev := g.current.Load(); prev != nil && prev.defence != nil {
		p := prev.defence
		d.conc, d.bans, d.mem, d.now = p.conc, p.bans, p.mem, p.now
	} else {
		d.conc = concurrency.New(concurrency.Options{})
		d.bans, d.now = g.bans, time.Now
		switch b := g.bans.(type) {
		case *state.MemoryBans:
			d.mem = b
		case interface{ Local() *state.MemoryBans }: // shared through Redis, decided from memory
			d.mem = b.Local()
		case nil:
			d.mem = state.NewMemoryBans(state.BanOptions{})
			d.bans = d.mem
		}
	}
	b := cfg.Bans
	if b == nil {
		return d
	}
	r := &banRules{duration: b.Duration.D()}
	for _, k := range b.Key {
		switch k {
		case config.BanKeyIP:
			r.ip = true
		case config.BanKeyConsumer:
			r.consumer = true
		}
	}
	if b.AuthFailures != nil {
		r.auth = &ratelimit.Limit{Name: "ban:" + telemetry.BanAuthFailures, Rate: *b.AuthFailures}
	}
	if b.ClientErrors != nil {
		r.client = &ratelimit.Limit{Name: "ban:" + telemetry.BanClientErrors, Rate: *b.ClientErrors}
	}
	if r.duration > 0 && (r.ip || r.consumer) && (r.auth != nil || r.client != nil) {
		d.rules = r
	}
	return d
}

// banned answers 403 to a client whose address is banned. It runs before
// routing and authentication and costs one atomic load while nobody is
// banned.
func (g *Gateway) banned(s *snapshot, w http.ResponseWriter, r *http.Request, st *reqctx.State) bool {
	d := s.defence
	if d.rules == nil || !d.rules.ip || d.mem != nil && d.mem.Empty() {
		return false
	}
	return g.refuseBanned(d, w, r, st, state.BanKeyIP(st.ClientIP))
}

// consumerBanned answers 403 to a banned consumer, once authenticated.
func (g *Gateway) consumerBanned(s *snapshot, w http.ResponseWriter, r *http.Request, st *reqctx.State) bool {
	d := s.defence
	if d.rules == nil || !d.rules.consumer || st.Consumer == nil || d.mem != nil && d.mem.Empty() {
		return false
	}
	return g.refuseBanned(d, w, r, st, state.BanKeyConsumer(st.Consumer.ID))
}

// banReason starts the Reason of a request refused by a ban.
const banReason = "banned: "

func (g *Gateway) refuseBanned(d *defence, w http.ResponseWriter, r *http.Request, st *reqctx.State, key string) bool {
	if key == "" {
		return false
	}
	ok, err := d.bans.Banned(r.Context(), key)
	if err != nil {
		// Fail open: bans are a second line of defence; a store that
		// cannot answer must not refuse every client.
		g.metrics.BanError()
		g.logger.Warn("ban check failed; request let through", "request_id", st.RequestID, "err", err.Error())
		return false
	}
	if !ok {
		return false
	}
	// The same 403 as any other refusal: the client is not told it is banned, nor until when.
	g.refuse(w, r, st, http.StatusForbidden, telemetry.RejectBanned, banReason+key)
	return true
}

// watch counts a finished request toward the bans: a 401 as an
// authentication failure and any 4xx as a client error, under the client's
// address and consumer (per bans.key). A client over a threshold is
// banned. Requests refused by a ban are not counted.
func (g *Gateway) watch(s *snapshot, st *reqctx.State, rec *recorder) {
	d := s.defence
	if d.rules == nil || !rec.wroteHeader || rec.status < 400 || rec.status > 499 || strings.HasPrefix(st.Reason, banReason) {
		return
	}
	now := d.now()
	if d.rules.ip {
		g.count(d, st, state.BanKeyIP(st.ClientIP), rec.status, now)
	}
	if d.rules.consumer && st.Consumer != nil {
		g.count(d, st, state.BanKeyConsumer(st.Consumer.ID), rec.status, now)
	}
}

func (g *Gateway) count(d *defence, st *reqctx.State, subject string, status int, now time.Time) {
	if subject == "" {
		return
	}
	if status == http.StatusUnauthorized && d.rules.auth != nil {
		g.strike(d, st, subject, telemetry.BanAuthFailures, d.rules.auth, now)
	}
	if d.rules.client != nil {
		g.strike(d, st, subject, telemetry.BanClientErrors, d.rules.client, now)
	}
}

// strike charges one failure to subject's counter of reason; when the
// counter refuses it (the threshold is passed), subject is banned.
func (g *Gateway) strike(d *defence, st *reqctx.State, subject, reason string, l *ratelimit.Limit, now time.Time) {
	keys := [1]string{ratelimit.Key(l.Name, subject)}
	limits := [1]ratelimit.Limit{*l}
	var dec ratelimit.Decision
	if err := g.limiter.Decide(g.ctx, now, ratelimit.Request{Keys: keys[:], Limits: limits[:]}, &dec); err != nil {
		g.metrics.BanError()
		g.logger.Error("ban counter failed", "key", subject, "err", err.Error())
		return
	}
	if dec.Allowed {
		return
	}
	ev := telemetry.Event{RequestID: st.RequestID, Route: st.Route, Reason: reason + " over " + l.Rate.Text}
	if st.ClientIP.IsValid() {
		ev.ClientIP = st.ClientIPText
	}
	if st.Consumer != nil {
		ev.Consumer = st.Consumer.ID
	}
	g.ban(d, subject, reason, d.rules.duration, now, ev)
}

// ban bans key for duration from now, and — when the ban is new — counts
// it and emits ev as the ban's security event (its kind, time and detail
// filled in here). Both automatic bans (strike) and the anomaly detector's
// come through here.
func (g *Gateway) ban(d *defence, key, reason string, duration time.Duration, now time.Time, ev telemetry.Event) {
	until := now.Add(duration)
	isNew, err := d.bans.Ban(g.ctx, state.Ban{Key: key, Reason: reason, Until: until})
	if err != nil {
		g.metrics.BanError()
		g.logger.Error("ban not recorded", "key", key, "reason", reason, "err", err.Error())
		return
	}
	if !isNew {
		return
	}
	g.metrics.Banned(reason)
	ev.Kind, ev.Time = telemetry.EventBan, now
	ev.Detail = map[string]string{"key": key, "until": until.UTC().Format(time.RFC3339), "duration": config.Duration(duration).String()}
	g.events.Emit(ev)
}

// ErrNoBans is returned by the ban methods of a gateway that has no config.
var ErrNoBans = errors.New("no ban store: the gateway has no config")

// ListBans returns at most limit bans in force, those that end first
// first, and how many there are in all (GET /admin/bans).
func (g *Gateway) ListBans(ctx context.Context, limit int) ([]state.Ban, int, error) {
	s := g.current.Load()
	if s == nil {
		return nil, 0, ErrNoBans
	}
	return s.defence.bans.List(ctx, limit)
}

// LiftBan ends the ban of key (in the form of state.ParseBanKey) and
// reports whether there was one (DELETE /admin/bans/{key}). A lifted ban is
// a security event and is counted.
func (g *Gateway) LiftBan(ctx context.Context, key string) (bool, error) {
	s := g.current.Load()
	if s == nil {
		return false, ErrNoBans
	}
	ok, err := s.defence.bans.Lift(ctx, key)
	if err != nil || !ok {
		return ok, err
	}
	g.metrics.BanLifted()
	ev := telemetry.Event{Kind: telemetry.EventBanLifted, Reason: "lifted by an operator", Detail: map[string]string{"key": key}}
	if ip, found := strings.CutPrefix(key, "ip:"); found && !strings.Contains(ip, "/") {
		ev.ClientIP = ip
	}
	if id, found := strings.CutPrefix(key, "consumer:"); found {
		ev.Consumer = id
	}
	g.events.Emit(ev)
	return true, nil
}

// MemoryBans returns the embedded ban store, to be saved to the data
// directory (nil when bans are kept elsewhere).
func (g *Gateway) MemoryBans() *state.MemoryBans {
	if s := g.current.Load(); s != nil {
		return s.defence.mem
	}
	return nil
}

// bansFile is where the embedded ban store is kept.
func bansFile(dataDir string) string {
	return filepath.Join(dataDir, "state", "bans.json")
}
