package cluster_test

import (
	"context"
	"errors"
	"net"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/specs"
)

var _ = Describe("Node failure", specs.SimulatedOnly("kills and restarts simulated nodes"), func() {
	var (
		c      *cluster.Cluster
		client *redis.ClusterClient
		dead   *cluster.Node
		lost   []string // keys stored on the killed node
		kept   []string // keys stored on the other nodes
	)

	BeforeEach(func(ctx SpecContext) {
		c = StartCluster(cluster.DefaultNodes)
		client = ConnectClusterClient(c.Addrs()[0])
		dead = c.Node(1)
		lost = KeysOwnedBy(c, dead, "session", 5)
		kept = append(KeysOwnedBy(c, c.Node(0), "session", 5), KeysOwnedBy(c, c.Node(2), "session", 5)...)
		for _, key := range append(append([]string{}, lost...), kept...) {
			Expect(client.Set(ctx, key, "v:"+key, 0).Err()).To(Succeed())
		}
	}, NodeTimeout(10*time.Second))

	When("one node of three is killed", func() {
		BeforeEach(func() {
			dead.Kill()
		})

		It("still serves the keys of the other nodes", func(ctx SpecContext) {
			for _, key := range kept {
				Expect(client.Get(ctx, key).Val()).To(Equal("v:" + key))
			}
		}, SpecTimeout(10*time.Second))

		It("fails the killed node's keys promptly with CLUSTERDOWN or a refused connection", func(ctx SpecContext) {
			for _, key := range lost {
				err := client.Get(shortly(ctx), key).Err()
				Expect(err).To(HaveOccurred())
				Expect(errors.Is(err, context.DeadlineExceeded)).To(BeFalse(), "the command hung: %v", err)
				Expect(err).To(MatchError(Or(ContainSubstring("CLUSTERDOWN"), ContainSubstring("connection refused"))))
			}
		}, SpecTimeout(20*time.Second))

		It("answers CLUSTERDOWN Hash slot not served on the other nodes for its slots", func(ctx SpecContext) {
			Expect(ConnectToNode(c.Node(0)).Get(ctx, lost[0]).Err()).To(MatchError("CLUSTERDOWN Hash slot not served"))
		}, SpecTimeout(5*time.Second))

		It("stops listening", func() {
			_, err := net.DialTimeout("tcp", dead.Addr(), time.Second)
			Expect(err).To(HaveOccurred())
			Expect(dead.Up()).To(BeFalse())
		})

		It("flags the node master,fail and disconnected in CLUSTER NODES", func(ctx SpecContext) {
			text := ConnectToNode(c.Node(0)).ClusterNodes(ctx).Val()
			Expect(text).To(MatchRegexp(`(?m)^%s \S+ master,fail - 0 \d+ \d+ disconnected 5461-10922$`, dead.ID()))
		}, SpecTimeout(5*time.Second))

		It("keeps listing the node's slots in CLUSTER SLOTS", func(ctx SpecContext) {
			slots := ConnectToNode(c.Node(2)).ClusterSlots(ctx).Val()
			Expect(slots).To(ContainElement(HaveField("Nodes", ConsistOf(HaveField("Addr", dead.Addr())))))
		}, SpecTimeout(5*time.Second))

		It("keeps the cluster state ok with the node's slots failing", func(ctx SpecContext) {
			info := ConnectToNode(c.Node(0)).ClusterInfo(ctx).Val()
			Expect(info).To(ContainSubstring("cluster_state:ok\r\n"))
			Expect(info).To(ContainSubstring("cluster_slots_fail:5462\r\n"))
		}, SpecTimeout(5*time.Second))

		It("keeps the node's data", func() {
			for _, key := range lost {
				Expect(dead.Miniredis().Get(key)).To(Equal("v:" + key))
			}
		})
	})

	When("the killed node is restarted", func() {
		BeforeEach(func() {
			dead.Kill()
			Expect(dead.Restart()).To(Succeed())
		})

		It("listens on the same address again", func() {
			Expect(dead.Up()).To(BeTrue())
			conn, err := net.DialTimeout("tcp", dead.Addr(), time.Second)
			Expect(err).NotTo(HaveOccurred())
			Expect(conn.Close()).To(Succeed())
		})

		It("serves every key again with its data", func(ctx SpecContext) {
			for _, key := range append(append([]string{}, lost...), kept...) {
				Eventually(func(ctx SpecContext) (string, error) {
					return client.Get(ctx, key).Result()
				}).WithContext(ctx).Should(Equal("v:" + key))
			}
		}, SpecTimeout(10*time.Second))

		It("serves blocking commands again", func(ctx SpecContext) {
			node := ConnectToNode(dead)
			Eventually(func(ctx SpecContext) error {
				return node.RPush(ctx, lost[0]+":queue", "job").Err()
			}).WithContext(ctx).Should(Succeed())
			Expect(node.BLPop(ctx, time.Second, lost[0]+":queue").Val()).To(Equal([]string{lost[0] + ":queue", "job"}))
		}, SpecTimeout(10*time.Second))

		It("accepts writes again", func(ctx SpecContext) {
			Eventually(func(ctx SpecContext) error {
				return client.Set(ctx, lost[0], "new", 0).Err()
			}).WithContext(ctx).Should(Succeed())
			Expect(dead.Miniredis().Get(lost[0])).To(Equal("new"))
		}, SpecTimeout(10*time.Second))
	})

	When("two nodes of three are killed", func() {
		It("refuses every keyed command on the survivor, which lost the majority", func(ctx SpecContext) {
			c.Node(1).Kill()
			c.Node(2).Kill()
			survivor := ConnectToNode(c.Node(0))
			Expect(survivor.Get(ctx, kept[0]).Err()).To(MatchError("CLUSTERDOWN The cluster is down"))
			Expect(survivor.ClusterInfo(ctx).Val()).To(ContainSubstring("cluster_state:fail\r\n"))
		}, SpecTimeout(5*time.Second))
	})

	When("Kill and Restart are repeated", func() {
		It("ignores a Kill of a killed node and a Restart of a running one", func(ctx SpecContext) {
			dead.Kill()
			dead.Kill()
			Expect(dead.Restart()).To(Succeed())
			Expect(dead.Restart()).To(Succeed())
			Eventually(func(ctx SpecContext) (string, error) {
				return client.Get(ctx, lost[0]).Result()
			}).WithContext(ctx).Should(Equal("v:" + lost[0]))
		}, SpecTimeout(10*time.Second))
	})
})

