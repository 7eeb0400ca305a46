package specs_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/gateway/session"
	"github.com/tollgate/tollgate/specs"
)

// clusterScript is tools/redis-cluster/cluster.sh, which started the real
// cluster and can start a stopped node again.
var clusterScript = filepath.Join("..", "tools", "redis-cluster", "cluster.sh")

// clusterDir is where cluster.sh keeps the nodes' files.
func clusterDir() string {
	if d := os.Getenv("TOLLGATE_CLUSTER_DIR"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "tollgate-redis-cluster")
}

// KillRedisNode kills the redis-server on addr with SIGKILL, as a crash
// would, and starts it again when the spec ends; it rejoins as a replica.
func KillRedisNode(addr string) {
	GinkgoHelper()
	_, port, err := net.SplitHostPort(addr)
	Expect(err).NotTo(HaveOccurred())
	raw, err := os.ReadFile(filepath.Join(clusterDir(), port, "redis.pid"))
	Expect(err).NotTo(HaveOccurred(), "the real cluster was not started by tools/redis-cluster/cluster.sh")
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	Expect(err).NotTo(HaveOccurred())
	Expect(syscall.Kill(pid, syscall.SIGKILL)).To(Succeed())
	DeferCleanup(func(ctx SpecContext) {
		out, err := exec.CommandContext(ctx, clusterScript, "start", port).CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		waitForHealthyCluster(ctx, addr)
	}, NodeTimeout(60*time.Second))
}

// waitForHealthyCluster waits until the node at addr is back, known to
// every node as connected and not failing, and in sync with its master:
// a replica still loading its copy could not be promoted, and the next
// spec's failover would never end.
func waitForHealthyCluster(ctx context.Context, addr string) {
	GinkgoHelper()
	node := redis.NewClient(&redis.Options{Addr: addr})
	defer node.Close()
	Eventually(func() (string, error) {
		return node.ClusterNodes(ctx).Result()
	}).WithContext(ctx).WithPolling(200 * time.Millisecond).Should(And(
		Not(ContainSubstring("fail")), Not(ContainSubstring("disconnected")), Not(ContainSubstring("handshake"))))
	Eventually(func() (string, error) {
		return node.Info(ctx, "replication").Result()
	}).WithContext(ctx).WithPolling(200 * time.Millisecond).Should(And(
		ContainSubstring("role:slave"), ContainSubstring("master_link_status:up"), ContainSubstring("master_sync_in_progress:0")))
}

// waitForRedialProbes waits for go-redis's redial probes to end. A pool
// that saw as many failed dials as its size starts one, and it sleeps a
// second between dials, so it can outlive the client's Close by that long.
func waitForRedialProbes(ctx context.Context) {
	GinkgoHelper()
	Eventually(func() string {
		buf := make([]byte, 1<<20)
		return string(buf[:runtime.Stack(buf, true)])
	}).WithContext(ctx).WithTimeout(5 * time.Second).ShouldNot(ContainSubstring("pool.(*ConnPool).tryDial"))
}

// outcome is one request of the steady load.
type outcome struct {
	at     time.Time
	status int
}

