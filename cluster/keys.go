package cluster

import (
	"strconv"
	"strings"
)

// keyRule says where a command's keys are among its arguments (the command
// name excluded). Commands missing from commandKeys take no key and are
// served by whichever node receives them, as in Redis Cluster.
type keyRule uint8

const (
	firstArg        keyRule = iota + 1 // GET key ...
	allArgs                            // DEL key [key ...]
	everyOtherArg                      // MSET key value [key value ...]
	firstTwoArgs                       // RENAME key newkey
	allButLastArg                      // BLPOP key [key ...] timeout
	evalKeys                           // EVAL script numkeys key [key ...] arg ...
	numkeysFirst                       // ZUNION numkeys key [key ...] ...
	destNumkeys                        // ZUNIONSTORE dest numkeys key [key ...] ...
	timeoutNumkeys                     // BLMPOP timeout numkeys key [key ...] ...
	afterFirstArg                      // BITOP op dest key [key ...]
	streamKeys                         // XREAD [COUNT n] [BLOCK ms] STREAMS key [key ...] id [id ...]
	groupStreamKeys                    // XREADGROUP GROUP g c [COUNT n] [BLOCK ms] [NOACK] STREAMS key ... id ...
	subcommandKey                      // OBJECT ENCODING key, XINFO STREAM key, XGROUP CREATE key ...
	memoryUsageKey                     // MEMORY USAGE key
	storeOption                        // GEORADIUS key ... [STORE key] [STOREDIST key], SORT key ... [STORE key]
)

// keySpec describes the keys of one command and whether it may block the
// connection waiting for data.
type keySpec struct {
	rule     keyRule
	blocking bool
}

// commandKeys lists every command that names keys. The names are upper case,
// as the server hook receives them.
var commandKeys = func() map[string]keySpec {
	m := map[string]keySpec{}
	add := func(spec keySpec, names ...string) {
		for _, n := range names {
			m[n] = spec
		}
	}
	add(keySpec{rule: firstArg},
		// strings and bits
		"APPEND", "BITCOUNT", "BITFIELD", "BITFIELD_RO", "BITPOS", "DECR", "DECRBY", "GET", "GETBIT",
		"GETDEL", "GETEX", "GETRANGE", "GETSET", "INCR", "INCRBY", "INCRBYFLOAT", "PSETEX", "SET",
		"SETBIT", "SETEX", "SETNX", "SETRANGE", "STRLEN", "SUBSTR",
		// generic
		"DELEX", "DUMP", "EXPIRE", "EXPIREAT", "EXPIRETIME", "PERSIST", "PEXPIRE", "PEXPIREAT",
		"PEXPIRETIME", "PTTL", "RESTORE", "TTL", "TYPE",
		// hashes
		"HDEL", "HEXISTS", "HEXPIRE", "HEXPIREAT", "HEXPIRETIME", "HGET", "HGETALL", "HGETDEL", "HGETEX",
		"HINCRBY", "HINCRBYFLOAT", "HKEYS", "HLEN", "HMGET", "HMSET", "HPERSIST", "HPEXPIRE",
		"HPEXPIREAT", "HPEXPIRETIME", "HPTTL", "HRANDFIELD", "HSCAN", "HSET", "HSETEX", "HSETNX",
		"HSTRLEN", "HTTL", "HVALS",
		// lists
		"LINDEX", "LINSERT", "LLEN", "LPOP", "LPOS", "LPUSH", "LPUSHX", "LRANGE", "LREM", "LSET",
		"LTRIM", "RPOP", "RPUSH", "RPUSHX",
		// sets
		"SADD", "SCARD", "SISMEMBER", "SMEMBERS", "SMISMEMBER", "SPOP", "SRANDMEMBER", "SREM", "SSCAN",
		// sorted sets
		"ZADD", "ZCARD", "ZCOUNT", "ZINCRBY", "ZLEXCOUNT", "ZMSCORE", "ZPOPMAX", "ZPOPMIN",
		"ZRANDMEMBER", "ZRANGE", "ZRANGEBYLEX", "ZRANGEBYSCORE", "ZRANK", "ZREM", "ZREMRANGEBYLEX",
		"ZREMRANGEBYRANK", "ZREMRANGEBYSCORE", "ZREVRANGE", "ZREVRANGEBYLEX", "ZREVRANGEBYSCORE",
		"ZREVRANK", "ZSCAN", "ZSCORE",
		// geo, hyperloglog, streams
		"GEOADD", "GEODIST", "GEOHASH", "GEOPOS", "GEORADIUSBYMEMBER_RO", "GEORADIUS_RO", "GEOSEARCH",
		"PFADD", "XACK", "XADD", "XAUTOCLAIM", "XCLAIM", "XDEL", "XLEN", "XPENDING", "XRANGE",
		"XREVRANGE", "XSETID", "XTRIM",
		// sharded pub/sub: the channel decides the slot
		"SPUBLISH",
	)
	add(keySpec{rule: allArgs},
		"DEL", "UNLINK", "EXISTS", "MGET", "TOUCH", "WATCH", "SUNION", "SINTER", "SDIFF",
		"SUNIONSTORE", "SINTERSTORE", "SDIFFSTORE", "PFCOUNT", "PFMERGE", "SSUBSCRIBE", "SUNSUBSCRIBE")
	add(keySpec{rule: everyOtherArg}, "MSET", "MSETNX")
	add(keySpec{rule: firstTwoArgs},
		"RENAME", "RENAMENX", "SMOVE", "RPOPLPUSH", "LMOVE", "COPY", "LCS", "ZRANGESTORE", "GEOSEARCHSTORE")
	add(keySpec{rule: firstTwoArgs, blocking: true}, "BLMOVE", "BRPOPLPUSH")
	add(keySpec{rule: evalKeys}, "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO")
	add(keySpec{rule: numkeysFirst}, "ZUNION", "ZINTER", "ZDIFF", "ZINTERCARD", "SINTERCARD", "LMPOP", "ZMPOP")
	add(keySpec{rule: destNumkeys}, "ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE")
	add(keySpec{rule: timeoutNumkeys, blocking: true}, "BLMPOP", "BZMPOP")
	add(keySpec{rule: allButLastArg, blocking: true}, "BLPOP", "BRPOP", "BZPOPMIN", "BZPOPMAX")
	add(keySpec{rule: afterFirstArg}, "BITOP")
	add(keySpec{rule: streamKeys}, "XREAD")
	add(keySpec{rule: groupStreamKeys}, "XREADGROUP")
	add(keySpec{rule: subcommandKey}, "OBJECT", "XINFO", "XGROUP")
	add(keySpec{rule: memoryUsageKey}, "MEMORY")
	add(keySpec{rule: storeOption}, "GEORADIUS", "GEORADIUSBYMEMBER", "SORT", "SORT_RO")
	return m
}()

