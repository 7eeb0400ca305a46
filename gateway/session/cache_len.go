package session

// Len counts the entries the cache holds now, fresh or not yet noticed to
// be stale.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
