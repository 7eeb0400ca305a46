package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
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

// StoreOptions configures a Store with the settings of tyk.conf that
// decide where Tyk stores and looks for a key.
type StoreOptions struct {
	// HashKeys stores sessions under the key's hash (tyk.conf hash_keys),
	// so a copy of Redis does not hand out usable keys. The function is
	// the one the key's token names, murmur32 for other keys (see Hash).
	HashKeys bool
	// HashFunction is tyk.conf hash_key_function: the function new keys
	// name in their token (see GenerateKey); "" makes legacy keys,
	// org id + key id. A token keeps its function when this changes.
	HashFunction string
	// HashFunctionFallback is tyk.conf hash_key_function_fallback: the
	// functions HashFunction was before, under which a custom key may
	// still be stored (see Candidates).
	HashFunctionFallback []string
	// DisableKeyActionsByUsername is tyk.conf
	// disable_key_actions_by_username: a key is then looked for only as
	// given, never as the token a custom key was stored under.
	DisableKeyActionsByUsername bool
	// MinTokenLength is tyk.conf min_token_length; Find treats a shorter
	// key as unknown without asking Redis. 0 means Tyk's default, 3.
	MinTokenLength int
}

// Validate reports the first setting Tyk's hashing cannot use, naming it.
func (o StoreOptions) Validate() error {
	if err := ValidHashFunction(o.HashFunction); err != nil {
		return err
	}
	for i, name := range o.HashFunctionFallback {
		if err := ValidHashFunction(name); err != nil {
			return fmt.Errorf("hash_key_function_fallback[%d]: %w", i, err)
		}
	}
	return nil
}

// MinTokenLength is the shortest key Tyk accepts, given tyk.conf's
// min_token_length: that value, or 3 when it is 0. Tyk applies it when a
// key is presented and when the control API creates a custom key.
func MinTokenLength(configured int) int {
	if configured == 0 {
		return 3
	}
	return configured
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
// its Hash when hash_keys is on, the key itself otherwise. It does not
// depend on HashFunction: a token names its own function.
func (s *Store) ID(key string) string {
	if s.opts.HashKeys {
		return Hash(key)
	}
	return key
}

// GenerateKey makes a key for orgID as Tyk's control API does
// (gateway.generateToken): an orgID prefix of keyID is dropped, and the
// token names HashFunction (see GenerateToken). An empty keyID gets a
// random one.
func (s *Store) GenerateKey(orgID, keyID string) (string, error) {
	return GenerateToken(orgID, strings.TrimPrefix(keyID, orgID), s.opts.HashFunction)
}

// Candidates lists, in Tyk's order, the ids under which Tyk looks for the
// session of key when it is presented to an API of orgID
// (DefaultSessionManager.SessionDetail): a key of another org, or a custom
// key the client sends without its token, may be stored as the token
// GenerateKey makes of it, under HashFunction and then each fallback.
//
//   - key belongs to orgID (TokenOrg): ID(key) only;
//   - otherwise: ID(GenerateKey(orgID, key)), ID(key), then
//     ID(token of key under each HashFunctionFallback);
//     DisableKeyActionsByUsername leaves out all but ID(key).
//
// Duplicates are listed once. A key equal to orgID has no custom-key
// token (Tyk would try a random one).
func (s *Store) Candidates(orgID, key string) []string {
	ids, _ := s.candidates(orgID, key)
	return ids
}

// candidates is Candidates with, beside each id, the key it is the ID of:
// the name Tyk's SessionDetail reports as the session's KeyID.
func (s *Store) candidates(orgID, key string) (ids, keys []string) {
	if TokenOrg(key) == orgID {
		return []string{s.ID(key)}, []string{key}
	}
	ids = make([]string, 0, 2+len(s.opts.HashFunctionFallback))
	keys = make([]string, 0, cap(ids))
	add := func(candidate string) {
		if id := s.ID(candidate); !slices.Contains(ids, id) {
			ids, keys = append(ids, id), append(keys, candidate)
		}
	}
	addToken := func(function string) {
		keyID := strings.TrimPrefix(key, orgID)
		if s.opts.DisableKeyActionsByUsername || keyID == "" {
			return
		}
		// An unknown function is refused by Validate; Tyk would make a
		// murmur64 token of it, and so does GenerateToken.
		token, _ := GenerateToken(orgID, keyID, function)
		add(token)
	}
	addToken(s.opts.HashFunction)
	add(key)
	for _, function := range s.opts.HashFunctionFallback {
		addToken(function)
	}
	return ids, keys
}

// Find loads the session of key presented to an API of orgID, trying the
// ids of Candidates in order, as Tyk does when it authenticates a key. It
// returns the session and the id it is stored under, which is the name
// Tyk's rate limits and quotas use for the key with hash_keys. A key shorter
// than MinTokenLength, or one stored under none of the ids, gives
// ErrNotFound.
func (s *Store) Find(ctx context.Context, orgID, key string) (*State, string, error) {
	if len(key) < MinTokenLength(s.opts.MinTokenLength) {
		return nil, "", ErrNotFound
	}
	st, found, err := s.Locate(ctx, orgID, key)
	return st, found.ID, err
}

// Found names where a session was found: Key is the key as Tyk stores it
// (a custom key's token, say, when it was asked for by its bare name) and
// ID is its ID, the name of the Redis key.
type Found struct {
	Key, ID string
}

// Locate finds the session of key for orgID as the control API does (Tyk's
// SessionDetail): under the ids of Candidates, in order, whatever the key's
// length. It reports the key the session is stored as, which the control
// API answers and acts on: a custom key named by its bare name is its
// token.
func (s *Store) Locate(ctx context.Context, orgID, key string) (*State, Found, error) {
	ids, keys := s.candidates(orgID, key)
	cmds := make([]*redis.StringCmd, len(ids))
	if len(ids) == 1 {
		cmds[0] = s.client.Get(ctx, RedisKey(ids[0]))
	} else {
		// One GET per id rather than Tyk's MGET: the ids are in different
		// slots of a Redis Cluster. A pipeline still takes one round trip
		// per node. Errors are read per command below.
		_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range ids {
				cmds[i] = p.Get(ctx, RedisKey(id))
			}
			return nil
		})
	}
	for i, cmd := range cmds {
		data, err := cmd.Bytes()
		switch {
		case errors.Is(err, redis.Nil) || err == nil && len(data) == 0:
			// Tyk reads an empty value as absent too.
			continue
		case err != nil:
			// An earlier id might hold the key: not knowing is not "not found".
			return nil, Found{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		st, err := decodeState(data, ids[i])
		if err != nil {
			return nil, Found{}, err
		}
		return st, Found{Key: keys[i], ID: ids[i]}, nil
	}
	return nil, Found{}, ErrNotFound
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
	return decodeState(data, id)
}

func decodeState(data []byte, id string) (*State, error) {
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

// maxUpdateTries bounds how often Update retries when another writer
// changed the session between its read and its write.
const maxUpdateTries = 16

// ErrConflict is returned by Update when other writers kept changing the
// session through every try.
var ErrConflict = errors.New("session changed by others on every try")

// Update changes the stored session of id atomically: it reads it under
// WATCH, lets change edit it, and writes it back only if nobody wrote it in
// between, trying again when somebody did. change reports whether it
// changed anything; nothing is written when it did not. A session that is
// not stored (deleted meanwhile) is not created: ErrNotFound. The session
// keeps the TTL it had. It returns the session as stored.
func (s *Store) Update(ctx context.Context, id string, change func(*State) bool) (*State, error) {
	key := RedisKey(id)
	var out *State
	for range maxUpdateTries {
		err := s.client.Watch(ctx, func(tx *redis.Tx) error {
			data, err := tx.Get(ctx, key).Bytes()
			if errors.Is(err, redis.Nil) {
				return ErrNotFound
			}
			if err != nil {
				return fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
			st, err := decodeState(data, id)
			if err != nil {
				return err
			}
			out = st
			if !change(st) {
				return nil
			}
			data, err = json.Marshal(st)
			if err != nil {
				return fmt.Errorf("encoding session: %w", err)
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, key, data, redis.KeepTTL)
				return nil
			})
			return err
		}, key)
		switch {
		case errors.Is(err, redis.TxFailedErr):
			continue
		case err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrUnavailable):
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		case err != nil:
			return nil, err
		}
		return out, nil
	}
	return nil, ErrConflict
}

