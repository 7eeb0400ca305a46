package specs_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/session"
	"github.com/tollgate/tollgate/specs"
)

// hookedAPIAt is a keyed API whose KeyExpired events are posted to target
// with the seed's template; event_timeout 0 sends every one.
func hookedAPIAt(apiID, listenPath, target string) string {
	return fmt.Sprintf(`{"api_id": %q, "active": true,
  "auth": {"auth_header_name": "x-key"},
  "proxy": {"listen_path": %q, "target_url": "{{upstream}}"},
  "event_handlers": {"events": {"KeyExpired": [{"handler_name": "eh_web_hook_handler", "handler_meta": {
    "method": "POST", "target_path": %q, "template_path": "default_webhook.json", "event_timeout": 0}}]}}}`,
		apiID, listenPath, target)
}

// grantToAll is a session granting access to every API named.
func grantToAll(expires string, apiIDs ...string) string {
	rights := make([]string, len(apiIDs))
	for i, id := range apiIDs {
		rights[i] = fmt.Sprintf(`%q: {"api_id": %q, "api_name": %q, "versions": []}`, id, id, id)
	}
	return fmt.Sprintf(`{"access_rights": {%s}, "org_id": "org1", %s}`, strings.Join(rights, ", "), expires)
}

// redirectingWebhookTarget answers every request with a 302 to location
// and counts what it received.
func redirectingWebhookTarget(location string) (url string, received *atomic.Int32) {
	GinkgoHelper()
	received = &atomic.Int32{}
	url = specs.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		received.Add(1)
		http.Redirect(w, r, location, http.StatusFound)
	}))
	return url, received
}

// hangingWebhookTarget never answers: each request waits until the gateway
// gives up on it or the spec ends. arrived counts the requests so far.
func hangingWebhookTarget() (url string, arrived *atomic.Int32) {
	GinkgoHelper()
	arrived = &atomic.Int32{}
	specEnded := make(chan struct{})
	url = specs.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		select {
		case <-r.Context().Done():
		case <-specEnded:
		}
	}))
	// Registered after Serve's own cleanup, so it runs first and frees the
	// requests still waiting before the server waits for them.
	DeferCleanup(func() { close(specEnded) })
	return url, arrived
}

// countLines counts the log lines containing text.
func countLines(logs, text string) int {
	n := 0
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, text) {
			n++
		}
	}
	return n
}

