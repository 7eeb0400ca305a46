package specs_test

import (
	"fmt"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/event"
	"github.com/tollgate/tollgate/gateway/limit"
	"github.com/tollgate/tollgate/specs"
)

// subscribeTo collects the events of one type the gateway fires.
func subscribeTo(inst *specs.Instance, name event.Name) chan event.Event {
	GinkgoHelper()
	events := make(chan event.Event, 16)
	cancel := inst.Gateway.Events().Subscribe(func(e event.Event) {
		if e.Type == name {
			select {
			case events <- e:
			default:
			}
		}
	})
	DeferCleanup(cancel)
	return events
}

var _ = Describe("Key lifecycle, as Tyk's tests describe it", Label("auth", "tyk-mirror"), func() {
	var env *specs.Env

	When("a key with a quota is deleted", func() {
		It(`leaves no quota behind, so a key created again under its name starts afresh (mirrors Tyk TestKeyHandler_DeleteKeyWithQuota "Reset quota")`, func(ctx SpecContext) {
			env = specs.NewEnv(specs.WithAPI(keyedAPI("orders", "/orders/")))
			key := env.SetKey("reborn-key", grantTo("orders", `"quota_max": 1, "quota_renewal_rate": 3600`))
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
			Expect(env.Redis.Exists(ctx, limit.QuotaKey(key)).Val()).To(BeEquivalentTo(1))
			Expect(env.Control(env.Instance, http.MethodDelete, "/tyk/keys/"+key, "").StatusCode).To(Equal(http.StatusOK))
			Expect(env.Redis.Exists(ctx, limit.QuotaKey(key)).Val()).To(BeZero())
		}, SpecTimeout(10*time.Second))
	})

	When("min_token_length is 32", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithConfig(`{"secret": "spec-secret", "min_token_length": 32}`), specs.WithAPI(keyedAPI("orders", "/orders/")))
		})

		It(`refuses a custom key of 31 characters with 400 (mirrors Tyk TestKeyHandler_RejectCustomKeyBelowMinTokenLength "below_min_token_length_rejected")`, func() {
			resp := env.Control(env.Instance, http.MethodPost, "/tyk/keys/shortid12345678901234567890123", grantTo("orders"))
			Expect(resp.StatusCode).To(Equal(http.StatusBadRequest))
			Expect(resp.JSON()["message"]).To(ContainSubstring("less than min_token_length (32)"))
		})

		It(`accepts one of 32 (mirrors "equal_to_min_token_length_accepted")`, func() {
			Expect(env.Control(env.Instance, http.MethodPost, "/tyk/keys/apigeecustomkey0123456789abcdefg", grantTo("orders")).StatusCode).To(Equal(http.StatusOK))
		})
	})

	When("min_token_length is unset", func() {
		BeforeEach(func() { env = specs.NewEnv(specs.WithAPI(keyedAPI("orders", "/orders/"))) })

		It(`refuses a custom key of 2 characters (mirrors Tyk TestKeyHandler_DefaultMinTokenLengthFloorOnCreate "below_default_floor_rejected")`, func() {
			Expect(env.Control(env.Instance, http.MethodPost, "/tyk/keys/ab", grantTo("orders")).StatusCode).To(Equal(http.StatusBadRequest))
		})

		It(`accepts one of 3 (mirrors "equal_to_default_floor_accepted")`, func() {
			Expect(env.Control(env.Instance, http.MethodPost, "/tyk/keys/abc", grantTo("orders")).StatusCode).To(Equal(http.StatusOK))
		})
	})

	When("a key's expires is reached", func() {
		It("is refused from the instant after it, not a second later, as Tyk's KeyExpired compares", func() {
			env = specs.NewEnv(specs.WithAPI(keyedAPI("orders", "/orders/")))
			key := env.IssueKey(grantTo("orders", fmt.Sprintf(`"expires": %d`, env.Clock.Now().Add(10*time.Second).Unix())))
			env.Clock.Advance(10*time.Second + 500*time.Millisecond)
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusUnauthorized))
		})
	})

	When("a key is created with an expires already past", func() {
		It("drops it, as Tyk does, so the key does not expire", func() {
			env = specs.NewEnv(specs.WithAPI(keyedAPI("orders", "/orders/")))
			key := env.IssueKey(grantTo("orders", fmt.Sprintf(`"expires": %d`, env.Clock.Now().Add(-time.Hour).Unix())))
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
		})
	})

	When("a key goes over its quota", func() {
		It("fires QuotaExceeded with the key and Tyk's message, through the same handlers as KeyExpired", func(ctx SpecContext) {
			env = specs.NewEnv(specs.WithAPI(keyedAPI("orders", "/orders/")))
			events := subscribeTo(env.Instance, event.QuotaExceeded)
			key := env.IssueKey(grantTo("orders", `"quota_max": 1, "quota_renewal_rate": 3600`))
			env.Get("/orders/", "Authorization", key)
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusForbidden))
			var e event.Event
			Eventually(events).WithContext(ctx).Should(Receive(&e))
			Expect(e.Meta).To(HaveField("Key", key))
			Expect(e.Meta).To(HaveField("Message", "Key Quota Limit Exceeded"))
		}, SpecTimeout(10*time.Second))
	})

	When("a key goes over its rate limit", func() {
		It("fires RateLimitExceeded with the key", func(ctx SpecContext) {
			env = specs.NewEnv(specs.WithAPI(keyedAPI("orders", "/orders/")))
			events := subscribeTo(env.Instance, event.RateLimitExceeded)
			key := env.IssueKey(grantTo("orders", `"rate": 1, "per": 60`))
			env.Get("/orders/", "Authorization", key)
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusTooManyRequests))
			var e event.Event
			Eventually(events).WithContext(ctx).Should(Receive(&e))
			Expect(e.Meta).To(HaveField("Key", key))
		}, SpecTimeout(10*time.Second))
	})
})

var _ = Describe("Session lifetime from the API definition", Label("auth", "tyk-mirror"), func() {
	var env *specs.Env

	lifetimeAPI := func(respects bool) string {
		return fmt.Sprintf(`{"api_id": "short", "name": "short", "active": true, "use_keyless": false,
  "auth": {"auth_header_name": "Authorization"}, "session_lifetime": 60, "session_lifetime_respects_key_expiration": %t,
  "proxy": {"listen_path": "/short/", "target_url": "{{upstream}}", "strip_listen_path": true},
  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default"}}}}`, respects)
	}

	It(`gives a key's session the API's session_lifetime as its TTL (mirrors Tyk TestSessionLifetimeRespectsKeyExpiration "override session lifetime with api level")`, func(ctx SpecContext) {
		env = specs.NewEnv(specs.WithAPI(lifetimeAPI(false)))
		key := env.IssueKey(grantTo("short", fmt.Sprintf(`"expires": %d`, env.Clock.Now().Add(time.Hour).Unix())))
		Expect(env.Redis.TTL(ctx, "apikey-"+key).Val()).To(Equal(60 * time.Second))
	}, SpecTimeout(10*time.Second))

	It(`keeps it until the key expires when the API respects key expiration (mirrors "respect key expiration")`, func(ctx SpecContext) {
		env = specs.NewEnv(specs.WithAPI(lifetimeAPI(true)))
		key := env.IssueKey(grantTo("short", fmt.Sprintf(`"expires": %d`, env.Clock.Now().Add(time.Hour).Unix())))
		Expect(env.Redis.TTL(ctx, "apikey-"+key).Val()).To(Equal(time.Hour))
	}, SpecTimeout(10*time.Second))
})
