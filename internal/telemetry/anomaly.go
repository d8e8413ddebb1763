// This file: anomaly detection (monitoring.anomaly, docs/events.md).
//
// Per client — an IP address (IPv6: its /64) and, separately, a consumer —
// the detector keeps a sliding window of anomalyBuckets buckets counting
// requests and 401/403/404/429 answers, and a baseline: an EWMA of the
// client's requests per bucket. Each observation updates the client's
// window and checks it; a client over a threshold raises one event of that
// kind, at most once per window. The tables are bounded: a full shard
// forgets the longest-idle of a few sampled clients.

package telemetry

import (
	"hash/maphash"
	"math"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/breakwater/breakwater/internal/config"
)

const (
	anomalyBuckets = 6  // buckets per window
	anomalyShards  = 64 // per table; a power of two
	anomalySample  = 8  // clients sampled for eviction when a shard is full
	// anomalyHorizon is the EWMA's span in buckets: about six windows.
	anomalyHorizon = 6 * anomalyBuckets
)

// anomalyKinds indexes the checks; the order is the one of the events.
type anomalyKind uint8

const (
	anomalyStuffing anomalyKind = iota
	anomalyEnumeration
	anomalyScanning
	anomalyRateLimited
	anomalySpike
	numAnomalyKinds
)

var anomalyEvents = [numAnomalyKinds]EventKind{
	EventAnomalyCredentialStuffing, EventAnomalyEnumeration, EventAnomalyScanning, EventAnomalyRateLimited, EventAnomalySpike,
}

// anomalyBans are the kinds that ban when AnomalyOptions.Ban is set: a
// spike may be success, and rate limits already hold the rate-limited.
var anomalyBans = [numAnomalyKinds]bool{anomalyStuffing: true, anomalyEnumeration: true, anomalyScanning: true}

// AnomalyOptions configure NewAnomalyDetector. A ratio or SpikeFactor of 0
// turns that check off (AnomalyOptionsFrom fills the config's defaults).
type AnomalyOptions struct {
	Window            time.Duration // default 5m
	MinRequests       int           // default 20
	UnauthorizedRatio float64       // 401s / requests → anomaly_credential_stuffing
	ForbiddenRatio    float64       // 403s / requests to parameterised routes → anomaly_enumeration
	NotFoundRatio     float64       // 404s / requests to parameterised routes → anomaly_enumeration; other 404s / requests → anomaly_scanning
	RateLimitedRatio  float64       // 429s / requests → anomaly_rate_limited
	SpikeFactor       float64       // requests in the window > SpikeFactor × baseline → anomaly_spike
	MaxKeys           int           // clients tracked per table (IPs, consumers); default 100000
	// Emit receives the events (Events.Emit). Nil: events are dropped.
	Emit func(Event)
	// Ban, when set, is called for a client found credential stuffing,
	// enumerating or scanning: exactly one of ip (an IPv4 address, or the
	// first address of an IPv6 /64) and consumer is set. It is called on
	// the request's goroutine, at most once per client and kind per window:
	// it must be quick.
	Ban func(ip netip.Addr, consumer, reason string)
}

// AnomalyOptionsFrom maps the config section to options; emit and ban are
// the event sink and the ban callback (ban is used only when the config
// says ban: true).
func AnomalyOptionsFrom(c *config.Anomaly, emit func(Event), ban func(ip netip.Addr, consumer, reason string)) AnomalyOptions {
	o := AnomalyOptions{
		Window: c.Window.D(), MinRequests: c.MinRequests, UnauthorizedRatio: c.UnauthorizedRatio,
		ForbiddenRatio: c.ForbiddenRatio, NotFoundRatio: c.NotFoundRatio, RateLimitedRatio: c.RateLimitedRatio,
		SpikeFactor: c.SpikeFactor, MaxKeys: c.MaxKeys, Emit: emit,
	}
	if c.Ban {
		o.Ban = ban
	}
	return o
}

