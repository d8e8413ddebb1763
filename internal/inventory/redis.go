package inventory

import (
	"context"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"time"

	"github.com/redis/rueidis"
)

// Redis layout. Every key carries the hash tag {inv}: a flush is one
// script over many keys, which Redis Cluster allows only within one slot.
// The inventory is small and written every few seconds, so one slot is
// plenty.
//
//	bw:inv:{inv}:since           earliest start of counting (unix ms)
//	bw:inv:{inv}:h:<id>          hash: kind, route, op, deprecated, requests,
//	                             s2..s5 (status classes), first, last (unix ms)
//	bw:inv:{inv}:c:<id>          set: the first MaxConsumers consumer ids
//	bw:inv:{inv}:o:<id>          bitmap: consumers beyond those (estimate)
//	bw:inv:{inv}:shadow          sorted set of shadow entry ids by last seen
//	bw:inv:{inv}:shadow_evicted  counter
//
// <id> is a digest of the entry's kind, route and operation. Entry keys
// expire RedisTTL after the last flush that touched them.
const redisPrefix = "bw:inv:{inv}:"

const (
	sinceKey   = redisPrefix + "since"
	shadowKey  = redisPrefix + "shadow"
	evictedKey = redisPrefix + "shadow_evicted"
)

// flushBatch bounds the entries sent by one script call.
const flushBatch = 100

// flushScript adds one batch of deltas. KEYS: since, shadow, evicted, then
// h, c, o per entry. ARGV: since ms, max consumers, max shadow, TTL ms,
// key prefix, shadow entries this instance evicted since the last flush,
// then per entry: kind, route, op, deprecated (0/1), deltas of
// requests and the four status classes, first ms, last ms (0: unknown), n,
// n × (consumer id, overflow bit), m, m × overflow bit. Consumer ids are
// listed while the set has room; the others count in the bitmap. Shadow
// entries beyond max shadow are evicted, least recently seen first.
const flushScript = `
local since = redis.call('GET', KEYS[1])
if not since or tonumber(since) > tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
local maxc, maxs, ttl, prefix = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5]
if ARGV[6] ~= '0' then redis.call('INCRBY', KEYS[3], ARGV[6]) end
local names = {'requests', 's2', 's3', 's4', 's5'}
local a, k = 7, 4
while k <= #KEYS do
  local h, c, o = KEYS[k], KEYS[k+1], KEYS[k+2]
  k = k + 3
  local kind = ARGV[a]
  redis.call('HSET', h, 'kind', kind, 'route', ARGV[a+1], 'op', ARGV[a+2])
  if ARGV[a+3] == '1' then redis.call('HSET', h, 'deprecated', '1') end
  for i = 1, 5 do
    if ARGV[a+3+i] ~= '0' then redis.call('HINCRBY', h, names[i], ARGV[a+3+i]) end
  end
  local first, last = ARGV[a+9], ARGV[a+10]
  if first ~= '0' then
    local f = redis.call('HGET', h, 'first')
    if not f or tonumber(first) < tonumber(f) then redis.call('HSET', h, 'first', first) end
  end
  if last ~= '0' then
    local l = redis.call('HGET', h, 'last')
    if not l or tonumber(last) > tonumber(l) then redis.call('HSET', h, 'last', last) end
  end
  local n = tonumber(ARGV[a+11])
  a = a + 12
  for i = 1, n do
    local id, bit = ARGV[a], tonumber(ARGV[a+1])
    a = a + 2
    if redis.call('SISMEMBER', c, id) == 0 then
      if redis.call('SCARD', c) < maxc then redis.call('SADD', c, id) else redis.call('SETBIT', o, bit, 1) end
    end
  end
  n = tonumber(ARGV[a])
  a = a + 1
  for i = 1, n do
    redis.call('SETBIT', o, tonumber(ARGV[a]), 1)
    a = a + 1
  end
  redis.call('PEXPIRE', h, ttl)
  redis.call('PEXPIRE', c, ttl)
  redis.call('PEXPIRE', o, ttl)
  if kind == 'shadow' then
    local id = string.sub(h, #prefix + 3)
    redis.call('ZADD', KEYS[2], redis.call('HGET', h, 'last') or 0, id)
    while redis.call('ZCARD', KEYS[2]) > maxs do
      local m = redis.call('ZPOPMIN', KEYS[2])
      redis.call('DEL', prefix .. 'h:' .. m[1], prefix .. 'c:' .. m[1], prefix .. 'o:' .. m[1])
      redis.call('INCR', KEYS[3])
    end
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
end
return 1`

