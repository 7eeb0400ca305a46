package specs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/notify"
	"github.com/tollgate/tollgate/gateway/session"
	"github.com/tollgate/tollgate/specs"
)

// steadyEnv is an Env for a steady-state spec: the gateways' log is kept
// to its tail and the upstream remembers only its last requests, so that
// neither grows with the runs the spec counts.
func steadyEnv(opts ...specs.EnvOption) *specs.Env {
	GinkgoHelper()
	env := specs.NewEnv(append(opts, specs.WithLogTail())...)
	env.Upstream.KeepOnly(16)
	return env
}

// The gateway's own counts, as gauges.

func eventSubscribers(inst *specs.Instance) specs.Gauge {
	return specs.Count("event bus subscribers", 0, func() int { return inst.Gateway.Stats().EventSubscribers })
}

func jsVMs(inst *specs.Instance) specs.Gauge {
	return specs.Count("JS VMs kept", 1, func() int { return inst.Gateway.Stats().JSVMs })
}

func cachedSessions(inst *specs.Instance) specs.Gauge {
	return specs.Count("sessions in the local cache", 1, func() int { return inst.Gateway.Stats().SessionCacheEntries })
}

func notificationNonces(inst *specs.Instance) specs.Gauge {
	return specs.Count("nonces remembered against replays", 2, func() int { return inst.Gateway.Stats().NotificationNonces })
}

// waitFor waits (up to 10 s) until read reaches at least want.
func waitFor[T int | uint64](read func() T, want T, what string) {
	GinkgoHelper()
	Eventually(read).WithTimeout(10*time.Second).WithPolling(time.Millisecond).Should(BeNumerically(">=", want), what)
}

// expectStatus checks a response's status, showing its body otherwise.
func expectStatus(resp specs.Response, status int) {
	GinkgoHelper()
	Expect(resp.StatusCode).To(Equal(status), resp.Body)
}

// steadyConf has a JS timeout short enough for specs that time out
// hundreds of runs; a reload compiles JS middleware within it too, so the
// reload spec uses the default.
const steadyConf = `{"secret": "spec-secret", "node_secret": "` + nodeSecret + `", "enable_jsvm": true, "jsvm_timeout": 0.05}`

