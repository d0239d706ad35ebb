package main

// End-to-end tests of the relay's failover through the real proxy binary:
// which failures are retried on another key, what each does to the key, the
// bounds on retries, the storm guard, broken and silent streams, key tests,
// and a failure test under load.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	oaoption "github.com/openai/openai-go/v3/option"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/internal/fakeupstream"
)

// bearer is the client-token header of a raw relay request.
func bearer() map[string]string {
	return map[string]string{"Authorization": "Bearer " + testClientToken}
}

const chatBody = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello"}]}`

// waitUntil polls cond every 20ms until it holds or timeout passes.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// keySeq makes every test secret unique: the fake's behaviours are per secret.
var keySeq atomic.Int64

// addKeys adds one key per behaviour and returns their ids and secrets.
func addKeys(t *testing.T, f *fakeupstream.Server, p *proxy, provider, prefix string, bs ...fakeupstream.Behavior) (ids, secrets []string) {
	t.Helper()
	for _, b := range bs {
		s := fmt.Sprintf("%s-pool-%s-%08d", prefix, strings.ToLower(b.String()), keySeq.Add(1))
		f.SetBehavior(s, b)
		ids = append(ids, p.addKey(provider, s, 0))
		secrets = append(secrets, s)
	}
	return ids, secrets
}

func TestFailoverRetries429OnAnotherKey(t *testing.T) {
	gem := map[string]string{"x-goog-api-key": testClientToken}
	for _, tc := range []struct {
		name, provider, prefix, path, body string
		header                             map[string]string
		env                                map[string]string
		answer                             string // in the healthy key's answer
	}{
		{"openai", "openai", "sk", "/api/openai/chat/completions", chatBody, bearer(), nil, fakeupstream.AnswerText("gpt-4o-mini")},
		{"openai stream", "openai", "sk", "/api/openai/chat/completions", `{"model":"gpt-4o-mini","stream":true}`, bearer(), nil, "data: [DONE]"},
		{"gemini stream", "gemini", "AIzaSy", "/api/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", `{}`, gem, nil, `"finishReason": "STOP"`},
		{"gemini key in query", "gemini", "AIzaSy", "/api/gemini/models/gemini-2.5-flash:generateContent", `{}`, gem, map[string]string{"GEMINI_KEY_IN": "query"}, fakeupstream.AnswerText("gemini-2.5-flash")},
		{"anthropic", "anthropic", "sk-ant", "/api/anthropic/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[]}`, map[string]string{"x-api-key": testClientToken}, nil, fakeupstream.AnswerText("claude-sonnet-4-5")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, p := startFakeProxy(t, fakeupstream.Options{}, tc.env)
			ids, secrets := addKeys(t, f, p, tc.provider, tc.prefix, fakeupstream.RateLimited, fakeupstream.OK)
			r := p.do("POST", tc.path, tc.body, tc.header)
			if r.Status != http.StatusOK {
				t.Fatalf("status %d, want 200 from the second key: %s", r.Status, r.Body)
			}
			if got := r.Header.Get("X-KeyPool-Attempts"); got != "2" {
				t.Fatalf("X-KeyPool-Attempts = %q, want 2", got)
			}
			if got := r.Header.Get("X-KeyPool-Key-Id"); got != ids[1] {
				t.Fatalf("X-KeyPool-Key-Id = %q, want the healthy key %s", got, ids[1])
			}
			if !strings.Contains(strings.ReplaceAll(string(r.Body), `"finishReason":"STOP"`, `"finishReason": "STOP"`), tc.answer) {
				t.Fatalf("body %s is not the healthy key's whole answer (%q)", r.Body, tc.answer)
			}
			// Nothing of the 429 reached the client.
			if r.Header.Get("X-Ratelimit-Remaining-Requests") == "0" || r.Header.Get("Retry-After") != "" || strings.Contains(string(r.Body), "RESOURCE_EXHAUSTED") {
				t.Fatalf("the client got part of the 429: %v %s", r.Header, r.Body)
			}
			rs := f.Requests()
			if len(rs) != 2 || rs[0].Key != secrets[0] || rs[1].Key != secrets[1] {
				t.Fatalf("upstream requests %d, want 2: the rate-limited key, then the other", len(rs))
			}
			if tc.env["GEMINI_KEY_IN"] == "query" {
				if q := rs[1].RawQuery; q != "key="+secrets[1] {
					t.Fatalf("the retry's query is %q, want only the new key", q)
				}
			}
			k := keyStatusOf(t, p, ids[0])
			if len(k.ModelCooldowns) != 1 || k.LastError == nil || k.LastError.Status != 429 || k.DisabledReason != "" {
				t.Fatalf("rate-limited key: modelCooldowns %+v lastError %+v disabled %q, want its pair with the model resting after its 429", k.ModelCooldowns, k.LastError, k.DisabledReason)
			}
			checkActive(t, keyStatusOf(t, p, ids[1]))
			p.assertNoSecretsLogged(secrets...)
		})
	}
}

