package limit

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Credit is how much of a busy key's limits one gateway may take from the
// store at once and hand out itself, as a percentage of the limit: with
// the default of 1, a key allowed 100,000 requests a second lets a gateway
// take up to 1,000 of them in one script call, and a quota of 1,000,000
// lets it count up to 10,000 in one INCRBY. Below two requests' worth (a
// rate or quota under 200 with the default) every request asks the store,
// exactly as with no credit.
//
// The share a gateway asks for follows its own traffic: a key starts at one
// request per round trip and doubles while what it took runs out before
// it expires, and halves when it expires unused, up to the percentage. What
// it took is good for one second at most, never past the rate's per or the
// quota's period. So:
//
//   - a gateway never lets through what the store did not grant: every
//     request was counted in the store before it was let through;
//   - a rate limit lets through at most the share of one second more in a
//     window than without credit (what was taken at the end of one window
//     and used at the start of the next), and never more than the limit's
//     percentage per gateway holding some;
//   - what one gateway holds is not available to another for up to a
//     second: a client that moves between gateways at its limit may be
//     refused up to the percentage early, per gateway;
//   - quota a gateway took and did not use goes back to the store: with the
//     next request for the key once the second is over, within another
//     second when none comes (Limits' one goroutine), and at Close.
//
// The rolling log, the sentinel and the fixed window take no credit: the
// first two are there for their exactness, the last is Tyk's.
const DefaultCredit = 1.0

// MaxCredit is the largest Credit percentage Limits takes.
const MaxCredit = 10.0

const (
	// creditHold is how long what a gateway took stays good at most.
	creditHold = time.Second
	// creditKeys bounds the keys the book holds state for; past it, new
	// keys ask the store for every request until the sweep frees room.
	creditKeys = 1 << 14
	// creditSweepEvery is how often at most a full book looks for room.
	creditSweepEvery = time.Second
)

// credit is the book of what this gateway took from the store and has not
// handed out yet, per key id. It starts no goroutine; Close gives back the
// quota it holds.
type credit struct {
	percent float64
	now     func() time.Time

	mu    sync.Mutex
	keys  map[string]*creditEntry
	swept time.Time
	// leases numbers the leases taken, so that an answer settles only the
	// state that asked for it (not one a reset or a change of the key's
	// limits replaced meanwhile).
	leases uint64
	// closed: drained by Close; no more credit is taken.
	closed bool
}

func newCredit(percent float64, now func() time.Time) *credit {
	return &credit{percent: percent, now: now, keys: make(map[string]*creditEntry)}
}

// share is the most a lease of limit may take; below 2, no credit.
func (c *credit) share(limit int64) int64 {
	return int64(float64(limit) * c.percent / 100)
}

type creditEntry struct {
	rate  rateCredit
	quota quotaCredit
}

// rateCredit is what a gateway holds of one key's rate limit.
type rateCredit struct {
	limit int
	per   time.Duration
	left  int64
	until time.Time
	// size is what the next lease asks for; busy while one is in flight.
	size int64
	busy bool
	// lease numbers the lease in flight (see credit.leases).
	lease uint64
	// remaining and reset are the store's answer to the last lease, for the
	// X-RateLimit headers of the requests served from it.
	remaining int
	reset     time.Time
}

// quotaCredit is what a gateway holds of one key's quota.
type quotaCredit struct {
	max     int64
	renewal time.Duration
	left    int64
	until   time.Time
	// renews is the end of the period the held requests were counted in
	// (zero: the counter never renews).
	renews    time.Time
	size      int64
	busy      bool
	lease     uint64
	remaining int64
	// owed is what expired unused, to be given back to the store.
	owed       int64
	owedRenews time.Time
	// owedUnsure: the key changed elsewhere since, perhaps with a reset, so
	// what is owed goes back only to a counter of the period it was counted
	// in (see Quota.refundSamePeriod).
	owedUnsure bool
}

