package store

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// SealedPrefix starts a secret sealed at rest (package seal):
//
//	kpseal1:<key id>:<fingerprint>:<base64url nonce+ciphertext>
//
// The fingerprint is that of the plaintext, so a store can refuse a second
// copy of a secret without being able to read either copy.
const SealedPrefix = "kpseal1:"

// Fingerprint identifies a secret without revealing it: two keys hold the
// same secret exactly when their fingerprints are equal. It is the first
// 128 bits of the secret's SHA-256 in hex (provider keys carry far more
// entropy than that, so it cannot be reversed by guessing). A sealed secret
// yields the fingerprint of its plaintext, read from the sealed form.
func Fingerprint(secret string) string {
	if rest, ok := strings.CutPrefix(secret, SealedPrefix); ok {
		parts := strings.SplitN(rest, ":", 3)
		if len(parts) == 3 && len(parts[1]) == 32 {
			return parts[1]
		}
	}
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:16])
}

// fingerprint is a Fingerprint in binary.
type fingerprint [16]byte

// fingerprintOf is Fingerprint(secret) in binary.
func fingerprintOf(secret string) fingerprint {
	var fp fingerprint
	if strings.HasPrefix(secret, SealedPrefix) {
		if _, err := hex.Decode(fp[:], []byte(Fingerprint(secret))); err == nil {
			return fp
		}
	}
	sum := sha256.Sum256([]byte(secret))
	copy(fp[:], sum[:16])
	return fp
}
