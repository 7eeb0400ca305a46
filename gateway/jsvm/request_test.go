package jsvm_test

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/jsvm"
)

var _ = Describe("What a middleware receives", func() {
	var env *Env

	BeforeEach(func() {
		env = NewEnv()
	})

	Describe("the request object", func() {
		var seen map[string]string

		BeforeEach(func(ctx SpecContext) {
			prog := env.Compile(middleware(`
				var h = request.SetHeaders;
				h["X-Header"] = request.Headers["X-Client"][0];
				h["X-Body"] = request.Body;
				h["X-URL"] = request.URL;
				h["X-Param"] = request.Params["q"].join(",");
				h["X-Method"] = request.Method;
				h["X-Request-URI"] = request.RequestURI;
				h["X-Scheme"] = request.Scheme;
				h["X-Defaults"] = JSON.stringify([request.DeleteHeaders, request.AddParams,
					request.ExtendedParams, request.DeleteParams, request.ReturnOverrides, request.IgnoreBody]);`))
			seen = Run(ctx, prog, jsvm.Request{
				Headers:    map[string][]string{"X-Client": {"client-1"}},
				Body:       `{"order": 1}`,
				URL:        "/orders?q=a&q=b",
				Params:     map[string][]string{"q": {"a", "b"}},
				Method:     "POST",
				RequestURI: "/orders?q=a&q=b",
				Scheme:     "https",
			}, `{}`).Request.SetHeaders
		}, NodeTimeout(10*time.Second))

		It("carries the request headers as lists in Headers", func() {
			Expect(seen).To(HaveKeyWithValue("X-Header", "client-1"))
		})

		It("carries the body as text in Body", func() {
			Expect(seen).To(HaveKeyWithValue("X-Body", `{"order": 1}`))
		})

		It("carries the URL in URL", func() {
			Expect(seen).To(HaveKeyWithValue("X-URL", "/orders?q=a&q=b"))
		})

		It("carries the query as lists in Params", func() {
			Expect(seen).To(HaveKeyWithValue("X-Param", "a,b"))
		})

		It("carries the method, request URI and scheme", func() {
			Expect(seen).To(And(
				HaveKeyWithValue("X-Method", "POST"),
				HaveKeyWithValue("X-Request-URI", "/orders?q=a&q=b"),
				HaveKeyWithValue("X-Scheme", "https"),
			))
		})

		It("is made with the native Object and Array even when a script replaced them while loading", func(ctx SpecContext) {
			prog := env.Compile(`Object = function () { return 1; }; Array = function () { return 2; };
var mw = new TykJS.TykMiddleware.NewMiddleware({});
mw.NewProcessRequest(function (request, session, config) {
    request.SetHeaders["X-Shape"] = [request.DeleteHeaders.length, typeof request.AddParams,
        session.rate, config.APIID].join(",");
    return mw.ReturnData(request);
});`)
			Expect(Run(ctx, prog, plainGet(), `{"rate": 5}`).Request.SetHeaders).
				To(HaveKeyWithValue("X-Shape", "0,object,5,api-1"))
		}, SpecTimeout(10*time.Second))

		It("starts with empty changes and no response override", func() {
			Expect(seen["X-Defaults"]).To(MatchJSON(`[[], {}, {}, [],
				{"ResponseCode": 0, "ResponseError": "", "ResponseBody": "", "ResponseHeaders": {}, "OverrideError": false},
				false]`))
		})
	})

	Describe("the body", func() {
		It("arrives as it was sent: quotes, newlines, control characters and non-ASCII text included", func(ctx SpecContext) {
			body := "{\"say\": \"hi\"}\r\n\ttab \\ back\x01slash – ünïcödé 🚀"
			prog := env.Compile(middleware(`request.Body = request.Body + "|" + request.Body.length;`))
			req := plainGet()
			req.Body = body
			jsLength := len(utf16.Encode([]rune(body)))
			Expect(Run(ctx, prog, req, `{}`).Request.Body).To(Equal(body + "|" + strconv.Itoa(jsLength)))
		}, SpecTimeout(10*time.Second))

		It("replaces invalid UTF-8 with U+FFFD", func(ctx SpecContext) {
			prog := env.Compile(middleware(``))
			req := plainGet()
			req.Body = "a\xffb"
			Expect(Run(ctx, prog, req, `{}`).Request.Body).To(Equal("a\uFFFDb"))
		}, SpecTimeout(10*time.Second))

		It("replaces invalid UTF-8 with U+FFFD in names too: query parameters and session members", func(ctx SpecContext) {
			prog := env.Compile(middleware(`request.Body = Object.keys(request.Params).concat(Object.keys(session)).join(",");`))
			req := plainGet()
			req.Params = map[string][]string{"p\xff": {"1"}}
			Expect(Run(ctx, prog, req, "{\"s\xfe\": 1}").Request.Body).To(Equal("p\uFFFD,s\uFFFD"))
		}, SpecTimeout(10*time.Second))
	})

	Describe("the session", func() {
		It("is the session JSON given to Run, as an object", func(ctx SpecContext) {
			prog := env.Compile(middleware(`request.SetHeaders["X-Rate"] = String(session.rate);`))
			Expect(Run(ctx, prog, plainGet(), `{"rate": 5}`).Request.SetHeaders).To(HaveKeyWithValue("X-Rate", "5"))
		}, SpecTimeout(10*time.Second))

		It("is an empty object when Run is given none", func(ctx SpecContext) {
			prog := env.Compile(middleware(`request.SetHeaders["X-Session"] = JSON.stringify(session);`))
			Expect(Run(ctx, prog, plainGet(), ``).Request.SetHeaders).To(HaveKeyWithValue("X-Session", "{}"))
		}, SpecTimeout(10*time.Second))

		It("keeps every JSON form: escapes, non-ASCII text, numbers, null, booleans and nesting", func(ctx SpecContext) {
			sessionJSON := `{"alias": "a \"quoted\" \\ name\n\u00e9\ud83d\ude80", "plain": "ünïcödé 🚀",
				"rate": -1.5e3, "per": 0, "big": 12345678901, "is_inactive": false, "ok": true, "meta_data": null,
				"tags": ["a", "", []], "access_rights": {"api-1": {"versions": [{"v": [1, {}]}]}}, "empty": {}}`
			prog := env.Compile(`var mw = new TykJS.TykMiddleware.NewMiddleware({});
mw.NewProcessRequest(function (request, session) {
    request.SetHeaders["X-Types"] = [typeof session.alias, typeof session.rate, session.meta_data === null,
        session.ok === true, Array.isArray(session.tags), session.tags[2].length, session.alias.length].join(",");
    return mw.ReturnAuthData(request, session);
});`)
			res := Run(ctx, prog, plainGet(), sessionJSON)
			Expect(res.Session).To(MatchJSON(sessionJSON))
			Expect(res.Request.SetHeaders).To(HaveKeyWithValue("X-Types", "string,number,true,true,true,0,21"))
		}, SpecTimeout(10*time.Second))

		It("round-trips 300 random JSON documents: what the script stringifies is what was given", func(ctx SpecContext) {
			prog := env.Compile(`var mw = new TykJS.TykMiddleware.NewMiddleware({});
mw.NewProcessRequest(function (request, session) { return mw.ReturnAuthData(request, session); });`)
			rng := rand.New(rand.NewPCG(7, 11))
			for i := range 300 {
				doc := randomJSONObject(rng, 0)
				Expect(Run(ctx, prog, plainGet(), doc).Session).To(MatchJSON(doc), "document %d", i)
			}
		}, SpecTimeout(20*time.Second))

		It("has its fields in the order of the JSON", func(ctx SpecContext) {
			prog := env.Compile(middleware(`request.SetHeaders["X-Keys"] = Object.keys(session).join(",");`))
			Expect(Run(ctx, prog, plainGet(), `{"z": 1, "a": 2, "m": {"y": 1, "b": 2}}`).Request.SetHeaders).
				To(HaveKeyWithValue("X-Keys", "z,a,m"))
		}, SpecTimeout(10*time.Second))

		It("fails the run with JSON.parse's SyntaxError when the session is not JSON", func(ctx SpecContext) {
			prog := env.Compile(middleware(``))
			for _, bad := range []string{`{"rate": }`, `{"rate": 01}`, `{"rate": 1} x`, `["a",]`, `{"a": "\x"}`} {
				_, err := prog.Run(ctx, "mw", plainGet(), []byte(bad))
				Expect(err).To(MatchError(ContainSubstring("SyntaxError")), "session %s", bad)
			}
		}, SpecTimeout(10*time.Second))
	})

	Describe("the config", func() {
		It("carries the API's APIID, OrgID and config_data", func(ctx SpecContext) {
			Expect(env.RunBody(ctx, `request.SetHeaders["X-Config"] = JSON.stringify(config);`)).
				To(HaveKeyWithValue("X-Config", MatchJSON(`{"APIID": "api-1", "OrgID": "org-1",
					"config_data": {"greeting": "hello", "limit": 3}}`)))
		}, SpecTimeout(10*time.Second))
	})
})

