package limit

import (
	"context"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

const gcraSuffix = ".gcra"

// GCRAKey is the Redis key of id's GCRA state: the theoretical arrival
// time of its next request. It lives in QuotaKey(id)'s hash slot (see
// besideQuota), rate-limit-{quota-<id>}.gcra.
func GCRAKey(id string) string { return besideQuota(id, gcraSuffix) }

// besideQuota names id's key with suffix so that it hashes to the slot of
// QuotaKey(id): the rate limit and the quota of a request then go to one
// node of a cluster in one pipeline, instead of two nodes. An id with
// braces of its own keeps them, as Tyk's key names do, and gets
// rate-limit-<id><suffix>: the same hash tag as its quota key when id holds
// one, a slot of its own otherwise. Nothing depends on the two sharing a
// slot but speed.
func besideQuota(id, suffix string) string {
	if strings.ContainsAny(id, "{}") {
		return windowPrefix + id + suffix
	}
	return windowPrefix + "{" + QuotaKey(id) + "}" + suffix
}

// gcraScript is go-redis/redis_rate's allowN (itself rwz/redis-gcra's
// perform_gcra_ratelimit.lua) for a cost of one, with two changes: the time
// is the gateway's clock, passed as whole seconds and nanoseconds, instead
// of Redis's TIME, so that gateways and specs share one notion of time with
// the other limiters; and the stored arrival time keeps those two parts, so
// that the nanosecond arithmetic stays exact in Lua's doubles even for a
// key allowed a hundred million requests a second.
//
// The key lives a second longer than it matters, so that a gateway whose
// clock lags the store's a little still finds it.
//
// A third change lets one call take several requests' worth at once (see
// Credit): it takes up to ARGV[5] (1 when absent) as long as the first fits,
// as redis_rate's AllowAtMost does.
//
// KEYS[1] the state; ARGV: now's seconds, now's nanoseconds, the emission
// interval (per/rate) in nanoseconds, the burst (rate), and how many to take
// at most. It answers {taken (0 when refused), remaining after them, reset
// (ns until the full burst is available again), retry (ns until a request
// would be allowed, 0 when this one was)}.
var gcraScript = redis.NewScript(`
local now_s = tonumber(ARGV[1])
local now_ns = tonumber(ARGV[2])
local interval = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local want = tonumber(ARGV[5]) or 1

local ahead = 0
local tat = redis.call("GET", KEYS[1])
if tat then
  local sp = string.find(tat, " ", 1, true)
  local s = sp and tonumber(string.sub(tat, 1, sp - 1))
  local ns = sp and tonumber(string.sub(tat, sp + 1))
  if s and ns then
    ahead = math.max((s - now_s) * 1e9 + (ns - now_ns), 0)
  end
end

local new_ahead = ahead + interval
local allow_at = new_ahead - burst * interval
if allow_at > 0 then
  return {0, 0, string.format("%.0f", ahead), string.format("%.0f", allow_at)}
end

local more = math.min(want - 1, math.floor(-allow_at / interval))
new_ahead = new_ahead + more * interval
local t = now_ns + new_ahead
local carry = math.floor(t / 1e9)
redis.call("SET", KEYS[1], string.format("%.0f %.3f", now_s + carry, t - carry * 1e9),
  "PX", math.ceil(new_ahead / 1e6) + 1000)
return {1 + more, math.floor(-allow_at / interval) - more, string.format("%.0f", new_ahead), "0"}
`)

// GCRA is a generic cell rate limiter, the algorithm of go-redis/redis_rate:
// each id has one key holding the time its next request is due, and every
// request costs one script call whatever the rate. It lets rate requests
// through at once (the burst) and then one every per/rate; it never holds
// more than rate requests' worth of credit. It is safe for concurrent use.
type GCRA struct {
	client redis.UniversalClient
	now    func() time.Time
}

// NewGCRA returns a GCRA that keeps its state in client's Redis, a single
// node or a cluster. now is its clock; nil means time.Now. Gateways sharing
// a limit need roughly agreeing clocks.
func NewGCRA(client redis.UniversalClient, now func() time.Time) *GCRA {
	if now == nil {
		now = time.Now
	}
	return &GCRA{client: client, now: now}
}

// Allow counts one request for id against rate requests per per, as
// Window.Allow does: a rate or per of zero or less (or 2³¹ or more) means no
// limit, a fractional rate allows its whole part, and a refused request is
// not counted. Reset is, for an allowed request, how long until the whole
// burst is available again, and for a refused one how long until the next
// request would be let through.
func (g *GCRA) Allow(ctx context.Context, id string, rate float64, per time.Duration) (Decision, error) {
	return allowAlone(ctx, g.client, g.queue, id, rate, per)
}

// queue adds the script call for id to pipe and returns what decides once
// pipe has run; see lease.
func (g *GCRA) queue(ctx context.Context, pipe redis.Pipeliner, id string, limit int, per time.Duration) func(context.Context) (Decision, error) {
	decide := g.lease(ctx, pipe, id, limit, per, 1)
	return func(ctx context.Context) (Decision, error) {
		d, _, err := decide(ctx)
		return d, err
	}
}

// lease adds the script call for id to pipe, taking up to want requests'
// worth, and returns what decides once pipe has run: the decision for the
// first of them and how many were taken (0 when it was refused). The call
// is an EVALSHA; a store that does not know the script yet answers
// NOSCRIPT, and decide then sends it whole, once.
func (g *GCRA) lease(ctx context.Context, pipe redis.Pipeliner, id string, limit int, per time.Duration, want int64) func(context.Context) (Decision, int64, error) {
	if limit < 1 {
		// Tyk refuses everything below one request; so would the script,
		// but without a burst it cannot say when to retry.
		return func(context.Context) (Decision, int64, error) { return Decision{Reset: per}, 0, nil }
	}
	now := g.now()
	keys := []string{GCRAKey(id)}
	args := []any{now.Unix(), now.Nanosecond(), strconv.FormatFloat(float64(per)/float64(limit), 'f', 3, 64), limit}
	if want > 1 {
		args = append(args, want)
	}
	cmd := gcraScript.EvalSha(ctx, pipe, keys, args...)
	return func(ctx context.Context) (Decision, int64, error) {
		if err := cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			cmd = gcraScript.Eval(ctx, g.client, keys, args...)
		}
		return gcraDecision(cmd, limit)
	}
}

