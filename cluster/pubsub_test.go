package cluster_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/cluster"
)

var _ = Describe("Pub/Sub", func() {
	var (
		c          *cluster.Cluster
		subscriber *redis.PubSub
	)

	BeforeEach(func(ctx SpecContext) {
		c = StartCluster(cluster.DefaultNodes)
		subscriber = ConnectToNode(c.Node(2)).Subscribe(ctx, "tyk.cluster.notifications")
		DeferCleanup(subscriber.Close)
		_, err := subscriber.Receive(ctx) // the subscription confirmation
		Expect(err).NotTo(HaveOccurred())
	}, NodeTimeout(5*time.Second))

	When("a message is published on another node", func() {
		It("reaches the subscriber", func(ctx SpecContext) {
			Expect(ConnectToNode(c.Node(0)).Publish(ctx, "tyk.cluster.notifications", "reload").Err()).To(Succeed())
			msg, err := subscriber.ReceiveMessage(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(msg.Payload).To(Equal("reload"))
		}, SpecTimeout(5*time.Second))

		It("counts the subscribers of every node in the reply", func(ctx SpecContext) {
			other := ConnectToNode(c.Node(1)).Subscribe(ctx, "tyk.cluster.notifications")
			DeferCleanup(other.Close)
			_, err := other.Receive(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(ConnectToNode(c.Node(0)).Publish(ctx, "tyk.cluster.notifications", "reload").Val()).To(BeEquivalentTo(2))
		}, SpecTimeout(5*time.Second))
	})

	When("a ClusterClient publishes", func() {
		It("reaches a subscriber whichever node the client picked", func(ctx SpecContext) {
			client := ConnectClusterClient(c.Addrs()[0])
			Expect(client.Publish(ctx, "tyk.cluster.notifications", "hello").Val()).To(BeEquivalentTo(1))
			msg, err := subscriber.ReceiveMessage(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(msg.Payload).To(Equal("hello"))
		}, SpecTimeout(5*time.Second))
	})

	When("the subscriber's node is down", func() {
		It("counts no receiver", func(ctx SpecContext) {
			c.Node(2).Kill()
			Expect(ConnectToNode(c.Node(0)).Publish(ctx, "tyk.cluster.notifications", "reload").Val()).To(BeZero())
		}, SpecTimeout(5*time.Second))
	})
})