var _ = Describe("Full slot coverage", specs.SimulatedOnly("kills simulated nodes"), func() {
	var (
		c   *cluster.Cluster
		key string
	)

	BeforeEach(func() {
		c = StartCluster(cluster.DefaultNodes, cluster.RequireFullCoverage())
		key = KeysOwnedBy(c, c.Node(0), "healthy", 1)[0]
	})

	When("it is required and one node is down", func() {
		BeforeEach(func() {
			c.Node(2).Kill()
		})

		It("refuses keyed commands on every running node with CLUSTERDOWN The cluster is down", func(ctx SpecContext) {
			for _, node := range c.Nodes()[:2] {
				plain := ConnectToNode(node)
				Expect(plain.Set(ctx, key, "1", 0).Err()).To(MatchError("CLUSTERDOWN The cluster is down"), node.Addr())
				Expect(plain.Get(ctx, key).Err()).To(MatchError("CLUSTERDOWN The cluster is down"), node.Addr())
			}
		}, SpecTimeout(5*time.Second))

		It("fails a ClusterClient's commands on keys of healthy nodes too", func(ctx SpecContext) {
			client := ConnectClusterClient(c.Addrs()[0])
			Expect(client.Get(shortly(ctx), key).Err()).To(MatchError(ContainSubstring("CLUSTERDOWN The cluster is down")))
		}, SpecTimeout(10*time.Second))

		It("reports cluster_state:fail", func(ctx SpecContext) {
			Expect(ConnectToNode(c.Node(0)).ClusterInfo(ctx).Val()).To(ContainSubstring("cluster_state:fail\r\n"))
		}, SpecTimeout(5*time.Second))

		It("still answers commands without keys", func(ctx SpecContext) {
			Expect(ConnectToNode(c.Node(0)).Ping(ctx).Err()).To(Succeed())
		}, SpecTimeout(5*time.Second))
	})

	When("it is required and the down node comes back", func() {
		It("serves keyed commands again", func(ctx SpecContext) {
			c.Node(2).Kill()
			Expect(c.Node(2).Restart()).To(Succeed())
			Expect(ConnectToNode(c.Node(0)).Set(ctx, key, "1", 0).Err()).To(Succeed())
		}, SpecTimeout(5*time.Second))
	})
})
