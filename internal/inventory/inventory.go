// Package inventory is Breakwater's traffic-derived API inventory: for every
// configured route and every operation of the routes' OpenAPI specs it counts
// requests, status classes and distinct consumers, with first and last seen;
// it learns the shadow endpoints (requests on a route with a spec that match
// no operation), lists the zombies (routes and operations without traffic
// for a while) and the deprecated operations still called, and by whom.
//
// Record is the hot path: a known route or operation costs two map lookups
// and a few atomic operations, without allocating. Everything keyed by
// client input is bounded: consumers per entry (the first MaxConsumers ids,
// then a fixed-size estimate), shadow endpoints (MaxShadow, least recently
// seen evicted) and operations not announced by Configure.
//
// The inventory survives restarts (Snapshot and Restore) and, with Redis,
// is shared by every instance: each flushes its deltas every few seconds
// (Run) and the handler serves the merged view.
package inventory

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"math"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/breakwater/breakwater/internal/redisconn"
)

// Defaults of Options.
const (
	DefaultZombieAfter   = 30 * 24 * time.Hour
	DefaultMaxConsumers  = 100
	DefaultMaxShadow     = 1000
	DefaultFlushInterval = 5 * time.Second
	DefaultRedisTTL      = 400 * 24 * time.Hour
)

// Bounds that are not options.
const (
	// maxEntries bounds routes plus operations, those announced by
	// Configure and those first seen in Record together.
	maxEntries = 50_000
	// maxConsumerID bounds the length of a consumer id kept in a list.
	maxConsumerID = 256
	// overflowBits is the size of the bitmap that estimates the distinct
	// consumers beyond the listed ones (linear counting).
	overflowBits  = 4096
	overflowWords = overflowBits / 64
)

// Options configure New. The zero value is ready to use: local only.
type Options struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
	// ZombieAfter is how long a route or operation may go without traffic
	// before it is listed as a zombie (default DefaultZombieAfter). A
	// request can ask for another period (?zombie_after=).
	ZombieAfter time.Duration
	// MaxConsumers is how many consumer ids are listed per route or
	// operation (default DefaultMaxConsumers); more are estimated.
	MaxConsumers int
	// MaxShadow bounds the shadow endpoints kept (default
	// DefaultMaxShadow); the least recently seen is evicted first.
	MaxShadow int
	// Redis, when set, shares the inventory between instances (see Run).
	// The inventory does not close it.
	Redis *redisconn.Conn
	// FlushInterval is how often Run flushes to Redis (default
	// DefaultFlushInterval).
	FlushInterval time.Duration
	// RedisTTL is how long Redis keeps an entry nobody has flushed to
	// (default DefaultRedisTTL).
	RedisTTL time.Duration
	// Logger receives flush failures (nil: discarded).
	Logger *slog.Logger
}

// RouteInfo describes one configured route for Configure.
type RouteInfo struct {
	// Name is the route's name (routes[].name).
	Name string
	// Spec is true when the route has an OpenAPI spec: its requests that
	// match no operation are shadow requests.
	Spec bool
	// Operations are the spec's operations served by the route.
	Operations []OperationInfo
}

// OperationInfo is one operation of a route's spec.
type OperationInfo struct {
	// Operation is "METHOD /template", e.g. "GET /users/{id}".
	Operation string
	// Deprecated is the operation's deprecated flag in the spec.
	Deprecated bool
}

// Hit is one finished request on a route, as the gateway saw it.
type Hit struct {
	// Route is the name of the matched route; a route Configure did not
	// announce is not counted.
	Route string
	// Operation is the matched spec operation ("METHOD /template"), or ""
	// when the route has no spec or the request matched no operation
	// (a shadow request when the route has a spec).
	Operation string
	// Deprecated is the operation's deprecated flag.
	Deprecated bool
	// Method and Path (canonical) are used for shadow requests only.
	Method, Path string
	// Status is the response status (0: none was sent).
	Status int
	// Consumer is the authenticated consumer's id ("" for none).
	Consumer string
}

// Inventory counts the traffic. It is safe for concurrent use.
type Inventory struct {
	o     Options
	since atomic.Int64 // unix ns when counting started (restored: the earliest)
	tab   atomic.Pointer[table]

	mu      sync.Mutex        // guards Configure, dyn, pending
	dyn     map[string]*entry // operations Record met that Configure did not announce
	pending map[string]*entry // restored before the first Configure

	shadowMu      sync.Mutex
	shadow        map[string]*entry // route \x00 METHOD template
	shadowEvicted atomic.Int64

	unknown atomic.Int64 // hits on routes Configure did not announce

	flushMu        sync.Mutex // one flush at a time; guards entry.flushed and flushedEvicted
	flushedEvicted int64      // shadowEvicted when last flushed
	flush          *rueidis.Lua
}

