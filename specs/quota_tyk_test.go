package specs_test

import (
	"net/http"
	"strconv"
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
	// only on answers that passed the quota; with "rate_limits" it fills
	// them from the rate limit, on every answer the rate limit saw.
	// tollgate's default is the latter: the names are those of rate-limit
	// headers, and a client refused with 429 needs X-RateLimit-Reset to
	// know when to retry. "quotas" gives Tyk's default.
	When("a key has a rate limit and a quota of 2 per hour, and rate_limit_response_headers is absent", func() {
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

		It(`reports the rate limit in X-RateLimit-* on the 403 Quota exceeded too, as Tyk's "rate_limits" does`, func() {
			env.Get("/orders/", "Authorization", key)
			env.Get("/orders/", "Authorization", key)
			resp := env.Get("/orders/", "Authorization", key)
			expectGatewayError(resp, http.StatusForbidden, chain.CauseQuotaExceeded, "Quota exceeded")
			Expect(resp.Header.Get("X-RateLimit-Limit")).To(Equal("100"))
			Expect(resp.Header.Get("X-RateLimit-Remaining")).To(Equal("97"))
		})
	})

	When("a key has a quota and no rate limit", func() {
		It("sends no X-RateLimit-* on the 403 Quota exceeded: there is no rate limit to report", func() {
			key := env.IssueKey(grantTo("orders", `"quota_max": 1, "quota_renewal_rate": 60`))
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
			resp := env.Get("/orders/", "Authorization", key)
			Expect(resp.StatusCode).To(Equal(http.StatusForbidden))
			Expect(resp.Header.Values("X-RateLimit-Limit")).To(BeEmpty())
			Expect(resp.Header.Values("X-RateLimit-Remaining")).To(BeEmpty())
		})
	})

	When(`rate_limit_response_headers is "quotas", Tyk's default`, func() {
		var key string
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithConfig(`{"secret": "s", "rate_limit_response_headers": "quotas"}`), specs.WithAPI(keyedAPI("orders", "/orders/")))
			key = env.IssueKey(grantTo("orders", `"rate": 100, "per": 60, "quota_max": 2, "quota_renewal_rate": 3600`))
		})

		It(`reports the quota's limit, what is left of it and when it renews on proxied answers (mirrors Tyk TestQuotaResponseHeaders "key without policy")`, func() {
			resp := env.Get("/orders/", "Authorization", key)
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(resp.Header.Get("X-RateLimit-Limit")).To(Equal("2"))
			Expect(resp.Header.Get("X-RateLimit-Remaining")).To(Equal("1"))
			Expect(resp.Header.Get("X-RateLimit-Reset")).To(Equal(strconv.FormatInt(env.Clock.Now().Add(time.Hour).Unix(), 10)))
			resp = env.Get("/orders/", "Authorization", key)
			Expect(resp.Header.Get("X-RateLimit-Limit")).To(Equal("2"))
			Expect(resp.Header.Get("X-RateLimit-Remaining")).To(Equal("0"))
		})

		It(`sends no X-RateLimit-* on the 403 Quota exceeded (mirrors Tyk TestQuotaHeadersOnErrorResponses)`, func() {
			env.Get("/orders/", "Authorization", key)
			env.Get("/orders/", "Authorization", key)
			resp := env.Get("/orders/", "Authorization", key)
			expectGatewayError(resp, http.StatusForbidden, chain.CauseQuotaExceeded, "Quota exceeded")
			Expect(resp.Header.Values("X-RateLimit-Limit")).To(BeEmpty())
			Expect(resp.Header.Values("X-RateLimit-Remaining")).To(BeEmpty())
		})

		It("sends no X-RateLimit-* on the 429 Rate Limit Exceeded either, as Tyk's quota headers are not sent there", func() {
			limited := env.IssueKey(grantTo("orders", `"rate": 1, "per": 60, "quota_max": 5, "quota_renewal_rate": 3600`))
			env.Get("/orders/", "Authorization", limited)
			resp := env.Get("/orders/", "Authorization", limited)
			Expect(resp.StatusCode).To(Equal(http.StatusTooManyRequests))
			Expect(resp.Header.Values("X-RateLimit-Limit")).To(BeEmpty())
		})

		It("sends the quota's in place of the upstream's own, once each", func() {
			upstream := startScriptedUpstream()
			env.RegisterAPI(cachedAPI("scripted", "/scripted/", upstream.URL, true, `{"enable_cache": false}`))
			scripted := env.IssueKey(grantTo("scripted", `"quota_max": 2, "quota_renewal_rate": 3600`))
			resp := env.Get("/scripted/?ratelimit=1", "Authorization", scripted)
			Expect(resp.Header.Values("X-RateLimit-Limit")).To(ConsistOf("2"))
			Expect(resp.Header.Values("X-RateLimit-Remaining")).To(ConsistOf("1"))
		})
	})

	It("refuses a rate_limit_response_headers that is neither, naming it", func() {
		_, _, err := gatewayParseConfig(`{"rate_limit_response_headers": "both"}`)
		Expect(err).To(MatchError(ContainSubstring("rate_limit_response_headers")))
	})
})
