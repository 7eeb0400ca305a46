package cluster_test

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/cluster"

	"github.com/tollgate/tollgate/specs"
)

// StartCluster starts a cluster of n nodes that is closed when the spec ends.
func StartCluster(n int, opts ...cluster.Option) *cluster.Cluster {
	GinkgoHelper()
	c, err := cluster.Start(n, opts...)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(c.Close)
	return c
}

// ConnectClusterClient returns an unmodified go-redis ClusterClient seeded
// with one node's address, with the harness's fast-failing options.
func ConnectClusterClient(seeds ...string) *redis.ClusterClient {
	GinkgoHelper()
	return specs.ConnectCluster(seeds...)
}

// ConnectToNode returns a plain client that talks to one node only and
// therefore sees its redirects and refusals as errors.
func ConnectToNode(node *cluster.Node) *redis.Client {
	GinkgoHelper()
	client := redis.NewClient(&redis.Options{
		Addr:            node.Addr(),
		MaxRetries:      -1, // surface LOADING and CLUSTERDOWN instead of retrying them
		DialTimeout:     time.Second,
		DialerRetries:   1,
		ReadTimeout:     time.Second,
		DisableIdentity: true,
	})
	DeferCleanup(client.Close)
	return client
}

// KeysOwnedBy returns count keys named prefix:N whose slots node owns.
func KeysOwnedBy(c *cluster.Cluster, node *cluster.Node, prefix string, count int) []string {
	GinkgoHelper()
	var keys []string
	for i := 0; len(keys) < count; i++ {
		Expect(i).To(BeNumerically("<", 100_000), "no key of %s found on %s", prefix, node.Addr())
		key := fmt.Sprintf("%s:%d", prefix, i)
		if c.NodeForKey(key) == node {
			keys = append(keys, key)
		}
	}
	return keys
}

// KeyOnOtherNode returns a key whose slot differs from key's and is owned by
// another node.
func KeyOnOtherNode(c *cluster.Cluster, key string) string {
	GinkgoHelper()
	owner := c.NodeForKey(key)
	for _, node := range c.Nodes() {
		if node != owner {
			return KeysOwnedBy(c, node, "other", 1)[0]
		}
	}
	Fail("the cluster has a single node")
	return ""
}

// KeyInOtherSlotOfSameNode returns a key on key's node but in another slot.
func KeyInOtherSlotOfSameNode(c *cluster.Cluster, key string) string {
	GinkgoHelper()
	for _, k := range KeysOwnedBy(c, c.NodeForKey(key), "neighbour", 100) {
		if cluster.Slot(k) != cluster.Slot(key) {
			return k
		}
	}
	Fail("no neighbouring slot found")
	return ""
}

// shortly bounds a command that must fail fast rather than hang.
func shortly(ctx context.Context) context.Context {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	DeferCleanup(cancel)
	return ctx
}