func gcraDecision(cmd *redis.Cmd, limit int) (Decision, int64, error) {
	v, err := cmd.Slice()
	if err != nil {
		return Decision{}, 0, wrap("gcra", err)
	}
	if len(v) != 4 {
		return Decision{}, 0, wrap("gcra", errReply)
	}
	taken, _ := v[0].(int64)
	remaining, _ := v[1].(int64)
	reset, err1 := nanos(v[2])
	retry, err2 := nanos(v[3])
	if err1 != nil || err2 != nil {
		return Decision{}, 0, wrap("gcra", errReply)
	}
	if taken < 1 {
		return Decision{Limit: limit, Reset: max(retry, time.Nanosecond)}, 0, nil
	}
	return Decision{Allowed: true, Limit: limit, Remaining: int(min(max(remaining, 0), int64(limit-1))), Reset: reset}, taken, nil
}

// nanos reads a duration the script answered as a string of nanoseconds.
func nanos(v any) (time.Duration, error) {
	s, _ := v.(string)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	return time.Duration(min(math.Ceil(f), math.MaxInt64)), nil
}

// Reset forgets id's state.
func (g *GCRA) Reset(ctx context.Context, id string) error {
	if err := g.client.Del(ctx, GCRAKey(id)).Err(); err != nil {
		return wrap("reset", err)
	}
	return nil
}
