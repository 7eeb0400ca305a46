package specs_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/specs"
)

// webhookAPI is a keyed API whose KeyExpired events are posted to sink
// with the seed's webhook template (template_path "templates", resolved
// against fixtures/seed).
func webhookAPI(sink string, eventTimeout int) string {
	return fmt.Sprintf(`{"api_id": "hooked", "active": true,
  "auth": {"auth_header_name": "x-key"},
  "proxy": {"listen_path": "/hooked/", "target_url": "{{upstream}}"},
  "event_handlers": {"events": {"KeyExpired": [{"handler_name": "eh_web_hook_handler", "handler_meta": {
    "method": "POST", "target_path": %q, "template_path": "default_webhook.json",
    "header_map": {"x-env": "spec"}, "event_timeout": %d}}]}}}`, sink+"/expired", eventTimeout)
}

// eventsHandled waits until the gateway's bus has handed n events to their
// handlers and every webhook they queued has been sent (or given up), so a
// spec can count what a sink received without sleeping.
func eventsHandled(ctx SpecContext, inst *specs.Instance, n uint64) {
	GinkgoHelper()
	Eventually(inst.Gateway.Events().Delivered).WithContext(ctx).Should(BeNumerically(">=", n))
	Eventually(func() uint64 { return inst.Gateway.WebhookDeliveries().Pending }).WithContext(ctx).Should(BeZero())
}

var _ = Describe("KeyExpired webhooks", Label("webhook"), func() {
	var (
		env     *specs.Env
		sink    *specs.RecordingUpstream
		expired string
	)

	BeforeEach(func() {
		sink = specs.StartRecordingUpstream()
		env = specs.NewEnv(specs.WithConfig(`{"secret": "s", "template_path": "templates"}`), specs.WithBaseDir(seedPath()),
			specs.WithAPI(webhookAPI(sink.URL, 10)))
		expired = issueExpiredKey(env, func(expires string) string { return grantTo("hooked", expires) })
	})

	When("a request uses an expired key", func() {
		It("posts the seed template's JSON, with the key, to the webhook target", func(ctx SpecContext) {
			Expect(env.Get("/hooked/orders", "x-key", expired).StatusCode).To(Equal(http.StatusUnauthorized))
			Eventually(sink.Requests).WithContext(ctx).Should(HaveLen(1))
			hook := sink.LastRequest()
			Expect(hook.Method).To(Equal(http.MethodPost))
			var body map[string]any
			Expect(json.Unmarshal([]byte(hook.Body), &body)).To(Succeed())
			Expect(body).To(And(
				HaveKeyWithValue("event", "KeyExpired"),
				HaveKeyWithValue("message", "Attempted access from expired key."),
				HaveKeyWithValue("path", "/hooked/orders"),
				HaveKeyWithValue("key", expired),
			))
		}, SpecTimeout(10*time.Second))

		It("sends the header_map headers and a User-Agent naming tollgate", func(ctx SpecContext) {
			env.Get("/hooked/", "x-key", expired)
			Eventually(sink.Requests).WithContext(ctx).Should(HaveLen(1))
			Expect(sink.LastRequest().Headers.Get("X-Env")).To(Equal("spec"))
			Expect(sink.LastRequest().Headers.Get("User-Agent")).To(ContainSubstring("tollgate"))
		}, SpecTimeout(10*time.Second))
	})

	When("the same expiry happens again within event_timeout", func() {
		It("sends nothing the second time", func(ctx SpecContext) {
			env.Get("/hooked/", "x-key", expired)
			env.Get("/hooked/", "x-key", expired)
			eventsHandled(ctx, env.Instance, 2)
			Expect(sink.Requests()).To(HaveLen(1))
		}, SpecTimeout(10*time.Second))

		It("sends again once event_timeout has passed", specs.SimulatedOnly("the dedupe claim ends when its Redis TTL runs out, and a real Redis's clock cannot be moved"), func(ctx SpecContext) {
			env.Get("/hooked/", "x-key", expired)
			eventsHandled(ctx, env.Instance, 1)
			env.Clock.Advance(11 * time.Second)
			env.Get("/hooked/", "x-key", expired)
			Eventually(sink.Requests).WithContext(ctx).Should(HaveLen(2))
		}, SpecTimeout(10*time.Second))
	})

	When("two gateways on one cluster see the same expiry", func() {
		It("sends it once between them", func(ctx SpecContext) {
			other := env.StartGateway()
			env.Get("/hooked/", "x-key", expired)
			other.Get("/hooked/", "x-key", expired)
			eventsHandled(ctx, env.Instance, 1)
			eventsHandled(ctx, other, 1)
			Expect(sink.Requests()).To(HaveLen(1))
		}, SpecTimeout(10*time.Second))
	})

	When("the webhook target is slow", func() {
		It("answers the request without waiting for the webhook", func(ctx SpecContext) {
			held := startHeldUpstream()
			env.RegisterAPI(webhookAPI(held.URL, 10))
			Expect(env.Get("/hooked/", "x-key", expired).StatusCode).To(Equal(http.StatusUnauthorized))
			// The request has its answer; the webhook is still waiting.
			Eventually(held.arrived).WithContext(ctx).Should(Receive())
			Expect(env.Gateway.WebhookDeliveries().Handled).To(BeZero())
			held.Release()
			eventsHandled(ctx, env.Instance, 1)
		}, SpecTimeout(10*time.Second))
	})

	When("the gateway shuts down while a webhook is in flight", func() {
		It("cuts the webhook off when the shutdown deadline passes, instead of waiting for it", func(ctx SpecContext) {
			held := startHeldUpstream()
			env.RegisterAPI(webhookAPI(held.URL, 10))
			env.Get("/hooked/", "x-key", expired)
			Eventually(held.arrived).WithContext(ctx).Should(Receive())
			deadline, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			// The held target has not answered, and is not released before
			// Shutdown returns.
			Expect(env.Gateway.Shutdown(deadline)).To(MatchError(context.DeadlineExceeded))
		}, SpecTimeout(10*time.Second))
	})

	When("the webhook target is down", func() {
		It("still answers the request, and the failure stays in the log", func(ctx SpecContext) {
			env.RegisterAPI(webhookAPI(specs.DeadUpstreamURL(), 10))
			Expect(env.Get("/hooked/", "x-key", expired).StatusCode).To(Equal(http.StatusUnauthorized))
			eventsHandled(ctx, env.Instance, 1)
			Expect(env.Logs()).To(ContainSubstring("event handler failed"))
		}, SpecTimeout(10*time.Second))
	})
})

