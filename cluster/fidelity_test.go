package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/specs"
)

// tier is the cluster a fidelity spec runs on: a simulated one, or on the
// real tier (make test-real) the real Redis Cluster, emptied first.
type tier struct {
	client *redis.ClusterClient
}

func startTier() tier {
	GinkgoHelper()
	addrs, _ := specs.StartCluster(cluster.DefaultNodes)
	return tier{client: ConnectClusterClient(addrs...)}
}

// owner is the address of the master that serves key.
func (t tier) owner(ctx context.Context, key string) string {
	GinkgoHelper()
	return specs.MasterOf(ctx, t.client, key)
}

// masters lists the masters' addresses, sorted.
func (t tier) masters(ctx context.Context) []string {
	GinkgoHelper()
	return specs.Masters(ctx, t.client)
}

// other is a master that does not serve key.
func (t tier) other(ctx context.Context, key string) string {
	GinkgoHelper()
	owner := t.owner(ctx, key)
	for _, m := range t.masters(ctx) {
		if m != owner {
			return m
		}
	}
	Fail("the cluster has a single master")
	return ""
}

// keyOn returns a key named prefix:N that master addr serves, in a slot
// other than those of avoid.
func (t tier) keyOn(ctx context.Context, addr, prefix string, avoid ...string) string {
	GinkgoHelper()
	for i := range 100_000 {
		key := fmt.Sprintf("%s:%d", prefix, i)
		if cluster.Slot(key) == cluster.Slot(prefix) || slices.ContainsFunc(avoid, func(a string) bool { return cluster.Slot(a) == cluster.Slot(key) }) {
			continue
		}
		if t.owner(ctx, key) == addr {
			return key
		}
	}
	Fail("no key found on " + addr)
	return ""
}

// node is a plain client of one node, which sees its redirects and
// refusals as errors.
func node(addr string) *redis.Client {
	GinkgoHelper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second, DisableIdentity: true})
	DeferCleanup(c.Close)
	return c
}

