package specs_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/specs"
)

// Tyk OSS manages a file-based gateway's API definitions through the
// control API (gateway/api.go apiHandler); these mirror what a client of
// it sees.
var _ = Describe("Managing API definitions through the control API", Label("control", "tyk-mirror"), func() {
	var env *specs.Env
	// served is a definition with the recording upstream's address filled
	// in, as a client would send it.
	served := func(def string) string { return strings.ReplaceAll(def, "{{upstream}}", env.Upstream.URL) }

	BeforeEach(func() {
		env = specs.NewEnv(specs.WithAPI(keylessAPI("orders", "/orders/")))
	})

	When("a definition is POSTed to /tyk/apis", func() {
		var resp specs.Response
		BeforeEach(func() {
			resp = env.Control(env.Instance, http.MethodPost, "/tyk/apis", served(keylessAPI("added", "/added/")))
		})

		It(`answers {"key": <api_id>, "status": "ok", "action": "added"}, as Tyk does`, func() {
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(resp.JSON()).To(Equal(map[string]any{"key": "added", "status": "ok", "action": "added"}))
		})

		It("writes it to app_path as <api_id>.json", func() {
			Expect(filepath.Join(env.AppDir, "added.json")).To(BeARegularFile())
		})

		It("serves it after a reload, not before, as Tyk does", func() {
			Expect(env.Get("/added/").StatusCode).To(Equal(http.StatusNotFound))
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/reload", "").StatusCode).To(Equal(http.StatusOK))
			Expect(env.Get("/added/").StatusCode).To(Equal(http.StatusOK))
		})
	})

	When("a POSTed definition is not one tollgate could load", func() {
		It("answers 400 naming the field, and writes nothing", func() {
			resp := env.Control(env.Instance, http.MethodPost, "/tyk/apis", `{"api_id": "broken", "active": true, "proxy": {"target_url": "{{upstream}}"}}`)
			Expect(resp.StatusCode).To(Equal(http.StatusBadRequest))
			Expect(resp.JSON()["message"]).To(ContainSubstring("proxy.listen_path"))
			Expect(filepath.Join(env.AppDir, "broken.json")).NotTo(BeAnExistingFile())
		})
	})

	When("a POSTed api_id is not a file name", func() {
		It(`answers 400 "Invalid API ID", as Tyk does, and writes nothing outside app_path`, func() {
			resp := env.Control(env.Instance, http.MethodPost, "/tyk/apis", served(keylessAPI("../escape", "/escape/")))
			Expect(resp.StatusCode).To(Equal(http.StatusBadRequest))
			Expect(resp.JSON()).To(HaveKeyWithValue("message", "Invalid API ID"))
			Expect(filepath.Join(filepath.Dir(env.AppDir), "escape.json")).NotTo(BeAnExistingFile())
		})
	})

	When("a served API is PUT to /tyk/apis/{id}", func() {
		It(`answers action "modified" and serves the change after a reload`, func() {
			resp := env.Control(env.Instance, http.MethodPut, "/tyk/apis/orders", served(keylessAPI("orders", "/orders-v2/")))
			Expect(resp.JSON()).To(HaveKeyWithValue("action", "modified"))
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/reload", "").StatusCode).To(Equal(http.StatusOK))
			Expect(env.Get("/orders-v2/").StatusCode).To(Equal(http.StatusOK))
		})

		It(`refuses a body with another api_id (Tyk: "Request APIID does not match that in Definition!")`, func() {
			resp := env.Control(env.Instance, http.MethodPut, "/tyk/apis/orders", served(keylessAPI("other", "/other/")))
			Expect(resp.StatusCode).To(Equal(http.StatusBadRequest))
		})

		It("answers 404 for an API that is not served", func() {
			Expect(env.Control(env.Instance, http.MethodPut, "/tyk/apis/nope", served(keylessAPI("nope", "/nope/"))).StatusCode).To(Equal(http.StatusNotFound))
		})
	})

	When("a served API is DELETEd", func() {
		It(`answers action "deleted", removes its file, and stops serving it after a reload`, func() {
			resp := env.Control(env.Instance, http.MethodDelete, "/tyk/apis/orders", "")
			Expect(resp.JSON()).To(HaveKeyWithValue("action", "deleted"))
			entries, err := os.ReadDir(env.AppDir)
			Expect(err).NotTo(HaveOccurred())
			Expect(entries).To(BeEmpty())
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/reload", "").StatusCode).To(Equal(http.StatusOK))
			Expect(env.Get("/orders/").StatusCode).To(Equal(http.StatusNotFound))
		})
	})
})

