package specs_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/specs"
	"github.com/tollgate/tollgate/tools/echo"
)

// templatedWebhookAPI is a keyed API (key in x-key) whose KeyExpired
// events are posted to sink by a webhook with these handler_meta members
// besides method and target_path.
func templatedWebhookAPI(sink, members string) string {
	return fmt.Sprintf(`{"api_id": "hooked", "active": true,
  "auth": {"auth_header_name": "x-key"},
  "proxy": {"listen_path": "/hooked/", "target_url": "{{upstream}}"},
  "event_handlers": {"events": {"KeyExpired": [{"handler_name": "eh_web_hook_handler", "handler_meta": {
    "method": "POST", "target_path": %q %s}}]}}}`, sink+"/expired", members)
}

// tykDefaultKeyExpired is the body Tyk's templates/default_webhook.json
// renders for a KeyExpired event of key on path.
func tykDefaultKeyExpired(key, path string) map[string]any {
	return map[string]any{
		"event":   "KeyExpired",
		"message": "Attempted access from expired key.",
		"path":    path,
		"origin":  "127.0.0.1",
		"key":     key,
	}
}

var _ = Describe("Webhook templates, as Tyk's tests describe them", Label("webhook", "tyk-mirror"), func() {
	var (
		env  *specs.Env
		sink *specs.RecordingUpstream
	)

	// expireAndReceive makes a request with an expired key and returns the
	// webhook the sink received, and the key.
	expireAndReceive := func(ctx SpecContext) (echo.Request, string) {
		GinkgoHelper()
		expired := issueExpiredKey(env, func(expires string) string { return grantTo("hooked", expires) })
		Expect(env.Get("/hooked/orders", "x-key", expired).StatusCode).To(Equal(http.StatusUnauthorized))
		Eventually(sink.Requests).WithContext(ctx).Should(HaveLen(1))
		return sink.LastRequest(), expired
	}

	// bodyOf decodes a webhook's JSON body.
	bodyOf := func(hook echo.Request) map[string]any {
		GinkgoHelper()
		var body map[string]any
		Expect(json.Unmarshal([]byte(hook.Body), &body)).To(Succeed(), "body: %s", hook.Body)
		return body
	}

	BeforeEach(func() {
		sink = specs.StartRecordingUpstream()
	})

	When("a webhook has no template_path", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithConfig(`{"secret": "s", "template_path": "missing-dir"}`),
				specs.WithAPI(templatedWebhookAPI(sink.URL, "")))
		})

		It(`posts the body of Tyk's default template (mirrors Tyk TestNewCustomTemplate "UseDefault")`, func(ctx SpecContext) {
			hook, key := expireAndReceive(ctx)
			Expect(bodyOf(hook)).To(Equal(tykDefaultKeyExpired(key, "/hooked/orders")))
		}, SpecTimeout(10*time.Second))

		It(`sends it as application/json (mirrors Tyk TestWebhookContentTypeHeader "MissingTemplatePath")`, func(ctx SpecContext) {
			hook, _ := expireAndReceive(ctx)
			Expect(hook.Headers.Get("Content-Type")).To(Equal("application/json"))
		}, SpecTimeout(10*time.Second))

		It(`uses the built-in copy when tyk.conf's template folder has no default_webhook.json, where Tyk fails the webhook and sends nothing (Tyk TestNewCustomTemplate "MissingDefault")`, func(ctx SpecContext) {
			hook, _ := expireAndReceive(ctx)
			Expect(bodyOf(hook)).To(HaveKeyWithValue("event", "KeyExpired"))
		}, SpecTimeout(10*time.Second))
	})

	When("a webhook has no template_path and header_map sets Content-Type application/xml", func() {
		It(`sends the header_map's Content-Type (mirrors Tyk TestWebhookContentTypeHeader "MissingTemplatePath/CustomHeaders")`, func(ctx SpecContext) {
			env = specs.NewEnv(specs.WithAPI(templatedWebhookAPI(sink.URL, `, "header_map": {"Content-Type": "application/xml"}`)))
			hook, _ := expireAndReceive(ctx)
			Expect(hook.Headers.Get("Content-Type")).To(Equal("application/xml"))
		}, SpecTimeout(10*time.Second))
	})

	When("a webhook's template_path names a file that does not exist", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithAPI(templatedWebhookAPI(sink.URL, `, "template_path": "missing_webhook.json"`)))
		})

		It(`loads the API and posts the default template's body instead (mirrors Tyk TestNewCustomTemplate "FallbackToDefault")`, func(ctx SpecContext) {
			hook, key := expireAndReceive(ctx)
			Expect(bodyOf(hook)).To(Equal(tykDefaultKeyExpired(key, "/hooked/orders")))
		}, SpecTimeout(10*time.Second))

		It(`sends it as application/json (mirrors Tyk TestWebhookContentTypeHeader "InvalidTemplatePath")`, func(ctx SpecContext) {
			hook, _ := expireAndReceive(ctx)
			Expect(hook.Headers.Get("Content-Type")).To(Equal("application/json"))
		}, SpecTimeout(10*time.Second))

		It("logs a warning naming the file, as Tyk's \"Custom template load failure, using default\"", func() {
			Expect(env.Logs()).To(And(ContainSubstring("missing_webhook.json"), ContainSubstring("using the default template")))
		})
	})

	When("tyk.conf's template folder has a default_webhook.json of its own", func() {
		It("falls back to that file, as Tyk reads its default from the template folder", func(ctx SpecContext) {
			dir := GinkgoT().TempDir()
			Expect(os.WriteFile(filepath.Join(dir, "default_webhook.json"), []byte(`{"house_default": "{{.Type}}"}`), 0o600)).To(Succeed())
			env = specs.NewEnv(specs.WithConfig(fmt.Sprintf(`{"secret": "s", "template_path": %q}`, dir)),
				specs.WithAPI(templatedWebhookAPI(sink.URL, `, "template_path": "missing_webhook.json"`)))
			hook, _ := expireAndReceive(ctx)
			Expect(bodyOf(hook)).To(Equal(map[string]any{"house_default": "KeyExpired"}))
		}, SpecTimeout(10*time.Second))
	})
})

