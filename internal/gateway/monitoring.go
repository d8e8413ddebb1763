package gateway

import (
	"net/http"
	"net/netip"
	"reflect"
	"strings"

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
	ev := telemetry.Event{Consumer: consumer, Reason: reason}
	if consumer == "" {
		key, ev.ClientIP = state.BanKeyIP(ip), ip.String()
	}
	g.ban(d, key, reason, duration, d.now(), ev)
}
