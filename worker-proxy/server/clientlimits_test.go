package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/provider"
	"github.com/keypool/keypool/worker-proxy/store/boltstore"
)

// usageUpstream answers every provider like its API, with a usage of 80
// prompt and 40 completion tokens, as JSON or as the provider's stream,
// and counts the requests that reach it.
type usageUpstream struct{ calls atomic.Int64 }

func (u *usageUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	u.calls.Add(1)
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	path := r.URL.Path
	stream := strings.Contains(path, "stream") || r.URL.Query().Get("stream") == "1"
	var body, ct string
	switch {
	case strings.Contains(path, ":generateContent"):
		body, ct = `{"candidates":[{"content":{"parts":[{"text":"hi"}],"role":"model"},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":80,"candidatesTokenCount":40,"totalTokenCount":120},"modelVersion":"gemini-2.5-flash"}`, "application/json"
	case strings.Contains(path, ":streamGenerateContent"):
		body, ct = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"h\"}]}}],\"usageMetadata\":{\"promptTokenCount\":80,\"totalTokenCount\":80}}\r\n\r\n"+
			"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"i\"}]},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":80,\"candidatesTokenCount\":40,\"totalTokenCount\":120}}\r\n\r\n", "text/event-stream"
	case strings.HasSuffix(path, "/messages") && stream:
		body, ct = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":80,\"output_tokens\":1}}}\n\n"+
			"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":40}}\n\n"+
			"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", "text/event-stream"
	case strings.HasSuffix(path, "/messages"):
		body, ct = `{"type":"message","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":80,"output_tokens":40}}`, "application/json"
	case stream:
		body, ct = "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n"+
			"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":80,\"completion_tokens\":40,\"total_tokens\":120}}\n\ndata: [DONE]\n\n", "text/event-stream"
	default:
		body, ct = `{"object":"chat.completion","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":80,"completion_tokens":40,"total_tokens":120}}`, "application/json"
	}
	return &http.Response{StatusCode: 200, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Request: r,
		Header: http.Header{"Content-Type": {ct}}, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}, nil
}

type limitEnv struct {
	s     *Server
	up    *usageUpstream
	mu    sync.Mutex
	clock time.Time
}

func (e *limitEnv) now() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.clock
}

func (e *limitEnv) advance(d time.Duration) {
	e.mu.Lock()
	e.clock = e.clock.Add(d)
	e.mu.Unlock()
}

func newLimitEnv(t *testing.T) *limitEnv {
	t.Helper()
	e := &limitEnv{up: &usageUpstream{}, clock: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "keypool.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg, _ := provider.NewRegistry(provider.Defaults()...)
	e.s, err = New(t.Context(), Config{AdminKey: adminKey, Transport: e.up, Now: e.now,
		ClientTokens: []string{"env-test-client-token-000001"},
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil))}, st, reg)
	if err != nil {
		t.Fatal(err)
	}
	e.s.pool.AddAll([]pool.Key{
		{ID: "key_openai", Provider: "openai", Secret: "sk-test-limits-openai-0001", IsActive: true},
		{ID: "key_gemini", Provider: "gemini", Secret: "AIza-test-limits-gemini-01", IsActive: true},
		{ID: "key_anthropic", Provider: "anthropic", Secret: "sk-ant-test-limits-000001", IsActive: true},
	})
	return e
}

// token creates a client token with settings and returns its secret and id.
func (e *limitEnv) token(t *testing.T, body string) (string, string) {
	t.Helper()
	w := serve(e.s, "POST", "/admin/tokens", body)
	var resp adminapi.CreateTokenResponse
	if w.Code != 201 || json.Unmarshal(w.Body.Bytes(), &resp) != nil {
		t.Fatalf("create token %s: %d %s", body, w.Code, w.Body)
	}
	return resp.Token, resp.ID
}

// relay sends a relay request with a client token.
func (e *limitEnv) relay(token, method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	e.s.ServeHTTP(w, req)
	return w
}

