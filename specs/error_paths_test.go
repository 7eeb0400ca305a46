package specs_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/gateway"
	"github.com/tollgate/tollgate/gateway/storage"
	"github.com/tollgate/tollgate/specs"
)

// failsLeavingNothing runs start, which must fail, and checks at once,
// before any cleanup of the spec could tidy up after it (the cluster's
// shutdown closes what a client left open), that it left no goroutine
// running, no connection on any Redis node and no subscription. It
// returns start's error.
func failsLeavingNothing(env *specs.Env, start func() error) error {
	GinkgoHelper()
	guard := specs.NewLeakGuard()
	err := start()
	Expect(err).To(HaveOccurred())
	guard.Verify(GinkgoT())
	Eventually(env.RedisClients().Current).WithTimeout(2*time.Second).Should(BeZero(),
		"Redis connections left open by the failed start")
	Eventually(env.NotificationSubscribers().Current).WithTimeout(2*time.Second).Should(BeZero(),
		"subscriptions to tyk.cluster.notifications left by the failed start")
	return err
}

// newGateway is gateway.New with the spec's log.
func newGateway(cfg *gateway.Config) func() error {
	return func() error {
		gw, err := gateway.New(cfg, gateway.WithLogger(slog.New(slog.NewTextHandler(GinkgoWriter, nil))))
		if err == nil {
			DeferCleanup(func(ctx SpecContext) error { return gw.Shutdown(ctx) }, NodeTimeout(10*time.Second))
		}
		return err
	}
}

// occupiedAddr is an address on 127.0.0.1 someone else listens on until
// the spec ends.
func occupiedAddr() string {
	GinkgoHelper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(l.Close)
	return l.Addr().String()
}

// Everything below runs with notifications on (node_secret) and
// analytics on, so that a failure late in gateway.New has a subscription,
// its goroutine, analytics' flusher and the event bus's workers to stop.
const startingConf = `{"secret": "spec-secret", "node_secret": "` + nodeSecret + `", "enable_analytics": true}`

var _ = Describe("A gateway that fails to start", Label("leak"), func() {
	var (
		env *specs.Env
		cfg *gateway.Config
	)
	BeforeEach(func() {
		env = specs.NewEnv(specs.WithConfig(startingConf), specs.WithoutGateway(), specs.WithAPI(keylessAPI("open", "/open/")))
		cfg = env.GatewayConfig()
	})

	When("debug_listen is not a loopback address", func() {
		It("returns an error naming debug_listen, and leaves nothing running", func() {
			cfg.DebugListen = "0.0.0.0:0"
			Expect(failsLeavingNothing(env, newGateway(cfg))).To(MatchError(ContainSubstring("debug_listen")))
		})
	})

	When("trusted_proxies holds something that is not an address", func() {
		It("returns an error naming the entry, and leaves nothing running", func() {
			cfg.TrustedProxies = []string{"not-an-address"}
			Expect(failsLeavingNothing(env, newGateway(cfg))).To(MatchError(ContainSubstring("not-an-address")))
		})
	})

	When("the storage section cannot describe a store", func() {
		It("returns an error naming storage, and leaves nothing running", func() {
			cfg.Storage.Type = "memcached"
			Expect(failsLeavingNothing(env, newGateway(cfg))).To(MatchError(ContainSubstring("storage")))
		})
	})

	When("an event handler of tyk.conf cannot be built", func() {
		It("returns an error naming the handler, and leaves no goroutine, Redis connection or subscription behind", func() {
			var handlers gateway.Config
			Expect(func() error {
				parsed, _, err := gateway.ParseConfig([]byte(`{"event_handlers": {"events": {"KeyExpired": [{"handler_name": "eh_web_hook_handler",
  "handler_meta": {"method": "POST", "target_path": "127.0.0.1:1/hook"}}]}}}`))
				handlers = *parsed
				return err
			}()).To(Succeed())
			cfg.EventHandlers = handlers.EventHandlers
			Expect(failsLeavingNothing(env, newGateway(cfg))).To(MatchError(ContainSubstring("tyk.conf event_handlers.events.KeyExpired[0]")))
		})
	})

	When("app_path cannot be read", func() {
		It("returns the error, and leaves no goroutine, Redis connection or subscription behind", func() {
			cfg.AppPath = filepath.Join(GinkgoT().TempDir(), "no-such-folder")
			Expect(failsLeavingNothing(env, newGateway(cfg))).To(MatchError(ContainSubstring("no-such-folder")))
		})
	})

	When("debug_listen's port is taken", func() {
		It("returns an error naming debug_listen, and leaves no goroutine, Redis connection or subscription behind", func() {
			cfg.DebugListen = occupiedAddr()
			Expect(failsLeavingNothing(env, newGateway(cfg))).To(MatchError(ContainSubstring("debug_listen")))
		})
	})

	When("the gateway's own port is taken", func() {
		It("gateway.Listen returns the error and leaves nothing running", func() {
			addr := occupiedAddr()
			err := failsLeavingNothing(env, func() error {
				srv, err := gateway.Listen(addr, http.NotFoundHandler(), slog.New(slog.NewTextHandler(GinkgoWriter, nil)))
				if err == nil {
					DeferCleanup(func(ctx context.Context) error { return srv.Shutdown(ctx) })
				}
				return err
			})
			Expect(err).To(MatchError(ContainSubstring("address already in use")))
		})
	})

	When("storage.Open is given settings that cannot describe a store", func() {
		It("returns an error and leaves nothing running", func() {
			err := failsLeavingNothing(env, func() error {
				store, err := storage.Open(storage.Config{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}}, slog.New(slog.DiscardHandler))
				if err == nil {
					DeferCleanup(store.Close)
				}
				return err
			})
			Expect(err).To(MatchError(ContainSubstring("enable_cluster is false")))
		})
	})

	When("a simulated cluster is asked for more nodes than there are slots", func() {
		It("returns an error and leaves nothing running", func() {
			err := failsLeavingNothing(env, func() error {
				c, err := cluster.Start(cluster.SlotCount + 1)
				if err == nil {
					DeferCleanup(c.Close)
				}
				return err
			})
			Expect(err).To(MatchError(ContainSubstring("cannot each own a slot")))
		})
	})
})

