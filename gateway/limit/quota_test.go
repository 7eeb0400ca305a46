package limit_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/limit"
	"github.com/tollgate/tollgate/specs"
)

var _ = Describe("Quota", func() {
	const (
		id       = "key-hash-3"
		quotaMax = int64(3)
		renewal  = time.Hour
	)
	var (
		env   *Env
		quota *limit.Quota
	)

	BeforeEach(func() {
		env = NewEnv()
		quota = env.NewQuota()
	})

	When("fewer than max requests were counted", func() {
		It("allows and counts Remaining down", func(ctx SpecContext) {
			var remaining []int64
			for range 3 {
				d := Consume(ctx, quota, id, quotaMax, renewal)
				Expect(d.Allowed).To(BeTrue())
				remaining = append(remaining, d.Remaining)
			}
			Expect(remaining).To(Equal([]int64{2, 1, 0}))
		}, SpecTimeout(10*time.Second))

		It("counts with one pipeline of SET NX, INCR and PTTL on the quota key, so it can share a round trip with the rate limit", func(ctx SpecContext) {
			Consume(ctx, quota, id, quotaMax, renewal)
			Expect(env.Commands.Names()).To(Equal([]string{"set", "incr", "pttl"}))
			Expect(env.Commands.RoundTrips()).To(Equal(1))
		}, SpecTimeout(10*time.Second))

		It("keeps the counter on the node that owns QuotaKey(id)", func(ctx SpecContext) {
			Consume(ctx, quota, id, quotaMax, renewal)
			Expect(env.Stored(limit.QuotaKey(id))).To(Equal("1"))
		}, SpecTimeout(10*time.Second))
	})

	When("max requests were counted", func() {
		BeforeEach(func(ctx SpecContext) {
			for range 3 {
				Consume(ctx, quota, id, quotaMax, renewal)
			}
		}, NodeTimeout(10*time.Second))

		It("refuses with Remaining 0", specs.SimulatedOnly("Renews is read from PTTL, which a real Redis counts down in real time while the spec clock stands still"), func(ctx SpecContext) {
			Expect(Consume(ctx, quota, id, quotaMax, renewal)).To(Equal(limit.QuotaDecision{
				Max: 3, Remaining: 0, Renews: t0.Add(renewal),
			}))
		}, SpecTimeout(10*time.Second))

		It("allows again with a full quota once the renewal period has passed", specs.SimulatedOnly("waits for a key's TTL to run out, and a real Redis's clock cannot be moved"), func(ctx SpecContext) {
			env.PassTime(renewal)
			Expect(Consume(ctx, quota, id, quotaMax, renewal)).To(Equal(limit.QuotaDecision{
				Allowed: true, Max: 3, Remaining: 2, Renews: t0.Add(2 * renewal),
			}))
		}, SpecTimeout(10*time.Second))

		It("refuses until the very end of the period", func(ctx SpecContext) {
			env.PassTime(renewal - time.Millisecond)
			Expect(Consume(ctx, quota, id, quotaMax, renewal).Allowed).To(BeFalse())
		}, SpecTimeout(10*time.Second))
	})

	When("the renewal period is running", func() {
		It("reports Renews as the end of the period the first request started", specs.SimulatedOnly("Renews is read from PTTL, which a real Redis counts down in real time while the spec clock stands still"), func(ctx SpecContext) {
			Consume(ctx, quota, id, quotaMax, renewal)
			env.PassTime(20 * time.Minute)
			Expect(Consume(ctx, quota, id, quotaMax, renewal).Renews).To(Equal(t0.Add(renewal)))
		}, SpecTimeout(10*time.Second))
	})

	When("the renewal is zero", func() {
		It("never resets the counter", func(ctx SpecContext) {
			Consume(ctx, quota, id, quotaMax, 0)
			env.PassTime(10 * 365 * 24 * time.Hour)
			Expect(Consume(ctx, quota, id, quotaMax, 0).Remaining).To(Equal(int64(1)))
		}, SpecTimeout(10*time.Second))

		It("reports a zero Renews", func(ctx SpecContext) {
			Expect(Consume(ctx, quota, id, quotaMax, 0).Renews).To(BeZero())
		}, SpecTimeout(10*time.Second))
	})

	When("a counter started without renewal is later consumed with one", func() {
		It("starts a renewal period then, instead of never resetting", specs.SimulatedOnly("waits for a key's TTL to run out, and a real Redis's clock cannot be moved"), func(ctx SpecContext) {
			Consume(ctx, quota, id, quotaMax, 0)
			env.PassTime(time.Minute)
			Expect(Consume(ctx, quota, id, quotaMax, renewal).Renews).To(Equal(t0.Add(time.Minute + renewal)))
			env.PassTime(renewal)
			Expect(Consume(ctx, quota, id, quotaMax, renewal).Remaining).To(Equal(int64(2)))
		}, SpecTimeout(10*time.Second))
	})

	When("max is zero or less", func() {
		It("allows every request", func(ctx SpecContext) {
			for range 10 {
				Expect(Consume(ctx, quota, id, 0, renewal).Allowed).To(BeTrue())
				Expect(Consume(ctx, quota, id, -1, renewal).Allowed).To(BeTrue())
			}
		}, SpecTimeout(10*time.Second))

		It("never touches Redis", func(ctx SpecContext) {
			Consume(ctx, quota, id, -1, renewal)
			_, err := quota.Peek(ctx, id, 0)
			Expect(err).NotTo(HaveOccurred())
			Expect(env.Commands.Names()).To(BeEmpty())
			Expect(env.StoredKeys()).To(BeEmpty())
		}, SpecTimeout(10*time.Second))
	})

	When("peeking", func() {
		It("does not consume", func(ctx SpecContext) {
			Consume(ctx, quota, id, quotaMax, renewal)
			for range 5 {
				_, err := quota.Peek(ctx, id, quotaMax)
				Expect(err).NotTo(HaveOccurred())
			}
			Expect(Consume(ctx, quota, id, quotaMax, renewal).Remaining).To(Equal(int64(1)))
		}, SpecTimeout(10*time.Second))

		It("reports what the last Consume left", specs.SimulatedOnly("Renews is read from PTTL, which a real Redis counts down in real time while the spec clock stands still"), func(ctx SpecContext) {
			env.PassTime(time.Minute)
			Consume(ctx, quota, id, quotaMax, renewal)
			Expect(quota.Peek(ctx, id, quotaMax)).To(Equal(limit.QuotaDecision{
				Allowed: true, Max: 3, Remaining: 2, Renews: t0.Add(time.Minute + renewal),
			}))
		}, SpecTimeout(10*time.Second))

		It("reports a full quota for an id never seen, without creating its counter", func(ctx SpecContext) {
			Expect(quota.Peek(ctx, id, quotaMax)).To(Equal(limit.QuotaDecision{Allowed: true, Max: 3, Remaining: 3}))
			Expect(env.StoredKeys()).To(BeEmpty())
		}, SpecTimeout(10*time.Second))

		It("reports an exhausted quota as not allowed", func(ctx SpecContext) {
			for range 4 {
				Consume(ctx, quota, id, quotaMax, renewal)
			}
			Expect(quota.Peek(ctx, id, quotaMax)).To(And(HaveField("Allowed", BeFalse()), HaveField("Remaining", BeZero())))
		}, SpecTimeout(10*time.Second))
	})

	When("the quota is reset", func() {
		It("clears the count", func(ctx SpecContext) {
			for range 4 {
				Consume(ctx, quota, id, quotaMax, renewal)
			}
			Expect(quota.Reset(ctx, id)).To(Succeed())
			Expect(Consume(ctx, quota, id, quotaMax, renewal)).To(HaveField("Remaining", int64(2)))
		}, SpecTimeout(10*time.Second))
	})

	When("two gateways use the same cluster through their own clients", func() {
		It("count both gateways' requests against one quota", func(ctx SpecContext) {
			other := limit.NewQuota(env.Connect(), env.Now)
			Consume(ctx, quota, id, quotaMax, renewal)
			Consume(ctx, other, id, quotaMax, renewal)
			Consume(ctx, quota, id, quotaMax, renewal)
			Expect(Consume(ctx, other, id, quotaMax, renewal)).To(HaveField("Allowed", BeFalse()))
		}, SpecTimeout(10*time.Second))
	})
})
