package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/provider"
	"github.com/keypool/keypool/worker-proxy/store/boltstore"
)

const leakToken = "client-token-fake-0123456789"

// upstreamKey returns the key a request carried, wherever the provider
// takes it.
func upstreamKey(r *http.Request) string {
	if k := r.Header.Get("X-Goog-Api-Key"); k != "" {
		return k
	}
	if k := r.URL.Query().Get("key"); k != "" {
		return k
	}
	if k := r.Header.Get("X-Api-Key"); k != "" {
		return k
	}
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
}

// relayFixture is a Server whose built-in providers point at a local fake
// upstream, with a client token and a log that tests can read.
type relayFixture struct {
	s        *Server
	up       *httptest.Server
	requests atomic.Int64
	logMu    sync.Mutex
	log      bytes.Buffer
}

func (f *relayFixture) Write(p []byte) (int, error) {
	f.logMu.Lock()
	defer f.logMu.Unlock()
	return f.log.Write(p)
}

func (f *relayFixture) logText() string {
	f.logMu.Lock()
	defer f.logMu.Unlock()
	return f.log.String()
}

func newRelayFixture(t *testing.T, cfg Config, upstream http.HandlerFunc, keys map[string][]string) *relayFixture {
	t.Helper()
	f := &relayFixture{}
	f.up = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		upstream(w, r)
	}))
	t.Cleanup(f.up.Close)
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "keypool.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ps := provider.Defaults()
	for _, p := range ps {
		p.Base, _ = url.Parse(f.up.URL + p.Base.Path)
	}
	reg, _ := provider.NewRegistry(ps...)
	cfg.AdminKey = adminKey
	cfg.ClientTokens = []string{leakToken}
	cfg.Logger = slog.New(slog.NewTextHandler(f, nil))
	s, err := New(t.Context(), cfg, st, reg)
	if err != nil {
		t.Fatal(err)
	}
	var ks []pool.Key
	for prov, secrets := range keys {
		for i, sec := range secrets {
			ks = append(ks, pool.Key{ID: fmt.Sprintf("key_%s_%d", prov, i), Provider: prov, Secret: sec, IsActive: true})
		}
	}
	s.pool.AddAll(ks)
	f.s = s
	return f
}

