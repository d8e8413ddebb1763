package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/breakwater/breakwater/internal/ratelimit"
)

// stateSaveInterval is how often the embedded rate-limit state is written
// to the data directory (and once more at shutdown): a crash loses at most
// this much of the quotas' consumption.
const stateSaveInterval = 30 * time.Second

// limiterFile is where the embedded rate-limit state is kept.
func limiterFile(dataDir string) string {
	return filepath.Join(dataDir, "state", "ratelimit.snap")
}

// restoreLimiter loads the state saved by a previous run, so a restart does
// not reset a daily quota. A missing file is a first start; an unreadable or
// corrupt one is moved aside (…snap.bad) and the gateway starts with empty
// state rather than not at all.
func restoreLimiter(m *ratelimit.Memory, dataDir string, now time.Time, log *slog.Logger) {
	path := limiterFile(dataDir)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err == nil {
		err = m.Restore(bufio.NewReader(f), now)
		f.Close()
	}
	if err != nil {
		log.Warn("rate limit state not restored; starting with empty counters", "file", path, "err", err.Error())
		_ = os.Rename(path, path+".bad")
		return
	}
	log.Info("rate limit state restored", "file", path, "keys", m.Len())
}

// saveLimiter writes the state atomically: a temporary file, synced, then
// renamed over the previous one.
func saveLimiter(m *ratelimit.Memory, dataDir string, now time.Time) error {
	path := limiterFile(dataDir)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("saving rate limit state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ratelimit-*.tmp")
	if err != nil {
		return fmt.Errorf("saving rate limit state: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing left to remove
	w := bufio.NewWriter(tmp)
	err = m.Snapshot(w, now)
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
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("saving rate limit state: %w", err)
	}
	return nil
}

// saveLimiterEvery saves the state every interval until ctx ends.
func saveLimiterEvery(ctx context.Context, m *ratelimit.Memory, dataDir string, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if err := saveLimiter(m, dataDir, now); err != nil {
				log.Error("rate limit state not saved", "err", err.Error())
			}
		}
	}
}
