package cluster

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// DefaultNodes is the number of nodes Start uses when asked for fewer than
// one: the smallest cluster redis-cli --cluster create accepts.
const DefaultNodes = 3

// Errors that callers may want to tell apart with errors.Is.
var (
	// ErrClosed is returned by operations on a cluster after Close.
	ErrClosed = errors.New("cluster closed")
	// ErrNodeDown is returned by MoveSlot when the source or target node is
	// killed: a real migration needs both ends alive.
	ErrNodeDown = errors.New("node is down")
	// ErrUnsupportedType is returned by MoveSlot for a key whose type it
	// cannot copy (streams, HyperLogLogs).
	ErrUnsupportedType = errors.New("unsupported key type")
)

type options struct {
	requireFullCoverage bool
}

// Option configures a cluster at Start.
type Option func(*options)

// RequireFullCoverage makes the cluster behave like one configured with
// `cluster-require-full-coverage yes`: while any slot's owner is down, every
// node refuses every keyed command with "CLUSTERDOWN The cluster is down".
// Without it the cluster behaves like `cluster-require-full-coverage no`, the
// usual choice for caches: only the dead node's slots are unavailable.
func RequireFullCoverage() Option {
	return func(o *options) { o.requireFullCoverage = true }
}

// Cluster is a running simulated Redis Cluster: miniredis nodes on 127.0.0.1
// that answer the cluster commands with one shared topology, redirect keys
// they do not own and refuse commands whose keys span slots. Create it with
// Start and stop it with Close. Its methods are safe for concurrent use.
type Cluster struct {
	opts  options
	nodes []*Node
	ctx   connState // how to read miniredis's per-connection state

	// admin serialises the operations that change topology or clocks:
	// Kill, Restart, MoveSlot, SetTime, FastForward and Close.
	admin  sync.Mutex
	closed bool // guarded by admin
	pinned bool // SetTime was called; guarded by admin
	now    time.Time

	// clockStop and clockDone own the goroutine that moves the nodes'
	// clocks along with the wall clock until SetTime pins them.
	clockStop chan struct{}
	clockDone chan struct{}
	clockOnce sync.Once

	// mu guards the topology read on every command: slot owners, which
	// nodes are up, config epochs and the derived cluster state.
	mu           sync.RWMutex
	owners       [SlotCount]*Node
	ranges       []slotRange // owners as contiguous ranges, rebuilt on change
	failing      bool        // cluster_state:fail
	currentEpoch uint64

	// slotExec is held for reading while a command on the slot executes and
	// for writing while MoveSlot copies the slot, so that no write lands on
	// the old owner after its keys were copied.
	slotExec [SlotCount]sync.RWMutex
}

// slotRange is a run of consecutive slots with one owner.
type slotRange struct {
	start, end int // inclusive
	node       *Node
}

// Start starts a cluster of n nodes (DefaultNodes if n < 1) listening on
// 127.0.0.1 ports chosen by the system, and splits the slots into contiguous,
// near-equal ranges in node order, the way redis-cli --cluster create does
// (0-5460, 5461-10922, 10923-16383 for three nodes). Every node's clock runs
// with the wall clock, so keys expire in real time until SetTime pins it.
func Start(n int, opts ...Option) (*Cluster, error) {
	if n < 1 {
		n = DefaultNodes
	}
	if n > SlotCount {
		return nil, fmt.Errorf("starting cluster: %d nodes cannot each own a slot of %d", n, SlotCount)
	}
	c := &Cluster{}
	for _, o := range opts {
		o(&c.opts)
	}
	for i := range n {
		node, err := startNode(c)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("starting cluster node %d: %w", i, err)
		}
		c.nodes = append(c.nodes, node)
	}

	perNode := float64(SlotCount) / float64(n)
	first, cursor := 0, 0.0
	for i, node := range c.nodes {
		last := int(math.Round(cursor + perNode - 1))
		if last > SlotCount-1 || i == n-1 {
			last = SlotCount - 1
		}
		last = max(last, first)
		for s := first; s <= last; s++ {
			c.owners[s] = node
		}
		node.epoch = uint64(i + 1)
		first, cursor = last+1, cursor+perNode
	}
	c.currentEpoch = uint64(n)
	c.topologyChanged()

	var err error
	if c.ctx, err = probeConnState(c.nodes[0]); err != nil {
		c.Close()
		return nil, fmt.Errorf("starting cluster: %w", err)
	}
	for _, node := range c.nodes {
		node.serve()
	}
	c.startClock()
	return c, nil
}

// clockTick is how often the nodes' clocks follow the wall clock while it
// is not pinned: a key whose TTL has run out may still be read for up to
// one tick (real Redis expires lazily and in sampled rounds too).
const clockTick = 50 * time.Millisecond

// ttlClockStep: before a command that sets a TTL the node's clock is
// brought to now unless it is closer than this. A key's TTL then starts
// from when it was set, to within this step, instead of losing the time
// since the last tick.
const ttlClockStep = time.Millisecond

