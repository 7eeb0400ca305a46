package specs_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/specs"
)

// Keys and the Redis names Tyk 5.14 stores their sessions under with
// hash_keys on: the bytes of Tyk's own internal/crypto GenerateToken and
// HashStr (storage/redis_cluster.go fixKey adds "apikey-"), printed by
// Tyk's code built against the module versions of its go.sum. The session
// package's specs pin the same values and how they were derived.
const (
	tykOrgID = "5e9d9544a1dcd60001d0ed20"

	tykMurmur32Token  = "eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6IjZmMWMwYjRlMmE5ZDRmM2I4YzdlNWQxYTJiM2M0ZDVlIiwiaCI6Im11cm11cjMyIn0="
	tykMurmur64Token  = "eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6IjZmMWMwYjRlMmE5ZDRmM2I4YzdlNWQxYTJiM2M0ZDVlIiwiaCI6Im11cm11cjY0In0="
	tykMurmur128Token = "eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6IjZmMWMwYjRlMmE5ZDRmM2I4YzdlNWQxYTJiM2M0ZDVlIiwiaCI6Im11cm11cjEyOCJ9"
	tykSHA256Token    = "eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6IjZmMWMwYjRlMmE5ZDRmM2I4YzdlNWQxYTJiM2M0ZDVlIiwiaCI6InNoYTI1NiJ9"
	tykLegacyKey      = tykOrgID + "6f1c0b4e2a9d4f3b8c7e5d1a2b3c4d5e"
	// A custom key "custom-key" created while hash_key_function was
	// murmur64: Tyk stored it as the murmur64 token of the bare id.
	tykCustomKey                = "custom-key"
	tykCustomMurmur64TokenHash  = "87facdcda550e341"
	tykCustomSHA256TokenHashFor = "841e4404f1eed703589451f1c2dd9b198d88c9459069eca86f0da746b14b99da"
)

// tykOrgAPI is a keyed API of Tyk's org tykOrgID on /orders/.
const tykOrgAPI = `{
  "api_id": "orders", "name": "orders", "org_id": "` + tykOrgID + `", "active": true, "use_keyless": false,
  "auth": {"auth_header_name": "Authorization"},
  "proxy": {"listen_path": "/orders/", "target_url": "{{upstream}}", "strip_listen_path": true},
  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default"}}}
}`

// storeAsTyk writes a session granting "orders" at apikey-<hash>, as Tyk
// writes it.
func storeAsTyk(env *specs.Env, hash string) {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	session := fmt.Sprintf(`{"org_id": %q, "access_rights": {"orders": {"api_id": "orders", "api_name": "orders", "versions": []}}}`, tykOrgID)
	Expect(env.Redis.Set(ctx, "apikey-"+hash, session, 0).Err()).To(Succeed())
}

var _ = Describe("Hashed keys stored by Tyk", Label("auth", "security"), func() {
	var env *specs.Env

	When("hash_keys is on and Tyk stored each session under its own hash bytes", func() {
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithConfig(`{"secret": "s", "hash_keys": true, "hash_key_function": "sha256"}`), specs.WithAPI(tykOrgAPI))
		})

		DescribeTable("authenticates the key Tyk generated",
			func(key, hash string) {
				storeAsTyk(env, hash)
				Expect(env.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
			},
			Entry("a murmur32 token, at apikey-17f23da1", tykMurmur32Token, "17f23da1"),
			Entry("a murmur64 token, at apikey-c889252bb3a0349e", tykMurmur64Token, "c889252bb3a0349e"),
			Entry("a murmur128 token", tykMurmur128Token, "1c52379899e356e70bf54860b501aa92"),
			Entry("a sha256 token", tykSHA256Token, "9ada45ace6eb9f4f9f2480635c2ba030c0bdc9f7411d3c09175c8dac79e545ab"),
			Entry("a legacy org id + key id key (hash_key_function \"\"), under Tyk's murmur32", tykLegacyKey, "c2a4a0aa"),
		)

		It("refuses a key whose hash is another key's, under a function the token does not name", func() {
			storeAsTyk(env, "17f23da1")
			expectGatewayError(env.Get("/orders/", "Authorization", tykMurmur64Token), http.StatusForbidden, chain.CauseKeyNotAuthorised, "Access to this API has been disallowed")
		})
	})

	When("a custom key was created under murmur64 and hash_key_function is now sha256", func() {
		It("is not found without hash_key_function_fallback, as in Tyk", func() {
			env = specs.NewEnv(specs.WithConfig(`{"secret": "s", "hash_keys": true, "hash_key_function": "sha256"}`), specs.WithAPI(tykOrgAPI))
			storeAsTyk(env, tykCustomMurmur64TokenHash)
			Expect(env.Get("/orders/", "Authorization", tykCustomKey).StatusCode).To(Equal(http.StatusForbidden))
		})

		It("is found from its bare name with hash_key_function_fallback [\"murmur64\"]", func() {
			env = specs.NewEnv(specs.WithConfig(`{"secret": "s", "hash_keys": true, "hash_key_function": "sha256", "hash_key_function_fallback": ["murmur64"]}`), specs.WithAPI(tykOrgAPI))
			storeAsTyk(env, tykCustomMurmur64TokenHash)
			Expect(env.Get("/orders/", "Authorization", tykCustomKey).StatusCode).To(Equal(http.StatusOK))
		})

		It("is found under the current function first", func() {
			env = specs.NewEnv(specs.WithConfig(`{"secret": "s", "hash_keys": true, "hash_key_function": "sha256"}`), specs.WithAPI(tykOrgAPI))
			storeAsTyk(env, tykCustomSHA256TokenHashFor)
			Expect(env.Get("/orders/", "Authorization", tykCustomKey).StatusCode).To(Equal(http.StatusOK))
		})
	})

	When("the control API names a key by its hash", func() {
		It("updates it with PUT /tyk/keys/{hash}?hashed=true", func() {
			env = specs.NewEnv(specs.WithConfig(`{"secret": "spec-secret", "hash_keys": true, "hash_key_function": "sha256"}`), specs.WithAPI(tykOrgAPI))
			storeAsTyk(env, "9ada45ace6eb9f4f9f2480635c2ba030c0bdc9f7411d3c09175c8dac79e545ab")
			resp := env.Control(env.Instance, http.MethodPut, "/tyk/keys/9ada45ace6eb9f4f9f2480635c2ba030c0bdc9f7411d3c09175c8dac79e545ab?hashed=true",
				fmt.Sprintf(`{"org_id": %q, "is_inactive": true, "access_rights": {"orders": {"api_id": "orders", "api_name": "orders", "versions": []}}}`, tykOrgID))
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(env.Get("/orders/", "Authorization", tykSHA256Token).StatusCode).To(Equal(http.StatusForbidden))
		})

		It("answers 400 Key requested by hash but key hashing is not enabled without hash_keys, as Tyk does", func() {
			env = specs.NewEnv(specs.WithAPI(tykOrgAPI))
			resp := env.Control(env.Instance, http.MethodGet, "/tyk/keys/17f23da1?hashed=true", "")
			Expect(resp.StatusCode).To(Equal(http.StatusBadRequest))
			Expect(resp.JSON()).To(HaveKeyWithValue("message", "Key requested by hash but key hashing is not enabled"))
		})
	})
})
