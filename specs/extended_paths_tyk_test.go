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

// These specs mirror the cases of Tyk 5.14's own tests of ignored,
// black_list and white_list (gateway/api_definition_test.go,
// gateway/mw_version_check_test.go, gateway/gateway_test.go,
// internal/httputil/mux_test.go) that an HTTP client can observe. Each It
// names the Tyk test and sub-test it mirrors.

// tykTestAPI is the API Tyk's tests build (sampleAPI in
// gateway/testutil.go, then spec.Proxy.ListenPath = listenPath): not
// versioned, one version "v1" whose JSON members are version, keyless
// unless keyed (the key in "authorization"), forwarding the full path to
// the upstream.
func tykTestAPI(apiID, listenPath string, keyed bool, version string) string {
	return fmt.Sprintf(`{
  "api_id": %q, "name": %q, "active": true, "use_keyless": %t,
  "auth": {"auth_header_name": "authorization"},
  "proxy": {"listen_path": %q, "target_url": "{{upstream}}"},
  "version_data": {"not_versioned": true, "versions": {"v1": {"name": "v1", %s}}}
}`, apiID, apiID, !keyed, listenPath, version)
}

// extendedPaths is a version's members with use_extended_paths on and
// these extended_paths members.
func extendedPaths(members string) string {
	return `"use_extended_paths": true, "extended_paths": {` + members + `}`
}

// legacyPaths is a version's members with use_extended_paths off and
// these legacy paths members.
func legacyPaths(members string) string {
	return `"use_extended_paths": false, "paths": {` + members + `}`
}

// prefixMatching is a tyk.conf with enable_path_prefix_matching, as Tyk's
// TestIgnored starts its gateway.
const prefixMatching = `{"secret": "spec-secret", "http_server_options": {"enable_path_prefix_matching": true}}`

// pathOutcome is what a mirrored Tyk test case expects of one request.
type pathOutcome int

const (
	proxied  pathOutcome = iota // the upstream answers (Tyk's 200)
	refused                     // 403 Requested endpoint is forbidden
	needsKey                    // 401 Authorization field missing
	replied                     // a reply action answers (see mockAnswer)
)

// tykCase is one request of a Tyk test table and what it must get.
type tykCase struct {
	method, path string
	want         pathOutcome
	reply        mockAnswer // when want is replied
}

// mockAnswer is what a reply action sends.
type mockAnswer struct {
	code    int
	data    string
	headers map[string]string
}

func req(method, path string, want pathOutcome) tykCase {
	return tykCase{method: method, path: path, want: want}
}

func get(path string, want pathOutcome) tykCase { return req(http.MethodGet, path, want) }

func (c tykCase) String() string {
	switch c.want {
	case proxied:
		return fmt.Sprintf("serves %s %s from the upstream", c.method, c.path)
	case refused:
		return fmt.Sprintf("refuses %s %s with 403", c.method, c.path)
	case needsKey:
		return fmt.Sprintf("asks for a key on %s %s with 401", c.method, c.path)
	default:
		return fmt.Sprintf("answers %s %s with the entry's reply, %d with its data and headers, before any key check", c.method, c.path, c.reply.code)
	}
}

// expectOutcome checks that resp is what a Tyk test case expects.
func expectOutcome(resp specs.Response, want pathOutcome) {
	GinkgoHelper()
	Expect(want).NotTo(Equal(replied), "a reply is checked with expectMockReply")
	switch want {
	case proxied:
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		Expect(resp.Header.Get("X-Echo")).To(Equal("1"), "the upstream answered")
	case refused:
		expectGatewayError(resp, http.StatusForbidden, chain.CauseEndpointForbidden, "Requested endpoint is forbidden")
	case needsKey:
		expectGatewayError(resp, http.StatusUnauthorized, chain.CauseKeyMissing, "Authorization field missing")
	}
}

