package state

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Ban is one banned client.
type Ban struct {
	// Key is who is banned: "ip:203.0.113.7", "ip:2001:db8:1:2::/64" (an
	// IPv6 client is banned with its /64) or "consumer:acme". See BanKeyIP,
	// BanKeyConsumer and ParseBanKey.
	Key string `json:"key"`
	// Reason is why: the counter that tripped ("auth_failures",
	// "client_errors"). Gateway-written, at most MaxBanReason bytes.
	Reason string `json:"reason"`
	// Until is when the ban ends.
	Until time.Time `json:"until"`
}

// Bans remembers banned clients (docs/bans.md). The embedded
// implementation is MemoryBans; a shared one (Redis) lets every gateway
// instance enforce a ban that one of them decided.
type Bans interface {
	// Ban bans b.Key until b.Until. An existing ban is extended when
	// b.Until is later, never shortened. It reports whether the key was
	// not banned before (a new ban, to be reported as an event).
	Ban(ctx context.Context, b Ban) (bool, error)
	// Banned reports whether key is banned now. It is called on the
	// request path, before routing: implementations answer from memory (a
	// shared store keeps a local replica, updated by its own means).
	Banned(ctx context.Context, key string) (bool, error)
	// Lift ends the ban of key now. It reports whether there was one.
	Lift(ctx context.Context, key string) (bool, error)
	// List returns at most limit unexpired bans, those that end first
	// first, and the number of unexpired bans in all.
	List(ctx context.Context, limit int) ([]Ban, int, error)
}

// Bounds of a ban.
const (
	MaxBanKey    = 128
	MaxBanReason = 64
)

// Prefixes of ban keys.
const (
	banIP       = "ip:"
	banConsumer = "consumer:"
)

// BanKeyIP is the ban key of a client address: "ip:" and the address for
// IPv4, "ip:" and the address's /64 prefix for IPv6 (a single subscriber
// usually holds a whole /64, so banning one address of it would be
// pointless). An invalid address gives "".
func BanKeyIP(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	switch {
	case a.Is4():
		return banIP + a.String()
	case a.Is6():
		return banIP + netip.PrefixFrom(a, 64).Masked().String()
	}
	return ""
}

// BanKeyConsumer is the ban key of a consumer id ("" for an empty id).
func BanKeyConsumer(id string) string {
	if id == "" || len(banConsumer)+len(id) > MaxBanKey {
		return ""
	}
	return banConsumer + id
}

// ParseBanKey checks a ban key given by an operator (DELETE
// /admin/bans/{key}) and returns it in the form the gateway records:
// "ip:2001:DB8::1" becomes "ip:2001:db8::/64". It accepts "ip:" with an
// address, or an IPv6 /64 prefix, and "consumer:" with an id of printable
// ASCII without spaces.
func ParseBanKey(s string) (string, error) {
	if len(s) > MaxBanKey {
		return "", fmt.Errorf("ban key of %d bytes; at most %d", len(s), MaxBanKey)
	}
	switch {
	case strings.HasPrefix(s, banIP):
		v := s[len(banIP):]
		if p, err := netip.ParsePrefix(v); err == nil {
			if !p.Addr().Is6() || p.Addr().Is4In6() || p.Bits() != 64 {
				return "", errors.New(`an "ip:" ban key holds an address, or an IPv6 /64 prefix`)
			}
			return BanKeyIP(p.Addr()), nil
		}
		a, err := netip.ParseAddr(v)
		if err != nil || a.Zone() != "" {
			return "", errors.New(`an "ip:" ban key holds an IP address such as ip:203.0.113.7`)
		}
		return BanKeyIP(a), nil
	case strings.HasPrefix(s, banConsumer):
		id := s[len(banConsumer):]
		if id == "" {
			return "", errors.New(`a "consumer:" ban key holds a consumer id such as consumer:acme`)
		}
		for i := range len(id) {
			if c := id[i]; c <= ' ' || c > '~' {
				return "", errors.New("a consumer id is printable ASCII without spaces")
			}
		}
		return s, nil
	}
	return "", errors.New(`a ban key starts with "ip:" or "consumer:"`)
}

