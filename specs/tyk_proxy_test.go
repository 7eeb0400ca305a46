package specs_test

import (
	"fmt"
	"net/http"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/specs"
)

// Proxying and versions as Tyk's own tests describe them: the target's
// path joined with the request's (reverse_proxy_test.go), XML error bodies
// (handler_error_test.go) and not_versioned APIs (mw_version_check_test.go).
var _ = Describe("Proxying, as Tyk's tests describe it", Label("proxy", "tyk-mirror"), func() {
	var env *specs.Env

	// basePathAPI forwards /basepath/ to the upstream's /base/.
	basePathAPI := func(disableStripSlash bool) string {
		return fmt.Sprintf(`{"api_id": "base", "name": "base", "active": true, "use_keyless": true,
  "proxy": {"listen_path": "/basepath/", "target_url": "{{upstream}}/base/", "strip_listen_path": true, "disable_strip_slash": %t},
  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default"}}}}`, disableStripSlash)
	}

	When("target_url has a path with a trailing slash", func() {
		BeforeEach(func() { env = specs.NewEnv(specs.WithAPI(basePathAPI(false))) })

		It(`joins it to the listen path itself without a trailing slash (mirrors Tyk TestSingleJoiningSlash {"foo/", "/", "foo"})`, func() {
			Expect(env.Get("/basepath/").StatusCode).To(Equal(http.StatusOK))
			Expect(env.Upstream.LastRequest().Path).To(Equal("/base"))
		})

		It(`joins a sub-path with exactly one slash (mirrors {"foo/", "/bar", "foo/bar"})`, func() {
			env.Get("/basepath/users")
			Expect(env.Upstream.LastRequest().Path).To(Equal("/base/users"))
		})

		It(`keeps a sub-path's trailing slash (mirrors {"foo/", "/bar/", "foo/bar/"})`, func() {
			env.Get("/basepath/users/")
			Expect(env.Upstream.LastRequest().Path).To(Equal("/base/users/"))
		})
	})

	When("proxy.disable_strip_slash is on", func() {
		It(`keeps the target's trailing slash for the listen path itself (mirrors TestSingleJoiningSlash with disableStripSlash {"foo/", "/", "foo/"})`, func() {
			env = specs.NewEnv(specs.WithAPI(basePathAPI(true)))
			env.Get("/basepath/")
			Expect(env.Upstream.LastRequest().Path).To(Equal("/base/"))
		})
	})

	When("a version's global_headers_disabled is on", func() {
		It("sets none of its global_headers", func() {
			env = specs.NewEnv(specs.WithAPI(`{"api_id": "h", "name": "h", "active": true, "use_keyless": true,
  "proxy": {"listen_path": "/h/", "target_url": "{{upstream}}", "strip_listen_path": true},
  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default",
    "global_headers": {"X-Env": "prod"}, "global_headers_disabled": true}}}}`))
			env.Get("/h/")
			Expect(env.Upstream.LastRequest().Headers.Get("X-Env")).To(BeEmpty())
		})
	})

	When("the upstream cannot be reached and the client sent XML", func() {
		const want = `<?xml version = "1.0" encoding = "UTF-8"?>
<error>There was a problem proxying the request</error>`
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithAPI(fmt.Sprintf(`{"api_id": "down", "name": "down", "active": true, "use_keyless": true,
  "proxy": {"listen_path": "/down/", "target_url": %q, "strip_listen_path": true},
  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default"}}}}`, specs.DeadUpstreamURL())))
		})

		It(`answers Tyk's XML error document (mirrors Tyk TestHandleDefaultErrorXml, Content-Type text/xml); 502, where Tyk answers 500`, func() {
			resp := env.Do(http.MethodGet, "/down/", "", "Content-Type", "text/xml")
			Expect(resp.StatusCode).To(Equal(http.StatusBadGateway))
			Expect(strings.TrimSpace(resp.Body)).To(Equal(want))
			Expect(resp.Header.Get("Content-Type")).To(Equal("text/xml"))
			Expect(resp.Header.Get(chain.CauseHeader)).To(Equal(string(chain.CauseUpstreamUnreachable)))
		})

		It(`does so for text/xml with a charset too (mirrors the second case)`, func() {
			resp := env.Do(http.MethodGet, "/down/", "", "Content-Type", "text/xml; charset=UTF-8")
			Expect(strings.TrimSpace(resp.Body)).To(Equal(want))
		})

		It(`does so for application/soap+xml (mirrors TestHandleDefaultErrorSoapXml)`, func() {
			resp := env.Do(http.MethodGet, "/down/", "", "Content-Type", "application/soap+xml")
			Expect(strings.TrimSpace(resp.Body)).To(Equal(want))
		})
	})

	When("an API is not_versioned and its Default version names an override_target", func() {
		It(`forwards to target_url, ignoring the override (mirrors Tyk TestNotVersioned "Versioning disabled, use original target URL")`, func() {
			env = specs.NewEnv(specs.WithAPI(fmt.Sprintf(`{"api_id": "nv", "name": "nv", "active": true, "use_keyless": true,
  "proxy": {"listen_path": "/nv/", "target_url": "{{upstream}}", "strip_listen_path": true},
  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default", "override_target": %q}}}}`, specs.DeadUpstreamURL())))
			Expect(env.Get("/nv/").StatusCode).To(Equal(http.StatusOK))
		})
	})

	When("an API is not_versioned and its Default version has expired", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithAPI(`{"api_id": "nv", "name": "nv", "active": true, "use_keyless": true,
  "proxy": {"listen_path": "/nv/", "target_url": "{{upstream}}", "strip_listen_path": true},
  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default", "expires": "2020-01-01 00:00"}}}}`))
		})

		It(`still serves it (mirrors Tyk TestOldVersioning_Expires "old versioning disabled" "expired")`, func() {
			Expect(env.Get("/nv/").StatusCode).To(Equal(http.StatusOK))
		})

		It(`sends no X-Tyk-Api-Expires (mirrors the same case)`, func() {
			Expect(env.Get("/nv/").Header.Get("X-Tyk-Api-Expires")).To(BeEmpty())
		})
	})

	When("an API is not_versioned and its Default version expires in the future", func() {
		It(`serves it with X-Tyk-Api-Expires (mirrors Tyk TestOldVersioning_Expires "old versioning disabled" "not expired")`, func() {
			env = specs.NewEnv(specs.WithAPI(`{"api_id": "nv", "name": "nv", "active": true, "use_keyless": true,
  "proxy": {"listen_path": "/nv/", "target_url": "{{upstream}}", "strip_listen_path": true},
  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default", "expires": "2099-01-01 00:00"}}}}`))
			resp := env.Get("/nv/")
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(resp.Header.Get("X-Tyk-Api-Expires")).NotTo(BeEmpty())
		})
	})
})
