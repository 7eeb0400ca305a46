package session_test

import (
	"encoding/base64"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/session"
)

var _ = Describe("Key generation (GenerateToken)", func() {
	When("a hash function is given", func() {
		DescribeTable("the key is Tyk's token: base64 of {\"org\",\"id\",\"h\"}",
			func(function, token string) {
				Expect(session.GenerateToken(orgID, keyID, function)).To(Equal(token))
			},
			Entry("murmur32", "murmur32", murmur32Token),
			Entry("murmur64", "murmur64", murmur64Token),
			Entry("murmur128", "murmur128", murmur128Token),
			Entry("sha256", "sha256", sha256Token),
		)

		It("writes the JSON fields in Tyk's order, unescaped", func() {
			token, err := session.GenerateToken("o", `a"b`, "sha256")
			Expect(err).NotTo(HaveOccurred())
			Expect(base64.StdEncoding.DecodeString(token)).To(BeEquivalentTo(`{"org":"o","id":"a"b","h":"sha256"}`))
		})
	})

	When("no hash function is given", func() {
		It("is the legacy key, org id followed by key id", func() {
			Expect(session.GenerateToken(orgID, keyID, "")).To(Equal(legacyKey))
		})
	})

	When("the hash function is unknown", func() {
		It("still makes a murmur64 token, as Tyk does, and reports the name", func() {
			token, err := session.GenerateToken(orgID, keyID, "wrong")
			Expect(token).To(Equal(murmur64Token))
			Expect(err).To(MatchError(session.ErrUnknownHashFunction))
		})
	})

	When("no key id is given", func() {
		It("uses a random UUID v4 in hex without dashes", func() {
			token, err := session.GenerateToken(orgID, "", "")
			Expect(err).NotTo(HaveOccurred())
			Expect(token).To(MatchRegexp(`^` + orgID + `[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$`))
		})

		It("gives a different id each time", func() {
			a, _ := session.GenerateToken(orgID, "", "murmur64")
			b, _ := session.GenerateToken(orgID, "", "murmur64")
			Expect(a).NotTo(Equal(b))
			Expect(session.TokenOrg(a)).To(Equal(orgID))
		})
	})
})

var _ = Describe("Reading a key as Tyk does", func() {
	Describe("TokenHashFunction", func() {
		It("is the token's \"h\"", func() {
			Expect(session.TokenHashFunction(sha256Token)).To(Equal("sha256"))
		})

		It("is empty for a legacy key", func() {
			Expect(session.TokenHashFunction(legacyKey)).To(BeEmpty())
		})

		It("is the first \"h\" of a token that has two, as Tyk's JSON reader takes it", func() {
			twice := base64.StdEncoding.EncodeToString([]byte(`{"org":"o","id":"i","h":"murmur32","h":"sha256"}`))
			Expect(session.TokenHashFunction(twice)).To(Equal("murmur32"))
		})
	})

	// The cases of Tyk's storage/storage_test.go Test_TokenOrg.
	Describe("TokenOrg", func() {
		It("is the token's \"org\"", func() {
			Expect(session.TokenOrg("eyJvcmciOiI2NDkyZjY2ZTZlYmJjNTZjNmE2YmYwMjIiLCJpZCI6IjEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU5IiwiaCI6Im11cm11cjY0In0=")).
				To(Equal("6492f66e6ebbc56c6a6bf022"))
		})

		It("is the first 24 characters of a longer legacy key when they are hex", func() {
			Expect(session.TokenOrg("6492f66e6ebbc56c6a6bf022657c162274933214b91ea570")).To(Equal("6492f66e6ebbc56c6a6bf022"))
		})

		It("is empty for a long key that does not start with hex", func() {
			Expect(session.TokenOrg("testdata-JJNIsqyZViCvcnbX8ouvG7yctsH1irHa2aklAFYC")).To(BeEmpty())
		})

		It("is empty for a short hex key", func() {
			Expect(session.TokenOrg("6492f66e6e")).To(BeEmpty())
		})
	})

	Describe("TokenKeyID", func() {
		It("is the token's \"id\"", func() {
			Expect(session.TokenKeyID(murmur64Token)).To(Equal(keyID))
		})

		It("is an error for a legacy key", func() {
			_, err := session.TokenKeyID(legacyKey)
			Expect(err).To(HaveOccurred())
		})
	})
})

var _ = Describe("An org's token prefix (OrgTokenPrefix)", func() {
	It("starts every token of the org, whatever its id and function", func() {
		for _, token := range []string{murmur32Token, murmur64Token, murmur128Token, sha256Token, customMurmur64Token} {
			Expect(token).To(HavePrefix(session.OrgTokenPrefix(orgID)))
		}
	})

	It("starts no token of another org that shares the first characters of its id", func() {
		other, err := session.GenerateToken(orgID[:len(orgID)-1], keyID, "murmur64")
		Expect(err).NotTo(HaveOccurred())
		Expect(other).NotTo(HavePrefix(session.OrgTokenPrefix(orgID)))
	})
})
