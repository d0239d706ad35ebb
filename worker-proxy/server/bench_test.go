package server

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/provider"
	"github.com/keypool/keypool/worker-proxy/store/boltstore"
)

// cannedTransport answers every request at once with a fixed response, so
// the benchmarks below measure the proxy's own work, not a network.
type cannedTransport struct {
	body        string
	contentType string
}

func (c cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{
		StatusCode: 200, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Request: r,
		Header:        http.Header{"Content-Type": {c.contentType}},
		Body:          io.NopCloser(strings.NewReader(c.body)),
		ContentLength: int64(len(c.body)),
	}, nil
}

var (
	chatBody   = `{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the fake upstream"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":6,"total_tokens":15}}`
	streamBody = strings.Repeat(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hello"}}]}`+"\n\n", 5) + "data: [DONE]\n\n"
	request    = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello"}]}`
)

func benchServer(b *testing.B, keys int, tr http.RoundTripper) *Server {
	st, err := boltstore.Open(filepath.Join(b.TempDir(), "k.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	reg, _ := provider.NewRegistry(provider.Defaults()...)
	s, err := New(b.Context(), Config{
		AdminKey: adminKey, ClientTokens: []string{"bench-client-token-0123456789"},
		Transport: tr, Logger: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}, st, reg)
	if err != nil {
		b.Fatal(err)
	}
	ks := make([]pool.Key, keys)
	for i := range ks {
		ks[i] = pool.Key{ID: fmt.Sprintf("key_%06d", i), Provider: "openai", Secret: fmt.Sprintf("sk-bench-%08d", i), IsActive: true}
	}
	s.pool.AddAll(ks)
	return s
}

// BenchmarkRelay is the relay's hot path in process: client token check,
// pick, body buffering, rewrite, the failover transport, response copy and
// accounting, against a bare httputil.ReverseProxy doing only the key
// swap over the same canned upstream.
func BenchmarkRelay(b *testing.B) {
	for _, mode := range []struct {
		name string
		tr   cannedTransport
	}{{"json", cannedTransport{chatBody, "application/json"}}, {"stream", cannedTransport{streamBody, "text/event-stream"}}} {
		b.Run("bare/"+mode.name, func(b *testing.B) {
			target, _ := url.Parse("http://upstream.invalid/v1")
			rp := &httputil.ReverseProxy{Transport: mode.tr, Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.Header.Set("Authorization", "Bearer sk-bench-key")
			}}
			h := http.StripPrefix("/api/openai", rp)
			runRelay(b, h)
		})
		for _, keys := range []int{10, 10000, 100000} {
			b.Run(fmt.Sprintf("proxy/keys=%d/%s", keys, mode.name), func(b *testing.B) {
				runRelay(b, benchServer(b, keys, mode.tr))
			})
		}
	}
}

func runRelay(b *testing.B, h http.Handler) {
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/api/openai/chat/completions", strings.NewReader(request))
		req.Header.Set("Authorization", "Bearer bench-client-token-0123456789")
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
