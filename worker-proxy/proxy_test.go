package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/pool"
)

// startUpstream starts a recording fake provider that answers 200 with a
// small JSON body and a custom header.
func startUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{handler: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream-Test", "yes")
		w.WriteHeader(http.StatusOK)
		fmt.Fprintf(w, `{"path":%q,"answer":"hello"}`, r.URL.Path)
	}}
	srv := httptest.NewServer(u)
	t.Cleanup(srv.Close)
	u.URL = srv.URL
	return u
}

// upstreamEnv points every provider at u.
func upstreamEnv(u *upstream, extra map[string]string) map[string]string {
	env := map[string]string{
		"GEMINI_BASE_URL":    u.URL + "/v1beta",
		"OPENAI_BASE_URL":    u.URL + "/v1",
		"ANTHROPIC_BASE_URL": u.URL + "/v1",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

var keyIDPattern = regexp.MustCompile(`^key_\d{13}_[a-z0-9]{6}$`)

func TestAdminKeysLifecycle(t *testing.T) {
	up := startUpstream(t)
	p := startProxy(t, upstreamEnv(up, nil))

	// The documented request and answer.
	r := p.admin("POST", "/admin/keys", `{"provider":"gemini","apiKey":"AIzaSyA-first-key-000000x7Q2","maxRequests":1000,"metadata":{"description":"Gemini API Key 1","tags":["production","backup"]}}`)
	if r.Status != http.StatusCreated {
		t.Fatalf("add: %d %s", r.Status, r.Body)
	}
	added := r.JSON(t)
	if added["message"] != "Key added successfully" || added["provider"] != "gemini" || !keyIDPattern.MatchString(added["keyId"].(string)) {
		t.Fatalf("add answer %s", r.Body)
	}
	id1 := added["keyId"].(string)
	id2 := p.addKey("gemini", "AIzaSyA-second-key-00000abcd", 0)
	id3 := p.addKey("gemini", "AIzaSyA-third-key-000000wxyz", 5)
	p.addKey("openai", "sk-openai-key-0000000000001", 0)

	// Deactivate one: activeKeys and availableKeys drop.
	r = p.admin("PUT", "/admin/keys/"+id2, map[string]any{"isActive": false})
	if r.Status != http.StatusOK {
		t.Fatalf("update: %d %s", r.Status, r.Body)
	}
	var st adminapi.ProviderStatus
	p.admin("GET", "/admin/status?provider=gemini", nil).Decode(t, &st)
	if st.Provider != "gemini" || st.TotalKeys != 3 || st.ActiveKeys != 2 || st.AvailableKeys != 2 || len(st.Keys) != 3 {
		t.Fatalf("status %+v", st)
	}
	k1 := st.Keys[0]
	if k1.ID != id1 || !k1.IsActive || k1.Usage != "0/1000" || k1.LastUsed != nil || k1.MaskedKey != "AIza…x7Q2" ||
		k1.Description != "Gemini API Key 1" || strings.Join(k1.Tags, ",") != "production,backup" {
		t.Fatalf("key 1 status %+v", k1)
	}
	if st.Keys[1].ID != id2 || st.Keys[1].IsActive || st.Keys[1].State != "inactive" || st.Keys[1].Usage != "0/unlimited" {
		t.Fatalf("key 2 status %+v", st.Keys[1])
	}
	// Status never carries a full secret.
	raw := p.admin("GET", "/admin/status", nil)
	for _, secret := range []string{"AIzaSyA-first-key-000000x7Q2", "AIzaSyA-second-key-00000abcd", "sk-openai-key-0000000000001"} {
		if strings.Contains(string(raw.Body), secret) {
			t.Fatalf("status leaks a secret: %s", raw.Body)
		}
	}
	var all adminapi.StatusResponse
	raw.Decode(t, &all)
	if all.TotalKeys != 4 || len(all.Providers) != 3 {
		t.Fatalf("all-provider status: %+v", all)
	}

	// PUT changes only what it names.
	r = p.admin("PUT", "/admin/keys/"+id1, `{"maxRequests":2000,"metadata":{"description":"renamed"}}`)
	var kr adminapi.KeyResponse
	r.Decode(t, &kr)
	if r.Status != 200 || kr.Key.MaxRequests != 2000 || kr.Key.Description != "renamed" || strings.Join(kr.Key.Tags, ",") != "production,backup" || !kr.Key.IsActive {
		t.Fatalf("partial update: %d %s", r.Status, r.Body)
	}
	r = p.admin("PUT", "/admin/keys/"+id1, `{"metadata":{"tags":["a","b"]}}`)
	r.Decode(t, &kr)
	if kr.Key.Description != "renamed" || strings.Join(kr.Key.Tags, ",") != "a,b" {
		t.Fatalf("tags update: %s", r.Body)
	}

	// Use a key, then reset the provider's usage.
	for range 3 {
		if r := p.do("POST", "/api/gemini/models/gemini-pro:generateContent", `{}`, map[string]string{"x-goog-api-key": testClientToken}); r.Status != 200 {
			t.Fatalf("relay: %d %s", r.Status, r.Body)
		}
	}
	p.admin("GET", "/admin/status?provider=gemini", nil).Decode(t, &st)
	if st.Keys[0].Requests+st.Keys[2].Requests != 3 || st.Keys[0].LastUsed == nil {
		t.Fatalf("usage not counted: %+v", st.Keys)
	}
	if _, err := time.Parse(adminapi.TimeLayout, *st.Keys[0].LastUsed); err != nil || !strings.HasSuffix(*st.Keys[0].LastUsed, "Z") {
		t.Fatalf("lastUsed %q is not like 2024-01-15T10:30:00.000Z", *st.Keys[0].LastUsed)
	}
	r = p.admin("POST", "/admin/reset", map[string]string{"provider": "gemini"})
	if r.Status != 200 || r.JSON(t)["keysReset"].(float64) != 3 {
		t.Fatalf("reset: %d %s", r.Status, r.Body)
	}
	p.admin("GET", "/admin/status?provider=gemini", nil).Decode(t, &st)
	for _, k := range st.Keys {
		if k.Requests != 0 || !strings.HasPrefix(k.Usage, "0/") {
			t.Fatalf("after reset: %+v", k)
		}
	}

	// Delete; the id is gone everywhere.
	if r := p.admin("DELETE", "/admin/keys/"+id3, nil); r.Status != 200 || r.JSON(t)["keyId"] != id3 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		if r := p.admin(m, "/admin/keys/"+id3, `{"isActive":true}`); r.Status != 404 || r.JSON(t)["error"] != "Key not found" {
			t.Errorf("%s deleted key: %d %s", m, r.Status, r.Body)
		}
	}
	p.assertNoSecretsLogged("AIzaSyA-first-key-000000x7Q2", "AIzaSyA-second-key-00000abcd", "AIzaSyA-third-key-000000wxyz", "sk-openai-key-0000000000001")
	if !strings.Contains(p.stderr.String(), "key="+id1) || !strings.Contains(p.stderr.String(), "msg=relay") {
		t.Fatalf("no relay log line with the key id:\n%s", p.stderr)
	}
}

func TestAdminErrors(t *testing.T) {
	p := startProxy(t, nil)
	id := p.addKey("gemini", "AIzaSyA-existing-key-0000000", 0)
	tests := []struct {
		name, method, path string
		body               any
		header             map[string]string
		status             int
		errContains        string
	}{
		{"no admin key", "GET", "/admin/status", nil, map[string]string{}, 401, "admin key"},
		{"wrong admin key", "GET", "/admin/status", nil, map[string]string{"X-Admin-Key": testAdminKey + "x"}, 401, "admin key"},
		{"bad json", "POST", "/admin/keys", `{"provider":`, nil, 400, "JSON"},
		{"empty body", "POST", "/admin/keys", ``, nil, 400, "empty"},
		{"unknown field", "POST", "/admin/keys", `{"provider":"gemini","apiKey":"abc","maxRequest":5}`, nil, 400, "maxRequest"},
		{"wrong type", "POST", "/admin/keys", `{"provider":"gemini","apiKey":"abc","maxRequests":"many"}`, nil, 400, "maxRequests"},
		{"missing provider", "POST", "/admin/keys", `{"apiKey":"abc"}`, nil, 400, "provider"},
		{"unknown provider", "POST", "/admin/keys", `{"provider":"nope","apiKey":"abc"}`, nil, 400, "unknown provider"},
		{"missing apiKey", "POST", "/admin/keys", `{"provider":"gemini"}`, nil, 400, "apiKey"},
		{"negative max", "POST", "/admin/keys", `{"provider":"gemini","apiKey":"abc","maxRequests":-1}`, nil, 400, "maxRequests"},
		{"whitespace key", "POST", "/admin/keys", `{"provider":"gemini","apiKey":"a b"}`, nil, 400, "whitespace"},
		{"duplicate", "POST", "/admin/keys", `{"provider":"gemini","apiKey":"AIzaSyA-existing-key-0000000"}`, nil, 409, "already"},
		{"two objects", "POST", "/admin/keys", `{"provider":"gemini","apiKey":"abc"}{}`, nil, 400, "single"},
		{"update bad type", "PUT", "/admin/keys/" + id, `{"isActive":"no"}`, nil, 400, "isActive"},
		{"update negative", "PUT", "/admin/keys/" + id, `{"maxRequests":-5}`, nil, 400, "maxRequests"},
		{"update unknown", "PUT", "/admin/keys/key_0_nope00", `{}`, nil, 404, "Key not found"},
		{"status unknown provider", "GET", "/admin/status?provider=nope", nil, nil, 400, "Unknown provider"},
		{"reset without provider", "POST", "/admin/reset", `{}`, nil, 400, "provider"},
		{"method not allowed", "PATCH", "/admin/keys/" + id, `{}`, nil, 405, "not allowed"},
		{"not found", "GET", "/admin/nothing", nil, nil, 404, "Not found"},
		{"unknown strategy", "POST", "/api/gemini/models/x:generateContent?strategy=fastest", `{}`, map[string]string{"Authorization": "Bearer " + testClientToken}, 400, "unknown strategy"},
		{"unknown relay provider", "POST", "/api/nope/x", `{}`, map[string]string{"Authorization": "Bearer " + testClientToken}, 404, "Unknown provider"},
		{"no client token", "POST", "/api/gemini/models/x:generateContent", `{}`, map[string]string{}, 401, "client token"},
		{"admin key is not a client token", "POST", "/api/gemini/models/x:generateContent", `{}`, map[string]string{"x-goog-api-key": testAdminKey}, 401, "client token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.header
			if h == nil {
				h = map[string]string{"X-Admin-Key": p.AdminKey}
			}
			r := p.do(tt.method, tt.path, tt.body, h)
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("content type %q", ct)
			}
			msg, _ := r.JSON(t)["error"].(string)
			if !strings.Contains(strings.ToLower(msg), strings.ToLower(tt.errContains)) {
				t.Fatalf("error %q does not mention %q", msg, tt.errContains)
			}
		})
	}
	// Nothing was half-written by the bad requests.
	var st adminapi.StatusResponse
	p.admin("GET", "/admin/status", nil).Decode(t, &st)
	if st.TotalKeys != 1 {
		t.Fatalf("bad requests changed the pool: %d keys", st.TotalKeys)
	}
}

