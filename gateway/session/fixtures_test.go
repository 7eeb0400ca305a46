package session_test

// Keys and the Redis names Tyk 5.14 gives them, written out as literals.
//
// How they were derived: Tyk v5.14.0 makes a key with
// internal/crypto/token.go GenerateToken (the base64 of
// {"org":…,"id":…,"h":…}, or org+id without a hash function) and, with
// hash_keys, stores its session at "apikey-" + internal/crypto/hash.go
// HashStr(key) (storage/redis_cluster.go fixKey), where HashStr takes the
// function from the token's "h" (TokenHashAlgo) and murmur32 otherwise, and
// hashes with github.com/TykTechnologies/murmur3
// v0.0.0-20230310161213-aad17efd5632 (murmur32, murmur64, murmur128) or
// crypto/sha256, as lowercase hex of Sum. Each value below was printed by
// Tyk's own GenerateToken and HashStr, built against those exact module
// versions (checksums as in Tyk's go.sum), and matched this package's
// functions on 200,000 random keys and tokens; the sha256 of "custom-key"
// was also checked with sha256sum.
const (
	// orgID is a Tyk org id (a Mongo ObjectID, 24 hex digits).
	orgID = "5e9d9544a1dcd60001d0ed20"
	// keyID is the id part of the generated keys below.
	keyID = "6f1c0b4e2a9d4f3b8c7e5d1a2b3c4d5e"

	// GenerateToken(orgID, keyID, <function>) and HashStr of each.
	murmur32Token      = "eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6IjZmMWMwYjRlMmE5ZDRmM2I4YzdlNWQxYTJiM2M0ZDVlIiwiaCI6Im11cm11cjMyIn0="
	murmur32TokenHash  = "17f23da1"
	murmur64Token      = "eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6IjZmMWMwYjRlMmE5ZDRmM2I4YzdlNWQxYTJiM2M0ZDVlIiwiaCI6Im11cm11cjY0In0="
	murmur64TokenHash  = "c889252bb3a0349e"
	murmur128Token     = "eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6IjZmMWMwYjRlMmE5ZDRmM2I4YzdlNWQxYTJiM2M0ZDVlIiwiaCI6Im11cm11cjEyOCJ9"
	murmur128TokenHash = "1c52379899e356e70bf54860b501aa92"
	sha256Token        = "eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6IjZmMWMwYjRlMmE5ZDRmM2I4YzdlNWQxYTJiM2M0ZDVlIiwiaCI6InNoYTI1NiJ9"
	sha256TokenHash    = "9ada45ace6eb9f4f9f2480635c2ba030c0bdc9f7411d3c09175c8dac79e545ab"

	// GenerateToken(orgID, keyID, ""): a legacy key, org id + key id.
	legacyKey     = orgID + keyID
	legacyKeyHash = "c2a4a0aa"

	// A key of no org and no token, as clients of old Tyk versions hold.
	plainKey     = "legacy-key-abc"
	plainKeyHash = "48121c41"

	// A token whose "h" names no function Tyk knows: murmur32 of it.
	md5Token     = "eyJvcmciOiJvIiwiaWQiOiJpIiwiaCI6Im1kNSJ9" // {"org":"o","id":"i","h":"md5"}
	md5TokenHash = "1e9cc05e"

	// customKey is a key id an admin chose (POST /tyk/keys/custom-key).
	// Tyk stores it as gateway.generateToken(orgID, customKey), the token
	// of hash_key_function at the time, and finds it from the bare id.
	customKey                = "custom-key"
	customKeyHash            = "d46c8d92" // murmur32 of the bare id
	customLegacyToken        = orgID + customKey
	customLegacyTokenHash    = "a9cdf718"
	customMurmur32Token      = "eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6ImN1c3RvbS1rZXkiLCJoIjoibXVybXVyMzIifQ=="
	customMurmur32TokenHash  = "173f66a4"
	customMurmur64Token      = "eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6ImN1c3RvbS1rZXkiLCJoIjoibXVybXVyNjQifQ=="
	customMurmur64TokenHash  = "87facdcda550e341"
	customMurmur128Token     = "eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6ImN1c3RvbS1rZXkiLCJoIjoibXVybXVyMTI4In0="
	customMurmur128TokenHash = "8f1657985d6f692ef3f4706616e57b61"
	customSHA256Token        = "eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6ImN1c3RvbS1rZXkiLCJoIjoic2hhMjU2In0="
	customSHA256TokenHash    = "841e4404f1eed703589451f1c2dd9b198d88c9459069eca86f0da746b14b99da"
)
