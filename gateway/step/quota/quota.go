// Package quota is the chain's quota step: it counts the session's
// requests per quota_renewal_rate seconds (quota-<key> in Redis) and
// refuses those past quota_max with 403. When the key has a rate limit, the
// rate-limit step has already counted the request in its own round trip
// (chain.Call.Quota) and this step only decides. Like the rate limit, it lets
// requests through when the store cannot be reached.
package quota

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/gateway/event"
	"github.com/tollgate/tollgate/gateway/limit"
)

// Counter counts one request of the key id against quotaMax per renewal
// period; limit.Quota is one.
type Counter interface {
	Consume(ctx context.Context, id string, quotaMax int64, renewal time.Duration) (limit.QuotaDecision, error)
}

type step struct {
	counter Counter
	events  chain.Publisher
	log     *slog.Logger
	headers bool
}

var _ chain.Step = (*step)(nil)

// New builds the quota step over counter; a refusal fires QuotaExceeded
// on events, as Tyk's does. With headers, a request the quota lets
// through is answered with the quota in X-RateLimit-Limit, -Remaining and
// -Reset (0: never), in place of the upstream's (rate_limit_response_headers
// "quotas", as Tyk's quota headers); the 403 has none, as in Tyk.
func New(counter Counter, events chain.Publisher, log *slog.Logger, headers bool) chain.Step {
	return &step{counter: counter, events: events, log: log, headers: headers}
}

func (s *step) Serve(c *chain.Call) bool {
	if c.Session.QuotaMax <= 0 {
		return true
	}
	var (
		d   limit.QuotaDecision
		err error
	)
	if c.Quota != nil {
		// The rate-limit step counted it in its own round trip.
		d, err = c.Quota.Decision, c.Quota.Err
	} else {
		renewal := time.Duration(c.Session.QuotaRenewalRate) * time.Second
		ctx, cancel := c.StoreContext()
		d, err = s.counter.Consume(ctx, c.KeyID, c.Session.QuotaMax, renewal)
		cancel()
	}
	if err != nil {
		s.log.Warn("quota not applied: store unavailable", "api_id", c.API.APIID, "key_hash", c.KeyHash(), "error", err)
		return true
	}
	if !d.Allowed {
		s.events.Publish(chain.KeyEvent(c, event.QuotaExceeded, "Key Quota Limit Exceeded"))
		chain.WriteError(c.W, c.R, http.StatusForbidden, chain.CauseQuotaExceeded, chain.MsgQuotaExceeded)
		return false
	}
	if s.headers {
		var renews int64
		if !d.Renews.IsZero() {
			renews = d.Renews.Unix()
		}
		chain.SetLimitHeaders(c.W.Header(), int(d.Max), d.Remaining, renews)
		c.W = chain.OwnedHeaders(c.W, chain.IsLimitHeader)
	}
	return true
}
