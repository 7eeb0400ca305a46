package specs_test

import (
	"fmt"
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/specs"
)

// The APIs a hostile client tries to walk around: one keyless API beside a
// keyed one, and one API for each rule that refuses or waives requests.
var bypassAPIs = []string{
	`{"api_id": "pub", "name": "pub", "active": true, "use_keyless": true,
	  "proxy": {"listen_path": "/pub/", "target_url": "{{upstream}}/pubapi", "strip_listen_path": true},
	  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default"}}}}`,
	`{"api_id": "adminapi", "name": "adminapi", "active": true, "use_keyless": false, "auth": {"auth_header_name": "Authorization"},
	  "proxy": {"listen_path": "/adminapi/", "target_url": "{{upstream}}/adminapi", "strip_listen_path": true},
	  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default"}}}}`,
	pathRuleAPI("bl", "black_list", "^/admin", false),
	pathRuleAPI("wl", "white_list", "^/public", false),
	pathRuleAPI("ig", "ignored", "^/health", true),
	`{"api_id": "acl", "name": "acl", "active": true, "use_keyless": false, "auth": {"auth_header_name": "Authorization"},
	  "proxy": {"listen_path": "/acl/", "target_url": "{{upstream}}", "strip_listen_path": true},
	  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default"}}}}`,
	`{"api_id": "c", "name": "c", "active": true, "use_keyless": true,
	  "proxy": {"listen_path": "/c/", "target_url": "{{upstream}}", "strip_listen_path": true},
	  "cache_options": {"enable_cache": true, "cache_timeout": 60, "cache_all_safe_requests": true},
	  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default"}}}}`,
}

// pathRuleAPI is an API on /<id>/ whose version lists one extended_paths
// entry for GET.
func pathRuleAPI(id, list, path string, keyed bool) string {
	return fmt.Sprintf(`{"api_id": %q, "name": %q, "active": true, "use_keyless": %t, "auth": {"auth_header_name": "Authorization"},
	  "proxy": {"listen_path": "/%s/", "target_url": "{{upstream}}", "strip_listen_path": true},
	  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default", "use_extended_paths": true,
	    "extended_paths": {%q: [{"path": %q, "method_actions": {"GET": {"action": "no_action"}}}]}}}}}`, id, id, !keyed, id, list, path)
}

// bypassOutcome is what the gateway must do with one hostile request.
type bypassOutcome struct {
	status   int
	location string      // for a 301: where to
	cause    chain.Cause // for the gateway's own refusals
	// upstreamPath is the path the upstream must receive, on the wire;
	// "" means the upstream must not be reached at all.
	upstreamPath string
}

func redirectedTo(location string) bypassOutcome {
	return bypassOutcome{status: http.StatusMovedPermanently, location: location}
}

func refusedWith(status int, cause chain.Cause) bypassOutcome {
	return bypassOutcome{status: status, cause: cause}
}

func forwardedAs(path string) bypassOutcome {
	return bypassOutcome{status: http.StatusOK, upstreamPath: path}
}

