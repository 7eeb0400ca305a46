package specs_test

import (
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/specs"
)

var _ = Describe("The health endpoint /hello", func() {
	var env *specs.Env

	BeforeEach(func() {
		env = specs.NewEnv(specs.WithAPI(keylessAPI("root", "/")))
	})

	When("every Redis node answers", func() {
		It("answers 200 with status pass", func() {
			resp := env.Get("/hello")
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(resp.JSON()).To(HaveKeyWithValue("status", "pass"))
		})

		It("reports Redis as a passing datastore", func() {
			Expect(env.Get("/hello").JSON()).To(HaveKeyWithValue("details",
				HaveKeyWithValue("redis", And(
					HaveKeyWithValue("status", "pass"),
					HaveKeyWithValue("componentType", "datastore"),
				))))
		})

		It("is answered by the gateway even when an API listens on /", func() {
			env.Get("/hello")
			Expect(env.Upstream.Requests()).To(BeEmpty())
		})
	})

	When("a Redis node is down", specs.SimulatedOnly("kills a simulated node; the real tier kills a real master in its failover spec"), func() {
		BeforeEach(func() {
			node := env.Cluster.Node(1)
			node.Kill()
			DeferCleanup(node.Restart)
		})

		It("answers 503 with status fail", func() {
			resp := env.Get("/hello")
			Expect(resp.StatusCode).To(Equal(http.StatusServiceUnavailable))
			Expect(resp.JSON()).To(HaveKeyWithValue("status", "fail"))
		})

		It("names the node that failed", func() {
			Expect(env.Get("/hello").JSON()).To(HaveKeyWithValue("details",
				HaveKeyWithValue("redis", HaveKeyWithValue("output", ContainSubstring(env.Cluster.Node(1).Addr())))))
		})
	})
})
