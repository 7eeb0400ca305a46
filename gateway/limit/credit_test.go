package limit_test

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/limit"
	"github.com/tollgate/tollgate/specs"
)

// count is how many of names are name.
func count(names []string, name string) int {
	n := 0
	for _, s := range names {
		if s == name {
			n++
		}
	}
	return n
}

// A gateway that asked the store about every request of a key allowed a
// hundred million a second would spend most of its time on round trips for
// a limit nobody reaches. With a credit (limits_credit_percent, 1 by
// default) it takes a busy key's requests from the store a share at a time
// and hands them out itself. Every request is still counted in the store
// before it is let through; what changes is when.
var _ = Describe("Credit: a busy key's limits taken from the store a share at a time", Label("limits", "quota"), func() {
	var env *Env

	BeforeEach(func() {
		env = NewEnv()
	})

	It("asks the store once per share, a share that doubles while the key keeps using it up", func(ctx SpecContext) {
		limits := env.NewCreditLimits(env.Client, 1)
		r := limit.Rate{Rate: 100_000, Per: time.Second}
		Expect(HammerLimits(ctx, limits, "busy", 1000, r)).To(Equal(1000))
		// 1 + 2 + 4 + ... + 512 ≥ 1000: ten script calls, give or take the
		// one that first loads the script.
		Expect(count(env.Commands.Names(), "evalsha")).To(BeNumerically("<=", 11))
	}, SpecTimeout(30*time.Second))

	It("asks the store about every request when it is 0", func(ctx SpecContext) {
		limits := env.NewCreditLimits(env.Client, 0)
		r := limit.Rate{Rate: 100_000, Per: time.Second}
		Check(ctx, limits, "busy", r) // the script is known from now on
		env.Commands.Forget()
		Expect(HammerLimits(ctx, limits, "busy", 20, r)).To(Equal(20))
		Expect(count(env.Commands.Names(), "evalsha")).To(Equal(20))
	}, SpecTimeout(30*time.Second))

	It("counts keys allowed fewer than 200 requests exactly, one round trip a request", func(ctx SpecContext) {
		limits := env.NewCreditLimits(env.Client, 1)
		r := limit.Rate{Rate: 150, Per: time.Second, QuotaMax: 150, QuotaRenewal: time.Hour}
		Check(ctx, limits, "quiet", r)
		env.Commands.Forget()
		for range 10 {
			Check(ctx, limits, "quiet", r)
		}
		names := env.Commands.Names()
		Expect(count(names, "evalsha")).To(Equal(10))
		Expect(count(names, "incr")).To(Equal(10))
		Expect(names).NotTo(ContainElement("incrby"))
	}, SpecTimeout(30*time.Second))

	It("lets through exactly the rate at one instant, no more", func(ctx SpecContext) {
		limits := env.NewCreditLimits(env.Client, 1)
		Expect(HammerLimits(ctx, limits, "burst", 1100, limit.Rate{Rate: 1000, Per: time.Second})).To(Equal(1000))
	}, SpecTimeout(30*time.Second))

	It("lets exactly the rate through at one instant to many requests at once", func(ctx SpecContext) {
		limits := env.NewCreditLimits(env.Client, 1)
		r := limit.Rate{Rate: 1000, Per: time.Second}
		var allowed atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				defer GinkgoRecover()
				allowed.Add(int64(HammerLimits(ctx, limits, "concurrent", 150, r)))
			})
		}
		wg.Wait()
		Expect(allowed.Load()).To(Equal(int64(1000)))
	}, SpecTimeout(60*time.Second))

	It("lets two gateways through no more than the rate together, and at most one share less", func(ctx SpecContext) {
		one := env.NewCreditLimits(env.Client, 1)
		two := env.NewCreditLimits(env.Connect(), 1)
		r := limit.Rate{Rate: 1000, Per: time.Second}
		allowed := 0
		for i := range 1200 {
			limits := one
			if i%2 == 1 {
				limits = two
			}
			if Check(ctx, limits, "shared", r).Rate.Allowed {
				allowed++
			}
		}
		// Each may hold up to 1% of 1000 that the other cannot use.
		Expect(allowed).To(And(BeNumerically("<=", 1000), BeNumerically(">=", 990)))
	}, SpecTimeout(60*time.Second))

	It("counts the quota and the rate down by one a request in its answers, as without credit", func(ctx SpecContext) {
		limits := env.NewCreditLimits(env.Client, 1)
		r := limit.Rate{Rate: 1_000_000, Per: time.Second, QuotaMax: 1000, QuotaRenewal: time.Hour}
		var quota, rate []int64
		for range 40 {
			o := Check(ctx, limits, "counted", r)
			quota = append(quota, o.Quota.Remaining)
			rate = append(rate, int64(o.Rate.Remaining))
		}
		wantQuota, wantRate := make([]int64, 40), make([]int64, 40)
		for i := range 40 {
			wantQuota[i], wantRate[i] = int64(999-i), int64(999_999-i)
		}
		Expect(quota).To(Equal(wantQuota))
		Expect(rate).To(Equal(wantRate))
	}, SpecTimeout(30*time.Second))

	It("gives back at Close the quota it took and did not hand out, so the store counts just the requests served", func(ctx SpecContext) {
		limits := env.NewCreditLimits(env.Client, 1)
		r := limit.Rate{Rate: 1_000_000, Per: time.Second, QuotaMax: 500, QuotaRenewal: time.Hour}
		for range 300 {
			Expect(Check(ctx, limits, "served", r).Quota.Allowed).To(BeTrue())
		}
		Expect(env.Stored(limit.QuotaKey("served"))).NotTo(Equal("300"), "a share taken ahead")
		Expect(limits.Close(ctx)).To(Succeed())
		Expect(env.Stored(limit.QuotaKey("served"))).To(Equal("300"))

		other := env.NewCreditLimits(env.Connect(), 1)
		allowed := 0
		for range 250 {
			if Check(ctx, other, "served", r).Quota.Allowed {
				allowed++
			}
		}
		Expect(allowed).To(Equal(200), "the quota's 500, less the 300 served")
	}, SpecTimeout(60*time.Second))

	It("gives back quota it held unused for a second with the key's next request", func(ctx SpecContext) {
		limits := env.NewCreditLimits(env.Client, 1)
		r := limit.Rate{Rate: 1_000_000, Per: time.Second, QuotaMax: 1000, QuotaRenewal: time.Hour}
		Check(ctx, limits, "idle", r) // takes 1
		Check(ctx, limits, "idle", r) // used it up at once: takes 2
		Expect(env.Stored(limit.QuotaKey("idle"))).To(Equal("3"), "one of them held")
		env.PassTime(2 * time.Second)
		Check(ctx, limits, "idle", r)
		Expect(env.Stored(limit.QuotaKey("idle"))).To(Equal("3"), "the held one back, the third request counted")
	}, SpecTimeout(30*time.Second))

	It("gives back within another second the quota it held for a key no request came for since", func(ctx SpecContext) {
		limits := env.NewCreditLimits(env.Client, 1)
		r := limit.Rate{Rate: 1_000_000, Per: time.Second, QuotaMax: 1000, QuotaRenewal: time.Hour}
		Check(ctx, limits, "left", r) // takes 1
		Check(ctx, limits, "left", r) // used it up at once: takes 2
		Expect(env.Stored(limit.QuotaKey("left"))).To(Equal("3"), "one of them held")
		env.PassTime(2 * time.Second) // what it holds is good for a second
		Eventually(func() string { return env.Stored(limit.QuotaKey("left")) }).WithContext(ctx).
			WithTimeout(5 * time.Second).Should(Equal("2"))
	}, SpecTimeout(30*time.Second))

	It("takes no quota for a request the rate limit refuses, giving it back to what it holds without a round trip", func(ctx SpecContext) {
		limits := env.NewCreditLimits(env.Client, 1)
		r := limit.Rate{Rate: 300, Per: time.Second, QuotaMax: 1000, QuotaRenewal: time.Hour}
		Expect(HammerLimits(ctx, limits, "refused", 300, r)).To(Equal(300))
		env.Commands.Forget()
		for range 100 {
			o := Check(ctx, limits, "refused", r)
			Expect(o.Rate.Allowed).To(BeFalse())
			// What the rate-limit step does for a refused request.
			Expect(limits.RefundQuota(ctx, "refused", o.Quota)).To(Succeed())
		}
		Expect(count(env.Commands.Names(), "evalsha")).To(Equal(100), "one rate-limit script call each, no refund script")
		Expect(limits.Close(ctx)).To(Succeed())
		Expect(env.Stored(limit.QuotaKey("refused"))).To(Equal("300"))
	}, SpecTimeout(60*time.Second))

	It("drops what it holds of a key whose counters are reset, and starts it afresh", func(ctx SpecContext) {
		limits := env.NewCreditLimits(env.Client, 1)
		r := limit.Rate{Rate: 1_000_000, Per: time.Second, QuotaMax: 1000, QuotaRenewal: time.Hour}
		for range 20 {
			Check(ctx, limits, "reset", r)
		}
		Expect(limits.Reset(ctx, "reset")).To(Succeed())
		Expect(env.NewQuota().Reset(ctx, "reset")).To(Succeed())
		env.Commands.Forget()
		o := Check(ctx, limits, "reset", r)
		Expect(o.Quota.Remaining).To(Equal(int64(999)))
		Expect(slices.Contains(env.Commands.Names(), "incr")).To(BeTrue(), "asked the store, one request's worth")
	}, SpecTimeout(30*time.Second))

	It("takes shares again once the store answers after a failed share", specs.SimulatedOnly("kills a node"), func(ctx SpecContext) {
		limits := env.NewCreditLimits(env.Client, 1)
		r := limit.Rate{Rate: 1_000_000, Per: time.Second, QuotaMax: 1_000_000, QuotaRenewal: time.Hour}
		for range 10 {
			Check(ctx, limits, "outage", r)
		}
		node := env.KillOwner(limit.QuotaKey("outage"))
		failed := false
		for i := 0; i < 100 && !failed; i++ { // until what it holds runs out
			o := limits.Check(shortly(ctx), "outage", r)
			failed = o.RateErr != nil && o.QuotaErr != nil
		}
		Expect(failed).To(BeTrue(), "a share's round trip failed")
		node.Restart()
		env.Commands.Forget()
		Expect(HammerLimits(ctx, limits, "outage", 200, r)).To(Equal(200))
		Expect(count(env.Commands.Names(), "evalsha")).To(BeNumerically("<", 20), "shares again, not a round trip a request")
	}, SpecTimeout(30*time.Second))
})
