package edge

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/internal/fakeupstream"
)

const chatBody = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`

func upstreamEnv(up *fakeupstream.Server) map[string]string {
	return map[string]string{
		"OPENAI_BASE_URL": up.URL + "/v1", "GEMINI_BASE_URL": up.URL + "/v1beta", "ANTHROPIC_BASE_URL": up.URL + "/v1",
		"CLIENT_TOKENS": clientToken, "ALLOWED_ORIGINS": "https://dash.example.test",
	}
}

// TestDenoEndToEnd runs the edge folder under real Deno against the fake
// upstream: admin API, relay of JSON and SSE, failover, the /v1 front door,
// client tokens, admin auth and CORS, as the binary's tests do.
func TestDenoEndToEnd(t *testing.T) {
	up, err := fakeupstream.Start(fakeupstream.Options{StreamChunks: 5, ChunkInterval: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	p := startDeno(t, upstreamEnv(up))
	if !strings.Contains(p.logs.String(), "STORE=memory") || !strings.Contains(p.logs.String(), "LOST") {
		t.Errorf("no loud warning about STORE=memory:\n%s", p.logs.String())
	}

	t.Run("admin auth", func(t *testing.T) {
		if r := p.do("GET", "/admin/status", nil, nil); r.Status != http.StatusUnauthorized {
			t.Errorf("no admin key: %d %s", r.Status, r.Body)
		}
		if r := p.do("GET", "/admin/status", nil, map[string]string{"X-Admin-Key": "test-wrong-admin-key-000000"}); r.Status != http.StatusUnauthorized {
			t.Errorf("wrong admin key: %d", r.Status)
		}
		if r := p.admin("GET", "/admin/status", nil); r.Status != http.StatusOK {
			t.Errorf("admin status: %d %s", r.Status, r.Body)
		}
		if r := p.do("GET", "/healthz", nil, nil); r.Status != http.StatusOK {
			t.Errorf("healthz: %d", r.Status)
		}
	})

	good := "sk-test-fake-edge-good-0001"
	p.addKey("openai", good)
	p.addKey("gemini", "AIzaSy-test-fake-edge-0000001")

	t.Run("relay JSON", func(t *testing.T) {
		r := p.do("POST", "/api/openai/chat/completions", chatBody, bearer())
		if r.Status != 200 || !strings.Contains(r.Body, fakeupstream.AnswerText("gpt-4o-mini")) {
			t.Fatalf("relay: %d %s", r.Status, r.Body)
		}
		if strings.Contains(r.Body, good) {
			t.Error("a pool key leaked into the response")
		}
	})
	t.Run("client token", func(t *testing.T) {
		if r := p.do("POST", "/api/openai/chat/completions", chatBody, nil); r.Status != http.StatusUnauthorized {
			t.Errorf("no token: %d %s", r.Status, r.Body)
		}
		if r := p.do("POST", "/api/openai/chat/completions", chatBody, map[string]string{"Authorization": "Bearer test-not-a-token-0000000000"}); r.Status != http.StatusUnauthorized {
			t.Errorf("wrong token: %d %s", r.Status, r.Body)
		}
	})
	t.Run("front door", func(t *testing.T) {
		r := p.do("POST", "/v1/chat/completions", chatBody, bearer())
		if r.Status != 200 || !strings.Contains(r.Body, fakeupstream.AnswerText("gpt-4o-mini")) {
			t.Fatalf("/v1: %d %s", r.Status, r.Body)
		}
	})
	t.Run("CORS", func(t *testing.T) {
		r := p.do("OPTIONS", "/admin/status", nil, map[string]string{"Origin": "https://dash.example.test", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x-admin-key"})
		if got := r.Header.Get("Access-Control-Allow-Origin"); got != "https://dash.example.test" {
			t.Errorf("preflight from the allowed origin: %d, Allow-Origin %q", r.Status, got)
		}
		r = p.do("OPTIONS", "/admin/status", nil, map[string]string{"Origin": "https://evil.example.test", "Access-Control-Request-Method": "GET"})
		if got := r.Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("preflight from another origin allowed: %q", got)
		}
	})
	t.Run("SSE chunk by chunk", func(t *testing.T) {
		req, _ := http.NewRequest("POST", p.URL+"/api/openai/chat/completions", strings.NewReader(`{"model":"gpt-4o-mini","stream":true}`))
		req.Header.Set("Authorization", "Bearer "+clientToken)
		start := time.Now()
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("stream: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
		}
		var at []time.Duration
		sc := bufio.NewScanner(res.Body)
		done := false
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") {
				at = append(at, time.Since(start))
				done = done || sc.Text() == "data: [DONE]"
			}
		}
		if !done || len(at) < 5 {
			t.Fatalf("stream ended early: %d events, [DONE] %v", len(at), done)
		}
		// The fake sends a chunk every 150 ms: had the proxy buffered, all
		// events would arrive together at the end.
		if first, last := at[0], at[len(at)-1]; last-first < 400*time.Millisecond {
			t.Errorf("events arrived together (first %v, last %v): not streamed", first, last)
		}
	})
	t.Run("failover", func(t *testing.T) {
		bad := "sk-test-fake-edge-ratelimited-0002"
		up.SetBehavior(bad, fakeupstream.RateLimited)
		p.addKey("openai", bad)
		for i := range 6 {
			r := p.do("POST", "/api/openai/chat/completions", chatBody, bearer())
			if r.Status != 200 {
				t.Fatalf("request %d: %d %s", i, r.Status, r.Body)
			}
		}
	})
}

// TestDenoClientHangUpCancelsUpstream: a client that goes away mid-stream
// ends the upstream request too.
func TestDenoClientHangUpCancelsUpstream(t *testing.T) {
	var cancelled atomic.Int32
	started := make(chan struct{}, 1)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		select {
		case started <- struct{}{}:
		default:
		}
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-r.Context().Done():
				cancelled.Add(1)
				return
			case <-tk.C:
				w.Write([]byte("data: {\"type\":\"ping\"}\n\n"))
				w.(http.Flusher).Flush()
			}
		}
	}))
	defer slow.Close()
	p := startDeno(t, map[string]string{"ANTHROPIC_BASE_URL": slow.URL + "/v1", "CLIENT_TOKENS": clientToken})
	p.addKey("anthropic", "sk-ant-test-fake-edge-0001")

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", p.URL+"/api/anthropic/v1/messages", strings.NewReader(`{"model":"claude-sonnet-4-5","max_tokens":5,"stream":true,"messages":[]}`))
	req.Header.Set("x-api-key", clientToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(res.Body)
	for range 2 {
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	<-started
	cancel()
	res.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for cancelled.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the upstream request was not cancelled after the client hung up")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDenoSIGTERMExits: SIGTERM makes the process flush and exit 0.
func TestDenoSIGTERMExits(t *testing.T) {
	p := startDeno(t, map[string]string{"ALLOW_ANONYMOUS_RELAY": "true"})
	p.signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("deno did not exit within 10s of SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d", code)
	}
	if !strings.Contains(p.logs.String(), "usage flushed") {
		t.Errorf("no final flush in the log:\n%s", p.logs.String())
	}
}

// TestDenoLargeBodies: bodies bigger than the chunks fetch.js reads with
// (32 KiB) reach the client byte for byte, in both directions, whether the
// upstream sends them whole or in flushed pieces; and many such relays
// one after another work (fetch.js reuses its read buffers across calls).
func TestDenoLargeBodies(t *testing.T) {
	const size = 300<<10 + 123
	payload := func(seed byte) []byte {
		b := make([]byte, size)
		for i := range b {
			b[i] = 'a' + byte((i*7+int(seed))%26)
		}
		return b
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, _ := io.ReadAll(r.Body)
		seed := byte(len(in) % 26)
		body := payload(seed)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("X-Request-Bytes", strconv.Itoa(len(in)))
		if r.URL.Query().Has("flushed") {
			for b := body; len(b) > 0; {
				n := min(len(b), 10_000)
				w.Write(b[:n])
				w.(http.Flusher).Flush()
				b = b[n:]
			}
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}))
	defer up.Close()
	p := startDeno(t, map[string]string{"OPENAI_BASE_URL": up.URL + "/v1", "CLIENT_TOKENS": clientToken})
	p.addKey("openai", "sk-test-fake-edge-large-0001")
	for i := range 6 {
		query := ""
		if i%2 == 1 {
			query = "?flushed=1"
		}
		in := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("x", 100<<10+i) + `"}]}`
		r := p.do("POST", "/api/openai/chat/completions"+query, in, bearer())
		if r.Status != http.StatusOK {
			t.Fatalf("relay %d: %d %.200s", i, r.Status, r.Body)
		}
		if got := r.Header.Get("X-Request-Bytes"); got != strconv.Itoa(len(in)) {
			t.Errorf("relay %d: upstream got %s request bytes, want %d", i, got, len(in))
		}
		if want := payload(byte(len(in) % 26)); r.Body != string(want) {
			t.Fatalf("relay %d%s: got %d bytes, want %d identical ones", i, query, len(r.Body), len(want))
		}
	}
}
