package specs_test

import (
	"fmt"
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

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
