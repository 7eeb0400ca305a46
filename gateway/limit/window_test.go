package limit_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/limit"
	"github.com/tollgate/tollgate/specs"
)

var _ = Describe("Sliding-window rate limit", func() {
	const (
		id   = "key-hash-1"
		rate = 3.0
		per  = 10 * time.Second
	)
	var (
		env    *Env
		window *limit.Window
	)

	BeforeEach(func() {
		env = NewEnv()
		window = env.NewWindow(limit.WindowOptions{Transactional: true})
	})

	When("an id makes more than rate requests within per", func() {
		It("allows exactly rate of them", func(ctx SpecContext) {
			Expect(Hammer(ctx, window, id, 10, rate, per)).To(Equal(3))
		}, SpecTimeout(10*time.Second))

		It("refuses the next one with Remaining 0 and a positive Reset", func(ctx SpecContext) {
			Hammer(ctx, window, id, 3, rate, per)
			Expect(Allow(ctx, window, id, rate, per)).To(Equal(limit.Decision{Limit: 3, Reset: per}))
		}, SpecTimeout(10*time.Second))
	})

	When("requests arrive spread over the window", func() {
		// Spread makes four requests two seconds apart.
		Spread := func(ctx SpecContext) []limit.Decision {
			GinkgoHelper()
			var decisions []limit.Decision
			for range 4 {
				decisions = append(decisions, Allow(ctx, window, id, rate, per))
				env.PassTime(2 * time.Second)
			}
			return decisions
		}

		It("counts Remaining down to zero", func(ctx SpecContext) {
			Expect(Spread(ctx)).To(HaveExactElements(
				HaveField("Remaining", 2), HaveField("Remaining", 1), HaveField("Remaining", 0), HaveField("Remaining", 0)))
		}, SpecTimeout(10*time.Second))

		It("reports Reset as the time until the oldest request leaves the window", func(ctx SpecContext) {
			decisions := Spread(ctx)
			for i, want := range []time.Duration{10 * time.Second, 8 * time.Second, 6 * time.Second, 4 * time.Second} {
				Expect(decisions[i].Reset).To(BeNumerically("~", want, time.Microsecond), "request %d", i+1)
			}
		}, SpecTimeout(10*time.Second))

		It("allows again as soon as the oldest request slides out of the window", func(ctx SpecContext) {
			Allow(ctx, window, id, rate, per)
			env.PassTime(4 * time.Second)
			Hammer(ctx, window, id, 2, rate, per)
			Expect(Allow(ctx, window, id, rate, per).Allowed).To(BeFalse())
			env.PassTime(6 * time.Second) // the first request is now exactly per old
			Expect(Allow(ctx, window, id, rate, per)).To(HaveField("Allowed", BeTrue()))
			Expect(Allow(ctx, window, id, rate, per).Allowed).To(BeFalse(), "the other two are still in the window")
		}, SpecTimeout(10*time.Second))
	})

	// Tyk #1876: refused requests used to be added to the window too, so a
	// client that kept retrying kept its own window full and was locked out
	// for as long as it kept trying.
	When("a client keeps retrying while over the limit", func() {
		It("does not count the refused requests", func(ctx SpecContext) {
			Expect(Hammer(ctx, window, id, 50, rate, per)).To(Equal(3))
			Expect(env.WindowEntries(id)).To(HaveLen(3))
		}, SpecTimeout(10*time.Second))

		It("is let through once per has passed since its allowed requests, however hard it hammered", func(ctx SpecContext) {
			Hammer(ctx, window, id, 3, rate, per)
			env.PassTime(per / 2)
			Expect(Hammer(ctx, window, id, 50, rate, per)).To(BeZero())
			env.PassTime(per / 2)
			Expect(Allow(ctx, window, id, rate, per).Allowed).To(BeTrue())
		}, SpecTimeout(10*time.Second))

		It("gets rate requests through in every window when it retries every second", func(ctx SpecContext) {
			allowed := 0
			for range 30 {
				allowed += Hammer(ctx, window, id, 1, rate, per)
				env.PassTime(time.Second)
			}
			Expect(allowed).To(Equal(9))
		}, SpecTimeout(10*time.Second))
	})

	When("the rate is fractional", func() {
		It("allows its whole part", func(ctx SpecContext) {
			Expect(Hammer(ctx, window, id, 5, 2.9, per)).To(Equal(2))
		}, SpecTimeout(10*time.Second))

		It("refuses everything below one, as Tyk does", func(ctx SpecContext) {
			Expect(Hammer(ctx, window, id, 5, 0.5, per)).To(BeZero())
		}, SpecTimeout(10*time.Second))
	})

	When("rate or per is zero", func() {
		It("allows every request", func(ctx SpecContext) {
			Expect(Hammer(ctx, window, id, 20, 0, per)).To(Equal(20))
			Expect(Hammer(ctx, window, id, 20, rate, 0)).To(Equal(20))
		}, SpecTimeout(10*time.Second))

		It("never touches Redis", func(ctx SpecContext) {
			Hammer(ctx, window, id, 20, 0, per)
			Expect(env.Commands.Names()).To(BeEmpty())
			Expect(env.StoredKeys()).To(BeEmpty())
		}, SpecTimeout(10*time.Second))
	})

	When("it is transactional", func() {
		It("sends one MULTI/EXEC pipeline per allowed request", func(ctx SpecContext) {
			Allow(ctx, window, id, rate, per)
			Expect(env.Commands.Names()).To(Equal([]string{"multi", "zremrangebyscore", "zcard", "zadd", "pexpire", "zrange", "exec"}))
		}, SpecTimeout(10*time.Second))
	})

	When("it is not transactional", func() {
		var plain *limit.Window

		BeforeEach(func() {
			plain = env.NewWindow(limit.WindowOptions{Transactional: false})
		})

		It("sends the same commands as a plain pipeline", func(ctx SpecContext) {
			Allow(ctx, plain, id, rate, per)
			Expect(env.Commands.Names()).To(Equal([]string{"zremrangebyscore", "zcard", "zadd", "pexpire", "zrange"}))
		}, SpecTimeout(10*time.Second))

		It("gives the same decisions as the transactional window", func(ctx SpecContext) {
			var tx, nontx []limit.Decision
			for _, step := range []time.Duration{0, 0, 4 * time.Second, 0, 0, 6 * time.Second, 0, 0, per, 0} {
				env.PassTime(step)
				tx = append(tx, Allow(ctx, window, "tx", rate, per))
				nontx = append(nontx, Allow(ctx, plain, "nontx", rate, per))
			}
			Expect(nontx).To(Equal(tx))
			Expect(tx).To(ContainElement(HaveField("Allowed", BeFalse())), "the sequence goes over the limit")
		}, SpecTimeout(10*time.Second))
	})

	When("an allowed request refreshes the window", func() {
		It("expires the window key after per of quiet", specs.SimulatedOnly("waits for a key's TTL to run out, and a real Redis's clock cannot be moved"), func(ctx SpecContext) {
			Allow(ctx, window, id, rate, per)
			Expect(env.StoredTTL(limit.WindowKey(id))).To(Equal(per))
			env.PassTime(per)
			Expect(env.StoredKeys()).NotTo(ContainElement(limit.WindowKey(id)))
		}, SpecTimeout(10*time.Second))
	})

	When("the store is a Redis Cluster", specs.SimulatedOnly("reads every simulated node's data"), func() {
		It("keeps the window on the node that owns WindowKey(id) only", func(ctx SpecContext) {
			Allow(ctx, window, id, rate, per)
			owner := env.Cluster.NodeForKey(limit.WindowKey(id))
			for _, node := range env.Cluster.Nodes() {
				Expect(node.Miniredis().Exists(limit.WindowKey(id))).To(Equal(node == owner), "node %s", node.Addr())
			}
		}, SpecTimeout(10*time.Second))
	})

	When("the store is a single node behind a plain redis.Client", func() {
		It("gives the same decisions as through the ClusterClient", func(ctx SpecContext) {
			single := limit.NewWindow(env.ConnectToOwner(limit.WindowKey("single")), limit.WindowOptions{Transactional: true, Now: env.Now})
			var viaCluster, viaNode []limit.Decision
			for _, step := range []time.Duration{0, 0, 2 * time.Second, 0, per} {
				env.PassTime(step)
				viaCluster = append(viaCluster, Allow(ctx, window, id, rate, per))
				viaNode = append(viaNode, Allow(ctx, single, "single", rate, per))
			}
			Expect(viaNode).To(Equal(viaCluster))
		}, SpecTimeout(10*time.Second))
	})

	When("two gateways use the same cluster through their own clients", func() {
		It("count both gateways' requests against one limit", func(ctx SpecContext) {
			other := limit.NewWindow(env.Connect(), limit.WindowOptions{Transactional: true, Now: env.Now})
			Expect(Allow(ctx, window, id, rate, per).Allowed).To(BeTrue())
			Expect(Allow(ctx, other, id, rate, per).Allowed).To(BeTrue())
			Expect(Allow(ctx, window, id, rate, per).Allowed).To(BeTrue())
			Expect(Allow(ctx, other, id, rate, per)).To(HaveField("Allowed", BeFalse()))
		}, SpecTimeout(10*time.Second))

		It("count two requests made in the same nanosecond as two", func(ctx SpecContext) {
			other := limit.NewWindow(env.Connect(), limit.WindowOptions{Transactional: true, Now: env.Now})
			Allow(ctx, window, id, 100, per)
			Allow(ctx, other, id, 100, per)
			Expect(env.WindowEntries(id)).To(HaveLen(2))
		}, SpecTimeout(10*time.Second))
	})

	When("the window is reset", func() {
		It("lets the id through again at once", func(ctx SpecContext) {
			Hammer(ctx, window, id, 3, rate, per)
			Expect(window.Reset(ctx, id)).To(Succeed())
			Expect(Allow(ctx, window, id, rate, per)).To(HaveField("Remaining", 2))
		}, SpecTimeout(10*time.Second))
	})
})
