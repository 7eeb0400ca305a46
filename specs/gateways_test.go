package specs_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/gateway/notify"
	"github.com/tollgate/tollgate/specs"
)

// subscribers counts the clients subscribed to the notification channel on
// every node of the cluster.
func subscribers(ctx context.Context, env *specs.Env) int64 {
	GinkgoHelper()
	var (
		mu    sync.Mutex
		total int64
	)
	Expect(env.Redis.ForEachShard(ctx, func(ctx context.Context, node *redis.Client) error {
		counts, err := node.PubSubNumSub(ctx, notify.Channel).Result()
		mu.Lock()
		defer mu.Unlock()
		total += counts[notify.Channel]
		return err
	})).To(Succeed())
	return total
}

// publishNotification puts a message on the notification channel as any
// client of Redis could.
func publishNotification(ctx context.Context, env *specs.Env, n notify.Notification) {
	GinkgoHelper()
	data, err := json.Marshal(n)
	Expect(err).NotTo(HaveOccurred())
	Expect(env.Redis.Publish(ctx, notify.Channel, data).Err()).To(Succeed())
}

const nodeSecret = "spec-node-secret"

var _ = Describe("Several gateways on one cluster", Label("cluster"), func() {
	var (
		env         *specs.Env
		two, three  *specs.Instance
		newAPIReply = func(inst *specs.Instance) int { return inst.Get("/added/").StatusCode }
	)

	BeforeEach(func() {
		env = specs.NewEnv(
			specs.WithConfig(`{"secret": "spec-secret", "node_secret": "`+nodeSecret+`"}`),
			specs.WithAPI(keyedAPI("orders", "/orders/")),
		)
		two, three = env.StartGateway(), env.StartGateway()
	})

	It("accept a key made through the control API of another", func() {
		key := env.IssueKey(grantTo("orders"))
		Expect(two.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
		Expect(three.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
	})

	It("share a caller's rate limit", func() {
		key := env.IssueKey(grantTo("orders", `"rate": 3, "per": 60`))
		for _, inst := range []*specs.Instance{env.Instance, two, three} {
			Expect(inst.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
		}
		Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusTooManyRequests))
	})

	It("share a caller's quota", func() {
		key := env.IssueKey(grantTo("orders", `"quota_max": 3, "quota_renewal_rate": 3600`))
		for _, inst := range []*specs.Instance{env.Instance, two, three} {
			Expect(inst.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
		}
		Expect(two.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusForbidden))
	})

	When("GET /tyk/reload/group is called on one of them after a definition was added", func() {
		var resp specs.Response
		BeforeEach(func() {
			env.WriteAPIFile("added.json", keylessAPI("added", "/added/"))
			resp = env.Control(env.Instance, http.MethodGet, "/tyk/reload/group", "")
		})

		It("answers ok, and the gateway called serves the new API at once", func() {
			Expect(resp.StatusCode).To(Equal(http.StatusOK), resp.Body)
			Expect(resp.JSON()).To(HaveKeyWithValue("status", "ok"))
			Expect(newAPIReply(env.Instance)).To(Equal(http.StatusOK))
		})

		It("makes every other gateway reload too, told through tyk.cluster.notifications", func(ctx SpecContext) {
			Eventually(newAPIReply).WithContext(ctx).WithArguments(two).Should(Equal(http.StatusOK))
			Eventually(newAPIReply).WithContext(ctx).WithArguments(three).Should(Equal(http.StatusOK))
		}, SpecTimeout(10*time.Second))
	})

	When("a key another gateway has cached is changed or deleted through a control API", func() {
		var key string
		BeforeEach(func() {
			key = env.IssueKey(grantTo("orders"))
			// Now in two's local session cache, which the spec clock never
			// expires: only the notification can drop it.
			Expect(two.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
		})

		It("is refused by the other gateway once deleted, without waiting for cached_session_timeout", func(ctx SpecContext) {
			Expect(env.Control(env.Instance, http.MethodDelete, "/tyk/keys/"+key, "").StatusCode).To(Equal(http.StatusOK))
			Eventually(func() int {
				return two.Get("/orders/", "Authorization", key).StatusCode
			}).WithContext(ctx).Should(Equal(http.StatusForbidden))
		}, SpecTimeout(10*time.Second))

		// Before: a POST to an existing key told no other gateway, which
		// served the key for up to cached_session_timeout (10 s).
		It("is refused by the other gateway once made inactive with POST", func(ctx SpecContext) {
			resp := env.Control(env.Instance, http.MethodPost, "/tyk/keys/"+key, grantTo("orders", `"is_inactive": true`))
			Expect(resp.StatusCode).To(Equal(http.StatusOK), resp.Body)
			Eventually(func() int {
				return two.Get("/orders/", "Authorization", key).StatusCode
			}).WithContext(ctx).Should(Equal(http.StatusForbidden))
		}, SpecTimeout(10*time.Second))

		It("is refused by the other gateway once made inactive", func(ctx SpecContext) {
			resp := env.Control(env.Instance, http.MethodPut, "/tyk/keys/"+key, grantTo("orders", `"is_inactive": true`))
			Expect(resp.StatusCode).To(Equal(http.StatusOK), resp.Body)
			Eventually(func() int {
				return two.Get("/orders/", "Authorization", key).StatusCode
			}).WithContext(ctx).Should(Equal(http.StatusForbidden))
		}, SpecTimeout(10*time.Second))
	})

	When("a client of Redis that does not know node_secret publishes a reload", func() {
		BeforeEach(func() {
			env.WriteAPIFile("added.json", keylessAPI("added", "/added/"))
		})

		It("is ignored when unsigned, and the gateways log why", func(ctx SpecContext) {
			publishNotification(ctx, env, notify.Notification{Command: notify.GroupReload, Time: env.Clock.Now().Unix(), Nonce: "n1"})
			Eventually(two.Logs).WithContext(ctx).Should(ContainSubstring("signature does not match node_secret"))
			Expect(newAPIReply(two)).To(Equal(http.StatusNotFound))
		}, SpecTimeout(10*time.Second))

		It("is ignored when signed with another secret", func(ctx SpecContext) {
			n := notify.Notification{Command: notify.GroupReload, Time: env.Clock.Now().Unix(), Nonce: "n2"}
			n.Sign([]byte("a guess"))
			publishNotification(ctx, env, n)
			Eventually(three.Logs).WithContext(ctx).Should(ContainSubstring("signature does not match node_secret"))
			Expect(newAPIReply(three)).To(Equal(http.StatusNotFound))
		}, SpecTimeout(10*time.Second))
	})

	When("a correctly signed notification is sent again or late", func() {
		It("ignores a replay of a reload it already acted on", func(ctx SpecContext) {
			By("recording the reload the first gateway sends")
			sub := env.Redis.Subscribe(ctx, notify.Channel)
			DeferCleanup(sub.Close)
			_, err := sub.Receive(ctx) // the subscription's confirmation
			Expect(err).NotTo(HaveOccurred())
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/reload/group", "").StatusCode).To(Equal(http.StatusOK))
			msg, err := sub.ReceiveMessage(ctx)
			Expect(err).NotTo(HaveOccurred())
			Eventually(two.Logs).WithContext(ctx).Should(ContainSubstring("reloaded: asked by another gateway"))

			By("adding a definition and sending the recorded reload again")
			env.WriteAPIFile("added.json", keylessAPI("added", "/added/"))
			Expect(env.Redis.Publish(ctx, notify.Channel, msg.Payload).Err()).To(Succeed())
			Eventually(two.Logs).WithContext(ctx).Should(ContainSubstring("already received (a replay)"))
			Expect(newAPIReply(two)).To(Equal(http.StatusNotFound))
		}, SpecTimeout(10*time.Second))

		It("ignores a reload sent more than a minute ago", func(ctx SpecContext) {
			env.WriteAPIFile("added.json", keylessAPI("added", "/added/"))
			n := notify.Notification{Command: notify.GroupReload, Time: env.Clock.Now().Add(-2 * time.Minute).Unix(), Nonce: "old"}
			n.Sign([]byte(nodeSecret))
			publishNotification(ctx, env, n)
			Eventually(two.Logs).WithContext(ctx).Should(ContainSubstring("more than 1m0s from now"))
			Expect(newAPIReply(two)).To(Equal(http.StatusNotFound))
		}, SpecTimeout(10*time.Second))

		It("acts on a fresh one signed with node_secret, whoever sent it", func(ctx SpecContext) {
			env.WriteAPIFile("added.json", keylessAPI("added", "/added/"))
			n := notify.Notification{Command: notify.GroupReload, Time: env.Clock.Now().Unix(), Nonce: "fresh", From: "operator"}
			n.Sign([]byte(nodeSecret))
			publishNotification(ctx, env, n)
			Eventually(newAPIReply).WithContext(ctx).WithArguments(two).Should(Equal(http.StatusOK))
		}, SpecTimeout(10*time.Second))
	})

	When("a gateway shuts down", func() {
		It("closes its subscription to tyk.cluster.notifications", func(ctx SpecContext) {
			Eventually(subscribers).WithContext(ctx).WithArguments(env).Should(BeEquivalentTo(3))
			Expect(three.Gateway.Shutdown(ctx)).To(Succeed())
			Eventually(subscribers).WithContext(ctx).WithArguments(env).Should(BeEquivalentTo(2))
		}, SpecTimeout(10*time.Second))
	})
})
