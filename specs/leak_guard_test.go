package specs_test

import (
	"fmt"
	"os/exec"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/specs"
)

// errorRecorder stands in for GinkgoT() so a spec can watch the leak guard
// fail without failing itself.
type errorRecorder struct {
	mu     sync.Mutex
	errors []string
}

func (r *errorRecorder) Error(args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprint(args...))
}

func (r *errorRecorder) Errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errors...)
}

// leakyWorker is a goroutine nobody stops: the shape of Tyk #804, where a
// goroutine blocked forever on a channel nobody read.
func leakyWorker(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	<-stop
}

var _ = Describe("The leak guard", Label("leak"), func() {
	When("a spec leaves a goroutine running", func() {
		It("reports the goroutine, naming the function it is blocked in", func() {
			guard := specs.NewLeakGuard()
			stop, done := make(chan struct{}), make(chan struct{})
			go leakyWorker(stop, done)

			recorder := &errorRecorder{}
			guard.Verify(recorder)

			// Stop it before this spec's own guard looks.
			close(stop)
			<-done
			Expect(recorder.Errors()).To(ContainElement(ContainSubstring("specs_test.leakyWorker")))
		})
	})

	When("every goroutine a spec started has ended", func() {
		It("reports nothing", func() {
			guard := specs.NewLeakGuard()
			stop, done := make(chan struct{}), make(chan struct{})
			go leakyWorker(stop, done)
			close(stop)
			<-done

			recorder := &errorRecorder{}
			guard.Verify(recorder)
			Expect(recorder.Errors()).To(BeEmpty())
		})
	})
})

var _ = Describe("The leak guard in a suite", Label("leak", "slow"), func() {
	// Ordered, so the child suite is built and run once for both facts.
	When("a suite's specs run with the guard as their first BeforeEach", Ordered, func() {
		var output string

		BeforeAll(func(ctx SpecContext) {
			// _fixtures/leaky holds one spec that leaks and one that stops its
			// goroutine in a DeferCleanup. It runs in its own process, so the
			// leaked goroutine dies with it.
			cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "./_fixtures/leaky", "-ginkgo.no-color", "-ginkgo.v")
			out, err := cmd.CombinedOutput()
			output = string(out)
			Expect(err).To(HaveOccurred(), "the leaky suite passed:\n%s", output)
		}, NodeTimeout(3*time.Minute))

		It("fails the spec that leaked, naming the leaked goroutine", func() {
			Expect(output).To(MatchRegexp(`\[FAIL\] .*\[DeferCleanup \(Each\)\] goroutines leaks one`))
			Expect(output).To(ContainSubstring("found unexpected goroutines"))
			Expect(output).To(ContainSubstring("leaky.parkedForever"))
		})

		It("passes the spec whose own cleanup stopped its goroutine, because the guard runs last", func() {
			Expect(output).NotTo(MatchRegexp(`\[FAIL\] .*goroutines stops its own in a cleanup`))
			Expect(output).To(ContainSubstring("1 Passed | 1 Failed"))
		})
	})
})
