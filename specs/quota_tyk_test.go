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

	// Tyk 5.14 fills X-RateLimit-* from the quota by default
	// (rate_limit_response_headers "quotas", internal/rate/headers.go), and
	// only on answers that reached the upstream or the cache; with
	// "rate_limits" it fills them from the rate limit, on every answer the
	// rate limit saw. tollgate always does the latter, which Tyk offers as
	// an option: the names are those of rate-limit headers, and a client
	// refused with 429 needs X-RateLimit-Reset to know when to retry.
	// GET /tyk/keys/{key} reports the quota (quota_remaining, quota_renews).
	When("a key has a rate limit and a quota of 2 per hour", func() {
		var key string
		BeforeEach(func() {
			key = env.IssueKey(grantTo("orders", `"rate": 100, "per": 60, "quota_max": 2, "quota_renewal_rate": 3600`))
		})

		It(`reports the rate limit, not the quota, in X-RateLimit-* on proxied answers (differs from Tyk TestQuotaResponseHeaders "key without policy", whose 2 and 1 are the quota's)`, func() {
			resp := env.Get("/orders/", "Authorization", key)
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(resp.Header.Get("X-RateLimit-Limit")).To(Equal("100"))
			Expect(resp.Header.Get("X-RateLimit-Remaining")).To(Equal("99"))
		})

		It(`reports the rate limit in X-RateLimit-* on the 403 Quota exceeded too (differs from Tyk TestQuotaHeadersOnErrorResponses, which sends none there)`, func() {
			env.Get("/orders/", "Authorization", key)
			env.Get("/orders/", "Authorization", key)
			resp := env.Get("/orders/", "Authorization", key)
			expectGatewayError(resp, http.StatusForbidden, chain.CauseQuotaExceeded, "Quota exceeded")
			Expect(resp.Header.Get("X-RateLimit-Limit")).To(Equal("100"))
			Expect(resp.Header.Get("X-RateLimit-Remaining")).To(Equal("97"))
		})
	})

	When("a key has a quota and no rate limit", func() {
		It("sends no X-RateLimit-* on the 403 Quota exceeded, as Tyk does (mirrors Tyk TestQuotaHeadersOnErrorResponses)", func() {
			key := env.IssueKey(grantTo("orders", `"quota_max": 1, "quota_renewal_rate": 60`))
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
			resp := env.Get("/orders/", "Authorization", key)
			Expect(resp.StatusCode).To(Equal(http.StatusForbidden))
			Expect(resp.Header.Values("X-RateLimit-Limit")).To(BeEmpty())
			Expect(resp.Header.Values("X-RateLimit-Remaining")).To(BeEmpty())
		})
	})
})
