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
	key := QuotaKey(id)
	// MULTI/EXEC, not a plain pipeline: otherwise the counter could expire
	// between SET NX and INCR, and INCR would recreate it without a TTL.
	pipe := q.client.TxPipeline()
	if renewal > 0 {
		pipe.SetNX(ctx, key, 0, redisTTL(renewal))
	}
	incr := pipe.Incr(ctx, key)
	pttl := pipe.PTTL(ctx, key)
	if _, err := pipe.Exec(ctx); err != nil {
		return QuotaDecision{}, wrap("quota", err)
	}
	ttl := pttl.Val()
	if renewal > 0 && ttl == -1 {
		// The counter has no TTL: it was started while the renewal was zero
		// (or written by someone else). Start a period now rather than let
		// it refuse for ever.
		ttl = redisTTL(renewal)
		if err := q.client.PExpire(ctx, key, ttl).Err(); err != nil {
			return QuotaDecision{}, wrap("quota", err)
		}
	}
	return q.decide(quotaMax, incr.Val(), true, ttl), nil
}

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