func TestRelayMapsPathsAndKeys(t *testing.T) {
	up := startUpstream(t)
	p := startProxy(t, upstreamEnv(up, nil))
	gkey := "AIzaSyA-gemini-pool-key-0001"
	okey := "sk-openai-pool-key-000000001"
	akey := "sk-ant-pool-key-00000000001"
	p.addKey("gemini", gkey, 0)
	p.addKey("openai", okey, 0)
	p.addKey("anthropic", akey, 0)

	tests := []struct {
		name, method, path string
		header             map[string]string
		wantPath, wantQ    string
		wantKey            string
		wantHeader         [2]string
	}{
		{"gemini documented", "POST", "/api/gemini/models/gemini-pro:generateContent?strategy=roundRobin", map[string]string{"x-goog-api-key": testClientToken},
			"/v1beta/models/gemini-pro:generateContent", "", gkey, [2]string{"X-Goog-Api-Key", gkey}},
		{"gemini token in query", "POST", "/api/gemini/models/gemini-pro:streamGenerateContent?alt=sse&key=" + testClientToken, nil,
			"/v1beta/models/gemini-pro:streamGenerateContent", "alt=sse", gkey, [2]string{"X-Goog-Api-Key", gkey}},
		{"gemini sdk prefix not doubled", "POST", "/api/gemini/v1beta/models/gemini-2.5-flash:generateContent", map[string]string{"x-goog-api-key": testClientToken},
			"/v1beta/models/gemini-2.5-flash:generateContent", "", gkey, [2]string{}},
		{"gemini models list", "GET", "/api/gemini/models", map[string]string{"Authorization": "Bearer " + testClientToken},
			"/v1beta/models", "", gkey, [2]string{}},
		{"openai documented", "POST", "/api/openai/chat/completions?strategy=leastUsed", map[string]string{"Authorization": "Bearer " + testClientToken},
			"/v1/chat/completions", "", okey, [2]string{"Authorization", "Bearer " + okey}},
		{"openai sdk v1 prefix", "POST", "/api/openai/v1/embeddings", map[string]string{"Authorization": "Bearer " + testClientToken},
			"/v1/embeddings", "", okey, [2]string{}},
		{"anthropic", "POST", "/api/anthropic/messages", map[string]string{"x-api-key": testClientToken},
			"/v1/messages", "", akey, [2]string{"Anthropic-Version", "2023-06-01"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{"Content-Type": "application/json", "X-Custom": "dropped", "Openai-Beta": "kept"}
			for k, v := range tt.header {
				h[k] = v
			}
			body := `{"contents":[{"parts":[{"text":"hi"}]}]}`
			if tt.method == "GET" {
				body = ""
			}
			r := p.do(tt.method, tt.path, body, h)
			if r.Status != 200 || r.Header.Get("X-Upstream-Test") != "yes" || !strings.Contains(string(r.Body), `"answer":"hello"`) {
				t.Fatalf("answer not passed through: %d %v %s", r.Status, r.Header, r.Body)
			}
			if !keyIDPattern.MatchString(r.Header.Get("X-KeyPool-Key-Id")) {
				t.Fatalf("X-KeyPool-Key-Id = %q", r.Header.Get("X-KeyPool-Key-Id"))
			}
			got := up.last(t)
			if got.Method != tt.method || got.Path != tt.wantPath || got.RawQuery != tt.wantQ {
				t.Fatalf("upstream got %s %s?%s, want %s %s?%s", got.Method, got.Path, got.RawQuery, tt.method, tt.wantPath, tt.wantQ)
			}
			if strings.Contains(got.Path, "models/models") {
				t.Fatal("models/ doubled")
			}
			if k := keyOf(got); k != tt.wantKey {
				t.Fatalf("upstream key %q, want %q", k, tt.wantKey)
			}
			if tt.wantHeader[0] != "" && got.Header.Get(tt.wantHeader[0]) != tt.wantHeader[1] {
				t.Fatalf("header %s = %q", tt.wantHeader[0], got.Header.Get(tt.wantHeader[0]))
			}
			// The client's token never goes upstream, in any place.
			for name, vals := range got.Header {
				for _, v := range vals {
					if strings.Contains(v, testClientToken) {
						t.Fatalf("client token forwarded in %s", name)
					}
				}
			}
			if strings.Contains(got.RawQuery, testClientToken) || strings.Contains(got.RawQuery, "strategy") {
				t.Fatalf("query forwarded: %q", got.RawQuery)
			}
			// Only allow-listed client headers go upstream.
			if got.Header.Get("Openai-Beta") != "kept" || got.Header.Get("X-Custom") != "" {
				t.Fatalf("client headers upstream: %v", got.Header)
			}
			if tt.method == "POST" && string(got.Body) != body {
				t.Fatalf("body changed: %s", got.Body)
			}
		})
	}
}

