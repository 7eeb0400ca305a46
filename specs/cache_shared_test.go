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

// cachedAPIKeyIn is a keyed API with the given cache_options that reads
// its key from header, forwarding to target.
func cachedAPIKeyIn(apiID, listenPath, target, header, cacheOptions string) string {
	return fmt.Sprintf(`{
  "api_id": %q,
  "name": %q,
  "active": true,
  "use_keyless": false,
  "auth": {"auth_header_name": %q},
  "proxy": {"listen_path": %q, "target_url": %q, "strip_listen_path": true},
  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default"}}},
  "cache_options": %s
}`, apiID, apiID, header, listenPath, target, cacheOptions)
}

// cacheAllSafe is the cache_options of most specs below.
const cacheAllSafe = `{"enable_cache": true, "cache_timeout": 60, "cache_all_safe_requests": true}`

// Every request in these specs comes from 127.0.0.1, as requests of
// different people do when they reach the gateway through one NAT, proxy
// or load balancer: on a keyless API they share cache entries.
var _ = Describe("Response cache as a shared cache", Label("cache", "security"), func() {
	var (
		env      *specs.Env
		upstream *scriptedUpstream
	)

	startWith := func(definition func(target string) string) {
		GinkgoHelper()
		upstream = startScriptedUpstream()
		env = specs.NewEnv(specs.WithAPI(definition(upstream.URL)))
	}
	keyless := func(cacheOptions string) func(string) string {
		return func(target string) string { return cachedAPI("c", "/c/", target, false, cacheOptions) }
	}

	// expectUpstreamAnswered checks that resp is the upstream's n-th
	// answer, fresh rather than replayed, and that the upstream was
	// reached n times in all.
	expectUpstreamAnswered := func(resp specs.Response, n int) {
		GinkgoHelper()
		Expect(isCached(resp)).To(BeFalse(), "answered from the cache")
		Expect(resp.Body).To(Equal(fmt.Sprintf("answer %d", n)))
		Expect(upstream.Requests()).To(Equal(n))
	}

	// Regression: every 200 was stored by URL and client IP, so the next
	// caller behind the same address got the first caller's session cookie
	// and private page.
	When("the first caller's answer on a keyless API is personal", func() {
		BeforeEach(func() { startWith(keyless(cacheAllSafe)) })

		It("does not give the second caller the first caller's Set-Cookie", func() {
			Expect(env.Get("/c/account?set-cookie=session").Header.Values("Set-Cookie")).To(ConsistOf("session=1"))
			second := env.Get("/c/account?set-cookie=session")
			Expect(second.Header.Values("Set-Cookie")).To(ConsistOf("session=2"))
			expectUpstreamAnswered(second, 2)
		})

		It("does not give the second caller a body marked Cache-Control: private", func() {
			env.Get("/c/account?cache-control=private")
			expectUpstreamAnswered(env.Get("/c/account?cache-control=private"), 2)
		})

		It(`does not give the second caller a body marked private="Set-Cookie" (the qualified form)`, func() {
			env.Get(`/c/account?cache-control=private%3D%22Set-Cookie%22`)
			expectUpstreamAnswered(env.Get(`/c/account?cache-control=private%3D%22Set-Cookie%22`), 2)
		})

		It("does not give the second caller a body marked Cache-Control: no-store", func() {
			env.Get("/c/account?cache-control=no-store")
			expectUpstreamAnswered(env.Get("/c/account?cache-control=no-store"), 2)
		})

		It("does not give the second caller a body marked Cache-Control: no-cache, which it could not revalidate", func() {
			env.Get("/c/account?cache-control=max-age%3D60,%20no-cache")
			expectUpstreamAnswered(env.Get("/c/account?cache-control=max-age%3D60,%20no-cache"), 2)
		})

		It("still shares an answer marked Cache-Control: public, max-age=60", func() {
			env.Get("/c/news?cache-control=public,%20max-age%3D60")
			second := env.Get("/c/news?cache-control=public,%20max-age%3D60")
			Expect(isCached(second)).To(BeTrue())
			Expect(second.Body).To(Equal("answer 1"))
			Expect(upstream.Requests()).To(Equal(1))
		})
	})

	When("a request to a keyless API carries Authorization", func() {
		BeforeEach(func() { startWith(keyless(cacheAllSafe)) })

		It("is not answered from the entry another caller left", func() {
			env.Get("/c/account")
			expectUpstreamAnswered(env.Get("/c/account", "Authorization", "Bearer alice"), 2)
		})

		It("leaves no entry for the next caller", func() {
			env.Get("/c/account", "Authorization", "Bearer alice")
			expectUpstreamAnswered(env.Get("/c/account"), 2)
		})

		It("leaves no entry even when the answer says Cache-Control: public", func() {
			env.Get("/c/account?cache-control=public", "Authorization", "Bearer alice")
			expectUpstreamAnswered(env.Get("/c/account?cache-control=public"), 2)
		})
	})

	When("a request to a keyless API carries Cookie", func() {
		BeforeEach(func() { startWith(keyless(cacheAllSafe)) })

		It("is not answered from the entry another caller left", func() {
			env.Get("/c/account")
			expectUpstreamAnswered(env.Get("/c/account", "Cookie", "session=alice"), 2)
		})

		It("leaves no entry for the next caller", func() {
			env.Get("/c/account", "Cookie", "session=alice")
			expectUpstreamAnswered(env.Get("/c/account"), 2)
		})
	})

	When("a request says Cache-Control: no-store", func() {
		BeforeEach(func() { startWith(keyless(cacheAllSafe)) })

		It("leaves no entry for the next caller", func() {
			env.Get("/c/items", "Cache-Control", "no-store")
			expectUpstreamAnswered(env.Get("/c/items"), 2)
		})
	})

	// Regression: with 304 listed, the upstream's empty answer to one
	// caller's If-None-Match was replayed to callers that had no copy.
	When("cache_response_codes lists 304 and the upstream answers a conditional request with 304", func() {
		BeforeEach(func() {
			startWith(keyless(`{"enable_cache": true, "cache_all_safe_requests": true, "cache_response_codes": [200, 304]}`))
		})

		It("does not store the 304 for the next caller", func() {
			Expect(env.Get("/c/items?status=304", "If-None-Match", `"v1"`).StatusCode).To(Equal(http.StatusNotModified))
			second := env.Get("/c/items?status=304")
			Expect(isCached(second)).To(BeFalse())
			Expect(upstream.Requests()).To(Equal(2))
		})

		It("warns at load that 304 is never cached", func() {
			Expect(env.Logs()).To(ContainSubstring("cache_options.cache_response_codes[1]: 304 is never cached"))
		})
	})

	// A keyed API's entries are per key already (key hash and
	// last_updated), so the cache is private to the key's holder there.
	When("a keyed API reads its key from Authorization", func() {
		BeforeEach(func() {
			startWith(func(target string) string { return cachedAPI("c", "/c/", target, true, cacheAllSafe) })
		})

		It("answers a key from its own entry: the Authorization header is the key, not someone else's credential", func() {
			key := env.IssueKey(grantTo("c"))
			env.Get("/c/account", "Authorization", key)
			second := env.Get("/c/account", "Authorization", key)
			Expect(isCached(second)).To(BeTrue())
			Expect(upstream.Requests()).To(Equal(1))
		})

		It("still never stores an answer with Set-Cookie", func() {
			key := env.IssueKey(grantTo("c"))
			env.Get("/c/account?set-cookie=session", "Authorization", key)
			second := env.Get("/c/account?set-cookie=session", "Authorization", key)
			Expect(second.Header.Values("Set-Cookie")).To(ConsistOf("session=2"))
			expectUpstreamAnswered(second, 2)
		})
	})

	// One key often stands for an application whose end users each send
	// their own Authorization; entries per key would mix them up.
	When("a keyed API reads its key from X-Api-Key and requests also carry Authorization", func() {
		var key string
		BeforeEach(func() {
			startWith(func(target string) string { return cachedAPIKeyIn("c", "/c/", target, "X-Api-Key", cacheAllSafe) })
			key = env.IssueKey(grantTo("c"))
		})

		It("does not answer one end user from the entry of another under the same key", func() {
			env.Get("/c/account", "X-Api-Key", key, "Authorization", "Bearer alice")
			expectUpstreamAnswered(env.Get("/c/account", "X-Api-Key", key, "Authorization", "Bearer bob"), 2)
		})

		DescribeTable("stores the answer when it allows a shared cache to (RFC 9111 §3.5)",
			func(cacheControl string) {
				path := "/c/news?cache-control=" + cacheControl
				env.Get(path, "X-Api-Key", key, "Authorization", "Bearer alice")
				second := env.Get(path, "X-Api-Key", key, "Authorization", "Bearer bob")
				Expect(isCached(second)).To(BeTrue())
				Expect(second.Body).To(Equal("answer 1"))
				Expect(upstream.Requests()).To(Equal(1))
			},
			Entry("with public", "public"),
			Entry("with s-maxage", "s-maxage%3D60"),
			Entry("with must-revalidate", "must-revalidate"),
		)
	})
})

