package concurrency

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

func TestAcquireRelease(t *testing.T) {
	for _, tc := range []struct {
		name   string
		steps  func(l *Limiter) []int // results of the Acquire calls
		want   []int
		remain int // keys left afterwards
	}{
		{"no keys", func(l *Limiter) []int { return []int{l.Acquire(nil, nil)} }, []int{-1}, 0},
		{"up to the limit", func(l *Limiter) []int {
			k, n := []string{"a"}, []int{2}
			return []int{l.Acquire(k, n), l.Acquire(k, n), l.Acquire(k, n)}
		}, []int{-1, -1, 0}, 1},
		{"release frees a slot", func(l *Limiter) []int {
			k, n := []string{"a"}, []int{1}
			r := []int{l.Acquire(k, n), l.Acquire(k, n)}
			l.Release(k)
			return append(r, l.Acquire(k, n))
		}, []int{-1, 0, -1}, 1},
		{"all or none", func(l *Limiter) []int {
			r := []int{l.Acquire([]string{"b"}, []int{1})}
			r = append(r, l.Acquire([]string{"a", "b"}, []int{5, 1})) // b full: a not taken
			r = append(r, l.InFlight("a"))
			return r
		}, []int{-1, 1, 0}, 1},
		{"zero limit refuses", func(l *Limiter) []int { return []int{l.Acquire([]string{"x"}, []int{0})} }, []int{0}, 0},
		{"negative limit refuses", func(l *Limiter) []int { return []int{l.Acquire([]string{"x", "y"}, []int{3, -1})} }, []int{1}, 0},
		{"too few limits", func(l *Limiter) []int { return []int{l.Acquire([]string{"x", "y"}, []int{3})} }, []int{0}, 0},
		{"too many keys", func(l *Limiter) []int {
			keys := make([]string, MaxKeysPerAcquire+1)
			limits := make([]int, len(keys))
			for i := range keys {
				keys[i], limits[i] = strconv.Itoa(i), 1
			}
			return []int{l.Acquire(keys, limits)}
		}, []int{0}, 0},
		{"release of unknown key", func(l *Limiter) []int { l.Release([]string{"nobody"}); return nil }, nil, 0},
		{"double release does not go negative", func(l *Limiter) []int {
			k, n := []string{"a"}, []int{1}
			r := []int{l.Acquire(k, n)}
			l.Release(k)
			l.Release(k)
			return append(r, l.Acquire(k, n), l.Acquire(k, n))
		}, []int{-1, -1, 0}, 1},
		{"many keys, one request", func(l *Limiter) []int {
			keys := make([]string, MaxKeysPerAcquire)
			limits := make([]int, len(keys))
			for i := range keys {
				keys[i], limits[i] = "k"+strconv.Itoa(i), 1
			}
			r := []int{l.Acquire(keys, limits), l.Acquire(keys[5:6], limits[5:6])}
			l.Release(keys)
			return r
		}, []int{-1, 0}, 0},
		{"released to zero is forgotten", func(l *Limiter) []int {
			k := []string{"a", "b"}
			r := []int{l.Acquire(k, []int{9, 9})}
			l.Release(k)
			return r
		}, []int{-1}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := New(Options{})
			got := tc.steps(l)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
			if n := l.Len(); n != tc.remain {
				t.Fatalf("%d keys left, want %d", n, tc.remain)
			}
		})
	}
}

func TestMaxKeys(t *testing.T) {
	l := New(Options{MaxKeys: numShards}) // one key per shard
	admitted := 0
	for i := range 10 * numShards {
		if l.Acquire([]string{"k" + strconv.Itoa(i)}, []int{1}) < 0 {
			admitted++
		}
	}
	if admitted > numShards || l.Len() > numShards {
		t.Fatalf("admitted %d keys, holds %d; bound %d", admitted, l.Len(), numShards)
	}
}

// TestExactUnderConcurrency: many goroutines hold their slot until all have
// tried; exactly limit of them get one, on every round.
func TestExactUnderConcurrency(t *testing.T) {
	const limit, workers, rounds = 5, 64, 20
	l := New(Options{})
	keys := []string{"route:consumer", "route:ip"}
	limits := []int{limit, 1000}
	for range rounds {
		var admitted atomic.Int32
		var tried, done sync.WaitGroup
		tried.Add(workers)
		release := make(chan struct{})
		for range workers {
			done.Add(1)
			go func() {
				defer done.Done()
				ok := l.Acquire(keys, limits) < 0
				if ok {
					admitted.Add(1) // counted before tried.Done, or the check could miss it
				}
				tried.Done()
				if ok {
					<-release
					l.Release(keys)
				}
			}()
		}
		tried.Wait()
		if n := admitted.Load(); n != limit {
			t.Fatalf("admitted %d in flight, want %d", n, limit)
		}
		if got := l.InFlight("route:ip"); got != limit {
			t.Fatalf("the other key counts %d, want %d (refused requests hold no slot)", got, limit)
		}
		close(release)
		done.Wait()
		if l.Len() != 0 {
			t.Fatalf("%d keys left after every release", l.Len())
		}
	}
}

// TestNoDeadlock: requests with overlapping keys in opposite orders.
func TestNoDeadlock(t *testing.T) {
	l := New(Options{})
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys := []string{"a", "b", "c"}
			if i%2 == 1 {
				keys = []string{"c", "b", "a"}
			}
			for range 2000 {
				if l.Acquire(keys, []int{4, 4, 4}) < 0 {
					l.Release(keys)
				}
			}
		}()
	}
	wg.Wait()
	if l.Len() != 0 {
		t.Fatalf("%d keys left", l.Len())
	}
}

func BenchmarkAcquireRelease(b *testing.B) {
	l := New(Options{})
	keys, limits := []string{"8:route:ip1:05:items11:203.0.113.7"}, []int{100}
	b.ReportAllocs()
	for b.Loop() {
		if l.Acquire(keys, limits) < 0 {
			l.Release(keys)
		}
	}
}

func BenchmarkAcquireReleaseTwoKeys(b *testing.B) {
	l := New(Options{})
	keys, limits := []string{"14:route:consumer1:05:items4:acme", "8:route:ip1:15:items11:203.0.113.7"}, []int{100, 100}
	b.ReportAllocs()
	for b.Loop() {
		if l.Acquire(keys, limits) < 0 {
			l.Release(keys)
		}
	}
}

func BenchmarkAcquireReleaseParallel(b *testing.B) {
	l := New(Options{})
	var id atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		keys, limits := []string{"client-" + strconv.FormatInt(id.Add(1), 10)}, []int{100}
		for pb.Next() {
			if l.Acquire(keys, limits) < 0 {
				l.Release(keys)
			}
		}
	})
}
