package limit

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	windowPrefix   = "rate-limit-"
	sentinelSuffix = ".BLOCKED"
)

// WindowKey is the Redis key of id's sliding window, the name Tyk uses.
func WindowKey(id string) string { return windowPrefix + id }

// SentinelKey is the Redis key that marks id as blocked when the sentinel
// rate limiter is enabled.
func SentinelKey(id string) string { return windowPrefix + id + sentinelSuffix }

// CollidingID says why the limiter keys of id could be another id's, or ""
// when they cannot: with an id ending in ".BLOCKED", WindowKey(id) is
// SentinelKey of the id without it (so a client holding both keys can turn
// the other's limit off, or lock it out), and an id with a brace can name
// the hash tag of another id's GCRA and fixed-window keys. Tyk names the
// keys the same way, so the control API refuses such ids instead.
func CollidingID(id string) string {
	switch {
	case strings.ContainsAny(id, "{}"):
		return "contains a brace"
	case strings.HasSuffix(id, sentinelSuffix):
		return "ends in " + sentinelSuffix
	}
	return ""
}

// WindowOptions selects the Tyk rate-limiter variant a Window implements.
type WindowOptions struct {
	// Transactional wraps the window update in MULTI/EXEC, Tyk's default.
	// False sends the same commands as a plain pipeline, as Tyk's
	// enable_non_transactional_rate_limiter does: cheaper, and concurrent
	// requests for one id may then each see a count that misses the other.
	Transactional bool
	// Sentinel is Tyk's enable_sentinel_rate_limiter: a refusal sets
	// SentinelKey(id) for the window's length, and while it exists requests
	// are refused after a single PTTL without touching the window. Requests
	// that are not blocked cost one extra round trip for that PTTL.
	Sentinel bool
	// Now is the clock whose nanoseconds score the window's entries. Nil
	// means time.Now. Gateways sharing a limit need roughly agreeing clocks.
	Now func() time.Time
}

// Window is a sliding-window rate limiter: at most rate requests in any per
// interval, per id. It is safe for concurrent use.
type Window struct {
	client   redis.UniversalClient
	tx       bool
	sentinel bool
	now      func() time.Time
}

// NewWindow returns a Window that keeps its state in client's Redis, a
// single node or a cluster.
func NewWindow(client redis.UniversalClient, o WindowOptions) *Window {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &Window{client: client, tx: o.Transactional, sentinel: o.Sentinel, now: now}
}

// Decision is the outcome of one Window.Allow.
type Decision struct {
	// Allowed is true when the request may proceed.
	Allowed bool
	// Limit is the number of requests allowed per window: the rate rounded
	// down. It is 0 when the request was unlimited.
	Limit int
	// Remaining is how many more requests the window takes after this one.
	Remaining int
	// Reset is how long until the oldest counted request leaves the window
	// or, for a request refused by the sentinel, until the sentinel expires.
	// It is positive whenever the request is refused.
	Reset time.Duration
}

// Allow counts one request for id against rate requests per per and tells
// whether it may proceed. A rate or per of zero or less (or a rate of 2³¹ or
// more) means no limit, and Redis is not contacted. A fractional rate allows its whole part, so a rate
// below one refuses everything, as Tyk does. A refused request is not
// counted. On a Redis error Allow returns the zero Decision and the error.
func (w *Window) Allow(ctx context.Context, id string, rate float64, per time.Duration) (Decision, error) {
	limit, limited := windowLimit(rate)
	if !limited || per <= 0 {
		return Decision{Allowed: true}, nil
	}
	if w.sentinel {
		blocked, err := w.client.PTTL(ctx, SentinelKey(id)).Result()
		if err != nil {
			return Decision{}, wrap("sentinel", err)
		}
		if blocked > 0 {
			return Decision{Limit: limit, Reset: blocked}, nil
		}
	}

	key := WindowKey(id)
	now := w.now().UnixNano()
	member := uniqueMember(now)
	var pipe redis.Pipeliner
	if w.tx {
		pipe = w.client.TxPipeline()
	} else {
		pipe = w.client.Pipeline()
	}
	pipe.ZRemRangeByScore(ctx, key, "-inf", strconv.FormatInt(now-int64(per), 10))
	counted := pipe.ZCard(ctx, key)
	pipe.ZAdd(ctx, key, redis.Z{Score: float64(now), Member: member})
	pipe.PExpire(ctx, key, redisTTL(per))
	oldest := pipe.ZRangeWithScores(ctx, key, 0, 0)
	if _, err := pipe.Exec(ctx); err != nil {
		return Decision{}, wrap("window", err)
	}

	count := counted.Val()
	reset := untilLeaves(oldest.Val(), now, per)
	if count < int64(limit) {
		return Decision{Allowed: true, Limit: limit, Remaining: limit - int(count) - 1, Reset: reset}, nil
	}

	// Refused. Block first, so that other gateways stop at once even if
	// the clean-up below fails.
	if w.sentinel {
		if err := w.client.SetNX(ctx, SentinelKey(id), 1, redisTTL(per)).Err(); err != nil {
			return Decision{}, wrap("sentinel", err)
		}
		reset = per
	}
	// Take the refused request out again: counting it would let a client
	// that keeps retrying keep its own window full for ever.
	if err := w.client.ZRem(ctx, key, member).Err(); err != nil {
		return Decision{}, wrap("window", err)
	}
	return Decision{Limit: limit, Reset: reset}, nil
}

// Reset forgets id's window and lifts its sentinel block.
func (w *Window) Reset(ctx context.Context, id string) error {
	// Two commands, not one DEL: the keys live in different hash slots.
	if err := w.client.Del(ctx, WindowKey(id)).Err(); err != nil {
		return wrap("reset", err)
	}
	if err := w.client.Del(ctx, SentinelKey(id)).Err(); err != nil {
		return wrap("reset", err)
	}
	return nil
}

// windowLimit turns Tyk's float rate into a whole number of requests, and
// reports false for rates that do not limit (zero, negative, NaN, or too
// large to count).
func windowLimit(rate float64) (int, bool) {
	if !(rate > 0) || rate >= math.MaxInt32 {
		return 0, false
	}
	return int(rate), true
}

// uniqueMember names a request in the window: its time, so that the set
// reads like Tyk's, plus a random suffix, because two gateways may count a
// request for the same id in the same nanosecond.
func uniqueMember(now int64) string {
	var buf [48]byte
	b := strconv.AppendInt(buf[:0], now, 10)
	b = append(b, '-')
	b = strconv.AppendUint(b, rand.Uint64(), 36)
	return string(b)
}

// untilLeaves is how long until the oldest entry leaves the window. Scores
// are float64, exact to about 256ns at today's Unix nanoseconds, so the
// result is clamped to stay positive.
func untilLeaves(oldest []redis.Z, now int64, per time.Duration) time.Duration {
	if len(oldest) == 0 {
		return per
	}
	return max(time.Duration(int64(oldest[0].Score)-now)+per, time.Nanosecond)
}

// redisTTL rounds d up to whole milliseconds, the resolution of PX and
// PEXPIRE, so that a key never expires before the time it stands for.
func redisTTL(d time.Duration) time.Duration {
	if d > math.MaxInt64-time.Millisecond {
		return d.Truncate(time.Millisecond)
	}
	return max((d + time.Millisecond - 1).Truncate(time.Millisecond), time.Millisecond)
}

func wrap(op string, err error) error {
	return fmt.Errorf("rate limit %s: %w", op, err)
}
