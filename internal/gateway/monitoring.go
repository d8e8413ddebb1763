package gateway

import (
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"time"

	"github.com/breakwater/breakwater/internal/config"
	"github.com/breakwater/breakwater/internal/state"
	"github.com/breakwater/breakwater/internal/telemetry"
)

// monitoring applies the monitoring section of a config being applied:
// access log sampling, and anomaly detection (kept with its baselines
// unless its settings change).
func (g *Gateway) monitoring(cfg *config.Config) {
	m := cfg.Monitoring
	if m != nil && m.AccessLog != nil {
		g.sampler.Store(telemetry.NewSampler(m.AccessLog.Sample))
	} else {
		g.sampler.Store(nil)
	}
	var a *config.Anomaly
	if m != nil {
		a = m.Anomaly
	}
	switch {
	case a == nil:
		g.anomaly.Store(nil)
		g.anomalyConf = nil
	case g.anomaly.Load() == nil || !reflect.DeepEqual(a, g.anomalyConf):
		g.anomaly.Store(telemetry.NewAnomalyDetector(telemetry.AnomalyOptionsFrom(a, g.events.Emit, g.banAnomaly)))
		g.anomalyConf = a
	}
}

// observe feeds the request's outcome to the dashboard and the anomaly
// detector.
func (g *Gateway) observe(x *exchange) {
	status := x.rec.status
	if !x.rec.wroteHeader {
		status = http.StatusOK
	}
	consumer := ""
	if x.st.Consumer != nil {
		consumer = x.st.Consumer.ID
	}
	if g.observer != nil {
		g.observer.Observe(consumer, status)
	}
	d := g.anomaly.Load()
	if d == nil || !x.st.ClientIP.IsValid() {
		return
	}
	d.Observe(x.st.ClientIP, consumer, x.st.Route, len(x.st.Params) > 0 || strings.HasSuffix(x.st.Route, "/**"), status, x.st.Start)
}

// banAnomaly bans a client the anomaly detector caught (monitoring.anomaly
// with ban: true) for the bans section's duration, or its default.
func (g *Gateway) banAnomaly(ip netip.Addr, consumer, reason string) {
	s := g.current.Load()
	if s == nil || s.defence == nil {
		return
	}
	d := s.defence
	duration := config.DefaultBanDuration.D()
	if d.rules != nil {
		duration = d.rules.duration
	}
	key := state.BanKeyConsumer(consumer)
	if consumer == "" {
		key = state.BanKeyIP(ip)
	}
	now := d.now()
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
	ev := telemetry.Event{Kind: telemetry.EventBan, Time: now, Consumer: consumer, Reason: reason,
		Detail: map[string]string{"key": key, "until": until.UTC().Format(time.RFC3339)}}
	if consumer == "" {
		ev.ClientIP = ip.String()
	}
	g.events.Emit(ev)
}
