package limit

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

const quotaPrefix = "quota-"

// QuotaKey is the Redis key of id's quota counter, the name Tyk uses.
func QuotaKey(id string) string { return quotaPrefix + id }

// Quota counts requests per renewal period in Redis under QuotaKey(id). It
// is safe for concurrent use.
type Quota struct {
	client redis.UniversalClient
	now    func() time.Time
}

// NewQuota returns a Quota that keeps its counters in client's Redis. now
// is the clock Renews is computed from; nil means time.Now.
func NewQuota(client redis.UniversalClient, now func() time.Time) *Quota {
	if now == nil {
		now = time.Now
	}
	return &Quota{client: client, now: now}
}

// QuotaDecision is the outcome of Quota.Consume or Quota.Peek.
type QuotaDecision struct {
	// Allowed is true when the request may proceed (for Peek: when the next
	// one would).
	Allowed bool
	// Max is the quota the decision was made against; 0 or less means no
	// quota.
	Max int64
	// Remaining is how many requests the quota still takes.
	Remaining int64
	// Renews is when the counter resets; zero when it never does.
	Renews time.Time
	// fromCredit: the request was counted from what this gateway holds
	// (see Credit), and a refund goes back there.
	fromCredit bool
}

// Consume counts one request for id against quotaMax requests per renewal
// and tells whether it may proceed. The first request of a period starts it;
// later requests do not move Renews. A renewal of zero or less means the
// counter never resets. A quotaMax of zero or less means no quota, and Redis
// is not contacted. On a Redis error Consume returns the zero QuotaDecision
// and the error.
func (q *Quota) Consume(ctx context.Context, id string, quotaMax int64, renewal time.Duration) (QuotaDecision, error) {
	if quotaMax <= 0 {
		return QuotaDecision{Allowed: true, Max: quotaMax}, nil
	}
	pipe := q.client.Pipeline()
	decide := q.queue(ctx, pipe, id, quotaMax, renewal)
	_, _ = pipe.Exec(ctx) // the commands carry their errors
	return decide(ctx)
}

// queue adds the commands that count one request for id to pipe, and
// returns what decides once pipe has run. They are a plain pipeline, not
// MULTI/EXEC, so that they can travel with the rate limit's on a cluster,
// where one transaction cannot span two keys' slots; counted repairs the
// one thing a transaction prevented, a counter left without a TTL.
func (q *Quota) queue(ctx context.Context, pipe redis.Pipeliner, id string, quotaMax int64, renewal time.Duration) func(context.Context) (QuotaDecision, error) {
	decide := q.lease(ctx, pipe, id, quotaMax, renewal, 1)
	return func(ctx context.Context) (QuotaDecision, error) {
		d, _, err := decide(ctx)
		return d, err
	}
}

// lease is queue counting up to want requests at once (see Credit): the
// decision is the first one's, and taken how many of them fit under
// quotaMax (0 when the first did not). What did not fit stays counted, as
// a refused request's count does.
func (q *Quota) lease(ctx context.Context, pipe redis.Pipeliner, id string, quotaMax int64, renewal time.Duration, want int64) func(context.Context) (QuotaDecision, int64, error) {
	key := QuotaKey(id)
	used, pttl := queueCounter(ctx, pipe, key, renewal, want)
	return func(ctx context.Context) (QuotaDecision, int64, error) {
		n, ttl, err := counted(ctx, q.client, key, used, pttl, renewal)
		if err != nil {
			return QuotaDecision{}, 0, wrap("quota", err)
		}
		taken := min(max(quotaMax-(n-want), 0), want)
		d := q.decide(quotaMax, n-want+1, true, ttl)
		if taken > 0 {
			// The others taken are the caller's to hand out; they are not
			// remaining for anyone else.
			d.Remaining = max(quotaMax-n, 0)
		}
		return d, taken, nil
	}
}

// refundMargin is how long, past a refund's own deadline, the counter a
// request was counted in must still have to live for the refund to be sent.
const refundMargin = time.Second

// Refund takes back one request Consume counted for id (counted is what it
// decided): one the rate limit refused after its quota was counted in the
// same round trip. A refund may only ever credit the period the request was
// counted in: a DECR that reached the next period's counter would give a
// client one more request there, and a client that floods a key at its
// rate limit has many refunds in flight when a period ends (they took a
// counter of 3 down to -14). So a refund is sent only when the counter
// outlives the refund's deadline (ctx's, or a minute without one) by
// refundMargin; a request refused in the last moments of a period keeps its
// count, which costs the client one request there at most, never the other
// way round. A counter that never renews is always refunded.
func (q *Quota) Refund(ctx context.Context, id string, counted QuotaDecision) error {
	return q.refund(ctx, id, counted.Renews, 1)
}

