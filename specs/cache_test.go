package specs_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/specs"
)

// cachedAPI is an API with the given cache_options (a JSON object),
// forwarding to target; keyed APIs read the key from Authorization.
func cachedAPI(apiID, listenPath, target string, keyed bool, cacheOptions string) string {
	return fmt.Sprintf(`{
  "api_id": %q,
  "name": %q,
  "active": true,
  "use_keyless": %t,
  "auth": {"auth_header_name": "Authorization"},
  "proxy": {"listen_path": %q, "target_url": %q, "strip_listen_path": true},
  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default"}}},
  "cache_options": %s
}`, apiID, apiID, !keyed, listenPath, target, cacheOptions)
}

// scriptedUpstream answers as its query says: ?status=N, ?cache-set=1 adds
// x-tyk-cache-action-set, ?ttl=S adds x-tyk-cache-action-set-ttl,
// ?cache-control=V sends Cache-Control: V, ?etag=V sends Etag: V,
// ?set-cookie=NAME sends Set-Cookie: NAME=<the request's number>,
// ?ratelimit=1 sends X-RateLimit-* headers of its own, ?chunked=1 streams
// the body chunked and ?gzip=1 sends it gzip-compressed. Every answer
// carries a Proxy-Trace header and the count of requests so far in its
// body, so a replayed answer is told from a fresh one. Once GoDown is
// called it drops every connection without answering.
type scriptedUpstream struct {
	URL   string
	count atomic.Int64
	down  atomic.Bool
}

func startScriptedUpstream() *scriptedUpstream {
	GinkgoHelper()
	u := &scriptedUpstream{}
	u.URL = specs.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u.down.Load() {
			panic(http.ErrAbortHandler) // the connection is closed, no answer
		}
		n := u.count.Add(1)
		q := r.URL.Query()
		h := w.Header()
		h.Set("Proxy-Trace", "upstream")
		h.Set("Content-Type", "text/plain")
		if q.Get("cache-set") != "" {
			h.Set("X-Tyk-Cache-Action-Set", "1")
		}
		if ttl := q.Get("ttl"); ttl != "" {
			h.Set("X-Tyk-Cache-Action-Set-Ttl", ttl)
		}
		if cc := q.Get("cache-control"); cc != "" {
			h.Set("Cache-Control", cc)
		}
		if etag := q.Get("etag"); etag != "" {
			h.Set("Etag", etag)
		}
		if name := q.Get("set-cookie"); name != "" {
			h.Set("Set-Cookie", fmt.Sprintf("%s=%d", name, n))
		}
		if q.Get("ratelimit") != "" {
			h.Set("X-RateLimit-Limit", "999")
			h.Set("X-RateLimit-Remaining", "998")
			h.Set("X-RateLimit-Reset", "1234567890")
		}
		status := http.StatusOK
		if s := q.Get("status"); s != "" {
			status, _ = strconv.Atoi(s)
		}
		body := fmt.Sprintf("answer %d", n)
		if q.Get("gzip") != "" {
			h.Set("Content-Encoding", "gzip")
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			_, _ = zw.Write([]byte(body))
			_ = zw.Close()
			body = buf.String()
		}
		w.WriteHeader(status)
		if q.Get("chunked") != "" {
			// A flush before the end leaves no Content-Length: chunked.
			_, _ = io.WriteString(w, body[:1])
			_ = http.NewResponseController(w).Flush()
			body = body[1:]
		}
		_, _ = io.WriteString(w, body)
	}))
	return u
}

// GoDown makes the upstream drop every connection from now on.
func (u *scriptedUpstream) GoDown() { u.down.Store(true) }

// Requests is how many requests reached the upstream.
func (u *scriptedUpstream) Requests() int { return int(u.count.Load()) }

// cacheEntries lists the cache entries of apiID on every node.
func cacheEntries(ctx context.Context, env *specs.Env, apiID string) []string {
	GinkgoHelper()
	var mu sync.Mutex
	var keys []string
	Expect(env.Redis.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		found, err := node.Keys(ctx, "cache-"+apiID+"-*").Result()
		mu.Lock()
		keys = append(keys, found...)
		mu.Unlock()
		return err
	})).To(Succeed())
	return keys
}

func isCached(resp specs.Response) bool { return resp.Header.Get("X-Tyk-Cached-Response") == "1" }