// plan is what Limits.Check does for one request, decided under the lock.
type plan struct {
	// entry is the book's entry the leases were taken for, and rateSeq and
	// quotaSeq the leases' numbers.
	entry    *creditEntry
	rateSeq  uint64
	quotaSeq uint64
	// rateLocal: the request's rate was served from the book (rate holds
	// its decision); otherwise rateWant is what to ask the store for.
	rateLocal bool
	rate      Decision
	rateWant  int64
	rateLease bool
	// The same for the quota.
	quotaLocal bool
	quota      QuotaDecision
	quotaWant  int64
	quotaLease bool
	// owed is quota to give back to the store first, counted in the period
	// ending at owedRenews.
	owed       int64
	owedRenews time.Time
	owedUnsure bool
}

// take decides what of one request id's book can serve: a rate limit of
// limit per per (limit 0: none) and a quota of quotaMax per renewal (0:
// none).
func (c *credit) take(id string, limit int, per time.Duration, quotaMax int64, renewal time.Duration) plan {
	p := plan{rateWant: 1, quotaWant: 1}
	rateShare := c.share(int64(limit))
	quotaShare := c.share(quotaMax)
	if rateShare < 2 && quotaShare < 2 {
		return p
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return p
	}
	e := c.keys[id]
	if e == nil {
		if len(c.keys) >= creditKeys && !c.sweep(now) {
			return p
		}
		e = &creditEntry{}
		c.keys[id] = e
	}
	p.entry = e
	if rateShare >= 2 {
		r := &e.rate
		if r.limit != limit || r.per != per {
			*r = rateCredit{limit: limit, per: per, size: 1}
		}
		switch {
		case r.left > 0 && now.Before(r.until):
			r.left--
			p.rateLocal = true
			p.rate = Decision{Allowed: true, Limit: limit, Remaining: min(r.remaining+int(r.left), limit-1), Reset: max(r.reset.Sub(now), 0)}
		case r.busy:
			// Another request is taking a lease: this one asks for itself.
		default:
			r.size = nextSize(r.size, r.left, r.until, now, rateShare)
			r.left = 0
			r.busy = true
			c.leases++
			r.lease, p.rateSeq = c.leases, c.leases
			p.rateWant, p.rateLease = min(r.size, rateShare), true
		}
	}
	if quotaShare >= 2 {
		q := &e.quota
		if q.max != quotaMax || q.renewal != renewal {
			if q.left > 0 {
				c.owe(q, q.left)
			}
			owed, owedRenews, owedUnsure := q.owed, q.owedRenews, q.owedUnsure
			*q = quotaCredit{max: quotaMax, renewal: renewal, size: 1, owed: owed, owedRenews: owedRenews, owedUnsure: owedUnsure}
		}
		switch {
		case q.left > 0 && now.Before(q.until):
			q.left--
			p.quotaLocal = true
			p.quota = QuotaDecision{Allowed: true, Max: quotaMax, Remaining: q.remaining + q.left, Renews: q.renews, fromCredit: true}
		case q.busy:
		default:
			q.size = nextSize(q.size, q.left, q.until, now, quotaShare)
			if q.left > 0 {
				c.owe(q, q.left)
			}
			q.busy = true
			c.leases++
			q.lease, p.quotaSeq = c.leases, c.leases
			p.quotaWant, p.quotaLease = min(q.size, quotaShare), true
			p.owed, p.owedRenews, p.owedUnsure = q.owed, q.owedRenews, q.owedUnsure
			q.owed, q.owedUnsure = 0, false
		}
	}
	return p
}

// nextSize is what a key's next lease asks for, after one of size that
// was good until until and has left unused: twice as much when it ran out
// before it expired, half when it expired unused, up to share.
func nextSize(size, left int64, until, now time.Time, share int64) int64 {
	switch {
	case left > 0:
		size /= 2
	case now.Before(until):
		size *= 2
	}
	return min(max(size, 1), share)
}

// owe sets n of q's held quota aside to be given back.
func (c *credit) owe(q *quotaCredit, n int64) {
	if q.owed > 0 && !q.owedRenews.Equal(q.renews) {
		// Older debt is of a period that has ended: nothing to give back.
		q.owed, q.owedUnsure = 0, false
	}
	q.owed += n
	q.owedRenews = q.renews
	q.left = 0
}

