package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/provider"
	"github.com/keypool/keypool/worker-proxy/store/boltstore"
)

// recordingTransport answers every upstream request with a small JSON 200
// and keeps the URLs it was asked for.
type recordingTransport struct {
	mu   sync.Mutex
	urls []*url.URL
}

func (rt *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	rt.mu.Lock()
	rt.urls = append(rt.urls, r.URL)
	rt.mu.Unlock()
	return &http.Response{
		StatusCode: 200, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Request: r,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(strings.NewReader(`{"data":[]}`)),
		ContentLength: 11,
	}, nil
}

// FuzzRelayPaths sends any path to the native relay and the front door:
// whatever reaches an upstream stays under one of the providers' API roots,
// with no dot segment, backslash or control byte once decoded; the proxy
// never fails with a 500.
func FuzzRelayPaths(f *testing.F) {
	for _, p := range []string{
		"/api/openai/chat/completions", "/api/gemini/v1beta/models/gemini-pro:generateContent",
		"/v1/chat/completions", "/v1/models/gemini-2.0-flash", "/v1/models/openai/gpt-4o",
		"/v1/..%2F..%2Fother/x", "/api/openai/..%2F..%2Fx", "/v1/models/openai%2F..%2F..%2Fx",
		"/v1/models/%2e%2e", "/api/gemini/a%00b", `/api/gemini/v1beta/a\..\x`, "/api/openai/%252e%252e/x",
		"/v1/models/openai/..", "/api/anthropic/v1/../../x", "/v1/a%5C..%5Cb",
	} {
		f.Add("POST", p)
		f.Add("GET", p)
	}
	st, err := boltstore.Open(filepath.Join(f.TempDir(), "k.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	reg, _ := provider.NewRegistry(provider.Defaults()...)
	rt := &recordingTransport{}
	s, err := New(f.Context(), Config{AdminKey: adminKey, AllowAnonymous: true, Transport: rt,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, st, reg)
	if err != nil {
		f.Fatal(err)
	}
	s.pool.AddAll([]pool.Key{
		{ID: "key_o", Provider: "openai", Secret: "sk-fake-fuzz-key-000000001", IsActive: true},
		{ID: "key_g", Provider: "gemini", Secret: "AIza-fake-fuzz-key-00000001", IsActive: true},
		{ID: "key_a", Provider: "anthropic", Secret: "sk-ant-fake-fuzz-key-00001", IsActive: true},
	})
	roots := []string{"/v1/", "/v1beta/", "/v1alpha/"}
	f.Fuzz(func(t *testing.T, method, path string) {
		if method != "GET" && method != "POST" {
			return
		}
		req, err := http.NewRequest(method, "http://proxy.test"+path, strings.NewReader(`{"model":"gpt-4o"}`))
		if err != nil || req.URL.Host != "proxy.test" {
			return
		}
		rt.mu.Lock()
		rt.urls = rt.urls[:0]
		rt.mu.Unlock()
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code == 500 {
			t.Fatalf("%s %q: 500 %s", method, path, w.Body)
		}
		rt.mu.Lock()
		defer rt.mu.Unlock()
		for _, u := range rt.urls {
			ok := false
			for _, root := range roots {
				ok = ok || strings.HasPrefix(u.Path, root) || u.Path+"/" == root
			}
			if !ok {
				t.Fatalf("%q reached %s, outside the API roots", path, u)
			}
			for seg := range strings.SplitSeq(u.EscapedPath(), "/") {
				dec, err := url.PathUnescape(seg)
				if err != nil || dec == "." || dec == ".." || strings.ContainsAny(dec, `\`) || strings.ContainsFunc(dec, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
					t.Fatalf("%q reached %s (segment %q)", path, u, seg)
				}
			}
		}
	})
}
