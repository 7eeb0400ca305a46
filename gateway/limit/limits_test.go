package limit_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/gateway/limit"
	"github.com/tollgate/tollgate/specs"
)

var _ = Describe("GCRA rate limit, the default", Label("limits"), func() {
	const id = "key-hash-gcra"
	// 3 requests per 30 s: one request's share of the limit, per/rate, is
	// 10 s.
	r := limit.Rate{Rate: 3, Per: 30 * time.Second}
	var (
		env    *Env
		limits *limit.Limits
	)

	BeforeEach(func() {
		env = NewEnv()
		limits = env.NewLimits(limit.AlgorithmGCRA)
	})

	When("an id makes more than rate requests at once", func() {
		It("lets rate of them through, the burst, and refuses the rest", func(ctx SpecContext) {
			Expect(HammerLimits(ctx, limits, id, 10, r)).To(Equal(3))
		}, SpecTimeout(10*time.Second))

		It("counts Remaining down to zero", func(ctx SpecContext) {
			var remaining []int
			for range 3 {
				remaining = append(remaining, Check(ctx, limits, id, r).Rate.Remaining)
			}
			Expect(remaining).To(Equal([]int{2, 1, 0}))
		}, SpecTimeout(10*time.Second))

		It("refuses with Reset the time until one more request would be let through", func(ctx SpecContext) {
			HammerLimits(ctx, limits, id, 3, r)
			env.PassTime(4 * time.Second)
			Expect(Check(ctx, limits, id, r).Rate).To(Equal(limit.Decision{Limit: 3, Reset: 6 * time.Second}))
		}, SpecTimeout(10*time.Second))
	})

	When("the burst is spent", func() {
		BeforeEach(func(ctx SpecContext) {
			HammerLimits(ctx, limits, id, 3, r)
		}, NodeTimeout(10*time.Second))

		It("lets one more request through every per/rate", func(ctx SpecContext) {
			for range 3 {
				env.PassTime(10 * time.Second)
				Expect(HammerLimits(ctx, limits, id, 5, r)).To(Equal(1))
			}
		}, SpecTimeout(10*time.Second))

		It("lets at most 2·rate−1 through in one per, the burst and then the steady rate: the price of keeping no log", func(ctx SpecContext) {
			allowed := 3
			for range 2 {
				env.PassTime(10 * time.Second)
				allowed += HammerLimits(ctx, limits, id, 5, r)
			}
			Expect(allowed).To(Equal(5), "within the 30 s since the burst")
		}, SpecTimeout(10*time.Second))
	})

	When("an id has been quiet for much longer than per", func() {
		It("lets rate through at once and no more: unused requests are not saved up", func(ctx SpecContext) {
			Check(ctx, limits, id, r)
			env.PassTime(time.Hour)
			Expect(HammerLimits(ctx, limits, id, 10, r)).To(Equal(3))
		}, SpecTimeout(10*time.Second))
	})

	// Tyk #1876: refused requests used to count, so a client that kept
	// retrying kept itself locked out.
	When("a client keeps retrying while over the limit", func() {
		It("does not count the refused requests: it gets the next request's share on time", func(ctx SpecContext) {
			Expect(HammerLimits(ctx, limits, id, 50, r)).To(Equal(3))
			env.PassTime(10 * time.Second)
			Expect(Check(ctx, limits, id, r).Rate.Allowed).To(BeTrue())
		}, SpecTimeout(10*time.Second))
	})

	When("the rate is very high", func() {
		It("keeps one small key per id however many requests it counts", func(ctx SpecContext) {
			// A day's worth, so that the key outlives the spec on a real
			// Redis, whose clock runs while the spec's stands still.
			busy := limit.Rate{Rate: 1_000_000, Per: 24 * time.Hour}
			Expect(HammerLimits(ctx, limits, id, 300, busy)).To(Equal(300))
			Expect(env.StoredKeys()).To(ConsistOf(limit.GCRAKey(id)))
			Expect(len(env.Stored(limit.GCRAKey(id)))).To(BeNumerically("<", 40))
		}, SpecTimeout(10*time.Second))

		It("keeps emission intervals below a nanosecond exact", func(ctx SpecContext) {
			// 8 per 2 ns: one every quarter of a nanosecond, so each
			// nanosecond frees four.
			tiny := limit.Rate{Rate: 8, Per: 2 * time.Nanosecond}
			Expect(HammerLimits(ctx, limits, id, 20, tiny)).To(Equal(8))
			env.PassTime(time.Nanosecond)
			Expect(HammerLimits(ctx, limits, id, 20, tiny)).To(Equal(4))
		}, SpecTimeout(10*time.Second))
	})

	When("the rate is fractional", func() {
		It("allows its whole part", func(ctx SpecContext) {
			Expect(HammerLimits(ctx, limits, id, 5, limit.Rate{Rate: 2.9, Per: r.Per})).To(Equal(2))
		}, SpecTimeout(10*time.Second))

		It("refuses everything below one, as Tyk does", func(ctx SpecContext) {
			Expect(HammerLimits(ctx, limits, id, 5, limit.Rate{Rate: 0.5, Per: r.Per})).To(BeZero())
		}, SpecTimeout(10*time.Second))
	})

	It("expires its key a second after the whole burst is available again", specs.SimulatedOnly("waits for a key's TTL to run out, and a real Redis's clock cannot be moved"), func(ctx SpecContext) {
		Check(ctx, limits, id, r)
		env.PassTime(10 * time.Second)
		Expect(env.StoredKeys()).To(ConsistOf(limit.GCRAKey(id)), "a gateway whose clock lags may still need it")
		env.PassTime(time.Second)
		Expect(env.StoredKeys()).To(BeEmpty())
	}, SpecTimeout(10*time.Second))

	When("two gateways use the same cluster through their own clients", func() {
		It("count both gateways' requests against one limit", func(ctx SpecContext) {
			other := limit.NewLimits(env.Connect(), env.NewQuota(), limit.LimitsOptions{Now: env.Now})
			Expect(Check(ctx, limits, id, r).Rate.Allowed).To(BeTrue())
			Expect(Check(ctx, other, id, r).Rate.Allowed).To(BeTrue())
			Expect(Check(ctx, limits, id, r).Rate.Allowed).To(BeTrue())
			Expect(Check(ctx, other, id, r).Rate.Allowed).To(BeFalse())
		}, SpecTimeout(10*time.Second))
	})

	When("the store is a single node behind a plain redis.Client", func() {
		It("gives the same decisions as through the ClusterClient", func(ctx SpecContext) {
			client := env.ConnectToOwner(limit.GCRAKey("single"))
			single := limit.NewLimits(client, limit.NewQuota(client, env.Now), limit.LimitsOptions{Now: env.Now})
			var viaCluster, viaNode []limit.Decision
			for _, step := range []time.Duration{0, 0, 0, 0, 4 * time.Second, 6 * time.Second, 0, time.Minute} {
				env.PassTime(step)
				viaCluster = append(viaCluster, Check(ctx, limits, id, r).Rate)
				viaNode = append(viaNode, Check(ctx, single, "single", r).Rate)
			}
			Expect(viaNode).To(Equal(viaCluster))
		}, SpecTimeout(10*time.Second))
	})

	When("the store does not know the script, after a restart or SCRIPT FLUSH", func() {
		It("sends it whole once and decides as usual", func(ctx SpecContext) {
			Check(ctx, limits, id, r)
			Expect(env.Client.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
				return m.ScriptFlush(ctx).Err()
			})).To(Succeed())
			env.Commands.Forget()
			Expect(Check(ctx, limits, id, r).Rate).To(HaveField("Remaining", 1))
			Expect(env.Commands.Names()).To(Equal([]string{"evalsha", "eval"}))
		}, SpecTimeout(10*time.Second))
	})
})

