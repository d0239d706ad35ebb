package adminapi

import "strings"

// StartKeyIDPrefix starts the id of a key given at start in its
// provider's StartKeysVariable; the rest of the id comes from the key's
// fingerprint, so every instance gives it the same id. Such a key comes
// back at the next start while the variable names it, even if deleted.
const StartKeyIDPrefix = "key_env_"

// StartKeysVariable names the environment variable that gives a
// provider's keys at start: the name in upper case, '-' as '_', then
// "_KEYS" (OPENAI_KEYS, MY_LLM_KEYS).
func StartKeysVariable(provider string) string {
	return strings.ToUpper(strings.ReplaceAll(provider, "-", "_")) + "_KEYS"
}

// IsStartKey reports whether id is that of a key given at start.
func IsStartKey(id string) bool { return strings.HasPrefix(id, StartKeyIDPrefix) }
