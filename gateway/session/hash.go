package session

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"

	"github.com/spaolacci/murmur3"
)

// The hash functions tyk.conf's hash_key_function may name. A Tyk token
// carries the name of its function (see GenerateToken); any other key is
// hashed with murmur32.
const (
	HashMurmur32  = "murmur32"
	HashMurmur64  = "murmur64"
	HashMurmur128 = "murmur128"
	HashSHA256    = "sha256"
)

// DefaultTokenHash is the function Tyk writes into a token when
// hash_key_function names one it does not know.
const DefaultTokenHash = HashMurmur64

// ErrUnknownHashFunction is wrapped by the errors about a hash function
// name Tyk does not know.
var ErrUnknownHashFunction = errors.New("unknown hash function")

// ValidHashFunction reports whether name may be used as tyk.conf's
// hash_key_function (or an entry of hash_key_function_fallback). The empty
// name is valid: it keeps Tyk's legacy keys, which are hashed with
// murmur32.
//
// Tyk itself accepts any name and silently issues murmur64 tokens for one it
// does not know; tollgate refuses the configuration instead, so a typo does
// not change which function new keys are stored under.
func ValidHashFunction(name string) error {
	switch name {
	case "", HashMurmur32, HashMurmur64, HashMurmur128, HashSHA256:
		return nil
	}
	return fmt.Errorf("hash_key_function: %w %q (want %s, %s, %s or %s)",
		ErrUnknownHashFunction, name, HashMurmur32, HashMurmur64, HashMurmur128, HashSHA256)
}

// Hash is the hash Tyk stores key under with hash_keys (Tyk's
// storage.HashStr): lowercase hex of key hashed with the function its token
// names, murmur32 for a legacy key or a token naming no known function.
func Hash(key string) string {
	return HashWith("", key)
}

// HashWith is lowercase hex of key hashed with the named function (Tyk's
// storage.HashStr(key, function)): "" means the function key's token
// names, as Hash; an unknown name means murmur32. Lengths: murmur32 8,
// murmur64 16, murmur128 32, sha256 64 characters.
func HashWith(function, key string) string {
	if function == "" {
		function = TokenHashFunction(key)
	}
	b := []byte(key)
	switch function {
	case HashMurmur64:
		var out [8]byte
		binary.BigEndian.PutUint64(out[:], murmur3.Sum64(b))
		return hex.EncodeToString(out[:])
	case HashMurmur128:
		var out [16]byte
		h1, h2 := murmur3.Sum128(b)
		binary.BigEndian.PutUint64(out[:8], h1)
		binary.BigEndian.PutUint64(out[8:], h2)
		return hex.EncodeToString(out[:])
	case HashSHA256:
		sum := sha256.Sum256(b)
		return hex.EncodeToString(sum[:])
	default:
		var out [4]byte
		binary.BigEndian.PutUint32(out[:], tykMurmur32(b))
		return hex.EncodeToString(out[:])
	}
}

// tykMurmur32 is Tyk's "murmur32". Tyk hashes with its fork
// github.com/TykTechnologies/murmur3, whose 32-bit Sum returns the running
// state of MurmurHash3 x86_32 (seed 0) after the input's whole 4-byte
// blocks: the last len%4 bytes, the length and the final avalanche never
// enter it. So keys of fewer than 4 bytes all hash to 00000000, and keys
// that differ only in their last len%4 bytes share a hash. It is reproduced
// here because that is the name under which Tyk stores and finds such keys;
// spaolacci/murmur3's New32 is the complete hash and gives other bytes.
//
// Blocks are read little-endian, as the fork reads them on the
// little-endian machines Tyk runs on.
func tykMurmur32(b []byte) uint32 {
	const (
		c1 = 0xcc9e2d51
		c2 = 0x1b873593
	)
	var h uint32
	for ; len(b) >= 4; b = b[4:] {
		k := binary.LittleEndian.Uint32(b)
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
		h = bits.RotateLeft32(h, 13)
		h = h*5 + 0xe6546b64
	}
	return h
}