// table is what Record reads without locks; Configure replaces it whole.
type table struct {
	routes map[string]*routeTab
	order  []string // route names in config order
	count  int      // entries (routes and operations)
}

type routeTab struct {
	entry *entry
	spec  bool
	ops   map[string]*entry
	order []string // operations in config order
}

// Kinds of entries.
const (
	kindRoute     = "route"
	kindOperation = "operation"
	kindShadow    = "shadow"
)

// entry holds the counters of a route, an operation or a shadow endpoint.
type entry struct {
	kind   string
	route  string
	op     string // "METHOD /template" (operations, shadow)
	id     string // digest naming the entry in Redis
	method string // shadow only
	path   string // shadow only (template)

	deprecated atomic.Bool
	requests   atomic.Int64
	status     [4]atomic.Int64 // 2xx, 3xx, 4xx, 5xx
	first      atomic.Int64    // unix ns; 0: never
	last       atomic.Int64

	consMu    sync.Mutex // serialises additions to consumers
	consumers atomic.Pointer[consumerSet]
	overflow  atomic.Pointer[bitmap]

	flushed flushState // what Redis has of this entry (under Inventory.flushMu)
}

// consumerSet is immutable once published.
type consumerSet struct {
	ids  map[string]struct{}
	list []string // in the order first seen
}

type bitmap [overflowWords]atomic.Uint64

type flushState struct {
	requests  int64
	status    [4]int64
	first     int64
	last      int64
	consumers int // list[:consumers] are in Redis
	bits      *[overflowWords]uint64
}