// expectMockReply checks a "reply" action's answer: its code, data and
// headers, and no upstream call.
func expectMockReply(env *specs.Env, resp specs.Response, want mockAnswer) {
	GinkgoHelper()
	Expect(resp.StatusCode).To(Equal(want.code))
	Expect(resp.Body).To(Equal(want.data))
	for k, v := range want.headers {
		Expect(resp.Header.Get(k)).To(Equal(v))
	}
	Expect(resp.Header.Get(chain.CauseHeader)).To(BeEmpty())
	Expect(env.Upstream.Requests()).To(BeEmpty())
}

var _ = Describe("Extended paths, as Tyk's tests describe them", Label("version", "tyk-mirror"), func() {
	var env *specs.Env

	// mirror declares one It per case of a Tyk test, each naming it.
	mirror := func(tykTest string, cases ...tykCase) {
		GinkgoHelper()
		for _, c := range cases {
			It(fmt.Sprintf("%s (mirrors Tyk %s)", c, tykTest), func() {
				resp := env.Do(c.method, c.path, "")
				if c.want == replied {
					expectMockReply(env, resp, c.reply)
					return
				}
				expectOutcome(resp, c.want)
			})
		}
	}

	Describe("white_list", func() {
		When("one entry replies for GET /reply/{id} and another lets GET /get through", func() {
			BeforeEach(func() {
				env = specs.NewEnv(specs.WithAPI(tykTestAPI("test", "/", false, extendedPaths(`"white_list": [
  {"path": "/reply/{id}", "method_actions": {"GET": {"action": "reply", "code": 200, "data": "flump"}}},
  {"path": "/get", "method_actions": {"GET": {"action": "no_action"}}}]`))))
			})

			It(`refuses GET /reply/ with 403, since {id} stands for one non-empty path segment (mirrors Tyk TestWhitelist "Extended Paths")`, func() {
				expectOutcome(env.Get("/reply/"), refused)
			})
			It(`answers GET /reply/123 with the entry's reply "flump" (mirrors Tyk TestWhitelist "Extended Paths")`, func() {
				expectMockReply(env, env.Get("/reply/123"), mockAnswer{code: http.StatusOK, data: "flump"})
			})
			mirror(`TestWhitelist "Extended Paths"`, get("/get", proxied), req(http.MethodPost, "/post", refused))
		})

		When("the legacy paths.white_list lists /simple, pathWithoutSlash and /regex/{id}/test", func() {
			BeforeEach(func() {
				env = specs.NewEnv(specs.WithAPI(tykTestAPI("test", "/", false, legacyPaths(`"white_list": ["/simple", "pathWithoutSlash", "/regex/{id}/test"]`))))
			})

			mirror(`TestWhitelist "Simple Paths"`,
				get("/simple", proxied), get("/pathWithoutSlash", proxied), get("/regex/123/test", proxied),
				get("/regex/123/differ", refused), get("/", refused))
		})

		When("the legacy paths.white_list anchors placeholders with $ (Tyk issue #1944)", func() {
			BeforeEach(func() {
				env = specs.NewEnv(specs.WithAPI(tykTestAPI("test", "/", false, legacyPaths(`"white_list": ["/foo/{fooId}$", "/foo/{fooId}/bar/{barId}$", "/baz/{bazId}"]`))))
			})

			mirror(`TestWhitelist "Test #1944"`,
				get("/foo", refused), get("/foo/", refused), get("/foo/1", proxied),
				get("/foo/1/bar", refused), get("/foo/1/bar/", refused), get("/foo/1/bar/1", proxied),
				get("/", refused), get("/baz", refused), get("/baz/", refused),
				get("/baz/1", proxied), get("/baz/1/", proxied), get("/baz/1/bazz", proxied))
		})

		When("the legacy paths.white_list lists /Foo and /bar", func() {
			BeforeEach(func() {
				env = specs.NewEnv(specs.WithAPI(tykTestAPI("test", "/", false, legacyPaths(`"white_list": ["/Foo", "/bar"]`))))
			})

			mirror(`TestWhitelist "Case Sensitivity"`,
				get("/foo", refused), get("/Foo", proxied), get("/bar", proxied), get("/Bar", refused))
		})

		When("an entry includes the listen path, and another API's entry does not", func() {
			BeforeEach(func() {
				env = specs.NewEnv(
					specs.WithAPI(tykTestAPI("fruits", "/fruits/", false, legacyPaths(`"white_list": ["/fruits/fruit"]`))),
					specs.WithAPI(tykTestAPI("vegetables", "/vegetables/", false, legacyPaths(`"white_list": ["/vegetable$"]`))))
			})

			mirror(`TestWhitelist "Listen path matches"`,
				get("/fruits/fruit", proxied), get("/fruits/count", refused),
				get("/vegetables/vegetable", proxied), get("/vegetables/count", refused))
		})

		When("one entry is disabled", func() {
			BeforeEach(func() {
				env = specs.NewEnv(specs.WithAPI(tykTestAPI("test", "/", false, extendedPaths(`"white_list": [
  {"disabled": false, "path": "/foo"}, {"disabled": true, "path": "/bar"}]`))))
			})

			mirror(`TestWhitelist "Disabled"`, get("/foo", proxied), get("/bar", refused))
		})

		When("/metadata/{id} is listed for GET before /metadata/purge for POST", func() {
			BeforeEach(func() {
				env = specs.NewEnv(specs.WithAPI(tykTestAPI("test", "/", false, extendedPaths(`"white_list": [
  {"path": "/metadata/{id}", "method_actions": {"GET": {"action": "no_action"}}},
  {"path": "/metadata/purge", "method_actions": {"POST": {"action": "no_action"}}}]`))))
			})

			mirror("TestConflictingPaths", req(http.MethodPost, "/metadata/purge", proxied), get("/metadata/{id}", proxied))
		})

		When("/get is listed for GET only, next to other extended paths", func() {
			BeforeEach(func() {
				env = specs.NewEnv(specs.WithAPI(tykTestAPI("test", "/", false, extendedPaths(`"white_list": [
  {"path": "/get", "method_actions": {"GET": {"action": "no_action"}}}]`))))
			})

			// Tyk's test also sets transform_response_headers on /get,
			// which tollgate does not implement; the refusal is the same.
			mirror(`TestWhitelistMethodWithAdditionalMiddleware "Extended Paths"`, req(http.MethodPost, "/get", refused))
		})

		When("an entry is listed with method GET and no method_actions", func() {
			preflight := []string{"Origin", "https://app.example", "Access-Control-Request-Method", http.MethodGet}
			withCORS := func(cors string) {
				env = specs.NewEnv(specs.WithAPI(`{
  "api_id": "test", "active": true, "use_keyless": true,
  "proxy": {"listen_path": "/", "target_url": "{{upstream}}"},
  "CORS": ` + cors + `,
  "version_data": {"not_versioned": true, "versions": {"v1": {"name": "v1", ` + extendedPaths(`"white_list": [{"path": "/test", "method": "GET"}]`) + `}}}
}`))
			}

			It(`lets CORS answer a preflight for it when CORS is on without options_passthrough (mirrors Tyk TestURLAllowedAndIgnored_CORSPreflight "should return StatusOkAndIgnore for CORS preflight request when CORS is enabled")`, func() {
				withCORS(`{"enable": true, "options_passthrough": false}`)
				resp := env.Do(http.MethodOptions, "/test", "", preflight...)
				Expect(resp.StatusCode).To(Equal(http.StatusNoContent))
				Expect(resp.Header.Get("Access-Control-Allow-Origin")).To(Equal("*"))
			})
			It(`refuses a preflight for it with 403 when CORS passes preflights on (mirrors Tyk TestURLAllowedAndIgnored_CORSPreflight "should return EndPointNotAllowed when CORS passthrough is enabled")`, func() {
				withCORS(`{"enable": true, "options_passthrough": true}`)
				expectOutcome(env.Do(http.MethodOptions, "/test", "", preflight...), refused)
			})
			It(`refuses a preflight for it with 403 when CORS is off (mirrors Tyk TestURLAllowedAndIgnored_CORSPreflight "should return EndPointNotAllowed for CORS preflight request when CORS is disabled - GET on Whitelist")`, func() {
				withCORS(`{"enable": false}`)
				expectOutcome(env.Do(http.MethodOptions, "/test", "", preflight...), refused)
			})
			It(`refuses a plain OPTIONS request for it with 403 when CORS is on (mirrors Tyk TestURLAllowedAndIgnored_CORSPreflight "should return EndPointNotAllowed for normal OPTIONS request")`, func() {
				withCORS(`{"enable": true, "options_passthrough": false}`)
				expectOutcome(env.Do(http.MethodOptions, "/test", ""), refused)
			})
		})
	})

	Describe("black_list", func() {
		When("/blacklist/literal and /blacklist/{id}/test are listed for GET", func() {
			BeforeEach(func() {
				env = specs.NewEnv(specs.WithAPI(tykTestAPI("test", "/", false, extendedPaths(`"black_list": [
  {"path": "/blacklist/literal", "method_actions": {"GET": {"action": "no_action"}}},
  {"path": "/blacklist/{id}/test", "method_actions": {"GET": {"action": "no_action"}}}]`))))
			})

			mirror(`TestBlacklist "Extended Paths"`,
				get("/blacklist/literal", refused), get("/blacklist/123/test", refused),
				get("/blacklist/123/different", proxied), req(http.MethodPost, "/blacklist/literal", proxied))
		})

		When("the legacy paths.black_list lists the same paths, for every method", func() {
			BeforeEach(func() {
				env = specs.NewEnv(specs.WithAPI(tykTestAPI("test", "/", false, legacyPaths(`"black_list": ["/blacklist/literal", "/blacklist/{id}/test"]`))))
			})

			mirror(`TestBlacklist "Simple Paths"`,
				get("/blacklist/literal", refused), get("/blacklist/123/test", refused),
				get("/blacklist/123/different", proxied), req(http.MethodPost, "/blacklist/literal", refused))
		})

		When("the legacy paths.black_list lists /Foo and /bar", func() {
			BeforeEach(func() {
				env = specs.NewEnv(specs.WithAPI(tykTestAPI("test", "/", false, legacyPaths(`"black_list": ["/Foo", "/bar"]`))))
			})

			mirror(`TestBlacklist "Case Sensitivity"`,
				get("/foo", proxied), get("/Foo", refused), get("/bar", refused), get("/Bar", proxied))
		})

		When("an entry includes the listen path, and another API's entry does not", func() {
			BeforeEach(func() {
				env = specs.NewEnv(
					specs.WithAPI(tykTestAPI("fruits", "/fruits/", false, legacyPaths(`"black_list": ["/fruits/fruit"]`))),
					specs.WithAPI(tykTestAPI("vegetables", "/vegetables/", false, legacyPaths(`"black_list": ["/vegetable$"]`))))
			})

			mirror(`TestBlacklist "Listen path matches"`,
				get("/fruits/fruit", refused), get("/fruits/count", proxied),
				get("/vegetables/vegetable", refused), get("/vegetables/count", proxied))
		})

		When("one entry is disabled", func() {
			BeforeEach(func() {
				env = specs.NewEnv(specs.WithAPI(tykTestAPI("test", "/", false, extendedPaths(`"black_list": [
  {"disabled": false, "path": "/foo"}, {"disabled": true, "path": "/bar"}]`))))
			})

			mirror(`TestBlacklist "Disabled"`, get("/foo", refused), get("/bar", proxied))
		})
	})

	Describe("ignored", func() {
		When("tyk.conf turns on prefix matching and /ignored/literal and /ignored/{id}/test are listed for GET", func() {
			BeforeEach(func() {
				env = specs.NewEnv(specs.WithConfig(prefixMatching), specs.WithAPI(tykTestAPI("test", "/", true, extendedPaths(`"ignored": [
  {"path": "/ignored/literal", "method_actions": {"GET": {"action": "no_action"}}},
  {"path": "/ignored/{id}/test", "method_actions": {"GET": {"action": "no_action"}}}]`))))
			})

			mirror(`TestIgnored "Extended Paths"`,
				get("/ignored/literal", proxied), get("/ignored/123/test", proxied),
				req(http.MethodPost, "/ext/ignored/literal", needsKey), get("/", needsKey))
		})

		When("tyk.conf turns on prefix matching and the legacy paths.ignored lists the same paths", func() {
			BeforeEach(func() {
				env = specs.NewEnv(specs.WithConfig(prefixMatching), specs.WithAPI(tykTestAPI("test", "/", true, legacyPaths(`"ignored": ["/ignored/literal", "/ignored/{id}/test"]`))))
			})

			mirror(`TestIgnored "Simple Paths"`,
				get("/ignored/literal", proxied), get("/ignored/123/test", proxied),
				req(http.MethodPost, "/ext/ignored/literal", needsKey), get("/", needsKey))
		})

		When("tyk.conf turns on prefix matching and \"ignored\", without a leading slash, is listed for GET", func() {
			BeforeEach(func() {
				env = specs.NewEnv(specs.WithConfig(prefixMatching), specs.WithAPI(tykTestAPI("test", "/", true, extendedPaths(`"ignored": [
  {"path": "ignored", "method_actions": {"GET": {"action": "no_action", "code": 200}}}]`))))
			})

			// Tyk's test also rewrites /ignored to /get with url_rewrites,
			// which tollgate does not implement; only the ignoring is
			// mirrored.
			mirror(`TestIgnored "With URL rewrite"`, get("/ignored", proxied), get("/", needsKey))
		})

		caseEntries := extendedPaths(`"ignored": [{"path": "/Foo", "ignore_case": false}, {"path": "/bar", "ignore_case": true}]`)

		When("tyk.conf turns on prefix matching and /Foo is listed as is, /bar with ignore_case", func() {
			BeforeEach(func() {
				env = specs.NewEnv(specs.WithConfig(prefixMatching), specs.WithAPI(tykTestAPI("test", "/", true, caseEntries)))
			})

			mirror(`TestIgnored "Case Sensitivity"`,
				get("/foo", needsKey), get("/Foo", proxied), get("/bar", proxied), get("/Bar", proxied))
		})

		When("the same entries are loaded with tyk.conf's ignore_endpoint_case", func() {
			BeforeEach(func() {
				env = specs.NewEnv(
					specs.WithConfig(`{"secret": "spec-secret", "ignore_endpoint_case": true, "http_server_options": {"enable_path_prefix_matching": true}}`),
					specs.WithAPI(tykTestAPI("test", "/", true, caseEntries)))
			})

			mirror(`TestIgnored "Case Sensitivity" "ignore-case globally"`,
				get("/foo", proxied), get("/Foo", proxied), get("/bar", proxied), get("/Bar", proxied))
		})

		When("the same entries are loaded with the version's ignore_endpoint_case", func() {
			BeforeEach(func() {
				env = specs.NewEnv(specs.WithConfig(prefixMatching),
					specs.WithAPI(tykTestAPI("test", "/", true, `"ignore_endpoint_case": true, `+caseEntries)))
			})

			mirror(`TestIgnored "Case Sensitivity" "ignore-case in api level"`,
				get("/foo", proxied), get("/Foo", proxied), get("/bar", proxied), get("/Bar", proxied))
		})

		When("tyk.conf turns on prefix matching and one entry is disabled", func() {
			BeforeEach(func() {
				env = specs.NewEnv(specs.WithConfig(prefixMatching), specs.WithAPI(tykTestAPI("test", "/", true, extendedPaths(`"ignored": [
  {"disabled": false, "path": "/foo"}, {"disabled": true, "path": "/bar"}]`))))
			})

			mirror(`TestIgnored "Disabled"`, get("/foo", proxied), get("/bar", needsKey))
		})

		When("/get is listed for GET and the key has a quota of 2", func() {
			var key string
			BeforeEach(func() {
				env = specs.NewEnv(specs.WithAPI(tykTestAPI("test", "/", true, extendedPaths(`"ignored": [
  {"path": "/get", "method_actions": {"GET": {"action": "no_action"}}}]`))))
				key = env.IssueKey(grantTo("test", `"quota_max": 2, "quota_renewal_rate": 3600`))
			})

			It("does not count GET /get against the key's quota (mirrors Tyk TestQuota, which Tyk skips)", func() {
				Expect(env.Get("/", "authorization", key).StatusCode).To(Equal(http.StatusOK))
				Expect(env.Get("/get", "authorization", key).StatusCode).To(Equal(http.StatusOK))
				Expect(env.Get("/", "authorization", key).StatusCode).To(Equal(http.StatusOK))
				expectGatewayError(env.Get("/", "authorization", key), http.StatusForbidden, chain.CauseQuotaExceeded, "Quota exceeded")
			})
			It("serves GET /get without a key (mirrors Tyk TestQuota, which Tyk skips)", func() {
				expectOutcome(env.Get("/get"), proxied)
			})
		})
	})

	Describe("a reply action", func() {
		const mockBody = "this is mock response body"
		mockHeaders := map[string]string{"mock-header": "mock-value"}
		// mockEntry is TestOldMockResponse's entry: GET replies 418, POST
		// has no_action.
		mockEntry := func(path string) string {
			return `{"path": "` + path + `", "method_actions": {
  "GET": {"action": "reply", "code": 418, "data": "` + mockBody + `", "headers": {"mock-header": "mock-value"}},
  "POST": {"action": "no_action", "code": 418, "data": "` + mockBody + `", "headers": {"mock-header": "mock-value"}}}}`
		}

		for _, l := range []struct {
			list, path, tykName string
			keyless, protected  [3]pathOutcome // POST, PUT, GET /something
		}{
			{"white_list", "/white-mock", "whitelist", [3]pathOutcome{proxied, refused, refused}, [3]pathOutcome{needsKey, refused, refused}},
			{"black_list", "/black-mock", "blacklist", [3]pathOutcome{refused, proxied, proxied}, [3]pathOutcome{refused, needsKey, needsKey}},
			{"ignored", "/ignored-mock", "ignored", [3]pathOutcome{proxied, proxied, proxied}, [3]pathOutcome{proxied, needsKey, needsKey}},
		} {
			for _, keyed := range []bool{false, true} {
				sub, want := "keyless", l.keyless
				if keyed {
					sub, want = "protected", l.protected
				}
				tykTest := fmt.Sprintf("TestOldMockResponse %q %q", l.tykName, sub)
				article := "a"
				if l.list == "ignored" {
					article = "an"
				}
				When(fmt.Sprintf("%s %s entry replies to GET %s on a %s API", article, l.list, l.path, sub), func() {
					BeforeEach(func() {
						env = specs.NewEnv(specs.WithAPI(tykTestAPI("test", "/", keyed, extendedPaths(`"`+l.list+`": [`+mockEntry(l.path)+`]`))))
					})

					mirror(tykTest,
						tykCase{method: http.MethodGet, path: l.path, want: replied, reply: mockAnswer{http.StatusTeapot, mockBody, mockHeaders}},
						req(http.MethodPost, l.path, want[0]),
						req(http.MethodPut, l.path, want[1]),
						get("/something", want[2]))
				})
			}
		}

		When("a versioned API's v2 white-lists a reply for GET /mock and ignores /ignore for every method", func() {
			var key string
			BeforeEach(func() {
				env = specs.NewEnv(specs.WithAPI(`{
  "api_id": "test", "active": true, "use_keyless": false,
  "auth": {"auth_header_name": "authorization"},
  "definition": {"location": "header", "key": "version"},
  "proxy": {"listen_path": "/", "target_url": "{{upstream}}"},
  "version_data": {"not_versioned": false, "versions": {
    "v1": {"name": "v1"},
    "v2": {"name": "v2", ` + extendedPaths(`
      "white_list": [{"path": "/mock", "method_actions": {"GET": {"action": "reply", "code": 200, "data": "testbody", "headers": {"testheader": "testvalue"}}}}],
      "ignored": [{"path": "/ignore"}]`) + `}}}
}`))
				key = env.IssueKey(grantTo("test"))
			})

			It("answers GET /mock in v2 with the reply (mirrors Tyk TestVersioning)", func() {
				expectMockReply(env, env.Get("/mock", "authorization", key, "version", "v2"), mockAnswer{http.StatusOK, "testbody", map[string]string{"testheader": "testvalue"}})
			})
			It("serves GET /ignore in v2, white_list or not, since ignored entries are tried first (mirrors Tyk TestVersioning)", func() {
				expectOutcome(env.Get("/ignore", "authorization", key, "version", "v2"), proxied)
			})
		})

		When("versions are read from the URL and v1 white-lists a reply for GET /", func() {
			BeforeEach(func() {
				env = specs.NewEnv(specs.WithAPI(`{
  "api_id": "test", "active": true, "use_keyless": true,
  "definition": {"location": "url"},
  "proxy": {"listen_path": "/", "target_url": "{{upstream}}"},
  "version_data": {"not_versioned": false, "default_version": "", "versions": {
    "v1": {"name": "v1", ` + extendedPaths(`"white_list": [{"path": "/", "method_actions": {"GET": {"action": "reply", "code": 200, "data": "v1"}}}]`) + `},
    "v2": {"name": "v2"}}}
}`))
			})

			It("answers GET / with 403 Version information not found (mirrors Tyk TestOldVersioning_DefaultVersionEmpty)", func() {
				expectGatewayError(env.Get("/"), http.StatusForbidden, chain.CauseVersionMissing, "Version information not found")
			})
			It("answers GET /v1/ with v1's reply (mirrors Tyk TestOldVersioning_DefaultVersionEmpty)", func() {
				expectMockReply(env, env.Get("/v1/"), mockAnswer{code: http.StatusOK, data: "v1"})
			})
		})
	})

	Describe("http_server_options", func() {
		// Tyk's TestMatchPaths prepares each pattern with prefix and
		// suffix matching, as both switches in tyk.conf do; here the
		// pattern is a white_list entry for GET.
		When("tyk.conf turns on prefix and suffix matching", func() {
			for _, tc := range []struct {
				name, pattern string
				req           tykCase
			}{
				{"exact endpoints", "/api/v1/users", get("/api/v1/users", proxied)},
				{"non matching concrete endpoints", "/api/v1/users", get("/api/v1/admin", refused)},
				{"regexp match", `/api/v1/user/\\d+`, get("/api/v1/user/123", proxied)},
				{"regexp non match", `/api/v1/user/\\d+`, get("/api/v1/user/abc", refused)},
				{"mux var match", "/api/v1/user/{id}", get("/api/v1/user/123", proxied)},
				{"wildcard endpoint", "/api/v1/*", get("/api/v1/users", proxied)},
				{"/ endpoint", "/", get("/", proxied)},
			} {
				shown := strings.ReplaceAll(tc.pattern, `\\`, `\`) // as the JSON string holds it
				It(fmt.Sprintf("%s when white_list holds %s (mirrors Tyk TestMatchPaths %q)", tc.req, shown, tc.name), func() {
					env = specs.NewEnv(
						specs.WithConfig(`{"secret": "spec-secret", "http_server_options": {"enable_path_prefix_matching": true, "enable_path_suffix_matching": true}}`),
						specs.WithAPI(tykTestAPI("test", "/", false, extendedPaths(`"white_list": [{"path": "`+tc.pattern+`", "method": "GET"}]`))))
					expectOutcome(env.Do(tc.req.method, tc.req.path, ""), tc.req.want)
				})
			}

			It(`refuses GET /api/v1/user with 403 when white_list holds the invalid pattern /api/v1/[user, which tollgate deliberately matches as literal text where Tyk keeps no usable pattern (mirrors Tyk TestMatchPaths "invalid config regexp")`, func() {
				env = specs.NewEnv(
					specs.WithConfig(`{"secret": "spec-secret", "http_server_options": {"enable_path_prefix_matching": true, "enable_path_suffix_matching": true}}`),
					specs.WithAPI(tykTestAPI("test", "/", false, extendedPaths(`"white_list": [{"path": "/api/v1/[user", "method": "GET"}]`))))
				expectOutcome(env.Get("/api/v1/user"), refused)
			})
		})

		// Tyk's TestPreparePathRegexp prepares each pattern with prefix
		// matching only; here the pattern is a black_list entry.
		When("tyk.conf turns on prefix matching only", func() {
			for _, tc := range []struct {
				pattern string
				req     tykCase
			}{
				{"/users", get("/users/7", refused)},
				{"/users", get("/x/users", proxied)},
				{"users", get("/x/users", refused)},
				{"/users/{id}$", get("/users/7", refused)},
				{"/users/{id}$", get("/users/7/profile", proxied)},
				{"/users/{id}/profile/{type:[a-zA-Z]+}", get("/users/7/profile/123", refused)},
			} {
				It(fmt.Sprintf("%s when black_list holds %s (mirrors Tyk TestPreparePathRegexp %q)", tc.req, tc.pattern, tc.pattern), func() {
					env = specs.NewEnv(specs.WithConfig(prefixMatching),
						specs.WithAPI(tykTestAPI("test", "/", false, extendedPaths(`"black_list": [{"path": "`+tc.pattern+`"}]`))))
					expectOutcome(env.Do(tc.req.method, tc.req.path, ""), tc.req.want)
				})
			}
		})
	})

	Describe("entries as tollgate loads them", func() {
		When("an entry has neither method_actions nor method", func() {
			It("warns at load that it applies to every method, as in Tyk", func() {
				env = specs.NewEnv(specs.WithAPI(tykTestAPI("test", "/", false, extendedPaths(`"black_list": [{"path": "/admin"}]`))))
				Expect(env.Logs()).To(ContainSubstring("extended_paths.black_list[0]: neither method_actions nor method is set, so the entry applies to every method"))
			})
		})

		When("an entry's action is neither no_action nor reply", func() {
			BeforeEach(func() {
				env = specs.NewEnv(specs.WithAPI(tykTestAPI("test", "/", false, extendedPaths(`"ignored": [
  {"path": "/health", "method_actions": {"GET": {"action": "redirect"}}}]`))))
			})

			It("refuses the requests it matches with 403, as Tyk's URLAllowedAndIgnored does", func() {
				expectOutcome(env.Get("/health"), refused)
			})
			It("warns at load that those requests are refused", func() {
				Expect(env.Logs()).To(ContainSubstring(`method_actions.GET.action: \"redirect\" is neither`))
			})
		})

		When("an entry lists a method in lower case", func() {
			It("warns at load that methods are matched case-sensitively, as in Tyk", func() {
				env = specs.NewEnv(specs.WithAPI(tykTestAPI("test", "/", false, extendedPaths(`"black_list": [
  {"path": "/admin", "method_actions": {"get": {"action": "no_action"}}}]`))))
				Expect(strings.Count(env.Logs(), "methods are matched case-sensitively")).To(Equal(1))
			})
		})
	})
})
