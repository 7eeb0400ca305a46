package cluster_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/cluster"
)

var _ = Describe("Key slots", func() {
	When("a key has no hash tag", func() {
		It("hashes the whole key with CRC16 modulo 16384", func() {
			Expect(cluster.Slot("foo")).To(Equal(12182))
			Expect(cluster.Slot("123456789")).To(Equal(12739))
		})
	})

	When("a key has a hash tag", func() {
		It("hashes only the tag, so related keys share a slot", func() {
			Expect(cluster.Slot("{user1000}.following")).To(Equal(cluster.Slot("{user1000}.followers")))
			Expect(cluster.Slot("{user1000}.following")).To(Equal(3443))
		})

		It("uses the first '{' and the first '}' after it", func() {
			Expect(cluster.Slot("foo{bar}{zap}")).To(Equal(5061)) // "bar"
			Expect(cluster.Slot("foo{{bar}}zap")).To(Equal(4015)) // "{bar"
		})

		It("hashes the whole key when the tag is empty or unclosed", func() {
			Expect(cluster.Slot("foo{}{bar}")).To(Equal(8363))
			Expect(cluster.Slot("{}foo")).To(Equal(9500))
			Expect(cluster.Slot("x{")).To(Equal(3596))
		})
	})

	When("a node is asked with CLUSTER KEYSLOT", func() {
		It("answers the same slot as Slot, on the simulated and the real tier", func(ctx SpecContext) {
			t := startTier()
			node := node(t.masters(ctx)[1])
			for _, key := range []string{"foo", "123456789", "{user1000}.following", "foo{{bar}}zap", "foo{}{bar}", ""} {
				Expect(node.ClusterKeySlot(ctx, key).Val()).To(BeEquivalentTo(cluster.Slot(key)), key)
			}
		}, SpecTimeout(5*time.Second))
	})
})