// AnomalyDetector watches clients for anomalies. Its methods are safe for
// concurrent use.
type AnomalyDetector struct {
	o         AnomalyOptions
	bucket    int64 // bucket width in nanoseconds
	alpha     float64
	ips       *anomalyTable[[16]byte]
	consumers *anomalyTable[string]
}

// NewAnomalyDetector returns a detector with empty tables.
func NewAnomalyDetector(o AnomalyOptions) *AnomalyDetector {
	o.Window = cmpOr(o.Window, config.DefaultAnomalyWindow.D())
	o.Window = max(o.Window, anomalyBuckets*time.Millisecond)
	o.MinRequests = max(cmpOr(o.MinRequests, config.DefaultAnomalyMinRequests), 1)
	o.MaxKeys = max(cmpOr(o.MaxKeys, config.DefaultAnomalyMaxKeys), anomalyShards)
	seed := maphash.MakeSeed()
	perShard := (o.MaxKeys + anomalyShards - 1) / anomalyShards
	return &AnomalyDetector{
		o:      o,
		bucket: int64(o.Window / anomalyBuckets),
		alpha:  2.0 / (anomalyHorizon + 1),
		ips: newAnomalyTable(perShard, func(k [16]byte) uint64 {
			return maphash.Comparable(seed, k)
		}),
		consumers: newAnomalyTable(perShard, func(k string) uint64 { return maphash.String(seed, k) }),
	}
}

// Observe records one finished request: the client's IP address (invalid:
// not tracked by IP), the consumer ("" when not authenticated), the route's
// name ("" for none), whether the route has path parameters (403/404 there
// suggest enumeration of object ids rather than scanning), the status sent
// and the time. It allocates nothing for a client already tracked.
func (d *AnomalyDetector) Observe(ip netip.Addr, consumer, route string, parameterised bool, status int, now time.Time) {
	if d == nil {
		return
	}
	b := now.UnixNano() / d.bucket
	var alerts [2]anomalyAlert
	if ip.IsValid() {
		ip = ip.Unmap()
		if ip.Is6() {
			ip = netip.PrefixFrom(ip, 64).Masked().Addr()
		}
		alerts[0] = d.ips.observe(d, ip.As16(), route, parameterised, status, b, now.UnixNano())
		alerts[0].ip = ip
	}
	if consumer != "" {
		alerts[1] = d.consumers.observe(d, consumer, route, parameterised, status, b, now.UnixNano())
		alerts[1].consumer = consumer
	}
	for i := range alerts {
		if alerts[i].kinds != 0 {
			d.raise(&alerts[i], now)
		}
	}
}

// Tracked returns the number of IP addresses (/64s) and consumers tracked.
func (d *AnomalyDetector) Tracked() (ips, consumers int) {
	return d.ips.len(), d.consumers.len()
}

// anomalyCounts are the counters of a bucket, or of a whole window.
type anomalyCounts struct {
	total, param                          uint32 // requests; of which to parameterised routes
	unauth, limited                       uint32 // 401, 429
	forbiddenParam, notFoundParam, notFnd uint32 // 403 and 404 on parameterised routes; other 404s
}

func (c *anomalyCounts) sub(o *anomalyCounts) {
	c.total -= o.total
	c.param -= o.param
	c.unauth -= o.unauth
	c.limited -= o.limited
	c.forbiddenParam -= o.forbiddenParam
	c.notFoundParam -= o.notFoundParam
	c.notFnd -= o.notFnd
}

func (c *anomalyCounts) add(param bool, status int) {
	c.total++
	if param {
		c.param++
	}
	switch status {
	case 401:
		c.unauth++
	case 429:
		c.limited++
	case 403:
		if param {
			c.forbiddenParam++
		}
	case 404:
		if param {
			c.notFoundParam++
		} else {
			c.notFnd++
		}
	}
}

