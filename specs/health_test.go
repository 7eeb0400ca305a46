package specs_test

import (
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/specs"
)

var _ = Describe("The health endpoint /hello", Label("health"), func() {
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

	When("a load balancer probes it many times a second", specs.SimulatedOnly("counts the commands the simulated nodes processed"), func() {
		It("asks Redis at most once a second and answers the other probes with that result", func() {
			commands := func() (n int) {
				for _, node := range env.Cluster.Nodes() {
					n += node.Miniredis().CommandCount()
				}
				return n
			}
			Expect(env.Get("/hello").StatusCode).To(Equal(http.StatusOK))
			before := commands()
			for range 50 {
				Expect(env.Get("/hello").StatusCode).To(Equal(http.StatusOK))
			}
			// One check is a CLUSTER SLOTS and a PING per node; 50 checks
			// would be 200 commands, and the probes may straddle one
			// second, so one more check at most.
			Expect(commands() - before).To(BeNumerically("<=", 4))
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

		It("names the node that failed to a caller with the control API secret", func() {
			Expect(env.Get("/hello", "X-Tyk-Authorization", env.Secret).JSON()).To(HaveKeyWithValue("details",
				HaveKeyWithValue("redis", HaveKeyWithValue("output", ContainSubstring(env.Cluster.Node(1).Addr())))))
		})

		It("tells an anonymous caller only that Redis failed, not where or why", func() {
			resp := env.Get("/hello")
			Expect(resp.JSON()).To(HaveKeyWithValue("details", HaveKeyWithValue("redis", Not(HaveKey("output")))))
			Expect(resp.Body).NotTo(ContainSubstring(env.Cluster.Node(1).Addr()))
		})
	})
})
