package specs_test

import (
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/gateway/limit"
	"github.com/tollgate/tollgate/specs"
)

// Tyk 5.14's RedisQuotaExceeded (gateway/session_manager.go) gives the
// quota counter a TTL only when quota_renewal_rate is above 0: with 0 or
// less it counts for ever. Tyk's test sets the quota as the API's limit in
// access_rights; tollgate has no per-API limits, so these set it on the
// session, which is the same quota for a key of one API.
var _ = Describe("Quotas, as Tyk's tests describe them", Label("quota", "tyk-mirror"), func() {
	var env *specs.Env

	BeforeEach(func() {
		env = specs.NewEnv(specs.WithAPI(keyedAPI("orders", "/orders/")))
	})

	DescribeTable("a quota that never renews",
		func(ctx SpecContext, renewal string) {
			key := env.IssueKey(grantTo("orders", `"quota_max": 1, "quota_renewal_rate": `+renewal))
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
			expectGatewayError(env.Get("/orders/", "Authorization", key), http.StatusForbidden, chain.CauseQuotaExceeded, "Quota exceeded")
			Expect(env.Redis.TTL(ctx, limit.QuotaKey(key)).Val()).To(Equal(time.Duration(-1)), "the counter has no TTL, so nothing renews it")
		},
		Entry(`serves quota_max requests, then answers 403 Quota exceeded, its counter kept without a TTL: quota_renewal_rate 0 (mirrors Tyk TestNeverRenewQuota)`, "0"),
		Entry(`the same with quota_renewal_rate -1, which Tyk's dashboards write for "never" and Tyk treats as 0`, "-1"),
	)
})
