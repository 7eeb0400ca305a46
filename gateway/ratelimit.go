package gateway

import (
	"net/http"
	"strconv"
	"time"

	"github.com/tollgate/tollgate/gateway/limit"
)

// rateLimit applies the session's rate and per: a sliding window per key
// in Redis, shared by every gateway on the same store. A request over the
// limit gets 429. If Redis cannot be reached the request is let through
// and the failure logged: a limiter outage must not become an API outage.
type rateLimit struct {
	gw     *Gateway
	window *limit.Window
}

var _ step = (*rateLimit)(nil)

func (rl *rateLimit) serve(c *call) bool {
	if c.ignored || c.session.Rate <= 0 || c.session.Per <= 0 {
		return true
	}
	per := time.Duration(c.session.Per * float64(time.Second))
	d, err := rl.window.Allow(c.r.Context(), c.keyID, c.session.Rate, per)
	if err != nil {
		rl.gw.log.Warn("rate limit not applied: store unavailable", "api_id", c.api.def.APIID, "key_hash", c.keyHash(), "error", err)
		return true
	}
	h := c.w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(d.Limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(d.Remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(c.now.Add(d.Reset).Unix(), 10))
	if !d.Allowed {
		writeError(c.w, http.StatusTooManyRequests, CauseRateLimited, msgRateLimited)
		return false
	}
	return true
}

// transactionalLimiter tells whether the window is updated in MULTI/EXEC:
// yes unless tyk.conf or the API turns the non-transactional limiter on.
func (g *Gateway) transactionalLimiter(def *APIDefinition) bool {
	return !g.cfg.EnableNonTransactionalRateLimiter && !def.EnableNonTransactionalRateLimiter
}
