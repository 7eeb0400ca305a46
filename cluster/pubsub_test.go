package cluster_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/specs"
)

var _ = Describe("Pub/Sub", specs.SimulatedOnly("kills a simulated node; the shared behaviour is in fidelity_test.go"), func() {
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

		It("reaches the subscribers of every other node too", func(ctx SpecContext) {
			other := ConnectToNode(c.Node(1)).Subscribe(ctx, "tyk.cluster.notifications")
			DeferCleanup(other.Close)
			_, err := other.Receive(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(ConnectToNode(c.Node(0)).Publish(ctx, "tyk.cluster.notifications", "reload").Err()).To(Succeed())
			for _, s := range []*redis.PubSub{subscriber, other} {
				msg, err := s.ReceiveMessage(ctx)
				Expect(err).NotTo(HaveOccurred())
				Expect(msg.Payload).To(Equal("reload"))
			}
		}, SpecTimeout(5*time.Second))
	})

	When("a ClusterClient publishes", func() {
		It("reaches a subscriber whichever node the client picked", func(ctx SpecContext) {
			client := ConnectClusterClient(c.Addrs()[0])
			Expect(client.Publish(ctx, "tyk.cluster.notifications", "hello").Err()).To(Succeed())
			msg, err := subscriber.ReceiveMessage(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(msg.Payload).To(Equal("hello"))
		}, SpecTimeout(5*time.Second))
	})

	When("the subscriber's node is down", func() {
		It("still accepts the message on the nodes that are up, without waiting for the dead one", func(ctx SpecContext) {
			c.Node(2).Kill()
			Expect(ConnectToNode(c.Node(0)).Publish(ctx, "tyk.cluster.notifications", "reload").Err()).To(Succeed())
		}, SpecTimeout(5*time.Second))
	})
})
