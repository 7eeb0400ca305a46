package cluster_test

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/specs"
)

var _ = Describe("Cluster discovery", specs.SimulatedOnly("compares the answers with the simulated nodes' own ids and slot ranges"), func() {
	var c *cluster.Cluster

	BeforeEach(func() {
		c = StartCluster(cluster.DefaultNodes)
	})

	When("any node is asked for CLUSTER SLOTS", func() {
		It("reports every node and all 16384 slots", func(ctx SpecContext) {
			for _, node := range c.Nodes() {
				slots, err := ConnectToNode(node).ClusterSlots(ctx).Result()
				Expect(err).NotTo(HaveOccurred())
				covered := 0
				var addrs []string
				for _, s := range slots {
					covered += s.End - s.Start + 1
					Expect(s.Nodes).To(HaveLen(1))
					addrs = append(addrs, s.Nodes[0].Addr)
				}
				Expect(covered).To(Equal(cluster.SlotCount))
				Expect(addrs).To(ConsistOf(c.Addrs()))
			}
		}, SpecTimeout(5*time.Second))

		It("names each owner by its node id", func(ctx SpecContext) {
			slots, err := ConnectToNode(c.Node(2)).ClusterSlots(ctx).Result()
			Expect(err).NotTo(HaveOccurred())
			for _, s := range slots {
				Expect(s.Nodes[0].ID).To(Equal(c.NodeForSlot(s.Start).ID()))
			}
		}, SpecTimeout(5*time.Second))
	})

	When("a node is asked for CLUSTER NODES", func() {
		It("lists every node with its id, address, flags, epoch, link state and slots", func(ctx SpecContext) {
			text, err := ConnectToNode(c.Node(0)).ClusterNodes(ctx).Result()
			Expect(err).NotTo(HaveOccurred())
			lines := strings.Split(strings.TrimSpace(text), "\n")
			Expect(lines).To(HaveLen(3))
			for i, line := range lines {
				fields := strings.Fields(line)
				node := c.Node(i)
				Expect(fields).To(HaveLen(9))
				Expect(fields[0]).To(Equal(node.ID()))
				Expect(fields[1]).To(HavePrefix(node.Addr() + "@"))
				Expect(fields[3]).To(Equal("-"))
				Expect(fields[7]).To(Equal("connected"))
				Expect(fields[8]).To(Equal(fmt.Sprintf("%d-%d", node.Slots()[0][0], node.Slots()[0][1])))
			}
			Expect(strings.Fields(lines[0])[2]).To(Equal("myself,master"))
			Expect(strings.Fields(lines[1])[2]).To(Equal("master"))
		}, SpecTimeout(5*time.Second))
	})

	When("a node is asked for CLUSTER INFO", func() {
		It("reports an ok state with every slot assigned and served", func(ctx SpecContext) {
			info, err := ConnectToNode(c.Node(1)).ClusterInfo(ctx).Result()
			Expect(err).NotTo(HaveOccurred())
			Expect(info).To(ContainSubstring("cluster_state:ok\r\n"))
			Expect(info).To(ContainSubstring("cluster_slots_assigned:16384\r\n"))
			Expect(info).To(ContainSubstring("cluster_slots_ok:16384\r\n"))
			Expect(info).To(ContainSubstring("cluster_known_nodes:3\r\n"))
			Expect(info).To(ContainSubstring("cluster_size:3\r\n"))
		}, SpecTimeout(5*time.Second))
	})

	When("a node is asked for CLUSTER SHARDS", func() {
		It("describes one shard per node with its slots and health", func(ctx SpecContext) {
			shards, err := ConnectToNode(c.Node(0)).ClusterShards(ctx).Result()
			Expect(err).NotTo(HaveOccurred())
			Expect(shards).To(HaveLen(3))
			for i, shard := range shards {
				node := c.Node(i)
				Expect(shard.Slots).To(Equal([]redis.SlotRange{{Start: int64(node.Slots()[0][0]), End: int64(node.Slots()[0][1])}}))
				Expect(shard.Nodes).To(HaveLen(1))
				Expect(shard.Nodes[0].ID).To(Equal(node.ID()))
				Expect(shard.Nodes[0].Role).To(Equal("master"))
				Expect(shard.Nodes[0].Health).To(Equal("online"))
			}
		}, SpecTimeout(5*time.Second))
	})

	When("a node is asked who it is", func() {
		It("answers CLUSTER MYID with its own id", func(ctx SpecContext) {
			Expect(ConnectToNode(c.Node(2)).ClusterMyID(ctx).Val()).To(Equal(c.Node(2).ID()))
		}, SpecTimeout(5*time.Second))

		It("reports cluster_enabled:1 in INFO", func(ctx SpecContext) {
			info, err := ConnectToNode(c.Node(0)).Info(ctx).Result()
			Expect(err).NotTo(HaveOccurred())
			Expect(info).To(ContainSubstring("# Cluster\r\ncluster_enabled:1"))
		}, SpecTimeout(5*time.Second))
	})

	When("a ClusterClient is seeded with one node", func() {
		It("discovers every node", func(ctx SpecContext) {
			client := ConnectClusterClient(c.Addrs()[1])
			Expect(specs.Masters(ctx, client)).To(ConsistOf(c.Addrs()))
		}, SpecTimeout(5*time.Second))
	})
})