func TestFailoverConnectionErrorAndTimeout(t *testing.T) {
	const dropKey, slowKey, goodKey = "sk-conn-drop-key-000000000001", "sk-conn-slow-key-000000000001", "sk-conn-good-key-000000000001"
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		mu.Lock()
		seen = append(seen, key)
		mu.Unlock()
		switch key {
		case dropKey: // the connection dies before any answer
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.Close()
			}
			return
		case slowKey: // no headers within UPSTREAM_TIMEOUT
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"answer":"from the good key"}`)
	}))
	t.Cleanup(srv.Close)
	p := startProxy(t, map[string]string{"OPENAI_BASE_URL": srv.URL + "/v1", "UPSTREAM_TIMEOUT": "1s"})
	dropID := p.addKey("openai", dropKey, 0)
	slowID := p.addKey("openai", slowKey, 0)
	goodID := p.addKey("openai", goodKey, 0)

	start := time.Now()
	r := p.do("POST", "/api/openai/chat/completions", chatBody, bearer())
	if r.Status != 200 || string(r.Body) != `{"answer":"from the good key"}` {
		t.Fatalf("got %d %s, want the good key's answer after a dropped connection and a timeout", r.Status, r.Body)
	}
	if r.Header.Get("X-KeyPool-Attempts") != "3" || r.Header.Get("X-KeyPool-Key-Id") != goodID {
		t.Fatalf("attempts %q key %q, want 3 and the good key", r.Header.Get("X-KeyPool-Attempts"), r.Header.Get("X-KeyPool-Key-Id"))
	}
	if d := time.Since(start); d < time.Second || d > 8*time.Second {
		t.Fatalf("took %s, want about the 1s UPSTREAM_TIMEOUT", d)
	}
	mu.Lock()
	got := slices.Clone(seen)
	mu.Unlock()
	if !slices.Equal(got, []string{dropKey, slowKey, goodKey}) {
		t.Fatalf("upstream saw %q, want drop, slow, good", got)
	}
	for _, id := range []string{dropID, slowID} {
		k := keyStatusOf(t, p, id)
		if k.DisabledReason != "" || k.CoolingUntil != nil || k.ConsecutiveFailures != 1 || k.LastError == nil {
			t.Fatalf("key %s after a transport failure: state %q consecutiveFailures %d lastError %+v, want blamed once, not rested or disabled", id, k.State, k.ConsecutiveFailures, k.LastError)
		}
	}
	p.assertNoSecretsLogged(dropKey, slowKey, goodKey)
}

func TestFailoverHealthyKeyLeftWhenMostKeysRateLimited(t *testing.T) {
	// Free-tier pools: most keys answer 429 while one still has quota.
	// The issue: "a request must still succeed while any healthy key is
	// left".
	f, p := startFakeProxy(t, fakeupstream.Options{}, nil)
	ids, _ := addKeys(t, f, p, "openai", "sk", fakeupstream.RateLimited, fakeupstream.RateLimited, fakeupstream.RateLimited, fakeupstream.OK)
	var failed []string
	for i := range 8 {
		r := p.do("POST", "/api/openai/chat/completions", chatBody, bearer())
		if r.Status != 200 {
			failed = append(failed, fmt.Sprintf("request %d: %d via key %s after %s attempts", i+1, r.Status, r.Header.Get("X-KeyPool-Key-Id"), r.Header.Get("X-KeyPool-Attempts")))
		}
	}
	if len(failed) > 0 {
		var states []string
		for _, id := range ids {
			k := keyStatusOf(t, p, id)
			states = append(states, k.State)
		}
		t.Fatalf("%d of 8 requests failed although key %s was healthy (key states %v):\n%s", len(failed), ids[3], states, strings.Join(failed, "\n"))
	}
}

func TestFailoverClientErrorsNotRetried(t *testing.T) {
	f, p := startFakeProxy(t, fakeupstream.Options{}, nil)
	var ids []string
	for _, prov := range []string{"openai", "gemini", "anthropic"} {
		got, _ := addKeys(t, f, p, prov, "key-"+prov, fakeupstream.OK, fakeupstream.OK)
		ids = append(ids, got...)
	}
	gem := map[string]string{"x-goog-api-key": testClientToken}
	ant := map[string]string{"x-api-key": testClientToken}
	for _, tc := range []struct {
		name, path, body string
		header           map[string]string
		status           int
		says             string // in the upstream's error body
	}{
		{"openai bad json", "/api/openai/chat/completions", `{"model":`, bearer(), 400, "could not parse the JSON body"},
		{"openai no model", "/api/openai/chat/completions", `{"messages":[]}`, bearer(), 400, "you must provide a model parameter"},
		{"openai unknown path", "/api/openai/no/such/endpoint", `{}`, bearer(), 404, "Invalid URL (POST /v1/no/such/endpoint)"},
		{"gemini bad json", "/api/gemini/models/gemini-2.5-flash:generateContent", `{not json`, gem, 400, "Invalid JSON payload"},
		{"gemini unknown method", "/api/gemini/models/gemini-2.5-flash:doMagic", `{}`, gem, 404, "Method not found"},
		{"anthropic no max_tokens", "/api/anthropic/v1/messages", `{"model":"claude-sonnet-4-5","messages":[]}`, ant, 400, "max_tokens: Field required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := len(f.Requests())
			r := p.do("POST", tc.path, tc.body, tc.header)
			if r.Status != tc.status || !strings.Contains(string(r.Body), tc.says) {
				t.Fatalf("got %d %s, want the upstream's %d saying %q", r.Status, r.Body, tc.status, tc.says)
			}
			if got := len(f.Requests()) - n; got != 1 {
				t.Fatalf("the upstream got %d requests, want 1: a client error is not retried", got)
			}
			if a := r.Header.Get("X-KeyPool-Attempts"); a != "" {
				t.Fatalf("X-KeyPool-Attempts = %q on a client error", a)
			}
		})
	}
	for _, id := range ids {
		checkActive(t, keyStatusOf(t, p, id))
	}
}

func TestFailoverUpstreamErrorsPassiveHealth(t *testing.T) {
	f, p := startFakeProxy(t, fakeupstream.Options{}, map[string]string{"PASSIVE_FAILURES": "2", "PASSIVE_COOLDOWN": "5s"})
	ids, secrets := addKeys(t, f, p, "openai", "sk", fakeupstream.Overloaded, fakeupstream.OK)
	flaky := secrets[0]

	r := p.do("POST", "/api/openai/chat/completions", chatBody, bearer())
	if r.Status != 200 || r.Header.Get("X-KeyPool-Attempts") != "2" || r.Header.Get("X-KeyPool-Key-Id") != ids[1] {
		t.Fatalf("after a 503: %d attempts %q key %q, want 200 from the other key after 2 attempts", r.Status, r.Header.Get("X-KeyPool-Attempts"), r.Header.Get("X-KeyPool-Key-Id"))
	}
	k := keyStatusOf(t, p, ids[0])
	if k.State != adminapi.StateActive || !k.Available || k.CoolingUntil != nil || k.DisabledReason != "" || k.ConsecutiveFailures != 1 {
		t.Fatalf("after one 503: state %q available %v coolingUntil %v disabled %q consecutiveFailures %d; want active, not cooling, 1 failure",
			k.State, k.Available, k.CoolingUntil, k.DisabledReason, k.ConsecutiveFailures)
	}
	if k.LastError == nil || k.LastError.Status != 503 {
		t.Fatalf("lastError %+v, want the 503", k.LastError)
	}

	// A 500 next: the second consecutive upstream failure rests the key
	// for PASSIVE_COOLDOWN, without disabling it.
	f.SetBehavior(flaky, fakeupstream.InternalError)
	for i := 0; len(requestsWith(f, flaky)) < 2; i++ {
		if i == 10 {
			t.Fatalf("the flaky key was not tried again in 10 requests")
		}
		if r := p.do("POST", "/api/openai/chat/completions", chatBody, bearer()); r.Status != 200 {
			t.Fatalf("request %d: %d %s, want 200 (retried on the healthy key)", i, r.Status, r.Body)
		}
	}
	failedAt := time.Now()
	k = keyStatusOf(t, p, ids[0])
	if k.State != adminapi.StateCooling || k.DisabledReason != "" || !strings.Contains(k.CoolingReason, "passive") {
		t.Fatalf("after 2 consecutive upstream failures: state %q coolingReason %q disabled %q, want a brief passive-health rest", k.State, k.CoolingReason, k.DisabledReason)
	}
	checkTimeNear(t, "coolingUntil", apiTime(t, k.CoolingUntil), failedAt.Add(5*time.Second), 2*time.Second)
	if k.LastError == nil || k.LastError.Status != 500 {
		t.Fatalf("lastError %+v, want the 500", k.LastError)
	}
	// While it rests, requests go straight to the healthy key.
	for range 4 {
		r := p.do("POST", "/api/openai/chat/completions", chatBody, bearer())
		if r.Status != 200 || r.Header.Get("X-KeyPool-Attempts") != "" {
			t.Fatalf("while the flaky key rests: %d, attempts %q; want 200 at the first try", r.Status, r.Header.Get("X-KeyPool-Attempts"))
		}
	}
	if n := len(requestsWith(f, flaky)); n != 2 {
		t.Fatalf("the resting key was used %d times, want 2", n)
	}
	checkActive(t, keyStatusOf(t, p, ids[1]))
}

func TestFailoverLastAnswerWhenEveryTryFails(t *testing.T) {
	for _, tc := range []struct {
		name, provider, prefix, path, body string
		header                             map[string]string
		fakePath                           string
		fakeHeader                         string
		behaviors                          []fakeupstream.Behavior
		status                             int
	}{
		{"openai", "openai", "sk", "/api/openai/chat/completions", chatBody, bearer(),
			"/v1/chat/completions", "Authorization", []fakeupstream.Behavior{fakeupstream.Overloaded, fakeupstream.InternalError}, 500},
		{"gemini", "gemini", "AIzaSy", "/api/gemini/models/gemini-2.5-flash:generateContent", `{"contents":[]}`, map[string]string{"x-goog-api-key": testClientToken},
			"/v1beta/models/gemini-2.5-flash:generateContent", "X-Goog-Api-Key", []fakeupstream.Behavior{fakeupstream.InternalError, fakeupstream.Overloaded}, 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, p := startFakeProxy(t, fakeupstream.Options{}, nil)
			ids, secrets := addKeys(t, f, p, tc.provider, tc.prefix, tc.behaviors...)
			// What the last key's upstream answer looks like, asked directly.
			req, _ := http.NewRequest("POST", f.URL+tc.fakePath, strings.NewReader(tc.body))
			v := secrets[1]
			if tc.fakeHeader == "Authorization" {
				v = "Bearer " + v
			}
			req.Header.Set(tc.fakeHeader, v)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Fatalf("the fake answered %d directly, want %d", res.StatusCode, tc.status)
			}
			n := len(f.Requests())

			r := p.do("POST", tc.path, tc.body, tc.header)
			if r.Status != tc.status || !bytes.Equal(r.Body, want) {
				t.Fatalf("client got %d %s\nwant the last upstream answer %d %s", r.Status, r.Body, tc.status, want)
			}
			if r.Header.Get("X-KeyPool-Attempts") != "2" || r.Header.Get("X-KeyPool-Key-Id") != ids[1] {
				t.Fatalf("attempts %q key %q, want 2 and the last key tried", r.Header.Get("X-KeyPool-Attempts"), r.Header.Get("X-KeyPool-Key-Id"))
			}
			if got := len(f.Requests()) - n; got != 2 {
				t.Fatalf("the upstream got %d requests, want 2", got)
			}
			for _, id := range ids {
				if k := keyStatusOf(t, p, id); k.DisabledReason != "" || k.CoolingUntil != nil {
					t.Fatalf("key %s after one upstream failure: state %q; an upstream error must not disable or rest it", id, k.State)
				}
			}
		})
	}
}

func TestFailoverRetriesAreBounded(t *testing.T) {
	four := []fakeupstream.Behavior{fakeupstream.Overloaded, fakeupstream.Overloaded, fakeupstream.Overloaded, fakeupstream.Overloaded}
	for _, retries := range []int{0, 1, 2} {
		t.Run("MAX_RETRIES="+strconv.Itoa(retries), func(t *testing.T) {
			f, p := startFakeProxy(t, fakeupstream.Options{}, map[string]string{"MAX_RETRIES": strconv.Itoa(retries)})
			addKeys(t, f, p, "openai", "sk", four...)
			r := p.do("POST", "/api/openai/chat/completions", chatBody, bearer())
			if r.Status != 503 || !strings.Contains(string(r.Body), "overloaded") {
				t.Fatalf("got %d %s, want the upstream's 503", r.Status, r.Body)
			}
			if got, want := f.Count(), int64(retries+1); got != want {
				t.Fatalf("the upstream got %d requests with MAX_RETRIES=%d and 4 failing keys, want %d", got, retries, want)
			}
			want := strconv.Itoa(retries + 1)
			if retries == 0 {
				want = ""
			}
			if got := r.Header.Get("X-KeyPool-Attempts"); got != want {
				t.Fatalf("X-KeyPool-Attempts = %q, want %q", got, want)
			}
		})
	}
	t.Run("RETRY_BUDGET", func(t *testing.T) {
		// Each upstream answer takes 400ms; no retry starts after 600ms, so
		// the second attempt is the last however many retries are allowed.
		f, p := startFakeProxy(t, fakeupstream.Options{Latency: 400 * time.Millisecond}, map[string]string{"MAX_RETRIES": "3", "RETRY_BUDGET": "600ms"})
		addKeys(t, f, p, "openai", "sk", four...)
		r := p.do("POST", "/api/openai/chat/completions", chatBody, bearer())
		if r.Status != 503 {
			t.Fatalf("got %d %s, want the upstream's 503", r.Status, r.Body)
		}
		if got := f.Count(); got != 2 {
			t.Fatalf("the upstream got %d requests within a 600ms retry budget at 400ms each, want 2", got)
		}
	})
}

func TestFailoverStormGuard(t *testing.T) {
	// Gemini's bare 429 names no quota (page-assist#406): it may be the
	// proxy's address or the upstream, not the keys.
	const bare429 = `[{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}]`
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, bare429)
	}))
	t.Cleanup(bare.Close)
	for _, tc := range []struct {
		name     string
		provider string
		behavior fakeupstream.Behavior
		env      map[string]string
		path     string
		body     string
		header   map[string]string
		status   int
	}{
		{"all overloaded", "openai", fakeupstream.Overloaded, nil, "/api/openai/chat/completions", chatBody, bearer(), 503},
		{"all answer a 429 that names no quota", "gemini", fakeupstream.OK, map[string]string{"GEMINI_BASE_URL": bare.URL + "/v1beta"},
			"/api/gemini/v1beta/models/gemini-2.5-flash:generateContent", `{"contents":[]}`, map[string]string{"x-goog-api-key": testClientToken}, 429},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, p := startFakeProxy(t, fakeupstream.Options{}, tc.env)
			bs := []fakeupstream.Behavior{tc.behavior, tc.behavior, tc.behavior, tc.behavior}
			addKeys(t, f, p, tc.provider, "key-storm", bs...)
			// Enough requests that, without the guard, passive health (3
			// consecutive failures) or the 429 cooldowns rest every key.
			for i := range 6 {
				r := p.do("POST", tc.path, tc.body, tc.header)
				if r.Status != tc.status || strings.Contains(string(r.Body), "No available API keys") {
					t.Fatalf("request %d: %d %s, want the upstream's own %d (the pool must not be emptied by a storm)", i, r.Status, r.Body, tc.status)
				}
			}
			st := providerStatusOf(t, p, tc.provider)
			t.Logf("after the storm: %d available, %d cooling, %d disabled of %d", st.AvailableKeys, st.CoolingKeys, st.DisabledKeys, st.TotalKeys)
			if st.DisabledKeys != 0 {
				t.Fatalf("%d keys disabled by an upstream storm", st.DisabledKeys)
			}
			if st.AvailableKeys < 1 || st.CoolingKeys == st.TotalKeys {
				t.Fatalf("every key rests after a storm (%d cooling of %d): the whole pool was cooled for the upstream's trouble", st.CoolingKeys, st.TotalKeys)
			}
		})
	}
	t.Run("all rate limited with evidence", func(t *testing.T) {
		// OpenAI's rate_limit_exceeded names the organization's limit and
		// x-ratelimit-remaining-requests is 0: about the keys, however
		// many say it. Every key rests and the proxy answers itself.
		f, p := startFakeProxy(t, fakeupstream.Options{}, nil)
		rl := fakeupstream.RateLimited
		ids, _ := addKeys(t, f, p, "openai", "sk", rl, rl, rl, rl)
		if r := p.do("POST", "/api/openai/chat/completions", chatBody, bearer()); r.Status != 429 || r.Header.Get("X-KeyPool-Attempts") != "4" {
			t.Fatalf("first request: %d after %q attempts, want the last 429 after trying all 4 keys", r.Status, r.Header.Get("X-KeyPool-Attempts"))
		}
		for _, id := range ids {
			if k := keyStatusOf(t, p, id); len(k.ModelCooldowns) != 1 || k.ModelCooldowns[0].Model != "gpt-4o-mini" {
				t.Fatalf("key %s: modelCooldowns %+v, want its pair with gpt-4o-mini resting", id, k.ModelCooldowns)
			}
		}
		n := f.Count()
		r := p.do("POST", "/api/openai/chat/completions", chatBody, bearer())
		checkNoKeyAnswer(t, r, "openai", time.Now().Add(20*time.Second), 3*time.Second)
		if f.Count() != n {
			t.Fatalf("the upstream got %d requests while every key rested", f.Count()-n)
		}
	})
}

// addKeysInOrder is addKeys with the keys' creation times apart, so the
// round-robin order is the order given.
func addKeysInOrder(t *testing.T, f *fakeupstream.Server, p *proxy, provider, prefix string, bs ...fakeupstream.Behavior) (ids, secrets []string) {
	t.Helper()
	for _, b := range bs {
		i, s := addKeys(t, f, p, provider, prefix, b)
		ids, secrets = append(ids, i...), append(secrets, s...)
		time.Sleep(3 * time.Millisecond)
	}
	return ids, secrets
}

func TestFailoverKeyRefusalsCostNoRetries(t *testing.T) {
	gem := map[string]string{"x-goog-api-key": testClientToken}
	const gemPath = "/api/gemini/v1beta/models/gemini-2.5-flash:generateContent"
	t.Run("4 bad keys ahead of 1 healthy", func(t *testing.T) {
		// The measurement: per-minute 429, per-day quota, 403
		// suspended and 503 ahead of the healthy key in round-robin order,
		// default MAX_RETRIES (3). It was 19 of 20.
		f, p := startFakeProxy(t, fakeupstream.Options{}, nil)
		ids, secrets := addKeysInOrder(t, f, p, "gemini", "AIzaSyTest",
			fakeupstream.RateLimited, fakeupstream.DailyQuota, fakeupstream.Suspended, fakeupstream.Overloaded, fakeupstream.OK)
		ok := 0
		for i := range 20 {
			r := p.do("POST", gemPath, `{"contents":[]}`, gem)
			if r.Status == 200 {
				ok++
			} else {
				t.Errorf("request %d: %d after %s attempts: %s", i+1, r.Status, r.Header.Get("X-KeyPool-Attempts"), r.Body)
			}
			if i == 0 && (r.Header.Get("X-KeyPool-Attempts") != "5" || r.Header.Get("X-KeyPool-Key-Id") != ids[4]) {
				t.Fatalf("first request: attempts %q key %q, want 5 and the healthy key", r.Header.Get("X-KeyPool-Attempts"), r.Header.Get("X-KeyPool-Key-Id"))
			}
		}
		t.Logf("%d of 20 requests succeeded", ok)
		if ok != 20 {
			t.Fatalf("%d of 20 succeeded, want 20", ok)
		}
		for i := range 3 {
			if n := len(requestsWith(f, secrets[i])); n != 1 {
				t.Errorf("refusing key %d met the upstream %d times, want 1", i, n)
			}
		}
	})
	t.Run("MAX_RETRIES still bounds upstream trouble", func(t *testing.T) {
		// Refusals ahead cost nothing; the two 503s after them use up
		// MAX_RETRIES=1, so the healthy key behind is not reached.
		f, p := startFakeProxy(t, fakeupstream.Options{}, map[string]string{"MAX_RETRIES": "1"})
		addKeysInOrder(t, f, p, "gemini", "AIzaSyTest",
			fakeupstream.Invalid, fakeupstream.RateLimited, fakeupstream.Overloaded, fakeupstream.InternalError, fakeupstream.OK)
		r := p.do("POST", gemPath, `{"contents":[]}`, gem)
		if r.Status != 500 || r.Header.Get("X-KeyPool-Attempts") != "4" {
			t.Fatalf("got %d after %q attempts, want the upstream's 500 after 4 (2 free refusals, 2 upstream failures)", r.Status, r.Header.Get("X-KeyPool-Attempts"))
		}
	})
	t.Run("1 healthy behind 10 refusing, 200 concurrent", func(t *testing.T) {
		f, p := startFakeProxy(t, fakeupstream.Options{}, nil)
		refusing := []fakeupstream.Behavior{fakeupstream.RateLimited, fakeupstream.DailyQuota, fakeupstream.Invalid, fakeupstream.Suspended}
		var bs []fakeupstream.Behavior
		for i := range 10 {
			bs = append(bs, refusing[i%len(refusing)])
		}
		ids, _ := addKeysInOrder(t, f, p, "gemini", "AIzaSyTest", append(bs, fakeupstream.OK)...)
		const n = 200
		var wg sync.WaitGroup
		var okCount atomic.Int64
		errs := make(chan string, n)
		client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: n}}
		for range n {
			wg.Go(func() {
				req, _ := http.NewRequest("POST", p.URL+gemPath, strings.NewReader(`{"contents":[]}`))
				req.Header.Set("x-goog-api-key", testClientToken)
				res, err := client.Do(req)
				if err != nil {
					errs <- err.Error()
					return
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode == 200 && res.Header.Get("X-KeyPool-Key-Id") == ids[10] {
					okCount.Add(1)
				} else {
					errs <- fmt.Sprintf("%d after %s attempts: %.200s", res.StatusCode, res.Header.Get("X-KeyPool-Attempts"), b)
				}
			})
		}
		wg.Wait()
		close(errs)
		t.Logf("%d of %d concurrent requests succeeded; the upstream got %d requests", okCount.Load(), n, f.Count())
		for e := range errs {
			t.Error(e)
		}
		if okCount.Load() != n {
			t.Fatalf("%d of %d succeeded, want all", okCount.Load(), n)
		}
	})
}

func TestFailoverAllKeysOutForTheDay(t *testing.T) {
	// The second measurement: 3 keys out of their daily quota.
	// The storm guard used to keep one in service, so every request went
	// upstream until midnight.
	clearSDKEnv(t)
	f, p := startFakeProxy(t, fakeupstream.Options{}, nil)
	ids, _ := addKeys(t, f, p, "gemini", "AIzaSyTest", fakeupstream.DailyQuota, fakeupstream.DailyQuota, fakeupstream.DailyQuota)
	gem := map[string]string{"x-goog-api-key": testClientToken}
	const path = "/api/gemini/v1beta/models/gemini-2.5-flash:generateContent"
	start := time.Now()
	r := p.do("POST", path, `{"contents":[]}`, gem)
	if r.Status != 429 || r.Header.Get("X-KeyPool-Attempts") != "3" {
		t.Fatalf("first request: %d after %q attempts, want the last 429 after trying the 3 keys", r.Status, r.Header.Get("X-KeyPool-Attempts"))
	}
	for _, id := range ids {
		checkModelRest(t, keyStatusOf(t, p, id), "gemini-2.5-flash", "quota_exhausted", nextLAMidnight(t, start), 3*time.Second)
	}
	n := f.Count()
	for range 5 {
		r := p.do("POST", path, `{"contents":[]}`, gem)
		checkNoKeyAnswer(t, r, "gemini", nextLAMidnight(t, start), 3*time.Second)
	}
	// openai-go with its default retries through the front door: a
	// Retry-After of hours makes it give up at once.
	c := newOpenAIClient(p.URL + "/v1")
	_, err := c.Chat.Completions.New(sdkContext(t), chatParams("gemini-2.5-flash"))
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("front door: %v, want the proxy's 503", err)
	}
	if got := f.Count() - n; got != 0 {
		t.Fatalf("the upstream got %d requests after every key was out for the day, want 0", got)
	}
}

// sseChunk is one OpenAI chat.completion.chunk event.
func sseChunk(i int, text string) string {
	return fmt.Sprintf(`data: {"id":"chatcmpl-test","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":%q},"finish_reason":null}]}`+"\n\n", text)
}

func TestRelayMidStreamBreakIsNotACleanEnd(t *testing.T) {
	// An upstream that sends one chunk, waits until the test says so, and
	// then drops the connection without ending the chunked body.
	proceed := make(chan struct{}, 4)
	first := sseChunk(0, "Hello")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, first)
		w.(http.Flusher).Flush()
		select {
		case <-proceed:
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(srv.Close)
	p := startProxy(t, map[string]string{"OPENAI_BASE_URL": srv.URL + "/v1"})
	id := p.addKey("openai", "sk-mid-stream-break-key-00000001", 0)

	t.Run("raw", func(t *testing.T) {
		req, _ := http.NewRequest("POST", p.URL+"/api/openai/chat/completions", strings.NewReader(`{"model":"gpt-4o-mini","stream":true}`))
		req.Header.Set("Authorization", "Bearer "+testClientToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
		got := make([]byte, len(first))
		if _, err := io.ReadFull(res.Body, got); err != nil || string(got) != first {
			t.Fatalf("first chunk %q, %v", got, err)
		}
		proceed <- struct{}{}
		rest, err := io.ReadAll(res.Body)
		if err == nil {
			t.Fatalf("the stream ended cleanly after the upstream connection died (rest %q): the client cannot tell a half answer from a whole one", rest)
		}
		t.Logf("client read error after the break: %v", err)
	})
	t.Run("openai-go", func(t *testing.T) {
		clearSDKEnv(t)
		// Retries off: a stream is not retried by the SDK anyway once it started.
		c := newOpenAIClient(p.URL+"/api/openai/v1", oaoption.WithMaxRetries(0))
		stream := c.Chat.Completions.NewStreaming(sdkContext(t), chatParams("gpt-4o-mini"))
		defer stream.Close()
		if !stream.Next() {
			t.Fatalf("no first chunk: %v", stream.Err())
		}
		if got := stream.Current().Choices[0].Delta.Content; got != "Hello" {
			t.Fatalf("first chunk %q", got)
		}
		proceed <- struct{}{}
		n := 1
		for stream.Next() {
			n++
		}
		if stream.Err() == nil {
			t.Fatalf("openai-go saw a clean end after %d chunks of a stream whose upstream died", n)
		}
		t.Logf("openai-go stream error: %v", stream.Err())
	})
	// A broken stream is never counted as a success.
	waitUntil(t, 5*time.Second, "both broken streams to be recorded", func() bool {
		k := keyStatusOf(t, p, id)
		return k.Successes+k.Failures >= 2
	})
	k := keyStatusOf(t, p, id)
	if k.Successes != 0 || k.Failures != 2 {
		t.Fatalf("key counted %d successes and %d failures for 2 broken streams, want 0 and 2", k.Successes, k.Failures)
	}
}

func TestRelayFirstByteTimeoutFailsOver(t *testing.T) {
	const slowKey, fastKey = "sk-first-byte-slow-key-00000001", "sk-first-byte-fast-key-00000001"
	slowGone := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	var keys []string
	chunks := []string{sseChunk(0, "one "), sseChunk(1, "two "), sseChunk(2, "three"), "data: [DONE]\n\n"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		mu.Lock()
		keys = append(keys, key)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush() // headers out, then nothing
		if key == slowKey {
			select {
			case <-r.Context().Done():
				once.Do(func() { close(slowGone) })
			case <-time.After(20 * time.Second):
			}
			return
		}
		for _, c := range chunks {
			io.WriteString(w, c)
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(srv.Close)
	p := startProxy(t, map[string]string{"OPENAI_BASE_URL": srv.URL + "/v1", "FIRST_BYTE_TIMEOUT": "300ms"})
	slowID := p.addKey("openai", slowKey, 0)
	fastID := p.addKey("openai", fastKey, 0)

	start := time.Now()
	r := p.do("POST", "/api/openai/chat/completions", `{"model":"gpt-4o-mini","stream":true}`, bearer())
	elapsed := time.Since(start)
	if r.Status != 200 || string(r.Body) != strings.Join(chunks, "") {
		t.Fatalf("got %d %q, want the fast key's whole stream %q", r.Status, r.Body, strings.Join(chunks, ""))
	}
	if r.Header.Get("X-KeyPool-Attempts") != "2" || r.Header.Get("X-KeyPool-Key-Id") != fastID {
		t.Fatalf("attempts %q key %q, want 2 and the fast key", r.Header.Get("X-KeyPool-Attempts"), r.Header.Get("X-KeyPool-Key-Id"))
	}
	if elapsed < 300*time.Millisecond || elapsed > 10*time.Second {
		t.Fatalf("the answer took %s; want the 300ms first-byte timeout, then the fast key", elapsed)
	}
	mu.Lock()
	got := slices.Clone(keys)
	mu.Unlock()
	if !slices.Equal(got, []string{slowKey, fastKey}) {
		t.Fatalf("upstream saw keys %q, want the slow key, then the fast one", got)
	}
	select {
	case <-slowGone:
	case <-time.After(5 * time.Second):
		t.Fatal("the silent upstream request was not cancelled after the first-byte timeout")
	}
	k := keyStatusOf(t, p, slowID)
	if k.DisabledReason != "" || k.ConsecutiveFailures != 1 || k.LastError == nil {
		t.Fatalf("silent key: disabled %q consecutiveFailures %d lastError %+v, want one upstream failure, not disabled", k.DisabledReason, k.ConsecutiveFailures, k.LastError)
	}
}

func TestRelayFirstByteTimeoutGeminiJSONStream(t *testing.T) {
	// streamGenerateContent without alt=sse streams a JSON array
	// (application/json): still a stream, so a silent one fails over too.
	const slowKey, fastKey = "AIzaSyFirstByteSlowJSON-0000001", "AIzaSyFirstByteFastJSON-0000001"
	const answer = `[{"candidates":[{"content":{"parts":[{"text":"hi"}],"role":"model"},"finishReason":"STOP","index":0}]}]`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		if r.Header.Get("X-Goog-Api-Key") == slowKey {
			select {
			case <-r.Context().Done():
			case <-time.After(3 * time.Second):
			}
			return
		}
		io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	p := startProxy(t, map[string]string{"GEMINI_BASE_URL": srv.URL + "/v1beta", "FIRST_BYTE_TIMEOUT": "300ms"})
	p.addKey("gemini", slowKey, 0)
	fastID := p.addKey("gemini", fastKey, 0)
	start := time.Now()
	r := p.do("POST", "/api/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent", `{}`, map[string]string{"x-goog-api-key": testClientToken})
	elapsed := time.Since(start)
	if r.Status != 200 || string(r.Body) != answer || r.Header.Get("X-KeyPool-Key-Id") != fastID || r.Header.Get("X-KeyPool-Attempts") != "2" {
		t.Fatalf("got %d %q via key %q (attempts %q) after %s; want the fast key's stream after the 300ms FIRST_BYTE_TIMEOUT",
			r.Status, r.Body, r.Header.Get("X-KeyPool-Key-Id"), r.Header.Get("X-KeyPool-Attempts"), elapsed.Round(time.Millisecond))
	}
}

// chunkedReader hides its length, so the request goes out chunked.
type chunkedReader struct{ r io.Reader }

func (c chunkedReader) Read(p []byte) (int, error) { return c.r.Read(p) }

func TestRelayBodyCapWithRetries(t *testing.T) {
	const limit = 2048
	f, p := startFakeProxy(t, fakeupstream.Options{}, map[string]string{"MAX_BODY_BYTES": strconv.Itoa(limit)})
	_, secrets := addKeys(t, f, p, "openai", "sk", fakeupstream.RateLimited, fakeupstream.Overloaded, fakeupstream.OK)
	head, tail := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"`, `"}]}`
	body := head + strings.Repeat("x", limit-len(head)-len(tail)) + tail

	send := func(b string, chunked bool) response {
		var rd io.Reader = strings.NewReader(b)
		if chunked {
			rd = chunkedReader{rd}
		}
		req, _ := http.NewRequest("POST", p.URL+"/api/openai/chat/completions", rd)
		req.Header.Set("Authorization", "Bearer "+testClientToken)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		rb, _ := io.ReadAll(res.Body)
		return response{Status: res.StatusCode, Header: res.Header, Body: rb}
	}

	// At the cap, sent chunked: three attempts, the same body each time.
	r := send(body, true)
	if r.Status != 200 || r.Header.Get("X-KeyPool-Attempts") != "3" {
		t.Fatalf("body at the cap: %d attempts %q %s, want 200 after 3 attempts", r.Status, r.Header.Get("X-KeyPool-Attempts"), r.Body)
	}
	rs := f.Requests()
	if len(rs) != 3 {
		t.Fatalf("the upstream got %d requests, want 3", len(rs))
	}
	for i, rec := range rs {
		if rec.Key != secrets[i] {
			t.Fatalf("attempt %d used %q, want %q", i+1, rec.Key, secrets[i])
		}
		if string(rec.Body) != body {
			t.Fatalf("attempt %d sent a %d-byte body that differs from the client's %d bytes", i+1, len(rec.Body), len(body))
		}
	}
	// Over the cap, with a length or chunked: 413 JSON, nothing upstream.
	for _, chunked := range []bool{false, true} {
		r := send(body+" ", chunked)
		if r.Status != http.StatusRequestEntityTooLarge {
			t.Fatalf("body over the cap (chunked %v): %d %s, want 413", chunked, r.Status, r.Body)
		}
		if msg, _ := r.JSON(t)["error"].(string); !strings.Contains(msg, strconv.Itoa(limit)) {
			t.Fatalf("413 body %s does not name the cap", r.Body)
		}
	}
	r = p.do("POST", "/v1/chat/completions", body+" ", bearer())
	if r.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("front door over the cap: %d %s, want 413", r.Status, r.Body)
	}
	if n := len(f.Requests()); n != 3 {
		t.Fatalf("bodies over the cap reached the upstream: %d requests, want still 3", n)
	}
}

