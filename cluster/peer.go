package cluster

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"

	"github.com/alicebob/miniredis/v2/server"
)

// connState reads two facts from miniredis's per-connection state, which it
// keeps in an unexported struct behind server.Peer.Ctx: whether the
// connection is inside MULTI, and whether the command comes from a Lua
// script (redis.call dispatches through the same hook, on a peer of its own,
// while the script holds the node's lock). The fields are only read.
type connState struct {
	typ         reflect.Type // *miniredis.connCtx
	transaction int          // index of `transaction []txCmd`, nil outside MULTI
	nested      int          // index of `nested bool`
}

// probeConnState finds the fields on a node by letting it create the state of
// a scratch connection. It fails if a miniredis upgrade renamed them, rather
// than silently mishandling transactions and scripts.
func probeConnState(n *Node) (connState, error) {
	p := n.scratch(io.Discard, nil)
	n.dispatch(n.m.Server(), p, []string{"PING"})
	v := reflect.ValueOf(p.Ctx)
	if !v.IsValid() || v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return connState{}, errors.New("miniredis keeps no per-connection state in Peer.Ctx")
	}
	s := v.Elem().Type()
	tx, ok1 := s.FieldByName("transaction")
	nested, ok2 := s.FieldByName("nested")
	if !ok1 || !ok2 || tx.Type.Kind() != reflect.Slice || nested.Type.Kind() != reflect.Bool {
		return connState{}, errors.New("miniredis per-connection state lacks the transaction and nested fields")
	}
	return connState{typ: v.Type(), transaction: tx.Index[0], nested: nested.Index[0]}, nil
}

// of reports whether p is inside MULTI and whether it runs inside a script.
func (cs connState) of(p *server.Peer) (inTx, nested bool) {
	if p.Ctx == nil {
		return false, false
	}
	v := reflect.ValueOf(p.Ctx)
	if v.Type() != cs.typ || v.IsNil() {
		return false, false
	}
	s := v.Elem()
	return !s.Field(cs.transaction).IsNil(), s.Field(cs.nested).Bool()
}

// scratch makes a throwaway connection that shares like's per-connection
// state (selected DB, authentication, MULTI) and writes its replies to w.
func (n *Node) scratch(w io.Writer, like *server.Peer) *server.Peer {
	p := server.NewPeer(bufio.NewWriter(w))
	if like != nil {
		p.Ctx, p.Resp3 = like.Ctx, like.Resp3
	}
	return p
}

// dispatch executes a command on p without routing it again: the node has
// already decided that it serves it.
func (n *Node) dispatch(srv *server.Server, p *server.Peer, cmd []string) {
	n.internal.Store(p, struct{}{})
	defer n.internal.Delete(p)
	srv.Dispatch(p, cmd)
}

// capture executes cmd for p on a scratch connection and returns the raw
// reply, for commands whose answer the node completes (INFO, PUBLISH).
func (n *Node) capture(srv *server.Server, p *server.Peer, cmd []string) []byte {
	var buf bytes.Buffer
	s := n.scratch(&buf, p)
	n.dispatch(srv, s, cmd)
	s.Flush()
	return buf.Bytes()
}

// markDirty makes miniredis abort p's transaction at EXEC, as Redis does
// after a command was refused while queueing: a command with a missing
// argument, run with p's state, sets the transaction's dirty flag.
func (n *Node) markDirty(srv *server.Server, p *server.Peer) {
	n.dispatch(srv, n.scratch(io.Discard, p), []string{"GET"})
}

// discard drops p's transaction (and its WATCHes), as Redis does when it
// refuses an EXEC.
func (n *Node) discard(srv *server.Server, p *server.Peer) {
	n.dispatch(srv, n.scratch(io.Discard, p), []string{"DISCARD"})
}

func (n *Node) isInternal(p *server.Peer) bool {
	_, ok := n.internal.Load(p)
	return ok
}