// sweep drops the entries that hold nothing, at most once a
// creditSweepEvery, and tells whether there is room now. Called locked.
func (c *credit) sweep(now time.Time) bool {
	if now.Sub(c.swept) >= creditSweepEvery || now.Before(c.swept) {
		c.swept = now
		for id, e := range c.keys {
			idle := !e.rate.busy && !e.quota.busy && e.quota.owed == 0 &&
				(e.rate.left == 0 || !now.Before(e.rate.until)) &&
				(e.quota.left == 0 || (!e.quota.renews.IsZero() && !now.Before(e.quota.renews)))
			if idle {
				delete(c.keys, id)
			}
		}
	}
	return len(c.keys) < creditKeys
}

// settleRate records what the store answered a rate lease of p: taken
// requests' worth (the first is the request's own).
func (c *credit) settleRate(id string, p plan, d Decision, taken int64) {
	c.settle(id, p, func(e *creditEntry, now time.Time) {
		r := &e.rate
		if r.lease != p.rateSeq {
			// The key's rate changed meanwhile: what was taken under the
			// old one is not this state's to hand out.
			return
		}
		r.busy = false
		if taken < 1 {
			r.size = 1 // at the limit: exact again
		}
		r.left = max(taken-1, 0)
		r.until = now.Add(min(r.per, creditHold))
		r.remaining = d.Remaining
		r.reset = now.Add(d.Reset)
	})
}

// settleQuota records what the store answered a quota lease of p, and
// returns how many of the requests taken the book does not hold and must
// go back to the store now: those taken for a quota that changed meanwhile,
// for a key changed elsewhere or reset meanwhile (gone: they go back only
// to a counter of the period they were counted in, see
// Quota.refundSamePeriod), or after Close.
func (c *credit) settleQuota(id string, p plan, d QuotaDecision, taken int64) (back int64, gone bool) {
	switch c.settle(id, p, func(e *creditEntry, now time.Time) {
		q := &e.quota
		if q.lease != p.quotaSeq {
			back = max(taken-1, 0)
			return
		}
		if q.left > 0 {
			// Given back (RefundQuota) while the lease was in flight.
			c.owe(q, q.left)
		}
		q.busy = false
		if taken < 1 {
			q.size = 1
		}
		q.left = max(taken-1, 0)
		q.renews = d.Renews
		q.until = now.Add(creditHold)
		if !d.Renews.IsZero() && d.Renews.Before(q.until) {
			q.until = d.Renews
		}
		q.remaining = d.Remaining
	}) {
	case settleClosed:
		back = max(taken-1, 0)
	case settleGone:
		back, gone = max(taken-1, 0), true
	}
	return back, gone
}

// unbusy clears what take marked in flight for p's rate or quota lease,
// one the store did not answer (its requests' worth, if it took any, stays
// counted there), so that the key's next request may take a share again.
func (c *credit) unbusy(id string, p plan, rate, quota bool) {
	c.settle(id, p, func(e *creditEntry, _ time.Time) {
		if rate && p.rateLease && e.rate.lease == p.rateSeq {
			e.rate.busy = false
		}
		if quota && p.quotaLease && e.quota.lease == p.quotaSeq {
			e.quota.busy = false
		}
	})
}

type settled int

const (
	settledEntry settled = iota // f ran on p's entry
	settleGone                  // the entry was dropped meanwhile (a reset)
	settleClosed                // the book was drained by Close
)

// settle runs f on p's entry, if the book still holds it.
func (c *credit) settle(id string, p plan, f func(*creditEntry, time.Time)) settled {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch e := c.keys[id]; {
	case c.closed:
		return settleClosed
	case e == nil || e != p.entry:
		return settleGone
	default:
		f(e, now)
		return settledEntry
	}
}

// giveBack returns one request of quota the book handed out (counted) to
// it, for a request the rate limit refused; false when the book no longer
// holds that period's quota for id, and the store must take it back.
func (c *credit) giveBack(id string, counted QuotaDecision) bool {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.keys[id]
	if e == nil || e.quota.max != counted.Max || !e.quota.renews.Equal(counted.Renews) || !now.Before(e.quota.until) {
		return false
	}
	e.quota.left++
	return true
}

