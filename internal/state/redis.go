package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/breakwater/breakwater/internal/redisconn"
)

// ErrUnavailable wraps every error of Redis that comes from Redis: the
// breaker is open, Redis did not answer within the command timeout, or it
// answered with an error. The gateway applies store.on_unavailable to it.
var ErrUnavailable = errors.New("state store unavailable")

// Redis keeps nonces and revocations in Redis, shared by every gateway
// instance. It is safe for concurrent use.
//
// Keys are "bw:nonce:" and "bw:revoked:" followed by the hex SHA-256 of the
// nonce key or token id: a fixed size whatever the client sent, and no
// client byte (a '{') can choose the hash slot. They carry no hash tag
// since each operation touches one key, so in a Redis Cluster they spread
// over every slot. Every key has a TTL (Redis forgets it by itself), so
// Redis needs no bound of its own beyond its maxmemory; with an eviction
// policy other than noeviction or volatile-*, Redis could forget a nonce
// or revocation early, so use noeviction (writes then fail, and fail
// closed) for a Redis that holds this state.
type Redis struct {
	conn   *redisconn.Conn
	now    func() time.Time
	revoke *rueidis.Lua
}

// NewRedis returns a store that keeps its state in Redis through conn,
// which it does not close. now is the clock for revocation lifetimes
// (nil: time.Now).
func NewRedis(conn *redisconn.Conn, now func() time.Time) *Redis {
	if now == nil {
		now = time.Now
	}
	return &Redis{conn: conn, now: now, revoke: rueidis.NewLuaScript(revokeScript)}
}

var (
	_ Nonces      = (*Redis)(nil)
	_ Revocations = (*Redis)(nil)
)

// revokeScript sets KEYS[1] with a TTL of ARGV[1] ms unless it already
// lives longer: a revocation is never shortened.
const revokeScript = `
local t = redis.call('PTTL', KEYS[1])
if t == -1 or t >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
return 1`

const (
	noncePrefix   = "bw:nonce:"
	revokedPrefix = "bw:revoked:"
)

func digestKey(prefix, s string) string {
	sum := sha256.Sum256([]byte(s))
	var buf [len(revokedPrefix) + 2*sha256.Size]byte
	b := append(buf[:0], prefix...)
	b = hex.AppendEncode(b, sum[:])
	return string(b)
}

// ms rounds d up to whole milliseconds, at least 1.
func ms(d time.Duration) int64 {
	if d <= time.Millisecond {
		return 1
	}
	return int64((d-1)/time.Millisecond) + 1
}

// Claim implements Nonces with SET NX PX: true for the first claim of key
// until ttl has passed (at least 1 ms), false for a replay.
func (s *Redis) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	k := digestKey(noncePrefix, key)
	var fresh bool
	err := s.conn.Do(ctx, func(ctx context.Context, cl rueidis.Client) error {
		err := cl.Do(ctx, cl.B().Set().Key(k).Value("1").Nx().PxMilliseconds(ms(ttl)).Build()).Error()
		switch {
		case err == nil:
			fresh = true
			return nil
		case rueidis.IsRedisNil(err): // NX: the key exists
			return nil
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("claim nonce: %w: %w", ErrUnavailable, err)
	}
	return fresh, nil
}

// Revoke implements Revocations: jti is revoked until until (by the
// store's clock), or longer if it already was.
func (s *Redis) Revoke(ctx context.Context, jti string, until time.Time) error {
	if jti == "" || len(jti) > maxJTI {
		return fmt.Errorf("revoke: token id of %d bytes; want 1 to %d", len(jti), maxJTI)
	}
	ttl := until.Sub(s.now())
	if ttl <= 0 {
		return nil // expired already: nothing to remember
	}
	k := digestKey(revokedPrefix, jti)
	err := s.conn.Do(ctx, func(ctx context.Context, cl rueidis.Client) error {
		return s.revoke.Exec(ctx, cl, []string{k}, []string{strconv.FormatInt(ms(ttl), 10)}).Error()
	})
	if err != nil {
		return fmt.Errorf("revoke: %w: %w", ErrUnavailable, err)
	}
	return nil
}

// Revoked implements Revocations. A token id longer than any that can be
// revoked is not, without asking Redis.
func (s *Redis) Revoked(ctx context.Context, jti string) (bool, error) {
	if jti == "" || len(jti) > maxJTI {
		return false, nil
	}
	k := digestKey(revokedPrefix, jti)
	var n int64
	err := s.conn.Do(ctx, func(ctx context.Context, cl rueidis.Client) error {
		var err error
		n, err = cl.Do(ctx, cl.B().Exists().Key(k).Build()).AsInt64()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("revocation check: %w: %w", ErrUnavailable, err)
	}
	return n > 0, nil
}
