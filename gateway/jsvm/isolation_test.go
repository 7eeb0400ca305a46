package jsvm_test

import (
	"context"
	"strconv"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/jsvm"
)

// statefulScript keeps a top-level counter and leaks a global, as sloppy
// scripts do. A request with an X-Block header first waits in
// TykBatchRequest, which lets a spec hold several VMs at once.
const statefulScript = `var counter = 0;
var mw = new TykJS.TykMiddleware.NewMiddleware({});
mw.NewProcessRequest(function (request, session, config) {
    if (request.Headers["X-Block"]) { TykBatchRequest("block"); }
    counter++;
    request.SetHeaders["X-Counter"] = String(counter);
    request.SetHeaders["X-Leaked"] = typeof leaked;
    leaked = request.URL;
    return mw.ReturnData(request);
});`

// HoldVMs starts n runs that wait in TykBatchRequest, so that n VMs exist
// at once, and lets them finish; the Program then has n idle VMs.
func (e *Env) HoldVMs(ctx context.Context, prog *jsvm.Program, n int) {
	GinkgoHelper()
	release := make(chan struct{})
	e.Host.mu.Lock()
	e.Host.ReleaseBatches = release
	e.Host.mu.Unlock()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			defer GinkgoRecover()
			req := plainGet()
			req.Headers = map[string][]string{"X-Block": {"1"}}
			_, err := prog.Run(ctx, "mw", req, nil)
			Expect(err).NotTo(HaveOccurred())
		})
	}
	for range n {
		Eventually(ctx, e.Host.Batches).Should(Receive())
	}
	close(release)
	wg.Wait()
}

var _ = Describe("Isolation between runs", func() {
	var (
		env  *Env
		prog *jsvm.Program
	)

	BeforeEach(func() {
		env = NewEnv()
		env.Config.MaxIdle = 1 // one VM serves every sequential run
	})

	// twice runs the middleware twice and returns the headers the second
	// run set.
	twice := func(ctx context.Context) map[string]string {
		GinkgoHelper()
		Run(ctx, prog, plainGet(), `{}`)
		headers := Run(ctx, prog, plainGet(), `{}`).Request.SetHeaders
		Expect(prog.Stats().VMsCreated).To(BeEquivalentTo(1), "both runs used the same VM")
		return headers
	}

	When("a run creates a global", func() {
		It("the next run on the same VM does not see it", func(ctx SpecContext) {
			prog = env.Compile(statefulScript)
			Expect(twice(ctx)).To(HaveKeyWithValue("X-Leaked", "undefined"))
		}, SpecTimeout(10*time.Second))
	})

	When("a run increments a top-level var", func() {
		It("the next run on the same VM starts from the initial value", func(ctx SpecContext) {
			prog = env.Compile(statefulScript)
			Expect(twice(ctx)).To(HaveKeyWithValue("X-Counter", "1"))
		}, SpecTimeout(10*time.Second))
	})

	When("a run replaces a global function", func() {
		It("the next run on the same VM calls the original", func(ctx SpecContext) {
			prog = env.Compile(middleware(`request.SetHeaders["X-Out"] = b64enc("hi"); b64enc = function () { return "replaced"; };`))
			Expect(twice(ctx)).To(HaveKeyWithValue("X-Out", "aGk="))
		}, SpecTimeout(10*time.Second))
	})

	When("a run deletes a global", func() {
		It("the next run on the same VM has it back", func(ctx SpecContext) {
			prog = env.Compile(middleware(`request.SetHeaders["X-Type"] = typeof rawb64enc; delete rawb64enc;`))
			Expect(twice(ctx)).To(HaveKeyWithValue("X-Type", "function"))
		}, SpecTimeout(10*time.Second))
	})

	When("a run defines a hidden (non-enumerable) global", func() {
		It("the next run on the same VM does not see it", func(ctx SpecContext) {
			prog = env.Compile(middleware(`request.SetHeaders["X-Hidden"] = typeof hidden;
				var global = (function () { return this; })();
				Object.defineProperty(global, "hidden", {value: 1, configurable: true});`))
			Expect(twice(ctx)).To(HaveKeyWithValue("X-Hidden", "undefined"))
		}, SpecTimeout(10*time.Second))
	})

	When("a run defines a global that cannot be deleted", func() {
		BeforeEach(func(ctx SpecContext) {
			prog = env.Compile(middleware(`request.SetHeaders["X-Stuck"] = typeof stuck;
				var global = (function () { return this; })();
				Object.defineProperty(global, "stuck", {value: 1, configurable: false});`))
			Run(ctx, prog, plainGet(), `{}`)
		}, NodeTimeout(10*time.Second))

		It("discards the VM", func() {
			Expect(prog.Stats()).To(And(HaveField("VMsDiscarded", BeEquivalentTo(1)), HaveField("Idle", 0)))
		})

		It("the next run does not see the global", func(ctx SpecContext) {
			Expect(Run(ctx, prog, plainGet(), `{}`).Request.SetHeaders).To(HaveKeyWithValue("X-Stuck", "undefined"))
		}, SpecTimeout(10*time.Second))
	})

	When("many runs share several VMs concurrently", func() {
		It("no run sees what another left behind", func(ctx SpecContext) {
			const vms, workers, runsEach = 4, 8, 50
			env.Config.MaxIdle = vms
			prog = env.Compile(statefulScript)
			env.HoldVMs(ctx, prog, vms)
			Expect(prog.Stats().Idle).To(Equal(vms))

			var (
				mu   sync.Mutex
				seen = map[string]int{}
				wg   sync.WaitGroup
			)
			for w := range workers {
				wg.Go(func() {
					defer GinkgoRecover()
					for i := range runsEach {
						req := plainGet()
						req.URL = "/w" + strconv.Itoa(w) + "/" + strconv.Itoa(i)
						h := Run(ctx, prog, req, `{}`).Request.SetHeaders
						mu.Lock()
						seen[h["X-Counter"]+" "+h["X-Leaked"]]++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			Expect(seen).To(Equal(map[string]int{"1 undefined": workers * runsEach}))
			Expect(prog.Stats().VMsCreated).To(BeNumerically(">=", vms))
		}, SpecTimeout(30*time.Second))
	})
})
