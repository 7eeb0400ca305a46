package specs_test

import (
	"encoding/json"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/analytics"
	"github.com/tollgate/tollgate/gateway/session"
	"github.com/tollgate/tollgate/specs"
)

// storedRecords reads the analytics list from the cluster.
func storedRecords(ctx SpecContext, env *specs.Env) []analytics.Record {
	GinkgoHelper()
	raw, err := env.Redis.LRange(ctx, analytics.Key, 0, -1).Result()
	Expect(err).NotTo(HaveOccurred())
	out := make([]analytics.Record, len(raw))
	for i, r := range raw {
		Expect(json.Unmarshal([]byte(r), &out[i])).To(Succeed())
	}
	return out
}

var _ = Describe("Analytics", Label("analytics"), func() {
	var env *specs.Env

	When("enable_analytics is on", func() {
		var key string
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithConfig(`{"secret": "s", "enable_analytics": true, "analytics_config": {"flush_interval": 0.05}}`),
				specs.WithAPI(keyedAPI("orders", "/orders/")))
			key = env.IssueKey(grantTo("orders"))
		})

		It("records each request in Redis with its API, method, path, status, hashed key and client IP", func(ctx SpecContext) {
			env.Get("/orders/items", "Authorization", key)
			Eventually(func() []analytics.Record { return storedRecords(ctx, env) }).WithContext(ctx).Should(ConsistOf(And(
				HaveField("APIID", "orders"),
				HaveField("Method", http.MethodGet),
				HaveField("Path", "/orders/items"),
				HaveField("ResponseCode", http.StatusOK),
				HaveField("APIKey", session.Hash(key)),
				HaveField("IPAddress", "127.0.0.1"),
			)))
		}, SpecTimeout(10*time.Second))

		It("records refused requests with their status", func(ctx SpecContext) {
			env.Get("/orders/")
			Eventually(func() []analytics.Record { return storedRecords(ctx, env) }).WithContext(ctx).Should(ConsistOf(HaveField("ResponseCode", http.StatusUnauthorized)))
		}, SpecTimeout(10*time.Second))

		It("never stores the raw key", func(ctx SpecContext) {
			env.Get("/orders/", "Authorization", key)
			Eventually(func() []analytics.Record { return storedRecords(ctx, env) }).WithContext(ctx).Should(HaveLen(1))
			raw := env.Redis.LRange(ctx, analytics.Key, 0, -1).Val()
			Expect(raw[0]).NotTo(ContainSubstring(key))
		}, SpecTimeout(10*time.Second))
	})

	When("the client's IP is in ignored_ips", func() {
		It("records nothing", func(ctx SpecContext) {
			env = specs.NewEnv(specs.WithConfig(`{"secret": "s", "enable_analytics": true, "analytics_config": {"ignored_ips": ["127.0.0.1"]}}`),
				specs.WithAPI(keylessAPI("open", "/open/")))
			env.Get("/open/")
			Expect(env.Gateway.Shutdown(ctx)).To(Succeed())
			Expect(storedRecords(ctx, env)).To(BeEmpty())
		}, SpecTimeout(10*time.Second))
	})

	When("a burst is larger than records_buffer_size before a flush", func() {
		BeforeEach(func() {
			// A flush interval longer than the spec, so nothing is written
			// before Shutdown.
			env = specs.NewEnv(specs.WithConfig(`{"secret": "s", "enable_analytics": true, "analytics_config": {"records_buffer_size": 3, "flush_interval": 3600}}`),
				specs.WithAPI(keylessAPI("open", "/open/")))
			for range 10 {
				Expect(env.Get("/open/").StatusCode).To(Equal(http.StatusOK))
			}
		})

		It("drops what does not fit and counts it in /hello", func() {
			Expect(env.Get("/hello", "X-Tyk-Authorization", env.Secret).JSON()).To(HaveKeyWithValue("dropped", HaveKeyWithValue("analytics", 7.0)))
		})

		It("writes what it kept on shutdown", func(ctx SpecContext) {
			Expect(env.Gateway.Shutdown(ctx)).To(Succeed())
			Expect(storedRecords(ctx, env)).To(HaveLen(3))
		}, SpecTimeout(10*time.Second))
	})
})