// refund takes back n requests counted for id in the period that ends at
// renews (zero: a counter that never renews), under Refund's rule.
func (q *Quota) refund(ctx context.Context, id string, renews time.Time, n int64) error {
	if !q.refundable(ctx, renews) {
		return nil
	}
	if err := refundScript.Run(ctx, q.client, []string{QuotaKey(id)}, n).Err(); err != nil {
		return wrap("quota refund", err)
	}
	return nil
}

// refundSamePeriod is refund for what was counted in the period ending at
// renews (not zero) when the counter may have been reset since: it goes
// back only to a counter that still ends then, give or take
// samePeriodSlack, not to one a reset started afresh.
func (q *Quota) refundSamePeriod(ctx context.Context, id string, renews time.Time, n int64) error {
	if renews.IsZero() || !q.refundable(ctx, renews) {
		return nil
	}
	left := renews.Sub(q.now()).Milliseconds()
	if err := refundSamePeriodScript.Run(ctx, q.client, []string{QuotaKey(id)}, n, left, samePeriodSlack.Milliseconds()).Err(); err != nil {
		return wrap("quota refund", err)
	}
	return nil
}

// samePeriodSlack is how far a counter's end may be from the one a refund
// expects for it to be the same period's: round trips apart, where a
// counter a reset started afresh ends a whole renewal later, less the time
// the old period had run.
const samePeriodSlack = time.Second

// refundSamePeriodScript is refundScript for a counter that ends in
// ARGV[2] milliseconds, within ARGV[3].
var refundSamePeriodScript = redis.NewScript(`
local n = tonumber(redis.call("GET", KEYS[1]))
if not n or n <= 0 then
  return 0
end
local ttl = redis.call("PTTL", KEYS[1])
if ttl < 0 or math.abs(ttl - tonumber(ARGV[2])) > tonumber(ARGV[3]) then
  return 0
end
return redis.call("DECRBY", KEYS[1], math.min(n, tonumber(ARGV[1]) or 1))
`)

// refundable tells whether a refund for the period ending at renews, sent
// now with ctx's deadline, certainly reaches that period's counter.
func (q *Quota) refundable(ctx context.Context, renews time.Time) bool {
	if renews.IsZero() {
		return true
	}
	within := time.Minute
	if deadline, ok := ctx.Deadline(); ok {
		within = time.Until(deadline)
	}
	return renews.Sub(q.now()) > within+refundMargin
}

// refundScript takes ARGV[1] off a counter that still exists, down to zero
// at most: one that expired meanwhile has nothing to refund (a DECRBY would
// recreate it, negative and without a TTL).
var refundScript = redis.NewScript(`
local n = tonumber(redis.call("GET", KEYS[1]))
if n and n > 0 then
  return redis.call("DECRBY", KEYS[1], math.min(n, tonumber(ARGV[1]) or 1))
end
return 0
`)

// Peek reports id's quota without consuming any of it, for the control
// API. Allowed tells whether the next request would be let through.
func (q *Quota) Peek(ctx context.Context, id string, quotaMax int64) (QuotaDecision, error) {
	if quotaMax <= 0 {
		return QuotaDecision{Allowed: true, Max: quotaMax}, nil
	}
	key := QuotaKey(id)
	// MULTI/EXEC so that the count and the TTL belong to the same period.
	pipe := q.client.TxPipeline()
	get := pipe.Get(ctx, key)
	pttl := pipe.PTTL(ctx, key)
	_, _ = pipe.Exec(ctx) // GET answers redis.Nil for a fresh id; the commands carry the errors.
	used, err := get.Int64()
	if errors.Is(err, redis.Nil) {
		used, err = 0, nil
	}
	if err == nil {
		err = pttl.Err()
	}
	if err != nil {
		return QuotaDecision{}, wrap("quota peek", err)
	}
	return q.decide(quotaMax, used, false, pttl.Val()), nil
}

// Reset forgets id's count, so that its next request starts a new period.
func (q *Quota) Reset(ctx context.Context, id string) error {
	if err := q.client.Del(ctx, QuotaKey(id)).Err(); err != nil {
		return wrap("quota reset", err)
	}
	return nil
}

// decide turns a counter value into a decision. consumed says whether used
// includes the request being decided (Consume) or not (Peek).
func (q *Quota) decide(quotaMax, used int64, consumed bool, ttl time.Duration) QuotaDecision {
	d := QuotaDecision{Max: quotaMax, Remaining: max(quotaMax-used, 0)}
	if consumed {
		d.Allowed = used <= quotaMax
	} else {
		d.Allowed = used < quotaMax
	}
	if ttl > 0 {
		d.Renews = q.now().Add(ttl)
	}
	return d
}
