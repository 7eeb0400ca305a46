package limit

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

const fixedSuffix = ".fixed"

// FixedWindowKey is the Redis key counting id's requests in the current
// fixed window, rate-limit-{quota-<id>}.fixed: in the quota's hash slot,
// like GCRAKey.
func FixedWindowKey(id string) string { return besideQuota(id, fixedSuffix) }

// FixedWindow is Tyk's fixed window rate limiter
// (enable_fixed_window_rate_limiter): a counter per id that the first
// request of a window starts with a TTL of per, so at most rate requests
// are let through until it expires. Each request costs one pipelined round
// trip of three commands, whatever the rate. Across the end of one window
// and the start of the next a client can get up to twice rate through in a
// short time. Refused requests count too: the window ends on time however
// often a client retries, so they cannot lock it out (Tyk #1876 cannot
// happen here). It is safe for concurrent use.
type FixedWindow struct {
	client redis.UniversalClient
}

// NewFixedWindow returns a FixedWindow that keeps its counters in client's
// Redis, a single node or a cluster.
func NewFixedWindow(client redis.UniversalClient) *FixedWindow {
	return &FixedWindow{client: client}
}

// Allow counts one request for id against rate requests per per. A rate or
// per of zero or less (or 2³¹ or more) means no limit; a fractional rate
// allows its whole part. Reset is how long until the window ends.
func (f *FixedWindow) Allow(ctx context.Context, id string, rate float64, per time.Duration) (Decision, error) {
	return allowAlone(ctx, f.client, f.queue, id, rate, per)
}

// rateQueue adds a rate limiter's commands for id to pipe and returns what
// decides once pipe has run (FixedWindow.queue, GCRA.queue).
type rateQueue func(ctx context.Context, pipe redis.Pipeliner, id string, limit int, per time.Duration) func(context.Context) (Decision, error)

// allowAlone decides id's rate limit with queue's commands in a pipeline
// of their own: a rate or per of zero or less (or 2³¹ or more) means no
// limit, and Redis is not asked.
func allowAlone(ctx context.Context, client redis.UniversalClient, queue rateQueue, id string, rate float64, per time.Duration) (Decision, error) {
	limit, limited := windowLimit(rate)
	if !limited || per <= 0 {
		return Decision{Allowed: true}, nil
	}
	pipe := client.Pipeline()
	decide := queue(ctx, pipe, id, limit, per)
	_, _ = pipe.Exec(ctx) // the commands carry their errors
	return decide(ctx)
}

func (f *FixedWindow) queue(ctx context.Context, pipe redis.Pipeliner, id string, limit int, per time.Duration) func(context.Context) (Decision, error) {
	key := FixedWindowKey(id)
	used, ttl := queueCounter(ctx, pipe, key, per, 1)
	return func(ctx context.Context) (Decision, error) {
		n, left, err := counted(ctx, f.client, key, used, ttl, per)
		if err != nil {
			return Decision{}, wrap("fixed window", err)
		}
		left = max(left, time.Nanosecond)
		if n > int64(limit) {
			return Decision{Limit: limit, Reset: left}, nil
		}
		return Decision{Allowed: true, Limit: limit, Remaining: limit - int(n), Reset: left}, nil
	}
}

// Reset forgets id's count.
func (f *FixedWindow) Reset(ctx context.Context, id string) error {
	if err := f.client.Del(ctx, FixedWindowKey(id)).Err(); err != nil {
		return wrap("reset", err)
	}
	return nil
}

// queueCounter adds to pipe the commands that count n more at key, a
// counter that starts with a TTL of period (none when period is zero or
// less): SET NX, INCR (INCRBY for n other than 1) and PTTL. They are one key's, so one node's, and run
// in order; they are not a transaction, so that they can share a pipeline
// with other keys' commands on a cluster (see counted for the one race).
func queueCounter(ctx context.Context, pipe redis.Pipeliner, key string, period time.Duration, n int64) (*redis.IntCmd, *redis.DurationCmd) {
	if period > 0 {
		pipe.SetNX(ctx, key, 0, redisTTL(period))
	}
	var used *redis.IntCmd
	if n == 1 {
		used = pipe.Incr(ctx, key)
	} else {
		used = pipe.IncrBy(ctx, key, n)
	}
	return used, pipe.PTTL(ctx, key)
}

// counted reads what queueCounter's commands answered: the count and the
// time left. Should the counter have expired between SET NX and INCR, INCR
// made a new one without a TTL; such a counter (or one started while the
// period was zero, or written by someone else) gets the period now, in one
// more round trip, rather than count for ever.
func counted(ctx context.Context, client redis.UniversalClient, key string, used *redis.IntCmd, pttl *redis.DurationCmd, period time.Duration) (int64, time.Duration, error) {
	if err := used.Err(); err != nil {
		return 0, 0, err
	}
	if err := pttl.Err(); err != nil {
		return 0, 0, err
	}
	ttl := pttl.Val()
	if period > 0 && ttl == -1 {
		ttl = redisTTL(period)
		if err := client.PExpire(ctx, key, ttl).Err(); err != nil {
			return 0, 0, err
		}
	}
	return used.Val(), ttl, nil
}
