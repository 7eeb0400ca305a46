package session_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/session"
)

var _ = Describe("Key hashing (hash_keys)", func() {
	When("the key is a token Tyk generated", func() {
		DescribeTable("it is stored under the hash its \"h\" names, as Tyk stores it",
			func(token, hash string) {
				Expect(session.Hash(token)).To(Equal(hash))
			},
			Entry("murmur32: 8 hex digits", murmur32Token, murmur32TokenHash),
			Entry("murmur64: 16 hex digits", murmur64Token, murmur64TokenHash),
			Entry("murmur128: 32 hex digits", murmur128Token, murmur128TokenHash),
			Entry("sha256: 64 hex digits", sha256Token, sha256TokenHash),
		)

		It("is stored under murmur32 when its \"h\" names no function Tyk knows", func() {
			Expect(session.Hash(md5Token)).To(Equal(md5TokenHash))
		})
	})

	When("the key is not a token", func() {
		It("is stored under murmur32: a legacy key made of org id and key id", func() {
			Expect(session.Hash(legacyKey)).To(Equal(legacyKeyHash))
		})

		It("is stored under murmur32: a key of no org", func() {
			Expect(session.Hash(plainKey)).To(Equal(plainKeyHash))
		})

		It("is stored under murmur32: a custom key id as given", func() {
			Expect(session.Hash(customKey)).To(Equal(customKeyHash))
		})
	})

	// Tyk's murmur32 stops before the tail and the final mix (see
	// tykMurmur32). These pin that weakness so that tollgate keeps finding
	// the keys Tyk stored, and so that no one mistakes it for a fix.
	When("murmur32 hashes a key whose length is not a multiple of four", func() {
		It("ignores the last bytes: abcd, abcd1 and abcd2 share one hash", func() {
			Expect(session.Hash("abcd")).To(Equal("86a7049e"))
			Expect(session.Hash("abcd1")).To(Equal("86a7049e"))
			Expect(session.Hash("abcd2")).To(Equal("86a7049e"))
		})

		It("gives 00000000 for every key shorter than four bytes", func() {
			Expect(session.Hash("ab")).To(Equal("00000000"))
			Expect(session.Hash("xyz")).To(Equal("00000000"))
		})
	})

	When("a function is named explicitly, as Tyk's HashStr(key, function)", func() {
		DescribeTable("the key is hashed with it whatever its token says",
			func(function, hash string) {
				Expect(session.HashWith(function, customKey)).To(Equal(hash))
			},
			Entry("murmur32", session.HashMurmur32, customKeyHash),
			Entry("murmur64", session.HashMurmur64, "adc4a3939770e1d6"),
			Entry("murmur128", session.HashMurmur128, "adc4a3939770e1d609c50bb613a38d6b"),
			Entry("sha256, as sha256sum prints it", session.HashSHA256, "1481b6fd3ceddb4ae3c27c41a53f483681c3bb937c95fed0fb706b1494707221"),
			Entry("an unknown name: murmur32", "md5", customKeyHash),
		)

		It("takes the token's function when the name is empty", func() {
			Expect(session.HashWith("", sha256Token)).To(Equal(sha256TokenHash))
		})
	})
})

var _ = Describe("hash_key_function validation", func() {
	DescribeTable("a name Tyk knows is accepted",
		func(name string) {
			Expect(session.ValidHashFunction(name)).To(Succeed())
		},
		Entry("empty: legacy keys", ""),
		Entry("murmur32", "murmur32"),
		Entry("murmur64", "murmur64"),
		Entry("murmur128", "murmur128"),
		Entry("sha256", "sha256"),
	)

	When("the name is unknown", func() {
		It("is an error naming the setting and the value", func() {
			err := session.ValidHashFunction("murmur256")
			Expect(err).To(MatchError(session.ErrUnknownHashFunction))
			Expect(err).To(MatchError(ContainSubstring("hash_key_function")))
			Expect(err).To(MatchError(ContainSubstring(`"murmur256"`)))
		})

		It("is an error in the case Tyk does not accept either (MURMUR64)", func() {
			Expect(session.ValidHashFunction("MURMUR64")).To(MatchError(session.ErrUnknownHashFunction))
		})
	})
})
