package cluster_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/specs"
)

var _ = Describe("Key routing", specs.SimulatedOnly("reads the simulated nodes' data directly; the shared behaviour is in fidelity_test.go"), func() {
	var (
		c      *cluster.Cluster
		client *redis.ClusterClient
	)

	BeforeEach(func() {
		c = StartCluster(cluster.DefaultNodes)
		client = ConnectClusterClient(c.Addrs()[0])
	})

	When("a ClusterClient writes 300 keys", func() {
		var keys []string

		BeforeEach(func(ctx SpecContext) {
			keys = nil
			for i := range 300 {
				key := fmt.Sprintf("spread:%d", i)
				Expect(client.Set(ctx, key, i, 0).Err()).To(Succeed())
				keys = append(keys, key)
			}
		}, NodeTimeout(10*time.Second))

		It("stores some keys on every node", func() {
			for _, node := range c.Nodes() {
				Expect(node.Miniredis().Keys()).NotTo(BeEmpty(), node.Addr())
			}
		})

		It("stores each key on the node NodeForKey names and nowhere else", func() {
			for _, key := range keys {
				for _, node := range c.Nodes() {
					Expect(node.Miniredis().Exists(key)).To(Equal(node == c.NodeForKey(key)), key)
				}
			}
		})

		It("reads every key back", func(ctx SpecContext) {
			for i, key := range keys {
				Expect(client.Get(ctx, key).Val()).To(Equal(fmt.Sprint(i)))
			}
		}, SpecTimeout(10*time.Second))
	})

	When("a plain client asks a node for a key of another node", func() {
		It("answers MOVED with the key's slot and its owner's address", func(ctx SpecContext) {
			owner := c.NodeForKey("foo")
			other := c.Node((indexOf(c, owner) + 1) % 3)
			err := ConnectToNode(other).Get(ctx, "foo").Err()
			Expect(err).To(MatchError(fmt.Sprintf("MOVED 12182 %s", owner.Addr())))
		}, SpecTimeout(5*time.Second))

		It("serves it when asked on the owner", func(ctx SpecContext) {
			node := ConnectToNode(c.NodeForKey("foo"))
			Expect(node.Set(ctx, "foo", "bar", 0).Err()).To(Succeed())
			Expect(node.Get(ctx, "foo").Val()).To(Equal("bar"))
		}, SpecTimeout(5*time.Second))
	})

	When("a multi-key command names keys in different slots", func() {
		var a, b string

		BeforeEach(func() {
			a = "{user1}.name"
			b = KeyInOtherSlotOfSameNode(c, a)
		})

		It("refuses MSET with CROSSSLOT", func(ctx SpecContext) {
			Expect(client.MSet(ctx, a, "1", b, "2").Err()).To(MatchError(ContainSubstring("CROSSSLOT")))
		}, SpecTimeout(5*time.Second))

		It("refuses DEL with CROSSSLOT", func(ctx SpecContext) {
			Expect(client.Del(ctx, a, b).Err()).To(MatchError(ContainSubstring("CROSSSLOT")))
		}, SpecTimeout(5*time.Second))

		It("refuses EVAL with CROSSSLOT", func(ctx SpecContext) {
			err := client.Eval(ctx, "return redis.call('GET', KEYS[1])", []string{a, b}).Err()
			Expect(err).To(MatchError(ContainSubstring("CROSSSLOT")))
		}, SpecTimeout(5*time.Second))

		It("writes none of the keys", func(ctx SpecContext) {
			_ = client.MSet(ctx, a, "1", b, "2").Err()
			Expect(client.Exists(ctx, a).Val() + client.Exists(ctx, b).Val()).To(BeZero())
		}, SpecTimeout(5*time.Second))
	})

	When("a multi-key command's keys share a hash tag", func() {
		It("executes MSET and MGET", func(ctx SpecContext) {
			Expect(client.MSet(ctx, "{user1000}.following", "3", "{user1000}.followers", "5").Err()).To(Succeed())
			Expect(client.MGet(ctx, "{user1000}.following", "{user1000}.followers").Val()).To(Equal([]any{"3", "5"}))
		}, SpecTimeout(5*time.Second))
	})

	When("a transaction queues a key of another node", func() {
		var own, foreign string
		var node *redis.Client

		BeforeEach(func() {
			own = KeysOwnedBy(c, c.Node(0), "own", 1)[0]
			foreign = KeyOnOtherNode(c, own)
			node = ConnectToNode(c.Node(0))
		})

		It("fails EXEC with EXECABORT", func(ctx SpecContext) {
			_, err := node.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
				pipe.Set(ctx, own, "1", 0)
				pipe.Set(ctx, foreign, "2", 0)
				return nil
			})
			Expect(err).To(MatchError(ContainSubstring("EXECABORT")))
		}, SpecTimeout(5*time.Second))

		It("applies none of the transaction", func(ctx SpecContext) {
			_, _ = node.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
				pipe.Set(ctx, own, "1", 0)
				pipe.Set(ctx, foreign, "2", 0)
				return nil
			})
			Expect(c.Node(0).Miniredis().Exists(own)).To(BeFalse())
		}, SpecTimeout(5*time.Second))
	})

	When("a transaction queues keys of two slots of the same node", func() {
		It("refuses EXEC with CROSSSLOT and applies nothing", func(ctx SpecContext) {
			own := KeysOwnedBy(c, c.Node(1), "own", 1)[0]
			neighbour := KeyInOtherSlotOfSameNode(c, own)
			_, err := ConnectToNode(c.Node(1)).TxPipelined(ctx, func(pipe redis.Pipeliner) error {
				pipe.Set(ctx, own, "1", 0)
				pipe.Set(ctx, neighbour, "2", 0)
				return nil
			})
			Expect(err).To(MatchError(ContainSubstring("CROSSSLOT")))
			Expect(c.Node(1).Miniredis().Keys()).To(BeEmpty())
		}, SpecTimeout(5*time.Second))
	})

	When("a ClusterClient runs a transaction on hash-tagged keys", func() {
		It("commits it on the keys' node", func(ctx SpecContext) {
			_, err := client.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
				pipe.Incr(ctx, "{quota}.used")
				pipe.Expire(ctx, "{quota}.used", time.Minute)
				pipe.Set(ctx, "{quota}.last", "now", 0)
				return nil
			})
			Expect(err).NotTo(HaveOccurred())
			owner := c.NodeForKey("{quota}")
			Expect(owner.Miniredis().Get("{quota}.used")).To(Equal("1"))
			Expect(owner.Miniredis().TTL("{quota}.used")).To(BeNumerically("~", time.Minute, time.Second))
		}, SpecTimeout(5*time.Second))
	})

	When("a Lua script declares its keys", func() {
		It("runs redis.call on those keys on their node", func(ctx SpecContext) {
			script := "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('INCR', KEYS[2])"
			n, err := client.Eval(ctx, script, []string{"{bucket}.a", "{bucket}.b"}, "x").Int()
			Expect(err).NotTo(HaveOccurred())
			Expect(n).To(Equal(1))
			Expect(c.NodeForKey("{bucket}").Miniredis().Get("{bucket}.a")).To(Equal("x"))
		}, SpecTimeout(5*time.Second))

		It("refuses access to a key of another node", func(ctx SpecContext) {
			foreign := KeyOnOtherNode(c, "{bucket}.a")
			err := client.Eval(ctx, "return redis.call('GET', ARGV[1])", []string{"{bucket}.a"}, foreign).Err()
			Expect(err).To(MatchError(ContainSubstring("non local key")))
		}, SpecTimeout(5*time.Second))
	})

	When("a client selects another database", func() {
		It("refuses, as a cluster has database 0 only", func(ctx SpecContext) {
			Expect(ConnectToNode(c.Node(0)).Do(ctx, "SELECT", "1").Err()).
				To(MatchError("ERR SELECT is not allowed in cluster mode"))
		}, SpecTimeout(5*time.Second))
	})
})

func indexOf(c *cluster.Cluster, node *cluster.Node) int {
	for i, n := range c.Nodes() {
		if n == node {
			return i
		}
	}
	return -1
}
