// Package ratelimit is the chain's rate-limit step: the session's rate and
// per, in state per key shared by every gateway on the same store. A
// request over the limit gets 429. If the store cannot be reached the
// request is let through and the failure logged: a limiter outage must not
// become an API outage.
//
// When the key also has a quota, the step counts it in the same round trip
// (see limit.Limits.Check) and leaves the decision on the call for the
// quota step, which stays the one to refuse with 403; a request this step
// refuses has its quota count taken back, so it costs no quota.
package ratelimit

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/gateway/event"
	"github.com/tollgate/tollgate/gateway/limit"
)

// Limiter decides whether one more request of the key id fits its rate,
// counting its quota along when asked; limit.Limits is one.
type Limiter interface {
	Check(ctx context.Context, id string, r limit.Rate) limit.Outcome
	// RefundQuota takes back a quota count Check made.
	RefundQuota(ctx context.Context, id string, counted limit.QuotaDecision) error
}

type step struct {
	limiter Limiter
	events  chain.Publisher
	log     *slog.Logger
	headers bool
}

var _ chain.Step = (*step)(nil)

// New builds the rate-limit step over limiter; a refusal fires
// RateLimitExceeded on events, as Tyk's does. With headers it reports the
// rate limit in X-RateLimit-Limit, -Remaining and -Reset, which then are
// its own (rate_limit_response_headers "rate_limits"); without, the quota
// step may report the quota there.
func New(limiter Limiter, events chain.Publisher, log *slog.Logger, headers bool) chain.Step {
	return &step{limiter: limiter, events: events, log: log, headers: headers}
}

func (s *step) Serve(c *chain.Call) bool {
	if c.Session.Rate <= 0 || c.Session.Per <= 0 {
		return true
	}
	r := limit.Rate{
		Rate:         c.Session.Rate,
		Per:          time.Duration(c.Session.Per * float64(time.Second)),
		QuotaMax:     c.Session.QuotaMax,
		QuotaRenewal: time.Duration(c.Session.QuotaRenewalRate) * time.Second,
	}
	ctx, cancel := c.StoreContext()
	o := s.limiter.Check(ctx, c.KeyID, r)
	cancel()
	if o.QuotaCounted {
		c.Quota = &chain.QuotaCounted{Decision: o.Quota, Err: o.QuotaErr}
	}
	if o.RateErr != nil {
		s.log.Warn("rate limit not applied: store unavailable", "api_id", c.API.APIID, "key_hash", c.KeyHash(), "error", o.RateErr)
		return true
	}
	d := o.Rate
	if s.headers {
		chain.SetLimitHeaders(c.W.Header(), d.Limit, int64(d.Remaining), c.Now.Add(d.Reset).Unix())
	}
	if !d.Allowed {
		if o.QuotaCounted && o.QuotaErr == nil {
			ctx, cancel := c.StoreContext()
			if err := s.limiter.RefundQuota(ctx, c.KeyID, o.Quota); err != nil {
				s.log.Warn("quota not refunded for a rate-limited request: store unavailable", "api_id", c.API.APIID, "key_hash", c.KeyHash(), "error", err)
			}
			cancel()
		}
		s.events.Publish(chain.KeyEvent(c, event.RateLimitExceeded, "Key Rate Limit Exceeded"))
		chain.WriteError(c.W, c.R, http.StatusTooManyRequests, chain.CauseRateLimited, chain.MsgRateLimited)
		return false
	}
	if s.headers {
		c.W = chain.OwnedHeaders(c.W, chain.IsLimitHeader)
	}
	return true
}
