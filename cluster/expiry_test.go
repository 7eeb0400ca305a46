package cluster_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/specs"
)

var _ = Describe("Key expiry", specs.SimulatedOnly("moves the simulated nodes' clocks"), func() {
	var (
		c      *cluster.Cluster
		client *redis.ClusterClient
		keys   []string // one per node
	)

	BeforeEach(func() {
		c = StartCluster(cluster.DefaultNodes)
		client = ConnectClusterClient(c.Addrs()[0])
		keys = nil
		for _, node := range c.Nodes() {
			keys = append(keys, KeysOwnedBy(c, node, "token", 1)[0])
		}
	})

	// CountLiveKeys counts the keys still readable, one command per key since
	// they live on different nodes.
	CountLiveKeys := func(ctx SpecContext) int {
		GinkgoHelper()
		live := 0
		for _, key := range keys {
			n, err := client.Exists(ctx, key).Result()
			Expect(err).NotTo(HaveOccurred())
			live += int(n)
		}
		return live
	}

	When("the clock is pinned with SetTime", func() {
		pinned := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

		BeforeEach(func(ctx SpecContext) {
			c.SetTime(pinned)
			for _, key := range keys {
				Expect(client.Set(ctx, key, "t", 10*time.Second).Err()).To(Succeed())
			}
		}, NodeTimeout(5*time.Second))

		It("answers TIME with the pinned time on every node", func(ctx SpecContext) {
			for _, node := range c.Nodes() {
				Expect(ConnectToNode(node).Time(ctx).Val()).To(BeTemporally("==", pinned))
			}
		}, SpecTimeout(5*time.Second))

		It("keeps keys alive while the clock stands still", func(ctx SpecContext) {
			Expect(CountLiveKeys(ctx)).To(Equal(3))
			Expect(client.TTL(ctx, keys[0]).Val()).To(Equal(10 * time.Second))
		}, SpecTimeout(5*time.Second))

		It("keeps keys alive when FastForward stops short of their TTL", func(ctx SpecContext) {
			c.FastForward(9 * time.Second)
			Expect(CountLiveKeys(ctx)).To(Equal(3))
			Expect(client.TTL(ctx, keys[1]).Val()).To(Equal(time.Second))
		}, SpecTimeout(5*time.Second))

		It("expires keys on every node when FastForward passes their TTL", func(ctx SpecContext) {
			c.FastForward(10 * time.Second)
			Expect(CountLiveKeys(ctx)).To(BeZero())
		}, SpecTimeout(5*time.Second))

		It("moves TIME forward with FastForward", func(ctx SpecContext) {
			c.FastForward(time.Hour)
			Expect(ConnectToNode(c.Node(2)).Time(ctx).Val()).To(BeTemporally("==", pinned.Add(time.Hour)))
		}, SpecTimeout(5*time.Second))

		It("expires keys set with EXPIREAT once SetTime passes that moment", func(ctx SpecContext) {
			for _, key := range keys {
				Expect(client.ExpireAt(ctx, key, pinned.Add(time.Minute)).Err()).To(Succeed())
			}
			c.SetTime(pinned.Add(time.Minute - time.Second))
			Expect(CountLiveKeys(ctx)).To(Equal(3))
			c.SetTime(pinned.Add(time.Minute))
			Expect(CountLiveKeys(ctx)).To(BeZero())
		}, SpecTimeout(5*time.Second))
	})

	When("the clock follows the wall clock", func() {
		It("expires keys on every node with FastForward", func(ctx SpecContext) {
			for _, key := range keys {
				Expect(client.Set(ctx, key, "t", time.Hour).Err()).To(Succeed())
			}
			c.FastForward(time.Hour)
			Expect(CountLiveKeys(ctx)).To(BeZero())
		}, SpecTimeout(5*time.Second))

		It("expires keys as real time passes, like a long-running Redis", func(ctx SpecContext) {
			// A second: long enough that a busy machine counts all three
			// before the first expires.
			for _, key := range keys {
				Expect(client.Set(ctx, key, "t", time.Second).Err()).To(Succeed())
			}
			Expect(CountLiveKeys(ctx)).To(Equal(3))
			Eventually(CountLiveKeys).WithContext(ctx).Should(BeZero())
		}, SpecTimeout(10*time.Second))
	})
})