// Tyk 5.14 decodes a webhook's handler_meta only when it builds the
// handler (WebHookHandler.Init), and one that fails is left out: the API
// is served without it, and the failure is one log line. tollgate decodes
// handler_meta with the rest of the definition, so a value of the wrong
// type is a load error naming the field, as a wrong type anywhere else in
// a definition is (in Tyk too): a webhook silently dropped is noticed only
// when the events it should report are found missing.
var _ = Describe("Webhook configuration, as Tyk's tests describe it", Label("webhook", "tyk-mirror"), func() {
	When("a webhook's method is not a string", func() {
		var (
			env *specs.Env
			err error
		)
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithAPI(keylessAPI("good", "/good/")))
			env.WriteAPIFile("hooked.json", `{"api_id": "hooked", "active": true, "use_keyless": true,
  "proxy": {"listen_path": "/hooked/", "target_url": "{{upstream}}"},
  "event_handlers": {"events": {"KeyExpired": [{"handler_name": "eh_web_hook_handler", "handler_meta": {
    "method": 123, "target_path": "http://127.0.0.1:1/hook", "header_map": {"X-Tyk-Test-Header": "Tyk v1.BANANA"}, "event_timeout": 10}}]}}}`)
			err = env.Gateway.Reload()
		})

		It("refuses the definition, naming the file and handler_meta.method (differs from Tyk TestNewInvalid, where the handler fails and the API is served without it)", func() {
			Expect(err).To(MatchError(And(ContainSubstring("hooked.json"), ContainSubstring("handler_meta"), ContainSubstring("method"))))
			Expect(env.Get("/hooked/").StatusCode).To(Equal(http.StatusNotFound))
		})

		It("still serves the other APIs", func() {
			Expect(env.Get("/good/").StatusCode).To(Equal(http.StatusOK))
		})
	})
})
