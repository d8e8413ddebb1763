package telemetry

import (
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/breakwater/breakwater/internal/config"
)

// anomalyRig is a detector with recorded events and bans.
type anomalyRig struct {
	d      *AnomalyDetector
	mu     sync.Mutex
	events []Event
	bans   []string
}

func newAnomalyRig(o AnomalyOptions) *anomalyRig {
	r := &anomalyRig{}
	o.Emit = func(e Event) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.events = append(r.events, e)
	}
	if o.Ban == nil {
		o.Ban = func(ip netip.Addr, consumer, reason string) {
			r.mu.Lock()
			defer r.mu.Unlock()
			if ip.IsValid() {
				r.bans = append(r.bans, "ip:"+ip.String())
			} else {
				r.bans = append(r.bans, "consumer:"+consumer)
			}
		}
	}
	r.d = NewAnomalyDetector(o)
	return r
}

func (r *anomalyRig) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, string(e.Kind))
	}
	return out
}

// defaultAnomaly is the config's defaults as options.
func defaultAnomaly() AnomalyOptions {
	return AnomalyOptions{Window: 5 * time.Minute, MinRequests: 20, UnauthorizedRatio: .5, ForbiddenRatio: .5,
		NotFoundRatio: .5, RateLimitedRatio: .5, SpikeFactor: 10, MaxKeys: 1000}
}

var (
	t0       = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	attacker = netip.MustParseAddr("198.51.100.9")
)

// traffic sends n requests spread evenly over d starting at start; status
// and param give each request's answer and route kind.
func traffic(d *AnomalyDetector, ip netip.Addr, consumer string, start time.Time, span time.Duration, n int, answer func(i int) (status int, param bool)) time.Time {
	step := span / time.Duration(max(n, 1))
	now := start
	for i := range n {
		status, param := answer(i)
		d.Observe(ip, consumer, "items", param, status, now)
		now = now.Add(step)
	}
	return now
}

func always(status int, param bool) func(int) (int, bool) {
	return func(int) (int, bool) { return status, param }
}

