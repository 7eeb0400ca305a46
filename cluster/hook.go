package cluster

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2/server"
)

// Replies of a Redis Cluster node that refuses a command.
const (
	msgCrossSlot   = "CROSSSLOT Keys in request don't hash to the same slot"
	msgClusterDown = "CLUSTERDOWN The cluster is down"
	msgNotServed   = "CLUSTERDOWN Hash slot not served"
)

// hook returns the pre-hook that turns the node's server into a cluster
// node. It runs on every connection's goroutine before miniredis sees the
// command, and returns true when it has answered. Keyed commands that the
// node serves are executed by the hook itself (see keyed), under the slot's
// execution lock.
func (n *Node) hook(srv *server.Server) server.Hook {
	return func(p *server.Peer, cmd string, args ...string) bool {
		if n.isInternal(p) {
			return false
		}
		n.waitWhileHung()
		switch cmd {
		case "CLUSTER":
			n.clusterCommand(p, args)
			return true
		case "INFO":
			return n.info(srv, p, args)
		case "PUBLISH":
			return n.publish(srv, p, args)
		case "READONLY", "READWRITE", "ASKING":
			// Accepted and meaningless: there are no replicas to read from
			// and no migration in progress.
			if len(args) != 0 {
				p.WriteError(fmt.Sprintf("ERR wrong number of arguments for '%s' command", strings.ToLower(cmd)))
			} else {
				p.WriteOK()
			}
			return true
		case "SELECT", "SWAPDB", "MOVE":
			// A cluster has database 0 only.
			if cmd == "SELECT" && (len(args) != 1 || args[0] == "0") {
				return false
			}
			n.refuse(srv, p, fmt.Sprintf("ERR %s is not allowed in cluster mode", cmd))
			return true
		case "MULTI":
			n.beginTx(p)
			return false
		case "DISCARD":
			n.endTx(p)
			return false
		case "EXEC":
			return n.exec(srv, p)
		}
		return n.keyed(srv, p, cmd, args)
	}
}

// keyed routes a command by its keys. It answers CROSSSLOT, MOVED or
// CLUSTERDOWN when the node must not execute the command; otherwise it
// executes it under the slot's read lock, so that MoveSlot, which takes the
// write lock, never copies a slot while a command on it is half done.
// Commands inside MULTI are only queued, and blocking commands may wait for
// ever, so those two are let through without the lock.
func (n *Node) keyed(srv *server.Server, p *server.Peer, cmd string, args []string) bool {
	spec, ok := commandKeys[cmd]
	if !ok {
		return false
	}
	keys, blocking := spec.slots(args)
	if !keys.found {
		return false // miniredis reports the syntax error
	}
	inTx, nested := n.c.ctx.of(p)
	if nested {
		return n.scriptAccess(p, cmd, keys)
	}
	if keys.cross {
		n.refuse(srv, p, msgCrossSlot)
		return true
	}
	if inTx || blocking {
		if msg := n.redirect(keys.slot); msg != "" {
			n.refuse(srv, p, msg)
			return true
		}
		if inTx {
			n.noteTxSlot(p, keys.slot)
		}
		return false
	}

	exec := &n.c.slotExec[keys.slot]
	exec.RLock()
	defer exec.RUnlock()
	if msg := n.redirect(keys.slot); msg != "" {
		p.WriteError(msg)
		return true
	}
	if setsTTL(cmd, args) {
		n.advanceClock(time.Now(), ttlClockStep)
	}
	n.dispatch(srv, p, append([]string{cmd}, args...))
	return true
}

// redirect returns the error with which the node refuses a command on slot,
// or "" when it serves the slot.
func (n *Node) redirect(slot int) string {
	switch v, owner := n.c.route(n, slot); v {
	case moved:
		return fmt.Sprintf("MOVED %d %s", slot, owner.addr)
	case notServed:
		return msgNotServed
	case clusterDown:
		return msgClusterDown
	default:
		return ""
	}
}

// refuse answers p with an error. Inside MULTI it also makes the transaction
// fail at EXEC with EXECABORT, as Redis does for a command refused while
// queueing.
func (n *Node) refuse(srv *server.Server, p *server.Peer, msg string) {
	if inTx, _ := n.c.ctx.of(p); inTx {
		n.markDirty(srv, p)
	}
	p.WriteError(msg)
}

// scriptAccess checks a command issued by a Lua script (redis.call) with
// Redis's script errors. It neither locks the slot (the script's EVAL holds
// the lock of its declared keys) nor touches other nodes (the script holds
// this node's lock).
func (n *Node) scriptAccess(p *server.Peer, cmd string, keys slotSet) bool {
	var msg string
	if keys.cross {
		msg = fmt.Sprintf("ERR Command '%s' in script attempted to access keys that don't hash to the same slot",
			strings.ToLower(cmd))
	} else {
		switch v, _ := n.c.route(n, keys.slot); v {
		case serve:
			return false
		case clusterDown:
			msg = "ERR Script attempted to execute a command while the cluster is down"
		case notServed:
			msg = "ERR Script attempted to access a slot not served"
		default:
			msg = "ERR Script attempted to access a non local key in a cluster node"
		}
	}
	p.WriteError(msg)
	return true
}

// txSlots is what a connection's open transaction has queued so far.
type txSlots struct {
	slot  int // -1 before the first keyed command
	cross bool
}