// release drops what the book holds for id, as the key changed on another
// gateway: perhaps its limits, perhaps its counters were reset. The quota
// it held of a period that renews is set aside, to go back with the key's
// next request or at Close only to a counter still of that period: a key
// changed without a reset (suppress_reset=1, or a session its JS changed)
// must not lose it, and one reset must not get it twice.
func (c *credit) release(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.keys[id]
	if e == nil {
		return
	}
	q := e.quota
	if q.left > 0 {
		c.owe(&q, q.left)
	}
	n := &creditEntry{}
	if q.owed > 0 && !q.owedRenews.IsZero() {
		n.quota = quotaCredit{owed: q.owed, owedRenews: q.owedRenews, owedUnsure: true}
	}
	c.keys[id] = n
}

// expired takes out of the book the quota held past its second for keys no
// request has come for since, with what they owe, and drops the entries
// left holding nothing: the caller gives it back. Entries with a lease in
// flight are left to it.
func (c *credit) expired() map[string][]owedQuota {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string][]owedQuota)
	for id, e := range c.keys {
		r, q := &e.rate, &e.quota
		if r.busy || q.busy {
			continue
		}
		if q.left > 0 && !now.Before(q.until) {
			c.owe(q, q.left)
		}
		if q.owed > 0 {
			out[id] = append(out[id], owedQuota{n: q.owed, renews: q.owedRenews, unsure: q.owedUnsure})
			q.owed, q.owedUnsure = 0, false
		}
		// A key whose shares both ran out and expired is forgotten; one
		// still within its second keeps its entry, and with it the size
		// of its next share.
		if q.left == 0 && !now.Before(r.until) && !now.Before(q.until) {
			delete(c.keys, id)
		}
	}
	return out
}

// reowe puts back what a give-back could not return, for the next one.
func (c *credit) reowe(id string, o owedQuota) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	e := c.keys[id]
	if e == nil {
		e = &creditEntry{}
		c.keys[id] = e
	}
	q := &e.quota
	if q.owed > 0 && !q.owedRenews.Equal(o.renews) {
		return // it owes another period's already; this one's ends first
	}
	q.owed += o.n
	q.owedRenews = o.renews
	q.owedUnsure = q.owedUnsure || o.unsure
}

// size is how many keys the book holds.
func (c *credit) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.keys)
}

// forget drops what the book holds for id, as its counters are reset.
func (c *credit) forget(id string) {
	c.mu.Lock()
	delete(c.keys, id)
	c.mu.Unlock()
}

// drain empties the book and returns the quota it held, per id, with the
// end of the period it was counted in.
func (c *credit) drain() map[string][]owedQuota {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string][]owedQuota)
	for id, e := range c.keys {
		q := e.quota
		if q.owed > 0 {
			out[id] = append(out[id], owedQuota{n: q.owed, renews: q.owedRenews, unsure: q.owedUnsure})
		}
		if q.left > 0 {
			out[id] = append(out[id], owedQuota{n: q.left, renews: q.renews})
		}
	}
	clear(c.keys)
	c.closed = true
	return out
}

type owedQuota struct {
	n      int64
	renews time.Time
	unsure bool
}

// giveBackAll sends every request of quota in owed back to the store,
// calling unsent (when not nil) with each the store certainly did not
// take: one whose answer was lost may have been taken, and sent again it
// would be given back twice, so it is dropped, as a crashed gateway's.
func giveBackAll(ctx context.Context, q *Quota, owed map[string][]owedQuota, unsent func(string, owedQuota)) error {
	var errs []error
	for id, list := range owed {
		for _, o := range list {
			refund := q.refund
			if o.unsure {
				refund = q.refundSamePeriod
			}
			err := ctx.Err()
			if err == nil {
				err = refund(ctx, id, o.renews, o.n)
				if err != nil && !notSent(err) {
					errs = append(errs, err)
					continue
				}
			}
			if err != nil {
				errs = append(errs, err)
				if unsent != nil {
					unsent(id, o)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// notSent tells whether err, a refund's, shows that the store did not run
// it: an error reply, or no connection to send it on. Any other error (a
// timeout, a connection lost) may have come after the store ran it.
func notSent(err error) bool {
	var reply redis.Error
	var op *net.OpError
	return errors.As(err, &reply) || errors.As(err, &op) && op.Op == "dial" ||
		errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrPoolExhausted) || errors.Is(err, redis.ErrClosed)
}