var _ = Describe("Fixed window rate limit (enable_fixed_window_rate_limiter)", Label("limits"), func() {
	const id = "key-hash-fixed"
	r := limit.Rate{Rate: 3, Per: 10 * time.Second}
	var (
		env    *Env
		limits *limit.Limits
	)

	BeforeEach(func() {
		env = NewEnv()
		limits = env.NewLimits(limit.AlgorithmFixedWindow)
	})

	It("lets rate requests through in a window and refuses the rest", func(ctx SpecContext) {
		Expect(HammerLimits(ctx, limits, id, 10, r)).To(Equal(3))
	}, SpecTimeout(10*time.Second))

	It("counts in one key per id, rate-limit-{quota-<id>}.fixed, whatever the rate", func(ctx SpecContext) {
		HammerLimits(ctx, limits, id, 300, limit.Rate{Rate: 100_000_000, Per: time.Second})
		Expect(env.StoredKeys()).To(ConsistOf(limit.FixedWindowKey(id)))
		Expect(env.Stored(limit.FixedWindowKey(id))).To(Equal("300"))
	}, SpecTimeout(10*time.Second))

	When("the window is over", specs.SimulatedOnly("a window ends when its key's TTL runs out, and a real Redis's clock cannot be moved"), func() {
		It("starts a new one per after the first request of the last, refused requests or not", func(ctx SpecContext) {
			HammerLimits(ctx, limits, id, 3, r)
			env.PassTime(9 * time.Second)
			Expect(HammerLimits(ctx, limits, id, 20, r)).To(BeZero())
			env.PassTime(time.Second)
			Expect(HammerLimits(ctx, limits, id, 10, r)).To(Equal(3))
		}, SpecTimeout(10*time.Second))

		It("can let up to 2·rate through within a moment across the boundary", func(ctx SpecContext) {
			Check(ctx, limits, id, r)
			env.PassTime(9 * time.Second)
			burst := HammerLimits(ctx, limits, id, 10, r)
			env.PassTime(time.Second)
			burst += HammerLimits(ctx, limits, id, 10, r)
			Expect(burst).To(Equal(5), "2 at the end of the first window, 3 at the start of the next")
		}, SpecTimeout(10*time.Second))

		It("reports Reset as the time left in the window", func(ctx SpecContext) {
			Check(ctx, limits, id, r)
			env.PassTime(4 * time.Second)
			Expect(Check(ctx, limits, id, r).Rate.Reset).To(Equal(6 * time.Second))
		}, SpecTimeout(10*time.Second))
	})

	When("two gateways use the same cluster through their own clients", func() {
		It("count both gateways' requests against one limit", func(ctx SpecContext) {
			other := limit.NewLimits(env.Connect(), env.NewQuota(), limit.LimitsOptions{Algorithm: limit.AlgorithmFixedWindow})
			Expect(Check(ctx, limits, id, r).Rate.Allowed).To(BeTrue())
			Expect(Check(ctx, other, id, r).Rate.Allowed).To(BeTrue())
			Expect(Check(ctx, limits, id, r).Rate.Allowed).To(BeTrue())
			Expect(Check(ctx, other, id, r).Rate.Allowed).To(BeFalse())
		}, SpecTimeout(10*time.Second))
	})
})

