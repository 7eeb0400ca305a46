package specs_test

import (
	"fmt"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/specs"
)

// parkedPerRun is a goroutine an operation leaves behind on every run.
func parkedPerRun(stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	<-stop
}

// growingCache is a map nobody prunes: one 16 KiB entry per distinct key,
// 3 MiB a window of 200 runs, far above what the collector and a real
// cluster's client move the heap by between two readings.
type growingCache struct {
	mu      sync.Mutex
	entries map[string][]byte
}

func (c *growingCache) remember(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[key] = make([]byte, 16<<10)
}

var _ = Describe("The steady-state guard", Label("leak", "steady-state"), func() {
	When("every run of an operation leaves a goroutine behind", func() {
		It("reports that goroutines grew, by how much a run, and the function they started in", func() {
			stop := make(chan struct{})
			var wg sync.WaitGroup
			DeferCleanup(func() {
				close(stop)
				wg.Wait()
			})
			leaky := specs.Repeating(func(int) {
				wg.Add(1)
				go parkedPerRun(stop, &wg)
			}, 20)

			grow := specs.GrowIn(specs.Goroutines)
			grew, err := grow.Match(leaky)
			Expect(err).NotTo(HaveOccurred())
			Expect(grew).To(BeTrue())
			msg := grow.NegatedFailureMessage(leaky)
			Expect(msg).To(ContainSubstring("but goroutines grew"))
			Expect(msg).To(ContainSubstring("GREW: +20 and +20 in the two windows (allowed 2 a window), about 1.00 a run"))
			// At least the 40 of the two windows; a goroutine of the warm-up
			// that had not started running yet at the first reading may be
			// counted too.
			Expect(msg).To(MatchRegexp(`\+(4\d) started in github.com/tollgate/tollgate/specs_test.parkedPerRun`))
		})
	})

	When("every run adds an entry to a map nobody prunes", func() {
		It("reports that the live heap grew, and where the growing bytes were allocated", func() {
			cache := &growingCache{entries: map[string][]byte{}}
			leaky := specs.Repeating(func(run int) { cache.remember(fmt.Sprintf("key-%d", run)) }, 200)

			grow := specs.GrowIn(specs.LiveHeap(64))
			grew, err := grow.Match(leaky)
			Expect(err).NotTo(HaveOccurred())
			Expect(grew).To(BeTrue())
			msg := grow.NegatedFailureMessage(leaky)
			Expect(msg).To(ContainSubstring("but live heap (the simulated Redis left out) grew"))
			Expect(msg).To(MatchRegexp(`allocated in github.com/tollgate/tollgate/specs_test.\(\*growingCache\).remember`))
		})
	})

	When("every run adds one to a count the gateway reports (a registration nobody removes)", func() {
		It("reports that the count grew, past its allowance in both windows", func() {
			var mu sync.Mutex
			registered := 0
			leaky := specs.Repeating(func(int) {
				mu.Lock()
				defer mu.Unlock()
				registered++
			}, 20)
			grow := specs.GrowIn(specs.Count("handlers registered", 1, func() int {
				mu.Lock()
				defer mu.Unlock()
				return registered
			}))
			grew, err := grow.Match(leaky)
			Expect(err).NotTo(HaveOccurred())
			Expect(grew).To(BeTrue())
			Expect(grow.NegatedFailureMessage(leaky)).To(ContainSubstring("but handlers registered grew"))
		})
	})

	When("every run writes a Redis key of its own that nothing expires", func() {
		It("reports that the keys in Redis grew", func(ctx SpecContext) {
			env := specs.NewEnv()
			leaky := specs.Repeating(func(run int) {
				Expect(env.Redis.Set(ctx, fmt.Sprintf("kept-%d", run), "x", 0).Err()).To(Succeed())
			}, 20)
			grow := specs.GrowIn(env.RedisKeys())
			grew, err := grow.Match(leaky)
			Expect(err).NotTo(HaveOccurred())
			Expect(grew).To(BeTrue())
			Expect(grow.NegatedFailureMessage(leaky)).To(ContainSubstring("but keys in Redis grew"))
		}, SpecTimeout(30*time.Second))
	})

	When("the runs hold nothing once they are done", func() {
		It("reports every gauge steady", func() {
			var wg sync.WaitGroup
			tidy := specs.Repeating(func(run int) {
				wg.Add(1)
				go func() { defer wg.Done() }()
				wg.Wait()
				_ = make([]byte, 1024)
			}, 50)
			Expect(tidy).NotTo(specs.GrowIn(specs.Goroutines, specs.LiveHeap(0)))
		})
	})
})