// anomalyEntry is one client's state.
type anomalyEntry struct {
	buckets  [anomalyBuckets]anomalyCounts
	sum      anomalyCounts // over buckets
	at       int64         // the current bucket's number
	baseline float64       // EWMA of requests per completed bucket
	history  int64         // completed buckets seen (capped)
	alerted  [numAnomalyKinds]int64
	seen     int64  // last observation, Unix nanoseconds (eviction order)
	route    string // last route
}

// anomalyAlert is what one observation found, raised after the lock is released.
type anomalyAlert struct {
	kinds    uint8 // bit per anomalyKind
	sum      anomalyCounts
	expected float64 // requests per window by the baseline
	route    string
	ip       netip.Addr
	consumer string
}

// advance moves e's window to bucket b, feeding completed buckets to the
// baseline. A clock going backwards counts into the current bucket.
func (e *anomalyEntry) advance(b int64, alpha float64) {
	steps := b - e.at
	if steps <= 0 {
		return
	}
	for i := int64(0); i < steps && i < anomalyBuckets; i++ {
		done := &e.buckets[e.at%anomalyBuckets]
		e.feed(float64(done.total), alpha)
		e.at++
		next := &e.buckets[e.at%anomalyBuckets]
		e.sum.sub(next)
		*next = anomalyCounts{}
	}
	if rest := steps - anomalyBuckets; rest > 0 { // idle buckets past the window: all empty
		e.baseline *= math.Pow(1-alpha, float64(rest))
		e.history = min(e.history+rest, 1<<40)
		e.at = b
	}
}

func (e *anomalyEntry) feed(n, alpha float64) {
	if e.history == 0 {
		e.baseline = n
	} else {
		e.baseline += alpha * (n - e.baseline)
	}
	e.history = min(e.history+1, 1<<40)
}

// check returns the kinds e is over the thresholds for, and not yet
// alerted for in this window (and marks them alerted).
func (e *anomalyEntry) check(o *AnomalyOptions, b int64) (kinds uint8, expected float64) {
	s := &e.sum
	if s.total < uint32(o.MinRequests) {
		return 0, 0
	}
	total, param := float64(s.total), float64(s.param)
	over := func(n uint32, ratio, of float64) bool { return ratio > 0 && float64(n) >= ratio*of }
	var found [numAnomalyKinds]bool
	found[anomalyStuffing] = over(s.unauth, o.UnauthorizedRatio, total)
	found[anomalyEnumeration] = s.param >= uint32(o.MinRequests) &&
		(over(s.forbiddenParam, o.ForbiddenRatio, param) || over(s.notFoundParam, o.NotFoundRatio, param))
	found[anomalyScanning] = over(s.notFnd, o.NotFoundRatio, total)
	found[anomalyRateLimited] = over(s.limited, o.RateLimitedRatio, total)
	if o.SpikeFactor > 0 && e.history >= anomalyBuckets { // a window of history at least
		expected = e.baseline * anomalyBuckets
		found[anomalySpike] = total > o.SpikeFactor*max(expected, 1)
	}
	for k, f := range found {
		if f && (e.alerted[k] == 0 || b-e.alerted[k] >= anomalyBuckets) {
			e.alerted[k] = b
			kinds |= 1 << k
		}
	}
	return kinds, expected
}