func TestAnomalyTable(t *testing.T) {
	rows := []struct {
		name      string
		opts      func(o *AnomalyOptions)
		run       func(d *AnomalyDetector)
		want      []string // event kinds, in order
		wantBans  []string
		wantField func(t *testing.T, e Event)
	}{
		{
			name: "credential stuffing burst: exactly one event and one ban",
			opts: func(o *AnomalyOptions) { o.Ban = nil },
			run: func(d *AnomalyDetector) {
				traffic(d, attacker, "", t0, time.Minute, 200, always(401, false))
			},
			want:     []string{"anomaly_credential_stuffing"},
			wantBans: []string{"ip:198.51.100.9"},
			wantField: func(t *testing.T, e Event) {
				if e.ClientIP != "198.51.100.9" || e.Consumer != "" || e.Route != "items" || e.Detail["ban"] != "requested" ||
					e.Detail["requests"] != "20" || !strings.Contains(e.Reason, "401 answers 20 of 20 in 5m0s") || !e.Time.Equal(t0.Add(19*300*time.Millisecond)) {
					t.Errorf("event = %+v", e)
				}
			},
		},
		{
			name: "stuffing without ban option: event only",
			opts: func(o *AnomalyOptions) { o.Ban = func(netip.Addr, string, string) { panic("ban called") } },
			run: func(d *AnomalyDetector) {
				d.o.Ban = nil
				traffic(d, attacker, "", t0, time.Minute, 50, always(401, false))
			},
			want: []string{"anomaly_credential_stuffing"},
		},
		{
			name: "below min_requests: nothing",
			run:  func(d *AnomalyDetector) { traffic(d, attacker, "", t0, time.Minute, 19, always(401, false)) },
		},
		{
			name: "stuffing ratio just under: nothing",
			run: func(d *AnomalyDetector) {
				traffic(d, attacker, "", t0, time.Minute, 100, func(i int) (int, bool) {
					if i%2 == 0 && i%10 != 0 {
						return 401, false // 40%
					}
					return 200, false
				})
			},
		},
		{
			name:     "continued stuffing: once per window",
			run:      func(d *AnomalyDetector) { traffic(d, attacker, "", t0, 12*time.Minute, 1200, always(401, false)) },
			want:     []string{"anomaly_credential_stuffing", "anomaly_credential_stuffing", "anomaly_credential_stuffing"},
			wantBans: []string{"ip:198.51.100.9", "ip:198.51.100.9", "ip:198.51.100.9"},
		},
		{
			name:     "enumeration: 404s on a parameterised route",
			run:      func(d *AnomalyDetector) { traffic(d, attacker, "acme", t0, time.Minute, 40, always(404, true)) },
			want:     []string{"anomaly_enumeration", "anomaly_enumeration"}, // by IP and by consumer
			wantBans: []string{"ip:198.51.100.9", "consumer:acme"},
		},
		{
			name:     "enumeration: 403s on a parameterised route",
			run:      func(d *AnomalyDetector) { traffic(d, attacker, "", t0, time.Minute, 40, always(403, true)) },
			want:     []string{"anomaly_enumeration"},
			wantBans: []string{"ip:198.51.100.9"},
		},
		{
			name: "403s on routes without parameters are not enumeration",
			run:  func(d *AnomalyDetector) { traffic(d, attacker, "", t0, time.Minute, 40, always(403, false)) },
		},
		{
			name:     "scanning: 404s elsewhere",
			run:      func(d *AnomalyDetector) { traffic(d, attacker, "", t0, time.Minute, 40, always(404, false)) },
			want:     []string{"anomaly_scanning"},
			wantBans: []string{"ip:198.51.100.9"},
		},
		{
			name: "rate limited: event, never a ban",
			run:  func(d *AnomalyDetector) { traffic(d, attacker, "acme", t0, time.Minute, 40, always(429, false)) },
			want: []string{"anomaly_rate_limited", "anomaly_rate_limited"},
			wantField: func(t *testing.T, e Event) {
				if e.Consumer == "acme" && e.ClientIP != "" || e.Consumer == "" && e.ClientIP != "198.51.100.9" {
					t.Errorf("event = %+v", e)
				}
			},
		},
		{
			name: "a ratio of 0 turns the check off",
			opts: func(o *AnomalyOptions) { o.UnauthorizedRatio = 0 },
			run:  func(d *AnomalyDetector) { traffic(d, attacker, "", t0, time.Minute, 100, always(401, false)) },
		},
		{
			name: "normal traffic from many clients: nothing",
			run: func(d *AnomalyDetector) {
				// 50 clients, one request each every 5s for an hour, in time order.
				for i := range 720 {
					for c := range 50 {
						ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(c)})
						consumer := []string{"acme", "globex", ""}[c%3]
						status, param := 200, (i+c)%2 == 0
						switch k := i + c; {
						case k%20 == 0:
							status, param = 404, k%40 == 0 // 5% not found
						case k%25 == 0:
							status = 401 // 4% expired credentials
						case k%50 == 0:
							status = 429
						}
						d.Observe(ip, consumer, "items", param, status, t0.Add(time.Duration(i)*5*time.Second+time.Duration(c)*time.Millisecond))
					}
				}
			},
		},
		{
			name: "spike after a baseline",
			run: func(d *AnomalyDetector) {
				// An hour at 6 requests a minute, then 600 in one minute.
				now := traffic(d, attacker, "", t0, time.Hour, 360, always(200, false))
				traffic(d, attacker, "", now, time.Minute, 600, always(200, false))
			},
			want: []string{"anomaly_spike"},
			wantField: func(t *testing.T, e Event) {
				if e.Detail["baseline"] == "" || e.Detail["ban"] != "" || !strings.Contains(e.Reason, "baseline 30.") {
					t.Errorf("event = %+v", e)
				}
			},
		},
		{
			name: "no spike without a window of history",
			run:  func(d *AnomalyDetector) { traffic(d, attacker, "", t0, time.Minute, 600, always(200, false)) },
		},
		{
			name: "steady growth is not a spike",
			run: func(d *AnomalyDetector) {
				now := t0
				for n := 60; n < 400; n += 20 { // +33% … +5% every 10 minutes
					now = traffic(d, attacker, "", now, 10*time.Minute, n, always(200, false))
				}
			},
		},
		{
			name: "IPv6 clients are counted by /64",
			run: func(d *AnomalyDetector) {
				for i := range 40 {
					ip := netip.MustParseAddr("2001:db8:1:2::" + string(rune('a'+i%6)) + ":1")
					d.Observe(ip, "", "items", false, 401, t0.Add(time.Duration(i)*time.Second))
				}
			},
			want:     []string{"anomaly_credential_stuffing"},
			wantBans: []string{"ip:2001:db8:1:2::"},
			wantField: func(t *testing.T, e Event) {
				if e.ClientIP != "2001:db8:1:2::" || e.Detail["ip_prefix"] != "2001:db8:1:2::/64" {
					t.Errorf("event = %+v", e)
				}
			},
		},
		{
			name: "IPv4-mapped IPv6 is the IPv4 client",
			run: func(d *AnomalyDetector) {
				traffic(d, netip.MustParseAddr("::ffff:198.51.100.9"), "", t0, time.Minute, 10, always(401, false))
				traffic(d, attacker, "", t0.Add(time.Minute), time.Minute, 10, always(401, false))
			},
			want:     []string{"anomaly_credential_stuffing"},
			wantBans: []string{"ip:198.51.100.9"},
		},
		{
			name: "clock going backwards: counted, no panic",
			run: func(d *AnomalyDetector) {
				for i := range 40 {
					d.Observe(attacker, "", "items", false, 401, t0.Add(-time.Duration(i)*time.Minute))
				}
			},
			want:     []string{"anomaly_credential_stuffing"},
			wantBans: []string{"ip:198.51.100.9"},
		},
		{
			name: "invalid IP and no consumer: not tracked",
			run:  func(d *AnomalyDetector) { traffic(d, netip.Addr{}, "", t0, time.Minute, 100, always(401, false)) },
		},
	}
	for _, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			o := defaultAnomaly()
			if tt.opts != nil {
				tt.opts(&o)
			}
			r := newAnomalyRig(o)
			tt.run(r.d)
			if got := r.kinds(); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("events = %v, want %v", got, tt.want)
			}
			if strings.Join(r.bans, ",") != strings.Join(tt.wantBans, ",") {
				t.Errorf("bans = %v, want %v", r.bans, tt.wantBans)
			}
			if tt.wantField != nil {
				for _, e := range r.events {
					tt.wantField(t, e)
				}
			}
			for _, e := range r.events {
				if !e.Kind.Known() || e.Kind.Severity() == "" {
					t.Errorf("unknown kind %q", e.Kind)
				}
			}
		})
	}
}

