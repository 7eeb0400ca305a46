package cluster

import (
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// MoveSlot migrates slot to node to, like a resharding: the slot's keys
// (strings, hashes, lists, sets and sorted sets, with their TTLs and hash
// field TTLs) are copied to `to` and deleted from the old owner, and then
// `to` owns the slot; from then on the old owner answers MOVED for it. The
// move is atomic for clients: commands on the slot wait while it runs. It
// fails, moving nothing, when either node is down or a key of the slot has
// another type (the error names the key). Moving a slot to its owner does
// nothing. Blocking commands (BLPOP and the like) and scripts that declare no
// keys are not held back, so a write they make during the move may stay
// behind on the old owner.
func (c *Cluster) MoveSlot(slot int, to *Node) error {
	if slot < 0 || slot >= SlotCount {
		return fmt.Errorf("moving slot %d: no such slot", slot)
	}
	if to == nil || to.c != c {
		return fmt.Errorf("moving slot %d: target is not a node of this cluster", slot)
	}
	c.admin.Lock()
	defer c.admin.Unlock()
	if c.closed {
		return fmt.Errorf("moving slot %d: %w", slot, ErrClosed)
	}
	from := c.NodeForSlot(slot)
	if from == to {
		return nil
	}
	for _, n := range []*Node{from, to} {
		if !n.Up() {
			return fmt.Errorf("moving slot %d: node %s: %w", slot, n.addr, ErrNodeDown)
		}
	}

	exec := &c.slotExec[slot]
	exec.Lock()
	defer exec.Unlock()

	src, dst := from.m.DB(0), to.m.DB(0)
	var values []keyValue
	for _, k := range src.Keys() {
		if Slot(k) != slot {
			continue
		}
		v, err := readKey(src, k)
		if err != nil {
			return fmt.Errorf("moving slot %d: %w", slot, err)
		}
		values = append(values, v)
	}
	for _, v := range values {
		v.write(dst)
	}
	for _, v := range values {
		src.Del(v.key)
	}

	c.mu.Lock()
	c.owners[slot] = to
	// The importing node claims the slot with a new epoch, as
	// CLUSTER SETSLOT ... NODE does, so the change wins over older views.
	c.currentEpoch++
	to.epoch = c.currentEpoch
	c.topologyChanged()
	c.mu.Unlock()
	return nil
}

// keyValue is one key read out of a node, ready to be written to another.
type keyValue struct {
	key       string
	kind      string
	ttl       time.Duration // 0: none
	str       string
	list      []string // list elements in order, or set members
	hash      map[string]string
	fieldTTLs map[string]time.Duration
	zset      map[string]float64
}

func readKey(db *miniredis.RedisDB, k string) (keyValue, error) {
	v := keyValue{key: k, kind: db.Type(k), ttl: db.TTL(k)}
	var err error
	switch v.kind {
	case "string":
		v.str, err = db.Get(k)
	case "list":
		v.list, err = db.List(k)
	case "set":
		v.list, err = db.Members(k)
	case "zset":
		v.zset, err = db.SortedSet(k)
	case "hash":
		var fields []string
		fields, err = db.HKeys(k)
		v.hash = make(map[string]string, len(fields))
		for _, f := range fields {
			v.hash[f] = db.HGet(k, f)
			if ttl := db.HTTL(k, f); ttl > 0 {
				if v.fieldTTLs == nil {
					v.fieldTTLs = map[string]time.Duration{}
				}
				v.fieldTTLs[f] = ttl
			}
		}
	default:
		return v, fmt.Errorf("key %q is a %s: %w", k, v.kind, ErrUnsupportedType)
	}
	if err != nil {
		// The key changed type or vanished under us; nothing was moved yet.
		return v, fmt.Errorf("reading key %q: %w", k, err)
	}
	return v, nil
}

// write replaces the key in db with v.
func (v keyValue) write(db *miniredis.RedisDB) {
	db.Del(v.key)
	switch v.kind {
	case "string":
		_ = db.Set(v.key, v.str) // cannot fail: the key was just deleted
	case "list":
		_, _ = db.Push(v.key, v.list...)
	case "set":
		_, _ = db.SetAdd(v.key, v.list...)
	case "zset":
		for m, score := range v.zset {
			_, _ = db.ZAdd(v.key, score, m)
		}
	case "hash":
		for f, val := range v.hash {
			db.HSet(v.key, f, val)
		}
		for f, ttl := range v.fieldTTLs {
			db.HExpire(v.key, f, ttl)
		}
	}
	if v.ttl > 0 {
		db.SetTTL(v.key, v.ttl)
	}
}
