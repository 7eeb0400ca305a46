package specs_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/specs"
)

// jsFile writes a JS middleware into the spec's own folder and returns
// its path.
func jsFile(name, code string) string {
	GinkgoHelper()
	path := filepath.Join(GinkgoT().TempDir(), name+".js")
	Expect(os.WriteFile(path, []byte(code), 0o600)).To(Succeed())
	return path
}

// middleware is a JS middleware named name whose ProcessRequest body is
// body (it sees request, session and config, and must return).
func middleware(name, body string) string {
	return jsFile(name, fmt.Sprintf(`var %s = new TykJS.TykMiddleware.NewMiddleware({});
%s.NewProcessRequest(function(request, session, config) {
%s
});`, name, name, body))
}

// jsAPI is a keyed API (header x-key) with the given custom_middleware
// section.
func jsAPI(customMiddleware string) string {
	return `{"api_id": "js", "org_id": "org1", "active": true,
  "auth": {"auth_header_name": "x-key"},
  "config_data": {"greeting": "hello"},
  "proxy": {"listen_path": "/js/", "target_url": "{{upstream}}", "strip_listen_path": true},
  "custom_middleware": ` + customMiddleware + `}`
}

const jsvmOn = `{"secret": "s", "enable_jsvm": true, "jsvm_timeout": 1}`

var _ = Describe("JS middleware's config_data, as Tyk's tests describe it", Label("jsvm", "tyk-mirror"), func() {
	configAPI := func(disabled bool) string {
		mw := middleware("testJSVMData", `request.SetHeaders["data-foo"] = config.config_data ? (config.config_data.foo || "") : "";
return testJSVMData.ReturnData(request, {});`)
		return fmt.Sprintf(`{"api_id": "js", "org_id": "org1", "active": true, "use_keyless": true,
  "config_data": {"foo": "bar"}, "config_data_disabled": %t,
  "proxy": {"listen_path": "/js/", "target_url": "{{upstream}}", "strip_listen_path": true},
  "custom_middleware": {"pre": [{"name": "testJSVMData", "path": %q}]}}`, disabled, mw)
	}

	It(`hands config_data to the middleware (mirrors Tyk TestJSVMConfigData "config data enabled")`, func() {
		env := specs.NewEnv(specs.WithConfig(jsvmOn), specs.WithAPI(configAPI(false)))
		env.Get("/js/")
		Expect(env.Upstream.LastRequest().Headers.Get("data-foo")).To(Equal("bar"))
	})

	It(`hides it with config_data_disabled (mirrors "config data disabled")`, func() {
		env := specs.NewEnv(specs.WithConfig(jsvmOn), specs.WithAPI(configAPI(true)))
		env.Get("/js/")
		Expect(env.Upstream.LastRequest().Headers.Get("data-foo")).To(BeEmpty())
	})
})

var _ = Describe("JS middleware that returns what cannot be applied, as Tyk's tests describe it", Label("jsvm", "tyk-mirror"), func() {
	It(`answers 500 and does not reach the upstream when Session is not a session (mirrors Tyk TestJSVM_StopProxyWhenFail "failed to decode returned data")`, func() {
		mw := jsFile("malformedDataMiddleware", `var malformedDataMiddleware = new TykJS.TykMiddleware.NewMiddleware({});
malformedDataMiddleware.NewProcessRequest(function(request, session) {
	return {Request: request, Session: "malformed"}
});`)
		env := specs.NewEnv(specs.WithConfig(jsvmOn), specs.WithAPI(fmt.Sprintf(`{"api_id": "js", "org_id": "org1", "active": true, "use_keyless": true,
  "proxy": {"listen_path": "/js/", "target_url": "{{upstream}}", "strip_listen_path": true},
  "custom_middleware": {"pre": [{"name": "malformedDataMiddleware", "path": %q}]}}`, mw)))
		Expect(env.Get("/js/get").StatusCode).To(Equal(http.StatusInternalServerError))
		Expect(env.Upstream.Requests()).To(BeEmpty())
	})
})

