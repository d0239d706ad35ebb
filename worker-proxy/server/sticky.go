package server

import (
	"crypto/sha256"
	"encoding/binary"
	"net/http"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/keypool/keypool/worker-proxy/pool"
)

// Sticky sessions: providers cache prompts per key (or organization), so
// the turns of one conversation are cheaper and faster on the key that
// served the first. A conversation is named by the X-KeyPool-Session
// header, else by a hash of its system prompt and first user message; it
// goes back to its key while that key can serve, and fails over as usual
// when it cannot.

// sessionHeader names a conversation explicitly.
const sessionHeader = "X-Keypool-Session"

// stickyTTL is how long a conversation stays on its key after its last
// request; maxSticky bounds the conversations remembered.
const (
	stickyTTL = time.Hour
	maxSticky = 100_000
)

type stickyKey struct {
	provider string
	session  uint64
}

type stickyEntry struct {
	e    *pool.Entry
	seen time.Time
}

// sticky remembers which key served each conversation.
type sticky struct {
	bodies bool // name conversations without the header by their prompt
	mu     sync.Mutex
	m      map[stickyKey]stickyEntry
}

func newSticky() *sticky { return &sticky{m: map[stickyKey]stickyEntry{}} }

func (s *sticky) get(provider string, session uint64, now time.Time) *pool.Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.m[stickyKey{provider, session}]
	if !ok || now.Sub(x.seen) > stickyTTL {
		return nil
	}
	return x.e
}

func (s *sticky) put(provider string, session uint64, e *pool.Entry, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= maxSticky {
		for k, x := range s.m { // drop the stale, else an arbitrary half
			if now.Sub(x.seen) > stickyTTL || len(s.m) >= maxSticky/2 {
				delete(s.m, k)
			}
		}
	}
	s.m[stickyKey{provider, session}] = stickyEntry{e, now}
}

// sessionOf names the request's conversation: the X-KeyPool-Session
// header, else (with bodies) the hash of the system prompt and the first user message
// (OpenAI and compatible: messages; Anthropic: system and messages;
// Gemini: systemInstruction and contents). 0 when there is none.
func sessionOf(h http.Header, body []byte, bodies bool) uint64 {
	if v := h.Get(sessionHeader); v != "" {
		return hash64("h", v)
	}
	if !bodies || len(body) == 0 || body[0] != '{' {
		return 0
	}
	r := gjson.GetManyBytes(body, "system", "systemInstruction", "messages.#(role==\"system\")", "messages.#(role==\"user\")", "contents.0")
	var first string
	switch {
	case r[3].Exists():
		first = r[3].Raw
	case r[4].Exists():
		first = r[4].Raw
	default:
		return 0
	}
	return hash64("b", r[0].Raw, r[1].Raw, r[2].Raw, first)
}

func hash64(parts ...string) uint64 {
	h := sha256.New()
	for _, p := range parts {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return binary.LittleEndian.Uint64(h.Sum(nil))
}

// stickyPick takes the key that served st's conversation, if it can serve
// now; nil otherwise.
func (s *Server) stickyPick(st *relayState) *pool.Entry {
	if s.sticky == nil || st.session == 0 {
		return nil
	}
	e := s.sticky.get(st.prov.Name, st.session, s.cfg.Now())
	if e == nil {
		return nil
	}
	if cur, ok := s.pool.Entry(e.ID()); !ok || cur != e || !s.pool.Take(e, cleanModel(st.requestModel())) {
		return nil
	}
	return e
}