var _ = Describe("What a middleware returns", func() {
	var env *Env

	BeforeEach(func() {
		env = NewEnv()
	})

	// result runs a middleware whose callback runs body and returns ret.
	result := func(ctx SpecContext, body, ret string) *jsvm.Result {
		GinkgoHelper()
		code := `var mw = new TykJS.TykMiddleware.NewMiddleware({});
mw.NewProcessRequest(function (request, session, config) {
` + body + `
	return ` + ret + `;
});`
		req := plainGet()
		req.Body = "original body"
		return Run(ctx, env.Compile(code), req, `{"meta_data": {"tier": "gold"}}`)
	}

	When("the script returns ReturnData(request)", func() {
		It("leaves the body and URL as they were", func(ctx SpecContext) {
			res := result(ctx, ``, `mw.ReturnData(request)`)
			Expect(res.Request.Body).To(Equal("original body"))
			Expect(res.Request.URL).To(Equal("/get"))
		}, SpecTimeout(10*time.Second))

		It("returns no SessionMeta", func(ctx SpecContext) {
			Expect(result(ctx, ``, `mw.ReturnData(request)`).SessionMeta).To(BeNil())
		}, SpecTimeout(10*time.Second))

		It("returns no Session", func(ctx SpecContext) {
			Expect(result(ctx, ``, `mw.ReturnData(request)`).Session).To(BeNil())
		}, SpecTimeout(10*time.Second))
	})

	When("the script changes the request", func() {
		It("returns SetHeaders", func(ctx SpecContext) {
			Expect(result(ctx, `request.SetHeaders["X-New"] = "v";`, `mw.ReturnData(request)`).Request.SetHeaders).
				To(Equal(map[string]string{"X-New": "v"}))
		}, SpecTimeout(10*time.Second))

		It("returns DeleteHeaders", func(ctx SpecContext) {
			Expect(result(ctx, `request.DeleteHeaders.push("X-Old");`, `mw.ReturnData(request)`).Request.DeleteHeaders).
				To(Equal([]string{"X-Old"}))
		}, SpecTimeout(10*time.Second))

		It("returns the new Body", func(ctx SpecContext) {
			Expect(result(ctx, `request.Body = "new body";`, `mw.ReturnData(request)`).Request.Body).To(Equal("new body"))
		}, SpecTimeout(10*time.Second))

		It("returns IgnoreBody", func(ctx SpecContext) {
			Expect(result(ctx, `request.IgnoreBody = true;`, `mw.ReturnData(request)`).Request.IgnoreBody).To(BeTrue())
		}, SpecTimeout(10*time.Second))

		It("returns the new URL", func(ctx SpecContext) {
			Expect(result(ctx, `request.URL = "/rewritten";`, `mw.ReturnData(request)`).Request.URL).To(Equal("/rewritten"))
		}, SpecTimeout(10*time.Second))

		It("returns AddParams", func(ctx SpecContext) {
			Expect(result(ctx, `request.AddParams["page"] = "2";`, `mw.ReturnData(request)`).Request.AddParams).
				To(Equal(map[string]string{"page": "2"}))
		}, SpecTimeout(10*time.Second))

		It("returns ExtendedParams", func(ctx SpecContext) {
			Expect(result(ctx, `request.ExtendedParams["tag"] = ["a", "b"];`, `mw.ReturnData(request)`).Request.ExtendedParams).
				To(Equal(map[string][]string{"tag": {"a", "b"}}))
		}, SpecTimeout(10*time.Second))

		It("returns DeleteParams", func(ctx SpecContext) {
			Expect(result(ctx, `request.DeleteParams.push("debug");`, `mw.ReturnData(request)`).Request.DeleteParams).
				To(Equal([]string{"debug"}))
		}, SpecTimeout(10*time.Second))

		It("does not return changes made to Headers", func(ctx SpecContext) {
			res := result(ctx, `request.Headers["X-Ignored"] = ["v"];`, `mw.ReturnData(request)`)
			Expect(res.Request.SetHeaders).To(BeEmpty())
		}, SpecTimeout(10*time.Second))
	})

	When("the script overrides the response", func() {
		It("returns ReturnOverrides", func(ctx SpecContext) {
			res := result(ctx, `request.ReturnOverrides = {ResponseCode: 403, ResponseError: "denied",
				ResponseBody: "no", ResponseHeaders: {"X-Why": "policy"}, OverrideError: true};`, `mw.ReturnData(request)`)
			Expect(res.Request.ReturnOverrides).To(Equal(jsvm.ReturnOverrides{
				ResponseCode:    403,
				ResponseError:   "denied",
				ResponseBody:    "no",
				ResponseHeaders: map[string]string{"X-Why": "policy"},
				OverrideError:   true,
			}))
		}, SpecTimeout(10*time.Second))
	})

	When("the script returns ReturnData(request, sessionMeta)", func() {
		It("returns SessionMeta", func(ctx SpecContext) {
			res := result(ctx, `session.meta_data.seen = true;`, `mw.ReturnData(request, session.meta_data)`)
			Expect(res.SessionMeta).To(Equal(map[string]any{"tier": "gold", "seen": true}))
		}, SpecTimeout(10*time.Second))
	})

	When("the script returns ReturnAuthData(request, session)", func() {
		It("returns the session as JSON", func(ctx SpecContext) {
			res := result(ctx, `session.rate = 9;`, `mw.ReturnAuthData(request, session)`)
			Expect(res.Session).To(MatchJSON(`{"rate": 9, "meta_data": {"tier": "gold"}}`))
		}, SpecTimeout(10*time.Second))

		It("names no AuthValue", func(ctx SpecContext) {
			Expect(result(ctx, ``, `mw.ReturnAuthData(request, session)`).AuthValue).To(BeEmpty())
		}, SpecTimeout(10*time.Second))
	})

	When("the script returns {Request, Session, AuthValue}, as Tyk's TestJSVM_MultiAuthentication does", func() {
		It("returns the AuthValue", func(ctx SpecContext) {
			res := result(ctx, ``, `{Request: request, Session: session, AuthValue: "customAuthSessionID"}`)
			Expect(res.AuthValue).To(Equal("customAuthSessionID"))
		}, SpecTimeout(10*time.Second))

		It("fails the run when AuthValue is not a string, as Tyk fails to decode it", func(ctx SpecContext) {
			code := `var mw = new TykJS.TykMiddleware.NewMiddleware({});
mw.NewProcessRequest(function (request, session) { return {Request: request, Session: session, AuthValue: 7}; });`
			_, err := env.Compile(code).Run(ctx, "mw", plainGet(), nil)
			Expect(err).To(MatchError(ContainSubstring("AuthValue is not a string")))
		}, SpecTimeout(10*time.Second))
	})

	When("the script returns nothing", func() {
		It("fails the run with ErrNoRequest", func(ctx SpecContext) {
			code := `var mw = new TykJS.TykMiddleware.NewMiddleware({});
mw.NewProcessRequest(function (request) {});`
			_, err := env.Compile(code).Run(ctx, "mw", plainGet(), nil)
			Expect(err).To(MatchError(jsvm.ErrNoRequest))
		}, SpecTimeout(10*time.Second))

		It("logs that the middleware didn't return a request object", func(ctx SpecContext) {
			code := `var mw = new TykJS.TykMiddleware.NewMiddleware({});
mw.NewProcessRequest(function (request) {});`
			_, _ = env.Compile(code).Run(ctx, "mw", plainGet(), nil)
			Expect(env.LogRecords()).To(ContainElement(HaveKeyWithValue("msg", "Middleware didn't return request object!")))
		}, SpecTimeout(10*time.Second))
	})

	When("a script calls a middleware's DoProcessRequest with objects", func() {
		It("the request gets the fields a script fills in", func(ctx SpecContext) {
			code := `var inner = new TykJS.TykMiddleware.NewMiddleware({});
var mw = new TykJS.TykMiddleware.NewMiddleware({});
mw.NewProcessRequest(function (request) {
	var out = inner.DoProcessRequest({URL: "/inner"}, {}, {});
	request.SetHeaders["X-Inner"] = JSON.stringify(out.Request);
	return mw.ReturnData(request);
});`
			Expect(Run(ctx, env.Compile(code), plainGet(), `{}`).Request.SetHeaders).To(HaveKeyWithValue("X-Inner", MatchJSON(`{
				"URL": "/inner", "Headers": {}, "SetHeaders": {}, "DeleteHeaders": [], "Body": "", "Params": {},
				"AddParams": {}, "ExtendedParams": {}, "DeleteParams": [], "IgnoreBody": false,
				"ReturnOverrides": {"ResponseCode": 0, "ResponseError": "", "ResponseBody": "", "ResponseHeaders": {}, "OverrideError": false}
			}`)))
		}, SpecTimeout(10*time.Second))
	})

	When("the script never called NewProcessRequest", func() {
		It("passes the request through unchanged", func(ctx SpecContext) {
			prog := env.Compile(`var mw = new TykJS.TykMiddleware.NewMiddleware({});`)
			res := Run(ctx, prog, plainGet(), `{}`)
			Expect(res.Request.URL).To(Equal("/get"))
			Expect(res.Request.SetHeaders).To(BeEmpty())
		}, SpecTimeout(10*time.Second))
	})
})