// do sends a client request through the proxy over a real connection, so
// framing (Content-Length, chunking) is what a client would see.
func (f *relayFixture) do(t *testing.T, method, path, body string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	front := httptest.NewServer(f.s)
	defer front.Close()
	req, _ := http.NewRequest(method, front.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+leakToken)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := front.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

// noSecret fails when the response shows any of the secrets unmasked, in
// its body or any header, or when its framing does not match its body.
func noSecret(t *testing.T, res *http.Response, body []byte, secrets ...string) {
	t.Helper()
	var hdr strings.Builder
	res.Header.Write(&hdr)
	for _, sec := range append(secrets, leakToken) {
		for _, form := range []string{sec, url.QueryEscape(sec), url.PathEscape(sec), strings.ReplaceAll(sec, "/", `\/`)} {
			if bytes.Contains(body, []byte(form)) {
				t.Errorf("body shows %q: %s", form, body)
			}
			if strings.Contains(hdr.String(), form) {
				t.Errorf("headers show %q:\n%s", form, hdr.String())
			}
		}
	}
	if res.ContentLength >= 0 && res.ContentLength != int64(len(body)) {
		t.Errorf("Content-Length %d for a %d-byte body", res.ContentLength, len(body))
	}
}

var (
	geminiKey  = "AIza-fake/key+test=0123456789abcdef" // percent- and JSON-escaping change it
	openaiKeys = []string{"sk-fake-test-key-00000000000000000001", "sk-fake-test-key-00000000000000000002", "sk-fake-test-key-00000000000000000003"}
)

// Upstream error bodies that quote the key reach the client masked, on
// every route and after failover, in body and headers.
func TestUpstreamEchoOfKeyIsMasked(t *testing.T) {
	upstream := func(w http.ResponseWriter, r *http.Request) {
		key := upstreamKey(r)
		w.Header().Set("X-Debug-Url", r.URL.Path+"?key="+url.QueryEscape(key))
		switch {
		case strings.Contains(r.URL.Path, "nope"):
			// Google's 404 page quotes the URL, ?key= and all.
			w.Header().Set("Content-Type", "text/html; charset=UTF-8")
			w.WriteHeader(404)
			fmt.Fprintf(w, "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 404 (Not Found)!!1</title>\n  <p><b>404.</b> <ins>That’s an error.</ins>\n  <p>The requested URL <code>%s?key=%s</code> was not found on this server.  <ins>That’s all we know.</ins>\n", r.URL.Path, url.QueryEscape(key))
		case strings.HasPrefix(r.URL.Path, "/v1beta/models/"):
			w.Header().Set("Content-Type", "application/json; charset=UTF-8")
			w.WriteHeader(400)
			msg, _ := json.Marshal("Invalid JSON payload received. Unknown name \"key\" at 'https://generativelanguage.googleapis.com" + r.URL.Path + "?key=" + key + "' (also " + url.QueryEscape(key) + ")")
			fmt.Fprintf(w, `{"error":{"code":400,"message":%s,"status":"INVALID_ARGUMENT"}}`, msg)
		case strings.HasSuffix(r.URL.Path, "/chat/completions"):
			// OpenAI quotes the bad key; some compatible hosts quote it whole.
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(401)
			fmt.Fprintf(w, `{"error":{"message":"Incorrect API key provided: %s. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`, key)
		case strings.HasSuffix(r.URL.Path, "/responses"):
			// A stream whose error event quotes the key, split across writes.
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("X-Request-Key", key)
			fl := w.(http.Flusher)
			fmt.Fprint(w, "data: {\"type\":\"response.created\"}\n\n")
			fl.Flush()
			fmt.Fprintf(w, "event: error\ndata: {\"type\":\"error\",\"message\":\"key %s", key[:11])
			fl.Flush()
			fmt.Fprintf(w, "%s was revoked\"}\n\n", key[11:])
			fl.Flush()
		default:
			w.WriteHeader(500)
		}
	}
	for _, tc := range []struct {
		name, path, body string
		status           int
		secrets          []string
		keys             map[string][]string
	}{
		{"gemini 404 html", "/api/gemini/v1beta/models/nope:generateContent", `{}`, 404, []string{geminiKey}, map[string][]string{"gemini": {geminiKey}}},
		{"gemini 400 json", "/api/gemini/v1beta/models/gemini-2.0-flash:generateContent", `{}`, 400, []string{geminiKey}, map[string][]string{"gemini": {geminiKey}}},
		{"openai 401", "/api/openai/chat/completions", `{"model":"gpt-4o"}`, 401, openaiKeys[:1], map[string][]string{"openai": openaiKeys[:1]}},
		{"openai 401 x3 with failover", "/api/openai/chat/completions", `{"model":"gpt-4o"}`, 401, openaiKeys, map[string][]string{"openai": openaiKeys}},
		{"front door 401 x3", "/v1/chat/completions", `{"model":"gpt-4o"}`, 401, openaiKeys, map[string][]string{"openai": openaiKeys}},
		{"stream error event split across reads", "/api/openai/responses", `{"model":"gpt-4o","stream":true}`, 200, openaiKeys[:1], map[string][]string{"openai": openaiKeys[:1]}},
		{"front door stream", "/v1/responses", `{"model":"gpt-4o","stream":true}`, 200, openaiKeys[:1], map[string][]string{"openai": openaiKeys[:1]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newRelayFixture(t, Config{}, upstream, tc.keys)
			res, body := f.do(t, "POST", tc.path, tc.body, nil)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d: %s", res.StatusCode, body)
			}
			if want := int64(len(tc.secrets)); f.requests.Load() != want {
				t.Fatalf("%d upstream requests, want %d", f.requests.Load(), want)
			}
			noSecret(t, res, body, tc.secrets...)
			last := tc.secrets[len(tc.secrets)-1]
			if !bytes.Contains(body, []byte(pool.Mask(last))) && !strings.Contains(res.Header.Get("X-Debug-Url"), pool.Mask(last)) {
				t.Errorf("the masked key %s is not shown: %s", pool.Mask(last), body)
			}
		})
	}
}

