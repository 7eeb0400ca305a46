package specs_test

import (
	"context"
	"net/http"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/gateway/event"
	"github.com/tollgate/tollgate/gateway/limit"
	"github.com/tollgate/tollgate/specs"
)

// The rate limiter is chosen in tyk.conf with Tyk 5's settings. Each of
// them is described here by what a client sees, through one gateway and
// through two gateways sharing one store.
var _ = Describe("Choosing the rate limiter", Label("limits", "ratelimit"), func() {
	var (
		env *specs.Env
		key string
	)

	// callOrders sends one keyed request through inst and returns its status.
	callOrders := func(inst *specs.Instance) int {
		GinkgoHelper()
		return inst.Get("/orders/", "Authorization", key).StatusCode
	}
	// statuses sends n keyed requests through inst.
	statuses := func(inst *specs.Instance, n int) []int {
		GinkgoHelper()
		var out []int
		for range n {
			out = append(out, callOrders(inst))
		}
		return out
	}
	const (
		ok      = http.StatusOK
		limited = http.StatusTooManyRequests
	)

	// startWith starts a gateway with this tyk.conf and a key allowed 2
	// requests per 10 s.
	startWith := func(tykConf string) {
		GinkgoHelper()
		env = specs.NewEnv(specs.WithConfig(tykConf), specs.WithAPI(keyedAPI("orders", "/orders/")))
		key = env.IssueKey(grantTo("orders", `"rate": 2, "per": 10`))
	}

	When("tyk.conf chooses none (the default: GCRA, as go-redis/redis_rate)", func() {
		BeforeEach(func() { startWith(`{"secret": "s"}`) })

		It("serves rate requests at once and answers the next with 429 Rate Limit Exceeded", func() {
			Expect(statuses(env.Instance, 2)).To(Equal([]int{ok, ok}))
			expectGatewayError(env.Get("/orders/", "Authorization", key), limited, chain.CauseRateLimited, "Rate Limit Exceeded")
		})

		It("then serves one request every per/rate seconds", func() {
			statuses(env.Instance, 3)
			env.Clock.Advance(5 * time.Second)
			Expect(statuses(env.Instance, 2)).To(Equal([]int{ok, limited}))
			env.Clock.Advance(5 * time.Second)
			Expect(statuses(env.Instance, 2)).To(Equal([]int{ok, limited}))
		})

		It("keeps one key per API key in Redis, rate-limit-{quota-<key>}.gcra, however busy the key", func(ctx SpecContext) {
			statuses(env.Instance, 5)
			Expect(env.Redis.Exists(ctx, limit.GCRAKey(key)).Val()).To(Equal(int64(1)))
			Expect(env.Redis.Exists(ctx, limit.WindowKey(key)).Val()).To(BeZero(), "no sliding log")
		}, SpecTimeout(5*time.Second))

		It("shares the limit between two gateways on the same store", func() {
			other := env.StartGateway()
			Expect([]int{callOrders(env.Instance), callOrders(other), callOrders(env.Instance), callOrders(other)}).
				To(Equal([]int{ok, ok, limited, limited}))
		})

		It("fires RateLimitExceeded for a refused request", func(ctx SpecContext) {
			events := subscribeTo(env.Instance, event.RateLimitExceeded)
			statuses(env.Instance, 3)
			Eventually(events).WithContext(ctx).Should(Receive())
		}, SpecTimeout(5*time.Second))
	})

	When("enable_non_transactional_rate_limiter is on by itself", func() {
		It("keeps the default limiter: the setting changes only the rolling limiter", func(ctx SpecContext) {
			startWith(`{"secret": "s", "enable_non_transactional_rate_limiter": true}`)
			Expect(statuses(env.Instance, 3)).To(Equal([]int{ok, ok, limited}))
			Expect(env.Redis.Exists(ctx, limit.GCRAKey(key)).Val()).To(Equal(int64(1)))
			Expect(env.Redis.Exists(ctx, limit.WindowKey(key)).Val()).To(BeZero())
		}, SpecTimeout(5*time.Second))
	})

	When("enable_fixed_window_rate_limiter is on", func() {
		BeforeEach(func() { startWith(`{"secret": "s", "enable_fixed_window_rate_limiter": true}`) })

		It("serves rate requests per window and answers the rest of the window with 429", func() {
			Expect(statuses(env.Instance, 2)).To(Equal([]int{ok, ok}))
			env.Clock.Advance(9 * time.Second)
			expectGatewayError(env.Get("/orders/", "Authorization", key), limited, chain.CauseRateLimited, "Rate Limit Exceeded")
		})

		It("starts a new window per seconds after the first request of the last", specs.SimulatedOnly("a window ends when its key's TTL runs out, and a real Redis's clock cannot be moved"), func() {
			statuses(env.Instance, 3)
			env.Clock.Advance(10 * time.Second)
			Expect(statuses(env.Instance, 3)).To(Equal([]int{ok, ok, limited}))
		})

		It("counts in Redis under rate-limit-{quota-<key>}.fixed", func(ctx SpecContext) {
			statuses(env.Instance, 2)
			Expect(env.Redis.Get(ctx, limit.FixedWindowKey(key)).Val()).To(Equal("2"))
		}, SpecTimeout(5*time.Second))

		It("shares the window between two gateways on the same store", func() {
			other := env.StartGateway()
			Expect([]int{callOrders(env.Instance), callOrders(other), callOrders(env.Instance), callOrders(other)}).
				To(Equal([]int{ok, ok, limited, limited}))
		})
	})

	When("enable_redis_rolling_limiter is on", func() {
		BeforeEach(func() { startWith(`{"secret": "s", "enable_redis_rolling_limiter": true}`) })

		It("never serves more than rate requests in any per seconds", func() {
			Expect(callOrders(env.Instance)).To(Equal(ok))
			env.Clock.Advance(6 * time.Second)
			Expect(callOrders(env.Instance)).To(Equal(ok))
			env.Clock.Advance(3 * time.Second)
			Expect(callOrders(env.Instance)).To(Equal(limited), "two requests in the last 9 s")
			env.Clock.Advance(2 * time.Second)
			Expect(statuses(env.Instance, 2)).To(Equal([]int{ok, limited}), "the first request has left the window, the second has not")
		})

		It("shares the window between two gateways on the same store", func() {
			other := env.StartGateway()
			Expect([]int{callOrders(env.Instance), callOrders(other), callOrders(env.Instance), callOrders(other)}).
				To(Equal([]int{ok, ok, limited, limited}))
		})
	})

	When("enable_redis_rolling_limiter and enable_non_transactional_rate_limiter are on", func() {
		It("limits as the transactional rolling limiter does, in a plain pipeline", func(ctx SpecContext) {
			startWith(`{"secret": "s", "enable_redis_rolling_limiter": true, "enable_non_transactional_rate_limiter": true}`)
			Expect(statuses(env.Instance, 3)).To(Equal([]int{ok, ok, limited}))
			Expect(env.Redis.ZCard(ctx, limit.WindowKey(key)).Val()).To(Equal(int64(2)))
		}, SpecTimeout(5*time.Second))
	})

	When("enable_sentinel_rate_limiter is on", func() {
		BeforeEach(func() { startWith(`{"secret": "s", "enable_sentinel_rate_limiter": true}`) })

		It("uses the rolling limiter: a key over its limit is refused on the other gateway too, for the rest of the window", func() {
			other := env.StartGateway()
			statuses(env.Instance, 3)
			env.Clock.Advance(9 * time.Second)
			Expect(callOrders(other)).To(Equal(limited))
		})
	})

	When("a key has a rate limit and a quota", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithAPI(keyedAPI("orders", "/orders/")))
			key = env.IssueKey(grantTo("orders", `"rate": 1, "per": 60, "quota_max": 3, "quota_renewal_rate": 3600`))
		})

		It("does not charge the quota for requests the rate limit refused", func(ctx SpecContext) {
			Expect(statuses(env.Instance, 4)).To(Equal([]int{ok, limited, limited, limited}))
			Expect(env.Redis.Get(ctx, limit.QuotaKey(key)).Val()).To(Equal("1"))
		}, SpecTimeout(5*time.Second))

		It("answers 403 Quota exceeded once the quota is spent, and fires QuotaExceeded", func(ctx SpecContext) {
			events := subscribeTo(env.Instance, event.QuotaExceeded)
			for range 3 {
				Expect(callOrders(env.Instance)).To(Equal(ok))
				env.Clock.Advance(time.Minute)
			}
			expectGatewayError(env.Get("/orders/", "Authorization", key), http.StatusForbidden, chain.CauseQuotaExceeded, "Quota exceeded")
			Eventually(events).WithContext(ctx).Should(Receive())
		}, SpecTimeout(5*time.Second))

		It("shares both between two gateways on the same store", func() {
			other := env.StartGateway()
			Expect(callOrders(env.Instance)).To(Equal(ok))
			Expect(callOrders(other)).To(Equal(limited))
			env.Clock.Advance(time.Minute)
			Expect(callOrders(other)).To(Equal(ok))
			env.Clock.Advance(time.Minute)
			Expect(callOrders(env.Instance)).To(Equal(ok))
			env.Clock.Advance(time.Minute)
			Expect(callOrders(other)).To(Equal(http.StatusForbidden))
		})
	})
})