var _ = Describe("Requests shaped to walk around the gateway's rules", Label("security"), func() {
	var (
		env *specs.Env
		key string // may call acl, but only GET ^/public (allowed_urls)
	)

	BeforeEach(func() {
		opts := []specs.EnvOption{}
		for _, api := range bypassAPIs {
			opts = append(opts, specs.WithAPI(api))
		}
		env = specs.NewEnv(opts...)
		key = env.IssueKey(`{"org_id": "org1", "access_rights": {
			"acl": {"api_id": "acl", "api_name": "acl", "versions": [], "allowed_urls": [{"url": "^/public", "methods": ["GET"]}]},
			"ig": {"api_id": "ig", "api_name": "ig", "versions": []}}}`)
	})

	DescribeTable("each is answered before any rule, or reaches the upstream only in the form every rule saw",
		func(method, target string, withKey bool, want bypassOutcome) {
			var headers []string
			if withKey {
				headers = []string{"Authorization", key}
			}
			resp := env.Raw(method, target, headers...)
			Expect(resp.StatusCode).To(Equal(want.status), "status of %s %s; body %s", method, target, resp.Body)
			if want.location != "" {
				Expect(resp.Header.Get("Location")).To(Equal(want.location))
			}
			if want.cause != "" {
				Expect(resp.Header.Get(chain.CauseHeader)).To(Equal(string(want.cause)))
			}
			if want.upstreamPath == "" {
				Expect(env.Upstream.Requests()).To(BeEmpty(), "the upstream was reached")
				return
			}
			Expect(env.Upstream.Requests()).To(HaveLen(1))
			Expect(env.Upstream.LastRequest().URI).To(Equal(want.upstreamPath))
		},
		// Listen paths: a keyless API's path must not lead into another API.
		Entry("dot segments out of a keyless API into a keyed one", "GET", "/pub/../adminapi/secret.txt", false, redirectedTo("/adminapi/secret.txt")),
		Entry("encoded dot segments (%2e%2e)", "GET", "/pub/%2e%2e/adminapi/secret.txt", false, redirectedTo("/adminapi/secret.txt")),
		Entry("upper-case encoded dots and slash (%2E%2E%2F)", "GET", "/pub/%2E%2E%2Fadminapi/secret.txt", false, redirectedTo("/adminapi/secret.txt")),
		Entry("dots before an encoded slash (..%2f)", "GET", "/pub/..%2fadminapi/secret.txt", false, redirectedTo("/adminapi/secret.txt")),
		Entry("a single dot, then dots", "GET", "/pub/./../adminapi/secret.txt", false, redirectedTo("/adminapi/secret.txt")),
		Entry("two levels up", "GET", "/pub/x/../../adminapi/secret.txt", false, redirectedTo("/adminapi/secret.txt")),
		Entry("dots with a ;parameter, a dot segment to Tomcat", "GET", "/pub/..;/adminapi/secret.txt", false, refusedWith(http.StatusBadRequest, chain.CauseBadPath)),
		Entry("encoded backslashes, a separator to some servers", "GET", "/pub/%5c..%5cadminapi/secret.txt", false, refusedWith(http.StatusBadRequest, chain.CauseBadPath)),
		Entry("a raw backslash", "GET", `/pub/..\adminapi/secret.txt`, false, refusedWith(http.StatusBadRequest, chain.CauseBadPath)),
		Entry("overlong UTF-8 dots (%c0%ae)", "GET", "/pub/%c0%ae%c0%ae/adminapi/secret.txt", false, refusedWith(http.StatusBadRequest, chain.CauseBadPath)),
		Entry("a NUL byte", "GET", "/pub/x%00/../adminapi/secret.txt", false, refusedWith(http.StatusBadRequest, chain.CauseBadPath)),
		Entry("an absolute-form request target", "GET", "http://127.0.0.1/pub/../adminapi/secret.txt", false, redirectedTo("http://127.0.0.1/adminapi/secret.txt")),
		Entry("a doubled slash before the keyed API", "GET", "//adminapi/secret.txt", false, redirectedTo("/adminapi/secret.txt")),
		Entry("dots that stay inside the keyed API", "GET", "/adminapi/x/../secret.txt?a=1", false, redirectedTo("/adminapi/secret.txt?a=1")),
		Entry("the keyless API's own path, cleanly", "GET", "/pub/x", false, forwardedAs("/pubapi/x")),

		// black_list ^/admin (GET)
		Entry("black_list: dots in front", "GET", "/bl/x/../admin/", false, redirectedTo("/bl/admin/")),
		Entry("black_list: a dot segment", "GET", "/bl/./admin/", false, redirectedTo("/bl/admin/")),
		Entry("black_list: a doubled slash", "GET", "/bl//admin/", false, redirectedTo("/bl/admin/")),
		Entry("black_list: the path itself", "GET", "/bl/admin/", false, refusedWith(http.StatusForbidden, chain.CauseEndpointForbidden)),
		Entry("black_list: an encoded letter (%61dmin)", "GET", "/bl/%61dmin", false, refusedWith(http.StatusForbidden, chain.CauseEndpointForbidden)),
		Entry("black_list: a ;parameter", "GET", "/bl/admin;x=1", false, refusedWith(http.StatusForbidden, chain.CauseEndpointForbidden)),
		Entry("black_list: the method in lower case", "get", "/bl/admin", false, refusedWith(http.StatusBadRequest, chain.CauseMethodCase)),
		Entry("black_list: the method in mixed case", "Get", "/bl/admin", false, refusedWith(http.StatusBadRequest, chain.CauseMethodCase)),
		Entry("black_list: a NUL after the path", "GET", "/bl/admin%00", false, refusedWith(http.StatusBadRequest, chain.CauseBadPath)),
		Entry("black_list: an absolute-form target naming another host", "GET", "http://other.example/bl/admin", false, refusedWith(http.StatusForbidden, chain.CauseEndpointForbidden)),
		Entry("black_list: upper case is another path, here and upstream", "GET", "/bl/ADMIN", false, forwardedAs("/ADMIN")),

		// white_list ^/public (GET)
		Entry("white_list: dots out of the listed path", "GET", "/wl/public/../private/", false, redirectedTo("/wl/private/")),
		Entry("white_list: encoded dots", "GET", "/wl/public/%2e%2e/private/", false, redirectedTo("/wl/private/")),
		Entry("white_list: encoded slashes around dots", "GET", "/wl/public%2F..%2Fprivate/", false, redirectedTo("/wl/private/")),
		Entry("white_list: two levels through encoded slashes", "GET", "/wl/public/..%2F..%2Fwl/private", false, redirectedTo("/wl/private")),
		Entry("white_list: an encoded slash reaches the upstream as the slash the rule saw", "GET", "/wl/public%2Fok", false, forwardedAs("/public/ok")),
		Entry("white_list: an unlisted path", "GET", "/wl/private", false, refusedWith(http.StatusForbidden, chain.CauseEndpointForbidden)),

		// ignored ^/health on a keyed API: no key needed there only
		Entry("ignored: dots out of the ignored path", "GET", "/ig/health/../x", false, redirectedTo("/ig/x")),
		Entry("ignored: encoded dots", "GET", "/ig/health/%2e%2e/x", false, redirectedTo("/ig/x")),
		Entry("ignored: a doubled slash and dots", "GET", "/ig//health/../x", false, redirectedTo("/ig/x")),
		Entry("ignored: dots with a ;parameter", "GET", "/ig/health/..;/x", false, refusedWith(http.StatusBadRequest, chain.CauseBadPath)),
		Entry("ignored: the method in lower case", "get", "/ig/health", false, refusedWith(http.StatusBadRequest, chain.CauseMethodCase)),
		Entry("ignored: another path without a key", "GET", "/ig/x", false, refusedWith(http.StatusUnauthorized, chain.CauseKeyMissing)),

		// a key's allowed_urls ^/public (GET)
		Entry("allowed_urls: dots out of the allowed path", "GET", "/acl/public/../private", true, redirectedTo("/acl/private")),
		Entry("allowed_urls: encoded dots", "GET", "/acl/public/%2e%2e/private", true, redirectedTo("/acl/private")),
		Entry("allowed_urls: encoded slashes around dots", "GET", "/acl/public%2F..%2Fprivate", true, redirectedTo("/acl/private")),
		Entry("allowed_urls: the method in lower case", "get", "/acl/public", true, refusedWith(http.StatusBadRequest, chain.CauseMethodCase)),
		Entry("allowed_urls: a path not allowed", "GET", "/acl/private", true, refusedWith(http.StatusForbidden, chain.CauseURLNotAllowed)),

		// the response cache
		Entry("cache: dots into a cached path", "GET", "/c/x/../items", false, redirectedTo("/c/items")),
		Entry("cache: an encoded slash is cached under the path the upstream got", "GET", "/c/a%2Fb", false, forwardedAs("/a/b")),
	)

	When("a client that is not a trusted proxy says who it is", func() {
		It("does not pass its X-Real-IP to the upstream", func() {
			env.Raw("GET", "/pub/x", "X-Real-IP", "10.9.9.9")
			Expect(env.Upstream.LastRequest().Headers.Get("X-Real-Ip")).To(BeEmpty())
		})

		It("sends the upstream only the connection's address in X-Forwarded-For", func() {
			env.Raw("GET", "/pub/x", "X-Forwarded-For", "10.9.9.9")
			Expect(env.Upstream.LastRequest().Headers.Get("X-Forwarded-For")).To(Equal("127.0.0.1"))
		})
	})
})

var _ = Describe("Client addresses from a trusted proxy (trusted_proxies)", Label("security"), func() {
	var env *specs.Env

	BeforeEach(func() {
		env = specs.NewEnv(
			specs.WithConfig(`{"secret": "spec-secret", "trusted_proxies": ["127.0.0.0/8"]}`),
			specs.WithAPI(keylessAPI("pub", "/pub/")),
		)
	})

	It("keeps the proxy's X-Forwarded-For and appends this hop, as Tyk does (\"client, proxy\")", func() {
		env.Raw("GET", "/pub/x", "X-Forwarded-For", "203.0.113.7")
		Expect(env.Upstream.LastRequest().Headers.Get("X-Forwarded-For")).To(Equal("203.0.113.7, 127.0.0.1"))
	})

	When("trusted_proxies holds something that is not an address", func() {
		It("refuses the configuration, naming trusted_proxies", func() {
			_, _, err := gatewayParseConfig(`{"trusted_proxies": ["not-an-ip"]}`)
			Expect(err).To(MatchError(ContainSubstring("trusted_proxies[0]")))
		})
	})
})