// Tyk's cache tests that can be observed through HTTP, mirrored: gateway_test.go
// (TestCacheEtag, TestCacheAllSafeRequests, TestCacheAllSafeRequestsWithCachedHeaders,
// TestOldCachePlugin, TestCache_singleErrorResponse) and mw_redis_cache_test.go
// (TestRedisCacheMiddleware, TestRedisCacheMiddleware_RateLimitHeaders,
// TestRedisCacheMiddleware_Observability), at v5.14.0.
var _ = Describe("Response cache, as Tyk's own tests", Label("cache", "tyk-mirror"), func() {
	var (
		env      *specs.Env
		upstream *scriptedUpstream
	)

	startWith := func(keyed bool, cacheOptions string, opts ...specs.EnvOption) {
		GinkgoHelper()
		upstream = startScriptedUpstream()
		env = specs.NewEnv(append(opts, specs.WithAPI(cachedAPI("c", "/c/", upstream.URL, keyed, cacheOptions)))...)
	}

	When("the upstream sends Etag: 12345 and cache_all_safe_requests is on", func() {
		const path = "/c/?etag=12345"
		BeforeEach(func() { startWith(false, cacheAllSafe) })

		It("proxies the first GET without X-Tyk-Cached-Response (mirrors Tyk TestCacheEtag, first request)", func() {
			resp := env.Get(path)
			Expect(isCached(resp)).To(BeFalse())
			Expect(resp.Body).To(Equal("answer 1"))
		})

		It("answers the second GET from the cache with the body (mirrors TestCacheEtag, second request)", func() {
			env.Get(path)
			resp := env.Get(path)
			Expect(isCached(resp)).To(BeTrue())
			Expect(resp.Body).To(Equal("answer 1"))
		})

		It(`answers If-None-Match: invalid from the cache with 200 and the body (mirrors TestCacheEtag "If-None-Match: invalid")`, func() {
			env.Get(path)
			resp := env.Get(path, "If-None-Match", "invalid")
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(isCached(resp)).To(BeTrue())
			Expect(resp.Body).To(Equal("answer 1"))
		})

		It(`answers If-None-Match: 12345 from the cache with 304 and no body, without reaching the upstream (mirrors TestCacheEtag "If-None-Match: 12345")`, func() {
			env.Get(path)
			resp := env.Get(path, "If-None-Match", "12345")
			Expect(resp.StatusCode).To(Equal(http.StatusNotModified))
			Expect(isCached(resp)).To(BeTrue())
			Expect(resp.Body).To(BeEmpty())
			Expect(upstream.Requests()).To(Equal(1))
		})

		It("sends the entry's Etag and end-to-end headers with the 304, as Tyk does", func() {
			p := path + "&cache-control=max-age%3D60"
			env.Get(p)
			resp := env.Get(p, "If-None-Match", "12345")
			Expect(resp.StatusCode).To(Equal(http.StatusNotModified))
			Expect(resp.Header.Get("Etag")).To(Equal("12345"))
			Expect(resp.Header.Get("Cache-Control")).To(Equal("max-age=60"))
		})

		It("answers 304 when If-None-Match lists the tag, weakly, among others (RFC 9110 §13.1.2)", func() {
			env.Get(path)
			resp := env.Get(path, "If-None-Match", `"other", W/12345`)
			Expect(resp.StatusCode).To(Equal(http.StatusNotModified))
			Expect(upstream.Requests()).To(Equal(1))
		})

		It("answers 200 with the body when If-None-Match holds the tag only inside a longer one (Tyk matches substrings with strings.Contains and answers 304 to 123456)", func() {
			env.Get(path)
			resp := env.Get(path, "If-None-Match", "123456")
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(resp.Body).To(Equal("answer 1"))
			Expect(upstream.Requests()).To(Equal(1))
		})

		It(`answers If-None-Match: * with 304 (RFC 9110 §13.1.2: * matches any current representation; Tyk looks for "12345" inside "*" and answers 200)`, func() {
			env.Get(path)
			resp := env.Get(path, "If-None-Match", "*")
			Expect(resp.StatusCode).To(Equal(http.StatusNotModified))
			Expect(upstream.Requests()).To(Equal(1))
		})
	})

	When("cache_response_codes lists 200 and 404 and the upstream's 404 has Etag: 12345", func() {
		BeforeEach(func() {
			startWith(false, `{"enable_cache": true, "cache_all_safe_requests": true, "cache_response_codes": [200, 404]}`)
		})

		It("answers a matching If-None-Match with the cached 404, not 304: preconditions apply only to a 2xx answer (RFC 9110 §13.2.1; Tyk turns any cached status into 304)", func() {
			env.Get("/c/gone?status=404&etag=12345")
			resp := env.Get("/c/gone?status=404&etag=12345", "If-None-Match", "12345")
			Expect(resp.StatusCode).To(Equal(http.StatusNotFound))
			Expect(isCached(resp)).To(BeTrue())
			Expect(resp.Body).To(Equal("answer 1"))
		})
	})

	When("cache_all_safe_requests is on", func() {
		BeforeEach(func() { startWith(false, cacheAllSafe) })

		It("answers GET from the cache again after two POSTs that were not cached (mirrors TestCacheAllSafeRequests)", func() {
			env.Get("/c/")
			Expect(isCached(env.Get("/c/"))).To(BeTrue())
			Expect(isCached(env.Do(http.MethodPost, "/c/", ""))).To(BeFalse())
			Expect(isCached(env.Do(http.MethodPost, "/c/", ""))).To(BeFalse())
			Expect(isCached(env.Get("/c/"))).To(BeTrue())
			Expect(upstream.Requests()).To(Equal(3))
		})
	})

	When("a keyless API lists authorization and tenant-id in cache_by_headers", func() {
		BeforeEach(func() {
			startWith(false, `{"enable_cache": true, "cache_timeout": 120, "cache_all_safe_requests": true, "cache_by_headers": ["authorization", "tenant-id"]}`)
		})

		It("answers a repeated tenant-id from its entry (mirrors TestCacheAllSafeRequestsWithCachedHeaders, tenant-id)", func() {
			Expect(isCached(env.Get("/c/", "tenant-id", "Some UUID"))).To(BeFalse())
			Expect(isCached(env.Get("/c/", "tenant-id", "Some UUID"))).To(BeTrue())
		})

		It("keeps requests without the headers apart from tenant-id's entry (mirrors TestCacheAllSafeRequestsWithCachedHeaders, no headers)", func() {
			env.Get("/c/", "tenant-id", "Some UUID")
			Expect(isCached(env.Get("/c/"))).To(BeFalse())
			Expect(isCached(env.Get("/c/"))).To(BeTrue())
		})

		It("never answers a request carrying Authorization from the cache, where Tyk keeps an entry per Authorization value (a keyless API's entries are shared by everyone behind one address)", func() {
			env.Get("/c/", "Authorization", "sess1token")
			resp := env.Get("/c/", "Authorization", "sess1token")
			Expect(isCached(resp)).To(BeFalse())
			Expect(upstream.Requests()).To(Equal(2))
		})
	})

	When("extended_paths.cache lists /test", func() {
		BeforeEach(func() {
			upstream = startScriptedUpstream()
			env = specs.NewEnv(specs.WithAPI(fmt.Sprintf(`{
  "api_id": "c", "name": "c", "active": true, "use_keyless": true,
  "proxy": {"listen_path": "/c/", "target_url": %q, "strip_listen_path": true},
  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default",
    "use_extended_paths": true, "extended_paths": {"cache": ["/test"]}}}},
  "cache_options": {"enable_cache": true, "cache_timeout": 120}
}`, upstream.URL)))
		})

		It("answers /test from the cache the second time (mirrors TestOldCachePlugin, /test)", func() {
			env.Get("/c/test")
			Expect(isCached(env.Get("/c/test"))).To(BeTrue())
		})

		It("proxies /anything every time (mirrors TestOldCachePlugin, /anything)", func() {
			env.Get("/c/anything")
			Expect(isCached(env.Get("/c/anything"))).To(BeFalse())
			Expect(upstream.Requests()).To(Equal(2))
		})
	})

	When("the upstream streams its answer chunked", func() {
		BeforeEach(func() { startWith(false, cacheAllSafe) })

		It("passes the first answer on chunked, without a Content-Length", func() {
			resp := env.Get("/c/chunked?chunked=1")
			Expect(resp.Header.Get("Content-Length")).To(BeEmpty())
			Expect(resp.Body).To(Equal("answer 1"))
		})

		It(`replays it with the same body and a Content-Length instead (mirrors TestRedisCacheMiddleware "chunked")`, func() {
			env.Get("/c/chunked?chunked=1")
			resp := env.Get("/c/chunked?chunked=1")
			Expect(isCached(resp)).To(BeTrue())
			Expect(resp.Header.Get("Content-Length")).To(Equal("8"))
			Expect(resp.Body).To(Equal("answer 1"))
		})
	})

	When("the upstream compresses its answer with gzip", func() {
		BeforeEach(func() { startWith(false, cacheAllSafe) })

		It(`replays the compressed answer, which the client still decompresses to the same body (mirrors TestRedisCacheMiddleware "compressed")`, func() {
			Expect(env.Get("/c/compressed?gzip=1").Body).To(Equal("answer 1"))
			resp := env.Get("/c/compressed?gzip=1")
			Expect(isCached(resp)).To(BeTrue())
			Expect(resp.Body).To(Equal("answer 1"))
		})
	})

	// Tyk's test gives the key a quota and fills X-RateLimit-* from it;
	// tollgate's X-RateLimit-* describe the rate limit, so the key has one.
	When("the key has a rate limit and the upstream sends X-RateLimit headers of its own", func() {
		var key string
		BeforeEach(func() {
			startWith(true, cacheAllSafe)
			key = env.IssueKey(grantTo("c", `"rate": 10, "per": 60`))
		})

		It("sends the gateway's X-RateLimit-Limit and -Remaining once each on the first answer (mirrors TestRedisCacheMiddleware_RateLimitHeaders, first request)", func() {
			resp := env.Get("/c/cache-rl-test?ratelimit=1", "Authorization", key)
			Expect(isCached(resp)).To(BeFalse())
			Expect(resp.Header.Values("X-RateLimit-Limit")).To(ConsistOf("10"))
			Expect(resp.Header.Values("X-RateLimit-Remaining")).To(ConsistOf("9"))
		})

		It("sends them once each, counted on, on the cached answer (mirrors TestRedisCacheMiddleware_RateLimitHeaders, second request)", func() {
			env.Get("/c/cache-rl-test?ratelimit=1", "Authorization", key)
			resp := env.Get("/c/cache-rl-test?ratelimit=1", "Authorization", key)
			Expect(isCached(resp)).To(BeTrue())
			Expect(resp.Header.Values("X-RateLimit-Limit")).To(ConsistOf("10"))
			Expect(resp.Header.Values("X-RateLimit-Remaining")).To(ConsistOf("8"))
		})
	})

	When("analytics are on", func() {
		BeforeEach(func() {
			startWith(false, cacheAllSafe, specs.WithConfig(`{"secret": "s", "enable_analytics": true, "analytics_config": {"flush_interval": 3600}}`))
		})

		It("records a cached answer as it records a proxied one (mirrors TestRedisCacheMiddleware_Observability; tollgate has no access log or OTel metrics to count)", func(ctx SpecContext) {
			env.Get("/c/cached")
			Expect(isCached(env.Get("/c/cached"))).To(BeTrue())
			Expect(env.Gateway.Shutdown(ctx)).To(Succeed())
			Expect(storedRecords(ctx, env)).To(ConsistOf(
				And(HaveField("Path", "/c/cached"), HaveField("ResponseCode", http.StatusOK)),
				And(HaveField("Path", "/c/cached"), HaveField("ResponseCode", http.StatusOK)),
			))
			Expect(upstream.Requests()).To(Equal(1))
		}, SpecTimeout(10*time.Second))
	})

	When("the upstream goes down after an answer was cached", func() {
		BeforeEach(func() {
			startWith(false, `{"enable_cache": true, "cache_timeout": 1, "cache_all_safe_requests": true}`)
			env.Get("/c/")
			upstream.GoDown()
		})

		It("answers from the cache while the entry lasts (mirrors TestCache_singleErrorResponse, second request)", func() {
			resp := env.Get("/c/")
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(resp.Body).To(Equal("answer 1"))
		})

		It("answers one error, not two, once the entry expired: 502 with Tyk's message (mirrors TestCache_singleErrorResponse, third request; Tyk answers 500)", func() {
			env.Clock.Advance(time.Second)
			expectGatewayError(env.Get("/c/"), http.StatusBadGateway, chain.CauseUpstreamUnreachable, "There was a problem proxying the request")
		})
	})
})