// The proxy's own CORS headers are the only ones a browser sees.
func TestUpstreamCORSHeadersDoNotPassThrough(t *testing.T) {
	f := newRelayFixture(t, Config{AllowedOrigins: []string{"https://app.test"}}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		w.Header().Set("Access-Control-Expose-Headers", "X-Upstream-Secret")
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, chatBody)
	}, map[string][]string{"openai": openaiKeys[:1]})
	res, body := f.do(t, "POST", "/api/openai/chat/completions", request, map[string]string{"Origin": "https://app.test"})
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	if got := res.Header.Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != "https://app.test" {
		t.Errorf("Access-Control-Allow-Origin = %q, want only the proxy's", got)
	}
	if got := res.Header.Values("Access-Control-Allow-Credentials"); len(got) != 0 {
		t.Errorf("upstream's Access-Control-Allow-Credentials passed: %q", got)
	}
	if got := res.Header.Values("Access-Control-Expose-Headers"); len(got) != 1 || strings.Contains(got[0], "X-Upstream-Secret") {
		t.Errorf("Access-Control-Expose-Headers = %q", got)
	}
}

// Only the client headers an upstream API needs are forwarded.
func TestClientHeadersAllowList(t *testing.T) {
	var got http.Header
	f := newRelayFixture(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, chatBody)
	}, map[string][]string{"openai": openaiKeys[:1], "anthropic": {"sk-ant-fake-test-0000000000000001"}})
	sent := map[string]string{
		"OpenAI-Organization": "org-client", "OpenAI-Project": "proj_client", "Cookie": "session=1",
		"X-Custom-Tracking": "1", "Accept-Encoding": "gzip", "X-Goog-User-Project": "other-project",
		"Forwarded": "for=1.2.3.4", "X-Forwarded-For": "1.2.3.4", "X-Admin-Key": adminKey,
		"OpenAI-Beta": "assistants=v2", "X-Stainless-Lang": "go", "User-Agent": "OpenAI/Go 3.98.0",
		"Idempotency-Key": "stainless-retry-1", "Accept": "application/json", "Anthropic-Beta": "tools-2024",
	}
	res, body := f.do(t, "POST", "/api/openai/chat/completions", request, sent)
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	for _, h := range []string{"OpenAI-Organization", "OpenAI-Project", "Cookie", "X-Custom-Tracking", "Accept-Encoding", "X-Goog-User-Project", "Forwarded", "X-Forwarded-For", "X-Admin-Key"} {
		if v := got.Get(h); v != "" {
			t.Errorf("%s reached the upstream: %q", h, v)
		}
	}
	for _, h := range []string{"OpenAI-Beta", "X-Stainless-Lang", "User-Agent", "Idempotency-Key", "Accept", "Anthropic-Beta", "Content-Type"} {
		if got.Get(h) != cmpOr(sent[h], "application/json") {
			t.Errorf("%s = %q, want %q", h, got.Get(h), sent[h])
		}
	}
	if got.Get("Authorization") != "Bearer "+openaiKeys[0] {
		t.Errorf("Authorization = %q", got.Get("Authorization"))
	}
	// A provider's default headers may be set by the client.
	if res, body := f.do(t, "POST", "/api/anthropic/messages", `{}`, map[string]string{"Anthropic-Version": "2024-01-01"}); res.StatusCode != 200 || got.Get("Anthropic-Version") != "2024-01-01" {
		t.Errorf("Anthropic-Version = %q (%d %s)", got.Get("Anthropic-Version"), res.StatusCode, body)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// One path rule for every route: nothing that could climb out of the
// provider's base reaches an upstream, and the client gets a 400 in the
// route's error shape.
func TestPathRuleOnEveryRoute(t *testing.T) {
	f := newRelayFixture(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("forwarded: %s", r.URL.RawPath+" "+r.URL.Path)
	}, map[string][]string{"openai": openaiKeys[:1], "gemini": {geminiKey}})
	for _, tc := range []struct {
		method, path string
		openAI       bool
	}{
		{"POST", "/v1/..%2F..%2Fother/x", true},
		{"POST", "/v1/chat%2F..%2F..%2Fcompletions", true},
		{"POST", "/v1/chat/completions%00", true},
		{"GET", "/v1/models/..%2F..%2Fx", true},
		{"GET", "/v1/models/openai%2F..%2F..%2Fx", true},
		{"GET", "/v1/models/%2e%2e", true},
		{"POST", "/v1/a%5C..%5Cb", true},
		{"POST", "/api/openai/..%2F..%2Fother/x", false},
		{"POST", "/api/gemini/v1beta/models/a%00b:generateContent", false},
		{"POST", "/api/gemini/v1beta/%2e%2e/x", false},
		{"POST", `/api/gemini/v1beta/a\..\x`, false},
		{"POST", "/api/openai/chat/%252e%252e/x", false},
	} {
		res, body := f.do(t, tc.method, tc.path, `{"model":"gpt-4o"}`, nil)
		if res.StatusCode != 400 {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, res.StatusCode, body)
			continue
		}
		var e struct {
			Error any `json:"error"`
		}
		json.Unmarshal(body, &e)
		m, isObj := e.Error.(map[string]any)
		switch {
		case tc.openAI && (!isObj || m["code"] != "invalid_path" || !strings.Contains(fmt.Sprint(m["message"]), "path")):
			t.Errorf("%s: not OpenAI's shape: %s", tc.path, body)
		case !tc.openAI && !strings.Contains(fmt.Sprint(e.Error), "path"):
			t.Errorf("%s: not the relay's shape: %s", tc.path, body)
		}
	}
	if n := f.requests.Load(); n != 0 {
		t.Fatalf("%d requests reached the upstream", n)
	}
}

