package dashboard

import (
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func newTopK() *topK {
	t := &topK{}
	t.init(maphash.MakeSeed())
	return t
}

// check verifies every shard's table and heap invariants.
func (t *topK) check(tb testing.TB) {
	tb.Helper()
	for si := range t.shards {
		s := &t.shards[si]
		inTable := 0
		for _, e := range s.slots {
			if e >= 0 {
				inTable++
			}
		}
		if inTable != s.n {
			tb.Fatalf("shard %d: %d slots used, %d entries", si, inTable, s.n)
		}
		for i := 0; i < s.n; i++ {
			en := &s.entries[i]
			if s.find(en.hash, string(en.key[:en.keyLen])) != i {
				tb.Fatalf("shard %d: entry %d (%q) not found", si, i, en.key[:en.keyLen])
			}
			if int(s.heap[en.heap]) != i {
				tb.Fatalf("shard %d: heap position of %d wrong", si, i)
			}
			if p := (en.heap - 1) / 2; en.heap > 0 && s.entries[s.heap[p]].count > en.count {
				tb.Fatalf("shard %d: heap order broken", si)
			}
			if en.errBnd > en.count {
				tb.Fatalf("error bound above count")
			}
		}
	}
}

func TestTopKExactWhenSmall(t *testing.T) {
	k := newTopK()
	for i := range 20 {
		for range i + 1 {
			k.observe("c"+strconv.Itoa(i), 200)
		}
	}
	k.observe("c3", 404)
	k.observe("c3", 500)
	k.observe("", 200) // anonymous: not counted
	k.check(t)
	top := k.top(5)
	if len(top) != 5 || top[0].ID != "c19" || top[0].Requests != 20 || top[0].Bound != 0 {
		t.Fatalf("top: %+v", top)
	}
	for _, c := range k.top(100) {
		if c.ID == "" {
			t.Error("anonymous counted")
		}
		if c.ID == "c3" && (c.Requests != 6 || c.Status4 != 1 || c.Status5 != 1) {
			t.Errorf("c3: %+v", c)
		}
	}
}

// TestTopKHeavyHitters: heavy consumers stay on top while a flood of
// distinct ones (an attacker rotating identities) churns the table.
func TestTopKHeavyHitters(t *testing.T) {
	k := newTopK()
	heavy := []string{"alice", "bob", "carol", "dave", "erin"}
	for i := range 20000 {
		k.observe(heavy[i%len(heavy)], 200)
		k.observe("flood-"+strconv.Itoa(i), 401)
	}
	k.check(t)
	top := k.top(len(heavy))
	for _, c := range top {
		if !strings.Contains(strings.Join(heavy, ","), c.ID) || strings.HasPrefix(c.ID, "flood") {
			t.Fatalf("top: %+v", top)
		}
		if c.Requests < 4000 || c.Requests-c.Bound > 4000 {
			t.Errorf("%s: count %d bound %d, true 4000", c.ID, c.Requests, c.Bound)
		}
	}
	if n := len(k.top(1 << 20)); n > topShards*topPerShard {
		t.Fatalf("%d tracked", n)
	}
}

func TestTopKLongIDs(t *testing.T) {
	k := newTopK()
	long := strings.Repeat("x", 1000)
	k.observe(long, 200)
	k.observe(long[:maxConsumerBytes]+"different tail", 200)
	top := k.top(10)
	if len(top) != 1 || len(top[0].ID) != maxConsumerBytes || top[0].Requests != 2 {
		t.Fatalf("top: %d entries, %+v", len(top), top)
	}
}

func TestTopKConcurrent(t *testing.T) {
	d := newFixture(t).d
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 5000 {
				d.Observe("c"+strconv.Itoa((i*7+g)%300), 200+i%400)
				if i%500 == 0 {
					d.top.top(TopConsumers)
				}
			}
		})
	}
	wg.Wait()
	d.top.check(t)
}

func FuzzTopK(f *testing.F) {
	f.Add([]byte("alice\x00bob\x00alice\x00\x00" + strings.Repeat("z", 200)))
	f.Add([]byte{0xff, 0xfe, 0, 1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		k := newTopK()
		for i, id := range strings.Split(string(data), "\x00") {
			k.observe(id, 200+i%400)
			for j := range 40 { // churn every shard
				k.observe(id+strconv.Itoa(j), 200)
			}
		}
		k.check(t)
		k.top(TopConsumers)
	})
}

func BenchmarkObserve(b *testing.B) {
	d := newFixture(b).d
	ids := make([]string, 50)
	for i := range ids {
		ids[i] = "consumer-" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		d.Observe(ids[i%len(ids)], 200)
	}
}

func BenchmarkObserveParallel(b *testing.B) {
	d := newFixture(b).d
	ids := make([]string, 50)
	for i := range ids {
		ids[i] = "consumer-" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			d.Observe(ids[i%len(ids)], 200)
			i++
		}
	})
}

// BenchmarkObserveChurn: every request from a consumer the table does not
// track (the worst case: an eviction each time).
func BenchmarkObserveChurn(b *testing.B) {
	d := newFixture(b).d
	ids := make([]string, 100000)
	for i := range ids {
		ids[i] = "consumer-" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		d.Observe(ids[i%len(ids)], 200)
	}
}
