package jsvm_test

import (
	"context"
	"log/slog"
	"runtime/metrics"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/jsvm"
)

// doublingJS is the hostile loop of the issue: each step doubles a string
// and keeps it, so the heap doubles too.
const doublingJS = `var s = "x"; var a = []; while (true) { s = s + s; a.push(s); }`

// fakeHeap is a heap size a spec sets, and counts how often it is read.
type fakeHeap struct {
	size, reads atomic.Uint64
}

func (h *fakeHeap) read() uint64 {
	h.reads.Add(1)
	return h.size.Load()
}

// heapObjects is the process's heap as the budget reads it by default.
func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

var _ = Describe("Memory limit", Label("limits-hostile"), func() {
	var env *Env

	BeforeEach(func() {
		env = NewEnv()
		env.Config.Timeout = 10 * time.Second
	})

	// budget starts a MemoryBudget of limit bytes for env's programs,
	// reading heap (nil: the process's heap); the spec closes it.
	budget := func(limit uint64, heap func() uint64) *jsvm.MemoryBudget {
		GinkgoHelper()
		b := jsvm.NewMemoryBudget(jsvm.MemoryOptions{Limit: limit, Heap: heap, Log: slog.New(slog.NewJSONHandler(env.Logs, nil))})
		DeferCleanup(b.Close)
		env.Config.Memory = b
		return b
	}

	When("the heap passes the limit while a script runs (limit 100 MiB, timeout 10s)", func() {
		var (
			heap *fakeHeap
			prog *jsvm.Program
			out  outcome
		)

		BeforeEach(func(ctx SpecContext) {
			heap = &fakeHeap{}
			budget(100<<20, heap.read)
			prog = env.Compile(spinScript)
			done := RunInBackground(ctx, prog, spinRequest())
			Eventually(ctx, env.Host.Batches).Should(Receive(Equal("spinning")))
			heap.size.Store(101 << 20)
			Eventually(ctx, done).Should(Receive(&out))
		}, NodeTimeout(10*time.Second))

		It("stops the run with ErrMemoryLimit, naming the heap and the limit", func() {
			Expect(out.err).To(MatchError(jsvm.ErrMemoryLimit))
			Expect(out.err).To(MatchError(ContainSubstring("heap 101 MiB, limit 100 MiB")))
		})

		It("stops it long before its timeout", func() {
			Expect(out.took).To(BeNumerically("<", 2*time.Second))
		})

		It("discards the VM and counts the stop", func() {
			Expect(prog.Stats()).To(And(
				HaveField("MemoryStops", BeEquivalentTo(1)),
				HaveField("Timeouts", BeEquivalentTo(0)),
				HaveField("VMsDiscarded", BeEquivalentTo(1)),
				HaveField("Idle", 0),
			))
		})

		It("logs the API whose run it stopped", func() {
			Expect(env.LogRecords()).To(ContainElement(And(
				HaveKeyWithValue("msg", ContainSubstring("JS memory limit")),
				HaveKeyWithValue("api_ids", ConsistOf("api-1")),
				HaveKeyWithValue("limit_mib", BeEquivalentTo(100)),
			)))
		})

		It("runs the next request once the heap is below the limit again", func(ctx SpecContext) {
			heap.size.Store(99 << 20)
			Run(ctx, prog, plainGet(), `{}`)
		}, SpecTimeout(10*time.Second))
	})

	When("a script catches the interrupt and keeps looping", func() {
		It("still ends with ErrMemoryLimit", func(ctx SpecContext) {
			heap := &fakeHeap{}
			budget(100<<20, heap.read)
			prog := env.Compile(middleware(`while (true) { try { try { while (true) {} } catch (e) {} } catch (e) {} }`))
			heap.size.Store(200 << 20)
			_, err := prog.Run(ctx, "mw", plainGet(), nil)
			Expect(err).To(MatchError(jsvm.ErrMemoryLimit))
		}, SpecTimeout(10*time.Second))
	})

	When("the heap stays below the limit", func() {
		It("lets runs finish", func(ctx SpecContext) {
			heap := &fakeHeap{}
			heap.size.Store(99 << 20)
			budget(100<<20, heap.read)
			prog := env.Compile(middleware(`var a = []; for (var i = 0; i < 1000; i++) { a.push("x" + i); }`))
			for range 5 {
				Run(ctx, prog, plainGet(), `{}`)
			}
			Expect(prog.Stats().MemoryStops).To(BeZero())
		}, SpecTimeout(10*time.Second))
	})

	When("no run is in flight", func() {
		It("does not look at the heap", func() {
			heap := &fakeHeap{}
			budget(100<<20, heap.read)
			Consistently(heap.reads.Load).WithTimeout(100 * time.Millisecond).Should(BeZero())
		})
	})

	When("a run is in flight", func() {
		It("looks at the heap again and again", func(ctx SpecContext) {
			heap := &fakeHeap{}
			budget(100<<20, heap.read)
			prog := env.Compile(spinScript)
			spinCtx, stopSpinning := context.WithCancel(ctx)
			defer stopSpinning()
			RunInBackground(spinCtx, prog, spinRequest())
			Eventually(ctx, heap.reads.Load).Should(BeNumerically(">=", 3))
		}, SpecTimeout(10*time.Second))
	})

	When("a script's top level passes the limit while it loads", func() {
		It("Compile fails with ErrMemoryLimit naming the file", func(ctx SpecContext) {
			heap := &fakeHeap{}
			budget(100<<20, heap.read)
			done := make(chan error, 1)
			go func() {
				_, err := jsvm.Compile(testSpec(), []jsvm.Source{{Name: "mw", File: "/apps/hog.js", Code: []byte(`TykBatchRequest("loading"); while (true) {}`)}}, env.Config)
				done <- err
			}()
			Eventually(ctx, env.Host.Batches).Should(Receive(Equal("loading")))
			heap.size.Store(101 << 20)
			var err error
			Eventually(ctx, done).Should(Receive(&err))
			Expect(err).To(MatchError(jsvm.ErrMemoryLimit))
			Expect(err).To(MatchError(HavePrefix("/apps/hog.js: ")))
		}, SpecTimeout(10*time.Second))
	})

	When("a script doubles a string on the real heap (limit 64 MiB)", Label("slow"), func() {
		var (
			err  error
			took time.Duration
		)

		BeforeEach(func(ctx SpecContext) {
			budget(64<<20, nil)
			prog := env.Compile(middleware(doublingJS))
			start := time.Now()
			_, err = prog.Run(ctx, "mw", plainGet(), nil)
			took = time.Since(start)
		}, NodeTimeout(20*time.Second))

		It("stops it with ErrMemoryLimit before its timeout", func() {
			Expect(err).To(MatchError(jsvm.ErrMemoryLimit))
			Expect(took).To(BeNumerically("<", env.Config.Timeout))
		})

		It("has collected what the script held by the time Run returns", func() {
			Expect(heapObjects()).To(BeNumerically("<", 64<<20))
		})
	})
})
