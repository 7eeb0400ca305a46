package specs_test

import (
	"net/http"
	"os"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/specs"
)

// seedAPI is fixtures/seed/apps/security.json as the forum posted it.
func seedAPI() string {
	GinkgoHelper()
	data, err := os.ReadFile(seedPath("apps", "security.json"))
	Expect(err).NotTo(HaveOccurred())
	return string(data)
}

const seedAPIID = "**************************000001"

var _ = Describe("The seed API (fixtures/seed/apps/security.json)", Label("seed"), func() {
	var env *specs.Env

	BeforeEach(func() {
		// Its v1 override_target is http://java/security-v1; "java" reaches
		// the recording upstream, so the file is used unchanged.
		// Relative paths (its JS middleware) resolve against fixtures/seed;
		// enable_jsvm is the seed tyk.conf's value.
		env = specs.NewEnv(specs.WithConfig(`{"secret": "s", "enable_jsvm": true}`), specs.WithBaseDir(seedPath()),
			specs.WithAPI(seedAPI()), specs.WithUpstreamHost("java"))
	})

	It("loads, with one warning listing what tollgate does not implement yet", func() {
		Expect(env.Logs()).To(ContainSubstring("fields not implemented by tollgate, ignored: "))
		Expect(env.Logs()).To(ContainSubstring("enable_batch_request_support"))
	})

	It("warns that its redacted authorization/*** paths are matched as literal text", func() {
		Expect(env.Logs()).To(ContainSubstring(`\"authorization/***\" is not a valid regular expression`))
	})

	When("a request names no version in x-api-version", func() {
		It("answers 403 Version information not found", func() {
			expectGatewayError(env.Get("/security/users"), http.StatusForbidden, chain.CauseVersionMissing, "Version information not found")
		})
	})

	When("a request for v1 has no key in the security header", func() {
		It("answers 401 Authorization field missing", func() {
			expectGatewayError(env.Get("/security/users", "x-api-version", "v1"), http.StatusUnauthorized, chain.CauseKeyMissing, "Authorization field missing")
		})

		It("is served on the ignored GET /test without a key", func() {
			Expect(env.Get("/security/test", "x-api-version", "v1").StatusCode).To(Equal(http.StatusOK))
		})

		It("is served on the ignored GET /resources without a key", func() {
			Expect(env.Get("/security/resources", "x-api-version", "v1").StatusCode).To(Equal(http.StatusOK))
		})

		It("is served on the ignored POST /authorization/timeout without a key", func() {
			Expect(env.Do(http.MethodPost, "/security/authorization/timeout", "{}", "x-api-version", "v1").StatusCode).To(Equal(http.StatusOK))
		})

		It("still needs a key for GET /authorization/timeout, which is ignored for POST only", func() {
			Expect(env.Get("/security/authorization/timeout", "x-api-version", "v1").StatusCode).To(Equal(http.StatusUnauthorized))
		})
	})

	When("a request for v1 carries a valid key in the security header", func() {
		var key string
		BeforeEach(func() {
			key = env.IssueKey(grantVersion(seedAPIID, "v1", `"expires": 0`))
		})

		It("is forwarded to v1's override_target, without the listen path", func() {
			Expect(env.Get("/security/users/7", "x-api-version", "v1", "security", key).StatusCode).To(Equal(http.StatusOK))
			Expect(env.Upstream.LastRequest().Path).To(Equal("/security-v1/users/7"))
		})

		It("carries v1's global header x-env", func() {
			env.Get("/security/users/7", "x-api-version", "v1", "security", key)
			Expect(env.Upstream.LastRequest().Headers.Get("X-Env")).To(Equal("***"))
		})

		It("is refused on another API's key", func() {
			other := env.IssueKey(grantTo("another-api"))
			Expect(env.Get("/security/users/7", "x-api-version", "v1", "security", other).StatusCode).To(Equal(http.StatusForbidden))
		})
	})
})
