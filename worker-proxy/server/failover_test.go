package server

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/keypool/keypool/worker-proxy/failure"
	"github.com/keypool/keypool/worker-proxy/pool"
)

func TestStormsNeedMostKeysAtOnce(t *testing.T) {
	st := newStorms(10 * time.Second)
	keys := make([]*pool.Entry, 10)
	p := pool.New(nil)
	var ks []pool.Key
	for i := range keys {
		ks = append(ks, pool.Key{ID: string(rune('a' + i)), Provider: "openai", Secret: "s" + string(rune('a'+i)), IsActive: true})
	}
	p.Load(ks, nil)
	for i := range keys {
		keys[i], _ = p.Entry(string(rune('a' + i)))
	}
	now := time.Unix(1000, 0)
	// 10 servable keys: the 5th distinct key failing the same way is a storm.
	for i := range 4 {
		if st.hit("openai", failure.RateLimited, keys[i], now, 10) {
			t.Fatalf("storm after %d keys", i+1)
		}
	}
	// The same key again does not count twice; another class is separate.
	if st.hit("openai", failure.RateLimited, keys[0], now, 10) || st.hit("openai", failure.Upstream, keys[5], now, 10) {
		t.Fatal("storm from repeats or another class")
	}
	if !st.hit("openai", failure.RateLimited, keys[4], now, 10) {
		t.Fatal("no storm with half the keys failing at once")
	}
	// Old failures leave the window.
	later := now.Add(11 * time.Second)
	if st.hit("openai", failure.RateLimited, keys[6], later, 10) {
		t.Fatal("failures outside the window still count")
	}
	// A key that failed again stays in the window from its latest failure.
	if st.hit("anthropic", failure.Upstream, keys[1], now, 4) || st.hit("anthropic", failure.Upstream, keys[2], now.Add(8*time.Second), 4) ||
		st.hit("anthropic", failure.Upstream, keys[1], now.Add(8*time.Second), 4) {
		t.Fatal("storm with 3 of 4 keys but two distinct")
	}
	if !st.hit("anthropic", failure.Upstream, keys[3], now.Add(12*time.Second), 4) {
		t.Fatal("the key that failed again at +8 s fell out of the window with its first failure")
	}
	// Tiny pools need at least 3 keys failing.
	if st.hit("gemini", failure.InvalidKey, keys[0], now, 1) || st.hit("gemini", failure.InvalidKey, keys[1], now, 1) {
		t.Fatal("storm with fewer than 3 keys")
	}
}

func TestPeekBodyKeepsEverything(t *testing.T) {
	body := strings.Repeat("x", maxErrorPeek+100)
	peek, rc := peekBody(io.NopCloser(strings.NewReader(body)), maxErrorPeek)
	all, _ := io.ReadAll(rc)
	if len(peek) != maxErrorPeek || string(all) != body {
		t.Fatalf("peek %d, body %d/%d", len(peek), len(all), len(body))
	}
}

func TestAwaitFirstByte(t *testing.T) {
	s := &Server{cfg: Config{FirstByteTimeout: 200 * time.Millisecond}}
	// Data in time: nothing is lost.
	res := &http.Response{Body: io.NopCloser(iotest.OneByteReader(strings.NewReader("data: 1\n\ndata: 2\n\n")))}
	res, err := s.awaitFirstByte(res)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(res.Body); string(b) != "data: 1\n\ndata: 2\n\n" {
		t.Fatalf("stream after the wait: %q", b)
	}
	// Silence: a timeout error, and the body is closed.
	pr, pw := io.Pipe()
	defer pw.Close()
	if _, err := s.awaitFirstByte(&http.Response{Body: pr}); err != errFirstByteTimeout {
		t.Fatalf("silent stream: %v", err)
	}
	if _, err := pw.Write([]byte("late")); err == nil {
		t.Fatal("the silent stream's body was not closed")
	}
}

func TestSetModel(t *testing.T) {
	b, err := setModel([]byte(`{"model":"groq/llama","messages":[{"role":"user","content":"hi"}],"stream":true}`), "llama")
	if err != nil || !strings.Contains(string(b), `"model":"llama"`) || !strings.Contains(string(b), `"stream":true`) || !strings.Contains(string(b), `"content":"hi"`) {
		t.Fatalf("setModel = %s, %v", b, err)
	}
	if _, err := setModel([]byte(`[1]`), "x"); err == nil {
		t.Fatal("setModel accepted a non-object")
	}
}

// BenchmarkStormsHitLargePool is the relay's bookkeeping of one failure
// while every key of a 10,000-key pool is failing (the upstream is down):
// it must not grow with the number of keys in the window.
func BenchmarkStormsHitLargePool(b *testing.B) {
	const n = 10000
	p := pool.New(nil)
	ks := make([]pool.Key, n)
	for i := range ks {
		ks[i] = pool.Key{ID: fmt.Sprintf("k%05d", i), Provider: "openai", Secret: fmt.Sprintf("sk-test-storm-%05d", i), IsActive: true}
	}
	p.Load(ks, nil)
	entries := make([]*pool.Entry, n)
	for i := range entries {
		entries[i], _ = p.Entry(ks[i].ID)
	}
	st := newStorms(10 * time.Second)
	now := time.Unix(1000, 0)
	for i := range n { // the window full of failing keys
		st.hit("openai", failure.Upstream, entries[i], now, n)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		now = now.Add(time.Microsecond)
		st.hit("openai", failure.Upstream, entries[i%n], now, n)
	}
}