// testKey calls POST /admin/keys/{id}/test.
func testKey(t *testing.T, p *proxy, id string) adminapi.KeyTestResult {
	t.Helper()
	r := p.admin("POST", "/admin/keys/"+id+"/test", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("test key %s: %d %s", id, r.Status, r.Body)
	}
	var res adminapi.KeyTestResult
	r.Decode(t, &res)
	if res.KeyID != id || res.Key == nil || res.Key.ID != id {
		t.Fatalf("test result %s is not about key %s", r.Body, id)
	}
	return res
}

func TestKeyTestEndpoint(t *testing.T) {
	f, p := startFakeProxy(t, fakeupstream.Options{}, nil)
	ids, secrets := addKeys(t, f, p, "gemini", "AIzaSy", fakeupstream.OK, fakeupstream.Invalid)
	good, bad := ids[0], ids[1]

	res := testKey(t, p, good)
	if !res.OK || res.Status != 200 || res.Class != "success" || res.Key.State != adminapi.StateActive {
		t.Fatalf("OK key: ok %v status %d class %q state %q, want ok", res.OK, res.Status, res.Class, res.Key.State)
	}
	if res.Key.Requests != 0 {
		t.Fatalf("a key test counted %d requests of usage", res.Key.Requests)
	}
	rec := lastRecorded(t, f)
	if rec.Method != "GET" || rec.Path != "/v1beta/models" || rec.Key != secrets[0] {
		t.Fatalf("the test called %s %s with %q, want GET /v1beta/models with the key", rec.Method, rec.Path, rec.Key)
	}

	res = testKey(t, p, bad)
	if res.OK || res.Status != 400 || res.Class != "invalid_key" {
		t.Fatalf("invalid key: ok %v status %d class %q, want a 400 invalid_key", res.OK, res.Status, res.Class)
	}
	checkDisabled(t, *res.Key, "API_KEY_INVALID")
	checkDisabled(t, keyStatusOf(t, p, bad), "API_KEY_INVALID")
	if strings.Contains(res.Message, secrets[1]) {
		t.Fatal("the test message shows the key")
	}
	// A disabled key serves nothing.
	n := len(requestsWith(f, secrets[1]))
	for range 3 {
		if r := p.do("POST", "/api/gemini/models/gemini-2.5-flash:generateContent", `{}`, map[string]string{"x-goog-api-key": testClientToken}); r.Status != 200 || r.Header.Get("X-KeyPool-Key-Id") != good {
			t.Fatalf("relay with one key disabled: %d via %q", r.Status, r.Header.Get("X-KeyPool-Key-Id"))
		}
	}
	if got := len(requestsWith(f, secrets[1])); got != n {
		t.Fatalf("the disabled key was used %d times", got-n)
	}

	// The key works again: a test re-enables it.
	f.SetBehavior(secrets[1], fakeupstream.OK)
	res = testKey(t, p, bad)
	if !res.OK || res.Key.State != adminapi.StateActive || res.Key.DisabledReason != "" || res.Key.DisabledAt != nil {
		t.Fatalf("fixed key: ok %v state %q disabled %q, want re-enabled", res.OK, res.Key.State, res.Key.DisabledReason)
	}
	checkActive(t, keyStatusOf(t, p, bad))
	for range 4 {
		p.do("POST", "/api/gemini/models/gemini-2.5-flash:generateContent", `{}`, map[string]string{"x-goog-api-key": testClientToken})
	}
	if got := len(requestsWith(f, secrets[1])); got <= n+1 {
		t.Fatalf("the re-enabled key served %d of 4 requests, want its share", got-n-1)
	}

	t.Run("other providers", func(t *testing.T) {
		_, _ = addKeys(t, f, p, "openai", "sk", fakeupstream.Suspended)
		oid := providerStatusOf(t, p, "openai").Keys[0].ID
		if res := testKey(t, p, oid); res.OK || res.Status != 401 || res.Key.State != adminapi.StateDisabled {
			t.Fatalf("deactivated OpenAI account: ok %v status %d state %q, want disabled", res.OK, res.Status, res.Key.State)
		}
		_, _ = addKeys(t, f, p, "anthropic", "sk-ant", fakeupstream.Invalid)
		aid := providerStatusOf(t, p, "anthropic").Keys[0].ID
		if res := testKey(t, p, aid); res.OK || res.Status != 401 || res.Key.State != adminapi.StateDisabled {
			t.Fatalf("invalid Anthropic key: ok %v status %d state %q, want disabled", res.OK, res.Status, res.Key.State)
		}
	})
	if r := p.admin("POST", "/admin/keys/key_0_nope00/test", nil); r.Status != 404 {
		t.Fatalf("testing an unknown key: %d %s, want 404", r.Status, r.Body)
	}
	p.assertNoSecretsLogged(secrets...)
}

