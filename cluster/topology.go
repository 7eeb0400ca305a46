package cluster

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2/server"
)

// clusterArity is the number of arguments, subcommand included, of each
// CLUSTER subcommand a node answers.
var clusterArity = map[string]int{
	"SLOTS": 1, "NODES": 1, "SHARDS": 1, "INFO": 1, "MYID": 1,
	"KEYSLOT": 2, "COUNTKEYSINSLOT": 2, "GETKEYSINSLOT": 3,
}

// clusterCommand answers the CLUSTER subcommands that describe the topology,
// in the formats of Redis 7.
func (n *Node) clusterCommand(p *server.Peer, args []string) {
	if len(args) == 0 {
		p.WriteError("ERR wrong number of arguments for 'cluster' command")
		return
	}
	sub := strings.ToUpper(args[0])
	want, known := clusterArity[sub]
	switch {
	case !known:
		p.WriteError(fmt.Sprintf("ERR unknown subcommand '%s'. Try CLUSTER HELP.", args[0]))
		return
	case len(args) != want:
		p.WriteError(fmt.Sprintf("ERR wrong number of arguments for 'cluster|%s' command", strings.ToLower(sub)))
		return
	}

	switch sub {
	case "SLOTS":
		n.clusterSlots(p)
	case "NODES":
		p.WriteBulk(n.clusterNodes())
	case "SHARDS":
		n.clusterShards(p)
	case "INFO":
		p.WriteBulk(n.clusterInfo())
	case "MYID":
		p.WriteBulk(n.id)
	case "KEYSLOT":
		p.WriteInt(Slot(args[1]))
	case "COUNTKEYSINSLOT", "GETKEYSINSLOT":
		n.keysInSlot(p, sub, args[1:])
	}
}

// clusterSlots writes CLUSTER SLOTS: one entry per range of slots, with its
// owner's ip, port, id and (empty) networking metadata. A killed node's
// ranges stay listed, as they do until a replica takes over.
func (n *Node) clusterSlots(p *server.Peer) {
	c := n.c
	c.mu.RLock()
	defer c.mu.RUnlock()
	p.WriteLen(len(c.ranges))
	for _, r := range c.ranges {
		p.WriteLen(3)
		p.WriteInt(r.start)
		p.WriteInt(r.end)
		p.WriteLen(4)
		p.WriteBulk(r.node.ip)
		p.WriteInt(r.node.port)
		p.WriteBulk(r.node.id)
		p.WriteMapLen(0)
	}
}

// clusterNodes returns CLUSTER NODES as seen from n: one line per node,
// `<id> <ip:port@cport> <flags> <master> <ping-sent> <pong-recv>
// <config-epoch> <link-state> <slot-range> ...`.
func (n *Node) clusterNodes() string {
	c := n.c
	c.mu.RLock()
	defer c.mu.RUnlock()
	pong := strconv.FormatInt(time.Now().UnixMilli(), 10)
	var b strings.Builder
	for _, node := range c.nodes {
		flags, link, pongRecv := "master", "connected", pong
		switch {
		case node == n:
			flags, pongRecv = "myself,master", "0"
		case !node.up:
			flags, link = "master,fail", "disconnected"
		}
		fmt.Fprintf(&b, "%s %s:%d@%d %s - 0 %s %d %s", node.id, node.ip, node.port, busPort(node.port),
			flags, pongRecv, node.epoch, link)
		for _, r := range c.ranges {
			if r.node != node {
				continue
			}
			if r.start == r.end {
				fmt.Fprintf(&b, " %d", r.start)
			} else {
				fmt.Fprintf(&b, " %d-%d", r.start, r.end)
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// busPort is the cluster bus port Redis would use, port+10000, kept within
// the valid range. Nothing listens on it; it only completes the address.
func busPort(port int) int {
	if port+10000 > 65535 {
		return port - 10000
	}
	return port + 10000
}

// clusterShards writes CLUSTER SHARDS: one shard per node (no replicas).
func (n *Node) clusterShards(p *server.Peer) {
	c := n.c
	c.mu.RLock()
	defer c.mu.RUnlock()
	p.WriteLen(len(c.nodes))
	for _, node := range c.nodes {
		p.WriteMapLen(2)
		p.WriteBulk("slots")
		var bounds []int
		for _, r := range c.ranges {
			if r.node == node {
				bounds = append(bounds, r.start, r.end)
			}
		}
		p.WriteLen(len(bounds))
		for _, s := range bounds {
			p.WriteInt(s)
		}
		p.WriteBulk("nodes")
		p.WriteLen(1)
		p.WriteMapLen(7)
		p.WriteBulk("id")
		p.WriteBulk(node.id)
		p.WriteBulk("port")
		p.WriteInt(node.port)
		p.WriteBulk("ip")
		p.WriteBulk(node.ip)
		p.WriteBulk("endpoint")
		p.WriteBulk(node.ip)
		p.WriteBulk("role")
		p.WriteBulk("master")
		p.WriteBulk("replication-offset")
		p.WriteInt(0)
		p.WriteBulk("health")
		if node.up {
			p.WriteBulk("online")
		} else {
			p.WriteBulk("failed")
		}
	}
}

// clusterInfo returns CLUSTER INFO.
func (n *Node) clusterInfo() string {
	c := n.c
	c.mu.RLock()
	defer c.mu.RUnlock()
	state, ok, fail, size := "ok", 0, 0, 0
	if c.failing {
		state = "fail"
	}
	for _, r := range c.ranges {
		if r.node.up {
			ok += r.end - r.start + 1
		} else {
			fail += r.end - r.start + 1
		}
	}
	for _, node := range c.nodes {
		if c.ownsAny(node) {
			size++
		}
	}
	return fmt.Sprintf("cluster_enabled:1\r\n"+
		"cluster_state:%s\r\n"+
		"cluster_slots_assigned:%d\r\n"+
		"cluster_slots_ok:%d\r\n"+
		"cluster_slots_pfail:0\r\n"+
		"cluster_slots_fail:%d\r\n"+
		"cluster_known_nodes:%d\r\n"+
		"cluster_size:%d\r\n"+
		"cluster_current_epoch:%d\r\n"+
		"cluster_my_epoch:%d\r\n",
		state, SlotCount, ok, fail, len(c.nodes), size, c.currentEpoch, n.epoch)
}

// keysInSlot answers CLUSTER COUNTKEYSINSLOT slot and CLUSTER GETKEYSINSLOT
// slot count from the keys this node holds.
func (n *Node) keysInSlot(p *server.Peer, sub string, args []string) {
	if _, nested := n.c.ctx.of(p); nested {
		// A script holds the node's lock, which reading its keys needs.
		p.WriteError("ERR This Redis command is not allowed from script")
		return
	}
	slot, err := strconv.Atoi(args[0])
	if err != nil || slot < 0 || slot >= SlotCount {
		p.WriteError("ERR Invalid slot")
		return
	}
	limit := -1
	if sub == "GETKEYSINSLOT" {
		if limit, err = strconv.Atoi(args[1]); err != nil || limit < 0 {
			p.WriteError("ERR Invalid number of keys")
			return
		}
	}
	var keys []string
	for _, k := range n.m.DB(0).Keys() {
		if Slot(k) == slot && (limit < 0 || len(keys) < limit) {
			keys = append(keys, k)
		}
	}
	if sub == "COUNTKEYSINSLOT" {
		p.WriteInt(len(keys))
		return
	}
	p.WriteStrings(keys)
}