var _ = Describe("JS middleware", Label("jsvm"), func() {
	var env *specs.Env

	When("a post middleware sets and deletes headers", func() {
		var key string
		BeforeEach(func() {
			mw := middleware("headers", `request.SetHeaders["X-From-JS"] = config.config_data.greeting;
request.DeleteHeaders.push("X-Drop");
return headers.ReturnData(request, {});`)
			env = specs.NewEnv(specs.WithConfig(jsvmOn), specs.WithAPI(jsAPI(`{"post": [{"name": "headers", "path": "`+mw+`"}]}`)))
			key = env.IssueKey(grantTo("js"))
		})

		It("forwards the request with the header set", func() {
			env.Get("/js/", "x-key", key)
			Expect(env.Upstream.LastRequest().Headers.Get("X-From-JS")).To(Equal("hello"))
		})

		It("forwards the request without the deleted header", func() {
			env.Get("/js/", "x-key", key, "X-Drop", "1")
			Expect(env.Upstream.LastRequest().Headers).NotTo(HaveKey("X-Drop"))
		})
	})

	When("a pre middleware runs", func() {
		BeforeEach(func() {
			mw := middleware("early", `if (request.Headers["X-Ping"]) {
  request.ReturnOverrides.ResponseCode = 200;
  request.ReturnOverrides.ResponseBody = "pong";
}
request.SetHeaders["X-Session-Rate"] = String(session.rate);
return early.ReturnData(request);`)
			env = specs.NewEnv(specs.WithConfig(jsvmOn), specs.WithAPI(jsAPI(`{"pre": [{"name": "early", "path": "`+mw+`", "require_session": true}]}`)))
		})

		It("runs before authentication, so it can answer a request without a key", func() {
			resp := env.Get("/js/", "X-Ping", "1")
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(resp.Body).To(Equal("pong"))
		})

		It("sees an empty session, even with require_session", func() {
			key := env.IssueKey(grantTo("js", `"rate": 7, "per": 1`))
			env.Get("/js/", "x-key", key)
			Expect(env.Upstream.LastRequest().Headers.Get("X-Session-Rate")).To(Equal("undefined"))
		})
	})

	When("a post_key_auth middleware has require_session", func() {
		var key string
		BeforeEach(func() {
			mw := middleware("auth", `request.SetHeaders["X-Session-Rate"] = String(session.rate);
return auth.ReturnData(request, {"seen": "yes"});`)
			env = specs.NewEnv(specs.WithConfig(jsvmOn), specs.WithAPI(jsAPI(`{"post_key_auth": [{"name": "auth", "path": "`+mw+`", "require_session": true}]}`)))
			key = env.IssueKey(grantTo("js", `"rate": 7, "per": 1`))
		})

		It("sees the key's session", func() {
			env.Get("/js/", "x-key", key)
			Expect(env.Upstream.LastRequest().Headers.Get("X-Session-Rate")).To(Equal("7"))
		})

		It("writes the SessionMeta it returns back to the session", func() {
			env.Get("/js/", "x-key", key)
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/keys/"+key, "").JSON()).To(HaveKeyWithValue("meta_data", Equal(map[string]any{"seen": "yes"})))
		})
	})

	When("a middleware without require_session returns SessionMeta", func() {
		It("does not change the session", func() {
			mw := middleware("nosession", `return nosession.ReturnData(request, {"seen": "yes"});`)
			env = specs.NewEnv(specs.WithConfig(jsvmOn), specs.WithAPI(jsAPI(`{"post": [{"name": "nosession", "path": "`+mw+`"}]}`)))
			key := env.IssueKey(grantTo("js", `"meta_data": {"team": "red"}`))
			env.Get("/js/", "x-key", key)
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/keys/"+key, "").JSON()).To(HaveKeyWithValue("meta_data", Equal(map[string]any{"team": "red"})))
		})
	})

	When("a middleware answers with ReturnOverrides", func() {
		var key string
		BeforeEach(func() {
			mw := middleware("override", `if (request.Headers["X-Teapot"]) {
  request.ReturnOverrides.ResponseCode = 418;
  request.ReturnOverrides.ResponseError = "I am a teapot";
} else {
  request.ReturnOverrides.ResponseCode = 200;
  request.ReturnOverrides.ResponseBody = "answered by JS";
  request.ReturnOverrides.ResponseHeaders = {"X-By": "js"};
}
return override.ReturnData(request);`)
			env = specs.NewEnv(specs.WithConfig(jsvmOn), specs.WithAPI(jsAPI(`{"post": [{"name": "override", "path": "`+mw+`"}]}`)))
			key = env.IssueKey(grantTo("js"))
		})

		It("turns a code of 400 or more into a Tyk-shaped error", func() {
			expectGatewayError(env.Get("/js/", "x-key", key, "X-Teapot", "1"), http.StatusTeapot, chain.CauseJSOverride, "I am a teapot")
		})

		It("answers any other code with the body and headers as given, without the upstream", func() {
			resp := env.Get("/js/", "x-key", key)
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(resp.Body).To(Equal("answered by JS"))
			Expect(resp.Header.Get("X-By")).To(Equal("js"))
			Expect(env.Upstream.Requests()).To(BeEmpty())
		})
	})

	When("a middleware throws an exception", func() {
		var key string
		BeforeEach(func() {
			mw := middleware("thrower", `throw new Error("boom");`)
			env = specs.NewEnv(specs.WithConfig(jsvmOn), specs.WithAPI(jsAPI(`{"post": [{"name": "thrower", "path": "`+mw+`"}]}`)))
			key = env.IssueKey(grantTo("js"))
		})

		It("answers 500 with a Tyk-shaped error", func() {
			expectGatewayError(env.Get("/js/", "x-key", key), http.StatusInternalServerError, chain.CauseJSError, "There was a problem running the JS middleware")
		})

		It("logs the exception without the raw key", func() {
			env.Get("/js/", "x-key", key)
			Expect(env.Logs()).To(ContainSubstring("boom"))
			Expect(env.Logs()).NotTo(ContainSubstring(key))
		})
	})

	When("a middleware runs longer than jsvm_timeout", func() {
		var key string
		BeforeEach(func() {
			mw := middleware("forever", `if (request.Headers["X-Loop"]) { while (true) {} }
return forever.ReturnData(request);`)
			env = specs.NewEnv(specs.WithConfig(`{"secret": "s", "enable_jsvm": true, "jsvm_timeout": 0.2}`),
				specs.WithAPI(jsAPI(`{"post": [{"name": "forever", "path": "`+mw+`"}]}`)))
			key = env.IssueKey(grantTo("js"))
		})

		It("interrupts it and answers 500 with a Tyk-shaped error", func(ctx SpecContext) {
			expectGatewayError(env.Get("/js/", "x-key", key, "X-Loop", "1"), http.StatusInternalServerError, chain.CauseJSTimeout, "JS middleware timed out")
		}, SpecTimeout(10*time.Second))

		It("serves other requests meanwhile", func(ctx SpecContext) {
			stuck := make(chan int, 1)
			go func() {
				defer GinkgoRecover()
				stuck <- env.Get("/js/", "x-key", key, "X-Loop", "1").StatusCode
			}()
			Expect(env.Get("/js/", "x-key", key).StatusCode).To(Equal(http.StatusOK))
			Eventually(stuck).WithContext(ctx).Should(Receive(Equal(http.StatusInternalServerError)))
		}, SpecTimeout(10*time.Second))

		It("keeps serving the API afterwards", func(ctx SpecContext) {
			env.Get("/js/", "x-key", key, "X-Loop", "1")
			Expect(env.Get("/js/", "x-key", key).StatusCode).To(Equal(http.StatusOK))
		}, SpecTimeout(10*time.Second))
	})

	When("a middleware sets a global", func() {
		It("is never seen by another request", func() {
			mw := middleware("leaky", `var seen = (typeof leftover === "undefined") ? "clean" : leftover;
leftover = "from an earlier request";
request.SetHeaders["X-Seen"] = seen;
return leaky.ReturnData(request);`)
			env = specs.NewEnv(specs.WithConfig(jsvmOn), specs.WithAPI(jsAPI(`{"post": [{"name": "leaky", "path": "`+mw+`"}]}`)))
			key := env.IssueKey(grantTo("js"))
			for range 20 {
				env.Get("/js/", "x-key", key)
				Expect(env.Upstream.LastRequest().Headers.Get("X-Seen")).To(Equal("clean"))
			}
		})
	})

	When("tyk.conf has enable_jsvm false", func() {
		It("refuses to load an API with JS middleware, saying why", func() {
			mw := middleware("any", `return any.ReturnData(request);`)
			env = specs.NewEnv()
			env.WriteAPIFile("js.json", jsAPI(`{"post": [{"name": "any", "path": "`+mw+`"}]}`))
			Expect(env.Gateway.Reload()).To(MatchError(And(ContainSubstring("js.json"), ContainSubstring("enable_jsvm"))))
		})
	})

	When("a middleware file has a syntax error", func() {
		It("fails that API's load, naming the file and line", func() {
			mw := jsFile("broken", "var broken = new TykJS.TykMiddleware.NewMiddleware({});\nbroken.NewProcessRequest(function(request) {\n  return (;\n});")
			env = specs.NewEnv(specs.WithConfig(jsvmOn), specs.WithAPI(keylessAPI("other", "/other/")))
			env.WriteAPIFile("js.json", jsAPI(`{"post": [{"name": "broken", "path": "`+mw+`"}]}`))
			Expect(env.Gateway.Reload()).To(MatchError(And(ContainSubstring("broken.js"), MatchRegexp(`:3\b`))))
			Expect(env.Get("/other/").StatusCode).To(Equal(http.StatusOK))
		})
	})

	When("a middleware file is missing", func() {
		It("fails that API's load, naming the field", func() {
			env = specs.NewEnv(specs.WithConfig(jsvmOn))
			env.WriteAPIFile("js.json", jsAPI(`{"post": [{"name": "gone", "path": "/nowhere/gone.js"}]}`))
			Expect(env.Gateway.Reload()).To(MatchError(ContainSubstring("custom_middleware.post[0].path")))
		})
	})
})