var _ = Describe("Steady state under repeated operations", Label("steady-state", "leak"), func() {
	When("/tyk/reload is called again and again, each reload followed by requests through the new chains", func() {
		var (
			env         *specs.Env
			key, jsKey  string
			reloadAndGo func(int)
		)
		BeforeEach(func() {
			pass := middleware("pass", `return pass.ReturnData(request, {});`)
			env = steadyEnv(specs.WithConfig(`{"secret": "spec-secret", "node_secret": "`+nodeSecret+`", "enable_jsvm": true}`),
				specs.WithAPI(keyedAPI("orders", "/orders/")),
				specs.WithAPI(keylessAPI("open", "/open/")),
				specs.WithAPI(jsAPI(`{"post": [{"name": "pass", "path": "`+pass+`"}]}`)),
			)
			key, jsKey = env.IssueKey(grantTo("orders")), env.IssueKey(grantTo("js"))
			reloadAndGo = func(int) {
				expectStatus(env.Control(env.Instance, http.MethodGet, "/tyk/reload", ""), http.StatusOK)
				expectStatus(env.Get("/orders/", "Authorization", key), http.StatusOK)
				expectStatus(env.Get("/open/"), http.StatusOK)
				expectStatus(env.Get("/js/", "x-key", jsKey), http.StatusOK)
			}
		})

		It("holds no more goroutines, heap, upstream or Redis connections, subscriptions, event subscribers or JS VMs for it", func(ctx SpecContext) {
			Expect(specs.Repeating(reloadAndGo, 40).WithContext(ctx)).NotTo(specs.GrowIn(
				specs.Goroutines, specs.LiveHeap(256), env.UpstreamConns(), env.RedisClients(),
				env.NotificationSubscribers(), eventSubscribers(env.Instance), jsVMs(env.Instance)))
		}, SpecTimeout(2*time.Minute))
	})

	When("/tyk/reload/group is called again and again, and another gateway reloads each time", func() {
		var (
			env         *specs.Env
			other       *specs.Instance
			groupReload func(int)
		)
		BeforeEach(func() {
			env = steadyEnv(specs.WithConfig(steadyConf), specs.WithAPI(keylessAPI("open", "/open/")))
			other = env.StartGateway()
			groupReload = func(int) {
				handled := other.Gateway.Stats().NotificationsHandled
				expectStatus(env.Control(env.Instance, http.MethodGet, "/tyk/reload/group", ""), http.StatusOK)
				waitFor(func() uint64 { return other.Gateway.Stats().NotificationsHandled }, handled+1, "the other gateway did not reload")
				// A nonce is remembered for a minute of the spec's clock.
				env.Clock.Advance(2 * time.Second)
			}
		})

		It("holds no more goroutines, heap, Redis connections or subscriptions for it, on either gateway", func(ctx SpecContext) {
			Expect(specs.Repeating(groupReload, 40).AfterWarmingUp(35).WithContext(ctx)).NotTo(specs.GrowIn(
				specs.Goroutines, specs.LiveHeap(256), env.RedisClients(), env.NotificationSubscribers(),
				eventSubscribers(env.Instance), eventSubscribers(other), notificationNonces(other)))
		}, SpecTimeout(2*time.Minute))
	})

	When("signed and unsigned notifications keep arriving on tyk.cluster.notifications", func() {
		var (
			env    *specs.Env
			notice func(int)
		)
		BeforeEach(func() {
			env = steadyEnv(specs.WithConfig(steadyConf))
			notice = func(run int) {
				stats := env.Gateway.Stats()
				signed := notify.Notification{Command: notify.KeySpaceUpdate, Payload: fmt.Sprintf("key-%d", run),
					Time: env.Clock.Now().Unix(), Nonce: fmt.Sprintf("nonce-%d", run), From: "operator"}
				signed.Sign([]byte(nodeSecret))
				unsigned := signed
				unsigned.Signature = "forged"
				for _, n := range []notify.Notification{signed, unsigned} {
					data, err := json.Marshal(n)
					Expect(err).NotTo(HaveOccurred())
					Expect(env.Redis.Publish(context.Background(), notify.Channel, data).Err()).To(Succeed())
				}
				waitFor(func() uint64 { return env.Gateway.Stats().NotificationsHandled }, stats.NotificationsHandled+1, "the signed notification was not handled")
				waitFor(func() uint64 { return env.Gateway.Stats().NotificationsRefused }, stats.NotificationsRefused+1, "the unsigned notification was not refused")
				// Each nonce is remembered for a minute of the spec's clock:
				// at two seconds a notification, about 30 at any time.
				env.Clock.Advance(2 * time.Second)
			}
		})

		It("remembers no more nonces, and holds no more goroutines, heap or Redis connections, the more it receives", func(ctx SpecContext) {
			Expect(specs.Repeating(notice, 100).AfterWarmingUp(35).WithContext(ctx)).NotTo(specs.GrowIn(
				specs.Goroutines, specs.LiveHeap(128), notificationNonces(env.Instance), env.RedisClients()))
		}, SpecTimeout(2*time.Minute))
	})

	When("keys are created, used, updated and deleted through the control API, a new key each time", func() {
		var (
			env   *specs.Env
			churn func(int)
		)
		BeforeEach(func() {
			env = steadyEnv(specs.WithConfig(steadyConf), specs.WithAPI(keyedAPI("orders", "/orders/")))
			churn = func(int) {
				key := env.IssueKey(grantTo("orders", `"rate": 100, "per": 60, "quota_max": 100, "quota_renewal_rate": 3600`))
				expectStatus(env.Get("/orders/", "Authorization", key), http.StatusOK)
				expectStatus(env.Control(env.Instance, http.MethodPut, "/tyk/keys/"+key, grantTo("orders", `"rate": 50, "per": 60`)), http.StatusOK)
				expectStatus(env.Get("/orders/", "Authorization", key), http.StatusOK)
				expectStatus(env.Control(env.Instance, http.MethodGet, "/tyk/keys/"+key, ""), http.StatusOK)
				expectStatus(env.Control(env.Instance, http.MethodDelete, "/tyk/keys/"+key, ""), http.StatusOK)
				expectStatus(env.Get("/orders/", "Authorization", key), http.StatusForbidden)
			}
		})

		It("keeps no session, counter or Redis key of a deleted key, and holds no more goroutines, heap or connections", func(ctx SpecContext) {
			Expect(specs.Repeating(churn, 100).WithContext(ctx)).NotTo(specs.GrowIn(
				specs.Goroutines, specs.LiveHeap(256), cachedSessions(env.Instance), env.RedisKeys(),
				env.RedisClients(), env.UpstreamConns()))
		}, SpecTimeout(2*time.Minute))
	})

	When("JS middleware keeps failing", func() {
		var (
			env *specs.Env
			key string
		)
		BeforeEach(func() {
			failing := middleware("failing", `if (request.Headers["X-Spin"]) { while (true) {} }
throw new Error("refused by the spec");`)
			env = steadyEnv(specs.WithConfig(steadyConf), specs.WithAPI(jsAPI(`{"pre": [{"name": "failing", "path": "`+failing+`"}]}`)))
			key = env.IssueKey(grantTo("js"))
		})

		It("keeps no VM of a run that threw, nor anything else that grows", func(ctx SpecContext) {
			throwing := func(int) {
				expectStatus(env.Get("/js/", "x-key", key), http.StatusInternalServerError)
			}
			Expect(specs.Repeating(throwing, 100).WithContext(ctx)).NotTo(specs.GrowIn(
				specs.Goroutines, specs.LiveHeap(1<<10), jsVMs(env.Instance)))
		}, SpecTimeout(2*time.Minute))

		It("keeps no VM of a run that timed out, nor anything else that grows", Label("slow"), func(ctx SpecContext) {
			spinning := func(int) {
				expectStatus(env.Get("/js/", "x-key", key, "X-Spin", "1"), http.StatusInternalServerError)
			}
			Expect(specs.Repeating(spinning, 20).WithContext(ctx)).NotTo(specs.GrowIn(
				specs.Goroutines, specs.LiveHeap(4<<10), jsVMs(env.Instance)))
		}, SpecTimeout(2*time.Minute))
	})

	When("the debug endpoints and the control API are called again and again", func() {
		var (
			env *specs.Env
			key string
		)
		BeforeEach(func() {
			env = steadyEnv(specs.WithConfig(`{"secret": "spec-secret", "enable_http_profiler": true, "debug_listen": "127.0.0.1:0"}`),
				specs.WithAPI(keyedAPI("orders", "/orders/")))
			key = env.IssueKey(grantTo("orders"))
		})

		It("holds nothing more for the debug endpoints, on the gateway's port and on debug_listen", func(ctx SpecContext) {
			debugCalls := func(int) {
				expectStatus(env.Get("/debug/summary", "X-Tyk-Authorization", env.Secret), http.StatusOK)
				expectStatus(env.Get("/debug/pprof/", "X-Tyk-Authorization", env.Secret), http.StatusOK)
				expectStatus(env.Get("/debug/pprof/cmdline", "X-Tyk-Authorization", env.Secret), http.StatusOK)
				expectStatus(env.Get("/debug/summary"), http.StatusForbidden)
				expectStatus(debugGet("http://"+env.Gateway.DebugAddr()+"/debug/summary"), http.StatusOK)
			}
			Expect(specs.Repeating(debugCalls, 100).WithContext(ctx)).NotTo(specs.GrowIn(
				specs.Goroutines, specs.LiveHeap(128), env.RedisClients()))
		}, SpecTimeout(2*time.Minute))

		It("holds nothing more for control API calls that read, and for refused ones, however many unknown keys are asked for", func(ctx SpecContext) {
			controlCalls := func(run int) {
				expectStatus(env.Control(env.Instance, http.MethodGet, "/tyk/apis", ""), http.StatusOK)
				expectStatus(env.Control(env.Instance, http.MethodGet, "/tyk/keys/"+key, ""), http.StatusOK)
				expectStatus(env.Control(env.Instance, http.MethodGet, fmt.Sprintf("/tyk/keys/no-such-key-%d", run), ""), http.StatusNotFound)
				expectStatus(env.Get("/tyk/apis", "X-Tyk-Authorization", "a guess"), http.StatusForbidden)
				expectStatus(env.Get("/hello"), http.StatusOK)
			}
			Expect(specs.Repeating(controlCalls, 100).WithContext(ctx)).NotTo(specs.GrowIn(
				specs.Goroutines, specs.LiveHeap(128), env.RedisClients(), eventSubscribers(env.Instance), cachedSessions(env.Instance)))
		}, SpecTimeout(2*time.Minute))
	})

	When("every KeyExpired webhook fails, its target refusing connections", func() {
		var (
			env     *specs.Env
			expired string
		)
		BeforeEach(func() {
			// event_timeout 0: every webhook is sent, none deduplicated.
			env = steadyEnv(specs.WithConfig(`{"secret": "s", "template_path": "templates"}`), specs.WithBaseDir(seedPath()),
				specs.WithAPI(webhookAPI(specs.DeadUpstreamURL(), 0)))
			expired = issueExpiredKey(env, func(expires string) string { return grantTo("hooked", expires) })
		})

		It("holds no more goroutines, heap, connections or Redis keys for the failed deliveries", func(ctx SpecContext) {
			failedDelivery := func(int) {
				delivered := env.Gateway.Events().Delivered()
				expectStatus(env.Get("/hooked/", "x-key", expired), http.StatusUnauthorized)
				waitFor(env.Gateway.Events().Delivered, delivered+1, "the KeyExpired event was not handled")
			}
			Expect(specs.Repeating(failedDelivery, 200).WithContext(ctx)).NotTo(specs.GrowIn(
				specs.Goroutines, specs.LiveHeap(128), env.RedisClients(), env.RedisKeys(), eventSubscribers(env.Instance)))
		}, SpecTimeout(2*time.Minute))
	})

	When("a cached API's cache is filled and purged again and again", func() {
		var env *specs.Env
		BeforeEach(func() {
			env = steadyEnv(specs.WithAPI(cachedAPI("cached", "/cached/", "{{upstream}}", false,
				`{"enable_cache": true, "cache_timeout": 60, "cache_all_safe_requests": true}`)))
		})

		It("leaves no cache entry, Redis connection, goroutine or heap behind", func(ctx SpecContext) {
			fillAndPurge := func(run int) {
				for i := range 3 {
					expectStatus(env.Get(fmt.Sprintf("/cached/%d/%d", run, i)), http.StatusOK)
				}
				expectStatus(env.Control(env.Instance, http.MethodDelete, "/tyk/cache/cached", ""), http.StatusOK)
			}
			// Each purge re-reads the slot map (go-redis's ForEachMaster),
			// which go-redis keeps for a minute: about 0.5 KiB a purge.
			Expect(specs.Repeating(fillAndPurge, 60).WithContext(ctx)).NotTo(specs.GrowIn(
				specs.Goroutines, specs.LiveHeap(1<<10), env.RedisKeys(), env.RedisClients(), env.UpstreamConns()))
		}, SpecTimeout(2*time.Minute))
	})

	When("the node holding a key's session is down and requests for it keep coming", specs.SimulatedOnly("kills a simulated node"), Label("slow"), func() {
		var (
			env *specs.Env
			key string
		)
		BeforeEach(func() {
			// Each failure makes go-redis re-read the slot map, which it keeps
			// for a minute: hence the larger heap allowance.
			// go-redis starts a redial probe once a node's pool has seen
			// optimisation_max_active failed dials; it sleeps a second
			// between tries and outlives Shutdown by as long. A large pool
			// keeps this spec's few hundred dials below that.
			env = steadyEnv(specs.WithConfig(`{"secret": "s", "local_session_cache": {"disable_cached_session_state": true},
  "storage": {"optimisation_max_active": 10000}}`),
				specs.WithAPI(keyedAPI("orders", "/orders/")))
			dead := env.Cluster.Node(0)
			for key == "" {
				if k := env.IssueKey(grantTo("orders")); env.Cluster.NodeForKey(session.RedisKey(k)) == dead {
					key = k
				}
			}
			dead.Kill()
			DeferCleanup(dead.Restart)
		})

		It("answers 503 each time, holding no more goroutines, heap or Redis connections for the failures", func(ctx SpecContext) {
			storageError := func(run int) {
				if run%2 == 0 {
					expectStatus(env.Get("/orders/", "Authorization", key), http.StatusServiceUnavailable)
				} else {
					expectStatus(env.Control(env.Instance, http.MethodGet, "/tyk/keys/"+key, ""), http.StatusServiceUnavailable)
				}
			}
			Expect(specs.Repeating(storageError, 16).WithContext(ctx)).NotTo(specs.GrowIn(
				specs.Goroutines, specs.LiveHeap(2<<10), env.RedisClients()))
		}, SpecTimeout(2*time.Minute))
	})

	When("clients hang up while a slow upstream has not answered yet", func() {
		var (
			env  *specs.Env
			slow *specs.SlowUpstream
		)
		BeforeEach(func() {
			slow = specs.StartSlowUpstream()
			env = steadyEnv(specs.WithAPI(`{"api_id": "slow", "active": true, "use_keyless": true,
  "proxy": {"listen_path": "/slow/", "target_url": "` + slow.URL + `"}}`))
		})

		It("gives up on the upstream request each time, holding no more connections, goroutines or heap for it", func(ctx SpecContext) {
			hangUp := func(int) {
				arrived := slow.Arrived()
				client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, env.URL+"/slow/", nil)
				Expect(err).NotTo(HaveOccurred())
				done := make(chan error, 1)
				go func() {
					resp, err := client.Do(req)
					if err == nil {
						_ = resp.Body.Close()
					}
					done <- err
				}()
				waitFor(slow.Arrived, arrived+1, "the request did not reach the slow upstream")
				cancel()
				Expect(<-done).To(MatchError(context.Canceled))
			}
			Expect(specs.Repeating(hangUp, 40).WithContext(ctx)).NotTo(specs.GrowIn(
				specs.Goroutines, specs.LiveHeap(256), specs.OpenConns("the slow upstream", slow),
				specs.Count("requests the slow upstream still holds", 0, slow.Waiting)))
		}, SpecTimeout(2*time.Minute))
	})
})