func TestKeyTestRetestReenables(t *testing.T) {
	f, p := startFakeProxy(t, fakeupstream.Options{}, map[string]string{"RETEST_INTERVAL": "500ms"})
	ids, secrets := addKeys(t, f, p, "gemini", "AIzaSy", fakeupstream.Invalid, fakeupstream.OK)
	bad := ids[0]
	r := p.do("POST", "/api/gemini/models/gemini-2.5-flash:generateContent", `{}`, map[string]string{"x-goog-api-key": testClientToken})
	if r.Status != 200 || r.Header.Get("X-KeyPool-Attempts") != "2" {
		t.Fatalf("relay: %d attempts %q, want 200 after failing over from the invalid key", r.Status, r.Header.Get("X-KeyPool-Attempts"))
	}
	checkDisabled(t, keyStatusOf(t, p, bad), "API_KEY_INVALID")

	// The re-tester tests it (GET models) and, while it is still invalid,
	// leaves it disabled.
	retests := func() int {
		n := 0
		for _, rec := range requestsWith(f, secrets[0]) {
			if rec.Method == "GET" && rec.Path == "/v1beta/models" {
				n++
			}
		}
		return n
	}
	waitUntil(t, 10*time.Second, "two re-tests of the disabled key", func() bool { return retests() >= 2 })
	checkDisabled(t, keyStatusOf(t, p, bad), "API_KEY_INVALID")

	// Fixed upstream: it comes back on its own.
	f.SetBehavior(secrets[0], fakeupstream.OK)
	waitUntil(t, 10*time.Second, "the re-tester to re-enable the fixed key", func() bool {
		return keyStatusOf(t, p, bad).State == adminapi.StateActive
	})
	checkActive(t, keyStatusOf(t, p, bad))
	n := len(requestsWith(f, secrets[0]))
	for range 4 {
		p.do("POST", "/api/gemini/models/gemini-2.5-flash:generateContent", `{}`, map[string]string{"x-goog-api-key": testClientToken})
	}
	if len(requestsWith(f, secrets[0])) == n {
		t.Fatal("the re-enabled key serves no requests")
	}
}

