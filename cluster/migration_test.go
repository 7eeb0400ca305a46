package cluster_test

import (
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/specs"
)

var _ = Describe("Slot migration", specs.SimulatedOnly("moves slots between simulated nodes"), func() {
	const key = "{limiter}.hits"
	var (
		c            *cluster.Cluster
		client       *redis.ClusterClient
		slot         int
		source, dest *cluster.Node
	)

	BeforeEach(func(ctx SpecContext) {
		c = StartCluster(cluster.DefaultNodes)
		client = ConnectClusterClient(c.Addrs()[0])
		slot = cluster.Slot(key)
		source = c.NodeForSlot(slot)
		dest = c.Node((indexOf(c, source) + 1) % 3)
		c.SetTime(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
		Expect(client.Set(ctx, key, "42", time.Minute).Err()).To(Succeed())
	}, NodeTimeout(5*time.Second))

	When("a slot is moved to another node", func() {
		BeforeEach(func() {
			Expect(c.MoveSlot(slot, dest)).To(Succeed())
		})

		It("hands ownership to the new node", func() {
			Expect(c.NodeForSlot(slot)).To(Equal(dest))
			Expect(dest.Slots()).To(ContainElement([2]int{slot, slot}))
		})

		It("is followed transparently by a ClusterClient that knew the old owner", func(ctx SpecContext) {
			Expect(client.Get(ctx, key).Val()).To(Equal("42"))
		}, SpecTimeout(5*time.Second))

		It("redirects a ClusterClient's transaction to the new owner", func(ctx SpecContext) {
			_, err := client.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
				pipe.Incr(ctx, key)
				pipe.Incr(ctx, key)
				return nil
			})
			Expect(err).NotTo(HaveOccurred())
			Expect(dest.Miniredis().Get(key)).To(Equal("44"))
		}, SpecTimeout(5*time.Second))

		It("keeps the value's TTL", func(ctx SpecContext) {
			Expect(client.TTL(ctx, key).Val()).To(Equal(time.Minute))
			Expect(dest.Miniredis().TTL(key)).To(Equal(time.Minute))
		}, SpecTimeout(5*time.Second))

		It("removes the keys from the old owner", func() {
			Expect(source.Miniredis().Exists(key)).To(BeFalse())
		})

		It("answers MOVED to the new owner on the old owner", func(ctx SpecContext) {
			Expect(ConnectToNode(source).Get(ctx, key).Err()).To(MatchError(
				HavePrefix("MOVED %d %s", slot, dest.Addr())))
		}, SpecTimeout(5*time.Second))

		It("reports the new owner in CLUSTER SLOTS on every node", func(ctx SpecContext) {
			for _, node := range c.Nodes() {
				slots := ConnectToNode(node).ClusterSlots(ctx).Val()
				Expect(slots).To(ContainElement(redis.ClusterSlot{Start: slot, End: slot, Nodes: []redis.ClusterNode{
					{ID: dest.ID(), Addr: dest.Addr(), NetworkingMetadata: map[string]string{}},
				}}))
			}
		}, SpecTimeout(5*time.Second))
	})

	When("the slot holds every supported type", func() {
		It("moves strings, hashes, lists, sets and sorted sets with their TTLs", func(ctx SpecContext) {
			_, err := client.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
				pipe.HSet(ctx, "{limiter}.hash", "a", "1", "b", "2")
				pipe.RPush(ctx, "{limiter}.list", "x", "y", "z")
				pipe.SAdd(ctx, "{limiter}.set", "p", "q")
				pipe.ZAdd(ctx, "{limiter}.zset", redis.Z{Score: 1.5, Member: "m"}, redis.Z{Score: -2, Member: "n"})
				pipe.Expire(ctx, "{limiter}.zset", time.Hour)
				return nil
			})
			Expect(err).NotTo(HaveOccurred())

			Expect(c.MoveSlot(slot, dest)).To(Succeed())

			Expect(client.HGetAll(ctx, "{limiter}.hash").Val()).To(Equal(map[string]string{"a": "1", "b": "2"}))
			Expect(client.LRange(ctx, "{limiter}.list", 0, -1).Val()).To(Equal([]string{"x", "y", "z"}))
			Expect(client.SMembers(ctx, "{limiter}.set").Val()).To(ConsistOf("p", "q"))
			Expect(client.ZRangeWithScores(ctx, "{limiter}.zset", 0, -1).Val()).To(Equal([]redis.Z{
				{Score: -2, Member: "n"}, {Score: 1.5, Member: "m"},
			}))
			Expect(client.TTL(ctx, "{limiter}.zset").Val()).To(Equal(time.Hour))
			Expect(source.Miniredis().Keys()).To(BeEmpty())
		}, SpecTimeout(5*time.Second))
	})

	When("the slot holds a key of an unsupported type", func() {
		It("refuses, names the key and moves nothing", func(ctx SpecContext) {
			Expect(client.XAdd(ctx, &redis.XAddArgs{Stream: "{limiter}.events", Values: []string{"k", "v"}}).Err()).To(Succeed())
			err := c.MoveSlot(slot, dest)
			Expect(err).To(MatchError(cluster.ErrUnsupportedType))
			Expect(err).To(MatchError(ContainSubstring(`"{limiter}.events"`)))
			Expect(c.NodeForSlot(slot)).To(Equal(source))
			Expect(source.Miniredis().Exists(key)).To(BeTrue())
			Expect(dest.Miniredis().Keys()).To(BeEmpty())
		}, SpecTimeout(5*time.Second))
	})

	When("the target node is down", func() {
		It("refuses with ErrNodeDown and keeps the owner", func() {
			dest.Kill()
			Expect(c.MoveSlot(slot, dest)).To(MatchError(cluster.ErrNodeDown))
			Expect(c.NodeForSlot(slot)).To(Equal(source))
		})
	})

	When("clients keep writing to the slot while it moves back and forth", func() {
		It("loses no write", func(ctx SpecContext) {
			var (
				done      = make(chan struct{})
				writers   sync.WaitGroup
				succeeded atomic.Int64
			)
			Expect(client.Set(ctx, key, 0, 0).Err()).To(Succeed())
			for range 8 {
				writers.Go(func() {
					for {
						select {
						case <-done:
							return
						default:
						}
						if client.Incr(ctx, key).Err() == nil {
							succeeded.Add(1)
						}
					}
				})
			}
			DeferCleanup(func() {
				close(done)
				writers.Wait()
			})

			nodes := []*cluster.Node{dest, source}
			for i := range 50 {
				Eventually(succeeded.Load).WithContext(ctx).Should(BeNumerically(">", 5*i))
				Expect(c.MoveSlot(slot, nodes[i%2])).To(Succeed())
			}
			close(done)
			writers.Wait()
			done = make(chan struct{}) // the cleanup closes a fresh one

			Expect(client.Get(ctx, key).Int64()).To(Equal(succeeded.Load()))
		}, SpecTimeout(30*time.Second))
	})
})
