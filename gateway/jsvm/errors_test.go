package jsvm_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/jsvm"
)

var _ = Describe("Script errors", func() {
	var env *Env

	BeforeEach(func() {
		env = NewEnv()
	})

	compile := func(code string) error {
		_, err := jsvm.Compile(testSpec(), []jsvm.Source{{Name: "mw", File: "broken.js", Code: []byte(code)}}, env.Config)
		return err
	}

	When("a script has a syntax error", func() {
		It("Compile returns a *ScriptError naming the file and the line", func() {
			se := scriptError(compile("var mw = new TykJS.TykMiddleware.NewMiddleware({});\n\nmw.NewProcessRequest(function (request) {\n"))
			Expect(se.File).To(Equal("broken.js"))
			Expect(se.Line).To(Equal(4))
			Expect(se.Error()).To(HavePrefix("broken.js:4: SyntaxError: "))
		})
	})

	When("a script throws while it is initialised", func() {
		It("Compile returns a *ScriptError naming the file and the line", func() {
			se := scriptError(compile("var mw = new TykJS.TykMiddleware.NewMiddleware({});\nnotDefined();\n"))
			Expect(se).To(HaveField("File", "broken.js"))
			Expect(se).To(HaveField("Line", 2))
			Expect(se.Message).To(ContainSubstring("notDefined"))
		})
	})

	When("a source's Name is not a middleware object", func() {
		It("Compile returns a *ScriptError naming the variable", func() {
			se := scriptError(compile("var other = new TykJS.TykMiddleware.NewMiddleware({});\n"))
			Expect(se.File).To(Equal("broken.js"))
			Expect(se.Message).To(ContainSubstring("mw is not a middleware object"))
		})
	})

	When("a middleware throws during a run", func() {
		var (
			prog *jsvm.Program
			err  error
		)

		BeforeEach(func(ctx SpecContext) {
			prog = env.Compile(middleware(`if (request.Headers["X-Fail"]) {
        var missing = null;
        missing.field = 1;
    }`))
			req := plainGet()
			req.Headers = map[string][]string{"X-Fail": {"1"}}
			_, err = prog.Run(ctx, "mw", req, nil)
		}, NodeTimeout(10*time.Second))

		It("Run returns a *ScriptError naming the file and the line", func() {
			se := scriptError(err)
			Expect(se.File).To(Equal("mw.js"))
			Expect(se.Line).To(Equal(5))
			Expect(se.Message).To(HavePrefix("TypeError"))
		})

		It("discards the VM", func() {
			Expect(prog.Stats()).To(And(HaveField("VMsDiscarded", BeEquivalentTo(1)), HaveField("Idle", 0)))
		})

		It("still runs later requests", func(ctx SpecContext) {
			Run(ctx, prog, plainGet(), `{}`)
		}, SpecTimeout(10*time.Second))
	})

	When("a middleware throws a string", func() {
		It("Run returns a *ScriptError carrying it", func(ctx SpecContext) {
			_, err := env.Compile(middleware(`throw "no entry";`)).Run(ctx, "mw", plainGet(), nil)
			Expect(scriptError(err).Message).To(ContainSubstring("no entry"))
		}, SpecTimeout(10*time.Second))
	})

	When("a middleware returns what the gateway cannot apply", func() {
		It("Run returns an error saying so", func(ctx SpecContext) {
			_, err := env.Compile(middleware(`request.ReturnOverrides.ResponseCode = "teapot";`)).Run(ctx, "mw", plainGet(), nil)
			Expect(err).To(MatchError(ContainSubstring("decoding the middleware's result")))
		}, SpecTimeout(10*time.Second))
	})

	When("Run is asked for a middleware the Program does not have", func() {
		It("returns an error naming it", func(ctx SpecContext) {
			_, err := env.Compile(middleware(``)).Run(ctx, "other", plainGet(), nil)
			Expect(err).To(MatchError("running other: no such middleware"))
		}, SpecTimeout(10*time.Second))
	})
})

var _ = Describe("VM reuse", func() {
	var env *Env

	BeforeEach(func() {
		env = NewEnv()
	})

	When("runs follow one another", func() {
		It("one VM serves them all", func(ctx SpecContext) {
			prog := env.Compile(middleware(``))
			for range 3 {
				Run(ctx, prog, plainGet(), `{}`)
			}
			Expect(prog.Stats()).To(Equal(jsvm.Stats{Runs: 3, VMsCreated: 1, Idle: 1}))
		}, SpecTimeout(10*time.Second))
	})

	When("more runs overlap than MaxIdle", func() {
		It("keeps MaxIdle VMs idle and discards the rest", func(ctx SpecContext) {
			env.Config.MaxIdle = 2
			prog := env.Compile(statefulScript)
			env.HoldVMs(ctx, prog, 4)
			Expect(prog.Stats()).To(Equal(jsvm.Stats{Runs: 4, VMsCreated: 4, VMsDiscarded: 2, Idle: 2}))
		}, SpecTimeout(10*time.Second))
	})

	When("FreshVM is set", func() {
		It("copies a VM for every run and keeps none", func(ctx SpecContext) {
			env.Config.FreshVM = true
			prog := env.Compile(statefulScript)
			for range 3 {
				Expect(Run(ctx, prog, plainGet(), `{}`).Request.SetHeaders).To(HaveKeyWithValue("X-Counter", "1"))
			}
			Expect(prog.Stats()).To(Equal(jsvm.Stats{Runs: 3, VMsCreated: 3, VMsDiscarded: 3, Idle: 0}))
		}, SpecTimeout(10*time.Second))
	})
})