// flaky503 sits in front of the fake upstream and answers a share of the
// generation requests with OpenAI's 503 "overloaded", whatever the key.
type flaky503 struct {
	next     http.Handler
	rate     float64
	injected atomic.Int64
	lost     atomic.Int64 // requests the fake did not answer
	mu       sync.Mutex
	seen     map[string]int // requests by key
}

const openAIOverloaded = `{
    "error": {
        "message": "That model is currently overloaded with other requests. You can retry your request, or contact us through our help center at help.openai.com if the error persists.",
        "type": "server_error",
        "param": null,
        "code": null
    }
}
`

func (f *flaky503) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.seen[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]++
	f.mu.Unlock()
	if r.Method == http.MethodPost && rand.Float64() < f.rate {
		io.Copy(io.Discard, r.Body)
		f.injected.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Openai-Version", "2020-10-01")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, openAIOverloaded)
		return
	}
	f.next.ServeHTTP(w, r)
}

// sseChatText joins the content deltas of an OpenAI chat stream.
func sseChatText(b []byte) (string, error) {
	var text strings.Builder
	for line := range strings.SplitSeq(string(b), "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var ch struct {
			Choices []struct {
				Delta struct{ Content string } `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(data), &ch); err != nil {
			return text.String(), err
		}
		for _, c := range ch.Choices {
			text.WriteString(c.Delta.Content)
		}
	}
	return text.String(), nil
}

func TestLoadFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	const (
		clients     = 200
		total       = 2000
		nKeys       = 30
		nLimited    = 10
		nInvalid    = 3
		rate503     = 0.03
		maxRetries  = 20 // > nLimited+nInvalid: a request can always reach a healthy key
		streamEvery = 10
	)
	fake, err := fakeupstream.Start(fakeupstream.Options{Record: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	fu, _ := url.Parse(fake.URL)
	rp := httputil.NewSingleHostReverseProxy(fu)
	rp.FlushInterval = -1
	// The fake's server closes a connection that sends no request within
	// its 10s ReadHeaderTimeout; drop idle connections before that.
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 512, IdleConnTimeout: 5 * time.Second}
	flaky := &flaky503{next: rp, rate: rate503, seen: map[string]int{}}
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		flaky.lost.Add(1)
		t.Logf("front → fake: %v", err)
		w.WriteHeader(http.StatusBadGateway)
	}
	front := httptest.NewServer(flaky)
	t.Cleanup(front.Close)
	p := startProxy(t, map[string]string{"OPENAI_BASE_URL": front.URL + "/v1", "MAX_RETRIES": strconv.Itoa(maxRetries), "LOG_LEVEL": "warn"})

	kind := make(map[string]fakeupstream.Behavior) // key id → behaviour
	secretOf := make(map[string]string)
	var secrets []string
	for i := range nKeys {
		b := fakeupstream.OK
		switch {
		case i%3 == 0 && i/3 < nLimited: // spread through the pool
			b = fakeupstream.RateLimited
		case i%3 == 1 && i/3 < nInvalid:
			b = fakeupstream.Invalid
		}
		s := fmt.Sprintf("sk-load-%s-%08d", strings.ToLower(b.String()), i)
		fake.SetBehavior(s, b)
		id := p.addKey("openai", s, 0)
		kind[id], secretOf[id] = b, s
		secrets = append(secrets, s)
	}

	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxIdleConns: clients}, Timeout: 60 * time.Second}
	strategies := []string{"roundRobin", "leastUsed", "random", "weighted", "leastBusy"}
	var (
		next     atomic.Int64
		mu       sync.Mutex
		outcomes = map[int]int{}
		samples  []string
		wg       sync.WaitGroup
	)
	wantStream := streamText("gpt-4o-mini", fakeStreamChunks)
	start := time.Now()
	for c := range clients {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > total {
					return
				}
				stream := i%streamEvery == 0
				body := chatBody
				if stream {
					body = `{"model":"gpt-4o-mini","stream":true,"messages":[]}`
				}
				req, _ := http.NewRequest("POST", p.URL+"/api/openai/chat/completions?strategy="+strategies[c%len(strategies)], strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+testClientToken)
				status, problem := 0, ""
				res, err := hc.Do(req)
				if err != nil {
					problem = "transport: " + err.Error()
				} else {
					b, err := io.ReadAll(res.Body)
					res.Body.Close()
					status = res.StatusCode
					switch {
					case err != nil:
						problem = "reading the body: " + err.Error()
					case status != 200:
						problem = fmt.Sprintf("attempts %q: %.200s", res.Header.Get("X-KeyPool-Attempts"), b)
					case stream && !strings.Contains(string(b), "data: [DONE]"):
						problem = "stream without [DONE]"
					case stream:
						if text, err := sseChatText(b); err != nil || text != wantStream {
							problem = fmt.Sprintf("stream text %q, %v", text, err)
						}
					case !strings.Contains(string(b), fakeupstream.AnswerText("gpt-4o-mini")):
						problem = fmt.Sprintf("answer %.200s", b)
					}
				}
				mu.Lock()
				if problem != "" {
					status = -status - 1 // a 200 with a bad body counts apart from a good one
					if len(samples) < 10 {
						samples = append(samples, fmt.Sprintf("request %d (stream %v): %s", i, stream, problem))
					}
				}
				outcomes[status]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	t.Logf("%d requests from %d clients in %s (%.0f/s); outcomes %v; the upstream got %d requests, %d answered with an injected 503, %d lost on the way to the fake",
		total, clients, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), outcomes, fake.Count()+flaky.injected.Load(), flaky.injected.Load(), flaky.lost.Load())
	// With 17 healthy keys and MAX_RETRIES=20, every request can reach a
	// healthy key: only 13 keys are bad and each try uses another key. The
	// injected 503s hit healthy keys too, but at 3% a request would need
	// 8 of them in a row to fail. So every request must succeed.
	if outcomes[200] != total {
		t.Errorf("%d of %d requests succeeded; every one could have (samples: %s)", outcomes[200], total, strings.Join(samples, "; "))
	}

	raw := p.admin("GET", "/admin/status?provider=openai", nil)
	for _, s := range secrets {
		if strings.Contains(string(raw.Body), s) {
			t.Fatalf("status shows the secret of a key: %s…", s[:12])
		}
	}
	var st adminapi.ProviderStatus
	raw.Decode(t, &st)
	var successes int64
	flaky.mu.Lock()
	seen := maps.Clone(flaky.seen)
	flaky.mu.Unlock()
	for _, k := range st.Keys {
		successes += k.Successes
		// Every attempt is counted on the key that made it, once, and
		// nothing is left in flight.
		upstream := int64(seen[secretOf[k.ID]])
		if k.Requests != upstream || k.Successes+k.Failures != k.Requests || k.InFlight != 0 {
			t.Errorf("key %s: %d requests (%d successes, %d failures, %d in flight), but %d attempts reached the upstream with it (last error %+v)",
				k.ID, k.Requests, k.Successes, k.Failures, k.InFlight, upstream, k.LastError)
		}
		switch kind[k.ID] {
		case fakeupstream.Invalid:
			if k.State != adminapi.StateDisabled || !strings.Contains(k.DisabledReason, "invalid_api_key") {
				t.Errorf("invalid key %s: state %q reason %q, want disabled for invalid_api_key", k.ID, k.State, k.DisabledReason)
			}
		case fakeupstream.RateLimited:
			if k.DisabledReason != "" {
				t.Errorf("rate-limited key %s disabled (%q): a 429 must only rest it", k.ID, k.DisabledReason)
			}
			// Its last error is its 429, or a 503 the front injected into a
			// request that was already under way on it when it met the 429.
			if k.Successes != 0 || k.LastError == nil || k.LastError.Status != 429 && k.LastError.Status != 503 {
				t.Errorf("rate-limited key %s: %d successes, lastError %+v", k.ID, k.Successes, k.LastError)
			}
			// Resting after its 429 keeps it from being hammered: without it
			// it would meet about total/nKeys requests.
			if n := len(requestsWith(fake, secretOf[k.ID])); n > total/nKeys/2 {
				t.Errorf("rate-limited key %s met the upstream %d times; a cooled key should be left alone", k.ID, n)
			}
		default:
			if k.DisabledReason != "" {
				t.Errorf("healthy key %s disabled: %q", k.ID, k.DisabledReason)
			}
			if k.Successes == 0 {
				t.Errorf("healthy key %s served no request", k.ID)
			}
		}
	}
	maxLimited := 0
	for id, b := range kind {
		if b == fakeupstream.RateLimited {
			maxLimited = max(maxLimited, len(requestsWith(fake, secretOf[id])))
		}
	}
	t.Logf("a rate-limited key met the upstream at most %d times", maxLimited)
	if st.DisabledKeys != nInvalid {
		t.Errorf("%d keys disabled, want exactly the %d invalid ones", st.DisabledKeys, nInvalid)
	}
	if successes != int64(outcomes[200]) {
		t.Errorf("keys counted %d successes for %d successful requests", successes, outcomes[200])
	}
	if strings.Contains(p.stderr.String(), "DATA RACE") {
		t.Errorf("the race detector reported a race in the proxy:\n%s", p.stderr)
	}
	p.assertNoSecretsLogged(secrets...)
}

func TestFailoverModelRest(t *testing.T) {
	gem := map[string]string{"x-goog-api-key": testClientToken}
	for _, tc := range []struct {
		name, provider, prefix string
		path                   func(model string) string
		body                   func(model string) string
		header                 map[string]string
		models                 [2]string // the limited one, another
		wait                   time.Duration
	}{
		{"gemini native", "gemini", "AIzaSyTest",
			func(m string) string { return "/api/gemini/v1beta/models/" + m + ":generateContent" },
			func(string) string { return `{"contents":[]}` }, gem, [2]string{"gemini-2.5-pro", "gemini-2.5-flash"}, 26 * time.Second},
		{"gemini front door", "gemini", "AIzaSyTest",
			func(string) string { return "/v1/chat/completions" },
			func(m string) string { return `{"model":"` + m + `","messages":[]}` }, bearer(), [2]string{"gemini-2.5-pro", "gemini-2.5-flash"}, 26 * time.Second},
		{"openai", "openai", "sk-test",
			func(string) string { return "/api/openai/chat/completions" },
			func(m string) string { return `{"model":"` + m + `","messages":[]}` }, bearer(), [2]string{"gpt-4.1", "gpt-4o-mini"}, 20 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, p := startFakeProxy(t, fakeupstream.Options{}, nil)
			ids, secrets := addKeysInOrder(t, f, p, tc.provider, tc.prefix, fakeupstream.RateLimited, fakeupstream.OK)
			limited, other := tc.models[0], tc.models[1]
			do := func(model string) response { return p.do("POST", tc.path(model), tc.body(model), tc.header) }
			start := time.Now()
			if r := do(limited); r.Status != 200 || r.Header.Get("X-KeyPool-Attempts") != "2" {
				t.Fatalf("first request: %d after %q attempts, want 200 from the second key", r.Status, r.Header.Get("X-KeyPool-Attempts"))
			}
			k := keyStatusOf(t, p, ids[0])
			if k.State != adminapi.StateActive || k.CoolingUntil != nil || len(k.ModelCooldowns) != 1 || k.ModelCooldowns[0].Model != limited || k.ModelCooldowns[0].Reason != "rate_limited" {
				t.Fatalf("limited key: state %q coolingUntil %v modelCooldowns %+v; want active with one rest for %s", k.State, k.CoolingUntil, k.ModelCooldowns, limited)
			}
			checkTimeNear(t, "modelCooldowns.until", apiTime(t, k.ModelCooldowns[0].Until), start.Add(tc.wait), 3*time.Second)
			if ps := providerStatusOf(t, p, tc.provider); ps.RestingModelPairs != 1 || ps.CoolingKeys != 0 {
				t.Fatalf("provider status: restingModelPairs %d coolingKeys %d, want 1 and 0", ps.RestingModelPairs, ps.CoolingKeys)
			}
			// The key answers again; its pair with the limited model rests
			// on, its other models serve.
			f.SetBehavior(secrets[0], fakeupstream.OK)
			for i := range 4 {
				if r := do(limited); r.Status != 200 || r.Header.Get("X-KeyPool-Key-Id") != ids[1] {
					t.Fatalf("%s request %d: %d via %q, want 200 via the key whose pair does not rest", limited, i, r.Status, r.Header.Get("X-KeyPool-Key-Id"))
				}
			}
			used := map[string]bool{}
			for range 4 {
				r := do(other)
				if r.Status != 200 {
					t.Fatalf("%s: %d %s", other, r.Status, r.Body)
				}
				used[r.Header.Get("X-KeyPool-Key-Id")] = true
			}
			if !used[ids[0]] || !used[ids[1]] {
				t.Fatalf("%s used keys %v, want both: a rest for %s must not rest the key", other, used, limited)
			}
			// Every pair with the limited model rests: the proxy answers
			// for that model alone, without calling upstream.
			f.SetBehavior(secrets[1], fakeupstream.RateLimited)
			if r := do(limited); r.Status != 429 {
				t.Fatalf("last key limited: %d, want its 429", r.Status)
			}
			n := f.Count()
			r := do(limited)
			if tc.name != "gemini front door" {
				checkNoKeyAnswer(t, r, tc.provider, time.Now().Add(tc.wait), 3*time.Second)
			} else if r.Status != 503 || r.Header.Get("Retry-After") == "" {
				t.Fatalf("front door, every pair resting: %d %v", r.Status, r.Header)
			}
			if !strings.Contains(string(r.Body), `"model":"`+limited+`"`) {
				t.Fatalf("the 503 does not name the model: %s", r.Body)
			}
			if f.Count() != n {
				t.Fatal("the upstream was called although every pair with the model rests")
			}
			if r := do(other); r.Status != 200 || r.Header.Get("X-KeyPool-Key-Id") != ids[0] {
				t.Fatalf("%s while %s rests everywhere: %d via %q, want 200 via the first key", other, limited, r.Status, r.Header.Get("X-KeyPool-Key-Id"))
			}
		})
	}
}

// addProjectKey adds a key with a project and returns its id.
func addProjectKey(t *testing.T, f *fakeupstream.Server, p *proxy, secret, project string, b fakeupstream.Behavior) string {
	t.Helper()
	f.SetBehavior(secret, b)
	body := map[string]any{"provider": "gemini", "apiKey": secret}
	if project != "" {
		body["project"] = project
	}
	r := p.admin("POST", "/admin/keys", body)
	if r.Status != http.StatusCreated {
		t.Fatalf("add key: %d %s", r.Status, r.Body)
	}
	time.Sleep(3 * time.Millisecond) // round-robin order is creation order
	return r.JSON(t)["keyId"].(string)
}

func TestFailoverProjectRest(t *testing.T) {
	gem := map[string]string{"x-goog-api-key": testClientToken}
	path := func(m string) string { return "/api/gemini/v1beta/models/" + m + ":generateContent" }
	f, p := startFakeProxy(t, fakeupstream.Options{}, nil)
	n := keySeq.Add(1)
	secret := func(s string) string { return fmt.Sprintf("AIzaSyTestProject%s%06d", s, n) }
	a := addProjectKey(t, f, p, secret("A"), "111", fakeupstream.DailyQuota)
	b := addProjectKey(t, f, p, secret("B"), "111", fakeupstream.OK)
	c := addProjectKey(t, f, p, secret("C"), "222", fakeupstream.OK)
	d := addProjectKey(t, f, p, secret("D"), "", fakeupstream.OK)

	start := time.Now()
	r := p.do("POST", path("gemini-2.5-flash"), `{"contents":[]}`, gem)
	// The quota is project 111's (GenerateRequestsPerDayPerProjectPerModel):
	// B, of the same project, is skipped at once.
	if r.Status != 200 || r.Header.Get("X-KeyPool-Key-Id") != c || r.Header.Get("X-KeyPool-Attempts") != "2" {
		t.Fatalf("first request: %d via %q after %q, want 200 via C after 2 (a %s b %s c %s d %s)", r.Status, r.Header.Get("X-KeyPool-Key-Id"), r.Header.Get("X-KeyPool-Attempts"), a, b, c, d)
	}
	// B rests for the model too, without ever meeting the quota; C and D
	// do not.
	checkModelRest(t, keyStatusOf(t, p, a), "gemini-2.5-flash", "quota_exhausted", nextLAMidnight(t, start), 3*time.Second)
	checkModelRest(t, keyStatusOf(t, p, b), "gemini-2.5-flash", "project 111", nextLAMidnight(t, start), 3*time.Second)
	for _, id := range []string{c, d} {
		if k := keyStatusOf(t, p, id); len(k.ModelCooldowns) != 0 {
			t.Fatalf("key of another project rests: %+v", k.ModelCooldowns)
		}
	}
	for i := range 6 {
		r := p.do("POST", path("gemini-2.5-flash"), `{"contents":[]}`, gem)
		if id := r.Header.Get("X-KeyPool-Key-Id"); r.Status != 200 || id == a || id == b || r.Header.Get("X-KeyPool-Attempts") != "" {
			t.Fatalf("request %d: %d via %q after %q attempts, want 200 at once from project 222 or the key of unknown project", i, r.Status, id, r.Header.Get("X-KeyPool-Attempts"))
		}
	}
	// Project 111 still serves its other models (the fake's quota is the
	// key's for every model: lift it).
	f.SetBehavior(secret("A"), fakeupstream.OK)
	usedB := false
	for range 4 {
		r := p.do("POST", path("gemini-2.5-pro"), `{"contents":[]}`, gem)
		usedB = usedB || r.Header.Get("X-KeyPool-Key-Id") == b
	}
	if !usedB {
		t.Fatal("key B never served gemini-2.5-pro: a per-model project rest rested the key")
	}
	st := providerStatusOf(t, p, "gemini")
	if st.Projects != 2 || st.KeysWithoutProject != 1 {
		t.Fatalf("projects %d keysWithoutProject %d, want 2 and 1", st.Projects, st.KeysWithoutProject)
	}

	// A project is learned from Google's ErrorInfo consumer.
	e := addProjectKey(t, f, p, secret("E"), "", fakeupstream.Suspended)
	for i := 0; len(requestsWith(f, secret("E"))) == 0; i++ {
		if i == 10 {
			t.Fatal("the suspended key was never tried")
		}
		p.do("POST", path("gemini-2.5-pro"), `{"contents":[]}`, gem)
	}
	if k := keyStatusOf(t, p, e); k.Project != "123456789012" || !k.ProjectLearned || k.State != adminapi.StateDisabled {
		t.Fatalf("suspended key: project %q (learned %v) state %q, want the project its answer named, learned, disabled", k.Project, k.ProjectLearned, k.State)
	}
	if k := keyStatusOf(t, p, a); k.Project != "111" || k.ProjectLearned {
		t.Fatalf("key A: project %q learned %v, want 111 set by the operator", k.Project, k.ProjectLearned)
	}
	// An operator's setting over a learned project is the operator's.
	if r := p.admin("PUT", "/admin/keys/"+e, map[string]any{"project": "123456789012"}); r.Status != 200 || keyStatusOf(t, p, e).ProjectLearned {
		t.Fatalf("set over a learned project: %d %s, want it marked as set", r.Status, r.Body)
	}
	if st := providerStatusOf(t, p, "gemini"); st.Projects != 3 {
		t.Fatalf("projects %d after learning one, want 3", st.Projects)
	}

	// An operator sets and clears it; bad names are refused.
	if r := p.admin("PUT", "/admin/keys/"+d, map[string]any{"project": "222"}); r.Status != 200 || keyStatusOf(t, p, d).Project != "222" {
		t.Fatalf("set project: %d %s", r.Status, r.Body)
	}
	if r := p.admin("PUT", "/admin/keys/"+d, map[string]any{"project": "a/b"}); r.Status != 400 || !strings.Contains(string(r.Body), "project") {
		t.Fatalf("bad project: %d %s, want 400 naming the field", r.Status, r.Body)
	}
	if r := p.admin("PUT", "/admin/keys/"+d, map[string]any{"project": ""}); r.Status != 200 || keyStatusOf(t, p, d).Project != "" {
		t.Fatalf("clear project: %d %s", r.Status, r.Body)
	}
	// The overview counts the independent quotas.
	var all adminapi.StatusResponse
	p.admin("GET", "/admin/status", nil).Decode(t, &all)
	if all.Projects != 3 || all.KeysWithoutProject != 1 {
		t.Fatalf("overview: %d projects, %d keys without, want 3 and 1", all.Projects, all.KeysWithoutProject)
	}
}

func TestModelAliases(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/providers.json"
	if err := os.WriteFile(file, []byte(`{"providers":[],"aliases":{"fast":"gemini/gemini-2.5-flash","smart":"openai/gpt-4o-mini"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	f, p := startFakeProxy(t, fakeupstream.Options{}, map[string]string{"PROVIDERS_FILE": file})
	addKeys(t, f, p, "gemini", "AIzaSyTestAlias", fakeupstream.OK)
	addKeys(t, f, p, "openai", "sk-test-alias", fakeupstream.OK)

	// The admin API sets, checks and lists aliases.
	if r := p.admin("PUT", "/admin/aliases/cheap", map[string]string{"target": "gemini/gemini-2.5-pro"}); r.Status != 200 {
		t.Fatalf("put alias: %d %s", r.Status, r.Body)
	}
	for _, bad := range []struct{ name, target, says string }{
		{"x", "gemini", "provider/model"},
		{"x", "nope/m", "unknown provider"},
		{"x", "gemini/has space", "spaces"},
		{"a%2Fb", "gemini/m", "'/'"},
	} {
		r := p.admin("PUT", "/admin/aliases/"+bad.name, map[string]string{"target": bad.target})
		if r.Status != 400 || !strings.Contains(string(r.Body), bad.says) {
			t.Errorf("alias %q → %q: %d %s, want 400 saying %q", bad.name, bad.target, r.Status, r.Body, bad.says)
		}
	}
	var list struct {
		Aliases []struct{ Name, Target, Source string }
	}
	p.admin("GET", "/admin/aliases", nil).Decode(t, &list)
	if got := fmt.Sprint(list.Aliases); got != "[{cheap gemini/gemini-2.5-pro admin} {fast gemini/gemini-2.5-flash file} {smart openai/gpt-4o-mini file}]" {
		t.Fatalf("aliases %s", got)
	}

	last := func() fakeupstream.Recorded { return lastRecorded(t, f) }
	// The front door.
	r := p.do("POST", "/v1/chat/completions", `{"model":"fast","messages":[]}`, bearer())
	if rec := last(); r.Status != 200 || rec.Provider != fakeupstream.GeminiOpenAI || !strings.Contains(string(rec.Body), `"model":"gemini-2.5-flash"`) {
		t.Fatalf("front door alias: %d, upstream %s %s", r.Status, rec.Provider, rec.Body)
	}
	// Native routes: Gemini's path, a body's model.
	r = p.do("POST", "/api/gemini/v1beta/models/cheap:generateContent", `{"contents":[]}`, map[string]string{"x-goog-api-key": testClientToken})
	if rec := last(); r.Status != 200 || rec.Path != "/v1beta/models/gemini-2.5-pro:generateContent" {
		t.Fatalf("native gemini alias: %d, upstream path %s", r.Status, rec.Path)
	}
	r = p.do("POST", "/api/openai/chat/completions", `{"model":"smart","messages":[]}`, bearer())
	if rec := last(); r.Status != 200 || !strings.Contains(string(rec.Body), `"model":"gpt-4o-mini"`) {
		t.Fatalf("native openai alias: %d, upstream body %s", r.Status, rec.Body)
	}
	// An alias of another provider is not applied on a native route.
	p.do("POST", "/api/openai/chat/completions", `{"model":"fast","messages":[]}`, bearer())
	if rec := last(); !strings.Contains(string(rec.Body), `"model":"fast"`) {
		t.Fatalf("gemini alias applied on the openai route: %s", rec.Body)
	}
	// GET /v1/models lists them.
	var models struct {
		Data []map[string]any
	}
	p.do("GET", "/v1/models", nil, bearer()).Decode(t, &models)
	found := map[string]any{}
	for _, m := range models.Data {
		found[fmt.Sprint(m["id"])] = m["alias_for"]
	}
	if found["fast"] != "gemini/gemini-2.5-flash" || found["cheap"] != "gemini/gemini-2.5-pro" || found["smart"] != "openai/gpt-4o-mini" {
		t.Fatalf("GET /v1/models aliases: %v", found)
	}

	// Admin aliases survive a restart; file aliases cannot be deleted
	// through the API.
	p.stop()
	p = startProxy(t, map[string]string{"DATA_DIR": p.DataDir, "PROVIDERS_FILE": file, "GEMINI_BASE_URL": f.URL + "/v1beta", "OPENAI_BASE_URL": f.URL + "/v1"})
	list.Aliases = nil
	p.admin("GET", "/admin/aliases", nil).Decode(t, &list)
	if len(list.Aliases) != 3 || list.Aliases[0].Name != "cheap" {
		t.Fatalf("after a restart: %v", list.Aliases)
	}
	if r := p.admin("DELETE", "/admin/aliases/fast", nil); r.Status != 409 {
		t.Fatalf("delete a file alias: %d %s, want 409", r.Status, r.Body)
	}
	if r := p.admin("DELETE", "/admin/aliases/cheap", nil); r.Status != 200 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if r := p.admin("DELETE", "/admin/aliases/cheap", nil); r.Status != 404 {
		t.Fatalf("delete again: %d, want 404", r.Status)
	}
}
