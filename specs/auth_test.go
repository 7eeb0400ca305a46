package specs_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/gateway/event"
	"github.com/tollgate/tollgate/gateway/session"
	"github.com/tollgate/tollgate/specs"
)

// subscribeToKeyExpired collects the KeyExpired events the gateway fires.
func subscribeToKeyExpired(inst *specs.Instance) chan event.Event {
	GinkgoHelper()
	events := make(chan event.Event, 16)
	cancel := inst.Gateway.Events().Subscribe(func(e event.Event) {
		if e.Type == event.KeyExpired {
			events <- e
		}
	})
	DeferCleanup(cancel)
	return events
}

var _ = Describe("Key authentication", Label("auth"), func() {
	var env *specs.Env

	BeforeEach(func() {
		env = specs.NewEnv(specs.WithAPI(keyedAPI("orders", "/orders/")))
	})

	When("the request carries no key", func() {
		It("answers 401 Authorization field missing", func() {
			expectGatewayError(env.Get("/orders/"), http.StatusUnauthorized, chain.CauseKeyMissing, "Authorization field missing")
		})

		It("does not reach the upstream", func() {
			env.Get("/orders/")
			Expect(env.Upstream.Requests()).To(BeEmpty())
		})
	})

	When("the key is unknown", func() {
		It("answers 403 Access to this API has been disallowed", func() {
			expectGatewayError(env.Get("/orders/", "Authorization", "no-such-key"), http.StatusForbidden, chain.CauseKeyNotAuthorised, "Access to this API has been disallowed")
		})
	})

	When("the key's session grants this API", func() {
		var key string
		BeforeEach(func() { key = env.IssueKey(grantTo("orders")) })

		It("forwards the request", func() {
			Expect(env.Get("/orders/list", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
			Expect(env.Upstream.LastRequest().Path).To(Equal("/list"))
		})

		It("accepts the key with a Bearer prefix", func() {
			Expect(env.Get("/orders/", "Authorization", "Bearer "+key).StatusCode).To(Equal(http.StatusOK))
		})
	})

	When("the key's session grants only another API", func() {
		It("answers 403 Access to this API has been disallowed", func() {
			key := env.IssueKey(grantTo("billing"))
			expectGatewayError(env.Get("/orders/", "Authorization", key), http.StatusForbidden, chain.CauseKeyNotAuthorised, "Access to this API has been disallowed")
		})
	})

	When("the key's session has no access rights at all", func() {
		It("answers 403, because allow_master_keys is off", func() {
			key := env.SetKey("key-without-rights", `{"org_id": "org1"}`)
			expectGatewayError(env.Get("/orders/", "Authorization", key), http.StatusForbidden, chain.CauseKeyNotAuthorised, "Access to this API has been disallowed")
		})

		It(`cannot be made by POST /tyk/keys/create: 400, as Tyk answers (mirrors Tyk TestKeyHandler "Create key": "Master keys should be disabled by default")`, func() {
			resp := env.Control(env.Instance, http.MethodPost, "/tyk/keys/create", `{"org_id": "org1"}`)
			Expect(resp.StatusCode).To(Equal(http.StatusBadRequest))
			Expect(resp.JSON()).To(HaveKeyWithValue("message", "Failed to create key, keys must have at least one Access Rights record set."))
		})
	})

	When("the key is inactive", func() {
		var (
			key    string
			events chan event.Event
		)
		BeforeEach(func() {
			events = subscribeToKeyExpired(env.Instance)
			key = env.IssueKey(grantTo("orders", `"is_inactive": true`))
		})

		It("answers 403 Key is inactive, please renew", func() {
			expectGatewayError(env.Get("/orders/", "Authorization", key), http.StatusForbidden, chain.CauseKeyInactive, "Key is inactive, please renew")
		})

		It("fires a KeyExpired event saying the key is inactive", func(ctx SpecContext) {
			env.Get("/orders/", "Authorization", key)
			Eventually(events).WithContext(ctx).Should(Receive(HaveField("Meta", HaveField("Message", "Attempted access from inactive key."))))
		}, SpecTimeout(5*time.Second))
	})

	When("the key's expires is in the past", func() {
		var (
			key    string
			events chan event.Event
		)
		BeforeEach(func() {
			events = subscribeToKeyExpired(env.Instance)
			key = issueExpiredKey(env, func(expires string) string { return grantTo("orders", expires) })
		})

		It("answers 401 Key has expired, please renew", func() {
			expectGatewayError(env.Get("/orders/items", "Authorization", key), http.StatusUnauthorized, chain.CauseKeyExpired, "Key has expired, please renew")
		})

		It("fires a KeyExpired event with the message, path, origin and key", func(ctx SpecContext) {
			env.Get("/orders/items", "Authorization", key)
			var e event.Event
			Eventually(events).WithContext(ctx).Should(Receive(&e))
			Expect(e.APIID).To(Equal("orders"))
			Expect(e.Meta).To(Equal(event.KeyFailureMeta{
				Message:            "Attempted access from expired key.",
				Path:               "/orders/items",
				Origin:             "127.0.0.1",
				Key:                key,
				OriginatingRequest: e.Meta.(event.KeyFailureMeta).OriginatingRequest,
			}))
			Expect(e.Meta.(event.KeyFailureMeta).OriginatingRequest).NotTo(BeEmpty())
		}, SpecTimeout(5*time.Second))
	})

	When("the key's expires passes while it is in use", func() {
		It("is accepted before and refused after, by the gateway's clock", func() {
			key := env.IssueKey(grantTo("orders", fmt.Sprintf(`"expires": %d`, env.Clock.Now().Add(time.Hour).Unix())))
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
			env.Clock.Advance(time.Hour + time.Second)
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusUnauthorized))
		})
	})

	When("keys land on every node of the cluster", func() {
		It("accepts each of them", func(ctx SpecContext) {
			onNode := map[string]string{} // master address → a key stored there
			for len(onNode) < len(env.Masters(ctx)) {
				key := env.IssueKey(grantTo("orders"))
				onNode[env.OwnerOf(ctx, session.RedisKey(key))] = key
			}
			for node, key := range onNode {
				Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK), "key stored on %s", node)
			}
		}, SpecTimeout(10*time.Second))
	})

	When("the node holding a key's session is down", specs.SimulatedOnly("kills a simulated node; the real tier's failover spec kills a real one"), func() {
		var keyOnDeadNode, keyElsewhere string
		BeforeEach(func() {
			// Without the local session cache, so every request reads its
			// session from its node (a cached session keeps working while its
			// node is down, for cached_session_timeout).
			env = specs.NewEnv(specs.WithConfig(`{"secret": "s", "local_session_cache": {"disable_cached_session_state": true}}`),
				specs.WithAPI(keyedAPI("orders", "/orders/")))
			keyOnDeadNode, keyElsewhere = "", ""
			dead := env.Cluster.Node(0)
			for keyOnDeadNode == "" || keyElsewhere == "" {
				key := env.IssueKey(grantTo("orders"))
				if env.Cluster.NodeForKey(session.RedisKey(key)) == dead {
					keyOnDeadNode = key
				} else {
					keyElsewhere = key
				}
			}
			dead.Kill()
			DeferCleanup(dead.Restart)
		})

		It("answers 503 for that key, promptly", func(ctx SpecContext) {
			expectGatewayError(env.Get("/orders/", "Authorization", keyOnDeadNode), http.StatusServiceUnavailable, chain.CauseStorageUnavailable, "The key store is unavailable, please retry")
		}, SpecTimeout(10*time.Second))

		It("keeps serving keys stored on the other nodes", func() {
			Expect(env.Get("/orders/", "Authorization", keyElsewhere).StatusCode).To(Equal(http.StatusOK))
		})

		It("serves the key again once the node is back", func(ctx SpecContext) {
			Expect(env.Cluster.Node(0).Restart()).To(Succeed())
			Eventually(func() int {
				return env.Get("/orders/", "Authorization", keyOnDeadNode).StatusCode
			}).WithContext(ctx).Should(Equal(http.StatusOK))
		}, SpecTimeout(10*time.Second))
	})
})