// slotSet accumulates the slots of a command's keys.
type slotSet struct {
	slot  int
	found bool // at least one key
	cross bool // keys in more than one slot
}

func (s *slotSet) add(key string) {
	slot := Slot(key)
	switch {
	case !s.found:
		s.slot, s.found = slot, true
	case slot != s.slot:
		s.cross = true
	}
}

func (s *slotSet) addAll(keys []string) {
	for _, k := range keys {
		s.add(k)
	}
}

// slots finds the slot of the keys in args. A command whose key arguments are
// malformed (a bad numkeys, a missing STREAMS) reports no key, so that the
// node answers it with its own syntax error. blocking reports whether the
// command may wait for data (XREAD only when it has a BLOCK option).
func (spec keySpec) slots(args []string) (s slotSet, blocking bool) {
	blocking = spec.blocking
	switch spec.rule {
	case firstArg:
		if len(args) > 0 {
			s.add(args[0])
		}
	case allArgs:
		s.addAll(args)
	case everyOtherArg:
		for i := 0; i < len(args); i += 2 {
			s.add(args[i])
		}
	case firstTwoArgs:
		s.addAll(args[:min(2, len(args))])
	case allButLastArg:
		if len(args) > 1 {
			s.addAll(args[:len(args)-1])
		}
	case evalKeys:
		if len(args) > 1 {
			s.addAll(countedKeys(args[1], args[2:]))
		}
	case numkeysFirst:
		if len(args) > 0 {
			s.addAll(countedKeys(args[0], args[1:]))
		}
	case destNumkeys:
		if len(args) > 1 {
			s.add(args[0])
			s.addAll(countedKeys(args[1], args[2:]))
		}
	case timeoutNumkeys:
		if len(args) > 1 {
			s.addAll(countedKeys(args[1], args[2:]))
		}
	case afterFirstArg:
		if len(args) > 1 {
			s.addAll(args[1:])
		}
	case streamKeys:
		var keys []string
		keys, blocking = streamsOf(args)
		s.addAll(keys)
	case groupStreamKeys:
		if len(args) > 3 && strings.EqualFold(args[0], "GROUP") {
			var keys []string
			keys, blocking = streamsOf(args[3:])
			s.addAll(keys)
		}
	case subcommandKey:
		if len(args) > 1 && !strings.EqualFold(args[0], "HELP") {
			s.add(args[1])
		}
	case memoryUsageKey:
		if len(args) > 1 && strings.EqualFold(args[0], "USAGE") {
			s.add(args[1])
		}
	case storeOption:
		if len(args) > 0 {
			s.add(args[0])
		}
		for i := 1; i+1 < len(args); i++ {
			if strings.EqualFold(args[i], "STORE") || strings.EqualFold(args[i], "STOREDIST") {
				s.add(args[i+1])
			}
		}
	}
	return s, blocking
}

// countedKeys returns the first numkeys of rest, or nothing when numkeys is
// not a count that fits.
func countedKeys(numkeys string, rest []string) []string {
	n, err := strconv.Atoi(numkeys)
	if err != nil || n < 0 || n > len(rest) {
		return nil
	}
	return rest[:n]
}

// streamsOf reads XREAD options up to STREAMS and returns the stream keys (the
// first half of what follows STREAMS) and whether BLOCK was given.
func streamsOf(args []string) (keys []string, blocking bool) {
	for i := 0; i < len(args); {
		switch strings.ToUpper(args[i]) {
		case "COUNT":
			i += 2
		case "BLOCK":
			blocking = true
			i += 2
		case "NOACK":
			i++
		case "STREAMS":
			rest := args[i+1:]
			if len(rest) == 0 || len(rest)%2 != 0 {
				return nil, blocking
			}
			return rest[:len(rest)/2], blocking
		default:
			return nil, blocking
		}
	}
	return nil, blocking
}