// These specs describe what a client sees, in terms both a simulated and a
// real Redis Cluster can be asked about; `make test-real` runs them on
// redis-server, so a difference shows as a failure here.
var _ = Describe("Behaviour shared with a real Redis Cluster", func() {
	var t tier

	BeforeEach(func() { t = startTier() })

	It("computes a key's slot with CRC16 and hash tags (CLUSTER KEYSLOT)", func(ctx SpecContext) {
		Expect(t.client.ClusterKeySlot(ctx, "foo").Val()).To(BeEquivalentTo(12182))
		Expect(t.client.ClusterKeySlot(ctx, "{user1000}.following").Val()).To(Equal(t.client.ClusterKeySlot(ctx, "{user1000}.followers").Val()))
	}, SpecTimeout(5*time.Second))

	It("reports an ok state with all 16384 slots assigned (CLUSTER INFO)", func(ctx SpecContext) {
		info := node(t.masters(ctx)[0]).ClusterInfo(ctx).Val()
		Expect(info).To(ContainSubstring("cluster_state:ok\r\n"))
		Expect(info).To(ContainSubstring("cluster_slots_assigned:16384\r\n"))
	}, SpecTimeout(5*time.Second))

	It("answers MOVED with the slot and the owner's address to a node that does not serve the key", func(ctx SpecContext) {
		err := node(t.other(ctx, "foo")).Get(ctx, "foo").Err()
		Expect(err).To(MatchError(fmt.Sprintf("MOVED 12182 %s", t.owner(ctx, "foo"))))
	}, SpecTimeout(5*time.Second))

	It("refuses a multi-key command whose keys span slots with CROSSSLOT", func(ctx SpecContext) {
		a := "{user1}.name"
		b := t.keyOn(ctx, t.owner(ctx, a), "neighbour", a)
		Expect(node(t.owner(ctx, a)).MSet(ctx, a, "1", b, "2").Err()).To(MatchError(ContainSubstring("CROSSSLOT")))
		Expect(t.client.Exists(ctx, a, b).Val()).To(BeZero())
	}, SpecTimeout(5*time.Second))

	It("discards a transaction that queued a key of another node with EXECABORT", func(ctx SpecContext) {
		m := t.masters(ctx)[0]
		own := t.keyOn(ctx, m, "own")
		foreign := t.keyOn(ctx, t.other(ctx, own), "foreign")
		_, err := node(m).TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.Set(ctx, own, "1", 0)
			pipe.Set(ctx, foreign, "2", 0)
			return nil
		})
		Expect(err).To(MatchError(ContainSubstring("EXECABORT")))
		Expect(t.client.Exists(ctx, own).Val()).To(BeZero())
	}, SpecTimeout(5*time.Second))

	It("refuses a transaction over two slots of the same node with CROSSSLOT", func(ctx SpecContext) {
		m := t.masters(ctx)[1]
		own := t.keyOn(ctx, m, "own")
		neighbour := t.keyOn(ctx, m, "neighbour", own)
		_, err := node(m).TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.Set(ctx, own, "1", 0)
			pipe.Set(ctx, neighbour, "2", 0)
			return nil
		})
		Expect(err).To(MatchError(ContainSubstring("CROSSSLOT")))
		Expect(t.client.Exists(ctx, own).Val() + t.client.Exists(ctx, neighbour).Val()).To(BeZero())
	}, SpecTimeout(5*time.Second))

	It("commits a ClusterClient transaction on hash-tagged keys, TTL included", func(ctx SpecContext) {
		_, err := t.client.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.Incr(ctx, "{quota}.used")
			pipe.Expire(ctx, "{quota}.used", time.Minute)
			return nil
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(t.client.Get(ctx, "{quota}.used").Val()).To(Equal("1"))
		Expect(t.client.TTL(ctx, "{quota}.used").Val()).To(BeNumerically("~", time.Minute, time.Second))
	}, SpecTimeout(5*time.Second))

	It("refuses a script's access to a key of another node", func(ctx SpecContext) {
		foreign := t.keyOn(ctx, t.other(ctx, "{bucket}.a"), "foreign")
		err := t.client.Eval(ctx, "return redis.call('GET', ARGV[1])", []string{"{bucket}.a"}, foreign).Err()
		Expect(err).To(MatchError(ContainSubstring("non local key")))
	}, SpecTimeout(5*time.Second))

	It("refuses SELECT of another database", func(ctx SpecContext) {
		Expect(node(t.masters(ctx)[0]).Do(ctx, "SELECT", "1").Err()).To(MatchError("ERR SELECT is not allowed in cluster mode"))
	}, SpecTimeout(5*time.Second))

	When("a message is published on one node and subscribed to on another", func() {
		var sub *redis.PubSub

		BeforeEach(func(ctx SpecContext) {
			sub = node(t.masters(ctx)[2]).Subscribe(ctx, "tyk.cluster.notifications")
			DeferCleanup(sub.Close)
			_, err := sub.Receive(ctx) // the subscription's confirmation
			Expect(err).NotTo(HaveOccurred())
		}, NodeTimeout(5*time.Second))

		It("reaches the subscriber", func(ctx SpecContext) {
			Expect(node(t.masters(ctx)[0]).Publish(ctx, "tyk.cluster.notifications", "reload").Err()).To(Succeed())
			msg, err := sub.ReceiveMessage(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(msg.Payload).To(Equal("reload"))
		}, SpecTimeout(5*time.Second))

		It("counts in PUBLISH's reply only the subscribers of the node published on", func(ctx SpecContext) {
			Expect(node(t.masters(ctx)[0]).Publish(ctx, "tyk.cluster.notifications", "reload").Val()).To(BeZero())
			Expect(node(t.masters(ctx)[2]).Publish(ctx, "tyk.cluster.notifications", "reload").Val()).To(BeEquivalentTo(1))
		}, SpecTimeout(5*time.Second))
	})
})
