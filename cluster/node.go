package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"
)

// loadingError is what a node answers between listening again after Restart
// and knowing the topology; go-redis retries it like a real Redis that is
// still loading its data.
const loadingError = "LOADING Redis is loading the dataset in memory"

// Node is one master of a Cluster: a miniredis server plus its identity in
// the topology. A killed node keeps its data, its port and its slots.
type Node struct {
	c    *Cluster
	id   string
	addr string
	ip   string
	port int
	m    *miniredis.Miniredis

	up    bool   // guarded by c.mu
	epoch uint64 // config epoch; guarded by c.mu

	// internal holds the connections whose current command the node is
	// executing itself after routing it, so that the hook lets it through.
	internal sync.Map // *server.Peer -> struct{}

	// clockMu orders the changes of the node's clock: ticks, the
	// freshening before TTL commands, and SetTime, which pins it.
	clockMu     sync.Mutex
	clockAt     time.Time
	clockPinned bool

	// txs tracks, per connection inside MULTI, the slot its queued commands
	// touch, to refuse an EXEC across slots as Redis Cluster does.
	txMu sync.Mutex
	txs  map[*server.Peer]*txSlots
	// hang, while set, is what every command waits on before it is
	// answered (see Hang).
	hang atomic.Pointer[chan struct{}]
}

// Hang makes the node stop answering while it keeps its connections and
// accepts new ones, as a Redis process stopped with SIGSTOP does: every
// command waits until Resume. Kill and the cluster's Close resume it
// first. Hanging a hung node does nothing.
func (n *Node) Hang() {
	ch := make(chan struct{})
	n.hang.CompareAndSwap(nil, &ch)
}

// Resume answers the commands a hung node held, and those after them.
func (n *Node) Resume() {
	if ch := n.hang.Swap(nil); ch != nil {
		close(*ch)
	}
}

// waitWhileHung holds a command while the node is hung.
func (n *Node) waitWhileHung() {
	if ch := n.hang.Load(); ch != nil {
		<-*ch
	}
}

func startNode(c *Cluster) (*Node, error) {
	var raw [20]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, fmt.Errorf("making node id: %w", err)
	}
	n := &Node{
		c:   c,
		id:  hex.EncodeToString(raw[:]),
		m:   miniredis.NewMiniRedis(),
		txs: map[*server.Peer]*txSlots{},
	}
	// TTLs elapse with the clock, as in a real Redis, so that a long-running
	// cluster expires keys without anyone calling FastForward. The cluster
	// moves the clock (see startClock).
	n.m.ClockTTL(true)
	// No client knows the address before Start returns, so the node may
	// listen before serve installs the routing hook.
	if err := n.m.Start(); err != nil {
		return nil, err
	}
	n.ip, n.addr = n.m.Host(), n.m.Addr()
	n.port, _ = strconv.Atoi(n.m.Port())
	n.up = true
	return n, nil
}

// serve installs the routing hook on the node's current server.
func (n *Node) serve() {
	srv := n.m.Server()
	srv.SetPreHook(n.hook(srv))
}

// ID returns the node's 40-hex-character cluster id, as in CLUSTER NODES. It
// stays the same across Kill and Restart.
func (n *Node) ID() string { return n.id }

// Addr returns the node's "127.0.0.1:port", the address MOVED redirects to.
func (n *Node) Addr() string { return n.addr }

// Miniredis gives direct access to the node's data for assertions (Get, TTL,
// Keys, ...). Writing through it bypasses slot ownership.
func (n *Node) Miniredis() *miniredis.Miniredis { return n.m }

// Up reports whether the node is running (not killed, cluster not closed).
func (n *Node) Up() bool {
	n.c.mu.RLock()
	defer n.c.mu.RUnlock()
	return n.up
}

// Slots returns the slot ranges the node owns, inclusive, in slot order.
func (n *Node) Slots() [][2]int {
	n.c.mu.RLock()
	defer n.c.mu.RUnlock()
	var slots [][2]int
	for _, r := range n.c.ranges {
		if r.node == n {
			slots = append(slots, [2]int{r.start, r.end})
		}
	}
	return slots
}

// Kill stops the node as if its process died: it stops listening and drops
// its connections, keeping its data and its slots. The other nodes then
// answer commands on its slots with "CLUSTERDOWN Hash slot not served" (or
// "CLUSTERDOWN The cluster is down", see RequireFullCoverage). Killing a
// killed node does nothing.
func (n *Node) Kill() {
	c := n.c
	c.admin.Lock()
	defer c.admin.Unlock()
	if c.closed || !n.Up() {
		return
	}
	// Close waits for the connections' goroutines, and those may be in the
	// hook waiting for c.mu: release nothing they need while it waits.
	n.Resume()
	n.m.Close()
	c.mu.Lock()
	n.up = false
	c.topologyChanged()
	c.mu.Unlock()
}

// Restart brings a killed node back on the same port with the data it had.
// Restarting a running node does nothing.
func (n *Node) Restart() error {
	c := n.c
	c.admin.Lock()
	defer c.admin.Unlock()
	if c.closed {
		return fmt.Errorf("restarting node %s: %w", n.addr, ErrClosed)
	}
	if n.Up() {
		return nil
	}
	// miniredis cancels its context on Close and blocking commands give up
	// at once on a cancelled one; the restarted server needs a fresh one.
	n.m.Lock()
	n.m.Ctx, n.m.CtxCancel = context.WithCancel(context.Background())
	n.m.Unlock()
	// Restart re-applies only the hook SetError leaves behind, so a client
	// that connects before serve installs the routing hook gets LOADING
	// (which clients retry) rather than an unrouted answer.
	n.m.SetError(loadingError)
	if err := n.m.Restart(); err != nil {
		n.m.SetError("")
		return fmt.Errorf("restarting node %s: %w", n.addr, err)
	}
	c.mu.Lock()
	n.up = true
	c.topologyChanged()
	c.mu.Unlock()
	n.serve()
	return nil
}

// advanceClock moves the node's clock to now, unless it is pinned or
// already within step of now. The clock never moves backwards.
func (n *Node) advanceClock(now time.Time, step time.Duration) {
	n.clockMu.Lock()
	defer n.clockMu.Unlock()
	if n.clockPinned || now.Sub(n.clockAt) <= step {
		return
	}
	n.clockAt = now
	n.m.SetTime(now)
}

// pinClock sets the node's clock to t and keeps it there: ticks and TTL
// commands no longer move it.
func (n *Node) pinClock(t time.Time) {
	n.clockMu.Lock()
	defer n.clockMu.Unlock()
	n.clockPinned, n.clockAt = true, t
	n.m.SetTime(t)
}
