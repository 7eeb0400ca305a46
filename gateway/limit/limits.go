package limit

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

var errReply = errors.New("unexpected reply")

// Rate is what a key's session asks of the limits for one request.
type Rate struct {
	// Rate requests per Per; see Window.Allow for what does not limit.
	Rate float64
	Per  time.Duration
	// QuotaMax requests per QuotaRenewal; zero or less means no quota.
	QuotaMax     int64
	QuotaRenewal time.Duration
}

// Outcome is what Limits.Check decided, each limit with its own error so
// that a caller can fail open on one and still apply the other.
type Outcome struct {
	Rate    Decision
	RateErr error
	// QuotaCounted is false when the quota was not asked for (no QuotaMax)
	// or could not travel with the rate limit (see Limits.Check); the
	// caller then counts it itself with Quota.Consume.
	QuotaCounted bool
	Quota        QuotaDecision
	QuotaErr     error
}

// Algorithm names a rate limiter of Limits.
type Algorithm int

const (
	// AlgorithmGCRA is GCRA: one key and one script call per request.
	AlgorithmGCRA Algorithm = iota
	// AlgorithmFixedWindow is FixedWindow: one counter per window.
	AlgorithmFixedWindow
	// AlgorithmRollingLog is Window, Tyk's sliding log.
	AlgorithmRollingLog
)

// Limits applies a key's rate limit and quota together. With GCRA or the
// fixed window both travel in one pipeline: one round trip on a single
// node, and on a cluster one per node involved, sent concurrently by
// go-redis. The rolling log keeps its own MULTI/EXEC (or, non-transactional,
// its extra clean-up round trip on a refusal), so with it the quota is
// left to the caller. It is safe for concurrent use.
type Limits struct {
	client redis.UniversalClient
	quota  *Quota
	// rate is the GCRA's or the fixed window's queue; nil with the log.
	rate rateQueue
	log  *Window
	// gcra and credit are set for the GCRA with a Credit; then
	// giveBackLoop runs until Close stops it (stopLoop) and waits for it
	// (loopDone).
	gcra      *GCRA
	credit    *credit
	stopLoop  context.CancelFunc
	loopDone  chan struct{}
	closeOnce sync.Once
}

// LimitsOptions chooses Limits' rate limiter.
type LimitsOptions struct {
	Algorithm Algorithm
	// Window configures the rolling log (AlgorithmRollingLog only).
	Window WindowOptions
	// Now is the clock of the GCRA and the rolling log; nil means time.Now.
	Now func() time.Time
	// Credit is the percentage of a busy key's rate limit and quota a
	// gateway may take from the store at once (see DefaultCredit); 0 asks
	// the store for every request. GCRA only.
	Credit float64
}

// NewLimits returns the limits of keys stored in client's Redis, counting
// quotas with quota.
func NewLimits(client redis.UniversalClient, quota *Quota, o LimitsOptions) *Limits {
	l := &Limits{client: client, quota: quota}
	switch o.Algorithm {
	case AlgorithmFixedWindow:
		l.rate = NewFixedWindow(client).queue
	case AlgorithmRollingLog:
		if o.Window.Now == nil {
			o.Window.Now = o.Now
		}
		l.log = NewWindow(client, o.Window)
	default:
		l.gcra = NewGCRA(client, o.Now)
		l.rate = l.gcra.queue
		if o.Credit > 0 {
			now := o.Now
			if now == nil {
				now = time.Now
			}
			l.credit = newCredit(min(o.Credit, MaxCredit), now)
			ctx, stop := context.WithCancel(context.Background())
			l.stopLoop, l.loopDone = stop, make(chan struct{})
			go l.giveBackLoop(ctx)
		}
	}
	return l
}

// Allow applies the rate limit alone; see Window.Allow.
func (l *Limits) Allow(ctx context.Context, id string, rate float64, per time.Duration) (Decision, error) {
	o := l.Check(ctx, id, Rate{Rate: rate, Per: per})
	return o.Rate, o.RateErr
}

// RefundQuota takes back a request Check counted against id's quota
// (counted is Check's quota decision); see Quota.Refund.
func (l *Limits) RefundQuota(ctx context.Context, id string, counted QuotaDecision) error {
	if counted.fromCredit && l.credit.giveBack(id, counted) {
		return nil
	}
	return l.quota.Refund(ctx, id, counted)
}

// Check decides id's rate limit and, when r has a quota and the algorithm
// allows, counts its quota in the same round trip. A quota counted for a
// request the rate limit refuses is the caller's to Refund, so that a
// refused request costs no quota (as when the quota is checked after the
// rate limit).
func (l *Limits) Check(ctx context.Context, id string, r Rate) Outcome {
	limit, limited := windowLimit(r.Rate)
	if !limited || r.Per <= 0 {
		return Outcome{Rate: Decision{Allowed: true}}
	}
	if l.log != nil {
		d, err := l.log.Allow(ctx, id, r.Rate, r.Per)
		return Outcome{Rate: d, RateErr: err}
	}
	if l.credit != nil {
		return l.checkWithCredit(ctx, id, limit, r)
	}
	pipe := l.client.Pipeline()
	rate := l.rate(ctx, pipe, id, limit, r.Per)
	var quota func(context.Context) (QuotaDecision, error)
	if r.QuotaMax > 0 {
		quota = l.quota.queue(ctx, pipe, id, r.QuotaMax, r.QuotaRenewal)
	}
	_, _ = pipe.Exec(ctx) // the commands carry their errors
	var o Outcome
	o.Rate, o.RateErr = rate(ctx)
	if quota != nil {
		o.QuotaCounted = true
		o.Quota, o.QuotaErr = quota(ctx)
	}
	return o
}