var _ = Describe("The seed API's KeyExpired webhook", Label("seed", "webhook"), func() {
	var (
		env  *specs.Env
		sink *specs.RecordingUpstream
		key  string
	)

	BeforeEach(func() {
		// fixtures/seed unchanged: its webhook target is
		// https://api/security/authorization/timeout, which reaches an HTTPS
		// sink whose root the gateway trusts; its template_path
		// "default_webhook.json" resolves against template_path "templates"
		// of fixtures/seed.
		var roots *x509.CertPool
		sink, roots = specs.StartTLSRecordingUpstream("api")
		env = specs.NewEnv(
			specs.WithConfig(`{"secret": "s", "enable_jsvm": true, "template_path": "templates"}`),
			specs.WithBaseDir(seedPath()),
			specs.WithAPI(seedAPI()),
			specs.WithUpstreamHost("java"),
			specs.WithUpstreamAt("api", strings.TrimPrefix(sink.URL, "https://"), roots),
		)
		key = issueExpiredKey(env, func(expires string) string { return grantVersion(seedAPIID, "v1", expires) })
	})

	When("a request for v1 carries a key whose expires is past", func() {
		It("answers 401 Key has expired, please renew", func() {
			Expect(env.Get("/security/users", "x-api-version", "v1", "security", key).StatusCode).To(Equal(http.StatusUnauthorized))
		})

		It("posts exactly one webhook with the template's JSON, the header_map headers and the key", func(ctx SpecContext) {
			env.Get("/security/users", "x-api-version", "v1", "security", key)
			env.Get("/security/users", "x-api-version", "v1", "security", key) // within event_timeout: not sent again
			eventsHandled(ctx, env.Instance, 2)
			Expect(sink.Requests()).To(HaveLen(1))
			hook := sink.LastRequest()
			Expect(hook.Method).To(Equal(http.MethodPost))
			Expect(hook.Path).To(Equal("/security/authorization/timeout"))
			Expect(hook.Headers.Get("X-Env")).To(Equal("***"))
			Expect(hook.Headers.Get("X-Api-Version")).To(Equal("v1"))
			var body map[string]any
			Expect(json.Unmarshal([]byte(hook.Body), &body)).To(Succeed())
			Expect(body).To(And(HaveKeyWithValue("event", "KeyExpired"), HaveKeyWithValue("key", key)))
		}, SpecTimeout(10*time.Second))

		It("posts it again once the seed's event_timeout of 10 s has passed", specs.SimulatedOnly("the dedupe claim ends when its Redis TTL runs out, and a real Redis's clock cannot be moved"), func(ctx SpecContext) {
			env.Get("/security/users", "x-api-version", "v1", "security", key)
			eventsHandled(ctx, env.Instance, 1)
			env.Clock.Advance(10 * time.Second)
			env.Get("/security/users", "x-api-version", "v1", "security", key)
			Eventually(sink.Requests).WithContext(ctx).Should(HaveLen(2))
		}, SpecTimeout(10*time.Second))
	})
})
