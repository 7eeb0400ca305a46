package specs_test

import (
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/specs"
)

// versionedAPI is keyless, versioned by the x-api-version header: v1 goes
// to the upstream's /v1, v2 to /v2 and expires at 2030-06-01 00:00 UTC
// (the spec clock starts in January 2030).
const versionedAPI = `{
  "api_id": "versioned", "active": true, "use_keyless": true,
  "definition": {"location": "header", "key": "x-api-version"},
  "proxy": {"listen_path": "/v/", "target_url": "{{upstream}}", "strip_listen_path": true},
  "version_data": {"not_versioned": false, "versions": {
    "v1": {"name": "v1", "override_target": "{{upstream}}/v1"},
    "v2": {"name": "v2", "override_target": "{{upstream}}/v2", "expires": "2030-06-01 00:00"}
  }}
}`

var _ = Describe("API versions", Label("version"), func() {
	var env *specs.Env

	When("versions are read from a header", func() {
		BeforeEach(func() { env = specs.NewEnv(specs.WithAPI(versionedAPI)) })

		It("sends each version to its override_target", func() {
			env.Get("/v/items", "x-api-version", "v1")
			Expect(env.Upstream.LastRequest().Path).To(Equal("/v1/items"))
			env.Get("/v/items", "x-api-version", "v2")
			Expect(env.Upstream.LastRequest().Path).To(Equal("/v2/items"))
		})

		It("answers 403 Version information not found when the header is missing", func() {
			expectGatewayError(env.Get("/v/items"), http.StatusForbidden, chain.CauseVersionMissing, "Version information not found")
		})

		It("answers 403 This API version does not seem to exist for an unknown version", func() {
			expectGatewayError(env.Get("/v/items", "x-api-version", "v9"), http.StatusForbidden, chain.CauseVersionUnknown, "This API version does not seem to exist")
		})

		It("tells the client when a version expires, in X-Tyk-Api-Expires", func() {
			Expect(env.Get("/v/items", "x-api-version", "v2").Header.Get("X-Tyk-Api-Expires")).To(Equal("Sat, 01 Jun 2030 00:00:00 GMT"))
		})

		It("answers 403 Api Version has expired once the version's expires has passed", func() {
			env.Clock.Advance(time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC).Sub(env.Clock.Now()))
			expectGatewayError(env.Get("/v/items", "x-api-version", "v2"), http.StatusForbidden, chain.CauseVersionExpired,
				"Api Version has expired, please check documentation or contact administrator")
		})

		// Tyk reads the first value; an upstream may read the last, and
		// serve a version whose rules never ran.
		It("answers 400 naming the header when it is given more than once, where Tyk reads the first", func() {
			expectGatewayError(env.Get("/v/items", "x-api-version", "v1", "x-api-version", "v2"), http.StatusBadRequest,
				chain.CauseVersionRepeated, "The API version is given more than once in the header X-Api-Version")
			Expect(env.Upstream.Requests()).To(BeEmpty())
		})

		It("keeps serving the versions that have not expired", func() {
			env.Clock.Advance(200 * 24 * time.Hour)
			Expect(env.Get("/v/items", "x-api-version", "v1").StatusCode).To(Equal(http.StatusOK))
		})
	})

	When("versions are read from a query parameter", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithAPI(`{
  "api_id": "byparam", "active": true, "use_keyless": true,
  "definition": {"location": "url-param", "key": "version"},
  "proxy": {"listen_path": "/p/", "target_url": "{{upstream}}"},
  "version_data": {"versions": {"a": {"name": "a", "override_target": "{{upstream}}/a"}, "b": {"name": "b"}}}
}`))
		})

		It("serves the version the parameter names", func() {
			env.Get("/p/x?version=a")
			Expect(env.Upstream.LastRequest().Path).To(Equal("/a/p/x"))
		})

		It("answers 400 naming the parameter when it is given more than once, where Tyk reads the first", func() {
			expectGatewayError(env.Get("/p/x?version=a&version=b"), http.StatusBadRequest,
				chain.CauseVersionRepeated, "The API version is given more than once in the query parameter version")
			Expect(env.Upstream.Requests()).To(BeEmpty())
		})
	})

	When("a default_version is set", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithAPI(`{
  "api_id": "defaulted", "active": true, "use_keyless": true,
  "definition": {"location": "header", "key": "x-api-version"},
  "proxy": {"listen_path": "/d/", "target_url": "{{upstream}}", "strip_listen_path": true},
  "version_data": {"default_version": "v1", "versions": {"v1": {"name": "v1", "override_target": "{{upstream}}/v1"}, "v2": {"name": "v2"}}}
}`))
		})

		It("serves it to requests that name no version", func() {
			Expect(env.Get("/d/x").StatusCode).To(Equal(http.StatusOK))
			Expect(env.Upstream.LastRequest().Path).To(Equal("/v1/x"))
		})
	})

	When("the API is not_versioned", func() {
		BeforeEach(func() { env = specs.NewEnv(specs.WithAPI(keylessAPI("plain", "/plain/"))) })

		It("ignores any version the request names", func() {
			Expect(env.Get("/plain/", "x-api-version", "v9").StatusCode).To(Equal(http.StatusOK))
		})
	})
})

