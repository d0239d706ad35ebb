package edge

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestDenoConcurrentBodies sends many requests at once through the bridge,
// each with its own body, to an upstream that echoes the body back: as one
// piece with a Content-Length (fetch.js reads it whole) or flushed in small
// pieces without one (read chunk by chunk; answered to the client as a
// stream once past the bridge's chunk size). Every answer must be the body
// its request sent, byte for byte: the bridge's copies through the wasm
// memory and its reused buffers must not mix requests up.
func TestDenoConcurrentBodies(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if len(b)%2 == 0 {
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			w.Write(b)
			return
		}
		for len(b) > 0 {
			n := min(len(b), 1000+rand.IntN(3000))
			w.Write(b[:n])
			w.(http.Flusher).Flush()
			b = b[n:]
		}
	}))
	defer echo.Close()
	p := startDeno(t, map[string]string{"OPENAI_BASE_URL": echo.URL + "/v1", "CLIENT_TOKENS": clientToken, "LOG_LEVEL": "warn"})
	p.addKey("openai", "sk-test-fake-edge-echo-0001")

	const n, conc = 60, 12
	sizes := []int{0, 1, 2, 100, 4 << 10, 64<<10 - 1, 64 << 10, 64<<10 + 1, 200 << 10, 1<<20 + 1, 1<<20 + 2}
	var wg sync.WaitGroup
	sem := make(chan struct{}, conc)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			raw := make([]byte, sizes[i%len(sizes)]*3/4)
			for j := range raw {
				raw[j] = byte(rand.IntN(256))
			}
			body := []byte(fmt.Sprintf(`{"model":"gpt-4o-mini","n":%d,"messages":[{"role":"user","content":%q}]}`, i, base64.StdEncoding.EncodeToString(raw)))
			if len(body)%2 != i%2 { // both echo styles for every size
				body = append(body, ' ')
			}
			req, _ := http.NewRequest("POST", p.URL+"/api/openai/chat/completions", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+clientToken)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			defer res.Body.Close()
			got, err := io.ReadAll(res.Body)
			if err != nil || res.StatusCode != 200 {
				t.Errorf("request %d (%d bytes): %d %v %.200s", i, len(body), res.StatusCode, err, got)
				return
			}
			if !bytes.Equal(got, body) {
				t.Errorf("request %d: sent %d bytes, got back %d bytes that differ", i, len(body), len(got))
			}
		}()
	}
	wg.Wait()
}

// TestDenoStreamBackpressure: a client that stops reading a streamed
// answer stops the proxy reading the upstream (beyond what the sockets
// and the queues on the way hold: about 5 MiB here), and then still gets
// all of it. (The bridge's own bound, a 64 KiB stream queue in fetch.js
// before Go's Write blocks, is not the first to act here: with it taken
// out the upstream stalled at the same point.)
func TestDenoStreamBackpressure(t *testing.T) {
	const total = 48 << 20
	line := []byte("data: {\"type\":\"ping\",\"pad\":\"" + strings.Repeat("x", 16<<10-40) + "\"}\n\n")
	var written atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		for written.Load() < total {
			n, err := w.Write(line)
			written.Add(int64(n))
			if err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}))
	defer up.Close()
	p := startDeno(t, map[string]string{"ANTHROPIC_BASE_URL": up.URL + "/v1", "CLIENT_TOKENS": clientToken, "LOG_LEVEL": "warn"})
	p.addKey("anthropic", "sk-ant-test-fake-edge-0001")

	req, _ := http.NewRequest("POST", p.URL+"/api/anthropic/v1/messages", strings.NewReader(`{"model":"claude-sonnet-4-5","max_tokens":5,"stream":true,"messages":[]}`))
	req.Header.Set("x-api-key", clientToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	// Not reading: the upstream's writes must stall well short of the end.
	var last int64
	for range 40 {
		time.Sleep(100 * time.Millisecond)
		if n := written.Load(); n == last && n > 0 {
			break
		} else {
			last = n
		}
	}
	t.Logf("the upstream wrote %d MiB while the client read nothing", written.Load()>>20)
	if n := written.Load(); n >= total/2 {
		t.Fatalf("the upstream wrote %d MiB while the client read nothing: no backpressure", n>>20)
	}
	got, err := io.Copy(io.Discard, res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if want := written.Load(); got != want || got < total {
		t.Errorf("client got %d bytes, the upstream wrote %d (at least %d)", got, want, total)
	}
}

// TestDenoUpstreamUnreachable: a fetch that fails (nothing listens) comes
// back to Go as an error, and the client gets the proxy's 502, not a hang.
func TestDenoUpstreamUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	p := startDeno(t, map[string]string{"OPENAI_BASE_URL": "http://" + addr + "/v1", "CLIENT_TOKENS": clientToken, "MAX_RETRIES": "0"})
	p.addKey("openai", "sk-test-fake-edge-unreachable-0001")
	r := p.do("POST", "/api/openai/chat/completions", chatBody, bearer())
	if r.Status != http.StatusBadGateway {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	if !strings.Contains(r.Body, "error") {
		t.Errorf("no JSON error: %s", r.Body)
	}
}