// New returns an empty inventory; call Configure before Record counts.
func New(o Options) *Inventory {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ZombieAfter <= 0 {
		o.ZombieAfter = DefaultZombieAfter
	}
	if o.MaxConsumers <= 0 {
		o.MaxConsumers = DefaultMaxConsumers
	}
	if o.MaxShadow <= 0 {
		o.MaxShadow = DefaultMaxShadow
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.RedisTTL <= 0 {
		o.RedisTTL = DefaultRedisTTL
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	inv := &Inventory{o: o, dyn: map[string]*entry{}, pending: map[string]*entry{},
		shadow: map[string]*entry{}, flush: rueidis.NewLuaScript(flushScript)}
	inv.since.Store(o.Now().UnixNano())
	return inv
}

func entryKey(kind, route, op string) string { return kind + "\x00" + route + "\x00" + op }

func newEntry(kind, route, op string) *entry {
	sum := sha256.Sum256([]byte(entryKey(kind, route, op)))
	e := &entry{kind: kind, route: route, op: op, id: hex.EncodeToString(sum[:16])}
	if kind == kindShadow {
		e.method, e.path = splitOp(op)
	}
	return e
}

// splitOp splits "METHOD /path".
func splitOp(op string) (method, path string) {
	for i := 0; i < len(op); i++ {
		if op[i] == ' ' {
			return op[:i], op[i+1:]
		}
	}
	return op, ""
}

// Configure announces the routes and operations of a (re)loaded config:
// their entries exist from now on (so Record does not allocate for them,
// and they can be zombies). Entries of routes still configured keep their
// counts; those of removed routes are dropped. Call it on every config load.
func (inv *Inventory) Configure(routes []RouteInfo) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	old := inv.tab.Load()
	find := func(kind, route, op string) *entry {
		if old != nil {
			if rt := old.routes[route]; rt != nil {
				if kind == kindRoute {
					return rt.entry
				}
				if e := rt.ops[op]; e != nil {
					return e
				}
			}
		}
		k := entryKey(kind, route, op)
		if e := inv.dyn[k]; e != nil {
			return e
		}
		if e := inv.pending[k]; e != nil {
			return e
		}
		return newEntry(kind, route, op)
	}
	t := &table{routes: make(map[string]*routeTab, len(routes))}
	for _, r := range routes {
		if _, dup := t.routes[r.Name]; dup || t.count >= maxEntries {
			continue
		}
		rt := &routeTab{entry: find(kindRoute, r.Name, ""), spec: r.Spec, ops: make(map[string]*entry, len(r.Operations))}
		t.count++
		for _, op := range r.Operations {
			if _, dup := rt.ops[op.Operation]; dup || t.count >= maxEntries {
				continue
			}
			e := find(kindOperation, r.Name, op.Operation)
			e.deprecated.Store(op.Deprecated)
			rt.ops[op.Operation] = e
			rt.order = append(rt.order, op.Operation)
			t.count++
		}
		t.routes[r.Name] = rt
		t.order = append(t.order, r.Name)
	}
	// Operations first met in Record stay while their route is configured.
	for k, e := range inv.dyn {
		rt := t.routes[e.route]
		if rt == nil || rt.ops[e.op] != nil {
			delete(inv.dyn, k)
		}
	}
	clear(inv.pending)
	inv.tab.Store(t)
}

// Record counts one finished request. It is cheap for a configured route
// or operation (no allocation); a shadow request costs a templating of its
// path and a lock.
func (inv *Inventory) Record(h Hit) {
	t := inv.tab.Load()
	if t == nil {
		return
	}
	rt := t.routes[h.Route]
	if rt == nil {
		inv.unknown.Add(1)
		return
	}
	now := inv.o.Now().UnixNano()
	rt.entry.add(now, h.Status, h.Consumer, inv.o.MaxConsumers)
	switch {
	case h.Operation != "":
		e := rt.ops[h.Operation]
		if e == nil {
			if e = inv.dynamic(t, h.Route, h.Operation); e == nil {
				return
			}
		}
		if h.Deprecated && !e.deprecated.Load() {
			e.deprecated.Store(true)
		}
		e.add(now, h.Status, h.Consumer, inv.o.MaxConsumers)
	case rt.spec:
		inv.recordShadow(h, now)
	}
}

// dynamic returns the entry of an operation Configure did not announce,
// creating it while there is room.
func (inv *Inventory) dynamic(t *table, route, op string) *entry {
	if len(op) > maxTemplate+16 {
		return nil
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	k := entryKey(kindOperation, route, op)
	if e := inv.dyn[k]; e != nil {
		return e
	}
	if t.count+len(inv.dyn) >= maxEntries {
		return nil
	}
	e := newEntry(kindOperation, route, op)
	inv.dyn[k] = e
	return e
}

// recordShadow counts a request on a route with a spec that matched no
// operation, under its method and path template.
func (inv *Inventory) recordShadow(h Hit, now int64) {
	var buf [maxTemplate + 64]byte
	method := h.Method
	if !validMethod(method) {
		method = "OTHER"
	}
	b := append(buf[:0], h.Route...)
	b = append(b, 0)
	b = append(b, method...)
	b = append(b, ' ')
	b = AppendTemplate(b, h.Path)
	inv.shadowMu.Lock()
	e := inv.shadow[string(b)]
	if e == nil {
		if len(inv.shadow) >= inv.o.MaxShadow {
			inv.evictShadowLocked()
		}
		op := string(b[len(h.Route)+1:])
		e = newEntry(kindShadow, h.Route, op)
		inv.shadow[string(b)] = e
	}
	inv.shadowMu.Unlock()
	e.add(now, h.Status, h.Consumer, inv.o.MaxConsumers)
}

// evictShadowLocked drops the least recently seen shadow endpoint.
func (inv *Inventory) evictShadowLocked() {
	var oldKey string
	oldest := int64(math.MaxInt64)
	for k, e := range inv.shadow {
		if l := e.last.Load(); l < oldest || oldKey == "" {
			oldKey, oldest = k, l
		}
	}
	delete(inv.shadow, oldKey)
	inv.shadowEvicted.Add(1)
}

// validMethod accepts an HTTP token of at most 20 characters.
func validMethod(m string) bool {
	if m == "" || len(m) > 20 {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// add counts one request on e.
func (e *entry) add(now int64, status int, consumer string, maxConsumers int) {
	e.requests.Add(1)
	if c := status/100 - 2; c >= 0 && c < 4 {
		e.status[c].Add(1)
	}
	if f := e.first.Load(); f == 0 || now < f {
		e.minFirst(now)
	}
	for {
		l := e.last.Load()
		if now <= l || e.last.CompareAndSwap(l, now) {
			break
		}
	}
	if consumer != "" {
		e.addConsumer(consumer, maxConsumers)
	}
}

func (e *entry) minFirst(t int64) {
	for {
		f := e.first.Load()
		if (f != 0 && f <= t) || e.first.CompareAndSwap(f, t) {
			return
		}
	}
}

func (e *entry) maxLast(t int64) {
	for {
		l := e.last.Load()
		if l >= t || e.last.CompareAndSwap(l, t) {
			return
		}
	}
}

// addConsumer lists id if it is new and there is room, or counts it in the
// overflow estimate. A known consumer costs one map lookup.
func (e *entry) addConsumer(id string, maxConsumers int) {
	cs := e.consumers.Load()
	if cs != nil {
		if _, ok := cs.ids[id]; ok {
			return
		}
		if len(cs.list) >= maxConsumers {
			e.overflowAdd(id)
			return
		}
	}
	if len(id) > maxConsumerID {
		e.overflowAdd(id)
		return
	}
	e.consMu.Lock()
	defer e.consMu.Unlock()
	cs = e.consumers.Load()
	e.consumers.Store(cs.with(id, maxConsumers, e))
}

// with returns the set with id added (cs may be nil), or cs itself when id
// is there already or there is no room (id then goes to the overflow).
func (cs *consumerSet) with(id string, maxConsumers int, e *entry) *consumerSet {
	n := 0
	if cs != nil {
		if _, ok := cs.ids[id]; ok {
			return cs
		}
		n = len(cs.list)
	}
	if n >= maxConsumers {
		e.overflowAdd(id)
		return cs
	}
	next := &consumerSet{ids: make(map[string]struct{}, n+1), list: make([]string, n, n+1)}
	if cs != nil {
		copy(next.list, cs.list)
		for k := range cs.ids {
			next.ids[k] = struct{}{}
		}
	}
	next.ids[id] = struct{}{}
	next.list = append(next.list, id)
	return next
}

// overflowBit is where a consumer beyond the listed ones is counted: the
// same for every instance (FNV-1a), so bitmaps merge with OR.
func overflowBit(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return h % overflowBits
}

func (e *entry) overflowAdd(id string) { e.overflowSet(overflowBit(id)) }

// overflowSet sets one bit of the overflow bitmap.
func (e *entry) overflowSet(bit uint64) {
	bit %= overflowBits
	bm := e.overflow.Load()
	if bm == nil {
		e.overflow.CompareAndSwap(nil, new(bitmap))
		bm = e.overflow.Load()
	}
	w, m := &bm[bit/64], uint64(1)<<(bit%64)
	if w.Load()&m == 0 {
		w.Or(m)
	}
}

// bits returns a copy of the overflow bitmap (nil when empty).
func (e *entry) bits() *[overflowWords]uint64 {
	bm := e.overflow.Load()
	if bm == nil {
		return nil
	}
	var out [overflowWords]uint64
	for i := range bm {
		out[i] = bm[i].Load()
	}
	return &out
}

// estimate is the linear-counting estimate of the distinct consumers a
// bitmap has seen, and whether the bitmap is saturated (then a lower bound).
func estimate(set *[overflowWords]uint64) (n int64, saturated bool) {
	if set == nil {
		return 0, false
	}
	ones := 0
	for _, w := range set {
		ones += bits.OnesCount64(w)
	}
	zeros := overflowBits - ones
	if zeros == 0 {
		return int64(overflowBits * math.Log(overflowBits)), true
	}
	return int64(math.Round(-overflowBits * math.Log(float64(zeros)/overflowBits))), false
}

// consumerList returns the listed consumers, sorted.
func (e *entry) consumerList() []string {
	cs := e.consumers.Load()
	if cs == nil {
		return []string{}
	}
	return slices.Sorted(slices.Values(cs.list))
}

// entries returns every entry: routes and their operations in config order,
// then operations met in Record, then shadow endpoints.
func (inv *Inventory) entries() []*entry {
	var out []*entry
	if t := inv.tab.Load(); t != nil {
		for _, name := range t.order {
			rt := t.routes[name]
			out = append(out, rt.entry)
			for _, op := range rt.order {
				out = append(out, rt.ops[op])
			}
		}
	}
	inv.mu.Lock()
	for _, e := range inv.dyn {
		out = append(out, e)
	}
	inv.mu.Unlock()
	inv.shadowMu.Lock()
	for _, e := range inv.shadow {
		out = append(out, e)
	}
	inv.shadowMu.Unlock()
	return out
}

// Since is when counting started: the first start of the gateway whose
// state was restored (or, with Redis, of the first instance).
func (inv *Inventory) Since() time.Time { return time.Unix(0, inv.since.Load()) }

// Unknown is the number of hits on routes Configure did not announce.
func (inv *Inventory) Unknown() int64 { return inv.unknown.Load() }

// Run flushes the deltas to Redis every FlushInterval until ctx ends, then
// once more (with its own short timeout). Without Redis it returns at once.
func (inv *Inventory) Run(ctx context.Context) {
	if inv.o.Redis == nil {
		return
	}
	t := time.NewTicker(inv.o.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			if err := inv.Flush(fctx); err != nil {
				inv.o.Logger.Warn("inventory not flushed to redis at shutdown", "err", err.Error())
			}
			cancel()
			return
		case <-t.C:
			if err := inv.Flush(ctx); err != nil && ctx.Err() == nil {
				inv.o.Logger.Warn("inventory not flushed to redis; will retry", "err", err.Error())
			}
		}
	}
}