// When many requests fail on the same keys at once, each key's disable is
// logged (and saved) once, not once per failed request.
func TestKeyDisabledLoggedOncePerKey(t *testing.T) {
	const inflight = 8
	var arrived atomic.Int64
	release := make(chan struct{})
	f := newRelayFixture(t, Config{MaxRetries: -1}, func(w http.ResponseWriter, r *http.Request) {
		if arrived.Add(1) == inflight {
			close(release)
		}
		<-release
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(401)
		fmt.Fprint(w, `{"error":{"message":"Incorrect API key provided: sk-fake***0001. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`)
	}, map[string][]string{"openai": openaiKeys[:2]})
	front := httptest.NewServer(f.s)
	defer front.Close()
	var wg sync.WaitGroup
	for range inflight {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", front.URL+"/api/openai/chat/completions", strings.NewReader(request))
			req.Header.Set("Authorization", "Bearer "+leakToken)
			res, err := front.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 401 {
				t.Errorf("status %d", res.StatusCode)
			}
		})
	}
	wg.Wait()
	if n := strings.Count(f.logText(), "key disabled"); n != 2 {
		t.Fatalf("%d \"key disabled\" lines for 2 keys:\n%s", n, f.logText())
	}
	if q := len(f.s.persistQ); q != 2 {
		t.Fatalf("%d key saves queued, want 2", q)
	}
	for _, e := range f.s.pool.Entries("openai") {
		if e.Key().DisabledReason == "" {
			t.Errorf("%s not disabled", e.ID())
		}
	}
}

// An error that quotes the request body shows the client's own token
// masked too (say the client pasted it into a prompt).
func TestUpstreamEchoOfClientTokenIsMasked(t *testing.T) {
	f := newRelayFixture(t, Config{}, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		out := fmt.Sprintf(`{"error":{"message":"bad input: %s"}}`, url.QueryEscape(string(b)))
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(out)))
		w.WriteHeader(400)
		io.WriteString(w, out)
	}, map[string][]string{"openai": openaiKeys[:1]})
	res, body := f.do(t, "POST", "/api/openai/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"my token is `+leakToken+`"}]}`, nil)
	if res.StatusCode != 400 {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	noSecret(t, res, body)
	if !bytes.Contains(body, []byte(pool.Mask(leakToken))) {
		t.Fatalf("no masked token in %s", body)
	}
}
