package session

import (
	"sync"
	"time"
)

// Cache keeps recently used sessions in memory for a short time, so a
// busy key is not read from Redis on every request (tyk.conf
// local_session_cache). It starts no goroutine: entries expire when read,
// and the cache never holds more than its size bound. One Cache serves the
// whole gateway, across reloads.
type Cache struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[string]cacheEntry
}

type cacheEntry struct {
	state  *State
	stored []byte // the JSON this gateway last stored for the key, if it did
	// received is the JSON a script last handed to TykSetKeyData for the
	// key, when storing it needed no write beyond what stored holds.
	received string
	expires  time.Time
}

// NewCache returns a cache keeping entries for ttl, at most max of them.
// ttl <= 0 gives a cache that holds nothing.
func NewCache(ttl time.Duration, max int, now func() time.Time) *Cache {
	return &Cache{ttl: ttl, max: max, now: now, entries: map[string]cacheEntry{}}
}

// Get returns a copy of id's cached session, if still fresh.
func (c *Cache) Get(id string) (*State, bool) {
	if c.ttl <= 0 {
		return nil, false
	}
	c.mu.Lock()
	e, ok := c.entries[id]
	if ok && !c.now().Before(e.expires) {
		delete(c.entries, id)
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	return e.state.Clone(), true
}

// Put caches a copy of st under id.
func (c *Cache) Put(id string, st *State) {
	c.PutStored(id, st, nil)
}

// PutStored caches a copy of st under id together with the JSON this
// gateway just stored in Redis for it.
func (c *Cache) PutStored(id string, st *State, stored []byte) {
	if c.ttl <= 0 {
		return
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		c.evict(now)
	}
	c.entries[id] = cacheEntry{state: st.Clone(), stored: stored, expires: now.Add(c.ttl)}
}

// Stored is the JSON this gateway last stored for id, while its entry is
// fresh.
func (c *Cache) Stored(id string) ([]byte, bool) {
	if c.ttl <= 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok || e.stored == nil || !c.now().Before(e.expires) {
		return nil, false
	}
	return e.stored, true
}

// Forget drops id, so a deleted or changed key takes effect at once.
func (c *Cache) Forget(id string) {
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}

// evict drops expired entries; if the cache is still full it drops
// arbitrary ones until there is room (a cache miss only costs a Redis read).
func (c *Cache) evict(now time.Time) {
	for id, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, id)
		}
	}
	for id := range c.entries {
		if len(c.entries) < c.max {
			break
		}
		delete(c.entries, id)
	}
}

// Received is the session JSON last noted with NoteReceived for id, while
// its entry is fresh and unchanged since.
func (c *Cache) Received(id string) (string, bool) {
	if c.ttl <= 0 {
		return "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok || e.received == "" || !c.now().Before(e.expires) {
		return "", false
	}
	return e.received, true
}

// NoteReceived remembers the JSON from which id's current entry was
// stored, so the same JSON next time can be recognised without decoding.
func (c *Cache) NoteReceived(id, raw string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[id]; ok {
		e.received = raw
		c.entries[id] = e
	}
}
