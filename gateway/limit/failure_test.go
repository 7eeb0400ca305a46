package limit_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/limit"
	"github.com/tollgate/tollgate/specs"
)

var _ = Describe("Redis failure", specs.SimulatedOnly("kills simulated nodes"), func() {
	const (
		id   = "key-hash-4"
		rate = 3.0
		per  = 10 * time.Second
	)
	var env *Env

	BeforeEach(func() {
		env = NewEnv()
	})

	// promptError checks that err reports the outage itself rather than the
	// spec's deadline running out while the call hung.
	promptError := func(err error) {
		GinkgoHelper()
		Expect(err).To(HaveOccurred())
		Expect(err).NotTo(MatchError(context.DeadlineExceeded), "the call hung until the deadline")
	}

	When("the node that owns the window is down", func() {
		var window *limit.Window

		BeforeEach(func(ctx SpecContext) {
			window = env.NewWindow(limit.WindowOptions{Transactional: true})
			Hammer(ctx, window, id, 2, rate, per)
			env.KillOwner(limit.WindowKey(id))
		}, NodeTimeout(10*time.Second))

		It("returns an error promptly instead of hanging", func(ctx SpecContext) {
			_, err := window.Allow(shortly(ctx), id, rate, per)
			promptError(err)
		}, SpecTimeout(10*time.Second))

		It("returns the zero Decision with the error, leaving the choice to fail open to the caller", func(ctx SpecContext) {
			d, _ := window.Allow(shortly(ctx), id, rate, per)
			Expect(d).To(BeZero())
		}, SpecTimeout(10*time.Second))

		It("says the error is the rate limiter's without naming the id", func(ctx SpecContext) {
			_, err := window.Allow(shortly(ctx), id, rate, per)
			Expect(err).To(MatchError(HavePrefix("rate limit window: ")))
			Expect(err.Error()).NotTo(ContainSubstring(id))
		}, SpecTimeout(10*time.Second))

		It("fails the non-transactional window promptly too", func(ctx SpecContext) {
			plain := env.NewWindow(limit.WindowOptions{})
			_, err := plain.Allow(shortly(ctx), id, rate, per)
			promptError(err)
		}, SpecTimeout(10*time.Second))

		It("limits again once the node is back", func(ctx SpecContext) {
			Expect(env.Cluster.NodeForKey(limit.WindowKey(id)).Restart()).To(Succeed())
			Eventually(func(ctx context.Context) (limit.Decision, error) {
				return window.Allow(ctx, id, rate, per)
			}).WithContext(ctx).Should(HaveField("Allowed", BeTrue()))
			Expect(Allow(ctx, window, id, rate, per).Allowed).To(BeFalse(), "the requests before the outage still count")
		}, SpecTimeout(10*time.Second))
	})

	When("the node that owns the sentinel is down", func() {
		It("returns an error promptly instead of hanging", func(ctx SpecContext) {
			window := env.NewWindow(limit.WindowOptions{Transactional: true, Sentinel: true})
			env.KillOwner(limit.SentinelKey(id))
			_, err := window.Allow(shortly(ctx), id, rate, per)
			promptError(err)
			Expect(err).To(MatchError(HavePrefix("rate limit sentinel: ")))
		}, SpecTimeout(10*time.Second))
	})

	When("the node that owns the quota is down", func() {
		var quota *limit.Quota

		BeforeEach(func() {
			quota = env.NewQuota()
			env.KillOwner(limit.QuotaKey(id))
		})

		It("fails Consume promptly with the zero QuotaDecision", func(ctx SpecContext) {
			d, err := quota.Consume(shortly(ctx), id, 10, time.Hour)
			promptError(err)
			Expect(d).To(BeZero())
		}, SpecTimeout(10*time.Second))

		It("fails Peek promptly", func(ctx SpecContext) {
			_, err := quota.Peek(shortly(ctx), id, 10)
			promptError(err)
		}, SpecTimeout(10*time.Second))
	})
})