// pathsAPI has one version whose extended_paths ignore, black-list and
// white-list paths, behind keys.
func pathsAPI(whiteList string) string {
	return `{
  "api_id": "paths", "active": true,
  "auth": {"auth_header_name": "x-key"},
  "proxy": {"listen_path": "/paths/", "target_url": "{{upstream}}", "strip_listen_path": true},
  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default", "use_extended_paths": true,
    "extended_paths": {
      "ignored":    [{"path": "^/health$", "method_actions": {"GET": {"action": "no_action", "code": 200}}},
                     {"path": "/public/{id}", "method_actions": {"GET": {"action": "no_action", "code": 200}}}],
      "black_list": [{"path": "admin", "method_actions": {"GET": {"action": "no_action", "code": 200}, "DELETE": {"action": "no_action", "code": 200}}}],
      "white_list": ` + whiteList + `
    }}}}
}`
}

var _ = Describe("Extended paths", Label("version"), func() {
	var env *specs.Env

	When("a path is ignored", func() {
		BeforeEach(func() { env = specs.NewEnv(specs.WithAPI(pathsAPI(`[]`))) })

		It("serves it without a key", func() {
			Expect(env.Get("/paths/health").StatusCode).To(Equal(http.StatusOK))
		})

		It("matches {name} placeholders", func() {
			Expect(env.Get("/paths/public/42").StatusCode).To(Equal(http.StatusOK))
		})

		It("applies only to the methods listed", func() {
			expectGatewayError(env.Do(http.MethodPost, "/paths/health", ""), http.StatusUnauthorized, chain.CauseKeyMissing, "Authorization field missing")
		})

		It("still needs a key everywhere else", func() {
			expectGatewayError(env.Get("/paths/orders"), http.StatusUnauthorized, chain.CauseKeyMissing, "Authorization field missing")
		})

		It("does not count towards the key's rate limit", func() {
			key := env.IssueKey(grantTo("paths", `"rate": 1, "per": 60`))
			Expect(env.Get("/paths/health", "x-key", key).StatusCode).To(Equal(http.StatusOK))
			Expect(env.Get("/paths/health", "x-key", key).StatusCode).To(Equal(http.StatusOK))
			Expect(env.Get("/paths/orders", "x-key", key).StatusCode).To(Equal(http.StatusOK))
		})
	})

	When("a path is black-listed", func() {
		BeforeEach(func() { env = specs.NewEnv(specs.WithAPI(pathsAPI(`[]`))) })

		It("answers 403 Requested endpoint is forbidden, even with a valid key", func() {
			key := env.IssueKey(grantTo("paths"))
			expectGatewayError(env.Get("/paths/admin/users", "x-key", key), http.StatusForbidden, chain.CauseEndpointForbidden, "Requested endpoint is forbidden")
		})

		It("matches anywhere in the path, as Tyk's unanchored patterns do", func() {
			expectGatewayError(env.Get("/paths/sysadmin"), http.StatusForbidden, chain.CauseEndpointForbidden, "Requested endpoint is forbidden")
		})

		It("lets methods it does not list through", func() {
			key := env.IssueKey(grantTo("paths"))
			Expect(env.Do(http.MethodPost, "/paths/admin", "", "x-key", key).StatusCode).To(Equal(http.StatusOK))
		})
	})

	When("any path is white-listed", func() {
		var key string
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithAPI(pathsAPI(`[{"path": "^/orders", "method_actions": {"GET": {"action": "no_action", "code": 200}}}]`)))
			key = env.IssueKey(grantTo("paths"))
		})

		It("serves the white-listed paths", func() {
			Expect(env.Get("/paths/orders/7", "x-key", key).StatusCode).To(Equal(http.StatusOK))
		})

		It("answers 403 Requested endpoint is forbidden for every other path", func() {
			expectGatewayError(env.Get("/paths/invoices", "x-key", key), http.StatusForbidden, chain.CauseEndpointForbidden, "Requested endpoint is forbidden")
		})

		It("answers 403 for a white-listed path with a method it does not list", func() {
			expectGatewayError(env.Do(http.MethodDelete, "/paths/orders/7", "", "x-key", key), http.StatusForbidden, chain.CauseEndpointForbidden, "Requested endpoint is forbidden")
		})
	})
})
