package cluster_test

import (
	"net"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/specs"
)

var _ = Describe("Cluster lifecycle", specs.SimulatedOnly("starts and closes simulated clusters"), func() {
	When("Start is asked for no particular number of nodes", func() {
		It("starts three nodes with the slots split like redis-cli --cluster create", func() {
			c := StartCluster(0)
			Expect(c.Nodes()).To(HaveLen(cluster.DefaultNodes))
			Expect(c.Node(0).Slots()).To(Equal([][2]int{{0, 5460}}))
			Expect(c.Node(1).Slots()).To(Equal([][2]int{{5461, 10922}}))
			Expect(c.Node(2).Slots()).To(Equal([][2]int{{10923, 16383}}))
		})
	})

	When("Start is asked for one node", func() {
		It("gives it every slot", func() {
			c := StartCluster(1)
			Expect(c.Node(0).Slots()).To(Equal([][2]int{{0, cluster.SlotCount - 1}}))
		})
	})

	When("Start is asked for five nodes", func() {
		It("splits the slots into contiguous ranges covering all of them", func() {
			c := StartCluster(5)
			next := 0
			for _, node := range c.Nodes() {
				slots := node.Slots()
				Expect(slots).To(HaveLen(1))
				Expect(slots[0][0]).To(Equal(next))
				Expect(slots[0][1] - slots[0][0] + 1).To(BeNumerically("~", cluster.SlotCount/5, 1))
				next = slots[0][1] + 1
			}
			Expect(next).To(Equal(cluster.SlotCount))
		})
	})

	When("the cluster is started", func() {
		It("gives every node a distinct 40-hex-digit id and address", func() {
			c := StartCluster(cluster.DefaultNodes)
			ids := map[string]bool{}
			for i, node := range c.Nodes() {
				Expect(node.ID()).To(MatchRegexp("^[0-9a-f]{40}$"))
				Expect(node.Addr()).To(Equal(c.Addrs()[i]))
				Expect(node.Addr()).To(HavePrefix("127.0.0.1:"))
				ids[node.ID()] = true
			}
			Expect(ids).To(HaveLen(3))
		})

		It("keeps a node's id across Kill and Restart", func() {
			c := StartCluster(cluster.DefaultNodes)
			id := c.Node(0).ID()
			c.Node(0).Kill()
			Expect(c.Node(0).Restart()).To(Succeed())
			Expect(c.Node(0).ID()).To(Equal(id))
		})
	})

	When("the cluster is closed", func() {
		var c *cluster.Cluster

		BeforeEach(func() {
			var err error
			c, err = cluster.Start(cluster.DefaultNodes)
			Expect(err).NotTo(HaveOccurred())
			c.Close()
		})

		It("stops listening on every node", func() {
			for _, addr := range c.Addrs() {
				_, err := net.DialTimeout("tcp", addr, time.Second)
				Expect(err).To(HaveOccurred(), addr)
			}
		})

		It("ignores a second Close", func() {
			c.Close()
		})

		It("refuses to restart a node or move a slot", func() {
			Expect(c.Node(0).Restart()).To(MatchError(cluster.ErrClosed))
			Expect(c.MoveSlot(0, c.Node(1))).To(MatchError(cluster.ErrClosed))
		})
	})
})