// List returns the ids of the stored sessions, at most max, scanning every
// master of a cluster. With prefixes, only the ids starting with one of
// them, each listed once.
func (s *Store) List(ctx context.Context, max int, prefixes ...string) ([]string, error) {
	var (
		mu   sync.Mutex
		ids  []string
		seen = map[string]bool{}
	)
	patterns := []string{KeyPrefix + "*"}
	if len(prefixes) > 0 {
		patterns = patterns[:0]
		for _, p := range prefixes {
			patterns = append(patterns, KeyPrefix+globEscaper.Replace(p)+"*")
		}
	}
	scan := func(ctx context.Context, c redis.Cmdable) error {
		for _, pattern := range patterns {
			iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
			for iter.Next(ctx) {
				id := strings.TrimPrefix(iter.Val(), KeyPrefix)
				mu.Lock()
				if len(ids) < max && !seen[id] {
					seen[id] = true
					ids = append(ids, id)
				}
				mu.Unlock()
			}
			if err := iter.Err(); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	if cc, ok := s.client.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error { return scan(ctx, node) })
	} else {
		err = scan(ctx, s.client)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	slices.Sort(ids)
	if ids == nil {
		ids = []string{}
	}
	return ids, nil
}

// globEscaper makes a string match itself in a SCAN pattern.
var globEscaper = strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`, "]", `\]`)

// loadBatch bounds the GETs LoadEach sends in one pipeline.
const loadBatch = 500

// LoadEach reads the sessions of ids, pipelined, and returns those that
// are stored, by id; an id whose session is gone or unreadable is left out.
func (s *Store) LoadEach(ctx context.Context, ids []string) (map[string]*State, error) {
	out := make(map[string]*State, len(ids))
	for start := 0; start < len(ids); start += loadBatch {
		batch := ids[start:min(start+loadBatch, len(ids))]
		cmds := make([]*redis.StringCmd, len(batch))
		_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range batch {
				cmds[i] = p.Get(ctx, RedisKey(id))
			}
			return nil
		})
		for i, cmd := range cmds {
			data, err := cmd.Bytes()
			switch {
			case errors.Is(err, redis.Nil):
				continue
			case err != nil:
				return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
			if st, err := decodeState(data, batch[i]); err == nil {
				out[batch[i]] = st
			}
		}
	}
	return out, nil
}