var _ = Describe("Webhooks under hostile input", Label("limits-hostile", "webhook"), func() {
	var (
		env     *specs.Env
		sink    *specs.RecordingUpstream
		expired string
	)

	When("one API's webhook target hangs", func() {
		var arrived *atomic.Int32
		BeforeEach(func() {
			sink = specs.StartRecordingUpstream()
			env = specs.NewEnv(specs.WithConfig(`{"secret": "s", "template_path": "templates"}`), specs.WithBaseDir(seedPath()),
				specs.WithAPI(hookedAPIAt("fine", "/fine/", sink.URL+"/fine")))
			expired = issueExpiredKey(env, func(expires string) string { return grantToAll(expires, "stuck", "fine") })
			// Started after the gateway, so this target lets go of its
			// requests before the gateway shuts down.
			var stuck string
			stuck, arrived = hangingWebhookTarget()
			env.RegisterAPI(hookedAPIAt("stuck", "/stuck/", stuck+"/stuck"))
		})

		// Before, every webhook ran on the bus's 4 workers for up to 10 s
		// each: 8 events for a hung target held them all for 20 s.
		It("still delivers another API's webhook within a second", func(ctx SpecContext) {
			for range 8 {
				Expect(env.Get("/stuck/", "x-key", expired).StatusCode).To(Equal(http.StatusUnauthorized))
			}
			Eventually(arrived.Load).WithContext(ctx).Should(BeNumerically(">=", 1))
			Expect(env.Get("/fine/", "x-key", expired).StatusCode).To(Equal(http.StatusUnauthorized))
			Eventually(sink.Requests).WithContext(ctx).WithTimeout(time.Second).Should(HaveLen(1))
			Expect(sink.LastRequest().Path).To(Equal("/fine"))
		}, SpecTimeout(10*time.Second))

		It("drops that API's webhooks past its queue, and /hello counts them", func(ctx SpecContext) {
			for range 2 {
				env.Get("/stuck/", "x-key", expired)
			}
			Eventually(arrived.Load).WithContext(ctx).Should(Equal(int32(2)))
			for range 138 {
				env.Get("/stuck/", "x-key", expired)
			}
			// 2 in flight and 128 queued: the other 10 are dropped, once the
			// bus has handed every event on.
			Eventually(func() any { return env.Get("/hello", "X-Tyk-Authorization", env.Secret).JSON()["dropped"] }).WithContext(ctx).
				Should(HaveKeyWithValue("webhooks", 10.0))
		}, SpecTimeout(10*time.Second))
	})

	When("the webhook target answers with a redirect to another server", func() {
		var redirector *atomic.Int32
		BeforeEach(func() {
			sink = specs.StartRecordingUpstream()
			var target string
			target, redirector = redirectingWebhookTarget(sink.URL + "/elsewhere")
			env = specs.NewEnv(specs.WithConfig(`{"secret": "s", "template_path": "templates"}`), specs.WithBaseDir(seedPath()),
				specs.WithAPI(webhookAPI(target, 0)))
			expired = issueExpiredKey(env, func(expires string) string { return grantTo("hooked", expires) })
			env.Get("/hooked/", "x-key", expired)
		})

		// Before, the client followed it: the other server got the webhook
		// as a GET, and it counted as delivered.
		It("does not follow it: the other server receives nothing", func(ctx SpecContext) {
			eventsHandled(ctx, env.Instance, 1)
			Expect(redirector.Load()).To(Equal(int32(1)))
			Expect(sink.Requests()).To(BeEmpty())
		}, SpecTimeout(10*time.Second))

		It("logs a failed delivery with the status and the Location", func(ctx SpecContext) {
			eventsHandled(ctx, env.Instance, 1)
			Expect(env.Gateway.WebhookDeliveries().Failed).To(Equal(uint64(1)))
			Expect(env.Logs()).To(And(
				ContainSubstring("redirects are not followed"),
				ContainSubstring("status=302"),
				ContainSubstring("location="+sink.URL+"/elsewhere"),
			))
		}, SpecTimeout(10*time.Second))
	})

	When("a request path tries to add fields to the webhook's JSON", func() {
		BeforeEach(func() {
			sink = specs.StartRecordingUpstream()
			env = specs.NewEnv(specs.WithConfig(`{"secret": "s", "template_path": "templates"}`), specs.WithBaseDir(seedPath()),
				specs.WithAPI(webhookAPI(sink.URL, 0)))
			expired = issueExpiredKey(env, func(expires string) string { return grantTo("hooked", expires) })
		})

		// Before, the seed's template inserted the path raw, and the target
		// decoded "event": "KeyCreated" and a new "admin" field.
		It("sends the path as one string: the target decodes exactly the template's fields", func(ctx SpecContext) {
			injected := `/hooked/x","event":"KeyCreated","admin":"true`
			Expect(env.Get(`/hooked/x%22,%22event%22:%22KeyCreated%22,%22admin%22:%22true`, "x-key", expired).StatusCode).
				To(Equal(http.StatusUnauthorized))
			Eventually(sink.Requests).WithContext(ctx).Should(HaveLen(1))
			var body map[string]any
			Expect(json.Unmarshal([]byte(sink.LastRequest().Body), &body)).To(Succeed(), "body: %s", sink.LastRequest().Body)
			Expect(body).To(Equal(map[string]any{
				"event":   "KeyExpired",
				"message": "Attempted access from expired key.",
				"path":    injected,
				"origin":  "127.0.0.1",
				"key":     expired,
			}))
		}, SpecTimeout(10*time.Second))
	})
})

var _ = Describe("Warnings while Redis is down", Label("limits-hostile", "storage"), func() {
	When("the Redis node holding the sessions is down and requests keep coming", specs.SimulatedOnly("kills a simulated node"), func() {
		var (
			env  *specs.Env
			keys []string // keys whose sessions live on the dead node
		)
		const flood = 50

		BeforeEach(func() {
			env = specs.NewEnv(specs.WithConfig(`{"secret": "s", "local_session_cache": {"disable_cached_session_state": true}}`),
				specs.WithAPI(keyedAPI("orders", "/orders/")))
			dead := env.Cluster.Node(0)
			keys = nil
			for i := 0; len(keys) <= flood; i++ {
				if key := fmt.Sprintf("%03d-flood-key", i); env.Cluster.NodeForKey(session.RedisKey(key)) == dead {
					keys = append(keys, key)
				}
			}
			dead.Kill()
			DeferCleanup(func(ctx SpecContext) {
				// After this many failed dials go-redis probes the node from a
				// goroutine of its own until a dial succeeds: wait for it.
				Expect(dead.Restart()).To(Succeed())
				Eventually(func() int { return env.Get("/orders/", "Authorization", keys[0]).StatusCode }).
					WithContext(ctx).ShouldNot(Equal(http.StatusServiceUnavailable))
			}, NodeTimeout(10*time.Second))
			for _, key := range keys[:flood] {
				Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusServiceUnavailable))
			}
		})

		// Before, each of these requests logged its own line: 437 in 10 s.
		It("logs one line for them in 10 s, whatever the key", func() {
			Expect(countLines(env.Logs(), "session not loaded")).To(Equal(1))
		})

		It("logs the next line after 10 s, with the count of lines left out", func() {
			env.Clock.Advance(10 * time.Second)
			env.Get("/orders/", "Authorization", keys[flood])
			Expect(countLines(env.Logs(), "session not loaded")).To(Equal(2))
			Expect(countLines(env.Logs(), fmt.Sprintf("suppressed=%d", flood-1))).To(Equal(1))
		})
	})
})