var _ = Describe("Where the key is read from", Label("auth"), func() {
	var env *specs.Env

	When("auth.use_param is on", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithAPI(`{"api_id": "p", "active": true,
  "auth": {"auth_header_name": "x-key", "use_param": true, "param_name": "api_key"},
  "proxy": {"listen_path": "/p/", "target_url": "{{upstream}}"}}`))
		})

		It("accepts the key from the query parameter", func() {
			key := env.IssueKey(grantTo("p"))
			Expect(env.Get("/p/?api_key=" + key).StatusCode).To(Equal(http.StatusOK))
		})

		It("still accepts the key from the header", func() {
			key := env.IssueKey(grantTo("p"))
			Expect(env.Get("/p/", "x-key", key).StatusCode).To(Equal(http.StatusOK))
		})
	})

	When("auth.use_cookie is on", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithAPI(`{"api_id": "c", "active": true,
  "auth": {"use_cookie": true, "cookie_name": "session"},
  "proxy": {"listen_path": "/c/", "target_url": "{{upstream}}"}}`))
		})

		It("accepts the key from the cookie", func() {
			key := env.IssueKey(grantTo("c"))
			Expect(env.Get("/c/", "Cookie", "session="+key).StatusCode).To(Equal(http.StatusOK))
		})
	})
})

