package state

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/breakwater/breakwater/internal/redisconn"
)

// Keys of the shared ban list: a sorted set of ban keys scored by the end
// of the ban (unix milliseconds) and a hash of their reasons. One hash tag,
// so that both are in one slot of a cluster.
const (
	bansKey       = "{bw:bans}"
	banReasonsKey = "{bw:bans}:reasons"
)

// DefaultBanSync is how often RedisBans reads the shared ban list: a ban
// decided by one instance is in force on the others within this time.
const DefaultBanSync = 2 * time.Second

// RedisBans shares bans between gateway instances through Redis while
// deciding every request from memory: a ban is recorded in the local store
// at once and written to Redis; Sync (run by Run) reads the shared list and
// brings the local store in line with it, so a ban or a lift on one
// instance is in force on every other within DefaultBanSync. When Redis is
// unavailable each instance keeps its own bans.
type RedisBans struct {
	conn  *redisconn.Conn
	local *MemoryBans
	now   func() time.Time
	log   *slog.Logger
	// shared are the keys the last Sync found in Redis (used by Sync only):
	// one of them missing from the next read was lifted elsewhere. A ban
	// that never reached Redis is not in it, so it is not lifted by a Sync.
	shared map[string]bool
}

// NewRedisBans shares local through conn.
func NewRedisBans(conn *redisconn.Conn, local *MemoryBans, now func() time.Time, log *slog.Logger) *RedisBans {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &RedisBans{conn: conn, local: local, now: now, log: log}
}

var _ Bans = (*RedisBans)(nil)

// Local returns the in-memory store requests are decided from.
func (b *RedisBans) Local() *MemoryBans { return b.local }

// Ban implements Bans: in force here at once, shared through Redis.
func (b *RedisBans) Ban(ctx context.Context, ban Ban) (bool, error) {
	isNew, err := b.local.Ban(ctx, ban)
	if err != nil {
		return false, err
	}
	err = b.conn.Do(ctx, func(ctx context.Context, cl rueidis.Client) error {
		until := strconv.FormatInt(ban.Until.UnixMilli(), 10)
		for _, r := range cl.DoMulti(ctx,
			cl.B().Zadd().Key(bansKey).Gt().ScoreMember().ScoreMember(float64(ban.Until.UnixMilli()), ban.Key).Build(),
			cl.B().Hset().Key(banReasonsKey).FieldValue().FieldValue(ban.Key, until+" "+ban.Reason).Build(),
		) {
			if err := r.Error(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.log.Warn("ban not shared; in force on this instance only", "key", ban.Key, "err", err.Error())
	}
	return isNew, nil
}

// Banned implements Bans from memory.
func (b *RedisBans) Banned(ctx context.Context, key string) (bool, error) {
	return b.local.Banned(ctx, key)
}

// List implements Bans from memory.
func (b *RedisBans) List(ctx context.Context, limit int) ([]Ban, int, error) {
	return b.local.List(ctx, limit)
}

// Lift implements Bans: lifted here and in the shared list.
func (b *RedisBans) Lift(ctx context.Context, key string) (bool, error) {
	lifted, err := b.local.Lift(ctx, key)
	if err != nil {
		return false, err
	}
	err = b.conn.Do(ctx, func(ctx context.Context, cl rueidis.Client) error {
		for _, r := range cl.DoMulti(ctx,
			cl.B().Zrem().Key(bansKey).Member(key).Build(),
			cl.B().Hdel().Key(banReasonsKey).Field(key).Build(),
		) {
			if err := r.Error(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return lifted, fmt.Errorf("lift shared ban: %w: %w", ErrUnavailable, err)
	}
	return lifted, nil
}

// maxSharedBans bounds what one Sync reads.
const maxSharedBans = 100_000

// Sync brings the local store in line with the shared list: expired bans
// leave Redis, bans of other instances are added, and local bans lifted
// elsewhere are lifted here.
func (b *RedisBans) Sync(ctx context.Context) error {
	now := b.now().UnixMilli()
	var members []rueidis.ZScore
	var reasons map[string]string
	err := b.conn.Do(ctx, func(ctx context.Context, cl rueidis.Client) error {
		rs := cl.DoMulti(ctx,
			cl.B().Zremrangebyscore().Key(bansKey).Min("-inf").Max(strconv.FormatInt(now, 10)).Build(),
			cl.B().Zrange().Key(bansKey).Min("0").Max(strconv.Itoa(maxSharedBans-1)).Withscores().Build(),
			cl.B().Hgetall().Key(banReasonsKey).Build(),
		)
		var err error
		if err = rs[0].Error(); err != nil {
			return err
		}
		if members, err = rs[1].AsZScores(); err != nil {
			return err
		}
		reasons, err = rs[2].AsStrMap()
		return err
	})
	if err != nil {
		return fmt.Errorf("sync bans: %w: %w", ErrUnavailable, err)
	}
	shared := make(map[string]bool, len(members))
	for _, m := range members {
		shared[m.Member] = true
		reason := reasons[m.Member]
		if _, r, ok := strings.Cut(reason, " "); ok {
			reason = r
		}
		if _, err := b.local.Ban(ctx, Ban{Key: m.Member, Reason: reason, Until: time.UnixMilli(int64(m.Score))}); err != nil {
			return err
		}
	}
	for k := range b.shared {
		if !shared[k] && len(members) < maxSharedBans {
			if _, err := b.local.Lift(ctx, k); err != nil {
				return err
			}
		}
	}
	b.shared = shared
	// Reasons of bans that expired.
	var stale []string
	for k := range reasons {
		if !shared[k] {
			stale = append(stale, k)
		}
	}
	if len(stale) > 0 {
		_ = b.conn.Do(ctx, func(ctx context.Context, cl rueidis.Client) error {
			return cl.Do(ctx, cl.B().Hdel().Key(banReasonsKey).Field(stale...).Build()).Error()
		})
	}
	return nil
}

// Run syncs every interval until ctx ends.
func (b *RedisBans) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultBanSync
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := b.Sync(ctx); err != nil && ctx.Err() == nil {
				b.log.Debug("bans not synced", "err", err.Error())
			}
		}
	}
}
