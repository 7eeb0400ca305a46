package jsvm_test

import (
	"strconv"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/jsvm"
)

var _ = Describe("Array lengths a builtin walks in one call", Label("limits-hostile"), func() {
	var env *Env

	BeforeEach(func() {
		env = NewEnv()
	})

	// caught runs expr in a middleware where a is an array one longer than
	// MaxArrayLength, and returns what it threw, as "name: message".
	caught := func(ctx SpecContext, expr string) string {
		GinkgoHelper()
		headers := env.RunBody(ctx, `var a = new Array(`+strconv.Itoa(jsvm.MaxArrayLength+1)+`);
    try { `+expr+`; request.SetHeaders["X-Caught"] = "nothing"; }
    catch (e) { request.SetHeaders["X-Caught"] = e.name + ": " + e.message; }`)
		return headers["X-Caught"]
	}

	// Without the guard each of these allocates or loops for every index
	// up to the length in one Go call: with a length of 4294967295, join
	// alone asks for 64 GiB at once and the process dies.
	for _, expr := range []string{
		`a.join("x")`, `"" + a`, `a.toLocaleString()`, `a.concat([])`, `[].concat(a)`,
		`a.slice(0)`, `a.splice(0)`, `a.map(String)`, `a.filter(String)`, `a.forEach(String)`,
		`a.every(String)`, `a.some(String)`, `a.reduce(String, 0)`, `a.reduceRight(String, 0)`,
		`a.indexOf(1)`, `a.lastIndexOf(1)`, `a.reverse()`, `a.sort()`, `a.shift()`, `a.unshift(1)`,
		`Array.prototype.join.call({length: a.length})`, `String.fromCharCode.apply(null, a)`,
		`JSON.stringify(a)`,
	} {
		When("a script runs "+expr+" on an array longer than MaxArrayLength", func() {
			It("throws a RangeError instead", func(ctx SpecContext) {
				Expect(caught(ctx, expr)).To(HavePrefix("RangeError: "))
			})
		})
	}

	When("a script joins an array of length 4294967295", func() {
		It("throws a RangeError naming the method and the length", func(ctx SpecContext) {
			headers := env.RunBody(ctx, `try { new Array(4294967295).join("x"); }
    catch (e) { request.SetHeaders["X-Caught"] = e.name + ": " + e.message; }`)
			Expect(headers["X-Caught"]).To(Equal("RangeError: Array.prototype.join: length 4294967295 is more than 1048576"))
		})
	})

	When("an array-like is exactly MaxArrayLength long", func() {
		It("is searched as usual", func(ctx SpecContext) {
			// indexOf finds index 0 at once, so the spec does not wait for
			// otto to walk a million indexes.
			headers := env.RunBody(ctx, `request.SetHeaders["X-Index"] = String(Array.prototype.indexOf.call({length: `+strconv.Itoa(jsvm.MaxArrayLength)+`, 0: "x"}, "x"));`)
			Expect(headers["X-Index"]).To(Equal("0"))
		})
	})

	When("a builtin the guard wraps throws its own error", func() {
		It("reports the script's file and line, not the guard's", func(ctx SpecContext) {
			prog := env.Compile(middleware("\n\n    [].reduce(function () {});"))
			_, err := prog.Run(ctx, "mw", plainGet(), nil)
			Expect(scriptError(err)).To(And(HaveField("File", "mw.js"), HaveField("Line", 5)))
		})
	})

	When("a middleware returns more headers to delete than MaxArrayLength", func() {
		It("fails the run saying so", func(ctx SpecContext) {
			prog := env.Compile(middleware(`request.DeleteHeaders = new Array(` + strconv.Itoa(jsvm.MaxArrayLength+1) + `);`))
			_, err := prog.Run(ctx, "mw", plainGet(), nil)
			Expect(err).To(MatchError(ContainSubstring("DeleteHeaders is not an array of at most 1048576 elements")))
		})
	})
})
