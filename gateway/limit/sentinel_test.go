package limit_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/limit"
	"github.com/tollgate/tollgate/specs"
)

var _ = Describe("Sentinel rate limit", func() {
	const (
		id   = "key-hash-2"
		rate = 3.0
		per  = 10 * time.Second
	)
	var (
		env    *Env
		window *limit.Window
	)

	BeforeEach(func() {
		env = NewEnv()
		window = env.NewWindow(limit.WindowOptions{Transactional: true, Sentinel: true})
	})

	When("an id stays within its limit", func() {
		It("is not blocked", func(ctx SpecContext) {
			Expect(Hammer(ctx, window, id, 3, rate, per)).To(Equal(3))
			Expect(env.StoredKeys()).NotTo(ContainElement(limit.SentinelKey(id)))
		}, SpecTimeout(10*time.Second))
	})

	When("an id goes over its limit", func() {
		BeforeEach(func(ctx SpecContext) {
			Expect(Hammer(ctx, window, id, 4, rate, per)).To(Equal(3))
		}, NodeTimeout(10*time.Second))

		It("sets rate-limit-<id>.BLOCKED for per", func() {
			Expect(env.StoredTTL(limit.SentinelKey(id))).To(Equal(per))
		})

		It("refuses with Reset equal to the time left on the block", specs.SimulatedOnly("waits for a key's TTL to run out, and a real Redis's clock cannot be moved"), func(ctx SpecContext) {
			env.PassTime(3 * time.Second)
			Expect(Allow(ctx, window, id, rate, per)).To(Equal(limit.Decision{Limit: 3, Reset: 7 * time.Second}))
		}, SpecTimeout(10*time.Second))

		It("answers a blocked request with a single PTTL", func(ctx SpecContext) {
			env.Commands.Forget()
			Allow(ctx, window, id, rate, per)
			Expect(env.Commands.Names()).To(Equal([]string{"pttl"}))
		}, SpecTimeout(10*time.Second))

		It("leaves the window untouched while blocked", specs.SimulatedOnly("waits for a key's TTL to run out, and a real Redis's clock cannot be moved"), func(ctx SpecContext) {
			key := limit.WindowKey(id)
			before := env.WindowEntries(id)
			env.PassTime(time.Second)
			Hammer(ctx, window, id, 20, rate, per)
			Expect(env.WindowEntries(id)).To(ConsistOf(before))
			Expect(env.StoredTTL(key)).To(Equal(per-time.Second), "the window's TTL was not refreshed")
		}, SpecTimeout(10*time.Second))

		It("blocks the id for every gateway sharing the cluster", func(ctx SpecContext) {
			other := limit.NewWindow(env.Connect(), limit.WindowOptions{Transactional: true, Sentinel: true, Now: env.Now})
			Expect(Allow(ctx, other, id, rate, per)).To(HaveField("Allowed", BeFalse()))
		}, SpecTimeout(10*time.Second))

		It("allows again once per has passed", specs.SimulatedOnly("waits for a key's TTL to run out, and a real Redis's clock cannot be moved"), func(ctx SpecContext) {
			env.PassTime(per)
			Expect(Allow(ctx, window, id, rate, per)).To(HaveField("Allowed", BeTrue()))
		}, SpecTimeout(10*time.Second))

		It("lifts the block when the window is reset", func(ctx SpecContext) {
			Expect(window.Reset(ctx, id)).To(Succeed())
			Expect(env.StoredKeys()).To(BeEmpty())
			Expect(Allow(ctx, window, id, rate, per)).To(HaveField("Allowed", BeTrue()))
		}, SpecTimeout(10*time.Second))
	})
})