func TestRelayGeminiKeyInQuery(t *testing.T) {
	up := startUpstream(t)
	p := startProxy(t, upstreamEnv(up, map[string]string{"GEMINI_KEY_IN": "query"}))
	p.addKey("gemini", "AIzaSyA-query-pool-key-00001", 0)
	r := p.do("POST", "/api/gemini/models/gemini-pro:generateContent?alt=sse&key="+testClientToken, `{}`, nil)
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	got := up.last(t)
	if got.RawQuery != "alt=sse&key=AIzaSyA-query-pool-key-00001" || got.Header.Get("X-Goog-Api-Key") != "" {
		t.Fatalf("upstream query %q, header %q", got.RawQuery, got.Header.Get("X-Goog-Api-Key"))
	}
}

func TestRelayPassesErrorsThrough(t *testing.T) {
	up := startUpstream(t)
	p := startProxy(t, upstreamEnv(up, nil))
	secret := "AIzaSyA-rate-limited-key-001"
	id := p.addKey("gemini", secret, 0)
	body := `{"error":{"code":429,"message":"You exceeded your current quota (key ` + secret + `).","status":"RESOURCE_EXHAUSTED"}}`
	up.setHandler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream-Test", "429")
		w.WriteHeader(429)
		w.Write([]byte(body))
	})
	r := p.do("POST", "/api/gemini/models/x:generateContent", `{}`, map[string]string{"x-goog-api-key": testClientToken})
	// The key the upstream quotes reaches the client masked.
	masked := strings.ReplaceAll(body, secret, pool.Mask(secret))
	if r.Status != 429 || string(r.Body) != masked || r.Header.Get("X-Upstream-Test") != "429" {
		t.Fatalf("error not passed through: %d %s", r.Status, r.Body)
	}
	var k adminapi.KeyStatus
	p.admin("GET", "/admin/keys/"+id, nil).Decode(t, &k)
	if k.Failures != 1 || k.Successes != 0 || k.SuccessRate != 0 || k.LastError == nil || k.LastError.Status != 429 ||
		!strings.Contains(k.LastError.Message, "RESOURCE_EXHAUSTED: You exceeded") || len(k.ModelCooldowns) != 1 || k.ModelCooldowns[0].Model != "x" {
		t.Fatalf("key stats after 429: %+v %+v", k, k.LastError)
	}
	if strings.Contains(k.LastError.Message, secret) || strings.Contains(k.LastError.Message, "rate-limited-key") {
		t.Fatalf("last error not scrubbed: %q", k.LastError.Message)
	}

	// An unreachable upstream is a JSON 502 without the URL or key.
	p2 := startProxy(t, map[string]string{"GEMINI_BASE_URL": "http://127.0.0.1:1/v1beta", "GEMINI_KEY_IN": "query"})
	p2.addKey("gemini", secret, 0)
	r = p2.do("POST", "/api/gemini/models/x:generateContent", `{}`, map[string]string{"x-goog-api-key": testClientToken})
	if r.Status != 502 || r.JSON(t)["error"] != "Upstream request failed" || strings.Contains(string(r.Body), secret) {
		t.Fatalf("unreachable upstream: %d %s", r.Status, r.Body)
	}
	p.assertNoSecretsLogged(secret)
	p2.assertNoSecretsLogged(secret)
}

