package jsvm_test

import (
	"encoding/json"
	"errors"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("The JS API", func() {
	var env *Env

	BeforeEach(func() {
		env = NewEnv()
	})

	Describe("log", func() {
		It("logs the message at Info with type=log-msg", func(ctx SpecContext) {
			env.RunBody(ctx, `log("hello from js");`)
			Expect(env.LogRecords()).To(ContainElement(And(
				HaveKeyWithValue("msg", "hello from js"),
				HaveKeyWithValue("level", "INFO"),
				HaveKeyWithValue("type", "log-msg"),
			)))
		}, SpecTimeout(10*time.Second))
	})

	Describe("rawlog", func() {
		It("writes the message and a newline to the raw log as it is", func(ctx SpecContext) {
			env.RunBody(ctx, `rawlog("raw line");`)
			Expect(env.RawLog.String()).To(Equal("raw line\n"))
		}, SpecTimeout(10*time.Second))
	})

	Describe("base64", func() {
		It("b64enc encodes with padding", func(ctx SpecContext) {
			Expect(env.RunBody(ctx, `request.SetHeaders["X-Out"] = b64enc("hello");`)).
				To(HaveKeyWithValue("X-Out", "aGVsbG8="))
		}, SpecTimeout(10*time.Second))

		It("b64dec decodes padded input", func(ctx SpecContext) {
			Expect(env.RunBody(ctx, `request.SetHeaders["X-Out"] = b64dec("aGVsbG8=");`)).
				To(HaveKeyWithValue("X-Out", "hello"))
		}, SpecTimeout(10*time.Second))

		It("b64dec falls back to unpadded input", func(ctx SpecContext) {
			Expect(env.RunBody(ctx, `request.SetHeaders["X-Out"] = b64dec("aGVsbG8");`)).
				To(HaveKeyWithValue("X-Out", "hello"))
		}, SpecTimeout(10*time.Second))

		It("rawb64enc encodes without padding", func(ctx SpecContext) {
			Expect(env.RunBody(ctx, `request.SetHeaders["X-Out"] = rawb64enc("hello");`)).
				To(HaveKeyWithValue("X-Out", "aGVsbG8"))
		}, SpecTimeout(10*time.Second))

		It("rawb64dec decodes unpadded input", func(ctx SpecContext) {
			Expect(env.RunBody(ctx, `request.SetHeaders["X-Out"] = rawb64dec("aGVsbG8");`)).
				To(HaveKeyWithValue("X-Out", "hello"))
		}, SpecTimeout(10*time.Second))

		When("the input is not base64", func() {
			It("throws an exception the script can catch", func(ctx SpecContext) {
				Expect(env.RunBody(ctx, `try { b64dec("*not base64*"); } catch (e) { request.SetHeaders["X-Err"] = e.message; }`)).
					To(HaveKeyWithValue("X-Err", ContainSubstring("b64dec")))
			}, SpecTimeout(10*time.Second))
		})
	})

	Describe("TykGetKeyData", func() {
		BeforeEach(func() {
			env.Host.Session = `{"rate": 7, "per": 60}`
		})

		It("returns the Host's session as a JSON string", func(ctx SpecContext) {
			Expect(env.RunBody(ctx, `var s = TykGetKeyData("key-1", "api-1");
				request.SetHeaders["X-Type"] = typeof s;
				request.SetHeaders["X-Rate"] = String(JSON.parse(s).rate);`)).
				To(And(HaveKeyWithValue("X-Type", "string"), HaveKeyWithValue("X-Rate", "7")))
		}, SpecTimeout(10*time.Second))

		It("asks the Host for the key and API ID given", func(ctx SpecContext) {
			env.RunBody(ctx, `TykGetKeyData("key-1", "api-1");`)
			Expect(env.Host.Gets()).To(Equal([][2]string{{"key-1", "api-1"}}))
		}, SpecTimeout(10*time.Second))

		When("the Host fails", func() {
			It("throws an exception carrying the Host's error", func(ctx SpecContext) {
				env.Host.Err = errors.New("storage unavailable")
				Expect(env.RunBody(ctx, `try { TykGetKeyData("key-1", "api-1"); } catch (e) { request.SetHeaders["X-Err"] = e.message; }`)).
					To(HaveKeyWithValue("X-Err", "TykGetKeyData: storage unavailable"))
			}, SpecTimeout(10*time.Second))

			It("fails the run when the script does not catch it", func(ctx SpecContext) {
				env.Host.Err = errors.New("storage unavailable")
				_, err := env.Compile(middleware(`TykGetKeyData("key-1", "api-1");`)).Run(ctx, "mw", plainGet(), nil)
				Expect(scriptError(err).Message).To(ContainSubstring("storage unavailable"))
			}, SpecTimeout(10*time.Second))
		})
	})

	Describe("TykSetKeyData", func() {
		It("hands the key and the session JSON to the Host", func(ctx SpecContext) {
			env.RunBody(ctx, `TykSetKeyData("key-1", JSON.stringify({expires: 5}), "1");`)
			Expect(env.Host.Sets()).To(ConsistOf(And(
				HaveField("Key", "key-1"),
				HaveField("Session", MatchJSON(`{"expires": 5}`)),
			)))
		}, SpecTimeout(10*time.Second))

		DescribeTable("suppresses the quota and rate-limit reset only when the third argument reads as 1",
			func(ctx SpecContext, arg string, suppressReset bool) {
				env.RunBody(ctx, `TykSetKeyData("key-1", "{}", `+arg+`);`)
				Expect(env.Host.Sets()).To(ConsistOf(HaveField("SuppressReset", suppressReset)))
			},
			Entry(`with "1"`, `"1"`, true, SpecTimeout(10*time.Second)),
			Entry(`with 1`, `1`, true, SpecTimeout(10*time.Second)),
			Entry(`with "0"`, `"0"`, false, SpecTimeout(10*time.Second)),
			Entry(`with no third argument`, `undefined`, false, SpecTimeout(10*time.Second)),
		)

		When("the Host fails", func() {
			It("throws an exception carrying the Host's error", func(ctx SpecContext) {
				env.Host.Err = errors.New("storage unavailable")
				Expect(env.RunBody(ctx, `try { TykSetKeyData("key-1", "{}", "1"); } catch (e) { request.SetHeaders["X-Err"] = e.message; }`)).
					To(HaveKeyWithValue("X-Err", "TykSetKeyData: storage unavailable"))
			}, SpecTimeout(10*time.Second))
		})
	})

	Describe("TykBatchRequest", func() {
		It("hands the batch to the Host and returns its reply as a JSON string", func(ctx SpecContext) {
			env.Host.BatchReply = `[{"relative_url": "/a", "code": 200}]`
			headers := env.RunBody(ctx, `var batch = {requests: [{method: "GET", relative_url: "/a"}], suppress_parallel_execution: true};
				var reply = JSON.parse(TykBatchRequest(JSON.stringify(batch)));
				request.SetHeaders["X-Code"] = String(reply[0].code);`)
			Expect(headers).To(HaveKeyWithValue("X-Code", "200"))
			Expect(env.Host.BatchBodies()).To(ConsistOf(MatchJSON(
				`{"requests": [{"method": "GET", "relative_url": "/a"}], "suppress_parallel_execution": true}`)))
		}, SpecTimeout(10*time.Second))
	})

	Describe("TykMakeHttpRequest", func() {
		var reply map[string]string

		// call makes the request described by the JS expression spec
		// against an echo upstream and returns what the script saw.
		call := func(ctx SpecContext, spec string) {
			GinkgoHelper()
			env.Config.Client = ownClient()
			env.Config.Timeout = 5 * time.Second
			upstream := echoUpstream()
			code := middleware(`var spec = ` + spec + `;
				spec.Domain = "` + upstream.URL + `";
				var r = JSON.parse(TykMakeHttpRequest(JSON.stringify(spec)));
				request.SetHeaders["X-Code"] = String(r.Code);
				request.SetHeaders["X-Lower-Code"] = String(r.code);
				request.SetHeaders["X-Body"] = r.Body;
				request.SetHeaders["X-Lower-Body"] = r.body;
				request.SetHeaders["X-Header"] = r.Headers["X-Upstream"][0];
				request.SetHeaders["X-Lower-Header"] = r.headers["X-Upstream"][0];`)
			reply = Run(ctx, env.Compile(code), plainGet(), `{}`).Request.SetHeaders
		}
		echoed := func() map[string]any {
			GinkgoHelper()
			var body map[string]any
			Expect(json.Unmarshal([]byte(reply["X-Body"]), &body)).To(Succeed())
			return body
		}

		When("the script sends a method, a body and headers to Domain+Resource", func() {
			BeforeEach(func(ctx SpecContext) {
				call(ctx, `{Method: "POST", Body: "ping", Headers: {"X-Test": "yes"}, Resource: "/echo"}`)
			}, NodeTimeout(10*time.Second))

			It("returns the response's status as Code and code", func() {
				Expect(reply).To(And(HaveKeyWithValue("X-Code", "201"), HaveKeyWithValue("X-Lower-Code", "201")))
			})

			It("returns the response's headers as Headers and headers", func() {
				Expect(reply).To(And(HaveKeyWithValue("X-Header", "echo"), HaveKeyWithValue("X-Lower-Header", "echo")))
			})

			It("returns the response's body as Body and body", func() {
				Expect(reply["X-Lower-Body"]).To(Equal(reply["X-Body"]))
				Expect(echoed()).To(HaveKeyWithValue("path", "/echo"))
			})

			It("sends the method, body and headers", func() {
				Expect(echoed()).To(And(
					HaveKeyWithValue("method", "POST"),
					HaveKeyWithValue("body", "ping"),
					HaveKeyWithValue("test", "yes"),
				))
			})
		})

		When("the script sends FormData and no Body", func() {
			BeforeEach(func(ctx SpecContext) {
				call(ctx, `{Method: "POST", FormData: {name: "tollgate"}, Resource: "/form"}`)
			}, NodeTimeout(10*time.Second))

			It("sends the form url-encoded", func() {
				Expect(echoed()).To(And(
					HaveKeyWithValue("contentType", "application/x-www-form-urlencoded"),
					HaveKeyWithValue("form", "tollgate"),
				))
			})
		})

		When("the request cannot be made", func() {
			It("throws an exception", func(ctx SpecContext) {
				env.Config.Client = ownClient()
				Expect(env.RunBody(ctx, `try { TykMakeHttpRequest(JSON.stringify({Method: "GET", Domain: "http://127.0.0.1:1", Resource: "/"})); }
					catch (e) { request.SetHeaders["X-Err"] = e.message; }`)).
					To(HaveKeyWithValue("X-Err", HavePrefix("TykMakeHttpRequest: ")))
			}, SpecTimeout(10*time.Second))
		})
	})

	When("the gateway gives no Host", func() {
		It("the key functions throw instead of failing in Go", func(ctx SpecContext) {
			env.Config.Host = nil
			Expect(env.RunBody(ctx, `try { TykGetKeyData("key-1", "api-1"); } catch (e) { request.SetHeaders["X-Err"] = e.message; }`)).
				To(HaveKeyWithValue("X-Err", HavePrefix("TykGetKeyData: ")))
		}, SpecTimeout(10*time.Second))
	})
})