// BanOptions bound MemoryBans.
type BanOptions struct {
	// MaxBans bounds the bans held at once (default 100,000). When full,
	// expired bans are swept; if none can be, a new ban is refused with
	// ErrFull (and logged by the caller) rather than an unexpired one
	// being forgotten.
	MaxBans int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// MemoryBans is the embedded Bans of one gateway process: a map from key to
// ban under one mutex, with an atomic count so that the request path costs
// one atomic load while nobody is banned.
type MemoryBans struct {
	o BanOptions

	n    atomic.Int64 // len(bans), for the lock-free fast path
	mu   sync.Mutex
	bans map[string]banEntry
}

type banEntry struct {
	reason string
	until  int64 // unix nanoseconds
}

var _ Bans = (*MemoryBans)(nil)

// NewMemoryBans returns an empty store.
func NewMemoryBans(o BanOptions) *MemoryBans {
	if o.MaxBans <= 0 {
		o.MaxBans = 100_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &MemoryBans{o: o, bans: make(map[string]banEntry)}
}

// Ban implements Bans.
func (m *MemoryBans) Ban(_ context.Context, b Ban) (bool, error) {
	if b.Key == "" || len(b.Key) > MaxBanKey {
		return false, fmt.Errorf("ban: key of %d bytes; want 1 to %d", len(b.Key), MaxBanKey)
	}
	if len(b.Reason) > MaxBanReason {
		b.Reason = b.Reason[:MaxBanReason]
	}
	now, until := m.o.Now().UnixNano(), b.Until.UnixNano()
	if until <= now {
		return false, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.bans[b.Key]; ok && e.until > now {
		if until > e.until {
			m.bans[b.Key] = banEntry{reason: b.Reason, until: until}
		}
		return false, nil
	}
	if len(m.bans) >= m.o.MaxBans && sweepBans(m.bans, now) == 0 {
		m.n.Store(int64(len(m.bans)))
		return false, fmt.Errorf("ban not recorded: %w", ErrFull)
	}
	m.bans[b.Key] = banEntry{reason: b.Reason, until: until}
	m.n.Store(int64(len(m.bans)))
	return true, nil
}

// Banned implements Bans.
func (m *MemoryBans) Banned(_ context.Context, key string) (bool, error) {
	if m.n.Load() == 0 {
		return false, nil
	}
	now := m.o.Now().UnixNano()
	m.mu.Lock()
	e, ok := m.bans[key]
	if ok && e.until <= now {
		delete(m.bans, key)
		m.n.Store(int64(len(m.bans)))
		ok = false
	}
	m.mu.Unlock()
	return ok, nil
}

// Empty reports whether no ban is held (expired ones count until swept).
// It is one atomic load: the gateway skips building ban keys when true.
func (m *MemoryBans) Empty() bool { return m.n.Load() == 0 }

// Lift implements Bans.
func (m *MemoryBans) Lift(_ context.Context, key string) (bool, error) {
	now := m.o.Now().UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.bans[key]
	if ok {
		delete(m.bans, key)
		m.n.Store(int64(len(m.bans)))
	}
	return ok && e.until > now, nil
}

// List implements Bans.
func (m *MemoryBans) List(_ context.Context, limit int) ([]Ban, int, error) {
	now := m.o.Now().UnixNano()
	m.mu.Lock()
	sweepBans(m.bans, now)
	m.n.Store(int64(len(m.bans)))
	out := make([]Ban, 0, len(m.bans))
	for k, e := range m.bans {
		out = append(out, Ban{Key: k, Reason: e.reason, Until: time.Unix(0, e.until).UTC()})
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Ban) int {
		return cmp.Or(a.Until.Compare(b.Until), strings.Compare(a.Key, b.Key))
	})
	total := len(out)
	if limit >= 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, total, nil
}

// sweepBans deletes expired bans and returns how many it deleted.
func sweepBans(m map[string]banEntry, now int64) int {
	n := 0
	for k, e := range m {
		if e.until <= now {
			delete(m, k)
			n++
		}
	}
	return n
}

// banSnapshot is the persisted form: unexpired bans, Until in unix seconds
// rounded up (nothing is lifted early by a restart).
type banSnapshot struct {
	Version int         `json:"version"`
	Bans    []banRecord `json:"bans"`
}

type banRecord struct {
	Key    string `json:"key"`
	Reason string `json:"reason"`
	Until  int64  `json:"until"`
}

const banSnapshotVersion = 1

// Snapshot writes the unexpired bans to w, as JSON.
func (m *MemoryBans) Snapshot(w io.Writer) error {
	now := m.o.Now().UnixNano()
	s := banSnapshot{Version: banSnapshotVersion, Bans: []banRecord{}}
	m.mu.Lock()
	for k, e := range m.bans {
		if e.until > now {
			s.Bans = append(s.Bans, banRecord{Key: k, Reason: e.reason, Until: ceilSeconds(e.until)})
		}
	}
	m.mu.Unlock()
	slices.SortFunc(s.Bans, func(a, b banRecord) int { return strings.Compare(a.Key, b.Key) })
	if err := json.NewEncoder(w).Encode(s); err != nil {
		return fmt.Errorf("ban snapshot: %w", err)
	}
	return nil
}

// Restore adds the unexpired bans of a Snapshot to the store (an existing
// ban is kept if it ends later). Input is bounded by MaxBans; keys that are
// not ban keys are an error.
func (m *MemoryBans) Restore(r io.Reader) error {
	var s banSnapshot
	if err := json.NewDecoder(r).Decode(&s); err != nil {
		return fmt.Errorf("ban snapshot: %w", err)
	}
	if s.Version != banSnapshotVersion {
		return fmt.Errorf("ban snapshot: version %d; want %d", s.Version, banSnapshotVersion)
	}
	now := m.o.Now().UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range s.Bans {
		key, err := ParseBanKey(b.Key)
		if err != nil {
			return fmt.Errorf("ban snapshot: key %.40q: %w", b.Key, err)
		}
		if b.Until <= 0 || b.Until > maxUnixSeconds {
			continue
		}
		until := b.Until * int64(time.Second)
		if until <= now || len(m.bans) >= m.o.MaxBans {
			continue
		}
		if len(b.Reason) > MaxBanReason {
			b.Reason = b.Reason[:MaxBanReason]
		}
		if e, ok := m.bans[key]; !ok || e.until < until {
			m.bans[key] = banEntry{reason: b.Reason, until: until}
		}
	}
	m.n.Store(int64(len(m.bans)))
	return nil
}

// maxUnixSeconds keeps Until*1e9 within int64.
const maxUnixSeconds = (1<<63 - 1) / int64(time.Second)
