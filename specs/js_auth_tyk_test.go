package specs_test

import (
	"fmt"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/specs"
)

// ottoAuthExample is the auth_check of Tyk's TestJSVM_Auth (and of Tyk's
// middleware/ottoAuthExample.js): 401 without an Authorization header,
// 401 for any token but "foobar", else a session of 100 requests a second
// without quota, returned with ReturnAuthData.
const ottoAuthExample = `log("====> JS Auth initialising");
var ottoAuthExample = new TykJS.TykMiddleware.NewMiddleware({});
ottoAuthExample.NewProcessRequest(function(request, session) {
	var thisToken = request.Headers["Authorization"];
	if (thisToken == undefined) {
		request.ReturnOverrides.ResponseCode = 401
		request.ReturnOverrides.ResponseError = 'Header missing (JS middleware)'
		return ottoAuthExample.ReturnData(request, {});
	}
	if (thisToken != "foobar") {
		request.ReturnOverrides.ResponseCode = 401
		request.ReturnOverrides.ResponseError = 'Not authorized (JS middleware)'
		return ottoAuthExample.ReturnData(request, {});
	}
	var thisSession = {
		"allowance": 100, "rate": 100, "per": 1,
		"quota_max": -1, "quota_renews": 1906121006, "expires": 1906121006,
		"access_rights": {}
	};
	return ottoAuthExample.ReturnAuthData(request, thisSession);
});
log("====> JS Auth initialised");`

// customAuthAPI is a keyed API at listenPath whose custom_middleware runs
// the auth_check named name from path, with the given top-level members
// (the flags that turn custom authentication on) and any further
// custom_middleware members.
func customAuthAPI(apiID, listenPath, name, path, flags string, more ...string) string {
	extra := ""
	for _, m := range more {
		extra += ", " + m
	}
	return fmt.Sprintf(`{"api_id": %q, "org_id": "org1", "active": true, "use_keyless": false, %s
  "proxy": {"listen_path": %q, "target_url": "{{upstream}}", "strip_listen_path": true},
  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default"}}},
  "custom_middleware": {"driver": "otto", "auth_check": {"name": %q, "path": %q, "require_session": false}%s}}`,
		apiID, flags, listenPath, name, path, extra)
}

// sessionAuth is an auth_check named name that accepts every request and
// returns session; the AuthValue is the X-User header, when sent.
func sessionAuth(name, session string) string {
	return middleware(name, `var user = request.Headers["X-User"];
return {Request: request, Session: `+session+`, AuthValue: user ? user[0] : ""};`)
}