var _ = Describe("Rate limit and quota in one round trip", Label("limits", "quota"), func() {
	const id = "key-hash-both"
	r := limit.Rate{Rate: 2, Per: 10 * time.Second, QuotaMax: 5, QuotaRenewal: time.Hour}
	var env *Env

	BeforeEach(func() {
		env = NewEnv()
	})

	for _, a := range []struct {
		name      string
		algorithm limit.Algorithm
		rateCmds  []string
	}{
		{"the GCRA", limit.AlgorithmGCRA, []string{"evalsha"}},
		{"the fixed window", limit.AlgorithmFixedWindow, []string{"set", "incr", "pttl"}},
	} {
		When("the rate limiter is "+a.name, func() {
			var limits *limit.Limits

			BeforeEach(func(ctx SpecContext) {
				limits = env.NewLimits(a.algorithm)
				Check(ctx, limits, id, r) // the script is known from now on
				env.Commands.Forget()
			}, NodeTimeout(10*time.Second))

			It("sends both in one pipeline", func(ctx SpecContext) {
				Check(ctx, limits, id, r)
				Expect(env.Commands.RoundTrips()).To(Equal(1))
				Expect(env.Commands.Names()).To(Equal(append(a.rateCmds, "set", "incr", "pttl")))
			}, SpecTimeout(10*time.Second))

			It("counts the quota of every request it asks about", func(ctx SpecContext) {
				o := Check(ctx, limits, id, r)
				Expect(o.QuotaCounted).To(BeTrue())
				Expect(o.Quota).To(HaveField("Remaining", int64(3)))
			}, SpecTimeout(10*time.Second))

			It("takes a refused request's quota back when asked, so that it costs none", func(ctx SpecContext) {
				Check(ctx, limits, id, r)
				o := Check(ctx, limits, id, r)
				Expect(o.Rate.Allowed).To(BeFalse(), "the third request in 10 s")
				Expect(o.Quota.Remaining).To(Equal(int64(2)))
				Expect(limits.RefundQuota(ctx, id, o.Quota)).To(Succeed())
				Expect(env.Stored(limit.QuotaKey(id))).To(Equal("2"), "the two allowed requests")
			}, SpecTimeout(10*time.Second))

			// A refund that reached the next period's counter would give
			// the client a request there: a client that floods its key at
			// the rate limit has many in flight when a period ends.
			It("keeps the count of a request refused when its quota period may end before the refund arrives", func(ctx SpecContext) {
				short := r
				short.QuotaRenewal = 1500 * time.Millisecond
				const other = "key-hash-period-end"
				Check(ctx, limits, other, short)
				Check(ctx, limits, other, short)
				o := Check(ctx, limits, other, short)
				Expect(o.Rate.Allowed).To(BeFalse(), "the third request in 10 s")
				refundCtx, cancel := context.WithTimeout(ctx, time.Second)
				defer cancel()
				// 1.5 s left of the period: less than the refund's 1 s
				// deadline and the 1 s margin.
				Expect(limits.RefundQuota(refundCtx, other, o.Quota)).To(Succeed())
				Expect(env.Stored(limit.QuotaKey(other))).To(Equal("3"))
			}, SpecTimeout(10*time.Second))

			It("never takes a counter below zero, whoever reset it meanwhile", func(ctx SpecContext) {
				Check(ctx, limits, id, r)
				o := Check(ctx, limits, id, r)
				Expect(env.Client.Set(inspect(), limit.QuotaKey(id), 0, time.Hour).Err()).To(Succeed())
				Expect(limits.RefundQuota(ctx, id, o.Quota)).To(Succeed())
				Expect(env.Stored(limit.QuotaKey(id))).To(Equal("0"))
			}, SpecTimeout(10*time.Second))

			It("keeps the rate limit's key in the quota's hash slot, so that both go to one node", func(ctx SpecContext) {
				Expect(slotOf(ctx, env, limit.GCRAKey(id))).To(Equal(slotOf(ctx, env, limit.QuotaKey(id))))
				Expect(slotOf(ctx, env, limit.FixedWindowKey(id))).To(Equal(slotOf(ctx, env, limit.QuotaKey(id))))
			}, SpecTimeout(10*time.Second))

			It("decides the rate limit even when the quota's node is down", specs.SimulatedOnly("kills a simulated node"), func(ctx SpecContext) {
				// An id with braces of its own keeps its keys' names as
				// they are, so its rate limit and quota may be apart.
				other := "key{}apart"
				for env.Cluster.NodeForKey(limit.QuotaKey(other)) == env.Cluster.NodeForKey(limit.GCRAKey(other)) ||
					env.Cluster.NodeForKey(limit.QuotaKey(other)) == env.Cluster.NodeForKey(limit.FixedWindowKey(other)) {
					other += "-"
				}
				env.KillOwner(limit.QuotaKey(other))
				o := limits.Check(shortly(ctx), other, r)
				Expect(o.RateErr).NotTo(HaveOccurred())
				Expect(o.Rate.Allowed).To(BeTrue())
				Expect(o.QuotaErr).To(HaveOccurred())
			}, SpecTimeout(10*time.Second))
		})
	}

	When("the id has a hash tag of its own", func() {
		It("keeps it, so the rate limit's key still shares the quota's slot", func(ctx SpecContext) {
			tagged := "user{42}"
			Expect(limit.GCRAKey(tagged)).To(Equal("rate-limit-user{42}.gcra"))
			Expect(slotOf(ctx, env, limit.GCRAKey(tagged))).To(Equal(slotOf(ctx, env, limit.QuotaKey(tagged))))
		}, SpecTimeout(10*time.Second))
	})

	When("the rate limiter is the rolling log", func() {
		It("leaves the quota to the caller: the log keeps its own MULTI/EXEC", func(ctx SpecContext) {
			o := Check(ctx, env.NewLimits(limit.AlgorithmRollingLog), id, r)
			Expect(o.QuotaCounted).To(BeFalse())
			Expect(env.Commands.Names()).NotTo(ContainElement("incr"))
			Expect(env.Commands.Names()).To(ContainElements("multi", "exec"))
		}, SpecTimeout(10*time.Second))
	})

	When("a key's limits are reset", func() {
		It("forgets the state of every algorithm, since gateways on one store may use different ones", func(ctx SpecContext) {
			for _, a := range []limit.Algorithm{limit.AlgorithmGCRA, limit.AlgorithmFixedWindow, limit.AlgorithmRollingLog} {
				Check(ctx, env.NewLimits(a), id, limit.Rate{Rate: r.Rate, Per: r.Per})
			}
			Expect(env.NewLimits(limit.AlgorithmGCRA).Reset(ctx, id)).To(Succeed())
			Expect(env.StoredKeys()).To(BeEmpty())
		}, SpecTimeout(10*time.Second))
	})
})

// slotOf is key's hash slot, as the store computes it.
func slotOf(ctx context.Context, env *Env, key string) int64 {
	GinkgoHelper()
	slot, err := env.Client.ClusterKeySlot(ctx, key).Result()
	Expect(err).NotTo(HaveOccurred())
	return slot
}
