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
	"time"

	"github.com/keypool/keypool/worker-proxy/limits"
	"github.com/keypool/keypool/worker-proxy/logbatch"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/provider"
	"github.com/keypool/keypool/worker-proxy/reqlog"
	"github.com/keypool/keypool/worker-proxy/reqlog/boltlog"
	"github.com/keypool/keypool/worker-proxy/store/boltstore"
	"github.com/keypool/keypool/worker-proxy/tokenusage"
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
	return benchServerWith(b, keys, tr, false)
}

// benchServerWith builds the benchmarks' server; with defaults, as the
// proxy runs by default: an info log line per request (text, batched, to
// nowhere) and the request log in a bbolt file.
func benchServerWith(b *testing.B, keys int, tr http.RoundTripper, defaults bool) *Server {
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var rl *reqlog.Log
	if defaults {
		lb := logbatch.New(io.Discard, 200*time.Millisecond)
		log = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelInfo}))
		bl, err := boltlog.Open(filepath.Join(b.TempDir(), "requests.db"), reqlog.Bounds{}, nil)
		if err != nil {
			b.Fatal(err)
		}
		rl = reqlog.New(bl, "bolt", reqlog.Options{Logger: log})
		b.Cleanup(func() { rl.Close() })
	}
	st, err := boltstore.Open(filepath.Join(b.TempDir(), "k.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	reg, _ := provider.NewRegistry(provider.Defaults()...)
	s, err := New(b.Context(), Config{
		AdminKey: adminKey, ClientTokens: []string{"bench-client-token-0123456789"},
		Transport: tr, Logger: log, RequestLog: rl,
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
			withCPU(b, func() { runRelay(b, h) })
		})
		for _, keys := range []int{10, 10000, 100000} {
			b.Run(fmt.Sprintf("proxy/keys=%d/%s", keys, mode.name), func(b *testing.B) {
				s := benchServer(b, keys, mode.tr)
				withCPU(b, func() { runRelay(b, s) })
			})
		}
		// The proxy's defaults: info log line, request log, metrics, token
		// counting (what go run ./worker-proxy/bench measures as proxy-10).
		b.Run("proxy/keys=10/defaults/"+mode.name, func(b *testing.B) {
			s := benchServerWith(b, 10, mode.tr, true)
			withCPU(b, func() { runRelay(b, s) })
		})
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

// streamUsageBody is streamBody as a client that set
// stream_options.include_usage gets it: a last chunk with the usage.
var streamUsageBody = strings.TrimSuffix(streamBody, "data: [DONE]\n\n") +
	`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":6,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}` + "\n\ndata: [DONE]\n\n"

// BenchmarkRelayTokenUsage measures, in one run, the relay serving a
// request (token counting included: "relay"), the token counter reading
// the same answer alone ("count") and the relay for a client token with
// all four budgets set ("limited"). count over relay is the counter's
// share of the relay's CPU per request (PERFORMANCE.md).
func BenchmarkRelayTokenUsage(b *testing.B) {
	for _, mode := range []struct{ name, body, ct string }{
		{"json", chatBody, "application/json"},
		{"stream", streamUsageBody, "text/event-stream"},
	} {
		tr := cannedTransport{mode.body, mode.ct}
		b.Run(mode.name+"/relay", func(b *testing.B) {
			s := benchServer(b, 10, tr)
			withCPU(b, func() { runRelay(b, s) })
		})
		b.Run(mode.name+"/count", func(b *testing.B) {
			body := []byte(mode.body)
			var c tokenusage.Counter
			b.ReportAllocs()
			withCPU(b, func() {
				for b.Loop() {
					c.Reset()
					c.Write(body)
					if u, ok := c.Usage(); !ok || u.Total() != 15 {
						b.Fatalf("usage %+v %v", u, ok)
					}
				}
			})
		})
		b.Run(mode.name+"/limited", func(b *testing.B) {
			s := benchServer(b, 10, tr)
			tok := pool.ClientToken{ID: "tok_bench", Name: "bench", Limits: limits.Limits{RPM: 1 << 40, RPD: 1 << 40, TPM: 1 << 40, TPD: 1 << 40}}
			sum, _ := hashToken("bench-client-token-0123456789")
			s.tokens.update(func(m map[[32]byte]tokenRef) { m[sum] = tokenRef{id: tok.ID, name: tok.Name, token: tok} })
			withCPU(b, func() { runRelay(b, s) })
		})
	}
}

// withCPU runs f, a benchmark loop, and reports the process CPU time per
// iteration as cpu-ns/op: on a machine shared with other work it is
// steadier than wall time. (The relay's background goroutines count too.)
func withCPU(b *testing.B, f func()) {
	start := cpuTime()
	f()
	if b.N > 0 {
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
	}
}