// startClock keeps every node's clock at the wall clock, one tick at a
// time. miniredis ages every key of a node whenever its clock has moved,
// which costs a sort of all its keys; moving the clock once a tick (and
// before commands that set a TTL) instead of on every command keeps that
// cost off most of the request path.
func (c *Cluster) startClock() {
	c.clockStop, c.clockDone = make(chan struct{}), make(chan struct{})
	c.tick(time.Now())
	go func() {
		defer close(c.clockDone)
		t := time.NewTicker(clockTick)
		defer t.Stop()
		for {
			select {
			case <-c.clockStop:
				return
			case now := <-t.C:
				c.tick(now)
			}
		}
	}()
}

// tick sets every node's clock to now, unless SetTime pinned them.
func (c *Cluster) tick(now time.Time) {
	for _, n := range c.nodes {
		n.advanceClock(now, 0)
	}
}

// Addrs returns every node's "127.0.0.1:port" in node order. Any one of them
// is enough to seed a go-redis ClusterClient.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.addr
	}
	return addrs
}

// Nodes returns the nodes in the order Start created them.
func (c *Cluster) Nodes() []*Node {
	return append([]*Node(nil), c.nodes...)
}

// Node returns the i-th node; it panics when i is out of range, like an
// index expression.
func (c *Cluster) Node(i int) *Node {
	return c.nodes[i]
}

// NodeForKey returns the node that owns key's slot, which is where the key
// is stored.
func (c *Cluster) NodeForKey(key string) *Node {
	return c.NodeForSlot(Slot(key))
}

// NodeForSlot returns the node that owns slot, killed or not, or nil when
// slot is outside 0..SlotCount-1.
func (c *Cluster) NodeForSlot(slot int) *Node {
	if slot < 0 || slot >= SlotCount {
		return nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.owners[slot]
}

// FastForward moves every node's clock forward by d, expiring the keys whose
// TTL runs out on the way. On a clock pinned with SetTime this moves the
// pinned time (TIME follows); on the wall clock it shortens every TTL by d.
func (c *Cluster) FastForward(d time.Duration) {
	c.admin.Lock()
	defer c.admin.Unlock()
	if c.pinned {
		c.now = c.now.Add(d)
		for _, n := range c.nodes {
			n.pinClock(c.now)
		}
		return
	}
	for _, n := range c.nodes {
		n.m.FastForward(d)
	}
}

// SetTime pins every node's clock at t: TIME answers t, EXPIREAT compares
// with t, and TTLs elapse only as far as the clock is moved (by SetTime or
// FastForward), which makes expiry deterministic in specs.
func (c *Cluster) SetTime(t time.Time) {
	c.admin.Lock()
	defer c.admin.Unlock()
	c.pinned, c.now = true, t
	for _, n := range c.nodes {
		n.pinClock(t)
	}
}

// Close stops every node, dropping their connections, and returns once the
// goroutines serving them have ended. Calling it again does nothing.
func (c *Cluster) Close() {
	if c.clockStop != nil {
		// Outside admin: a tick in progress holds it.
		c.clockOnce.Do(func() { close(c.clockStop) })
		<-c.clockDone
	}
	c.admin.Lock()
	defer c.admin.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	for _, n := range c.nodes {
		n.Resume()
		n.m.Close()
	}
	c.mu.Lock()
	for _, n := range c.nodes {
		n.up = false
	}
	c.topologyChanged()
	c.mu.Unlock()
}

// topologyChanged recomputes what is derived from the owners and the nodes'
// state. Called with c.mu held for writing (or before the nodes serve).
func (c *Cluster) topologyChanged() {
	c.ranges = c.ranges[:0]
	start := 0
	for s := 1; s <= SlotCount; s++ {
		if s == SlotCount || c.owners[s] != c.owners[start] {
			c.ranges = append(c.ranges, slotRange{start: start, end: s - 1, node: c.owners[start]})
			start = s
		}
	}

	// Like clusterUpdateState: the cluster fails when the masters that serve
	// slots and are reachable are not a majority of those that serve slots,
	// and, with full coverage required, when any slot's owner is down.
	serving, reachable, uncovered := 0, 0, false
	for _, n := range c.nodes {
		if !c.ownsAny(n) {
			continue
		}
		serving++
		if n.up {
			reachable++
		} else {
			uncovered = true
		}
	}
	c.failing = reachable < serving/2+1 || (c.opts.requireFullCoverage && uncovered)
}

func (c *Cluster) ownsAny(n *Node) bool {
	for _, r := range c.ranges {
		if r.node == n {
			return true
		}
	}
	return false
}

// verdict is what a node does with a command on a slot.
type verdict uint8

const (
	serve       verdict = iota // the node owns the slot and the cluster is up
	moved                      // another node owns it: MOVED
	notServed                  // its owner is down: CLUSTERDOWN Hash slot not served
	clusterDown                // the cluster as a whole is down
)

// route decides how self answers a command on slot, and returns the owner.
func (c *Cluster) route(self *Node, slot int) (verdict, *Node) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	owner := c.owners[slot]
	switch {
	case c.failing:
		return clusterDown, owner
	case owner == self:
		return serve, owner
	case !owner.up:
		return notServed, owner
	default:
		return moved, owner
	}
}

// upNodes returns the nodes that are up.
func (c *Cluster) upNodes() []*Node {
	c.mu.RLock()
	defer c.mu.RUnlock()
	up := make([]*Node, 0, len(c.nodes))
	for _, n := range c.nodes {
		if n.up {
			up = append(up, n)
		}
	}
	return up
}
