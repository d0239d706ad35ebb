package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/keypool/keypool/worker-proxy/pool"
)

// MinSecretLen is the shortest admin key or client token accepted.
const MinSecretLen = 16

// adminAuth checks the X-Admin-Key header in constant time.
type adminAuth struct{ sum [32]byte }

func (a adminAuth) ok(r *http.Request) bool { return a.is(r.Header.Get("X-Admin-Key")) }

// is reports whether secret is the admin key.
func (a adminAuth) is(secret string) bool {
	got := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(got[:], a.sum[:]) == 1
}

// clientTokenHint tells a relay caller refused for its token what to send
// instead, naming the admin key if that is what it sent.
func (s *Server) clientTokenHint(r *http.Request) string {
	if tok := clientToken(r); tok != "" && s.admin.is(tok) {
		return "This is the admin key, which opens the admin API only; use a client token (from CLIENT_TOKENS or POST /admin/tokens) where your SDK sends its API key"
	}
	return "Send a client token where your SDK sends its API key (Authorization: Bearer, x-goog-api-key, x-api-key or ?key=)"
}

// tokenRef is a known client token, by the SHA-256 of its value.
type tokenRef struct {
	id, name, masked, source string
	token                    pool.ClientToken
}

// tokens is the set of client tokens the relay accepts. Lookups are
// lock-free; changes copy the set.
type tokens struct {
	mu     sync.Mutex
	byHash atomic.Pointer[map[[32]byte]tokenRef]
}

func newTokens() *tokens {
	t := &tokens{}
	m := map[[32]byte]tokenRef{}
	t.byHash.Store(&m)
	return t
}

// hashToken returns the SHA-256 of a token and its hex form.
func hashToken(tok string) ([32]byte, string) {
	sum := sha256.Sum256([]byte(tok))
	return sum, hex.EncodeToString(sum[:])
}

func (t *tokens) update(f func(m map[[32]byte]tokenRef)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.byHash.Load()
	m := make(map[[32]byte]tokenRef, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	f(m)
	t.byHash.Store(&m)
}

func (t *tokens) has(tok string) bool {
	_, ok := t.get(tok)
	return ok
}

// get returns the known token tok.
func (t *tokens) get(tok string) (tokenRef, bool) {
	sum := sha256.Sum256([]byte(tok))
	ref, ok := (*t.byHash.Load())[sum]
	return ref, ok
}

func (t *tokens) list() []tokenRef {
	m := *t.byHash.Load()
	out := make([]tokenRef, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// clientCredentialHeaders are where SDKs send their API key; the relay reads
// the client token from them and never forwards them.
var clientCredentialHeaders = []string{"Authorization", "X-Goog-Api-Key", "X-Api-Key", "Api-Key"}

// clientToken returns the token a relay caller presented, from wherever its
// SDK sends an API key, and whether one was present.
func clientToken(r *http.Request) string {
	if v := r.Header.Get("Authorization"); v != "" {
		if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
			return strings.TrimSpace(v[7:])
		}
		return strings.TrimSpace(v)
	}
	for _, h := range clientCredentialHeaders[1:] {
		if v := r.Header.Get(h); v != "" {
			return v
		}
	}
	if strings.Contains(r.URL.RawQuery, "key=") {
		return r.URL.Query().Get("key")
	}
	return ""
}
