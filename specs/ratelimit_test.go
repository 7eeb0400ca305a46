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

var _ = Describe("Rate limiting", Label("ratelimit"), func() {
	var (
		env *specs.Env
		key string
	)

	// callOrders sends one keyed request and returns the response.
	callOrders := func(inst *specs.Instance) specs.Response {
		GinkgoHelper()
		return inst.Get("/orders/", "Authorization", key)
	}

	When("a key allows 3 requests per 60 seconds", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithAPI(keyedAPI("orders", "/orders/")))
			key = env.IssueKey(grantTo("orders", `"rate": 3, "per": 60`))
		})

		It("serves the first 3", func() {
			for range 3 {
				Expect(callOrders(env.Instance).StatusCode).To(Equal(http.StatusOK))
			}
		})

		It("answers the 4th with 429 Rate Limit Exceeded", func() {
			for range 3 {
				callOrders(env.Instance)
			}
			expectGatewayError(callOrders(env.Instance), http.StatusTooManyRequests, chain.CauseRateLimited, "Rate Limit Exceeded")
		})

		It("reports the limit, what is left and when the whole limit is available again in X-RateLimit headers", func() {
			resp := callOrders(env.Instance)
			Expect(resp.Header.Get("X-RateLimit-Limit")).To(Equal("3"))
			Expect(resp.Header.Get("X-RateLimit-Remaining")).To(Equal("2"))
			// One request's share of the limit, per/rate, comes back after 20 s.
			Expect(resp.Header.Get("X-RateLimit-Reset")).To(Equal(strconv.FormatInt(env.Clock.Now().Add(20*time.Second).Unix(), 10)))
		})

		It("serves again once the window has slid past the first requests", func() {
			for range 3 {
				callOrders(env.Instance)
			}
			env.Clock.Advance(61 * time.Second)
			Expect(callOrders(env.Instance).StatusCode).To(Equal(http.StatusOK))
		})

		// Tyk #1876: refused requests were added to the window, so a client
		// that kept retrying while limited stayed locked out for good.
		It("does not count refused requests, so a client that keeps retrying is let in once the window slides", func() {
			for range 3 {
				callOrders(env.Instance)
			}
			for range 20 {
				Expect(callOrders(env.Instance).StatusCode).To(Equal(http.StatusTooManyRequests))
				env.Clock.Advance(time.Second)
			}
			env.Clock.Advance(41 * time.Second)
			Expect(callOrders(env.Instance).StatusCode).To(Equal(http.StatusOK))
		})

		It("keeps the key's state in Redis under rate-limit-{quota-<key>}.gcra, in the quota's hash slot", func(ctx SpecContext) {
			callOrders(env.Instance)
			Expect(env.Redis.Exists(ctx, limit.GCRAKey(key)).Val()).To(Equal(int64(1)))
		}, SpecTimeout(5*time.Second))

		It("shares the limit between two gateways on the same cluster", func() {
			other := env.StartGateway()
			callOrders(env.Instance)
			callOrders(other)
			callOrders(env.Instance)
			Expect(callOrders(other).StatusCode).To(Equal(http.StatusTooManyRequests))
		})
	})

	// Regression: the proxy added the upstream's X-RateLimit-* to the
	// gateway's, so clients got two values of each.
	When("the upstream sends X-RateLimit headers of its own", func() {
		It("sends only the gateway's, once each", func() {
			upstream := startScriptedUpstream()
			env = specs.NewEnv(specs.WithAPI(cachedAPI("orders", "/orders/", upstream.URL, true, `{"enable_cache": false}`)))
			key = env.IssueKey(grantTo("orders", `"rate": 3, "per": 60`))
			resp := env.Get("/orders/?ratelimit=1", "Authorization", key)
			Expect(resp.Header.Values("X-RateLimit-Limit")).To(ConsistOf("3"))
			Expect(resp.Header.Values("X-RateLimit-Remaining")).To(ConsistOf("2"))
			Expect(resp.Header.Values("X-RateLimit-Reset")).To(HaveLen(1))
		})
	})

	When("the Redis rolling limiter is on (enable_redis_rolling_limiter) and a key allows 3 requests per 60 seconds", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithConfig(`{"secret": "s", "enable_redis_rolling_limiter": true}`), specs.WithAPI(keyedAPI("orders", "/orders/")))
			key = env.IssueKey(grantTo("orders", `"rate": 3, "per": 60`))
		})

		It("reports when the oldest request leaves the window in X-RateLimit-Reset", func() {
			resp := callOrders(env.Instance)
			Expect(resp.Header.Get("X-RateLimit-Remaining")).To(Equal("2"))
			Expect(resp.Header.Get("X-RateLimit-Reset")).To(Equal(strconv.FormatInt(env.Clock.Now().Add(60*time.Second).Unix(), 10)))
		})

		It("keeps the window in Redis under rate-limit-<key>, one member per request", func(ctx SpecContext) {
			callOrders(env.Instance)
			callOrders(env.Instance)
			Expect(env.Redis.ZCard(ctx, limit.WindowKey(key)).Val()).To(Equal(int64(2)))
		}, SpecTimeout(5*time.Second))
	})

	When("the sentinel rate limiter is on", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithConfig(`{"secret": "s", "enable_sentinel_rate_limiter": true}`), specs.WithAPI(keyedAPI("orders", "/orders/")))
			key = env.IssueKey(grantTo("orders", `"rate": 2, "per": 10`))
			for range 3 {
				callOrders(env.Instance)
			}
		})

		It("blocks the key for the whole window once it went over", func() {
			env.Clock.Advance(9 * time.Second)
			Expect(callOrders(env.Instance).StatusCode).To(Equal(http.StatusTooManyRequests))
		})

		It("marks the block in Redis under rate-limit-<key>.BLOCKED", func(ctx SpecContext) {
			Expect(env.Redis.Exists(ctx, limit.SentinelKey(key)).Val()).To(Equal(int64(1)))
		}, SpecTimeout(5*time.Second))

		It("lifts the block when the window has passed", specs.SimulatedOnly("the block ends when its Redis TTL runs out, and a real Redis's clock cannot be moved"), func() {
			env.Clock.Advance(11 * time.Second)
			Expect(callOrders(env.Instance).StatusCode).To(Equal(http.StatusOK))
		})
	})

	When("the key has no rate (rate 0)", func() {
		It("is not limited", func() {
			env = specs.NewEnv(specs.WithAPI(keyedAPI("orders", "/orders/")))
			key = env.IssueKey(grantTo("orders"))
			for range 10 {
				Expect(callOrders(env.Instance).StatusCode).To(Equal(http.StatusOK))
			}
		})
	})

	When("the node holding the key's rate-limit window is down", specs.SimulatedOnly("kills a simulated node; the real tier kills a real master in its failover spec"), func() {
		It("lets the request through rather than fail the API, and logs why", func() {
			env = specs.NewEnv(specs.WithAPI(keyedAPI("orders", "/orders/")))
			// A key whose session and rate-limit window are on different
			// nodes, so only the limiter loses its store.
			for {
				key = env.IssueKey(grantTo("orders", `"rate": 1, "per": 60`))
				if env.Cluster.NodeForKey(limit.GCRAKey(key)) != env.Cluster.NodeForKey("apikey-"+key) {
					break
				}
			}
			node := env.Cluster.NodeForKey(limit.GCRAKey(key))
			node.Kill()
			DeferCleanup(node.Restart)
			Expect(callOrders(env.Instance).StatusCode).To(Equal(http.StatusOK))
			Expect(env.Logs()).To(ContainSubstring("rate limit not applied: store unavailable"))
		})
	})
})

