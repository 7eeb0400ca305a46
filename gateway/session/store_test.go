package session_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/session"
	"github.com/tollgate/tollgate/specs"
)

var _ = Describe("StoreOptions.Validate", func() {
	When("hash_key_function is unknown", func() {
		It("is an error naming hash_key_function", func() {
			opts := session.StoreOptions{HashFunction: "murmur256"}
			Expect(opts.Validate()).To(MatchError(ContainSubstring(`hash_key_function: unknown hash function "murmur256"`)))
		})
	})

	When("hash_key_function_fallback names an unknown function", func() {
		It("is an error naming hash_key_function_fallback and the entry", func() {
			opts := session.StoreOptions{HashFunction: "sha256", HashFunctionFallback: []string{"murmur64", "md5"}}
			Expect(opts.Validate()).To(MatchError(And(
				ContainSubstring("hash_key_function_fallback[1]"),
				ContainSubstring(`"md5"`),
			)))
		})
	})

	When("every function named is known", func() {
		It("succeeds", func() {
			opts := session.StoreOptions{HashFunction: "sha256", HashFunctionFallback: []string{"", "murmur64"}}
			Expect(opts.Validate()).To(Succeed())
		})
	})
})

var _ = Describe("Store.ID", func() {
	When("hash_keys is on", func() {
		It("is the hash Tyk stores the key under, whatever hash_key_function says", func() {
			store := session.NewStore(nil, session.StoreOptions{HashKeys: true, HashFunction: "sha256"})
			Expect(store.ID(murmur64Token)).To(Equal(murmur64TokenHash))
			Expect(store.ID(legacyKey)).To(Equal(legacyKeyHash))
		})
	})

	When("hash_keys is off", func() {
		It("is the key itself", func() {
			store := session.NewStore(nil, session.StoreOptions{HashFunction: "sha256"})
			Expect(store.ID(murmur64Token)).To(Equal(murmur64Token))
		})
	})
})

var _ = Describe("Store.GenerateKey", func() {
	When("hash_key_function is set", func() {
		It("makes the token of that function", func() {
			store := session.NewStore(nil, session.StoreOptions{HashKeys: true, HashFunction: "murmur64"})
			Expect(store.GenerateKey(orgID, customKey)).To(Equal(customMurmur64Token))
		})

		It("drops the org id a custom key id starts with, as Tyk's control API does", func() {
			store := session.NewStore(nil, session.StoreOptions{HashKeys: true, HashFunction: "murmur64"})
			Expect(store.GenerateKey(orgID, orgID+customKey)).To(Equal(customMurmur64Token))
		})
	})

	When("hash_key_function is empty", func() {
		It("makes the legacy key, org id + key id", func() {
			store := session.NewStore(nil, session.StoreOptions{HashKeys: true})
			Expect(store.GenerateKey(orgID, customKey)).To(Equal(customLegacyToken))
		})
	})
})

var _ = Describe("Store.Candidates", func() {
	When("the key is a custom key sent without its token", func() {
		It("lists its token's id, its own, then its token's under each fallback", func() {
			store := session.NewStore(nil, session.StoreOptions{
				HashKeys: true, HashFunction: "sha256", HashFunctionFallback: []string{"murmur64", ""},
			})
			Expect(store.Candidates(orgID, customKey)).To(Equal([]string{
				customSHA256TokenHash, customKeyHash, customMurmur64TokenHash, customLegacyTokenHash,
			}))
		})
	})

	When("disable_key_actions_by_username is on", func() {
		It("lists only the key's own id", func() {
			store := session.NewStore(nil, session.StoreOptions{
				HashKeys: true, HashFunction: "sha256", HashFunctionFallback: []string{"murmur64"},
				DisableKeyActionsByUsername: true,
			})
			Expect(store.Candidates(orgID, customKey)).To(Equal([]string{customKeyHash}))
		})
	})

	When("the key belongs to the API's org", func() {
		It("lists only the key's own id", func() {
			store := session.NewStore(nil, session.StoreOptions{
				HashKeys: true, HashFunction: "sha256", HashFunctionFallback: []string{"murmur64"},
			})
			Expect(store.Candidates(orgID, murmur128Token)).To(Equal([]string{murmur128TokenHash}))
			Expect(store.Candidates(orgID, legacyKey)).To(Equal([]string{legacyKeyHash}))
		})
	})
})