var _ = Describe("Failover on a real Redis Cluster", specs.RealOnly(), Label("cluster", "slow"), func() {
	When("the master holding a key's session is killed under steady load", func() {
		var (
			env       *specs.Env
			victimKey string
			otherKeys []string
			results   map[string][]outcome
		)

		BeforeEach(func(ctx SpecContext) {
			if specs.RealCluster() == nil {
				Skip("needs a real Redis Cluster: make cluster-up, then make test-real")
			}
			// Registered first, so it runs after the gateway has shut down.
			DeferCleanup(waitForRedialProbes, NodeTimeout(10*time.Second))
			// Without the local session cache, so every request reads its
			// session from its master.
			env = specs.NewEnv(specs.WithConfig(`{"secret": "s", "local_session_cache": {"disable_cached_session_state": true}}`),
				specs.WithAPI(keyedAPI("orders", "/orders/")))
			masters := env.Masters(ctx)
			onMaster := map[string]string{}
			for len(onMaster) < len(masters) {
				key := env.IssueKey(grantTo("orders"))
				onMaster[env.OwnerOf(ctx, session.RedisKey(key))] = key
			}
			victim := masters[0]
			victimKey, otherKeys = onMaster[victim], nil
			for addr, key := range onMaster {
				if addr != victim {
					otherKeys = append(otherKeys, key)
				}
			}

			By("sending requests for every key from 4 clients, at most 20,000 or 30 s")
			results = map[string][]outcome{}
			var (
				mu   sync.Mutex
				wg   sync.WaitGroup
				sent int
			)
			keys := append([]string{victimKey}, otherKeys...)
			loadCtx, stop := context.WithTimeout(ctx, 30*time.Second)
			recovered := make(chan struct{})
			var once sync.Once
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer GinkgoRecover()
					defer wg.Done()
					for i := w; loadCtx.Err() == nil; i++ {
						mu.Lock()
						if sent >= 20_000 {
							mu.Unlock()
							return
						}
						sent++
						mu.Unlock()
						key := keys[i%len(keys)]
						status := env.Get("/orders/", "Authorization", key).StatusCode
						mu.Lock()
						results[key] = append(results[key], outcome{time.Now(), status})
						r := results[victimKey]
						// Recovered: the victim's key failed at some point and its
						// last 20 requests were served.
						if key == victimKey && len(r) > 20 && failedOnce(r) && allOK(r[len(r)-20:]) {
							once.Do(func() { close(recovered) })
						}
						mu.Unlock()
					}
				}()
			}
			DeferCleanup(func() { stop(); wg.Wait() })

			By("killing the master of the first key with SIGKILL once the load runs")
			Eventually(func() int {
				mu.Lock()
				defer mu.Unlock()
				return len(results[victimKey])
			}).WithContext(ctx).Should(BeNumerically(">", 20))
			KillRedisNode(victim)

			By("waiting until the promoted replica serves the key")
			select {
			case <-recovered:
			case <-loadCtx.Done():
			}
			stop()
			wg.Wait()
		}, NodeTimeout(60*time.Second))

		It("recovers without a restart: the key is served again by the promoted replica", func() {
			r := results[victimKey]
			Expect(failedOnce(r)).To(BeTrue(), "the key's requests never failed: was its master killed?")
			Expect(len(r)).To(BeNumerically(">", 20))
			Expect(allOK(r[len(r)-20:])).To(BeTrue(), "the key is not served again: %v", statusCounts(r))
		})

		It("fails the key's requests only with 503 The key store is unavailable, and only during the failover window", func() {
			r := results[victimKey]
			first, last := failureWindow(r)
			window := last.Sub(first)
			AddReportEntry("failover window", window.String())
			GinkgoWriter.Printf("failover window: %s (%v)\n", window, statusCounts(r))
			Expect(statusCounts(r)).To(HaveLen(2), "statuses other than 200 and 503")
			Expect(statusCounts(r)).To(HaveKey(http.StatusServiceUnavailable))
			// cluster-node-timeout is 2 s; detection, election and the
			// gateway's re-read of the slot map come on top.
			Expect(window).To(BeNumerically("<", 15*time.Second))
		})

		It("keeps serving the keys of the other masters throughout", func() {
			for _, key := range otherKeys {
				Expect(results[key]).NotTo(BeEmpty())
				Expect(statusCounts(results[key])).To(Equal(map[int]int{http.StatusOK: len(results[key])}))
			}
		})
	})
})

func failedOnce(r []outcome) bool {
	for _, o := range r {
		if o.status != http.StatusOK {
			return true
		}
	}
	return false
}

func allOK(r []outcome) bool {
	for _, o := range r {
		if o.status != http.StatusOK {
			return false
		}
	}
	return true
}

func statusCounts(r []outcome) map[int]int {
	counts := map[int]int{}
	for _, o := range r {
		counts[o.status]++
	}
	return counts
}

// failureWindow is the time from the first failed request to the last.
func failureWindow(r []outcome) (first, last time.Time) {
	for _, o := range r {
		if o.status == http.StatusOK {
			continue
		}
		if first.IsZero() {
			first = o.at
		}
		last = o.at
	}
	return first, last
}