func TestStrategiesAndExhaustion(t *testing.T) {
	up := startUpstream(t)
	p := startProxy(t, upstreamEnv(up, nil))
	secrets := []string{"sk-strategy-key-0000000000a", "sk-strategy-key-0000000000b", "sk-strategy-key-0000000000c"}
	for _, s := range secrets {
		p.addKey("openai", s, 4)
	}
	relay := func(strategy string) response {
		return p.do("POST", "/api/openai/chat/completions?strategy="+strategy, `{"model":"gpt-4o"}`, map[string]string{"Authorization": "Bearer " + testClientToken})
	}
	var got []string
	for range 6 {
		if r := relay("roundRobin"); r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		got = append(got, keyOf(up.last(t)))
	}
	want := append(append([]string{}, secrets...), secrets...)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("round robin order %v, want %v", got, want)
	}
	// Each key has 2 of 4 used; leastUsed after a random pick goes elsewhere.
	relay("random")
	r := relay("leastUsed")
	if keyOf(up.last(t)) == keyOf(up.requests()[len(up.requests())-2]) {
		t.Fatalf("leastUsed picked the key random just used (%d)", r.Status)
	}
	for range 6 - 2 {
		if r := relay("leastUsed"); r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	}
	// 12 of 12 used: the next request finds no key.
	r = relay("leastUsed")
	if r.Status != 503 {
		t.Fatalf("exhausted pool answered %d %s", r.Status, r.Body)
	}
	want503 := `{"error":"No available API keys","provider":"openai","strategy":"leastUsed","suggestion":"Please add more keys or wait for rate limit reset"}`
	if strings.TrimSpace(string(r.Body)) != want503 {
		t.Fatalf("503 body %s, want %s", r.Body, want503)
	}
	n := len(up.requests())
	if n != 12 {
		t.Fatalf("upstream saw %d requests, want 12 (a key was used past maxRequests)", n)
	}
	var st adminapi.ProviderStatus
	p.admin("GET", "/admin/status?provider=openai", nil).Decode(t, &st)
	if st.AvailableKeys != 0 || st.ActiveKeys != 3 || st.Keys[0].Usage != "4/4" || st.Keys[0].State != "exhausted" {
		t.Fatalf("status %+v", st)
	}
}

