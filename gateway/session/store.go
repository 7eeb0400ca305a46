package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// KeyPrefix is the Redis prefix of sessions, as in Tyk.
const KeyPrefix = "apikey-"

// ErrNotFound is returned by Load for a key that has no session.
var ErrNotFound = errors.New("session not found")

// ErrUnavailable wraps a failure to reach Redis, so callers can answer 503
// rather than treat the key as unknown.
var ErrUnavailable = errors.New("session store unavailable")

// StoreOptions configures a Store.
type StoreOptions struct {
	// HashKeys stores sessions under the key's hash (tyk.conf hash_keys),
	// so a copy of Redis does not hand out usable keys. The function is
	// the one the key's token names, murmur32 for other keys (see Hash).
	HashKeys bool
}

// Store reads and writes sessions in Redis. It is safe for concurrent use.
type Store struct {
	client redis.UniversalClient
	opts   StoreOptions
}

// NewStore returns a Store over client.
func NewStore(client redis.UniversalClient, opts StoreOptions) *Store {
	return &Store{client: client, opts: opts}
}

// ID is how key is named in Redis and in logs (Tyk's storage.HashKey):
// its Hash when hash_keys is on, the key itself otherwise.
func (s *Store) ID(key string) string {
	if s.opts.HashKeys {
		return Hash(key)
	}
	return key
}

// RedisKey is the Redis key holding the session of the key whose ID is id.
func RedisKey(id string) string {
	return KeyPrefix + id
}

// Load reads the session of the key whose ID (see ID) is id.
func (s *Store) Load(ctx context.Context, id string) (*State, error) {
	data, err := s.client.Get(ctx, RedisKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("decoding session %s: %w", Hash(id), err)
	}
	return &st, nil
}

// Save writes the session of the key whose ID is id. lifetime > 0 makes
// Redis drop it after that long; 0 keeps it until deleted.
func (s *Store) Save(ctx context.Context, id string, st *State, lifetime time.Duration) error {
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encoding session: %w", err)
	}
	return s.SaveJSON(ctx, id, data, lifetime)
}

// SaveJSON writes a session already encoded as JSON.
func (s *Store) SaveJSON(ctx context.Context, id string, data []byte, lifetime time.Duration) error {
	if err := s.client.Set(ctx, RedisKey(id), data, lifetime).Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// Delete removes the session of the key whose ID is id; deleting a
// missing key is not an error and reports false.
func (s *Store) Delete(ctx context.Context, id string) (bool, error) {
	n, err := s.client.Del(ctx, RedisKey(id)).Result()
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return n > 0, nil
}
