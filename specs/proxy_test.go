package specs_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/specs"
)

// expectGatewayError checks the shape every error the gateway produces
// itself has: the status, Tyk's JSON body and the machine-readable cause.
func expectGatewayError(resp specs.Response, status int, cause chain.Cause, message string) {
	GinkgoHelper()
	Expect(resp.StatusCode).To(Equal(status))
	Expect(resp.Header.Get("Content-Type")).To(Equal("application/json"))
	Expect(resp.Header.Get(chain.CauseHeader)).To(Equal(string(cause)))
	Expect(resp.JSON()).To(Equal(map[string]any{"error": message}))
}

var _ = Describe("Keyless proxying", Label("proxy"), func() {
	var env *specs.Env

	When("an API is keyless", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithAPI(keylessAPI("echo", "/echo/")))
		})

		It("forwards the request to target_url and returns the upstream's answer", func() {
			resp := env.Get("/echo/users?page=2")
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(resp.Header.Get("X-Echo")).To(Equal("1"))
			Expect(env.Upstream.LastRequest().Query).To(Equal("page=2"))
		})

		It("forwards the method and the body", func() {
			env.Do(http.MethodPost, "/echo/orders", `{"qty": 3}`)
			Expect(env.Upstream.LastRequest().Method).To(Equal(http.MethodPost))
			Expect(env.Upstream.LastRequest().Body).To(Equal(`{"qty": 3}`))
		})

		It("tells the upstream who the client was in X-Forwarded-For", func() {
			env.Get("/echo/")
			Expect(env.Upstream.LastRequest().Headers.Get("X-Forwarded-For")).To(Equal("127.0.0.1"))
		})

		It("does not forward hop-by-hop headers", func() {
			env.Get("/echo/", "Connection", "X-Private", "X-Private", "secret")
			Expect(env.Upstream.LastRequest().Headers).NotTo(HaveKey("X-Private"))
		})

		It("serves the listen path itself without a trailing slash", func() {
			Expect(env.Get("/echo").StatusCode).To(Equal(http.StatusOK))
		})
	})

	When("responses are larger than the buffer a proxy copies them through", func() {
		// Each path answers with its own 200 KiB body: the gateway copies
		// bodies through pooled 32 KiB buffers, and a buffer handed to two
		// responses at once would mix their bytes.
		bigBody := func(path string) string {
			return strings.Repeat(path+";", 200<<10/(len(path)+1))
		}

		BeforeEach(func() {
			big := specs.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, bigBody(r.URL.Path))
			}))
			env = specs.NewEnv(specs.WithAPI(fmt.Sprintf(`{
  "api_id": "big", "active": true, "use_keyless": true,
  "proxy": {"listen_path": "/big/", "target_url": %q, "strip_listen_path": true}
}`, big)))
		})

		It("delivers every body whole, also with 16 proxied at once", func() {
			bodies := make([]string, 16)
			var wg sync.WaitGroup
			for i := range bodies {
				wg.Go(func() {
					defer GinkgoRecover()
					bodies[i] = env.Get(fmt.Sprintf("/big/item-%02d", i)).Body
				})
			}
			wg.Wait()
			for i, body := range bodies {
				Expect(body == bigBody(fmt.Sprintf("/item-%02d", i))).To(BeTrue(), "body %d differs from what the upstream sent (%d bytes)", i, len(body))
			}
		})
	})

	When("strip_listen_path is true", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithAPI(keylessAPI("echo", "/echo/")))
		})

		It("forwards the path without the listen path", func() {
			env.Get("/echo/users/7")
			Expect(env.Upstream.LastRequest().Path).To(Equal("/users/7"))
		})
	})

	When("strip_listen_path is false", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithAPI(`{
  "api_id": "kept", "active": true, "use_keyless": true,
  "proxy": {"listen_path": "/kept/", "target_url": "{{upstream}}/base", "strip_listen_path": false}
}`))
		})

		It("forwards the whole path, appended to target_url's path", func() {
			env.Get("/kept/users")
			Expect(env.Upstream.LastRequest().Path).To(Equal("/base/kept/users"))
		})
	})

	When("two listen paths both match a request", func() {
		BeforeEach(func() {
			env = specs.NewEnv(
				specs.WithAPI(keylessAPI("outer", "/shop/")),
				specs.WithAPI(`{
  "api_id": "inner", "active": true, "use_keyless": true,
  "proxy": {"listen_path": "/shop/cart/", "target_url": "{{upstream}}/inner", "strip_listen_path": true}
}`))
		})

		It("routes to the longest", func() {
			env.Get("/shop/cart/items")
			Expect(env.Upstream.LastRequest().Path).To(Equal("/inner/items"))
		})

		It("routes the rest to the shorter", func() {
			env.Get("/shop/catalogue")
			Expect(env.Upstream.LastRequest().Path).To(Equal("/catalogue"))
		})
	})

	When("a path only shares a prefix with a listen path", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithAPI(keylessAPI("echo", "/echo")))
		})

		It("is not routed to that API", func() {
			expectGatewayError(env.Get("/echoes"), http.StatusNotFound, chain.CauseUnknownPath, "No API is served at this path")
		})
	})

	When("the API's version has global_headers", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithAPI(`{
  "api_id": "headers", "active": true, "use_keyless": true,
  "proxy": {"listen_path": "/h/", "target_url": "{{upstream}}", "strip_listen_path": true},
  "version_data": {"not_versioned": true, "versions": {"Default": {
    "name": "Default",
    "global_headers": {"x-env": "production"},
    "global_headers_remove": ["x-debug"]
  }}}
}`))
		})

		It("sets them on the forwarded request", func() {
			env.Get("/h/")
			Expect(env.Upstream.LastRequest().Headers.Get("X-Env")).To(Equal("production"))
		})

		It("replaces a value the client sent", func() {
			env.Get("/h/", "X-Env", "staging")
			Expect(env.Upstream.LastRequest().Headers.Values("X-Env")).To(Equal([]string{"production"}))
		})

		It("removes global_headers_remove", func() {
			env.Get("/h/", "X-Debug", "1")
			Expect(env.Upstream.LastRequest().Headers).NotTo(HaveKey("X-Debug"))
		})
	})

	When("an API is not active", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithAPI(`{
  "api_id": "off", "active": false, "use_keyless": true,
  "proxy": {"listen_path": "/off/", "target_url": "{{upstream}}"}
}`))
		})

		It("is not served", func() {
			expectGatewayError(env.Get("/off/"), http.StatusNotFound, chain.CauseUnknownPath, "No API is served at this path")
		})

		It("says so in the log", func() {
			Expect(env.Logs()).To(ContainSubstring(`API \"off\" is not served: active is false or missing`))
		})
	})

	When("no API matches the path", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithAPI(keylessAPI("echo", "/echo/")))
		})

		It("answers 404 with a Tyk-shaped error and cause unknown_path", func() {
			expectGatewayError(env.Get("/nowhere"), http.StatusNotFound, chain.CauseUnknownPath, "No API is served at this path")
		})

		It("does not reach any upstream", func() {
			env.Get("/nowhere")
			Expect(env.Upstream.Requests()).To(BeEmpty())
		})
	})

	When("the upstream refuses connections", func() {
		BeforeEach(func() {
			env = specs.NewEnv()
			env.RegisterAPI(`{
  "api_id": "down", "active": true, "use_keyless": true,
  "proxy": {"listen_path": "/down/", "target_url": "` + specs.DeadUpstreamURL() + `"}
}`)
		})

		It("answers 502 with a Tyk-shaped error and cause upstream_unreachable", func() {
			expectGatewayError(env.Get("/down/"), http.StatusBadGateway, chain.CauseUpstreamUnreachable, "There was a problem proxying the request")
		})
	})

	When("the upstream does not answer within proxy_default_timeout", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithConfig(`{"proxy_default_timeout": 0.2}`))
			env.RegisterAPI(`{
  "api_id": "slow", "active": true, "use_keyless": true,
  "proxy": {"listen_path": "/slow/", "target_url": "` + specs.StartSlowUpstream().URL + `"}
}`)
		})

		It("answers 504 with a Tyk-shaped error and cause upstream_timeout", func() {
			expectGatewayError(env.Get("/slow/"), http.StatusGatewayTimeout, chain.CauseUpstreamTimeout, "Upstream service reached hard timeout.")
		})
	})
})
