package event

// Subscribers counts the functions subscribed to b now. A gateway
// subscribes once; a number that grows with reloads or requests is a
// subscription nobody cancels.
func (b *Bus) Subscribers() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.subs)
}