// beginTx starts tracking p's transaction. The entry lives as long as the
// connection, so that a pooled connection running many transactions
// registers one disconnect callback only.
func (n *Node) beginTx(p *server.Peer) {
	if inTx, nested := n.c.ctx.of(p); inTx || nested {
		return // miniredis refuses this MULTI
	}
	n.txMu.Lock()
	tx, known := n.txs[p]
	if !known {
		tx = &txSlots{}
		n.txs[p] = tx
	}
	tx.slot, tx.cross = -1, false
	n.txMu.Unlock()
	if !known {
		p.OnDisconnect(func() {
			n.txMu.Lock()
			delete(n.txs, p)
			n.txMu.Unlock()
		})
	}
}

// endTx forgets what p's transaction queued and returns it.
func (n *Node) endTx(p *server.Peer) txSlots {
	n.txMu.Lock()
	defer n.txMu.Unlock()
	tx, ok := n.txs[p]
	if !ok {
		return txSlots{slot: -1}
	}
	was := *tx
	tx.slot, tx.cross = -1, false
	return was
}

func (n *Node) noteTxSlot(p *server.Peer, slot int) {
	n.txMu.Lock()
	defer n.txMu.Unlock()
	tx, ok := n.txs[p]
	switch {
	case !ok:
	case tx.slot < 0:
		tx.slot = slot
	case tx.slot != slot:
		tx.cross = true
	}
}

// exec checks a transaction as Redis Cluster does when EXEC arrives: all its
// keys must be in one slot that this node serves; otherwise the transaction
// is discarded and EXEC answers the error. A transaction with keys runs
// under its slot's read lock, like a single command.
func (n *Node) exec(srv *server.Server, p *server.Peer) bool {
	inTx, nested := n.c.ctx.of(p)
	if !inTx || nested {
		return false // miniredis answers "EXEC without MULTI"
	}
	tx := n.endTx(p)
	if tx.cross {
		n.discard(srv, p)
		p.WriteError(msgCrossSlot)
		return true
	}
	if tx.slot < 0 {
		return false
	}
	exec := &n.c.slotExec[tx.slot]
	exec.RLock()
	defer exec.RUnlock()
	if msg := n.redirect(tx.slot); msg != "" {
		n.discard(srv, p)
		p.WriteError(msg)
		return true
	}
	// A transaction may set TTLs (the rate limiter's PEXPIRE does).
	n.advanceClock(time.Now(), ttlClockStep)
	n.dispatch(srv, p, []string{"EXEC"})
	return true
}

// publish broadcasts a message to the subscribers of every node, as a Redis
// Cluster does, and answers the number of receivers on this node only, as
// Redis does (the other nodes get the message over the cluster bus and are
// not counted). The local part
// goes through miniredis, which handles authentication, pub/sub mode and
// MULTI; a PUBLISH that is queued or refused is answered as miniredis
// answered it.
func (n *Node) publish(srv *server.Server, p *server.Peer, args []string) bool {
	if len(args) != 2 {
		return false
	}
	if _, nested := n.c.ctx.of(p); nested {
		// The script holds this node's lock; publishing on the other nodes
		// from here could deadlock with a script running there.
		return false
	}
	raw := n.capture(srv, p, []string{"PUBLISH", args[0], args[1]})
	reply, err := server.ParseReply(bufio.NewReader(bytes.NewReader(raw)))
	count, ok := reply.(int)
	if err != nil || !ok {
		p.WriteRaw(string(raw))
		return true
	}
	for _, other := range n.c.upNodes() {
		if other != n {
			other.m.Publish(args[0], args[1])
		}
	}
	p.WriteInt(count)
	return true
}

// clusterInfoSection is the INFO section a cluster node adds.
const clusterInfoSection = "# Cluster\r\ncluster_enabled:1\r\n"

// info lets miniredis answer INFO and adds the Cluster section, which is how
// clients and tools tell a cluster node from a standalone server.
func (n *Node) info(srv *server.Server, p *server.Peer, args []string) bool {
	cmd := []string{"INFO"}
	switch {
	case len(args) > 1:
		return false
	case len(args) == 1:
		switch strings.ToLower(args[0]) {
		case "cluster":
			p.WriteBulk(clusterInfoSection)
			return true
		case "all", "everything", "default":
		default:
			return false
		}
	}
	raw := n.capture(srv, p, cmd)
	reply, err := server.ParseReply(bufio.NewReader(bytes.NewReader(raw)))
	text, ok := reply.(string)
	if err != nil || !ok {
		p.WriteRaw(string(raw))
		return true
	}
	p.WriteBulk(strings.TrimRight(text, "\r\n") + "\r\n\r\n" + clusterInfoSection)
	return true
}

// setsTTL tells whether a command gives a key a TTL, so the node's clock
// is brought to now first (see ttlClockStep).
func setsTTL(cmd string, args []string) bool {
	switch cmd {
	case "SETEX", "PSETEX", "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT", "GETEX", "RESTORE",
		"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "HEXPIRE", "HSETEX":
		return true
	case "SET":
		for _, a := range args[min(2, len(args)):] {
			switch strings.ToUpper(a) {
			case "EX", "PX", "EXAT", "PXAT":
				return true
			}
		}
	}
	return false
}