func TestAnomalyBounded(t *testing.T) {
	r := newAnomalyRig(AnomalyOptions{MaxKeys: 128, UnauthorizedRatio: .5})
	now := t0
	for i := range 100_000 {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		r.d.Observe(ip, "c"+string(rune(i%5000)), "items", false, 200, now)
		now = now.Add(time.Millisecond)
	}
	ips, consumers := r.d.Tracked()
	if ips > 128 || consumers > 128 || ips < 64 {
		t.Errorf("tracked %d IPs and %d consumers, want at most 128 each", ips, consumers)
	}
	// A busy client keeps its state while strangers churn through: the
	// longest idle are forgotten first.
	r = newAnomalyRig(AnomalyOptions{MaxKeys: 64 * 32, MinRequests: 20, UnauthorizedRatio: .5})
	for i := range 20_000 {
		if i%200 == 0 {
			r.d.Observe(attacker, "", "items", false, 401, now)
		}
		ip := netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
		r.d.Observe(ip, "", "items", false, 200, now)
		now = now.Add(time.Millisecond)
	}
	if got := r.kinds(); len(got) != 1 {
		t.Errorf("the busy client's state was lost to churn: events %v", got)
	}
}

func TestAnomalyConcurrent(t *testing.T) {
	r := newAnomalyRig(defaultAnomaly())
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				ip := netip.AddrFrom4([4]byte{10, 0, byte(g), byte(i % 7)})
				r.d.Observe(ip, "acme", "items", i%2 == 0, []int{200, 401, 401}[i%3], t0.Add(time.Duration(i)*time.Millisecond))
			}
		})
	}
	wg.Wait()
	if len(r.kinds()) == 0 {
		t.Error("no event from a third of 401s and 404s")
	}
	var nilDetector *AnomalyDetector
	nilDetector.Observe(attacker, "x", "r", false, 401, t0) // no panic
}

func TestAnomalyOptionsFromConfig(t *testing.T) {
	c := &config.Anomaly{Window: config.Duration(time.Minute), MinRequests: 5, UnauthorizedRatio: .1, ForbiddenRatio: .2,
		NotFoundRatio: .3, RateLimitedRatio: .4, SpikeFactor: 3, MaxKeys: 500}
	ban := func(netip.Addr, string, string) {}
	o := AnomalyOptionsFrom(c, nil, ban)
	if o.Ban != nil || o.Window != time.Minute || o.MinRequests != 5 || o.UnauthorizedRatio != .1 || o.ForbiddenRatio != .2 ||
		o.NotFoundRatio != .3 || o.RateLimitedRatio != .4 || o.SpikeFactor != 3 || o.MaxKeys != 500 {
		t.Errorf("options = %+v", o)
	}
	c.Ban = true
	if AnomalyOptionsFrom(c, nil, ban).Ban == nil {
		t.Error("ban: true did not pass the callback")
	}
}

func BenchmarkAnomalyObserve(b *testing.B) {
	d := NewAnomalyDetector(defaultAnomaly())
	ip := netip.MustParseAddr("192.0.2.7")
	now := t0
	d.Observe(ip, "acme", "items", true, 200, now)
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Microsecond)
		d.Observe(ip, "acme", "items", true, 200, now)
	}
}

func BenchmarkAnomalyObserveIPv6Parallel(b *testing.B) {
	d := NewAnomalyDetector(defaultAnomaly())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ip := netip.MustParseAddr("2001:db8::1")
		now := t0
		for pb.Next() {
			now = now.Add(time.Microsecond)
			d.Observe(ip, "", "items", false, 200, now)
		}
	})
}
