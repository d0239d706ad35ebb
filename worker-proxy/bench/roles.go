package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/keypool/keypool/worker-proxy/internal/fakeupstream"
)

// The harness runs its helper servers as copies of its own executable, so
// each is a process whose CPU and memory can be read from /proc. The
// environment says which role a copy plays and how; flags are not used,
// so the test binary can play the roles too (see TestMain).
const (
	envRole          = "KEYPOOL_BENCH_ROLE"           // "upstream" or "baseline"
	envChunks        = "KEYPOOL_BENCH_CHUNKS"         // upstream: chunks per stream
	envChunkInterval = "KEYPOOL_BENCH_CHUNK_INTERVAL" // upstream: delay between chunks
	envUpstream      = "KEYPOOL_BENCH_UPSTREAM"       // baseline: the fake upstream's URL
	envOpenAIKey     = "KEYPOOL_BENCH_OPENAI_KEY"     // baseline: key injected for OpenAI
	envGeminiKey     = "KEYPOOL_BENCH_GEMINI_KEY"     // baseline: key injected for Gemini
)

// Role names.
const (
	roleUpstream = "upstream"
	roleBaseline = "baseline"
)

// runRole plays the role named in the environment until SIGINT, SIGTERM or
// the end of stdin (the harness holds stdin open, so a role never outlives
// it). It prints "<role> listening on <URL>" on stdout once it serves.
func runRole(role string, getenv func(string) string, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	switch role {
	case roleUpstream:
		return serveUpstream(ctx, getenv, stdout)
	case roleBaseline:
		return serveBaseline(ctx, getenv, stdout)
	}
	return fmt.Errorf("unknown role %q (want %s or %s)", role, roleUpstream, roleBaseline)
}

// serveUpstream runs the fake upstream on 127.0.0.1.
func serveUpstream(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	chunks, err := strconv.Atoi(getenv(envChunks))
	if err != nil {
		return fmt.Errorf("upstream: %s: %w", envChunks, err)
	}
	interval, err := time.ParseDuration(getenv(envChunkInterval))
	if err != nil {
		return fmt.Errorf("upstream: %s: %w", envChunkInterval, err)
	}
	up, err := fakeupstream.Start(fakeupstream.Options{StreamChunks: chunks, ChunkInterval: interval})
	if err != nil {
		return fmt.Errorf("upstream: start: %w", err)
	}
	defer up.Close()
	fmt.Fprintf(stdout, "%s listening on %s\n", roleUpstream, up.URL)
	<-ctx.Done()
	return nil
}

// serveBaseline runs the floor any Go relay is measured against: a bare
// httputil.ReverseProxy that maps the proxy's relay paths to the upstream
// and swaps the client's credential for a fixed key. It does nothing
// else: no pool, no token check, no accounting, no logging. Its transport
// keeps as many idle upstream connections as the proxy's does, so neither
// pays for reconnecting, and it recycles its 32 KiB copy buffers as the
// proxy does: without a BufferPool, ReverseProxy allocates one per answer
// and spends about a tenth of its CPU more in the garbage collector, which
// would make the floor too easy to beat.
//
// It reads the small request body before relaying it, as the proxy does: a
// ReverseProxy that streams the unread inbound body while it flushes a
// streamed answer sees that body closed under it now and then ("use of
// closed network connection"), and about one stream in a hundred breaks.
// Without the buffer the floor would not be a correct relay.
func serveBaseline(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	up, err := url.Parse(getenv(envUpstream))
	if err != nil || up.Host == "" {
		return fmt.Errorf("baseline: %s %q is not a URL", envUpstream, getenv(envUpstream))
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConnsPerHost = 256
	buffers := &bufferPool{sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
	relay := func(prefix, base, header, key string) http.Handler {
		target := &url.URL{Scheme: up.Scheme, Host: up.Host, Path: base}
		return &httputil.ReverseProxy{Transport: tr, BufferPool: buffers, Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Path = strings.TrimPrefix(pr.Out.URL.Path, prefix)
			pr.Out.URL.RawPath = ""
			pr.SetURL(target)
			h := pr.Out.Header
			h.Del("Authorization")
			h.Del("X-Goog-Api-Key")
			h.Del("X-Api-Key")
			h.Set(header, key)
		}}
	}
	buffered := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var buf bytes.Buffer
			buf.Grow(int(max(r.ContentLength, 0)) + bytes.MinRead)
			_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, 32<<20))
			if err != nil {
				http.Error(w, "cannot read the request body", http.StatusBadRequest)
				return
			}
			r.Body, r.ContentLength = io.NopCloser(&buf), int64(buf.Len())
			h.ServeHTTP(w, r)
		})
	}
	mux := http.NewServeMux()
	mux.Handle("/api/openai/", buffered(relay("/api/openai", "/v1", "Authorization", "Bearer "+getenv(envOpenAIKey))))
	mux.Handle("/api/gemini/", buffered(relay("/api/gemini", "/v1beta", "X-Goog-Api-Key", getenv(envGeminiKey))))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("baseline: listen: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 15 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "%s listening on http://%s\n", roleBaseline, ln.Addr())
	select {
	case err := <-errc:
		return fmt.Errorf("baseline: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	return nil
}

// bufferPool lends the baseline's ReverseProxy its copy buffers.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte  { return *b.p.Get().(*[]byte) }
func (b *bufferPool) Put(p []byte) { b.p.Put(&p) }
