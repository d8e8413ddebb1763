package ratelimit

import (
	"context"
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkMemoryPerKey reports the heap that one million distinct keys
// take in a Memory, after a GC, with their key strings, for issue 5's
// budget (≤ 150 MB for 1M keys). Unlike BenchmarkMemory1M, whose bound of
// exactly 1M keys lets the per-shard bounds evict a few keys of the fuller
// shards, the bounds here leave room, so every key is kept ("keys" = 1e6)
// and "B/key" is the cost of one key:
//   - "1 limit": one key per client, such as a per-IP rate;
//   - "2 limits": two keys per client (a consumer's rate and its daily
//     quota), the same 1M keys in total.
func BenchmarkMemoryPerKey(b *testing.B) {
	const n = 1_000_000
	rate := lim(b, "route:ip", "100/s burst 50")
	daily := lim(b, "daily", "1000000/d")
	for _, bc := range []struct {
		name   string
		limits []Limit
	}{
		{"1 limit", []Limit{rate}},
		{"2 limits", []Limit{rate, daily}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			per := len(bc.limits)
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				m := NewMemory(MemoryOptions{MaxKeys: 2 * n})
				ctx := context.Background()
				keys := make([]string, per)
				req := Request{Keys: keys, Limits: bc.limits}
				var d Decision
				for i := range n / per {
					ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
					keys[0] = Key("route:ip", "orders-read", ip)
					if per > 1 {
						keys[1] = Key("consumer:daily", "", ip)
					}
					if err := m.Decide(ctx, t0, req, &d); err != nil {
						b.Fatal(err)
					}
				}
				clear(keys)
				runtime.GC()
				runtime.ReadMemStats(&after)
				heap := float64(after.HeapAlloc) - float64(before.HeapAlloc)
				b.ReportMetric(heap/1e6, "MB")
				b.ReportMetric(heap/float64(m.Len()), "B/key")
				b.ReportMetric(float64(m.Len()), "keys")
				runtime.KeepAlive(m)
			}
		})
	}
}
