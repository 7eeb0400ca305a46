package gateway

import (
	"net/http"
	"time"

	"github.com/tollgate/tollgate/gateway/limit"
)

// quota counts the session's requests per quota_renewal_rate seconds in
// Redis (quota-<key>) and refuses those past quota_max with 403. Like the
// rate limit, it lets requests through when Redis cannot be reached.
type quota struct {
	gw    *Gateway
	quota *limit.Quota
}

var _ step = (*quota)(nil)

func (q *quota) serve(c *call) bool {
	if c.ignored || c.session.QuotaMax <= 0 {
		return true
	}
	renewal := time.Duration(c.session.QuotaRenewalRate) * time.Second
	d, err := q.quota.Consume(c.r.Context(), c.keyID, c.session.QuotaMax, renewal)
	if err != nil {
		q.gw.log.Warn("quota not applied: store unavailable", "api_id", c.api.def.APIID, "key_hash", c.keyHash(), "error", err)
		return true
	}
	if !d.Allowed {
		writeError(c.w, http.StatusForbidden, CauseQuotaExceeded, msgQuotaExceeded)
		return false
	}
	return true
}
