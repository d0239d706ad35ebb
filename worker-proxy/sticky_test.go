package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// cachingUpstream is an OpenAI-like chat API that caches prompts per key,
// as providers do: a request whose system prompt and first user message
// this key has seen before reports them as cached tokens
// (usage.prompt_tokens_details.cached_tokens).
type cachingUpstream struct {
	mu      sync.Mutex
	seen    map[string]bool // key + prompt prefix
	byKey   map[string]int
	limited map[string]bool // keys answering 429
}

func (u *cachingUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	var req struct {
		Model    string `json:"model"`
		Messages []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
	}
	b, _ := io.ReadAll(r.Body)
	json.Unmarshal(b, &req)
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.limited[key] {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("x-ratelimit-remaining-requests", "0")
		w.WriteHeader(429)
		io.WriteString(w, `{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-test on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`)
		return
	}
	u.byKey[key]++
	prefix := key
	for _, m := range req.Messages[:min(2, len(req.Messages))] {
		prefix += "\x00" + m.Content
	}
	cached := 0
	if u.seen[prefix] {
		cached = 1024
	}
	u.seen[prefix] = true
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"id":"chatcmpl-test","object":"chat.completion","model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],`+
		`"usage":{"prompt_tokens":1100,"completion_tokens":1,"total_tokens":1101,"prompt_tokens_details":{"cached_tokens":%d}}}`, req.Model, cached)
}

// conversationTurn is turn t of conversation c: the same system prompt
// and first user message, then the history so far.
func conversationTurn(c, t int) string {
	msgs := []map[string]string{
		{"role": "system", "content": fmt.Sprintf("You are assistant %d. %s", c, strings.Repeat("Long shared instructions. ", 50))},
		{"role": "user", "content": fmt.Sprintf("Conversation %d opens.", c)},
	}
	for i := 1; i <= t; i++ {
		msgs = append(msgs, map[string]string{"role": "assistant", "content": "ok"}, map[string]string{"role": "user", "content": fmt.Sprintf("turn %d", i)})
	}
	b, _ := json.Marshal(map[string]any{"model": "gpt-4o-mini", "messages": msgs})
	return string(b)
}

// cacheHitRate runs conversations × turns requests, turn by turn across
// the conversations, and returns the share of later turns (not the first)
// answered with cached tokens.
func cacheHitRate(t *testing.T, env map[string]string, conversations, turns, keys int) (float64, *cachingUpstream, *proxy) {
	t.Helper()
	up := &cachingUpstream{seen: map[string]bool{}, byKey: map[string]int{}, limited: map[string]bool{}}
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	full := map[string]string{"OPENAI_BASE_URL": srv.URL + "/v1"}
	for k, v := range env {
		full[k] = v
	}
	p := startProxy(t, full)
	for i := range keys {
		p.addKey("openai", fmt.Sprintf("sk-test-sticky-%02d-%08d", i, keySeq.Add(1)), 0)
	}
	hits, later := 0, 0
	for turn := range turns {
		for c := range conversations {
			r := p.do("POST", "/api/openai/chat/completions?strategy=random", conversationTurn(c, turn), bearer())
			if r.Status != 200 {
				t.Fatalf("conversation %d turn %d: %d %s", c, turn, r.Status, r.Body)
			}
			if turn == 0 {
				continue
			}
			later++
			if strings.Contains(string(r.Body), `"cached_tokens":1024`) {
				hits++
			}
		}
	}
	return float64(hits) / float64(later), up, p
}

func TestStickySessionsPromptCache(t *testing.T) {
	const conversations, turns, keys = 40, 5, 8
	sticky, up, p := cacheHitRate(t, map[string]string{"STICKY_SESSIONS": "on"}, conversations, turns, keys)
	plain, _, _ := cacheHitRate(t, map[string]string{"STICKY_SESSIONS": "off"}, conversations, turns, keys)
	t.Logf("prompt-cache hit rate of turns 2-%d, %d conversations over %d keys (random strategy): sticky %.0f%%, not sticky %.0f%%", turns, conversations, keys, sticky*100, plain*100)
	if sticky != 1 {
		t.Fatalf("sticky sessions: hit rate %.2f, want every later turn on the key that cached its prompt", sticky)
	}
	if plain >= sticky {
		t.Fatalf("without sticky sessions the hit rate is %.2f, not below %.2f", plain, sticky)
	}
	// Conversations still spread over the pool.
	up.mu.Lock()
	used := len(up.byKey)
	up.mu.Unlock()
	if used < keys/2 {
		t.Fatalf("sticky conversations used %d of %d keys", used, keys)
	}

	// An explicit session header wins over the body, and a key that
	// cannot serve hands the conversation to another, which keeps it.
	hdr := map[string]string{"Authorization": "Bearer " + testClientToken, "X-KeyPool-Session": "session-test-1"}
	first := p.do("POST", "/api/openai/chat/completions", conversationTurn(100, 0), hdr).Header.Get("X-KeyPool-Key-Id")
	for c := range 3 {
		if got := p.do("POST", "/api/openai/chat/completions", conversationTurn(200+c, 0), hdr).Header.Get("X-KeyPool-Key-Id"); got != first {
			t.Fatalf("session header: key %s, want %s", got, first)
		}
	}
	var secret string
	for _, k := range providerStatusOf(t, p, "openai").Keys {
		if k.ID == first {
			secret = k.MaskedKey
		}
	}
	up.mu.Lock()
	for key := range up.byKey {
		if strings.HasPrefix(key, secret[:4]) && strings.HasSuffix(key, secret[len(secret)-4:]) {
			up.limited[key] = true
		}
	}
	up.mu.Unlock()
	r := p.do("POST", "/api/openai/chat/completions", conversationTurn(100, 1), hdr)
	moved := r.Header.Get("X-KeyPool-Key-Id")
	if r.Status != 200 || moved == first || r.Header.Get("X-KeyPool-Attempts") != "2" {
		t.Fatalf("sticky key rate limited: %d via %s after %q attempts, want 200 from another key after 2", r.Status, moved, r.Header.Get("X-KeyPool-Attempts"))
	}
	if got := p.do("POST", "/api/openai/chat/completions", conversationTurn(100, 2), hdr).Header.Get("X-KeyPool-Key-Id"); got != moved {
		t.Fatalf("after failing over, the conversation went to %s, want it to stay on %s", got, moved)
	}
}