// raise emits the events of a and asks for bans.
func (d *AnomalyDetector) raise(a *anomalyAlert, now time.Time) {
	window := d.o.Window.String()
	for k := range numAnomalyKinds {
		if a.kinds&(1<<k) == 0 {
			continue
		}
		s := &a.sum
		var n, of uint32
		var what string
		switch k {
		case anomalyStuffing:
			n, of, what = s.unauth, s.total, "credential stuffing: 401 answers"
		case anomalyEnumeration:
			n, of, what = s.forbiddenParam+s.notFoundParam, s.param, "enumeration: 403/404 answers on routes with path parameters"
		case anomalyScanning:
			n, of, what = s.notFnd, s.total, "scanning: 404 answers"
		case anomalyRateLimited:
			n, of, what = s.limited, s.total, "rate limited: 429 answers"
		case anomalySpike:
			n, of, what = s.total, s.total, "traffic spike: requests"
		}
		reason := what + " " + strconv.FormatUint(uint64(n), 10) + " of " + strconv.FormatUint(uint64(of), 10) + " in " + window
		detail := map[string]string{
			"requests": strconv.FormatUint(uint64(s.total), 10),
			"matching": strconv.FormatUint(uint64(n), 10),
			"window":   window,
		}
		if k == anomalySpike {
			reason = "traffic spike: " + strconv.FormatUint(uint64(s.total), 10) + " requests in " + window +
				", baseline " + strconv.FormatFloat(a.expected, 'f', 1, 64)
			detail["baseline"] = strconv.FormatFloat(a.expected, 'f', 1, 64)
		}
		ev := Event{Time: now, Kind: anomalyEvents[k], Route: a.route, Consumer: a.consumer, Reason: reason, Detail: detail}
		if a.ip.IsValid() {
			ev.ClientIP = a.ip.String()
			if a.ip.Is6() {
				detail["ip_prefix"] = netip.PrefixFrom(a.ip, 64).String()
			}
		}
		ban := anomalyBans[k] && d.o.Ban != nil
		if ban {
			detail["ban"] = "requested"
		}
		if d.o.Emit != nil {
			d.o.Emit(ev)
		}
		if ban {
			d.o.Ban(a.ip, a.consumer, reason)
		}
	}
}

// anomalyTable is a sharded, bounded map of clients.
type anomalyTable[K comparable] struct {
	hash   func(K) uint64
	max    int // per shard
	shards [anomalyShards]anomalyShard[K]
}

type anomalyShard[K comparable] struct {
	mu sync.Mutex
	m  map[K]*anomalyEntry
	_  [40]byte // keep shards on separate cache lines
}

func newAnomalyTable[K comparable](perShard int, hash func(K) uint64) *anomalyTable[K] {
	t := &anomalyTable[K]{hash: hash, max: perShard}
	for i := range t.shards {
		t.shards[i].m = make(map[K]*anomalyEntry)
	}
	return t
}

func (t *anomalyTable[K]) len() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

func (t *anomalyTable[K]) observe(d *AnomalyDetector, k K, route string, param bool, status int, b, ns int64) anomalyAlert {
	sh := &t.shards[t.hash(k)&(anomalyShards-1)]
	sh.mu.Lock()
	e := sh.m[k]
	if e == nil {
		e = sh.insert(k, t.max, b)
	}
	e.advance(b, d.alpha)
	e.buckets[e.at%anomalyBuckets].add(param, status)
	e.sum.add(param, status)
	e.route = route
	e.seen = max(e.seen, ns)
	var a anomalyAlert
	a.kinds, a.expected = e.check(&d.o, b)
	if a.kinds != 0 {
		a.sum, a.route = e.sum, route
	}
	sh.mu.Unlock()
	return a
}

// insert adds a fresh entry for k at bucket b; a full shard first forgets
// the longest idle of a few entries (map iteration order is random), whose
// memory the new entry reuses.
func (sh *anomalyShard[K]) insert(k K, limit int, b int64) *anomalyEntry {
	var e *anomalyEntry
	if len(sh.m) >= limit {
		var victim K
		seen := 0
		for key, v := range sh.m {
			if e == nil || v.seen < e.seen {
				e, victim = v, key
			}
			if seen++; seen == anomalySample {
				break
			}
		}
		delete(sh.m, victim)
		*e = anomalyEntry{}
	} else {
		e = new(anomalyEntry)
	}
	e.at = b
	sh.m[k] = e
	return e
}
