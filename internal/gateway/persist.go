package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/breakwater/breakwater/internal/inventory"
	"github.com/breakwater/breakwater/internal/ratelimit"
	"github.com/breakwater/breakwater/internal/state"
)

// stateSaveInterval is how often the embedded state is written to the data
// directory (and once more at shutdown): a crash loses at most this much of
// the quotas' consumption, revocations and nonces.
const stateSaveInterval = 30 * time.Second

// persisted is one part of the embedded state kept in data_dir/state.
type persisted struct {
	name    string // for logs: "rate limit", "security"
	file    string
	save    func(w io.Writer, now time.Time) error
	restore func(r io.Reader, now time.Time) error
}

// limiterFile is where the embedded rate-limit state is kept.
func limiterFile(dataDir string) string {
	return filepath.Join(dataDir, "state", "ratelimit.snap")
}

// securityFile is where revocations and signature nonces are kept.
func securityFile(dataDir string) string {
	return filepath.Join(dataDir, "state", "security.json")
}

// persistedState lists what the embedded stores keep across restarts.
func persistedState(dataDir string, limiter *ratelimit.Memory, sec *state.Memory, bans *state.MemoryBans, inv *inventory.Inventory) []persisted {
	return []persisted{
		{name: "rate limit", file: limiterFile(dataDir), save: limiter.Snapshot, restore: limiter.Restore},
		saved("security", securityFile(dataDir), sec),
		saved("ban", bansFile(dataDir), bans),
		saved("inventory", filepath.Join(dataDir, "state", "inventory.json"), inv),
	}
}

// snapshotter is embedded state that writes and reads itself whole.
type snapshotter interface {
	Snapshot(w io.Writer) error
	Restore(r io.Reader) error
}

// saved is the persisted entry of a snapshotter kept in file.
func saved(name, file string, s snapshotter) persisted {
	return persisted{name: name, file: file,
		save:    func(w io.Writer, _ time.Time) error { return s.Snapshot(w) },
		restore: func(r io.Reader, _ time.Time) error { return s.Restore(r) }}
}

// restore loads the state saved by a previous run, so a restart does not
// reset a daily quota or forget a revoked token. A missing file is a first
// start; an unreadable or corrupt one is moved aside (….bad) and the gateway
// starts with empty state rather than not at all.
func (p persisted) load(now time.Time, log *slog.Logger) {
	f, err := os.Open(p.file)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err == nil {
		err = p.restore(bufio.NewReader(f), now)
		f.Close()
	}
	if err != nil {
		log.Warn(p.name+" state not restored; starting empty", "file", p.file, "err", err.Error())
		_ = os.Rename(p.file, p.file+".bad")
		return
	}
	log.Info(p.name+" state restored", "file", p.file)
}

// store writes the state atomically: a temporary file, synced, then
// renamed over the previous one.
func (p persisted) store(now time.Time) error {
	if err := os.MkdirAll(filepath.Dir(p.file), 0o700); err != nil {
		return fmt.Errorf("saving %s state: %w", p.name, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p.file), ".state-*.tmp")
	if err != nil {
		return fmt.Errorf("saving %s state: %w", p.name, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing left to remove
	w := bufio.NewWriter(tmp)
	err = p.save(w, now)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p.file)
	}
	if err != nil {
		return fmt.Errorf("saving %s state: %w", p.name, err)
	}
	return nil
}

// saveAll stores every part, logging and returning the failures.
func saveAll(parts []persisted, now time.Time, log *slog.Logger) error {
	var errs []error
	for _, p := range parts {
		if err := p.store(now); err != nil {
			log.Error(p.name+" state not saved", "err", err.Error())
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// saveEvery saves the state every interval until ctx ends.
func saveEvery(ctx context.Context, parts []persisted, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			_ = saveAll(parts, now, log)
		}
	}
}
