package specs_test

import (
	"fmt"
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/specs"
)

// orgAPI is keyedAPI belonging to the org orgID.
func orgAPI(apiID, listenPath, orgID string) string {
	return fmt.Sprintf(`{
  "api_id": %q, "name": %q, "org_id": %q, "active": true, "use_keyless": false,
  "auth": {"auth_header_name": "Authorization"},
  "proxy": {"listen_path": %q, "target_url": "{{upstream}}", "strip_listen_path": true},
  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default"}}}
}`, apiID, apiID, orgID, listenPath)
}

// grantOfOrg is a session (JSON) of orgID granting access to apiID.
func grantOfOrg(orgID, apiID string, extra ...string) string {
	fields := ""
	for _, e := range extra {
		fields += ", " + e
	}
	return fmt.Sprintf(`{"access_rights": {%q: {"api_id": %q, "api_name": %q, "versions": []}}, "org_id": %q%s}`, apiID, apiID, apiID, orgID, fields)
}

// Tyk 5.14's POST /tyk/keys/{name} (gateway/api.go handleAddOrUpdate)
// creates the key generateToken(session org_id, name): with
// hash_key_function "" (Tyk's default) org_id + name, with one the base64
// token {"org","id","h"}. GET, PUT and DELETE find it from its bare name by
// trying that token first (DefaultSessionManager.SessionDetail), for the
// org of ?api_id's API or ?org_id (GET), the body's org_id (PUT) or
// ?org_id (DELETE). Keys are therefore where a Tyk gateway sharing the
// store looks for them, and the other way round.
var _ = Describe("Custom keys, stored as Tyk stores them", Label("control", "auth", "tyk-mirror"), func() {
	var env *specs.Env

	When("hash_keys is off and hash_key_function is Tyk's default, \"\"", func() {
		const name, token = "my-custom-key", "org1my-custom-key"
		var created specs.Response

		BeforeEach(func() {
			env = specs.NewEnv(specs.WithAPI(orgAPI("orders", "/orders/", "org1")))
			created = env.Control(env.Instance, http.MethodPost, "/tyk/keys/"+name, grantOfOrg("org1", "orders"))
			Expect(created.StatusCode).To(Equal(http.StatusOK), created.Body)
		})

		It(`answers the key as the session's org_id + the name, with no key_hash (mirrors Tyk TestKeyHandler_HashingDisabled "create key with custom key ID")`, func() {
			Expect(created.JSON()).To(And(HaveKeyWithValue("key", token), HaveKeyWithValue("action", "added"), Not(HaveKey("key_hash"))))
		})

		It("stores the session at apikey-<org_id + name>, where a Tyk gateway on the same Redis looks for it, and not under the bare name", func(ctx SpecContext) {
			Expect(env.Redis.Exists(ctx, "apikey-"+token).Val()).To(BeEquivalentTo(1))
			Expect(env.Redis.Exists(ctx, "apikey-"+name).Val()).To(BeZero())
		})

		It("lets a client authenticate with the key answered", func() {
			Expect(env.Get("/orders/", "Authorization", token).StatusCode).To(Equal(http.StatusOK))
		})

		It("lets a client authenticate with the bare name at an API of the key's org, as Tyk tries the org's token of a key first", func() {
			Expect(env.Get("/orders/", "Authorization", name).StatusCode).To(Equal(http.StatusOK))
		})

		It(`GET finds it by the key answered (mirrors "get one key by generated token")`, func() {
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/keys/"+token, "").StatusCode).To(Equal(http.StatusOK))
		})

		It(`GET finds it by the bare name with ?api_id of an API of its org, or with ?org_id (mirrors TestHashKeyHandler "get one key by key name (API specified)")`, func() {
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/keys/"+name+"?api_id=orders", "").StatusCode).To(Equal(http.StatusOK))
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/keys/"+name+"?org_id=org1", "").StatusCode).To(Equal(http.StatusOK))
		})

		It("GET does not find it by the bare name with neither: Tyk then looks for the name as given", func() {
			resp := env.Control(env.Instance, http.MethodGet, "/tyk/keys/"+name, "")
			Expect(resp.StatusCode).To(Equal(http.StatusNotFound))
			Expect(resp.JSON()).To(HaveKeyWithValue("message", "Key not found"))
		})

		It(`PUT by the bare name changes the stored key, answers its full key, and leaves one key, not two (mirrors Tyk TestKeyHandler_CheckKeysNotDuplicateOnUpdate "short,custom,notHashed")`, func() {
			resp := env.Control(env.Instance, http.MethodPut, "/tyk/keys/"+name, grantOfOrg("org1", "orders", `"is_inactive": true`))
			Expect(resp.StatusCode).To(Equal(http.StatusOK), resp.Body)
			Expect(resp.JSON()).To(And(HaveKeyWithValue("key", token), HaveKeyWithValue("action", "modified")))
			Expect(env.Get("/orders/", "Authorization", token).StatusCode).To(Equal(http.StatusForbidden))
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/keys", "").JSON()["keys"]).To(ConsistOf(token))
		})

		It(`PUT answers 404 "Key is not found" for a name stored for no org the body names`, func() {
			resp := env.Control(env.Instance, http.MethodPut, "/tyk/keys/"+name, grantOfOrg("org2", "orders"))
			Expect(resp.StatusCode).To(Equal(http.StatusNotFound))
			Expect(resp.JSON()).To(HaveKeyWithValue("message", "Key is not found"))
		})

		It("DELETE by the bare name with ?org_id removes it and answers its full key", func() {
			resp := env.Control(env.Instance, http.MethodDelete, "/tyk/keys/"+name+"?org_id=org1", "")
			Expect(resp.StatusCode).To(Equal(http.StatusOK), resp.Body)
			Expect(resp.JSON()).To(And(HaveKeyWithValue("key", token), HaveKeyWithValue("action", "deleted")))
			expectGatewayError(env.Get("/orders/", "Authorization", token), http.StatusForbidden, chain.CauseKeyNotAuthorised, "Access to this API has been disallowed")
		})

		It(`DELETE by the bare name without ?org_id answers 404 "There is no such key found", and the key stays`, func() {
			resp := env.Control(env.Instance, http.MethodDelete, "/tyk/keys/"+name, "")
			Expect(resp.StatusCode).To(Equal(http.StatusNotFound))
			Expect(resp.JSON()).To(HaveKeyWithValue("message", "There is no such key found"))
			Expect(env.Get("/orders/", "Authorization", token).StatusCode).To(Equal(http.StatusOK))
		})

		It(`GET by hash answers 400: there is no hash (mirrors "get one key by hash value with specifying hashed=true")`, func() {
			resp := env.Control(env.Instance, http.MethodGet, "/tyk/keys/"+token+"?hashed=true&api_id=orders", "")
			Expect(resp.StatusCode).To(Equal(http.StatusBadRequest))
			Expect(resp.JSON()).To(HaveKeyWithValue("message", "Key requested by hash but key hashing is not enabled"))
		})

		It(`DELETE with ?hashed=true removes the key named as stored, which is the key itself (mirrors "delete one key by hash value with specifying hashed=true")`, func() {
			Expect(env.Control(env.Instance, http.MethodDelete, "/tyk/keys/"+token+"?hashed=true&api_id=orders", "").StatusCode).To(Equal(http.StatusOK))
			Expect(env.Get("/orders/", "Authorization", token).StatusCode).To(Equal(http.StatusForbidden))
		})

		It("GET /tyk/keys lists the key as stored", func() {
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/keys", "").JSON()["keys"]).To(ConsistOf(token))
		})
	})

	When("the API has no org_id and the key's session has one", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithAPI(keyedAPI("orders", "/orders/")))
		})

		It("accepts the key answered, org_id + name", func() {
			key := env.SetKey("my-custom-key", grantOfOrg("org1", "orders"))
			Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
		})

		It("refuses the bare name: Tyk tries the token of the API's org, none, and the name as given", func() {
			env.SetKey("my-custom-key", grantOfOrg("org1", "orders"))
			expectGatewayError(env.Get("/orders/", "Authorization", "my-custom-key"), http.StatusForbidden, chain.CauseKeyNotAuthorised, "Access to this API has been disallowed")
		})
	})

	When("the key's session has no org_id", func() {
		It("is the bare name with hash_key_function \"\": Tyk's legacy key is org_id + name, and org_id is empty", func() {
			env = specs.NewEnv(specs.WithAPI(keyedAPI("orders", "/orders/")))
			Expect(env.SetKey("my-custom-key", grantOfOrg("", "orders"))).To(Equal("my-custom-key"))
			Expect(env.Get("/orders/", "Authorization", "my-custom-key").StatusCode).To(Equal(http.StatusOK))
		})

		When("hash_key_function is murmur64", func() {
			// base64 of {"org":"","id":"my-custom-key","h":"murmur64"}
			const token = "eyJvcmciOiIiLCJpZCI6Im15LWN1c3RvbS1rZXkiLCJoIjoibXVybXVyNjQifQ=="

			BeforeEach(func() {
				env = specs.NewEnv(specs.WithConfig(`{"secret": "spec-secret", "hash_key_function": "murmur64"}`), specs.WithAPI(keyedAPI("orders", "/orders/")))
			})

			It("is the token of the empty org and the name", func() {
				Expect(env.SetKey("my-custom-key", grantOfOrg("", "orders"))).To(Equal(token))
				Expect(env.Get("/orders/", "Authorization", token).StatusCode).To(Equal(http.StatusOK))
			})

			It("refuses the bare name at an API of no org, as Tyk does: the name belongs to that org, so it is looked for only as given", func() {
				env.SetKey("my-custom-key", grantOfOrg("", "orders"))
				Expect(env.Get("/orders/", "Authorization", "my-custom-key").StatusCode).To(Equal(http.StatusForbidden))
			})
		})
	})

	When("hash_keys is on and hash_key_function is murmur64 (Tyk's test configuration)", func() {
		// The murmur64 token of tykOrgID and "custom-key", and its hash:
		// Tyk's bytes (see hashed_keys_test.go).
		const token = "eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6ImN1c3RvbS1rZXkiLCJoIjoibXVybXVyNjQifQ=="
		const hash = tykCustomMurmur64TokenHash
		var created specs.Response

		BeforeEach(func() {
			env = specs.NewEnv(
				specs.WithConfig(`{"secret": "spec-secret", "hash_keys": true, "hash_key_function": "murmur64", "enable_hashed_keys_listing": true}`),
				specs.WithAPI(tykOrgAPI))
			created = env.Control(env.Instance, http.MethodPost, "/tyk/keys/"+tykCustomKey, grantOfOrg(tykOrgID, "orders"))
			Expect(created.StatusCode).To(Equal(http.StatusOK), created.Body)
		})

		It(`answers the token and the hash Tyk gives it (mirrors Tyk TestHashKeyHandler "create key with custom value")`, func() {
			Expect(created.JSON()).To(And(HaveKeyWithValue("key", token), HaveKeyWithValue("key_hash", hash)))
		})

		It("stores the session at apikey-<hash>, where Tyk looks for it", func(ctx SpecContext) {
			Expect(env.Redis.Exists(ctx, "apikey-"+hash).Val()).To(BeEquivalentTo(1))
		})

		It("lets a client authenticate with the token or with the bare name", func() {
			Expect(env.Get("/orders/", "Authorization", token).StatusCode).To(Equal(http.StatusOK))
			Expect(env.Get("/orders/", "Authorization", tykCustomKey).StatusCode).To(Equal(http.StatusOK))
		})

		It(`PUT by hash with ?hashed=true answers the hash as the key (mirrors "Update key by hash value with specifying hashed=true")`, func() {
			resp := env.Control(env.Instance, http.MethodPut, "/tyk/keys/"+hash+"?hashed=true", grantOfOrg(tykOrgID, "orders", `"is_inactive": true`))
			Expect(resp.StatusCode).To(Equal(http.StatusOK), resp.Body)
			Expect(resp.JSON()).To(HaveKeyWithValue("key", hash))
			Expect(env.Get("/orders/", "Authorization", token).StatusCode).To(Equal(http.StatusForbidden))
		})

		It(`PUT by the bare name leaves one key, not two (mirrors Tyk TestKeyHandler_CheckKeysNotDuplicateOnUpdate "short,custom,hashed")`, func() {
			Expect(env.Control(env.Instance, http.MethodPut, "/tyk/keys/"+tykCustomKey, grantOfOrg(tykOrgID, "orders")).StatusCode).To(Equal(http.StatusOK))
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/keys", "").JSON()["keys"]).To(ConsistOf(hash))
		})

		It(`GET finds it by the bare name with ?api_id (mirrors "get one key by key name (API specified)")`, func() {
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/keys/"+tykCustomKey+"?api_id=orders", "").StatusCode).To(Equal(http.StatusOK))
		})

		It(`GET finds it by hash with ?hashed=true, with or without ?api_id (mirrors "get one key by hash value with specifying hashed=true")`, func() {
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/keys/"+hash+"?hashed=true", "").StatusCode).To(Equal(http.StatusOK))
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/keys/"+hash+"?hashed=true&api_id=orders", "").StatusCode).To(Equal(http.StatusOK))
		})

		It(`GET does not find it by hash without ?hashed=true (mirrors "get one key by hash value without specifying hashed=true")`, func() {
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/keys/"+hash, "").StatusCode).To(Equal(http.StatusNotFound))
		})

		It(`GET /tyk/keys lists its hash (mirrors "get list of keys' hashes, no API specified")`, func() {
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/keys", "").JSON()["keys"]).To(ConsistOf(hash))
		})

		It(`DELETE by hash with ?hashed=true removes it (mirrors "delete one key by hash value with specifying hashed=true", "check that key is not present any more")`, func() {
			Expect(env.Control(env.Instance, http.MethodDelete, "/tyk/keys/"+hash+"?hashed=true&api_id=orders", "").StatusCode).To(Equal(http.StatusOK))
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/keys/"+hash+"?hashed=true&api_id=orders", "").StatusCode).To(Equal(http.StatusNotFound))
			Expect(env.Get("/orders/", "Authorization", tykCustomKey).StatusCode).To(Equal(http.StatusForbidden))
		})
	})

	When("Tyk created the custom key in a shared store", func() {
		BeforeEach(func() {
			env = specs.NewEnv(
				specs.WithConfig(`{"secret": "spec-secret", "hash_keys": true, "hash_key_function": "murmur64"}`),
				specs.WithAPI(tykOrgAPI))
			storeAsTyk(env, tykCustomMurmur64TokenHash)
		})

		It("GET, PUT and DELETE find it by its bare name for its org", func() {
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/keys/"+tykCustomKey+"?org_id="+tykOrgID, "").StatusCode).To(Equal(http.StatusOK))
			Expect(env.Control(env.Instance, http.MethodPut, "/tyk/keys/"+tykCustomKey, grantOfOrg(tykOrgID, "orders", `"rate": 7, "per": 60`)).StatusCode).To(Equal(http.StatusOK))
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/keys/"+tykCustomKey+"?api_id=orders", "").JSON()).To(HaveKeyWithValue("rate", 7.0))
			Expect(env.Control(env.Instance, http.MethodDelete, "/tyk/keys/"+tykCustomKey+"?org_id="+tykOrgID, "").StatusCode).To(Equal(http.StatusOK))
			Expect(env.Get("/orders/", "Authorization", tykCustomKey).StatusCode).To(Equal(http.StatusForbidden))
		})
	})
	// Tyk names a key's limiter state after the key: rate-limit-<id> for
	// the window, rate-limit-<id>.BLOCKED for the sentinel, and tollgate's
	// rate-limit-{quota-<id>}.gcra beside the quota. Tyk accepts any name;
	// tollgate refuses the two kinds whose state would be another key's.
	When("a custom key's name would share its rate limit's Redis keys with another key (Tyk accepts it)", func() {
		BeforeEach(func() { env = specs.NewEnv(specs.WithAPI(orgAPI("orders", "/orders/", "org1"))) })

		It("refuses a name ending in .BLOCKED, whose window is the sentinel of the name without it, with 400 naming why", func() {
			resp := env.Control(env.Instance, http.MethodPost, "/tyk/keys/victim-key.BLOCKED", grantOfOrg("org1", "orders"))
			Expect(resp.StatusCode).To(Equal(http.StatusBadRequest))
			Expect(resp.Body).To(And(ContainSubstring("victim-key.BLOCKED"), ContainSubstring("ends in .BLOCKED")))
		})

		It("refuses a name with a brace, which could name another key's hash tag, with 400 naming why", func() {
			resp := env.Control(env.Instance, http.MethodPost, "/tyk/keys/%7Bquota-victim%7D", grantOfOrg("org1", "orders"))
			Expect(resp.StatusCode).To(Equal(http.StatusBadRequest))
			Expect(resp.Body).To(ContainSubstring("contains a brace"))
		})
	})
})
