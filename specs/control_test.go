package specs_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/gateway/session"
	"github.com/tollgate/tollgate/specs"
)

var _ = Describe("The control API under /tyk/", Label("control"), func() {
	var env *specs.Env

	BeforeEach(func() {
		env = specs.NewEnv(specs.WithAPI(keyedAPI("orders", "/orders/")))
	})

	When("X-Tyk-Authorization is missing or wrong", func() {
		It("answers 403 with Tyk's message", func() {
			resp := env.Do(http.MethodGet, "/tyk/apis", "", "X-Tyk-Authorization", "guess")
			Expect(resp.StatusCode).To(Equal(http.StatusForbidden))
			Expect(resp.JSON()).To(Equal(map[string]any{"status": "error", "message": "Attempted administrative access with invalid or missing key!"}))
		})
	})

	When("tyk.conf has no secret", func() {
		It("refuses every call, saying the control API is disabled", func() {
			env = specs.NewEnv(specs.WithConfig(`{}`))
			resp := env.Do(http.MethodGet, "/tyk/apis", "", "X-Tyk-Authorization", "")
			Expect(resp.StatusCode).To(Equal(http.StatusForbidden))
			Expect(resp.Header.Get(chain.CauseHeader)).To(Equal(string(chain.CauseControlDisabled)))
			Expect(resp.JSON()["message"]).To(ContainSubstring("no secret"))
		})
	})

	Describe("POST /tyk/keys/create", func() {
		It("creates a key and answers it with action added", func() {
			resp := env.Control(env.Instance, http.MethodPost, "/tyk/keys/create", grantTo("orders"))
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(resp.JSON()).To(And(HaveKeyWithValue("status", "ok"), HaveKeyWithValue("action", "added"), HaveKey("key")))
		})

		It("makes a key that the gateway accepts", func() {
			key := env.IssueKey(grantTo("orders"))
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
		})

		It("stores the session under apikey-<key>", func(ctx SpecContext) {
			key := env.IssueKey(grantTo("orders"))
			Expect(env.Redis.Exists(ctx, session.RedisKey(key)).Val()).To(Equal(int64(1)))
		}, SpecTimeout(5*time.Second))

		It("answers 400 naming the problem when the body is not JSON", func() {
			resp := env.Control(env.Instance, http.MethodPost, "/tyk/keys/create", `{"rate": 1,`)
			Expect(resp.StatusCode).To(Equal(http.StatusBadRequest))
			Expect(resp.JSON()["message"]).To(And(ContainSubstring("Request malformed"), ContainSubstring("line 1")))
		})

		It("answers 400 naming the field when a value has the wrong type", func() {
			resp := env.Control(env.Instance, http.MethodPost, "/tyk/keys/create", `{"rate": "fast"}`)
			Expect(resp.StatusCode).To(Equal(http.StatusBadRequest))
			Expect(resp.JSON()["message"]).To(ContainSubstring("rate"))
		})
	})

	Describe("/tyk/keys/{key}", func() {
		var key string
		BeforeEach(func() { key = env.IssueKey(grantTo("orders", `"rate": 5, "per": 60, "meta_data": {"team": "red"}`)) })

		It("GET answers the session", func() {
			resp := env.Control(env.Instance, http.MethodGet, "/tyk/keys/"+key, "")
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(resp.JSON()).To(And(HaveKeyWithValue("rate", 5.0), HaveKeyWithValue("meta_data", HaveKeyWithValue("team", "red"))))
		})

		It("GET answers 404 Key not found for an unknown key", func() {
			resp := env.Control(env.Instance, http.MethodGet, "/tyk/keys/nope", "")
			Expect(resp.StatusCode).To(Equal(http.StatusNotFound))
			Expect(resp.JSON()).To(HaveKeyWithValue("message", "Key not found"))
		})

		It("PUT changes the session and answers action modified", func() {
			resp := env.Control(env.Instance, http.MethodPut, "/tyk/keys/"+key, grantTo("orders", `"is_inactive": true`))
			Expect(resp.JSON()).To(HaveKeyWithValue("action", "modified"))
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusForbidden))
		})

		It("PUT answers 404 for a key that does not exist", func() {
			Expect(env.Control(env.Instance, http.MethodPut, "/tyk/keys/nope", grantTo("orders")).StatusCode).To(Equal(http.StatusNotFound))
		})

		It("POST stores a key of the caller's choosing, prefixed with the session's org_id as Tyk stores it", func() {
			key := env.SetKey("my-own-key", grantTo("orders"))
			Expect(key).To(Equal("org1my-own-key"))
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
		})

		It("DELETE removes the key and answers action deleted", func() {
			resp := env.Control(env.Instance, http.MethodDelete, "/tyk/keys/"+key, "")
			Expect(resp.JSON()).To(HaveKeyWithValue("action", "deleted"))
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/keys/"+key, "").StatusCode).To(Equal(http.StatusNotFound))
		})

		It("keeps fields tollgate does not model when it rewrites a session", func() {
			key := env.SetKey("rich", grantTo("orders", `"basic_auth_data": {"password": "x"}`))
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/keys/"+key, "").JSON()).To(HaveKeyWithValue("basic_auth_data", HaveKeyWithValue("password", "x")))
		})
	})

	Describe("suppress_reset", func() {
		var key string
		BeforeEach(func() {
			key = env.IssueKey(grantTo("orders", `"quota_max": 2, "quota_renewal_rate": 3600`))
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
		})

		It("without it, an update starts the key's quota afresh", func() {
			env.Control(env.Instance, http.MethodPut, "/tyk/keys/"+key, grantTo("orders", `"quota_max": 2, "quota_renewal_rate": 3600`))
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
		})

		It("with suppress_reset=1, an update keeps the quota used so far", func() {
			env.Control(env.Instance, http.MethodPut, "/tyk/keys/"+key+"?suppress_reset=1", grantTo("orders", `"quota_max": 2, "quota_renewal_rate": 3600`))
			expectGatewayError(env.Get("/orders/", "Authorization", key), http.StatusForbidden, chain.CauseQuotaExceeded, "Quota exceeded")
		})

		It("GET reports the quota remaining", func() {
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/keys/"+key, "").JSON()).To(HaveKeyWithValue("quota_remaining", 0.0))
		})
	})

	Describe("GET /tyk/apis", func() {
		It("lists the definitions being served, as loaded", func() {
			resp := env.Control(env.Instance, http.MethodGet, "/tyk/apis", "")
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			var apis []map[string]any
			Expect(json.Unmarshal([]byte(resp.Body), &apis)).To(Succeed())
			Expect(apis).To(ConsistOf(HaveKeyWithValue("api_id", "orders")))
		})
	})

	Describe("GET /tyk/reload", func() {
		It("serves an API added to app_path since the gateway started", func() {
			env.WriteAPIFile("later.json", keylessAPI("later", "/later/"))
			Expect(env.Get("/later/").StatusCode).To(Equal(http.StatusNotFound))
			resp := env.Control(env.Instance, http.MethodGet, "/tyk/reload", "")
			Expect(resp.JSON()).To(HaveKeyWithValue("status", "ok"))
			Expect(env.Get("/later/").StatusCode).To(Equal(http.StatusOK))
		})

		It("lets a request in flight finish on the API it started with", func(ctx SpecContext) {
			held := startHeldUpstream()
			env.RegisterAPI(fmt.Sprintf(`{"api_id": "held", "active": true, "use_keyless": true, "proxy": {"listen_path": "/held/", "target_url": %q}}`, held.URL))
			result := make(chan int, 1)
			go func() {
				defer GinkgoRecover()
				status, _ := httpGet(env.URL + "/held/")
				result <- status
			}()
			Eventually(held.arrived).WithContext(ctx).Should(Receive())

			env.WriteAPIFile("held.json", keylessAPI("held", "/moved/"))
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/reload", "").StatusCode).To(Equal(http.StatusOK))
			held.Release()
			Eventually(result).WithContext(ctx).Should(Receive(Equal(http.StatusOK)))
			Expect(env.Get("/held/").StatusCode).To(Equal(http.StatusNotFound))
		}, SpecTimeout(10*time.Second))

		It("reports files that failed to load, and serves the rest", func() {
			env.WriteAPIFile("broken.json", `{`)
			resp := env.Control(env.Instance, http.MethodGet, "/tyk/reload", "")
			Expect(resp.JSON()).To(And(HaveKeyWithValue("status", "ok"), HaveKeyWithValue("message", ContainSubstring("broken.json"))))
			Expect(env.Get("/orders/").StatusCode).To(Equal(http.StatusUnauthorized))
		})
	})
})
