package specs_test

import (
	"net/http"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/specs"
)

// withCORS adds a "CORS" section (JSON object) to an API definition.
func withCORS(definition, corsJSON string) string {
	return "{\n  \"CORS\": " + corsJSON + "," + strings.TrimPrefix(definition, "{")
}

// appCORS allows one browser application to call the API with its key.
const appCORS = `{
  "enable": true,
  "allowed_origins": ["https://app.example"],
  "allowed_methods": ["GET", "POST", "PUT"],
  "allowed_headers": ["Authorization", "Content-Type"],
  "exposed_headers": ["X-Request-Id"],
  "allow_credentials": true,
  "max_age": 600
}`

// preflight is what a browser sends before a cross-origin PUT carrying a
// key and a JSON body.
func preflight(origin string) []string {
	return []string{
		"Origin", origin,
		"Access-Control-Request-Method", http.MethodPut,
		"Access-Control-Request-Headers", "authorization,content-type",
	}
}

// selfCORSUpstream answers 200 with CORS headers of its own, as upstreams
// written for direct browser access do.
func selfCORSUpstream() string {
	GinkgoHelper()
	return specs.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Expose-Headers", "X-Upstream-Only")
		w.WriteHeader(http.StatusOK)
	}))
}

var _ = Describe("CORS", Label("cors"), func() {
	var env *specs.Env

	When("a keyed API allows an origin and a browser sends a preflight from it", func() {
		var resp specs.Response
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithAPI(withCORS(keyedAPI("app", "/app/"), appCORS)))
			resp = env.Do(http.MethodOptions, "/app/orders/7", "", preflight("https://app.example")...)
		})

		It("answers 204 without asking for a key", func() {
			Expect(resp.StatusCode).To(Equal(http.StatusNoContent))
		})

		It("allows the origin", func() {
			Expect(resp.Header.Values("Access-Control-Allow-Origin")).To(HaveExactElements("https://app.example"))
		})

		It("allows the requested method", func() {
			Expect(resp.Header.Get("Access-Control-Allow-Methods")).To(Equal(http.MethodPut))
		})

		It("allows the requested headers", func() {
			Expect(resp.Header.Get("Access-Control-Allow-Headers")).To(Equal("authorization,content-type"))
		})

		It("tells the browser how long to cache the answer, from max_age", func() {
			Expect(resp.Header.Get("Access-Control-Max-Age")).To(Equal("600"))
		})

		It("does not forward the preflight to the upstream", func() {
			Expect(env.Upstream.Requests()).To(BeEmpty())
		})
	})

	When("a preflight comes from an origin that is not allowed", func() {
		var resp specs.Response
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithAPI(withCORS(keyedAPI("app", "/app/"), appCORS)))
			resp = env.Do(http.MethodOptions, "/app/orders/7", "", preflight("https://evil.example")...)
		})

		It("answers without Access-Control-Allow-Origin", func() {
			Expect(resp.Header).NotTo(HaveKey("Access-Control-Allow-Origin"))
		})

		It("does not forward the preflight to the upstream", func() {
			Expect(env.Upstream.Requests()).To(BeEmpty())
		})
	})

	When("options_passthrough is true", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithAPI(withCORS(keylessAPI("open", "/open/"),
				`{"enable": true, "allowed_origins": ["https://app.example"], "allowed_methods": ["GET", "PUT"], "options_passthrough": true}`)))
		})

		It("forwards the preflight to the upstream", func() {
			Expect(env.Do(http.MethodOptions, "/open/orders", "", "Origin", "https://app.example", "Access-Control-Request-Method", http.MethodPut).StatusCode).To(Equal(http.StatusOK))
			Expect(env.Upstream.LastRequest().Method).To(Equal(http.MethodOptions))
		})
	})

	When("a credentialed GET comes from an allowed origin", func() {
		var resp specs.Response
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithAPI(withCORS(keyedAPI("app", "/app/"), appCORS)))
			key := env.IssueKey(grantTo("app"))
			resp = env.Get("/app/orders", "Origin", "https://app.example", "Authorization", key)
		})

		It("is forwarded to the upstream", func() {
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
		})

		It("allows the origin", func() {
			Expect(resp.Header.Values("Access-Control-Allow-Origin")).To(HaveExactElements("https://app.example"))
		})

		It("allows credentials", func() {
			Expect(resp.Header.Get("Access-Control-Allow-Credentials")).To(Equal("true"))
		})

		It("exposes exposed_headers to the page", func() {
			Expect(resp.Header.Get("Access-Control-Expose-Headers")).To(Equal("X-Request-Id"))
		})
	})

	When("a request from an allowed origin carries no key", func() {
		// Tyk #757: the gateway's own auth errors had no CORS headers, so
		// browsers hid the 401 from the page as a network error.
		It("answers 401 with Access-Control-Allow-Origin", func() {
			env = specs.NewEnv(specs.WithAPI(withCORS(keyedAPI("app", "/app/"), appCORS)))
			resp := env.Get("/app/orders", "Origin", "https://app.example")
			expectGatewayError(resp, http.StatusUnauthorized, chain.CauseKeyMissing, "Authorization field missing")
			Expect(resp.Header.Values("Access-Control-Allow-Origin")).To(HaveExactElements("https://app.example"))
		})
	})

	When("the upstream sets CORS headers of its own", func() {
		// Tyk #2199: the upstream's Access-Control-Allow-Origin was sent
		// next to the gateway's, and browsers refuse two values.
		var resp specs.Response
		BeforeEach(func() {
			target := selfCORSUpstream()
			def := strings.Replace(withCORS(keylessAPI("self", "/self/"), appCORS), "{{upstream}}", target, 1)
			env = specs.NewEnv(specs.WithAPI(def))
			resp = env.Get("/self/orders", "Origin", "https://app.example")
		})

		It("sends exactly one Access-Control-Allow-Origin, the gateway's", func() {
			Expect(resp.Header.Values("Access-Control-Allow-Origin")).To(HaveExactElements("https://app.example"))
		})

		It("sends only the gateway's Access-Control-Expose-Headers", func() {
			Expect(resp.Header.Values("Access-Control-Expose-Headers")).To(HaveExactElements("X-Request-Id"))
		})
	})

	When("allowed_origins is \"*\" and allow_credentials is true, as in the seed", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithAPI(withCORS(keylessAPI("any", "/any/"),
				`{"enable": true, "allowed_origins": ["*"], "allowed_methods": ["GET"], "allow_credentials": true, "max_age": 24}`)))
		})

		It("warns at load that browsers refuse credentialed requests with a wildcard origin", func() {
			Expect(env.Logs()).To(ContainSubstring("browsers refuse credentialed requests with a wildcard origin"))
		})

		It("answers with Access-Control-Allow-Origin: * and Access-Control-Allow-Credentials: true, as rs/cors does", func() {
			resp := env.Get("/any/", "Origin", "https://app.example")
			Expect(resp.Header.Values("Access-Control-Allow-Origin")).To(HaveExactElements("*"))
			Expect(resp.Header.Get("Access-Control-Allow-Credentials")).To(Equal("true"))
		})
	})

	When("enable is false", func() {
		It("sends preflights through the chain like any other request", func() {
			env = specs.NewEnv(specs.WithAPI(withCORS(keyedAPI("app", "/app/"), `{"enable": false, "allowed_origins": ["https://app.example"]}`)))
			resp := env.Do(http.MethodOptions, "/app/orders", "", preflight("https://app.example")...)
			expectGatewayError(resp, http.StatusUnauthorized, chain.CauseKeyMissing, "Authorization field missing")
			Expect(resp.Header).NotTo(HaveKey("Access-Control-Allow-Origin"))
		})
	})

	When("max_age is negative", func() {
		It("refuses the definition, naming CORS.max_age", func() {
			env = specs.NewEnv()
			env.WriteAPIFile("neg.json", withCORS(keylessAPI("neg", "/neg/"), `{"enable": true, "max_age": -1}`))
			Expect(env.Gateway.Reload()).To(MatchError(And(ContainSubstring("neg.json"), ContainSubstring("CORS.max_age"))))
			Expect(env.Get("/neg/").StatusCode).To(Equal(http.StatusNotFound))
		})
	})
})