var _ = Describe("Listing keys through the control API", Label("control", "tyk-mirror"), func() {
	It(`answers {"keys": [...]} with every stored key`, func() {
		env := specs.NewEnv(specs.WithAPI(keyedAPI("orders", "/orders/")))
		key := env.IssueKey(grantTo("orders"))
		resp := env.Control(env.Instance, http.MethodGet, "/tyk/keys", "")
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		Expect(resp.JSON()["keys"]).To(ConsistOf(key))
	})

	When("hash_keys is off and the store holds keys of two orgs", func() {
		var env *specs.Env
		var legacy, token, custom, other string
		BeforeEach(func(ctx SpecContext) {
			env = specs.NewEnv(specs.WithAPI(keyedAPI("orders", "/orders/")), specs.WithAPI(keyedAPI("billing", "/billing/")))
			legacy = env.IssueKey(grantOfOrg("default", "orders"))
			custom = env.SetKey("my-custom-key", grantOfOrg("default", "billing"))
			other = env.IssueKey(grantOfOrg("wrong_org", "orders"))
			// A token of the org, {"org":"default","id":"abc","h":"murmur64"},
			// stored as a Tyk gateway with hash_key_function murmur64 stores it.
			token = "eyJvcmciOiJkZWZhdWx0IiwiaWQiOiJhYmMiLCJoIjoibXVybXVyNjQifQ=="
			Expect(env.Redis.Set(ctx, "apikey-"+token, grantOfOrg("default", "orders"), 0).Err()).To(Succeed())
		})

		It(`?filter=<org id> keeps the org's keys, legacy and tokens alike (mirrors Tyk TestKeyHandler "List keys" filter=orgID)`, func() {
			resp := env.Control(env.Instance, http.MethodGet, "/tyk/keys?filter=default", "")
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(resp.JSON()["keys"]).To(ConsistOf(legacy, custom, token))
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/keys", "").JSON()["keys"]).To(ConsistOf(legacy, custom, token, other))
		})

		It(`?api_id with ?filter keeps the org's keys granting that API (mirrors "?api_id=test&filter=default" and "filter=wrong_org")`, func() {
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/keys?api_id=orders&filter=default", "").JSON()["keys"]).To(ConsistOf(legacy, token))
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/keys?api_id=billing&filter=wrong_org", "").JSON()["keys"]).To(BeEmpty())
		})

		It("?api_id without ?filter answers 400, Tyk's message", func() {
			resp := env.Control(env.Instance, http.MethodGet, "/tyk/keys?api_id=orders", "")
			Expect(resp.StatusCode).To(Equal(http.StatusBadRequest))
			Expect(resp.JSON()).To(HaveKeyWithValue("message", "The 'filter' parameter (Org ID) is required when filtering by 'api_id' in legacy mode"))
		})
	})

	When("hash_keys and enable_hashed_keys_listing are on", func() {
		It(`lists hashes, and ?api_id keeps those of keys granting that API (mirrors Tyk TestHashKeyHandler "get list of keys' hashes", API specified and wrong API)`, func() {
			env := specs.NewEnv(specs.WithConfig(`{"secret": "spec-secret", "hash_keys": true, "hash_key_function": "murmur64", "enable_hashed_keys_listing": true}`),
				specs.WithAPI(keyedAPI("orders", "/orders/")))
			resp := env.Control(env.Instance, http.MethodPost, "/tyk/keys/create", grantTo("orders"))
			hash, _ := resp.JSON()["key_hash"].(string)
			Expect(hash).To(HaveLen(16))
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/keys", "").JSON()["keys"]).To(ConsistOf(hash))
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/keys?api_id=orders", "").JSON()["keys"]).To(ConsistOf(hash))
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/keys?api_id=wrong-api-id", "").JSON()["keys"]).To(BeEmpty())
		})
	})

	// Tyk's test stores the keys through its session manager; these are
	// created through the control API, which answers the same hashes.
	When("hash_keys, enable_hashed_keys_listing and allow_master_keys are on, with a key for each of two APIs and a key with no access rights", func() {
		var env *specs.Env
		var hashA, hashB, hashC string
		hashOf := func(sessionJSON string) string {
			GinkgoHelper()
			resp := env.Control(env.Instance, http.MethodPost, "/tyk/keys/create", sessionJSON)
			Expect(resp.StatusCode).To(Equal(http.StatusOK), resp.Body)
			hash, _ := resp.JSON()["key_hash"].(string)
			Expect(hash).NotTo(BeEmpty())
			return hash
		}
		BeforeEach(func() {
			env = specs.NewEnv(specs.WithConfig(`{"secret": "spec-secret", "hash_keys": true, "hash_key_function": "sha256", "enable_hashed_keys_listing": true, "allow_master_keys": true}`),
				specs.WithAPI(keyedAPI("api-one", "/one/")), specs.WithAPI(keyedAPI("api-two", "/two/")))
			hashA = hashOf(grantTo("api-one"))
			hashB = hashOf(grantTo("api-two"))
			hashC = hashOf(`{"access_rights": {}, "org_id": "org1"}`)
		})

		It(`?api_id=api-one lists the key granting it and the master key, not the other (mirrors Tyk TestKeyHandler_BatchFiltering_Integration "Filter API One")`, func() {
			resp := env.Control(env.Instance, http.MethodGet, "/tyk/keys/?api_id=api-one", "")
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(resp.JSON()["keys"]).To(ConsistOf(hashA, hashC))
		})

		It(`?api_id=api-two lists the key granting it and the master key (mirrors "Filter API Two")`, func() {
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/keys/?api_id=api-two", "").JSON()["keys"]).To(ConsistOf(hashB, hashC))
		})

		It(`?api_id of an API no key names lists only the master key (mirrors "Filter Unknown API")`, func() {
			Expect(env.Control(env.Instance, http.MethodGet, "/tyk/keys/?api_id=unknown-api", "").JSON()["keys"]).To(ConsistOf(hashC))
		})
	})

	It(`refuses with hash_keys unless enable_hashed_keys_listing is on: 404, Tyk's message`, func() {
		env := specs.NewEnv(specs.WithConfig(`{"secret": "spec-secret", "hash_keys": true, "hash_key_function": "sha256"}`), specs.WithAPI(keyedAPI("orders", "/orders/")))
		resp := env.Control(env.Instance, http.MethodGet, "/tyk/keys", "")
		Expect(resp.StatusCode).To(Equal(http.StatusNotFound))
		Expect(resp.JSON()).To(HaveKeyWithValue("message", "Hashed key listing is disabled in config (enable_hashed_keys_listing)"))
	})
})