// Tyk's AccessRightsCheck (gateway/mw_access_rights.go).
var _ = Describe("Access rights on a versioned API", Label("auth", "version"), func() {
	var env *specs.Env

	BeforeEach(func() {
		env = specs.NewEnv(specs.WithAPI(`{
  "api_id": "versioned", "name": "versioned", "active": true, "use_keyless": false,
  "auth": {"auth_header_name": "Authorization"},
  "definition": {"location": "header", "key": "x-api-version"},
  "proxy": {"listen_path": "/versioned/", "target_url": "{{upstream}}", "strip_listen_path": true},
  "version_data": {"not_versioned": false, "versions": {"v1": {"name": "v1"}, "v2": {"name": "v2"}}}
}`))
	})

	It("lets a key through to a version its access right lists", func() {
		key := env.IssueKey(grantVersion("versioned", "v1"))
		Expect(env.Get("/versioned/", "Authorization", key, "x-api-version", "v1").StatusCode).To(Equal(http.StatusOK))
	})

	It("refuses a version the access right does not list with 403", func() {
		key := env.IssueKey(grantVersion("versioned", "v1"))
		expectGatewayError(env.Get("/versioned/", "Authorization", key, "x-api-version", "v2"), http.StatusForbidden, chain.CauseKeyNotAuthorised, "Access to this API has been disallowed")
	})

	It("refuses every version to an access right with an empty versions list, as Tyk does", func() {
		key := env.IssueKey(grantTo("versioned"))
		expectGatewayError(env.Get("/versioned/", "Authorization", key, "x-api-version", "v1"), http.StatusForbidden, chain.CauseKeyNotAuthorised, "Access to this API has been disallowed")
	})
})

var _ = Describe("Stored keys", Label("auth"), func() {
	var env *specs.Env

	When("hash_keys is on", func() {
		var key string
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithConfig(`{"secret": "s", "hash_keys": true, "hash_key_function": "murmur64"}`), specs.WithAPI(keyedAPI("orders", "/orders/")))
			key = env.IssueKey(grantTo("orders"))
		})

		It("stores the session under the key's murmur3 hash", func(ctx SpecContext) {
			Expect(env.Redis.Exists(ctx, "apikey-"+session.Hash(key)).Val()).To(Equal(int64(1)))
		}, SpecTimeout(5*time.Second))

		It("does not store the key itself", func(ctx SpecContext) {
			Expect(env.Redis.Exists(ctx, "apikey-"+key).Val()).To(BeZero())
		}, SpecTimeout(5*time.Second))

		It("accepts the key", func() {
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
		})
	})

	When("a key is deleted through the control API while cached", func() {
		It("is refused at once", func() {
			env = specs.NewEnv(specs.WithAPI(keyedAPI("orders", "/orders/")))
			key := env.IssueKey(grantTo("orders"))
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
			Expect(env.Control(env.Instance, http.MethodDelete, "/tyk/keys/"+key, "").StatusCode).To(Equal(http.StatusOK))
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusForbidden))
		})
	})

	When("a session is changed in Redis behind the gateway's back", func() {
		var key string
		// makeInactive rewrites the stored session directly, as another
		// tool sharing the cluster would.
		makeInactive := func(ctx context.Context) {
			Expect(env.Redis.Set(ctx, session.RedisKey(key), grantTo("orders", `"is_inactive": true`), 0).Err()).To(Succeed())
		}

		It("serves the cached session until cached_session_timeout passes", func(ctx SpecContext) {
			env = specs.NewEnv(specs.WithConfig(`{"secret": "s", "local_session_cache": {"cached_session_timeout": 10}}`), specs.WithAPI(keyedAPI("orders", "/orders/")))
			key = env.IssueKey(grantTo("orders"))
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
			makeInactive(ctx)
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
			env.Clock.Advance(10 * time.Second)
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusForbidden))
		}, SpecTimeout(10*time.Second))

		It("sees the change at once when the cache is disabled", func(ctx SpecContext) {
			env = specs.NewEnv(specs.WithConfig(`{"secret": "s", "local_session_cache": {"disable_cached_session_state": true}}`), specs.WithAPI(keyedAPI("orders", "/orders/")))
			key = env.IssueKey(grantTo("orders"))
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
			makeInactive(ctx)
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusForbidden))
		}, SpecTimeout(10*time.Second))
	})
})