var _ = Describe("Response cache", Label("cache"), func() {
	var (
		env      *specs.Env
		upstream *scriptedUpstream
	)

	// startWith serves one API "c" on /c/ forwarding to the scripted
	// upstream with the given cache_options.
	startWith := func(keyed bool, cacheOptions string) {
		GinkgoHelper()
		upstream = startScriptedUpstream()
		env = specs.NewEnv(specs.WithAPI(cachedAPI("c", "/c/", upstream.URL, keyed, cacheOptions)))
	}

	When("cache_all_safe_requests is on with a 60 second cache_timeout", func() {
		BeforeEach(func() {
			startWith(false, `{"enable_cache": true, "cache_timeout": 60, "cache_all_safe_requests": true}`)
		})

		It("proxies the first GET and marks nothing as cached", func() {
			resp := env.Get("/c/items?page=1")
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(resp.Body).To(Equal("answer 1"))
			Expect(isCached(resp)).To(BeFalse())
		})

		It("answers the same GET again from the cache with X-Tyk-Cached-Response: 1", func() {
			env.Get("/c/items?page=1")
			resp := env.Get("/c/items?page=1")
			Expect(isCached(resp)).To(BeTrue())
			Expect(resp.Body).To(Equal("answer 1"))
		})

		It("does not reach the upstream for a cached answer", func() {
			env.Get("/c/items?page=1")
			env.Get("/c/items?page=1")
			Expect(upstream.Requests()).To(Equal(1))
		})

		It("replays the upstream's status and end-to-end headers", func() {
			env.Get("/c/items")
			resp := env.Get("/c/items")
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(resp.Header.Get("Content-Type")).To(Equal("text/plain"))
		})

		It("does not replay hop-by-hop headers such as Proxy-*", func() {
			Expect(env.Get("/c/items").Header.Get("Proxy-Trace")).To(Equal("upstream"))
			Expect(env.Get("/c/items").Header.Get("Proxy-Trace")).To(BeEmpty())
		})

		It("keeps a separate entry per query string", func() {
			env.Get("/c/items?page=1")
			Expect(isCached(env.Get("/c/items?page=2"))).To(BeFalse())
		})

		It("keeps the entry in Redis under cache-<api_id>-, expiring after cache_timeout", func(ctx SpecContext) {
			env.Get("/c/items")
			entries := cacheEntries(ctx, env, "c")
			Expect(entries).To(HaveLen(1))
			Expect(env.Redis.TTL(ctx, entries[0]).Val()).To(Equal(60 * time.Second))
		}, SpecTimeout(5*time.Second))

		It("proxies again once cache_timeout has passed", func() {
			env.Get("/c/items")
			env.Clock.Advance(60 * time.Second)
			resp := env.Get("/c/items")
			Expect(isCached(resp)).To(BeFalse())
			Expect(resp.Body).To(Equal("answer 2"))
		})

		It("still answers from the cache just before cache_timeout", func() {
			env.Get("/c/items")
			env.Clock.Advance(59 * time.Second)
			Expect(isCached(env.Get("/c/items"))).To(BeTrue())
		})

		It("caches HEAD separately from GET", func() {
			env.Get("/c/items")
			Expect(isCached(env.Do(http.MethodHead, "/c/items", ""))).To(BeFalse())
		})

		It("never caches a POST", func() {
			env.Do(http.MethodPost, "/c/items", "{}")
			Expect(isCached(env.Do(http.MethodPost, "/c/items", "{}"))).To(BeFalse())
			Expect(upstream.Requests()).To(Equal(2))
		})

		It("keys entries by the connection's address when the caller is not a trusted proxy, whatever X-Real-IP it sends", func() {
			env.Get("/c/items", "X-Real-IP", "10.0.0.1")
			Expect(isCached(env.Get("/c/items", "X-Real-IP", "10.0.0.2"))).To(BeTrue())
		})

		// Tyk #2305: a 401 was cached although only 200 was configured.
		It("does not cache a 401 from the upstream", func() {
			env.Get("/c/items?status=401")
			Expect(isCached(env.Get("/c/items?status=401"))).To(BeFalse())
		})

		It("does not cache a 500 from the upstream", func() {
			env.Get("/c/items?status=500")
			resp := env.Get("/c/items?status=500")
			Expect(resp.StatusCode).To(Equal(http.StatusInternalServerError))
			Expect(isCached(resp)).To(BeFalse())
		})
	})

	When("the node holding an entry is down", specs.SimulatedOnly("kills a simulated node; the real tier kills a real master in its failover spec"), func() {
		It("proxies the request uncached instead of failing it", func(ctx SpecContext) {
			startWith(false, `{"enable_cache": true, "cache_all_safe_requests": true}`)
			env.Get("/c/items")
			entries := cacheEntries(ctx, env, "c")
			Expect(entries).To(HaveLen(1))
			node := env.Cluster.NodeForKey(entries[0])
			node.Kill()
			DeferCleanup(node.Restart)
			resp := env.Get("/c/items")
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(resp.Body).To(Equal("answer 2"))
			Expect(env.Logs()).To(ContainSubstring("response cache not used: store unavailable"))
		}, SpecTimeout(30*time.Second))
	})

	When("callers come through a trusted proxy (trusted_proxies) that names them in X-Real-IP", func() {
		BeforeEach(func() {
			upstream = startScriptedUpstream()
			env = specs.NewEnv(
				specs.WithConfig(`{"secret": "spec-secret", "trusted_proxies": ["127.0.0.1"]}`),
				specs.WithAPI(cachedAPI("c", "/c/", upstream.URL, false, `{"enable_cache": true, "cache_timeout": 60, "cache_all_safe_requests": true}`)),
			)
		})

		It("keys entries by client IP, so another caller of a keyless API is not answered from them", func() {
			env.Get("/c/items", "X-Real-IP", "10.0.0.1")
			Expect(isCached(env.Get("/c/items", "X-Real-IP", "10.0.0.2"))).To(BeFalse())
			Expect(isCached(env.Get("/c/items", "X-Real-IP", "10.0.0.1"))).To(BeTrue())
		})
	})

	When("cache_response_codes lists 200 and 404", func() {
		BeforeEach(func() {
			startWith(false, `{"enable_cache": true, "cache_all_safe_requests": true, "cache_response_codes": [200, 404]}`)
		})

		It("caches a 404", func() {
			env.Get("/c/items?status=404")
			resp := env.Get("/c/items?status=404")
			Expect(resp.StatusCode).To(Equal(http.StatusNotFound))
			Expect(isCached(resp)).To(BeTrue())
		})

		It("does not cache a 401", func() {
			env.Get("/c/items?status=401")
			Expect(isCached(env.Get("/c/items?status=401"))).To(BeFalse())
		})
	})

	When("cache_by_headers lists Accept-Language", func() {
		BeforeEach(func() {
			startWith(false, `{"enable_cache": true, "cache_all_safe_requests": true, "cache_by_headers": ["accept-language"]}`)
		})

		It("keeps a separate entry per value of the header", func() {
			env.Get("/c/items", "Accept-Language", "en")
			Expect(isCached(env.Get("/c/items", "Accept-Language", "de"))).To(BeFalse())
		})

		It("answers from the cache when the value is the same", func() {
			env.Get("/c/items", "Accept-Language", "en")
			Expect(isCached(env.Get("/c/items", "Accept-Language", "en"))).To(BeTrue())
		})
	})

	When("only extended_paths.cache paths are cached", func() {
		BeforeEach(func() {
			upstream = startScriptedUpstream()
			env = specs.NewEnv(specs.WithAPI(fmt.Sprintf(`{
  "api_id": "c", "name": "c", "active": true, "use_keyless": true,
  "proxy": {"listen_path": "/c/", "target_url": %q, "strip_listen_path": true},
  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default",
    "use_extended_paths": true, "extended_paths": {"cache": ["^/static/"]}}}},
  "cache_options": {"enable_cache": true}
}`, upstream.URL)))
		})

		It("caches a listed path", func() {
			env.Get("/c/static/logo")
			Expect(isCached(env.Get("/c/static/logo"))).To(BeTrue())
		})

		It("does not cache a path that is not listed", func() {
			env.Get("/c/items")
			Expect(isCached(env.Get("/c/items"))).To(BeFalse())
		})
	})

	When("enable_upstream_cache_control is on", func() {
		BeforeEach(func() {
			startWith(false, `{"enable_cache": true, "cache_timeout": 60, "cache_all_safe_requests": true, "enable_upstream_cache_control": true}`)
		})

		It("does not cache a response without x-tyk-cache-action-set", func() {
			env.Get("/c/items")
			Expect(isCached(env.Get("/c/items"))).To(BeFalse())
		})

		It("caches a response with x-tyk-cache-action-set", func() {
			env.Get("/c/items?cache-set=1")
			Expect(isCached(env.Get("/c/items?cache-set=1"))).To(BeTrue())
		})

		It("keeps it for the seconds in x-tyk-cache-action-set-ttl", func(ctx SpecContext) {
			env.Get("/c/items?cache-set=1&ttl=5")
			entries := cacheEntries(ctx, env, "c")
			Expect(entries).To(HaveLen(1))
			Expect(env.Redis.TTL(ctx, entries[0]).Val()).To(Equal(5 * time.Second))
		}, SpecTimeout(5*time.Second))

		It("proxies again once that TTL has passed", func() {
			env.Get("/c/items?cache-set=1&ttl=5")
			env.Clock.Advance(5 * time.Second)
			Expect(isCached(env.Get("/c/items?cache-set=1&ttl=5"))).To(BeFalse())
		})
	})

	When("the API needs a key", func() {
		BeforeEach(func() {
			startWith(true, `{"enable_cache": true, "cache_all_safe_requests": true}`)
		})

		It("answers a key from its own entry", func() {
			key := env.IssueKey(grantTo("c"))
			env.Get("/c/items", "Authorization", key)
			Expect(isCached(env.Get("/c/items", "Authorization", key))).To(BeTrue())
		})

		It("never answers one key from another key's entry", func() {
			first, second := env.IssueKey(grantTo("c")), env.IssueKey(grantTo("c"))
			env.Get("/c/items", "Authorization", first)
			resp := env.Get("/c/items", "Authorization", second)
			Expect(isCached(resp)).To(BeFalse())
			Expect(resp.Body).To(Equal("answer 2"))
		})

		It("refuses a deleted key instead of answering it from the cache", func() {
			key := env.IssueKey(grantTo("c"))
			env.Get("/c/items", "Authorization", key)
			Expect(env.Control(env.Instance, http.MethodDelete, "/tyk/keys/"+key, "").StatusCode).To(Equal(http.StatusOK))
			resp := env.Get("/c/items", "Authorization", key)
			Expect(resp.StatusCode).NotTo(Equal(http.StatusOK))
			Expect(isCached(resp)).To(BeFalse())
		})

		// Tyk #2293: a revoked key's cached responses stayed reachable.
		It("does not answer a key deleted and created again from the old key's entries", func() {
			key := env.SetKey("cache-key-1", grantTo("c"))
			env.Get("/c/items", "Authorization", key)
			Expect(env.Control(env.Instance, http.MethodDelete, "/tyk/keys/"+key, "").StatusCode).To(Equal(http.StatusOK))
			env.Clock.Advance(time.Second)
			Expect(env.SetKey("cache-key-1", grantTo("c"))).To(Equal(key))
			resp := env.Get("/c/items", "Authorization", key)
			Expect(isCached(resp)).To(BeFalse())
			Expect(resp.Body).To(Equal("answer 2"))
		})

		It("still refuses a rate-limited key with 429 on a cached path", func() {
			key := env.IssueKey(grantTo("c", `"rate": 2, "per": 60`))
			env.Get("/c/items", "Authorization", key)
			Expect(isCached(env.Get("/c/items", "Authorization", key))).To(BeTrue())
			Expect(env.Get("/c/items", "Authorization", key).StatusCode).To(Equal(http.StatusTooManyRequests))
		})

		It("reports fresh rate-limit counters on a cached answer", func() {
			key := env.IssueKey(grantTo("c", `"rate": 5, "per": 60`))
			env.Get("/c/items", "Authorization", key)
			Expect(env.Get("/c/items", "Authorization", key).Header.Get("X-RateLimit-Remaining")).To(Equal("3"))
		})
	})

	When("the control API is asked to purge an API's cache", func() {
		BeforeEach(func() {
			startWith(false, `{"enable_cache": true, "cache_all_safe_requests": true}`)
		})

		It("deletes every entry of the API on every node with DELETE /tyk/cache/{api_id}", func(ctx SpecContext) {
			for i := range 20 {
				env.Get(fmt.Sprintf("/c/items/%d", i))
			}
			Expect(cacheEntries(ctx, env, "c")).To(HaveLen(20))
			resp := env.Control(env.Instance, http.MethodDelete, "/tyk/cache/c", "")
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(resp.JSON()).To(HaveKeyWithValue("action", "deleted"))
			Expect(cacheEntries(ctx, env, "c")).To(BeEmpty())
		}, SpecTimeout(10*time.Second))

		It("proxies the next request after a purge", func() {
			env.Get("/c/items")
			env.Control(env.Instance, http.MethodDelete, "/tyk/cache/c", "")
			Expect(isCached(env.Get("/c/items"))).To(BeFalse())
		})

		It("refuses other methods with 405", func() {
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/cache/c", "").StatusCode).To(Equal(http.StatusMethodNotAllowed))
		})
	})
})
