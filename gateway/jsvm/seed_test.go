package jsvm_test

import (
	"encoding/json"
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/jsvm"
)

// seedScript is the production middleware from fixtures/seed, unchanged.
const seedScript = "../../fixtures/seed/middleware/refreshSecurity.js"

// CompileSeed compiles fixtures/seed's refreshSecurity.js as read from disk.
func (e *Env) CompileSeed() *jsvm.Program {
	GinkgoHelper()
	code, err := os.ReadFile(seedScript)
	Expect(err).NotTo(HaveOccurred())
	prog, err := jsvm.Compile(testSpec(), []jsvm.Source{{Name: "refreshSecurity", File: seedScript, Code: code}}, e.Config)
	Expect(err).NotTo(HaveOccurred())
	return prog
}

// securedRequest is a request carrying the seed's Security header.
func securedRequest(key string) jsvm.Request {
	req := plainGet()
	req.Headers = map[string][]string{"Security": {key}}
	return req
}

var _ = Describe("The seed's refreshSecurity.js", func() {
	var (
		env  *Env
		prog *jsvm.Program
	)

	BeforeEach(func() {
		env = NewEnv()
		prog = env.CompileSeed()
	})

	It("logs that it was initialised when it is compiled", func() {
		Expect(env.LogRecords()).To(ContainElement(And(
			HaveKeyWithValue("msg", "refreshSecurity POST middleware initialised"),
			HaveKeyWithValue("type", "log-msg"),
		)))
	})

	When("the session has an expiry", func() {
		var (
			res   *jsvm.Result
			ranAt time.Time
		)

		BeforeEach(func(ctx SpecContext) {
			ranAt = time.Now()
			var err error
			res, err = prog.Run(ctx, "refreshSecurity", securedRequest("security-key-1"), []byte(`{"expires": 1, "rate": 5, "org_id": "org-1"}`))
			Expect(err).NotTo(HaveOccurred())
		}, NodeTimeout(10*time.Second))

		It("stores the session once, under the key from the Security header, suppressing the reset", func() {
			Expect(env.Host.Sets()).To(ConsistOf(And(
				HaveField("Key", "security-key-1"),
				HaveField("SuppressReset", true),
			)))
		})

		It("moves expires to 30 minutes from now", func() {
			var stored struct {
				Expires int64 `json:"expires"`
			}
			Expect(json.Unmarshal([]byte(env.Host.Sets()[0].Session), &stored)).To(Succeed())
			Expect(stored.Expires).To(BeNumerically("~", ranAt.Add(30*time.Minute).Unix(), 5))
		})

		It("keeps the rest of the session", func() {
			Expect(env.Host.Sets()[0].Session).To(ContainSubstring(`"rate":5`))
			Expect(env.Host.Sets()[0].Session).To(ContainSubstring(`"org_id":"org-1"`))
		})

		It("returns the request unchanged and no SessionMeta", func() {
			Expect(res.Request.SetHeaders).To(BeEmpty())
			Expect(res.Request.URL).To(Equal("/get"))
			Expect(res.SessionMeta).To(BeNil())
		})
	})

	When("the session never expires (expires 0)", func() {
		It("stores nothing", func(ctx SpecContext) {
			_, err := prog.Run(ctx, "refreshSecurity", securedRequest("security-key-1"), []byte(`{"expires": 0}`))
			Expect(err).NotTo(HaveOccurred())
			Expect(env.Host.Sets()).To(BeEmpty())
		}, SpecTimeout(10*time.Second))
	})
})
