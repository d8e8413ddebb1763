package tokens

import (
	"context"
	"crypto/sha1" //nolint:gosec // a version tag compared with Redis's redis.sha1hex, not a security boundary
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/redis/rueidis"

	"github.com/breakwater/breakwater/internal/redisconn"
)

// KeyStore keeps the JSON form of a KeyRing (the content of KeyFileName)
// where every gateway instance reads it, with optimistic concurrency: Save
// succeeds only if nothing was saved since the Load that returned version.
// Implementations must be safe for concurrent use, bound what they read
// and bound every call in time.
type KeyStore interface {
	// Load returns the stored content and an opaque version of it. An
	// empty version (and nil data) means nothing is stored.
	Load(ctx context.Context) (data []byte, version string, err error)
	// Save stores data if the stored version is still version ("": if
	// nothing is stored). It returns an error wrapping ErrKeyStoreConflict
	// if another writer came first; the ring then loads, merges and tries
	// again.
	Save(ctx context.Context, data []byte, version string) error
}

// ErrKeyStoreConflict is wrapped by KeyStore.Save when the stored content
// changed since it was loaded.
var ErrKeyStoreConflict = errors.New("signing keys changed in the store since they were loaded")

// RedisKeyPrefix is the prefix of the Redis keys of NewRedisKeyStore.
const RedisKeyPrefix = "bw:keys:"

// RedisKeyStore is a KeyStore in one Redis string, "bw:keys:" + name,
// holding the same JSON as the key file. Save is a Lua compare-and-set on
// the SHA-1 of the stored content (its version), so two instances that
// rotate at the same moment do not overwrite each other: the second one
// gets ErrKeyStoreConflict, merges the first one's keys and saves again.
//
// The blob holds the private keys in clear, as the key file does: Redis
// must be trusted like the data directory. Require authentication (an ACL
// user that only the gateways use), use TLS (rediss://) for any Redis not
// on loopback, keep its persistence files (RDB/AOF) and backups readable
// only by the operators, and use maxmemory-policy noeviction or volatile-*
// (the key has no TTL, so those never evict it; allkeys-* could, and the
// instances would then re-seed it with their own copies). Anyone who can
// read the key can sign tokens the gateway accepts; anyone who can write
// it can add a signing key.
type RedisKeyStore struct {
	conn *redisconn.Conn
	key  string
	cas  *rueidis.Lua
}

var _ KeyStore = (*RedisKeyStore)(nil)

// NewRedisKeyStore returns the store of the ring called name ("access" for
// the access token keys, "identity" for X-Gateway-Identity) in Redis
// through conn, which it does not close. Instances share a ring by using
// the same Redis and name.
func NewRedisKeyStore(conn *redisconn.Conn, name string) *RedisKeyStore {
	return &RedisKeyStore{conn: conn, key: RedisKeyPrefix + name, cas: rueidis.NewLuaScript(casScript)}
}

// casScript sets KEYS[1] to ARGV[1] if its content's SHA-1 is ARGV[2], or
// if it does not exist (or is empty) and ARGV[2] is "". It returns 1 when
// it set the key, 0 on a conflict.
const casScript = `
local cur = redis.call('GET', KEYS[1])
local ok
if cur == false or cur == '' then
  ok = ARGV[2] == ''
else
  ok = redis.sha1hex(cur) == ARGV[2]
end
if not ok then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1`

// Load implements KeyStore with GETRANGE, so that at most maxKeyFileSize+1
// bytes are read whatever the key holds; a larger value is an error.
func (s *RedisKeyStore) Load(ctx context.Context) ([]byte, string, error) {
	var data []byte
	err := s.conn.Do(ctx, func(ctx context.Context, cl rueidis.Client) error {
		var err error
		data, err = cl.Do(ctx, cl.B().Getrange().Key(s.key).Start(0).End(maxKeyFileSize).Build()).AsBytes()
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("loading signing keys from redis %s: %w", s.key, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, "", fmt.Errorf("signing keys in redis %s are larger than %d bytes", s.key, maxKeyFileSize)
	}
	if len(data) == 0 {
		return nil, "", nil
	}
	return data, version(data), nil
}

// Save implements KeyStore.
func (s *RedisKeyStore) Save(ctx context.Context, data []byte, ver string) error {
	if len(data) == 0 || len(data) > maxKeyFileSize {
		return fmt.Errorf("saving signing keys to redis %s: %d bytes, want 1 to %d", s.key, len(data), maxKeyFileSize)
	}
	var set int64
	err := s.conn.Do(ctx, func(ctx context.Context, cl rueidis.Client) error {
		var err error
		set, err = s.cas.Exec(ctx, cl, []string{s.key}, []string{string(data), ver}).AsInt64()
		return err
	})
	if err != nil {
		return fmt.Errorf("saving signing keys to redis %s: %w", s.key, err)
	}
	if set != 1 {
		return fmt.Errorf("saving signing keys to redis %s: %w", s.key, ErrKeyStoreConflict)
	}
	return nil
}

// version is the hex SHA-1 of data, as redis.sha1hex computes it.
func version(data []byte) string {
	sum := sha1.Sum(data) //nolint:gosec // see the import
	return hex.EncodeToString(sum[:])
}