var _ = Describe("Quotas", Label("quota", "ratelimit"), func() {
	var (
		env *specs.Env
		key string
	)

	When("a key may make 2 requests per hour", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithAPI(keyedAPI("orders", "/orders/")))
			key = env.IssueKey(grantTo("orders", `"quota_max": 2, "quota_renewal_rate": 3600`))
		})

		It("serves 2 and answers the 3rd with 403 Quota exceeded", func() {
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
			expectGatewayError(env.Get("/orders/", "Authorization", key), http.StatusForbidden, chain.CauseQuotaExceeded, "Quota exceeded")
		})

		It("counts in Redis under quota-<key>, expiring at the renewal", func(ctx SpecContext) {
			env.Get("/orders/", "Authorization", key)
			Expect(env.Redis.Get(ctx, limit.QuotaKey(key)).Val()).To(Equal("1"))
			Expect(env.Redis.TTL(ctx, limit.QuotaKey(key)).Val()).To(Equal(time.Hour))
		}, SpecTimeout(5*time.Second))

		It("serves again after quota_renewal_rate seconds", specs.SimulatedOnly("renewal is quota-<key>'s TTL running out in Redis, and a real Redis's clock cannot be moved"), func() {
			for range 3 {
				env.Get("/orders/", "Authorization", key)
			}
			env.Clock.Advance(time.Hour)
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
		})

		It("shares the count between two gateways on the same cluster", func() {
			other := env.StartGateway()
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
			Expect(other.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
			Expect(other.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusForbidden))
		})
	})
})
