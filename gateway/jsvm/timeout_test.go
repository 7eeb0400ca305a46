package jsvm_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/jsvm"
	"github.com/tollgate/tollgate/specs"
)

// spinScript loops for ever when the request has an X-Spin header, after
// announcing it through TykBatchRequest("spinning"); otherwise it returns
// at once.
const spinScript = `var mw = new TykJS.TykMiddleware.NewMiddleware({});
mw.NewProcessRequest(function (request, session, config) {
    if (request.Headers["X-Spin"]) {
        TykBatchRequest("spinning");
        while (true) {}
    }
    return mw.ReturnData(request);
});`

func spinRequest() jsvm.Request {
	req := plainGet()
	req.Headers = map[string][]string{"X-Spin": {"1"}}
	return req
}

// outcome is how a run that was started in the background ended.
type outcome struct {
	err  error
	took time.Duration
}

// RunInBackground runs req on another goroutine; the channel delivers how
// it ended and is then closed. The spec waits for it before ending.
func RunInBackground(ctx context.Context, prog *jsvm.Program, req jsvm.Request) <-chan outcome {
	done := make(chan outcome, 1)
	start := time.Now()
	go func() {
		_, err := prog.Run(ctx, "mw", req, nil)
		done <- outcome{err, time.Since(start)}
		close(done)
	}()
	DeferCleanup(func(ctx SpecContext) {
		Eventually(ctx, done).Should(BeClosed())
	}, NodeTimeout(10*time.Second))
	return done
}

var _ = Describe("Time limits", func() {
	var env *Env

	BeforeEach(func() {
		env = NewEnv()
	})

	When("a script loops for ever (Timeout 50ms)", func() {
		var (
			prog  *jsvm.Program
			err   error
			took  time.Duration
			guard *specs.LeakGuard
		)

		BeforeEach(func(ctx SpecContext) {
			env.Config.Timeout = 50 * time.Millisecond
			prog = env.Compile(spinScript)
			guard = specs.NewLeakGuard()
			start := time.Now()
			_, err = prog.Run(ctx, "mw", spinRequest(), nil)
			took = time.Since(start)
		}, NodeTimeout(10*time.Second))

		It("returns ErrTimeout naming the middleware and the timeout", func() {
			Expect(err).To(MatchError(jsvm.ErrTimeout))
			Expect(err).To(MatchError("running mw: JS middleware timed out after 50ms"))
		})

		It("returns promptly", func() {
			Expect(took).To(BeNumerically("<", time.Second))
		})

		It("discards the VM and counts the timeout", func() {
			Expect(prog.Stats()).To(And(
				HaveField("Timeouts", BeEquivalentTo(1)),
				HaveField("VMsDiscarded", BeEquivalentTo(1)),
				HaveField("Idle", 0),
			))
		})

		It("leaves no goroutine behind", func() {
			guard.Verify(GinkgoT())
		})

		It("still runs later requests", func(ctx SpecContext) {
			Run(ctx, prog, plainGet(), `{}`)
		}, SpecTimeout(10*time.Second))
	})

	When("a script catches the interrupt and keeps looping", func() {
		It("still ends with ErrTimeout", func(ctx SpecContext) {
			env.Config.Timeout = 50 * time.Millisecond
			prog := env.Compile(middleware(`while (true) { try { try { while (true) {} } catch (e) {} } catch (e) {} }`))
			_, err := prog.Run(ctx, "mw", plainGet(), nil)
			Expect(err).To(MatchError(jsvm.ErrTimeout))
		}, SpecTimeout(10*time.Second))
	})

	When("one run is stuck in a loop", func() {
		It("other runs proceed meanwhile on other goroutines", func(ctx SpecContext) {
			env.Config.Timeout = 5 * time.Second
			prog := env.Compile(spinScript)
			spinCtx, stopSpinning := context.WithCancel(ctx)
			defer stopSpinning()
			spinning := RunInBackground(spinCtx, prog, spinRequest())
			Eventually(ctx, env.Host.Batches).Should(Receive(Equal("spinning")))

			for range 10 {
				Run(ctx, prog, plainGet(), `{}`)
			}
			Expect(spinning).NotTo(Receive(), "the stuck run is still running")
		}, SpecTimeout(10*time.Second))
	})

	When("ctx is cancelled during a run", func() {
		It("interrupts the run with ctx's error", func(ctx SpecContext) {
			env.Config.Timeout = time.Minute
			prog := env.Compile(spinScript)
			runCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			spinning := RunInBackground(runCtx, prog, spinRequest())
			Eventually(ctx, env.Host.Batches).Should(Receive())

			cancel()
			var out outcome
			Eventually(ctx, spinning).Should(Receive(&out))
			Expect(out.err).To(MatchError(context.Canceled))
			Expect(out.err).NotTo(MatchError(jsvm.ErrTimeout))
		}, SpecTimeout(10*time.Second))
	})

	When("ctx's deadline comes before the timeout", func() {
		It("interrupts the run with context.DeadlineExceeded", func(ctx SpecContext) {
			env.Config.Timeout = time.Minute
			prog := env.Compile(spinScript)
			runCtx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			_, err := prog.Run(runCtx, "mw", spinRequest(), nil)
			Expect(err).To(MatchError(context.DeadlineExceeded))
		}, SpecTimeout(10*time.Second))
	})

	When("TykMakeHttpRequest waits for a slow upstream", func() {
		It("cuts the request off when the JS time is up", func(ctx SpecContext) {
			env.Config.Timeout = 200 * time.Millisecond
			env.Config.Client = ownClient()
			upstream := slowUpstream()
			prog := env.Compile(middleware(`TykMakeHttpRequest(JSON.stringify({Method: "GET", Domain: "` + upstream.URL + `", Resource: "/slow"}));`))
			start := time.Now()
			_, err := prog.Run(ctx, "mw", plainGet(), nil)
			Expect(err).To(MatchError(jsvm.ErrTimeout))
			Expect(time.Since(start)).To(BeNumerically("<", 2*time.Second))
		}, SpecTimeout(10*time.Second))
	})

	When("a Host call blocks", func() {
		It("gets a context that ends when the JS time is up", func(ctx SpecContext) {
			env.Config.Timeout = 100 * time.Millisecond
			env.Host.ReleaseBatches = make(chan struct{}) // never released
			prog := env.Compile(middleware(`TykBatchRequest("{}");`))
			_, err := prog.Run(ctx, "mw", plainGet(), nil)
			Expect(err).To(MatchError(jsvm.ErrTimeout))
		}, SpecTimeout(10*time.Second))
	})

	When("a script's initialisation loops for ever", func() {
		It("Compile fails with ErrTimeout", func(SpecContext) {
			env.Config.Timeout = 50 * time.Millisecond
			_, err := jsvm.Compile(testSpec(), []jsvm.Source{{Name: "mw", Code: []byte(`while (true) {}`)}}, env.Config)
			Expect(err).To(MatchError(jsvm.ErrTimeout))
		}, SpecTimeout(10*time.Second))
	})
})
