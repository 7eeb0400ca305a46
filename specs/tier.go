package specs

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/cluster"
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
// the reason given: it moves the cluster's clock, kills or inspects a
// simulated node, and so on. The real tier runs with
// --label-filter='!simulated-only', so the label simulated-only stays as it
// is; the reason travels in a second label, "simulated-only: <reason>", which
// a label filter reads as a key and value and never as simulated-only
// itself. It reaches the report of a dry run, where `make outline` prints it.
func SimulatedOnly(reason string) Labels {
	reason = strings.TrimSpace(labelUnsafe.Replace(reason))
	if reason == "" {
		return Label(simulatedOnly)
	}
	return Label(simulatedOnly, simulatedOnly+": "+reason)
}

const simulatedOnly = "simulated-only"

// labelUnsafe replaces the characters Ginkgo refuses in a label (it parses
// them as label-filter syntax) with the nearest ones it accepts, so any
// reason makes a valid label.
var labelUnsafe = strings.NewReplacer(
	", ", " \u2014 ", // EM DASH: "…runs out, and…" reads "…runs out — and…"
	",", ";",
	"(", "[",
	")", "]",
	"/", "\u2215", // DIVISION SLASH, so a path still reads as one
	"&", "+",
	"|", "\u00a6", // BROKEN BAR
	"!", ".",
)

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

// StartCluster gives a spec its Redis Cluster. On the real tier that is
// the real cluster, emptied first, and sim is nil; otherwise a simulated
// cluster of n nodes, closed when the spec ends.
func StartCluster(n int) (addrs []string, sim *cluster.Cluster) {
	GinkgoHelper()
	if real := RealCluster(); real != nil {
		FlushRealCluster(ConnectCluster(real...))
		return real, nil
	}
	c, err := cluster.Start(n)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(c.Close)
	return c.Addrs(), c
}

// MasterOf returns the address of the master that stores key, as the
// cluster itself reports it (CLUSTER SLOTS), so it works on both tiers.
func MasterOf(ctx context.Context, client *redis.ClusterClient, key string) string {
	GinkgoHelper()
	master, err := client.MasterForKey(ctx, key)
	Expect(err).NotTo(HaveOccurred())
	return master.Options().Addr
}

// Masters lists the addresses of the cluster's masters, sorted.
func Masters(ctx context.Context, client *redis.ClusterClient) []string {
	GinkgoHelper()
	var (
		mu    sync.Mutex
		addrs []string
	)
	Expect(client.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		addrs = append(addrs, m.Options().Addr)
		return nil
	})).To(Succeed())
	slices.Sort(addrs)
	return addrs
}

// OwnerOf returns the address of the master that stores key.
func (e *Env) OwnerOf(ctx context.Context, key string) string {
	GinkgoHelper()
	return MasterOf(ctx, e.Redis, key)
}

// Masters lists the addresses of the cluster's masters, sorted.
func (e *Env) Masters(ctx context.Context) []string {
	GinkgoHelper()
	return Masters(ctx, e.Redis)
}