func TestClientTokens(t *testing.T) {
	up := startUpstream(t)
	p := startProxy(t, upstreamEnv(up, nil))
	p.addKey("openai", "sk-token-test-key-0000000001", 0)
	relay := func(tok string) int {
		return p.do("GET", "/api/openai/models", nil, map[string]string{"Authorization": "Bearer " + tok}).Status
	}
	if s := relay(testClientToken); s != 200 {
		t.Fatalf("env token: %d", s)
	}
	r := p.admin("POST", "/admin/tokens", map[string]string{"name": "laptop"})
	var created adminapi.CreateTokenResponse
	r.Decode(t, &created)
	if r.Status != 201 || len(created.Token) < 16 || created.ID == "" {
		t.Fatalf("create token: %d %s", r.Status, r.Body)
	}
	if s := relay(created.Token); s != 200 {
		t.Fatalf("created token: %d", s)
	}
	list := p.admin("GET", "/admin/tokens", nil)
	if strings.Contains(string(list.Body), created.Token) || strings.Contains(string(list.Body), testClientToken) {
		t.Fatalf("token list shows a whole token: %s", list.Body)
	}
	var tl adminapi.TokenList
	list.Decode(t, &tl)
	if len(tl.Tokens) != 2 || tl.Tokens[0].Source != "admin" || tl.Tokens[0].Masked != created.Masked || tl.Tokens[1].Source != "env" {
		t.Fatalf("token list %+v", tl)
	}
	if r := p.admin("DELETE", "/admin/tokens/"+tl.Tokens[1].ID, nil); r.Status != 409 {
		t.Fatalf("revoking an env token: %d %s", r.Status, r.Body)
	}
	if r := p.admin("DELETE", "/admin/tokens/"+created.ID, nil); r.Status != 200 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	if s := relay(created.Token); s != 401 {
		t.Fatalf("revoked token still works: %d", s)
	}
	p.assertNoSecretsLogged(created.Token, "sk-token-test-key-0000000001")
	if r := p.admin("DELETE", "/admin/tokens/"+created.ID, nil); r.Status != 404 {
		t.Fatalf("revoke twice: %d", r.Status)
	}

	// Anonymous relay only when turned on.
	pa := startProxy(t, upstreamEnv(up, map[string]string{"ALLOW_ANONYMOUS_RELAY": "true", "CLIENT_TOKENS": ""}))
	pa.addKey("openai", "sk-token-test-key-0000000001", 0)
	if r := pa.do("GET", "/api/openai/models", nil, nil); r.Status != 200 {
		t.Fatalf("anonymous relay: %d %s", r.Status, r.Body)
	}
}