// randomJSONObject writes a JSON object of random members: strings with
// escapes and non-ASCII text, integers, fractions and exponents, literals,
// arrays and nested objects.
func randomJSONObject(rng *rand.Rand, depth int) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range rng.IntN(5) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %s", randomJSONString(rng), randomJSONValue(rng, depth+1))
	}
	b.WriteString("}")
	return b.String()
}

func randomJSONValue(rng *rand.Rand, depth int) string {
	kinds := 8
	if depth > 3 {
		kinds = 6 // no more nesting
	}
	switch rng.IntN(kinds) {
	case 0:
		return randomJSONString(rng)
	case 1:
		return strconv.Itoa(rng.IntN(2_000_000_000) - 1_000_000_000)
	case 2:
		return []string{"0.5", "-3.25", "1e3", "2.5E-7", "-0", "1.7976931348623157e308", "123456789012"}[rng.IntN(7)]
	case 3:
		return []string{"true", "false", "null"}[rng.IntN(3)]
	case 4:
		return `""`
	case 5:
		return "[]"
	case 6:
		items := make([]string, rng.IntN(4))
		for i := range items {
			items[i] = randomJSONValue(rng, depth+1)
		}
		return "[" + strings.Join(items, ",") + "]"
	default:
		return randomJSONObject(rng, depth)
	}
}

func randomJSONString(rng *rand.Rand) string {
	pieces := []string{"a", "key", " ", `\"`, `\\`, `\n`, `\t`, `\u00e9`, `\ud83d\ude80`, "ü", "🚀", "<&>", `\/`}
	var b strings.Builder
	b.WriteString(`"`)
	for range rng.IntN(4) + 1 {
		b.WriteString(pieces[rng.IntN(len(pieces))])
	}
	b.WriteString(`"`)
	return b.String()
}