func hashKey(id string) string     { return redisPrefix + "h:" + id }
func consumerKey(id string) string { return redisPrefix + "c:" + id }
func overflowKey(id string) string { return redisPrefix + "o:" + id }

func ms(ns int64) string {
	if ns <= 0 {
		return "0"
	}
	return strconv.FormatInt(ns/int64(time.Millisecond), 10)
}

// pendingFlush is one entry's part of a batch and its state once flushed.
type pendingFlush struct {
	e    *entry
	next flushState
}

// Flush sends this instance's deltas since the last successful flush to
// Redis. Deltas that fail stay and go with the next flush. Without Redis
// it does nothing.
func (inv *Inventory) Flush(ctx context.Context) error {
	if inv.o.Redis == nil {
		return nil
	}
	inv.flushMu.Lock()
	defer inv.flushMu.Unlock()
	head := []string{ms(inv.since.Load()), strconv.Itoa(inv.o.MaxConsumers), strconv.Itoa(inv.o.MaxShadow),
		strconv.FormatInt(inv.o.RedisTTL.Milliseconds(), 10), redisPrefix}
	evicted := inv.shadowEvicted.Load()
	keys := []string{sinceKey, shadowKey, evictedKey}
	args := append(append([]string(nil), head...), strconv.FormatInt(evicted-inv.flushedEvicted, 10))
	var batch []pendingFlush
	send := func() error {
		err := inv.o.Redis.Do(ctx, func(ctx context.Context, cl rueidis.Client) error {
			return inv.flush.Exec(ctx, cl, keys, args).Error()
		})
		if err != nil {
			return fmt.Errorf("flushing the inventory to redis: %w", err)
		}
		for _, p := range batch {
			p.e.flushed = p.next
		}
		inv.flushedEvicted = evicted
		keys, args, batch = keys[:3], append(append(args[:0], head...), "0"), batch[:0]
		return nil
	}
	for _, e := range inv.entries() {
		next, part, changed := e.delta()
		if !changed {
			continue
		}
		keys = append(keys, hashKey(e.id), consumerKey(e.id), overflowKey(e.id))
		args = append(args, part...)
		batch = append(batch, pendingFlush{e: e, next: next})
		if len(batch) >= flushBatch {
			if err := send(); err != nil {
				return err
			}
		}
	}
	// Always send the last batch, empty or not: it records since.
	return send()
}

// delta returns e's state to be, its script arguments, and whether there
// is anything to flush. Called under flushMu.
func (e *entry) delta() (next flushState, args []string, changed bool) {
	f := e.flushed
	next = f
	next.requests = e.requests.Load()
	for i := range next.status {
		next.status[i] = e.status[i].Load()
	}
	next.first, next.last = e.first.Load(), e.last.Load()
	var list []string
	if cs := e.consumers.Load(); cs != nil {
		list = cs.list
	}
	next.consumers = len(list)
	cur := e.bits()
	var newBits []string
	if cur != nil {
		for w := range cur {
			var old uint64
			if f.bits != nil {
				old = f.bits[w]
			}
			for d := cur[w] &^ old; d != 0; d &= d - 1 {
				newBits = append(newBits, strconv.Itoa(w*64+bits.TrailingZeros64(d)))
			}
		}
		next.bits = cur
	}
	changed = next.requests != f.requests || next.first != f.first || next.last != f.last ||
		next.consumers > f.consumers || len(newBits) > 0
	if !changed {
		return f, nil, false
	}
	dep := "0"
	if e.deprecated.Load() {
		dep = "1"
	}
	args = append(args, e.kind, e.route, e.op, dep, strconv.FormatInt(next.requests-f.requests, 10))
	for i := range next.status {
		args = append(args, strconv.FormatInt(next.status[i]-f.status[i], 10))
	}
	first, last := "0", "0"
	if next.first != f.first {
		first = ms(next.first)
	}
	if next.last != f.last {
		last = ms(next.last)
	}
	args = append(args, first, last, strconv.Itoa(len(list)-f.consumers))
	for _, id := range list[min(f.consumers, len(list)):] {
		args = append(args, id, strconv.FormatUint(overflowBit(id), 10))
	}
	args = append(args, strconv.Itoa(len(newBits)))
	args = append(args, newBits...)
	return next, args, true
}

// readBatch bounds the entries read by one pipelined call.
const readBatch = 100