func TestStartupRefusesWeakSecrets(t *testing.T) {
	for name, env := range map[string][]string{
		"weak admin key": {"ADMIN_KEY=short"},
		"weak token":     {"ADMIN_KEY=" + testAdminKey, "CLIENT_TOKENS=abc"},
		"bad port":       {"ADMIN_KEY=" + testAdminKey, "PORT=http"},
		"bad origin":     {"ADMIN_KEY=" + testAdminKey, "ALLOWED_ORIGINS=example.com"},
		"bad base url":   {"ADMIN_KEY=" + testAdminKey, "OPENAI_BASE_URL=ftp://x"},
		"unknown store":  {"ADMIN_KEY=" + testAdminKey, "STORE=mongo"},
	} {
		t.Run(name, func(t *testing.T) {
			cmd := exec(t, env...)
			out, err := cmd.CombinedOutput()
			if err == nil || cmd.ProcessState.ExitCode() != 2 {
				t.Fatalf("exit %v, want code 2; output:\n%s", err, out)
			}
			if !strings.Contains(string(out), "configuration error") {
				t.Fatalf("no clear message:\n%s", out)
			}
			if name == "weak admin key" && !strings.Contains(string(out), "at least 16 characters") {
				t.Fatalf("message does not say why:\n%s", out)
			}
		})
	}
}