var _ = Describe("Finding a key as Tyk authenticates it (Store.Find)", func() {
	var env *Env

	BeforeEach(func() {
		env = NewEnv()
	})

	When("hash_keys is on and hash_key_function is murmur64", func() {
		var store *session.Store

		BeforeEach(func() {
			store = env.NewStore(session.StoreOptions{HashKeys: true, HashFunction: "murmur64"})
		})

		DescribeTable("a key Tyk stored is found at Tyk's bytes, and Find reports that id",
			func(ctx SpecContext, key, hash string) {
				env.StoreAsTyk("apikey-" + hash)
				Expect(FindKey(ctx, store, orgID, key)).To(Equal(FoundAt{Alias: "apikey-" + hash, ID: hash}))
			},
			Entry("a murmur64 token", murmur64Token, murmur64TokenHash, SpecTimeout(10*time.Second)),
			Entry("a token of another function (sha256): it names its own", sha256Token, sha256TokenHash, SpecTimeout(10*time.Second)),
			Entry("a murmur128 token", murmur128Token, murmur128TokenHash, SpecTimeout(10*time.Second)),
			Entry("a murmur32 token", murmur32Token, murmur32TokenHash, SpecTimeout(10*time.Second)),
			Entry("a legacy key, org id + key id", legacyKey, legacyKeyHash, SpecTimeout(10*time.Second)),
			Entry("a plain key of no org", plainKey, plainKeyHash, SpecTimeout(10*time.Second)),
			Entry("a custom key sent bare, stored as its murmur64 token", customKey, customMurmur64TokenHash, SpecTimeout(10*time.Second)),
		)

		It("prefers the custom key's token to a key stored under the bare id", func(ctx SpecContext) {
			env.StoreAsTyk("apikey-" + customKeyHash)
			env.StoreAsTyk("apikey-" + customMurmur64TokenHash)
			Expect(FindKey(ctx, store, orgID, customKey)).To(HaveField("ID", customMurmur64TokenHash))
		}, SpecTimeout(10*time.Second))

		It("treats an empty stored value as absent, as Tyk does", func(ctx SpecContext) {
			Expect(env.Client.Set(ctx, "apikey-"+customMurmur64TokenHash, "", 0).Err()).To(Succeed())
			env.StoreAsTyk("apikey-" + customKeyHash)
			Expect(FindKey(ctx, store, orgID, customKey)).To(HaveField("ID", customKeyHash))
		}, SpecTimeout(10*time.Second))

		It("does not find a key stored nowhere", func(ctx SpecContext) {
			_, err := FindKey(ctx, store, orgID, customKey)
			Expect(err).To(MatchError(session.ErrNotFound))
		}, SpecTimeout(10*time.Second))

		It("does not find a key under Tyk's legacy name for another function", func(ctx SpecContext) {
			env.StoreAsTyk("apikey-" + customLegacyTokenHash)
			_, err := FindKey(ctx, store, orgID, customKey)
			Expect(err).To(MatchError(session.ErrNotFound))
		}, SpecTimeout(10*time.Second))
	})

	When("hash_key_function changed from murmur64 to sha256", func() {
		BeforeEach(func() {
			env.StoreAsTyk("apikey-" + customMurmur64TokenHash)
		})

		It("loses a custom key stored under murmur64 when no fallback is set", func(ctx SpecContext) {
			store := env.NewStore(session.StoreOptions{HashKeys: true, HashFunction: "sha256"})
			_, err := FindKey(ctx, store, orgID, customKey)
			Expect(err).To(MatchError(session.ErrNotFound))
		}, SpecTimeout(10*time.Second))

		It("finds it under murmur64 with hash_key_function_fallback [murmur64]", func(ctx SpecContext) {
			store := env.NewStore(session.StoreOptions{HashKeys: true, HashFunction: "sha256", HashFunctionFallback: []string{"murmur64"}})
			Expect(FindKey(ctx, store, orgID, customKey)).To(Equal(FoundAt{Alias: "apikey-" + customMurmur64TokenHash, ID: customMurmur64TokenHash}))
		}, SpecTimeout(10*time.Second))

		It("prefers the copy under the new function once there is one", func(ctx SpecContext) {
			env.StoreAsTyk("apikey-" + customSHA256TokenHash)
			store := env.NewStore(session.StoreOptions{HashKeys: true, HashFunction: "sha256", HashFunctionFallback: []string{"murmur64"}})
			Expect(FindKey(ctx, store, orgID, customKey)).To(HaveField("ID", customSHA256TokenHash))
		}, SpecTimeout(10*time.Second))

		It("still finds a generated murmur64 token, which names its function", func(ctx SpecContext) {
			env.StoreAsTyk("apikey-" + murmur64TokenHash)
			store := env.NewStore(session.StoreOptions{HashKeys: true, HashFunction: "sha256"})
			Expect(FindKey(ctx, store, orgID, murmur64Token)).To(HaveField("ID", murmur64TokenHash))
		}, SpecTimeout(10*time.Second))
	})

	When("hash_key_function was empty before (legacy custom keys)", func() {
		It("finds a custom key stored as org id + key id with the fallback [\"\"]", func(ctx SpecContext) {
			env.StoreAsTyk("apikey-" + customLegacyTokenHash)
			store := env.NewStore(session.StoreOptions{HashKeys: true, HashFunction: "murmur64", HashFunctionFallback: []string{""}})
			Expect(FindKey(ctx, store, orgID, customKey)).To(HaveField("ID", customLegacyTokenHash))
		}, SpecTimeout(10*time.Second))
	})

	When("hash_keys is off", func() {
		It("finds a custom key under its token, unhashed", func(ctx SpecContext) {
			env.StoreAsTyk("apikey-" + customLegacyToken)
			store := env.NewStore(session.StoreOptions{})
			Expect(FindKey(ctx, store, orgID, customKey)).To(Equal(FoundAt{Alias: "apikey-" + customLegacyToken, ID: customLegacyToken}))
		}, SpecTimeout(10*time.Second))
	})

	When("disable_key_actions_by_username is on", func() {
		It("does not find a custom key sent bare", func(ctx SpecContext) {
			env.StoreAsTyk("apikey-" + customMurmur64TokenHash)
			store := env.NewStore(session.StoreOptions{HashKeys: true, HashFunction: "murmur64", DisableKeyActionsByUsername: true})
			_, err := FindKey(ctx, store, orgID, customKey)
			Expect(err).To(MatchError(session.ErrNotFound))
		}, SpecTimeout(10*time.Second))
	})

	When("the key is shorter than min_token_length", func() {
		It("is not found, though Tyk's murmur32 of it names a stored key", func(ctx SpecContext) {
			env.StoreAsTyk("apikey-00000000")
			store := env.NewStore(session.StoreOptions{HashKeys: true})
			_, err := FindKey(ctx, store, "", "ab")
			Expect(err).To(MatchError(session.ErrNotFound))
		}, SpecTimeout(10*time.Second))

		It("uses the configured length, not the default of 3", func(ctx SpecContext) {
			env.StoreAsTyk("apikey-" + plainKeyHash)
			store := env.NewStore(session.StoreOptions{HashKeys: true, MinTokenLength: len(plainKey) + 1})
			_, err := FindKey(ctx, store, "", plainKey)
			Expect(err).To(MatchError(session.ErrNotFound))
		}, SpecTimeout(10*time.Second))
	})

	When("the node holding an earlier candidate is down", func() {
		It("reports the store unavailable rather than a later copy or not found",
			specs.SimulatedOnly("kills a node"), func(ctx SpecContext) {
				first := "apikey-" + customSHA256TokenHash
				later := "apikey-" + customMurmur64TokenHash
				Expect(env.Cluster.NodeForKey(first)).NotTo(BeIdenticalTo(env.Cluster.NodeForKey(later)))
				env.StoreAsTyk(later)
				store := env.NewStore(session.StoreOptions{HashKeys: true, HashFunction: "sha256", HashFunctionFallback: []string{"murmur64"}})
				env.KillOwner(first)
				_, err := FindKey(ctx, store, orgID, customKey)
				Expect(err).To(MatchError(session.ErrUnavailable))
			}, SpecTimeout(20*time.Second))
	})
})