// merged reads every instance's counts from Redis: the entries this
// instance has configured, and the shadow endpoints any instance has seen.
func (inv *Inventory) merged(ctx context.Context, zombieAfter time.Duration) (*Report, error) {
	conn := inv.o.Redis
	var sinceMs, evicted int64
	var shadowIDs []string
	err := conn.Do(ctx, func(ctx context.Context, cl rueidis.Client) error {
		res := cl.DoMulti(ctx,
			cl.B().Get().Key(sinceKey).Build(),
			cl.B().Zrevrange().Key(shadowKey).Start(0).Stop(int64(inv.o.MaxShadow-1)).Build(),
			cl.B().Get().Key(evictedKey).Build())
		var err error
		if sinceMs, err = res[0].AsInt64(); err != nil && !rueidis.IsRedisNil(err) {
			return err
		}
		if shadowIDs, err = res[1].AsStrSlice(); err != nil {
			return err
		}
		if evicted, err = res[2].AsInt64(); err != nil && !rueidis.IsRedisNil(err) {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the inventory from redis: %w", err)
	}
	var local []*entry
	for _, e := range inv.entries() {
		if e.kind != kindShadow {
			local = append(local, e)
		}
	}
	for _, id := range shadowIDs {
		if len(id) == 32 {
			local = append(local, &entry{kind: kindShadow, id: id})
		}
	}
	stats := make([]entryStats, 0, len(local))
	for start := 0; start < len(local); start += readBatch {
		part := local[start:min(start+readBatch, len(local))]
		got, err := inv.readEntries(ctx, part)
		if err != nil {
			return nil, err
		}
		stats = append(stats, got...)
	}
	since := inv.since.Load()
	if sinceMs > 0 {
		since = min(since, sinceMs*int64(time.Millisecond))
	}
	return inv.build(stats, since, evicted, "redis", zombieAfter), nil
}

// readEntries reads one batch of entries.
func (inv *Inventory) readEntries(ctx context.Context, part []*entry) ([]entryStats, error) {
	var out []entryStats
	err := inv.o.Redis.Do(ctx, func(ctx context.Context, cl rueidis.Client) error {
		cmds := make(rueidis.Commands, 0, 3*len(part))
		for _, e := range part {
			cmds = append(cmds, cl.B().Hgetall().Key(hashKey(e.id)).Build(),
				cl.B().Smembers().Key(consumerKey(e.id)).Build(),
				cl.B().Get().Key(overflowKey(e.id)).Build())
		}
		res := cl.DoMulti(ctx, cmds...)
		out = out[:0]
		for i, e := range part {
			h, err := res[3*i].AsStrMap()
			if err != nil {
				return err
			}
			cons, err := res[3*i+1].AsStrSlice()
			if err != nil && !rueidis.IsRedisNil(err) {
				return err
			}
			bm, err := res[3*i+2].ToString()
			if err != nil && !rueidis.IsRedisNil(err) {
				return err
			}
			if e.kind == kindShadow {
				if len(h) == 0 || h["kind"] != kindShadow {
					continue // evicted or expired since the list was read
				}
				e = newEntry(kindShadow, h["route"], h["op"])
			}
			out = append(out, fromRedis(e, h, cons, bm, inv.o.MaxConsumers))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the inventory from redis: %w", err)
	}
	return out, nil
}

// fromRedis turns an entry's Redis values into stats.
func fromRedis(e *entry, h map[string]string, cons []string, bm string, maxConsumers int) entryStats {
	num := func(k string) int64 {
		n, _ := strconv.ParseInt(h[k], 10, 64)
		return max(n, 0)
	}
	s := entryStats{e: e, deprecated: e.deprecated.Load() || h["deprecated"] == "1", requests: num("requests"),
		status: [4]int64{num("s2"), num("s3"), num("s4"), num("s5")},
		first:  num("first") * int64(time.Millisecond), last: num("last") * int64(time.Millisecond)}
	if len(cons) > maxConsumers {
		cons = cons[:maxConsumers]
	}
	s.consumers = sortedCopy(cons)
	if bm != "" {
		var set [overflowWords]uint64
		for i := 0; i < len(bm) && i < overflowBits/8; i++ {
			for j := 0; j < 8; j++ {
				if bm[i]&(0x80>>j) != 0 { // SETBIT numbers bits from the most significant
					off := i*8 + j
					set[off/64] |= 1 << (off % 64)
				}
			}
		}
		s.bits = &set
	}
	return s
}

func sortedCopy(s []string) []string {
	out := append([]string{}, s...)
	slices.Sort(out)
	return out
}
