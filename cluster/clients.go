package cluster

// Clients counts the client connections the node has open now: every
// client of every program connected to it. A killed node has none.
// miniredis does not answer CLIENT LIST, so this is how a spec on the
// simulated cluster sees connections a gateway keeps open.
func (n *Node) Clients() int {
	n.c.admin.Lock()
	defer n.c.admin.Unlock()
	if n.c.closed || !n.Up() {
		return 0
	}
	return n.m.CurrentConnectionCount()
}

// Subscribers counts the connections subscribed to channel on the node
// (PUBSUB NUMSUB), read without a connection of its own. A killed node has
// none.
func (n *Node) Subscribers(channel string) int {
	n.c.admin.Lock()
	defer n.c.admin.Unlock()
	if n.c.closed || !n.Up() {
		return 0
	}
	return n.m.PubSubNumSub(channel)[channel]
}

// Keys counts the keys the node stores, read without a connection of its
// own. A killed node keeps its keys.
func (n *Node) Keys() int {
	return len(n.m.Keys())
}
