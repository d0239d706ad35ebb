package edge

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
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