var _ = Describe("Finding a key as the control API names it (Store.Locate)", func() {
	var env *Env

	BeforeEach(func() {
		env = NewEnv()
	})

	When("a custom key is named by its bare id", func() {
		It("reports the token it is stored as, with that token's id", func(ctx SpecContext) {
			env.StoreAsTyk("apikey-" + customMurmur64TokenHash)
			store := env.NewStore(session.StoreOptions{HashKeys: true, HashFunction: "murmur64"})
			_, found, err := store.Locate(ctx, orgID, customKey)
			Expect(err).NotTo(HaveOccurred())
			Expect(found).To(Equal(session.Found{Key: customMurmur64Token, ID: customMurmur64TokenHash}))
		}, SpecTimeout(10*time.Second))

		It("reports the legacy key, org id + key id, with hash_keys off", func(ctx SpecContext) {
			env.StoreAsTyk("apikey-" + customLegacyToken)
			store := env.NewStore(session.StoreOptions{})
			_, found, err := store.Locate(ctx, orgID, customKey)
			Expect(err).NotTo(HaveOccurred())
			Expect(found).To(Equal(session.Found{Key: customLegacyToken, ID: customLegacyToken}))
		}, SpecTimeout(10*time.Second))
	})

	When("the key is shorter than min_token_length", func() {
		It("is still found: Tyk's SessionDetail has no minimum, only authentication does", func(ctx SpecContext) {
			env.StoreAsTyk("apikey-ab")
			store := env.NewStore(session.StoreOptions{})
			_, found, err := store.Locate(ctx, "", "ab")
			Expect(err).NotTo(HaveOccurred())
			Expect(found).To(Equal(session.Found{Key: "ab", ID: "ab"}))
		}, SpecTimeout(10*time.Second))
	})
})
