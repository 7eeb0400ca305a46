package specs

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"
)

// RealClusterEnv names the environment variable that moves the specs from
// the simulated cluster to a real Redis Cluster: its value lists the nodes
// as host:port,host:port,... (`make test-real` sets it from `make
// cluster-up`). The real tier runs one spec at a time and empties the
// cluster before each, so specs keep their keys apart.
const RealClusterEnv = "TOLLGATE_REDIS_CLUSTER"

// RealCluster returns the real cluster's node addresses, or nil when the
// specs run on the simulated cluster.
func RealCluster() []string {
	v := strings.TrimSpace(os.Getenv(RealClusterEnv))
	if v == "" {
		return nil
	}
	var addrs []string
	for _, a := range strings.Split(v, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// SimulatedOnly labels a spec that cannot run on a real Redis Cluster, for
// the reason given (the reason is for the reader of the spec): it moves the
// cluster's clock, kills or inspects a simulated node, and so on. The real
// tier runs with --label-filter='!simulated-only'.
func SimulatedOnly(reason string) Labels {
	_ = reason
	return Label("simulated-only")
}

// RealOnly labels a spec that needs a real Redis Cluster (replicas,
// failover). `make test` leaves these out; the spec skips itself when run
// without one.
func RealOnly() Labels { return Label("real-only") }

// FlushRealCluster waits until every master of the real cluster answers
// and then empties them all, so a spec starts from nothing whatever the
// spec before it left behind (a failover included).
func FlushRealCluster(client *redis.ClusterClient) {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	Eventually(func() error {
		client.ReloadState(ctx)
		return client.ForEachMaster(ctx, func(ctx context.Context, master *redis.Client) error {
			info, err := master.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") {
				return fmt.Errorf("%s: cluster state is not ok", master.Options().Addr)
			}
			return master.FlushAll(ctx).Err()
		})
	}).WithContext(ctx).WithPolling(100*time.Millisecond).Should(Succeed(), "the real cluster is not serving every slot")
}

// OwnerOf returns the address of the master that stores key, asking the
// cluster itself (CLUSTER SLOTS), so it works on both tiers.
func (e *Env) OwnerOf(ctx context.Context, key string) string {
	GinkgoHelper()
	master, err := e.Redis.MasterForKey(ctx, key)
	Expect(err).NotTo(HaveOccurred())
	return master.Options().Addr
}

// Masters lists the addresses of the cluster's masters.
func (e *Env) Masters(ctx context.Context) []string {
	GinkgoHelper()
	var (
		mu    sync.Mutex
		addrs []string
	)
	Expect(e.Redis.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		addrs = append(addrs, m.Options().Addr)
		return nil
	})).To(Succeed())
	return addrs
}