// Tyk 5.14 runs tyk.conf's tyk_js_path in every JS VM after its own core
// and before the middleware (JSVM.Init), so middleware can share what it
// defines.
var _ = Describe("A user's core JS (tyk_js_path), as Tyk's tests describe it", Label("jsvm", "tyk-mirror"), func() {
	var mw string
	BeforeEach(func() {
		mw = middleware("testJSVMCore", `request.SetHeaders["global"] = globalVar;
return testJSVMCore.ReturnData(request, {});`)
	})
	jsOn := func(core string) string {
		return fmt.Sprintf(`{"secret": "s", "enable_jsvm": true, "jsvm_timeout": 1, "tyk_js_path": %q}`, core)
	}
	api := func() string {
		return jsAPI(`{"pre": [{"name": "testJSVMCore", "path": "` + mw + `"}]}`)
	}

	It("gives the middleware what it defines (mirrors Tyk TestJSVMUserCore)", func() {
		env := specs.NewEnv(specs.WithConfig(jsOn(jsFile("core", `var globalVar = "globalValue"`))), specs.WithAPI(api()))
		key := env.IssueKey(grantTo("js"))
		Expect(env.Get("/js/foo", "x-key", key).StatusCode).To(Equal(http.StatusOK))
		Expect(env.Upstream.LastRequest().Headers.Get("Global")).To(Equal("globalValue"))
	})

	It("still defines it on the next request, as every run starts from the loaded scripts", func() {
		env := specs.NewEnv(specs.WithConfig(jsOn(jsFile("core", `var globalVar = "globalValue"`))), specs.WithAPI(api()))
		key := env.IssueKey(grantTo("js"))
		env.Get("/js/foo", "x-key", key)
		Expect(env.Get("/js/foo", "x-key", key).StatusCode).To(Equal(http.StatusOK))
		Expect(env.Upstream.LastRequest().Headers.Get("Global")).To(Equal("globalValue"))
	})

	// Tyk 2's tyk.conf named its own core, "./js/tyk.js", here, and such
	// files are still about (the seed's is one).
	When("the file is not there", func() {
		It("runs the middleware without it, as Tyk does, and logs a warning naming tyk_js_path", func() {
			mw := middleware("plainCore", `request.SetHeaders["ran"] = "yes";
return plainCore.ReturnData(request, {});`)
			env := specs.NewEnv(specs.WithConfig(jsOn(filepath.Join(GinkgoT().TempDir(), "missing.js"))),
				specs.WithAPI(jsAPI(`{"pre": [{"name": "plainCore", "path": "`+mw+`"}]}`)))
			key := env.IssueKey(grantTo("js"))
			Expect(env.Get("/js/foo", "x-key", key).StatusCode).To(Equal(http.StatusOK))
			Expect(env.Upstream.LastRequest().Headers.Get("Ran")).To(Equal("yes"))
			Expect(env.Logs()).To(ContainSubstring("tyk_js_path"))
		})
	})

	When("the file is a named pipe, a device or a file of /proc", func() {
		// Tyk skips any file it cannot read; one that is there but must
		// not be read is a mistake the operator should hear of.
		It("refuses the APIs with JS middleware, naming tyk_js_path and the file", func() {
			core := filepath.Join(GinkgoT().TempDir(), "core.js")
			Expect(os.Symlink("/dev/zero", core)).To(Succeed())
			env := specs.NewEnv(specs.WithConfig(jsOn(core)), specs.WithAPI(keylessAPI("plain", "/plain/")))
			env.WriteAPIFile("js.json", api())
			Expect(env.Gateway.Reload()).To(MatchError(And(ContainSubstring("js.json"), ContainSubstring("tyk_js_path"),
				ContainSubstring(core), ContainSubstring("not a regular file"))))
			Expect(env.Get("/plain/").StatusCode).To(Equal(http.StatusOK))
		})
	})

	When("the file throws", func() {
		It("refuses the APIs with JS middleware, naming the file", func() {
			core := jsFile("core", `throw new Error("no core today")`)
			env := specs.NewEnv(specs.WithConfig(jsOn(core)), specs.WithAPI(keylessAPI("plain", "/plain/")))
			env.WriteAPIFile("js.json", api())
			Expect(env.Gateway.Reload()).To(MatchError(And(ContainSubstring("js.json"), ContainSubstring(core), ContainSubstring("no core today"))))
		})
	})
})
