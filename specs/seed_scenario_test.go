package specs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/gateway/session"
	"github.com/tollgate/tollgate/specs"
)

// heapInUse is the heap in use by live objects after a full collection
// (HeapAlloc). HeapInuse would also count the free room in partly used
// spans, which moves with whatever else the process did and hides a leak
// of the size this spec looks for.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// storedExpires reads a key's expires straight from the master that owns
// its session.
func storedExpires(ctx context.Context, env *specs.Env, key string) int64 {
	GinkgoHelper()
	owner := redis.NewClient(&redis.Options{Addr: env.OwnerOf(ctx, session.RedisKey(key))})
	defer owner.Close()
	raw, err := owner.Get(ctx, session.RedisKey(key)).Result()
	Expect(err).NotTo(HaveOccurred())
	var st struct {
		Expires int64 `json:"expires"`
	}
	Expect(json.Unmarshal([]byte(raw), &st)).To(Succeed())
	return st.Expires
}

var _ = Describe("The seed scenario", Label("seed", "jsvm", "slow"), func() {
	When("5,000 requests with a valid security key go through header auth, version v1 and the JS post middleware that refreshes each session", func() {
		It("answers all with 200, moves the session's expires forward in Redis, and leaves no goroutine and no heap growth behind", func(ctx SpecContext) {
			const requests, warmup, workers = 5000, 500, 4
			By("serving fixtures/seed's API definition and refreshSecurity.js unchanged")
			// tyk.conf is reduced to what the scenario needs (the seed's
			// storage.hosts cannot load, see "Loading tyk.conf"); enable_jsvm
			// is the seed's value. The JS reads the real Date, so the gateway
			// runs on the real clock too.
			env := specs.NewEnv(
				specs.WithConfig(`{"secret": "s", "enable_jsvm": true}`),
				specs.WithBaseDir(seedPath()),
				specs.WithAPI(seedAPI()),
				specs.WithUpstreamHost("java"),
				specs.WithWallClock(),
			)
			initialExpires := time.Now().Add(time.Minute).Unix()
			key := env.IssueKey(grantVersion(seedAPIID, "v1", fmt.Sprintf(`"expires": %d`, initialExpires)))

			// send sends n requests from the workers and counts the statuses.
			send := func(n int64) map[int]int {
				var (
					mu       sync.Mutex
					statuses = map[int]int{}
					next     atomic.Int64
					wg       sync.WaitGroup
				)
				for range workers {
					wg.Add(1)
					go func() {
						defer GinkgoRecover()
						defer wg.Done()
						for next.Add(1) <= n && ctx.Err() == nil {
							status := env.Get("/security/users/7", "x-api-version", "v1", "security", key).StatusCode
							mu.Lock()
							statuses[status]++
							mu.Unlock()
						}
					}()
				}
				wg.Wait()
				return statuses
			}

			By("warming up with 500 requests: VMs, connections and pools fill before the heap is measured")
			Expect(send(warmup)).To(Equal(map[int]int{http.StatusOK: warmup}))

			By("sending 5,000 requests from 4 clients")
			before := heapInUse()
			Expect(send(requests)).To(Equal(map[int]int{http.StatusOK: requests}))

			By("finding the refreshed expires on the node that owns the key")
			Expect(storedExpires(ctx, env, key)).To(BeNumerically(">=", initialExpires+1700))

			By("running the middleware on a few reused VMs, not a copy per request")
			Expect(env.Gateway.JSStats(seedAPIID).VMsCreated).To(BeNumerically("<=", 2*workers+2))

			// The recording upstream keeps every request it saw, about
			// 0.9 KiB each: 4.5 MiB of the allowance. A gateway keeping
			// 1 KiB a request fails this (checked).
			By("keeping the heap in use after GC within 8 MiB of where it was after the warm-up")
			after := heapInUse()
			GinkgoWriter.Printf("heap in use after GC: %d bytes after the warm-up, %d after the 5,000 requests\n", before, after)
			Expect(int64(after) - int64(before)).To(BeNumerically("<", 8<<20))
			// The leak guard then checks, after the environment is stopped,
			// that every goroutine this spec started has ended.
		}, SpecTimeout(3*time.Minute))
	})
})