var _ = Describe("A gateway that has shut down", Label("leak"), func() {
	// Before: a spec's own upstream and cluster closed the connections a
	// gateway kept after Shutdown before the leak guard looked, so a
	// Shutdown that left idle connections or a subscription open passed.
	When("its upstream and Redis keep running", func() {
		var env *specs.Env
		BeforeEach(func(ctx SpecContext) {
			env = specs.NewEnv(specs.WithConfig(`{"secret": "s", "node_secret": "`+nodeSecret+`", "template_path": "templates"}`),
				specs.WithBaseDir(seedPath()),
				specs.WithAPI(keyedAPI("orders", "/orders/")),
				specs.WithAPI(webhookAPI("{{upstream}}", 0)))
			By("proxying requests, sending a webhook and changing keys first")
			key := env.IssueKey(grantTo("orders"))
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
			expired := issueExpiredKey(env, func(expires string) string { return grantTo("hooked", expires) })
			Expect(env.Get("/hooked/", "x-key", expired).StatusCode).To(Equal(http.StatusUnauthorized))
			Eventually(env.Upstream.Requests).WithContext(ctx).Should(ContainElement(HaveField("Path", "/expired")))
			Expect(env.Control(env.Instance, http.MethodDelete, "/tyk/keys/"+key, "").StatusCode).To(Equal(http.StatusOK))
			Expect(env.Upstream.OpenConns()).To(BeNumerically(">", 0))
			Expect(env.RedisClients().Current()).To(BeNumerically(">", 0))
			Expect(env.NotificationSubscribers().Current()).To(BeEquivalentTo(1))

			Expect(env.Gateway.Shutdown(ctx)).To(Succeed())
		}, NodeTimeout(20*time.Second))

		It("holds no connection to the upstream, counted by the upstream", func(ctx SpecContext) {
			Eventually(env.Upstream.OpenConns).WithContext(ctx).WithTimeout(2*time.Second).Should(BeZero(),
				"connections to the upstream, counted by the upstream, still open after the gateway shut down")
		}, SpecTimeout(10*time.Second))

		It("holds no connection to Redis and no subscription, counted by Redis", func(ctx SpecContext) {
			Eventually(env.RedisClients().Current).WithContext(ctx).WithTimeout(2*time.Second).Should(BeZero(),
				"connections to Redis, counted by its nodes, still open after the gateway shut down")
			Eventually(env.NotificationSubscribers().Current).WithContext(ctx).WithTimeout(2*time.Second).Should(BeZero(),
				"subscriptions to tyk.cluster.notifications still open after the gateway shut down")
		}, SpecTimeout(10*time.Second))
	})
})