// checkWithCredit is Check for the GCRA with a Credit: what the book holds
// serves the request without a round trip; what it does not is asked of
// the store, a share at once when the key is busy.
func (l *Limits) checkWithCredit(ctx context.Context, id string, limit int, r Rate) Outcome {
	quotaMax := max(r.QuotaMax, 0)
	p := l.credit.take(id, limit, r.Per, quotaMax, r.QuotaRenewal)
	if p.owed > 0 {
		// Quota this gateway took and let expire unused goes back. Should
		// the store not take it, the client loses that much, as with a
		// gateway that crashed holding it; the request goes on.
		refund := l.quota.refund
		if p.owedUnsure {
			refund = l.quota.refundSamePeriod
		}
		_ = refund(ctx, id, p.owedRenews, p.owed)
	}
	var o Outcome
	var (
		rate  func(context.Context) (Decision, int64, error)
		quota func(context.Context) (QuotaDecision, int64, error)
	)
	pipe := l.client.Pipeline()
	if p.rateLocal {
		o.Rate = p.rate
	} else {
		rate = l.gcra.lease(ctx, pipe, id, limit, r.Per, p.rateWant)
	}
	if quotaMax > 0 {
		o.QuotaCounted = true
		if p.quotaLocal {
			o.Quota = p.quota
		} else {
			quota = l.quota.lease(ctx, pipe, id, quotaMax, r.QuotaRenewal, p.quotaWant)
		}
	}
	if rate == nil && quota == nil {
		return o
	}
	_, _ = pipe.Exec(ctx) // the commands carry their errors
	if rate != nil {
		d, taken, err := rate(ctx)
		o.Rate, o.RateErr = d, err
		switch {
		case err != nil:
			l.credit.unbusy(id, p, true, false)
		case p.rateLease:
			l.credit.settleRate(id, p, d, taken)
			if taken > 1 {
				o.Rate.Remaining = min(d.Remaining+int(taken-1), limit-1)
			}
		}
	}
	if quota != nil {
		d, taken, err := quota(ctx)
		o.Quota, o.QuotaErr = d, err
		switch {
		case err != nil:
			l.credit.unbusy(id, p, false, true)
		case p.quotaLease:
			back, gone := l.credit.settleQuota(id, p, d, taken)
			// What did not fit under the quota was no request: only the
			// first, refused, counts, as without credit; left counted,
			// the rest would take up what other gateways give back.
			back += p.quotaWant - max(taken, 1)
			if back > 0 {
				refund := l.quota.refund
				if gone {
					// The key changed elsewhere, perhaps with a reset.
					refund = l.quota.refundSamePeriod
				}
				_ = refund(ctx, id, d.Renews, back)
			}
			if taken > 0 {
				o.Quota.fromCredit = true
				o.Quota.Remaining = d.Remaining + taken - 1
			}
		}
	}
	return o
}

// Close gives back to the store the quota this gateway took and has not
// handed out (see Credit), so that other gateways can serve it; it is the
// one thing Limits holds. It returns the store's errors.
func (l *Limits) Close(ctx context.Context) error {
	if l.credit == nil {
		return nil
	}
	var err error
	l.closeOnce.Do(func() {
		l.stopLoop()
		<-l.loopDone
		err = giveBackAll(ctx, l.quota, l.credit.drain(), nil)
	})
	return err
}

// giveBackLoop gives back, every creditHold, the quota held unused past
// its second for keys no request came for since, so that a gateway the
// client left (a load balancer moved it elsewhere) does not keep it until
// the period renews or the gateway stops. What the store certainly did
// not take (an error reply, no connection, Close ending the round) is kept
// for the next round or Close; what may have reached it is not sent twice.
// It ends when ctx does.
func (l *Limits) giveBackLoop(ctx context.Context) {
	defer close(l.loopDone)
	tick := time.NewTicker(creditHold)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		owed := l.credit.expired()
		if len(owed) == 0 {
			continue
		}
		roundCtx, cancel := context.WithTimeout(ctx, 2*creditHold)
		_ = giveBackAll(roundCtx, l.quota, owed, l.credit.reowe)
		cancel()
	}
}

// ShareKeys is how many keys hold a share on this gateway (see Credit): at
// most 16,384, and a key no request came for within its share's second
// leaves within another; 0 without a credit.
func (l *Limits) ShareKeys() int {
	if l.credit == nil {
		return 0
	}
	return l.credit.size()
}

// Forget drops what this gateway holds of id's limits (see Credit), as
// another gateway reset or changed them; the store's state stays.
func (l *Limits) Forget(id string) {
	if l.credit != nil {
		l.credit.release(id)
	}
}

// Reset forgets id's rate-limit state, whichever algorithm made it: every
// gateway on the store may not use the same one.
func (l *Limits) Reset(ctx context.Context, id string) error {
	if l.credit != nil {
		l.credit.forget(id)
	}
	// One DEL per key: the keys live in different hash slots.
	for _, key := range []string{WindowKey(id), SentinelKey(id), GCRAKey(id), FixedWindowKey(id)} {
		if err := l.client.Del(ctx, key).Err(); err != nil {
			return wrap("reset", err)
		}
	}
	return nil
}
