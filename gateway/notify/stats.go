package notify

// Stats are a Notifier's counters.
type Stats struct {
	// Handled counts notifications from other gateways that were checked
	// and acted on (counted once the handler has returned).
	Handled uint64
	// Refused counts notifications dropped: unsigned, wrongly signed,
	// stale, replayed or not notifications at all.
	Refused uint64
	// Nonces is how many nonces are remembered now to refuse replays. It
	// is bounded by the notifications of the last two minutes; one that
	// grows with every notification is a map nobody prunes.
	Nonces int
}

// Stats returns the Notifier's counters.
func (n *Notifier) Stats() Stats {
	n.mu.Lock()
	nonces := len(n.seen)
	n.mu.Unlock()
	return Stats{Handled: n.handled.Load(), Refused: n.refused.Load(), Nonces: nonces}
}