func TestGeneratedAdminKeyPersists(t *testing.T) {
	dir := t.TempDir()
	p := startProxy(t, map[string]string{"ADMIN_KEY": "", "DATA_DIR": dir})
	if !strings.Contains(p.stdout.String(), p.AdminKey) || len(p.AdminKey) < 16 {
		t.Fatalf("generated key not printed:\n%s", p.stdout)
	}
	if strings.Contains(p.stderr.String(), p.AdminKey) {
		t.Fatal("admin key in the log")
	}
	fi, err := os.Stat(filepath.Join(dir, "admin.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.key: %v %v", fi, err)
	}
	if r := p.admin("GET", "/admin/status", nil); r.Status != 200 {
		t.Fatalf("generated key rejected: %d", r.Status)
	}
	p.stop()
	p2 := startProxy(t, map[string]string{"ADMIN_KEY": "", "DATA_DIR": dir})
	if p2.AdminKey != p.AdminKey || strings.Contains(p2.stdout.String(), p.AdminKey) {
		t.Fatalf("restart: key changed or printed again:\n%s", p2.stdout)
	}
	if r := p2.admin("GET", "/admin/status", nil); r.Status != 200 {
		t.Fatalf("kept key rejected: %d", r.Status)
	}
}

func TestPersistenceAcrossRestart(t *testing.T) {
	up := startUpstream(t)
	dir := t.TempDir()
	env := upstreamEnv(up, map[string]string{"DATA_DIR": dir, "FLUSH_INTERVAL": "1h"})
	p := startProxy(t, env)
	id := p.addKey("gemini", "AIzaSyA-persisted-key-000001", 100)
	p.admin("PUT", "/admin/keys/"+id, `{"metadata":{"description":"kept","tags":["t1"]}}`)
	gone := p.addKey("gemini", "AIzaSyA-deleted-key-00000001", 0)
	p.admin("DELETE", "/admin/keys/"+gone, nil)
	var tok adminapi.CreateTokenResponse
	p.admin("POST", "/admin/tokens", map[string]string{"name": "ci"}).Decode(t, &tok)
	for range 7 {
		p.do("POST", "/api/gemini/models/x:generateContent", `{}`, map[string]string{"x-goog-api-key": tok.Token})
	}
	var before adminapi.KeyStatus
	p.admin("GET", "/admin/keys/"+id, nil).Decode(t, &before)
	// FLUSH_INTERVAL is an hour: only the shutdown flush can save usage.
	p.stop()

	p2 := startProxy(t, env)
	var after adminapi.ProviderStatus
	p2.admin("GET", "/admin/status?provider=gemini", nil).Decode(t, &after)
	if after.TotalKeys != 1 {
		t.Fatalf("keys after restart: %+v", after)
	}
	k := after.Keys[0]
	if k.ID != id || k.Usage != "7/100" || k.Successes != 7 || k.Description != "kept" || k.Tags[0] != "t1" || k.LastUsed == nil || *k.LastUsed != *before.LastUsed {
		t.Fatalf("after restart %+v, before %+v", k, before)
	}
	if r := p2.do("GET", "/api/gemini/models", nil, map[string]string{"x-goog-api-key": tok.Token}); r.Status != 200 {
		t.Fatalf("created token lost on restart: %d", r.Status)
	}
}

func TestStreamingPassesChunksAsTheyCome(t *testing.T) {
	up := startUpstream(t)
	p := startProxy(t, upstreamEnv(up, nil))
	p.addKey("gemini", "AIzaSyA-streaming-key-000001", 0)
	p.addKey("openai", "sk-streaming-key-00000000001", 0)

	for _, tc := range []struct{ name, path, body, sep string }{
		{"gemini", "/api/gemini/models/gemini-2.5-flash:streamGenerateContent?alt=sse", `{}`, "\r\n\r\n"},
		{"openai", "/api/openai/chat/completions", `{"stream":true}`, "\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The upstream sends a chunk, then waits until the client has
			// read it before sending the next: a proxy that buffers would
			// deadlock here and fail on the timeout.
			next := make(chan struct{})
			up.setHandler(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.WriteHeader(200)
				for i := range 3 {
					fmt.Fprintf(w, `data: {"chunk":%d}`+tc.sep, i)
					w.(http.Flusher).Flush()
					select {
					case <-next:
					case <-time.After(10 * time.Second):
						return
					case <-r.Context().Done():
						return
					}
				}
			})
			req, _ := http.NewRequest("POST", p.URL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+testClientToken)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			buf := make([]byte, 256)
			for i := range 3 {
				want := fmt.Sprintf(`data: {"chunk":%d}`+tc.sep, i)
				got := ""
				deadline := time.AfterFunc(5*time.Second, func() { res.Body.Close() })
				for len(got) < len(want) {
					n, err := res.Body.Read(buf[:len(want)-len(got)])
					got += string(buf[:n])
					if err != nil {
						break
					}
				}
				deadline.Stop()
				if got != want {
					t.Fatalf("chunk %d: got %q, want %q (the proxy held the stream back)", i, got, want)
				}
				next <- struct{}{}
			}
		})
	}
}