// A busy key's requests are taken from the store a share at a time (see the
// README's rate-limit section): what a client sees of its limits does not
// change, and what the store counts catches up at the latest when the
// gateway shuts down.
var _ = Describe("A busy key's limits taken a share at a time (limits_credit_percent)", Label("limits", "quota"), func() {
	const busy = `"rate": 1000000, "per": 1, "quota_max": 1000, "quota_renewal_rate": 3600`

	// serve sends n keyed requests through inst, each of which must pass.
	serve := func(inst *specs.Instance, key string, n int) {
		GinkgoHelper()
		for range n {
			Expect(inst.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
		}
	}
	quotaCounted := func(ctx SpecContext, env *specs.Env, key string) string {
		GinkgoHelper()
		return env.Redis.Get(ctx, limit.QuotaKey(key)).Val()
	}

	It("counts in the store every request a gateway served, once it has shut down", func(ctx SpecContext) {
		env := specs.NewEnv(specs.WithConfig(`{"secret": "s"}`), specs.WithAPI(keyedAPI("orders", "/orders/")))
		key := env.IssueKey(grantTo("orders", busy))
		other := env.StartGateway()
		serve(other, key, 100)
		Expect(quotaCounted(ctx, env, key)).NotTo(Equal("100"), "a share taken ahead")
		Expect(other.Gateway.Shutdown(ctx)).To(Succeed())
		Expect(quotaCounted(ctx, env, key)).To(Equal("100"))
	}, SpecTimeout(30*time.Second))

	It("answers X-RateLimit-Remaining one less each request, as when every request asks the store", func() {
		env := specs.NewEnv(specs.WithConfig(`{"secret": "s", "rate_limit_response_headers": "quotas"}`), specs.WithAPI(keyedAPI("orders", "/orders/")))
		key := env.IssueKey(grantTo("orders", busy))
		var remaining []string
		for range 20 {
			remaining = append(remaining, env.Get("/orders/", "Authorization", key).Header.Get("X-RateLimit-Remaining"))
		}
		want := make([]string, 20)
		for i := range want {
			want[i] = strconv.Itoa(999 - i)
		}
		Expect(remaining).To(Equal(want))
	})

	It("drops what it holds of a key another gateway's control API reset, with the notification of the change", func(ctx SpecContext) {
		env := specs.NewEnv(specs.WithConfig(`{"secret": "s", "rate_limit_response_headers": "quotas"}`), specs.WithAPI(keyedAPI("orders", "/orders/")))
		key := env.IssueKey(grantTo("orders", busy))
		other := env.StartGateway()
		serve(other, key, 64) // quota shares of 1, 2, 4, 8, then 10 (1% of 1000): one held
		// A PUT without suppress_reset starts the key's quota afresh; this
		// one also narrows the key to /a, so that the other gateway shows
		// when it has the change.
		narrowed := `{"access_rights": {"orders": {"api_id": "orders", "api_name": "orders", "versions": [],
		  "allowed_urls": [{"url": "/a", "methods": ["GET"]}]}}, "org_id": "org1", ` + busy + `}`
		Expect(env.Control(env.Instance, http.MethodPut, "/tyk/keys/"+key, narrowed).StatusCode).To(Equal(http.StatusOK))
		Eventually(func() int {
			return other.Get("/orders/b", "Authorization", key).StatusCode
		}).WithContext(ctx).Should(Equal(http.StatusForbidden))
		Expect(other.Get("/orders/a", "Authorization", key).Header.Get("X-RateLimit-Remaining")).To(Equal("999"))
	}, SpecTimeout(30*time.Second))

	It("holds a share only for keys in use: a key no request came for within its second leaves the gateway, its quota given back", func(ctx SpecContext) {
		// enable_http_profiler serves /metrics.
		env := specs.NewEnv(specs.WithConfig(`{"secret": "s", "enable_http_profiler": true}`), specs.WithAPI(keyedAPI("orders", "/orders/")))
		keys := make([]string, 20)
		for i := range keys {
			keys[i] = env.IssueKey(grantTo("orders", busy))
			serve(env.Instance, keys[i], 4) // shares of 1, 2, then 2: one held
		}
		Expect(scrape(env, env.Instance).value("tollgate_limit_share_keys")).To(Equal(20.0))
		env.Clock.Advance(2 * time.Second) // past every share's second
		Eventually(func() float64 {
			return scrape(env, env.Instance).value("tollgate_limit_share_keys")
		}).WithContext(ctx).WithTimeout(5 * time.Second).Should(BeZero())
		// The quota goes back just after the key leaves the book.
		Eventually(func() []string {
			var counted []string
			for _, key := range keys {
				counted = append(counted, quotaCounted(ctx, env, key))
			}
			return counted
		}).WithContext(ctx).WithTimeout(5*time.Second).Should(HaveEach("4"), "the requests served, nothing held")
	}, SpecTimeout(30*time.Second))

	It("asks the store about every request with limits_credit_percent 0", func(ctx SpecContext) {
		env := specs.NewEnv(specs.WithConfig(`{"secret": "s", "limits_credit_percent": 0}`), specs.WithAPI(keyedAPI("orders", "/orders/")))
		key := env.IssueKey(grantTo("orders", busy))
		serve(env.Instance, key, 20)
		Expect(quotaCounted(ctx, env, key)).To(Equal("20"))
	}, SpecTimeout(30*time.Second))

	It("refuses the request past quota_max through two gateways, having let exactly quota_max through", func() {
		env := specs.NewEnv(specs.WithConfig(`{"secret": "s"}`), specs.WithAPI(keyedAPI("orders", "/orders/")))
		key := env.IssueKey(grantTo("orders", `"rate": 1000000, "per": 1, "quota_max": 300, "quota_renewal_rate": 3600`))
		other := env.StartGateway()
		serve(other, key, 200)
		Expect(other.Gateway.Shutdown(context.Background())).To(Succeed())
		serve(env.Instance, key, 100)
		expectGatewayError(env.Get("/orders/", "Authorization", key), http.StatusForbidden, chain.CauseQuotaExceeded, "Quota exceeded")
	})
})
