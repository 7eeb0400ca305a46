package specs_test

import (
	"fmt"
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/specs"
)

// urlVersionedAPI is keyless, versioned by the first path segment below
// listenPath, with versions Default (the default) and v1, and the given
// extra fields of its definition section.
func urlVersionedAPI(listenPath, definition string) string {
	return fmt.Sprintf(`{
  "api_id": "test", "active": true, "use_keyless": true,
  "definition": {"location": "url"%s},
  "proxy": {"listen_path": %q, "target_url": "{{upstream}}", "strip_listen_path": true},
  "version_data": {"not_versioned": false, "default_version": "Default", "versions": {
    "Default": {"name": "Default"}, "v1": {"name": "v1"}}}
}`, definition, listenPath)
}

// Tyk 5.14's APISpec.Version (gateway/api_definition.go) removes the
// version from the request when definition.strip_versioning_data (or the
// older strip_path, for "url") is on: the path segment, the header or the
// query parameter. The upstream then sees the request without it.
var _ = Describe("Stripping the version from the request, as Tyk's tests describe it", Label("version", "tyk-mirror"), func() {
	var env *specs.Env

	When("versions are read from the URL", func() {
		It(`sends the version's segment on to the upstream without strip_path (mirrors Tyk TestOldVersioning_StripPath "StripPath=false")`, func() {
			env = specs.NewEnv(specs.WithAPI(urlVersionedAPI("/", `, "strip_path": false`)))
			Expect(env.Get("/v1/").StatusCode).To(Equal(http.StatusOK))
			Expect(env.Upstream.LastRequest().URI).To(Equal("/v1/"))
		})

		It(`removes the version's segment with strip_path (mirrors Tyk TestOldVersioning_StripPath "StripPath=true")`, func() {
			env = specs.NewEnv(specs.WithAPI(urlVersionedAPI("/", `, "strip_path": true`)))
			Expect(env.Get("/v1/").StatusCode).To(Equal(http.StatusOK))
			Expect(env.Upstream.LastRequest().URI).To(Equal("/"))
		})

		It("removes it below the listen path with strip_versioning_data, keeping the rest of the path and the query", func() {
			env = specs.NewEnv(specs.WithAPI(urlVersionedAPI("/api/", `, "strip_versioning_data": true`)))
			Expect(env.Get("/api/v1/users/7?page=2").StatusCode).To(Equal(http.StatusOK))
			Expect(env.Upstream.LastRequest().URI).To(Equal("/users/7?page=2"))
		})
	})

	When("versions are read from a header and strip_versioning_data is on", func() {
		It("does not send the version header on to the upstream", func() {
			env = specs.NewEnv(specs.WithAPI(`{
  "api_id": "test", "active": true, "use_keyless": true,
  "definition": {"location": "header", "key": "x-api-version", "strip_versioning_data": true},
  "proxy": {"listen_path": "/", "target_url": "{{upstream}}"},
  "version_data": {"not_versioned": false, "versions": {"v1": {"name": "v1"}, "v2": {"name": "v2"}}}
}`))
			Expect(env.Get("/users", "x-api-version", "v2").StatusCode).To(Equal(http.StatusOK))
			Expect(env.Upstream.LastRequest().Headers).NotTo(HaveKey("X-Api-Version"))
		})
	})

	When("versions are read from a query parameter and strip_versioning_data is on", func() {
		It("does not send the parameter on to the upstream, and keeps the others", func() {
			env = specs.NewEnv(specs.WithAPI(`{
  "api_id": "test", "active": true, "use_keyless": true,
  "definition": {"location": "url-param", "key": "version", "strip_versioning_data": true},
  "proxy": {"listen_path": "/", "target_url": "{{upstream}}"},
  "version_data": {"not_versioned": false, "versions": {"v1": {"name": "v1"}, "v2": {"name": "v2"}}}
}`))
			Expect(env.Get("/users?version=v2&page=2").StatusCode).To(Equal(http.StatusOK))
			Expect(env.Upstream.LastRequest().URI).To(Equal("/users?page=2"))
		})
	})
})
