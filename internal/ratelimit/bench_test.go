package ratelimit

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
)

func benchKeys(n int, scope string) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = Key(scope, "orders-read", fmt.Sprintf("198.51.%d.%d", i/256%256, i%256))
	}
	return keys
}

// BenchmarkDecide measures one decision on known keys (1024 of them, the
// clock advancing so that most requests are admitted).
func BenchmarkDecide(b *testing.B) {
	rate := lim(b, "consumer", "100/s burst 50")
	daily := lim(b, "daily", "1000000/d")
	ks1, ks2 := benchKeys(1024, "route:ip"), benchKeys(1024, "consumer:daily")
	for _, bc := range []struct {
		name   string
		limits []Limit
	}{
		{"one limit", []Limit{rate}},
		{"two limits", []Limit{rate, daily}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			m := NewMemory(MemoryOptions{})
			ctx := context.Background()
			keys := make([]string, len(bc.limits))
			req := Request{Keys: keys, Limits: bc.limits}
			var d Decision
			now := t0
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				keys[0] = ks1[i&1023]
				if len(keys) > 1 {
					keys[1] = ks2[i&1023]
				}
				if err := m.Decide(ctx, now, req, &d); err != nil {
					b.Fatal(err)
				}
				i++
				now = now.Add(10 * time.Microsecond)
			}
		})
		b.Run(bc.name+" parallel", func(b *testing.B) {
			m := NewMemory(MemoryOptions{})
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				keys := make([]string, len(bc.limits))
				req := Request{Keys: keys, Limits: bc.limits}
				var d Decision
				now, i := t0, 0
				for pb.Next() {
					keys[0] = ks1[i&1023]
					if len(keys) > 1 {
						keys[1] = ks2[i&1023]
					}
					if err := m.Decide(context.Background(), now, req, &d); err != nil {
						b.Error(err)
						return
					}
					i++
					now = now.Add(10 * time.Microsecond)
				}
			})
		})
	}
}

// BenchmarkMemory1M reports the heap taken by one million distinct keys
// (each a 33–35 byte key such as "8:route:ip11:orders-read12:10.1.2.3"),
// key strings included, after a GC.
func BenchmarkMemory1M(b *testing.B) {
	const n = 1_000_000
	l := lim(b, "route:ip", "100/s burst 50")
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m := NewMemory(MemoryOptions{MaxKeys: n})
		ctx := context.Background()
		keys := make([]string, 1)
		req := Request{Keys: keys, Limits: []Limit{l}}
		var d Decision
		for i := range n {
			keys[0] = Key("route:ip", "orders-read", fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
			if err := m.Decide(ctx, t0, req, &d); err != nil {
				b.Fatal(err)
			}
		}
		keys[0] = ""
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/1e6, "MB")
		b.ReportMetric(float64(m.Len()), "keys")
		runtime.KeepAlive(m)
	}
}