func TestCORS(t *testing.T) {
	p := startProxy(t, map[string]string{"ALLOWED_ORIGINS": "https://user.github.io"})
	r := p.do("OPTIONS", "/admin/status", nil, map[string]string{
		"Origin": "https://user.github.io", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x-admin-key",
	})
	if r.Status != 204 || r.Header.Get("Access-Control-Allow-Origin") != "https://user.github.io" ||
		!strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "X-Admin-Key") {
		t.Fatalf("preflight: %d %v", r.Status, r.Header)
	}
	r = p.do("GET", "/admin/status", nil, map[string]string{"Origin": "https://user.github.io", "X-Admin-Key": p.AdminKey})
	if r.Status != 200 || r.Header.Get("Access-Control-Allow-Origin") != "https://user.github.io" {
		t.Fatalf("simple request: %d %v", r.Status, r.Header)
	}
	r = p.do("OPTIONS", "/admin/status", nil, map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
	if r.Status != 403 || r.Header.Get("Access-Control-Allow-Origin") != "" || !strings.Contains(string(r.Body), "ALLOWED_ORIGINS") {
		t.Fatalf("foreign preflight: %d %v %s", r.Status, r.Header, r.Body)
	}
	r = p.do("GET", "/admin/status", nil, map[string]string{"Origin": "https://evil.example", "X-Admin-Key": p.AdminKey})
	if r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("foreign origin allowed")
	}
}

func TestRequestBodyLimit(t *testing.T) {
	up := startUpstream(t)
	p := startProxy(t, upstreamEnv(up, map[string]string{"MAX_BODY_BYTES": "2048"}))
	p.addKey("openai", "sk-body-limit-key-0000000001", 0)
	h := map[string]string{"Authorization": "Bearer " + testClientToken}
	if r := p.do("POST", "/api/openai/chat/completions", strings.Repeat("a", 2048), h); r.Status != 200 {
		t.Fatalf("body at the limit: %d %s", r.Status, r.Body)
	}
	r := p.do("POST", "/api/openai/chat/completions", strings.Repeat("a", 2049), h)
	if r.Status != 413 || !strings.Contains(r.JSON(t)["error"].(string), "larger than 2048") {
		t.Fatalf("body over the limit: %d %s", r.Status, r.Body)
	}
	if n := len(up.requests()); n != 1 {
		t.Fatalf("upstream saw %d requests, want 1", n)
	}
}

func TestConcurrentRelayAndAdmin(t *testing.T) {
	up := startUpstream(t)
	p := startProxy(t, upstreamEnv(up, nil))
	for i := range 5 {
		p.addKey("openai", fmt.Sprintf("sk-concurrent-key-%010d", i), 0)
	}
	var wg sync.WaitGroup
	const clients, each = 16, 25
	errs := make(chan string, clients*each)
	for c := range clients {
		wg.Go(func() {
			for range each {
				strategy := []string{"roundRobin", "leastUsed", "random"}[c%3]
				r := p.do("POST", "/api/openai/chat/completions?strategy="+strategy, `{"model":"m"}`, map[string]string{"Authorization": "Bearer " + testClientToken})
				if r.Status != 200 {
					errs <- fmt.Sprintf("%d %s", r.Status, r.Body)
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 20 {
			// Inactive, so every relayed request lands on the five keys.
			r := p.admin("POST", "/admin/keys", map[string]any{"provider": "openai", "apiKey": fmt.Sprintf("sk-added-during-load-%07d", i), "isActive": false})
			id, _ := r.JSON(t)["keyId"].(string)
			p.admin("PUT", "/admin/keys/"+id, `{"maxRequests":10}`)
			p.admin("GET", "/admin/status", nil)
			p.admin("DELETE", "/admin/keys/"+id, nil)
		}
	})
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	var st adminapi.ProviderStatus
	p.admin("GET", "/admin/status?provider=openai", nil).Decode(t, &st)
	var total int64
	for _, k := range st.Keys {
		total += k.Requests
	}
	if st.TotalKeys != 5 || total != clients*each {
		t.Fatalf("after the load: %d keys, %d requests counted, want 5 and %d", st.TotalKeys, total, clients*each)
	}
}
