package specs_test

import (
	"fmt"
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/specs"
)

// grantURLs is a session granting apiID with allowed_urls, given as JSON
// array members (`{"url": "^/valid_path", "methods": ["GET"]}`).
func grantURLs(apiID string, allowed ...string) string {
	list := ""
	for i, a := range allowed {
		if i > 0 {
			list += ", "
		}
		list += a
	}
	return fmt.Sprintf(`{"access_rights": {%q: {"api_id": %q, "api_name": %q, "versions": [], "allowed_urls": [%s]}}, "org_id": "org1"}`, apiID, apiID, apiID, list)
}

// Tyk's GranularAccessMiddleware, mirrored from gateway/mw_granular_access_test.go
// (TestGranularAccessMiddleware_ProcessRequest) and mw_granular_access.go.
var _ = Describe("Granular access (a key's allowed_urls)", Label("auth", "granular"), func() {
	var env *specs.Env

	expectDisallowed := func(resp specs.Response) {
		GinkgoHelper()
		expectGatewayError(resp, http.StatusForbidden, chain.CauseURLNotAllowed, "Access to this resource has been disallowed")
	}

	When("http_server_options.enable_path_prefix_matching is on and the key allows GET ^/valid_path and GET ^/test/try_valid_path", func() {
		var key string
		BeforeEach(func() {
			env = specs.NewEnv(
				specs.WithConfig(`{"secret": "spec-secret", "http_server_options": {"enable_path_prefix_matching": true}}`),
				specs.WithAPI(keyedAPI("granular", "/test/")),
			)
			key = env.IssueKey(grantURLs("granular",
				`{"url": "^/valid_path", "methods": ["GET"]}`,
				`{"url": "^/test/try_valid_path", "methods": ["GET"]}`))
		})

		It(`lets GET /test/try_valid_path through: a pattern may name the listen path (mirrors Tyk TestGranularAccessMiddleware_ProcessRequest "should return 200 OK on regex matching listen path")`, func() {
			Expect(env.Get("/test/try_valid_path", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
		})

		It(`lets GET /test/valid_path through: a pattern may be below the listen path (mirrors "should return 200 OK on allowed path with allowed method")`, func() {
			Expect(env.Get("/test/valid_path", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
			Expect(env.Upstream.LastRequest().Path).To(Equal("/valid_path"))
		})

		It(`refuses POST /test/valid_path with 403 (mirrors "should return 403 Forbidden on allowed path with disallowed method")`, func() {
			expectDisallowed(env.Do(http.MethodPost, "/test/valid_path", "", "Authorization", key))
		})

		It(`refuses GET /test/invalid_path with 403 (mirrors "should return 403 Forbidden on disallowed path with allowed method")`, func() {
			expectDisallowed(env.Get("/test/invalid_path", "Authorization", key))
		})

		It("refuses a path that contains an allowed pattern anywhere but at its start", func() {
			expectDisallowed(env.Get("/test/x/valid_path", "Authorization", key))
		})

		It("does not reach the upstream for a refused request", func() {
			env.Get("/test/invalid_path", "Authorization", key)
			Expect(env.Upstream.Requests()).To(BeEmpty())
		})
	})

	When("path prefix matching is off (Tyk's default, its legacy match)", func() {
		var key string
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithAPI(keyedAPI("granular", "/test/")))
			key = env.IssueKey(grantURLs("granular", `{"url": "/users/{id}", "methods": ["GET", "PURGE"]}`))
		})

		It("matches a pattern anywhere in the full request path", func() {
			Expect(env.Get("/test/v1/users/7", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
		})

		It(`reads "{id}" as one path segment, not as nothing`, func() {
			expectDisallowed(env.Get("/test/users/", "Authorization", key))
		})

		It("compares methods case-sensitively, as Tyk does", func() {
			expectDisallowed(env.Do("purge", "/test/users/7", "", "Authorization", key))
		})
	})

	When("an allowed_urls pattern is not a valid regular expression", func() {
		It("matches nothing, so the request is refused rather than let through", func() {
			env = specs.NewEnv(specs.WithAPI(keyedAPI("granular", "/test/")))
			key := env.IssueKey(grantURLs("granular", `{"url": "/users/(", "methods": ["GET"]}`))
			expectDisallowed(env.Get("/test/users/(", "Authorization", key))
		})
	})

	When("the key's access rights list no allowed_urls", func() {
		It("lets every path and method of the API through", func() {
			env = specs.NewEnv(specs.WithAPI(keyedAPI("granular", "/test/")))
			key := env.IssueKey(grantTo("granular"))
			Expect(env.Do(http.MethodDelete, "/test/anything", "", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
		})
	})

	When("the path is in the version's extended_paths.ignored", func() {
		It("is not checked, like auth: an ignored path needs no key", func() {
			env = specs.NewEnv(specs.WithAPI(`{
  "api_id": "granular", "name": "granular", "active": true, "use_keyless": false,
  "auth": {"auth_header_name": "Authorization"},
  "proxy": {"listen_path": "/test/", "target_url": "{{upstream}}", "strip_listen_path": true},
  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default", "use_extended_paths": true,
    "extended_paths": {"ignored": [{"path": "^/health", "method_actions": {"GET": {"action": "no_action"}}}]}}}}
}`))
			key := env.IssueKey(grantURLs("granular", `{"url": "^/only", "methods": ["GET"]}`))
			Expect(env.Get("/test/health", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
		})
	})
})