var _ = Describe("JS custom authentication (auth_check), as Tyk's tests describe it", Label("jsvm", "auth", "tyk-mirror"), func() {
	var env *specs.Env

	for _, flag := range []string{"enable_coprocess_auth", "custom_plugin_auth_enabled"} {
		When("the API sets "+flag+" and its auth_check is TestJSVM_Auth's", func() {
			BeforeEach(func() {
				env = specs.NewEnv(specs.WithConfig(jsvmOn), specs.WithAPI(customAuthAPI("sample", "/sample/", "ottoAuthExample",
					jsFile("testmw", ottoAuthExample), fmt.Sprintf(`%q: true,`, flag))))
			})

			It(`refuses a request without Authorization with the script's 401 "Header missing (JS middleware)" (mirrors Tyk TestJSVM_Auth)`, func() {
				expectGatewayError(env.Get("/sample/"), http.StatusUnauthorized, chain.CauseJSOverride, "Header missing (JS middleware)")
				Expect(env.Upstream.Requests()).To(BeEmpty())
			})
			It(`refuses another token with the script's 401 "Not authorized (JS middleware)" (mirrors Tyk TestJSVM_Auth)`, func() {
				expectGatewayError(env.Get("/sample/", "Authorization", "foo"), http.StatusUnauthorized, chain.CauseJSOverride, "Not authorized (JS middleware)")
			})
			It(`serves the token the script accepts, though no key of that name is stored (mirrors Tyk TestJSVM_Auth)`, func() {
				resp := env.Get("/sample/", "Authorization", "foobar")
				Expect(resp.StatusCode).To(Equal(http.StatusOK))
				Expect(resp.Header.Get("X-Echo")).To(Equal("1"), "the upstream answered")
			})
		})
	}

	When("the API lists an auth_check but turns neither custom_plugin_auth_enabled nor enable_coprocess_auth on", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithConfig(jsvmOn), specs.WithAPI(customAuthAPI("sample", "/sample/", "ottoAuthExample",
				jsFile("testmw", ottoAuthExample), "")))
		})

		It("asks for the auth token instead, as Tyk's api_loader does", func() {
			expectGatewayError(env.Get("/sample/", "Authorization", "foobar"), http.StatusForbidden, chain.CauseKeyNotAuthorised, "Access to this API has been disallowed")
		})
		It("says so in a load warning", func() {
			Expect(env.Logs()).To(ContainSubstring("custom_middleware.auth_check: not run without custom_plugin_auth_enabled"))
		})
	})

	When("the session an auth_check returns sets a rate limit", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithConfig(jsvmOn),
				specs.WithAPI(customAuthAPI("limited", "/limited/", "limiter", sessionAuth("limiter", `{"rate": 2, "per": 60, "quota_max": -1, "access_rights": {}}`), `"custom_plugin_auth_enabled": true,`)),
				specs.WithAPI(customAuthAPI("other", "/other/", "limiter2", sessionAuth("limiter2", `{"rate": 2, "per": 60, "quota_max": -1, "access_rights": {}}`), `"custom_plugin_auth_enabled": true,`)))
		})

		It("applies it to the AuthValue the script names: its third request in the window is refused with 429", func() {
			for range 2 {
				Expect(env.Get("/limited/", "X-User", "alice").StatusCode).To(Equal(http.StatusOK))
			}
			expectGatewayError(env.Get("/limited/", "X-User", "alice"), http.StatusTooManyRequests, chain.CauseRateLimited, "Rate Limit Exceeded")
		})
		It("counts each AuthValue apart", func() {
			for range 2 {
				env.Get("/limited/", "X-User", "alice")
			}
			Expect(env.Get("/limited/", "X-User", "bob").StatusCode).To(Equal(http.StatusOK))
		})
		It("reports the session's limit in X-RateLimit headers", func() {
			resp := env.Get("/limited/", "X-User", "alice")
			Expect(resp.Header.Get("X-RateLimit-Limit")).To(Equal("2"))
			Expect(resp.Header.Get("X-RateLimit-Remaining")).To(Equal("1"))
		})
		It("counts every caller of the API as one when the script names no AuthValue, as Tyk does", func() {
			for range 2 {
				Expect(env.Get("/limited/").StatusCode).To(Equal(http.StatusOK))
			}
			expectGatewayError(env.Get("/limited/"), http.StatusTooManyRequests, chain.CauseRateLimited, "Rate Limit Exceeded")
		})
		It("keeps that shared count to the API, where Tyk shares one count across every API whose script names no AuthValue", func() {
			for range 2 {
				env.Get("/limited/")
			}
			Expect(env.Get("/other/").StatusCode).To(Equal(http.StatusOK))
		})
		It("keeps a script's AuthValue apart from a stored key of the same name, whose counters Tyk would share", func() {
			env.RegisterAPI(keyedAPI("keyed", "/keyed/"))
			// The key as stored (its org's prefix and the name), and the
			// script names the same value as its AuthValue.
			key := env.SetKey("alice", grantTo("keyed", `"rate": 2, "per": 60`))
			for range 2 {
				Expect(env.Get("/limited/", "X-User", key).StatusCode).To(Equal(http.StatusOK))
			}
			Expect(env.Get("/keyed/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
		})
	})

	When("the session an auth_check returns sets a quota of one request", func() {
		It("refuses the second request with 403 Quota exceeded", func() {
			env = specs.NewEnv(specs.WithConfig(jsvmOn), specs.WithAPI(customAuthAPI("q", "/q/", "quotaAuth",
				sessionAuth("quotaAuth", `{"quota_max": 1, "quota_renewal_rate": 3600, "access_rights": {}}`), `"custom_plugin_auth_enabled": true,`)))
			Expect(env.Get("/q/", "X-User", "alice").StatusCode).To(Equal(http.StatusOK))
			expectGatewayError(env.Get("/q/", "X-User", "alice"), http.StatusForbidden, chain.CauseQuotaExceeded, "Quota exceeded")
		})
	})

	When("the session an auth_check returns does not grant the API", func() {
		It("refuses the request with 403, as Tyk's AccessRightsCheck does after custom auth", func() {
			env = specs.NewEnv(specs.WithConfig(jsvmOn), specs.WithAPI(customAuthAPI("a", "/a/", "elsewhere",
				sessionAuth("elsewhere", `{"access_rights": {"b": {"api_id": "b", "versions": []}}}`), `"custom_plugin_auth_enabled": true,`)))
			expectGatewayError(env.Get("/a/", "X-User", "alice"), http.StatusForbidden, chain.CauseKeyNotAuthorised, "Access to this API has been disallowed")
		})
	})

	When("the session an auth_check returns lists allowed_urls", func() {
		It("lets only those paths through (granular access)", func() {
			env = specs.NewEnv(specs.WithConfig(jsvmOn), specs.WithAPI(customAuthAPI("a", "/a/", "granted",
				sessionAuth("granted", `{"access_rights": {"a": {"api_id": "a", "versions": [], "allowed_urls": [{"url": "/open", "methods": ["GET"]}]}}}`), `"custom_plugin_auth_enabled": true,`)))
			Expect(env.Get("/a/open", "X-User", "alice").StatusCode).To(Equal(http.StatusOK))
			expectGatewayError(env.Get("/a/closed", "X-User", "alice"), http.StatusForbidden, chain.CauseURLNotAllowed, "Access to this resource has been disallowed")
		})
	})

	When("the session an auth_check returns has expired", func() {
		It("refuses the request with 401 Key has expired, as Tyk's KeyExpired does after custom auth", func() {
			env = specs.NewEnv(specs.WithConfig(jsvmOn), specs.WithAPI(customAuthAPI("a", "/a/", "stale",
				sessionAuth("stale", `{"expires": 1, "access_rights": {}}`), `"custom_plugin_auth_enabled": true,`)))
			expectGatewayError(env.Get("/a/", "X-User", "alice"), http.StatusUnauthorized, chain.CauseKeyExpired, "Key has expired, please renew")
		})
	})

	When("an auth_check names its session with an AuthValue (Tyk's TestJSVM_MultiAuthentication)", func() {
		BeforeEach(func() {
			seeSession := middleware("seeSession", `request.SetHeaders["X-Session-Rate"] = String(session.rate);
return seeSession.ReturnData(request, {"seen": "yes"});`)
			env = specs.NewEnv(specs.WithConfig(jsvmOn), specs.WithAPI(customAuthAPI("my-api-id", "/my/", "testJSVMMiddleware",
				middleware("testJSVMMiddleware", `return {Request: request, Session: {"rate": 100, "per": 1, "quota_max": -1, "access_rights": {}, "meta_data": {"sessionMetaKey": "customAuthSessionMetaValue"}}, AuthValue: "customAuthSessionID"};`),
				`"enable_coprocess_auth": true,`,
				`"post": [{"name": "seeSession", "path": "`+seeSession+`", "require_session": true}]`)))
		})

		It("hands that session to later middleware with require_session", func() {
			Expect(env.Get("/my/").StatusCode).To(Equal(http.StatusOK))
			Expect(env.Upstream.LastRequest().Headers.Get("X-Session-Rate")).To(Equal("100"))
		})
		It("does not store it, where Tyk stores it under the AuthValue, so it never becomes a key that opens other APIs (Tyk's TestJSVM_MultiAuthentication reads it back)", func() {
			Expect(env.Get("/my/").StatusCode).To(Equal(http.StatusOK))
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/keys/customAuthSessionID", "").StatusCode).To(Equal(http.StatusNotFound))
		})
	})

	When("an auth_check throws", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithConfig(jsvmOn), specs.WithAPI(customAuthAPI("a", "/a/", "thrower",
				middleware("thrower", `throw new Error("directory unreachable");`), `"custom_plugin_auth_enabled": true,`)))
		})

		It("answers 500 and does not reach the upstream", func() {
			expectGatewayError(env.Get("/a/"), http.StatusInternalServerError, chain.CauseJSError, "There was a problem running the JS middleware")
			Expect(env.Upstream.Requests()).To(BeEmpty())
		})
		It("logs the exception with the middleware's name", func() {
			env.Get("/a/")
			Expect(env.Logs()).To(And(ContainSubstring("directory unreachable"), ContainSubstring("thrower"), ContainSubstring("auth_check")))
		})
	})

	When("an auth_check neither refuses nor returns a session", func() {
		It("answers 500 saying so, where Tyk lets the request through with an empty session and no limits", func() {
			env = specs.NewEnv(specs.WithConfig(jsvmOn), specs.WithAPI(customAuthAPI("a", "/a/", "forgetful",
				middleware("forgetful", `return forgetful.ReturnData(request, {});`), `"custom_plugin_auth_enabled": true,`)))
			expectGatewayError(env.Get("/a/"), http.StatusInternalServerError, chain.CauseJSAuthNoSession, "The authentication middleware returned no session")
			Expect(env.Upstream.Requests()).To(BeEmpty())
		})
	})

	When("an auth_check returns a session that cannot be one", func() {
		It("answers 500, naming the field in the log", func() {
			env = specs.NewEnv(specs.WithConfig(jsvmOn), specs.WithAPI(customAuthAPI("a", "/a/", "odd",
				middleware("odd", `return odd.ReturnAuthData(request, {"rate": 5, "per": 0});`), `"custom_plugin_auth_enabled": true,`)))
			expectGatewayError(env.Get("/a/"), http.StatusInternalServerError, chain.CauseJSAuthBadSession, "The authentication middleware returned an invalid session")
			Expect(env.Logs()).To(ContainSubstring("per: 0 with rate 5"))
		})
	})

	When("an auth_check runs longer than jsvm_timeout", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithConfig(`{"secret": "s", "enable_jsvm": true, "jsvm_timeout": 0.2}`), specs.WithAPI(customAuthAPI("a", "/a/", "forever",
				middleware("forever", `if (request.Headers["X-Loop"]) { while (true) {} }
return forever.ReturnAuthData(request, {"access_rights": {}});`), `"custom_plugin_auth_enabled": true,`)))
		})

		It("is interrupted and answered with 500 (mirrors Tyk TestJSVMProcessTimeout)", func(ctx SpecContext) {
			expectGatewayError(env.Get("/a/", "X-Loop", "1"), http.StatusInternalServerError, chain.CauseJSTimeout, "JS middleware timed out")
			Expect(env.Upstream.Requests()).To(BeEmpty())
		}, SpecTimeout(10*time.Second))
		It("authenticates the next request on a fresh VM", func(ctx SpecContext) {
			env.Get("/a/", "X-Loop", "1")
			Expect(env.Get("/a/").StatusCode).To(Equal(http.StatusOK))
		}, SpecTimeout(10*time.Second))
	})

	When("an API asks for custom auth and the auth token both (use_standard_auth)", func() {
		It("fails that API's load, saying tollgate runs one of them", func() {
			env = specs.NewEnv(specs.WithConfig(jsvmOn))
			env.WriteAPIFile("both.json", customAuthAPI("both", "/both/", "ottoAuthExample", jsFile("testmw", ottoAuthExample), `"custom_plugin_auth_enabled": true, "use_standard_auth": true,`))
			Expect(env.Gateway.Reload()).To(MatchError(And(ContainSubstring("both.json"), ContainSubstring("use_standard_auth"))))
		})
	})

	When("an API turns custom auth on without naming its auth_check", func() {
		It("fails that API's load, naming the field, where Tyk serves 500 to every request", func() {
			env = specs.NewEnv(specs.WithConfig(jsvmOn))
			env.WriteAPIFile("nameless.json", customAuthAPI("nameless", "/nameless/", "", "", `"custom_plugin_auth_enabled": true,`))
			Expect(env.Gateway.Reload()).To(MatchError(ContainSubstring("custom_middleware.auth_check.name")))
		})
	})
	// The cache keys a request by its key; a script that admits callers
	// without naming an AuthValue has told no one who they are, so their
	// entries would be keyed by client IP, shared by everyone behind it.
	When("the API caches every safe request (a shared cache)", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithConfig(jsvmOn), specs.WithAPI(customAuthAPI("cached", "/cached/", "cachedAuth",
				sessionAuth("cachedAuth", `{"rate": 1000, "per": 1, "access_rights": {}}`),
				`"custom_plugin_auth_enabled": true, "cache_options": {"enable_cache": true, "cache_timeout": 60, "cache_all_safe_requests": true},`)))
		})

		It("never answers a caller the script named no AuthValue for from another caller's response", func() {
			Expect(isCached(env.Get("/cached/profile", "X-Token", "alice-secret"))).To(BeFalse())
			resp := env.Get("/cached/profile", "X-Token", "bob")
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(isCached(resp)).To(BeFalse())
			Expect(env.Upstream.LastRequest().Headers.Get("X-Token")).To(Equal("bob"))
		})

		It("keeps the entries of callers with an AuthValue apart, each answered from its own", func() {
			env.Get("/cached/profile", "X-User", "alice")
			Expect(isCached(env.Get("/cached/profile", "X-User", "alice"))).To(BeTrue())
			Expect(isCached(env.Get("/cached/profile", "X-User", "bob"))).To(BeFalse())
		})
	})
})