func (e *limitEnv) tokenView(t *testing.T, id string) adminapi.Token {
	t.Helper()
	var list adminapi.TokenList
	json.Unmarshal(serve(e.s, "GET", "/admin/tokens", "").Body.Bytes(), &list)
	for _, tok := range list.Tokens {
		if tok.ID == id {
			return tok
		}
	}
	t.Fatalf("token %s not listed", id)
	return adminapi.Token{}
}

// One route per error shape.
var shapeRoutes = []struct {
	name, path, body string
	check            func(t *testing.T, body map[string]any, status int)
}{
	{"openai native", "/api/openai/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[]}`, checkOpenAIShape},
	{"front door", "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[]}`, checkOpenAIShape},
	{"gemini native", "/api/gemini/v1beta/models/gemini-2.5-flash:generateContent", `{"contents":[]}`, checkGoogleShape},
	{"gemini openai-compatible", "/api/gemini/v1beta/openai/chat/completions", `{"model":"gemini-2.5-flash","messages":[]}`, checkOpenAIShape},
	{"anthropic native", "/api/anthropic/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[]}`, checkAnthropicShape},
}

func checkOpenAIShape(t *testing.T, body map[string]any, status int) {
	t.Helper()
	e, _ := body["error"].(map[string]any)
	if e == nil || e["message"] == "" || e["code"] == nil || e["type"] == nil {
		t.Fatalf("not OpenAI's error shape: %v", body)
	}
	if status == 429 && e["code"] != "rate_limit_exceeded" {
		t.Fatalf("429 code %v, want rate_limit_exceeded", e["code"])
	}
}

func checkGoogleShape(t *testing.T, body map[string]any, status int) {
	t.Helper()
	e, _ := body["error"].(map[string]any)
	want := map[int]string{401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED"}[status]
	if e == nil || e["code"] != float64(status) || e["status"] != want || e["message"] == "" {
		t.Fatalf("not Google's error shape for %d: %v", status, body)
	}
	if status == 429 && !strings.Contains(mustJSON(e["details"]), `"retryDelay":"30s"`) {
		t.Fatalf("429 without RetryInfo 30s: %v", e["details"])
	}
}

func checkAnthropicShape(t *testing.T, body map[string]any, status int) {
	t.Helper()
	e, _ := body["error"].(map[string]any)
	want := map[int]string{401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}[status]
	if body["type"] != "error" || e == nil || e["type"] != want || e["message"] == "" {
		t.Fatalf("not Anthropic's error shape for %d: %v", status, body)
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func decodeBody(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	return m
}

func TestTokenRPMOnEveryRouteInItsShape(t *testing.T) {
	for _, rt := range shapeRoutes {
		t.Run(rt.name, func(t *testing.T) {
			e := newLimitEnv(t)
			tok, id := e.token(t, `{"name":"two a minute","limits":{"rpm":2}}`)
			for i := range 2 {
				if w := e.relay(tok, "POST", rt.path, rt.body); w.Code != 200 {
					t.Fatalf("request %d: %d %s", i+1, w.Code, w.Body)
				}
			}
			before := e.up.calls.Load()
			w := e.relay(tok, "POST", rt.path, rt.body)
			if w.Code != 429 || w.Header().Get("Retry-After") != "30" || w.Header().Get("X-Should-Retry") != "true" {
				t.Fatalf("3rd request: %d Retry-After %q X-Should-Retry %q: %s", w.Code, w.Header().Get("Retry-After"), w.Header().Get("X-Should-Retry"), w.Body)
			}
			rt.check(t, decodeBody(t, w), 429)
			if !strings.Contains(w.Body.String(), "2 requests per minute") || strings.Contains(w.Body.String(), tok) {
				t.Fatalf("429 body must name the limit and never the token: %s", w.Body)
			}
			if e.up.calls.Load() != before {
				t.Fatal("a refused request reached the upstream")
			}
			// At the window's edge one slot frees, and only one.
			e.advance(30*time.Second - time.Millisecond)
			if w := e.relay(tok, "POST", rt.path, rt.body); w.Code != 429 {
				t.Fatalf("just before the slot frees: %d", w.Code)
			}
			e.advance(time.Millisecond)
			if w := e.relay(tok, "POST", rt.path, rt.body); w.Code != 200 {
				t.Fatalf("when the slot frees: %d %s", w.Code, w.Body)
			}
			if w := e.relay(tok, "POST", rt.path, rt.body); w.Code != 429 {
				t.Fatalf("after taking the freed slot: %d", w.Code)
			}
			u := e.tokenView(t, id).Usage
			if u.Requests != 6 || u.Refused != 3 || u.PromptTokens != 3*80 || u.CompletionTokens != 3*40 {
				t.Fatalf("token usage %+v, want 6 requests, 3 refused, 240/120 tokens", u)
			}
		})
	}
}

func TestTokenExpiryProvidersAndModels(t *testing.T) {
	for _, rt := range shapeRoutes {
		t.Run(rt.name, func(t *testing.T) {
			e := newLimitEnv(t)
			exp := e.now().Add(time.Hour).Format(time.RFC3339)
			tok, _ := e.token(t, `{"name":"expiring","expiresAt":"`+exp+`"}`)
			if w := e.relay(tok, "POST", rt.path, rt.body); w.Code != 200 {
				t.Fatalf("before expiry: %d %s", w.Code, w.Body)
			}
			e.advance(time.Hour)
			before := e.up.calls.Load()
			w := e.relay(tok, "POST", rt.path, rt.body)
			if w.Code != 401 {
				t.Fatalf("at expiry: %d %s", w.Code, w.Body)
			}
			rt.check(t, decodeBody(t, w), 401)

			prov := map[bool]string{true: "openai", false: "anthropic"}[!strings.Contains(rt.path, "openai")]
			denied, _ := e.token(t, `{"name":"not this provider","providers":["`+prov+`"]}`)
			if strings.Contains(rt.path, prov) || (rt.path == "/v1/chat/completions" && prov == "openai") {
				t.Skip("route uses the allowed provider")
			}
			w = e.relay(denied, "POST", rt.path, rt.body)
			if w.Code != 403 {
				t.Fatalf("provider not allowed: %d %s", w.Code, w.Body)
			}
			rt.check(t, decodeBody(t, w), 403)

			onlyOther, _ := e.token(t, `{"name":"other models","models":["o3*","claude-opus-*"]}`)
			w = e.relay(onlyOther, "POST", rt.path, rt.body)
			if w.Code != 403 || !strings.Contains(w.Body.String(), "may not use model") {
				t.Fatalf("model not allowed: %d %s", w.Code, w.Body)
			}
			rt.check(t, decodeBody(t, w), 403)
			if e.up.calls.Load() != before {
				t.Fatal("a refused request reached the upstream")
			}
			allowed, _ := e.token(t, `{"name":"these models","models":["gpt-4o*","gemini-2.5-*","claude-sonnet-4-5"]}`)
			if w := e.relay(allowed, "POST", rt.path, rt.body); w.Code != 200 {
				t.Fatalf("allowed model: %d %s", w.Code, w.Body)
			}
		})
	}
}

// A body naming "model" twice cannot pass a model check with one and
// reach the upstream with the other.
func TestTokenModelsDuplicateModelRefused(t *testing.T) {
	e := newLimitEnv(t)
	tok, _ := e.token(t, `{"name":"mini only","models":["gpt-4o-mini"]}`)
	for _, path := range []string{"/api/openai/v1/chat/completions", "/v1/chat/completions"} {
		w := e.relay(tok, "POST", path, `{"model":"gpt-4o-mini","messages":[],"model":"o3"}`)
		if w.Code != 400 {
			t.Fatalf("%s: duplicate model: %d %s", path, w.Code, w.Body)
		}
	}
	if e.up.calls.Load() != 0 {
		t.Fatal("a refused request reached the upstream")
	}
}

// tpm counts the tokens answers report, JSON or streamed: the request that
// goes over finishes, the next is refused until the window has room.
func TestTokenTPMFromJSONAndStreams(t *testing.T) {
	for _, tc := range []struct{ name, path, body string }{
		{"openai json", "/api/openai/v1/chat/completions", `{"model":"gpt-4o-mini"}`},
		{"openai stream", "/api/openai/v1/chat/completions?stream=1", `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true}}`},
		{"gemini stream", "/api/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", `{}`},
		{"anthropic stream", "/api/anthropic/v1/messages?stream=1", `{"model":"claude-sonnet-4-5","stream":true}`},
		{"front door", "/v1/chat/completions", `{"model":"gemini-2.5-flash"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newLimitEnv(t)
			tok, id := e.token(t, `{"name":"tokens","limits":{"tpm":150}}`)
			if w := e.relay(tok, "POST", tc.path, tc.body); w.Code != 200 {
				t.Fatalf("first: %d %s", w.Code, w.Body)
			}
			// 120 of 150 spent: room left, so the next one runs and goes over.
			if w := e.relay(tok, "POST", tc.path, tc.body); w.Code != 200 {
				t.Fatalf("second: %d %s", w.Code, w.Body)
			}
			w := e.relay(tok, "POST", tc.path, tc.body)
			// 240 spent at 0.4s a token: room for one more in 96s+0.4s-60s.
			if w.Code != 429 || w.Header().Get("Retry-After") != "37" || !strings.Contains(w.Body.String(), "150 tokens per minute (tpm); retry in 37s") {
				t.Fatalf("third: %d Retry-After %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
			}
			u := e.tokenView(t, id).Usage
			if u.PromptTokens != 160 || u.CompletionTokens != 80 {
				t.Fatalf("token usage %+v, want 160/80", u)
			}
			var status adminapi.StatusResponse
			json.Unmarshal(serve(e.s, "GET", "/admin/status", "").Body.Bytes(), &status)
			var sum int64
			for _, p := range status.Providers {
				for _, k := range p.Keys {
					sum += k.PromptTokens + k.CompletionTokens
				}
				if p.PromptTokens+p.CompletionTokens > 0 && p.PromptTokens != 160 {
					t.Fatalf("provider %s counts %d prompt tokens, want 160", p.Provider, p.PromptTokens)
				}
			}
			if sum != 240 {
				t.Fatalf("keys count %d tokens, want 240", sum)
			}
			var usage adminapi.UsageResponse
			json.Unmarshal(serve(e.s, "GET", "/admin/usage", "").Body.Bytes(), &usage)
			if len(usage.Models) != 1 || usage.Models[0].Requests != 2 || usage.Models[0].PromptTokens != 160 ||
				len(usage.Tokens) != 1 || usage.Tokens[0].Name != id || usage.Tokens[0].Requests != 3 {
				t.Fatalf("usage %+v", usage)
			}
		})
	}
}

func TestTokenSettingsValidationWritesNothing(t *testing.T) {
	e := newLimitEnv(t)
	_, id := e.token(t, `{"name":"base","limits":{"rpm":5},"models":["gpt-*"]}`)
	future := e.now().Add(time.Hour).Format(time.RFC3339)
	for _, tc := range []struct{ body, msg string }{
		{`{"name":"x","limits":{"rpm":-1}}`, "limits.rpm"},
		{`{"name":"x","limits":{"rph":1}}`, "Unknown field"},
		{`{"name":"x","limits":{"tpd":"lots"}}`, "integer"},
		{`{"name":"x","expiresAt":"tomorrow"}`, "RFC 3339"},
		{`{"name":"x","expiresAt":"2001-01-01T00:00:00Z"}`, "future"},
		{`{"name":"x","providers":["nope"]}`, "matches no configured provider"},
		{`{"name":"x","models":[""]}`, "models[0]"},
		{`{"name":"x","models":"gpt-4o"}`, "array"},
	} {
		for _, req := range []struct{ method, path string }{{"POST", "/admin/tokens"}, {"PUT", "/admin/tokens/" + id}} {
			w := serve(e.s, req.method, req.path, tc.body)
			if w.Code != 400 || !strings.Contains(w.Body.String(), tc.msg) || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
				t.Errorf("%s %s: %d %s, want 400 naming %q", req.method, tc.body, w.Code, w.Body, tc.msg)
			}
		}
	}
	var list adminapi.TokenList
	json.Unmarshal(serve(e.s, "GET", "/admin/tokens", "").Body.Bytes(), &list)
	if len(list.Tokens) != 2 {
		t.Fatalf("%d tokens after refused creates, want 2 (env and base)", len(list.Tokens))
	}
	if v := e.tokenView(t, id); v.Limits.RPM != 5 || len(v.Models) != 1 || v.Name != "base" {
		t.Fatalf("refused updates changed the token: %+v", v)
	}

	// A PUT changes only what it names; limits replace all four.
	w := serve(e.s, "PUT", "/admin/tokens/"+id, `{"limits":{"tpd":1000},"expiresAt":"`+future+`","providers":["openai","gemini"]}`)
	if w.Code != 200 {
		t.Fatalf("update: %d %s", w.Code, w.Body)
	}
	v := e.tokenView(t, id)
	if v.Limits.RPM != 0 || v.Limits.TPD != 1000 || v.Name != "base" || len(v.Models) != 1 || len(v.Providers) != 2 ||
		v.ExpiresAt == nil || *v.ExpiresAt != e.now().Add(time.Hour).UTC().Format(adminapi.TimeLayout) || v.UpdatedAt == nil {
		t.Fatalf("after update: %+v", v)
	}
	w = serve(e.s, "PUT", "/admin/tokens/"+id, `{"expiresAt":"","providers":[],"models":[],"name":"renamed"}`)
	if v = e.tokenView(t, id); w.Code != 200 || v.ExpiresAt != nil || len(v.Providers) != 0 || len(v.Models) != 0 || v.Name != "renamed" {
		t.Fatalf("clearing: %d %+v", w.Code, v)
	}
	if w := serve(e.s, "PUT", "/admin/tokens/tok_nothere", `{"name":"x"}`); w.Code != 404 {
		t.Fatalf("unknown token: %d", w.Code)
	}
	if w := serve(e.s, "PUT", "/admin/tokens/env_1", `{"limits":{"rpm":1}}`); w.Code != 409 {
		t.Fatalf("CLIENT_TOKENS token: %d", w.Code)
	}

	// Settings survive a restart: a new server over the same store.
	reg, _ := provider.NewRegistry(provider.Defaults()...)
	s2, err := New(t.Context(), Config{AdminKey: adminKey, Now: e.now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, e.s.store, reg)
	if err != nil {
		t.Fatal(err)
	}
	var list2 adminapi.TokenList
	json.Unmarshal(serve(s2, "GET", "/admin/tokens", "").Body.Bytes(), &list2)
	if len(list2.Tokens) != 1 || list2.Tokens[0].Limits.TPD != 1000 || list2.Tokens[0].Name != "renamed" {
		t.Fatalf("after restart: %+v", list2.Tokens)
	}
}

// Changing a token's limits takes effect on the next request, with full
// budgets.
func TestTokenLimitEditTakesEffect(t *testing.T) {
	e := newLimitEnv(t)
	tok, id := e.token(t, `{"name":"one","limits":{"rpm":1}}`)
	path, body := "/api/openai/v1/chat/completions", `{"model":"gpt-4o-mini"}`
	e.relay(tok, "POST", path, body)
	if w := e.relay(tok, "POST", path, body); w.Code != 429 {
		t.Fatalf("%d, want 429", w.Code)
	}
	if w := serve(e.s, "PUT", "/admin/tokens/"+id, `{"limits":{"rpm":100,"rpd":3}}`); w.Code != 200 {
		t.Fatalf("update: %d %s", w.Code, w.Body)
	}
	for i := range 3 {
		if w := e.relay(tok, "POST", path, body); w.Code != 200 {
			t.Fatalf("request %d after raising the limit: %d", i+1, w.Code)
		}
	}
	w := e.relay(tok, "POST", path, body)
	if w.Code != 429 || w.Header().Get("X-Should-Retry") != "false" || w.Header().Get("Retry-After") != "28800" {
		t.Fatalf("rpd: %d Retry-After %q X-Should-Retry %q", w.Code, w.Header().Get("Retry-After"), w.Header().Get("X-Should-Retry"))
	}
}
