package session

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/buger/jsonparser"
)

// tokenPrefix is how the base64 of a JSON object starts (`{"`); only keys
// starting with it are read as Tyk tokens.
const tokenPrefix = "ey"

// orgIDLength is the length of a Mongo ObjectID, the form of Tyk's org ids;
// a legacy key starting with that many hex digits carries its org.
const orgIDLength = 24

// GenerateToken makes a key as Tyk's storage.GenerateToken does. With a hash
// function, the key is the standard base64 (padded) of
//
//	{"org":"<orgID>","id":"<keyID>","h":"<hashFunction>"}
//
// written as is, without JSON escaping; Tyk stores it under the hash the
// "h" names. Without one it is the legacy key orgID+keyID, stored under its
// murmur32. An empty keyID is replaced by a random UUID v4 in hex without
// dashes. An unknown hashFunction gives a murmur64 token together with an
// error wrapping ErrUnknownHashFunction, as Tyk does.
//
// Tyk's control API first removes an orgID prefix from keyID (see
// Store.GenerateKey).
func GenerateToken(orgID, keyID, hashFunction string) (string, error) {
	if keyID == "" {
		id, err := randomKeyID()
		if err != nil {
			return "", err
		}
		keyID = id
	}
	if hashFunction == "" {
		return orgID + keyID, nil
	}
	err := ValidHashFunction(hashFunction)
	if err != nil {
		hashFunction = DefaultTokenHash
	}
	token := `{"org":"` + orgID + `","id":"` + keyID + `","h":"` + hashFunction + `"}`
	return base64.StdEncoding.EncodeToString([]byte(token)), err
}

// randomKeyID is a version 4 UUID in hex without dashes, the id Tyk gives a
// key created without one.
func randomKeyID() (string, error) {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return "", fmt.Errorf("generating a key id: %w", err)
	}
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return hex.EncodeToString(u[:]), nil
}

// tokenJSON decodes key as a Tyk token: standard base64 of what should be
// JSON. ok is false for a legacy key.
func tokenJSON(key string) (data []byte, ok bool) {
	if !strings.HasPrefix(key, tokenPrefix) {
		return nil, false
	}
	data, err := base64.StdEncoding.DecodeString(key)
	return data, err == nil
}

// TokenHashFunction is the "h" of a Tyk token (Tyk's TokenHashAlgo), or ""
// for a legacy key. It is read the way Tyk reads it, with
// github.com/buger/jsonparser: the first top-level "h" counts, and text
// after it need not be valid JSON.
func TokenHashFunction(key string) string {
	data, ok := tokenJSON(key)
	if !ok {
		return ""
	}
	h, err := jsonparser.GetString(data, "h")
	if err != nil {
		return ""
	}
	return h
}

// TokenOrg is the org a key belongs to, as Tyk's TokenOrg finds it: the
// "org" of a token, else the first 24 characters of a longer key when they
// are hex (a legacy key made as org id + key id), else "".
func TokenOrg(key string) string {
	if data, ok := tokenJSON(key); ok {
		if org, err := jsonparser.GetString(data, "org"); err == nil {
			return org
		}
	}
	if len(key) > orgIDLength {
		if _, err := hex.DecodeString(key[:orgIDLength]); err == nil {
			return key[:orgIDLength]
		}
	}
	return ""
}

// TokenKeyID is the "id" of a Tyk token (Tyk's TokenID); an error for a key
// that is not one.
func TokenKeyID(key string) (string, error) {
	data, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		return "", fmt.Errorf("key is not a token: %w", err)
	}
	id, err := jsonparser.GetString(data, "id")
	if err != nil {
		return "", fmt.Errorf("token has no id: %w", err)
	}
	return id, nil
}

// OrgTokenPrefix is how every token of orgID starts (see GenerateToken): the
// base64 of `{"org":"<orgID>"` up to its last whole character, as Tyk's
// key listing filters an org's tokens.
func OrgTokenPrefix(orgID string) string {
	b64 := base64.RawStdEncoding.EncodeToString([]byte(`{"org":"` + orgID + `"`))
	return b64[:len(b64)-2]
}
