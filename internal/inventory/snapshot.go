package inventory

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// snapshotVersion is the format of Snapshot.
const snapshotVersion = 1

// maxSnapshot bounds what Restore reads.
const maxSnapshot = 256 << 20

type snapshotFile struct {
	Version       int         `json:"version"`
	Since         int64       `json:"since"` // unix ns
	ShadowEvicted int64       `json:"shadow_evicted"`
	Entries       []snapEntry `json:"entries"`
}

type snapEntry struct {
	Kind       string   `json:"kind"`
	Route      string   `json:"route"`
	Op         string   `json:"op,omitempty"`
	Deprecated bool     `json:"deprecated,omitempty"`
	Requests   int64    `json:"requests"`
	Status     [4]int64 `json:"status"`
	First      int64    `json:"first,omitempty"` // unix ns
	Last       int64    `json:"last,omitempty"`
	Consumers  []string `json:"consumers,omitempty"`
	Overflow   []uint64 `json:"overflow,omitempty"` // overflowWords words
	// FlushedRequests and FlushedStatus are the part of the counts Redis
	// already has, so a restart does not count them twice.
	FlushedRequests int64    `json:"flushed_requests,omitempty"`
	FlushedStatus   [4]int64 `json:"flushed_status"`
}

// Snapshot writes the inventory (JSON) for Restore after a restart.
func (inv *Inventory) Snapshot(w io.Writer) error {
	inv.flushMu.Lock() // a consistent flushed state
	defer inv.flushMu.Unlock()
	f := snapshotFile{Version: snapshotVersion, Since: inv.since.Load(), ShadowEvicted: inv.shadowEvicted.Load(), Entries: []snapEntry{}}
	for _, e := range inv.entries() {
		s := e.stats()
		se := snapEntry{Kind: e.kind, Route: e.route, Op: e.op, Deprecated: s.deprecated, Requests: s.requests,
			Status: s.status, First: s.first, Last: s.last, Consumers: s.consumers,
			FlushedRequests: e.flushed.requests, FlushedStatus: e.flushed.status}
		if s.bits != nil {
			se.Overflow = s.bits[:]
		}
		f.Entries = append(f.Entries, se)
	}
	if err := json.NewEncoder(w).Encode(f); err != nil {
		return fmt.Errorf("writing the inventory snapshot: %w", err)
	}
	return nil
}

// Restore adds a snapshot written by Snapshot to the inventory. Call it
// before the first Configure: entries of routes the config no longer has
// are dropped by Configure. A snapshot that is not valid is refused whole.
func (inv *Inventory) Restore(r io.Reader) error {
	var f snapshotFile
	dec := json.NewDecoder(io.LimitReader(r, maxSnapshot))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return fmt.Errorf("reading the inventory snapshot: %w", err)
	}
	if err := f.check(inv.o.MaxConsumers, inv.o.MaxShadow); err != nil {
		return fmt.Errorf("reading the inventory snapshot: %w", err)
	}
	if f.Since > 0 && f.Since < inv.since.Load() {
		inv.since.Store(f.Since)
	}
	inv.shadowEvicted.Add(f.ShadowEvicted)
	inv.flushMu.Lock()
	inv.flushedEvicted += f.ShadowEvicted // counted in Redis, if any, before the restart
	inv.flushMu.Unlock()
	t := inv.tab.Load()
	for _, se := range f.Entries {
		e := inv.restoreTarget(t, se)
		if e == nil {
			continue
		}
		e.deprecated.Store(e.deprecated.Load() || se.Deprecated)
		e.requests.Add(se.Requests)
		for i := range se.Status {
			e.status[i].Add(se.Status[i])
		}
		if se.First > 0 {
			e.minFirst(se.First)
		}
		if se.Last > 0 {
			e.maxLast(se.Last)
		}
		for _, id := range se.Consumers {
			e.addConsumer(id, inv.o.MaxConsumers)
		}
		if len(se.Overflow) == overflowWords {
			for w, v := range se.Overflow {
				for d := v; d != 0; d &= d - 1 {
					e.overflowSet(uint64(w*64) + uint64(bits.TrailingZeros64(d)))
				}
			}
		}
		inv.flushMu.Lock()
		e.flushed.requests += se.FlushedRequests
		for i := range se.FlushedStatus {
			e.flushed.status[i] += se.FlushedStatus[i]
		}
		inv.flushMu.Unlock()
	}
	return nil
}

// check validates a decoded snapshot.
func (f *snapshotFile) check(maxConsumers, maxShadow int) error {
	if f.Version != snapshotVersion {
		return fmt.Errorf("version %d, want %d", f.Version, snapshotVersion)
	}
	if f.Since < 0 || f.ShadowEvicted < 0 {
		return errors.New("negative since or shadow_evicted")
	}
	if len(f.Entries) > maxEntries+maxShadow {
		return fmt.Errorf("%d entries, more than %d", len(f.Entries), maxEntries+maxShadow)
	}
	for i, e := range f.Entries {
		switch e.Kind {
		case kindRoute, kindOperation, kindShadow:
		default:
			return fmt.Errorf("entry %d: kind %q", i, e.Kind)
		}
		if e.Route == "" || len(e.Route) > 1024 || len(e.Op) > maxTemplate+64 || (e.Kind != kindRoute) != (e.Op != "") {
			return fmt.Errorf("entry %d: bad route or operation", i)
		}
		if e.Requests < 0 || e.First < 0 || e.Last < 0 || e.FlushedRequests < 0 || e.FlushedRequests > e.Requests {
			return fmt.Errorf("entry %d: bad counts", i)
		}
		for j := range e.Status {
			if e.Status[j] < 0 || e.FlushedStatus[j] < 0 || e.FlushedStatus[j] > e.Status[j] {
				return fmt.Errorf("entry %d: bad status counts", i)
			}
		}
		if len(e.Consumers) > maxConsumers || (len(e.Overflow) != 0 && len(e.Overflow) != overflowWords) {
			return fmt.Errorf("entry %d: too many consumers or a bad overflow bitmap", i)
		}
		for _, c := range e.Consumers {
			if c == "" || len(c) > maxConsumerID {
				return fmt.Errorf("entry %d: bad consumer id", i)
			}
		}
	}
	return nil
}

// restoreTarget finds or creates the entry a snapshot entry goes to, or
// nil when there is no room.
func (inv *Inventory) restoreTarget(t *table, se snapEntry) *entry {
	if se.Kind == kindShadow {
		inv.shadowMu.Lock()
		defer inv.shadowMu.Unlock()
		k := se.Route + "\x00" + se.Op
		if e := inv.shadow[k]; e != nil {
			return e
		}
		if len(inv.shadow) >= inv.o.MaxShadow {
			inv.shadowEvicted.Add(1)
			return nil
		}
		e := newEntry(kindShadow, se.Route, se.Op)
		inv.shadow[k] = e
		return e
	}
	if t != nil {
		if rt := t.routes[se.Route]; rt != nil {
			if se.Kind == kindRoute {
				return rt.entry
			}
			if e := rt.ops[se.Op]; e != nil {
				return e
			}
		}
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	k := entryKey(se.Kind, se.Route, se.Op)
	if e := inv.pending[k]; e != nil {
		return e
	}
	if len(inv.pending) >= maxEntries {
		return nil
	}
	e := newEntry(se.Kind, se.Route, se.Op)
	inv.pending[k] = e
	return e
}
