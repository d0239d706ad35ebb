package server

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/provider"
	"github.com/keypool/keypool/worker-proxy/store/boltstore"
)

const testClientToken = "server-test-client-token-0123456789"

// newListeningServer runs a Server with cfg (admin key, client token,
// store, a canned upstream and one OpenAI key filled in) on a real
// listener on 127.0.0.1, and returns its address.
func newListeningServer(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "keypool.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg, _ := provider.NewRegistry(provider.Defaults()...)
	cfg.AdminKey, cfg.ClientTokens = adminKey, []string{testClientToken}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if cfg.Transport == nil {
		cfg.Transport = cannedTransport{chatBody, "application/json"}
	}
	s, err := New(t.Context(), cfg, st, reg)
	if err != nil {
		t.Fatal(err)
	}
	if w := serve(s, "POST", "/admin/keys", `{"provider":"openai","apiKey":"sk-fake-body-test-key-0001"}`); w.Code != 201 {
		t.Fatalf("add key: %d %s", w.Code, w.Body)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return s, hs.Listener.Addr().String()
}

// rawConn is a client connection that writes requests byte for byte.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// A safety net only: every wait below ends long before it when the
	// proxy behaves.
	c.SetDeadline(time.Now().Add(15 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (rc *rawConn) send(s string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatal(err)
	}
}

// response reads one response and its body.
func (rc *rawConn) response() (*http.Response, string) {
	rc.t.Helper()
	res, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		rc.t.Fatalf("no response: %v", err)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		rc.t.Fatalf("response body: %v", err)
	}
	return res, string(b)
}

// closed reports whether the proxy closed the connection (rather than
// sending anything more).
func (rc *rawConn) closed() bool {
	rc.t.Helper()
	_, err := rc.br.ReadByte()
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err)
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// waitFor waits until cond holds, failing after a generous while.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited in vain for %s", what)
		}
	}
}

// stalledBody is a request body that hands out its first part, then
// blocks until released, as a client that announced more and stopped.
type stalledBody struct {
	first   []byte
	waiting chan struct{} // closed when a read finds the first part gone
	release chan struct{}
	once    sync.Once
}

func (b *stalledBody) Read(p []byte) (int, error) {
	if len(b.first) > 0 {
		n := copy(p, b.first)
		b.first = b.first[n:]
		return n, nil
	}
	b.once.Do(func() { close(b.waiting) })
	<-b.release
	return 0, io.ErrUnexpectedEOF
}

// Finding 3: bodies that announce 32 MiB and stall after 1 KiB must hold
// about what they sent, not what they announced.
func TestStalledAnnouncedBodiesDoNotGrowTheHeap(t *testing.T) {
	s, _ := newTestServer(t)
	const clients, announced = 8, 32 << 20
	release := make(chan struct{})
	var wg sync.WaitGroup
	var before, during runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range clients {
		b := &stalledBody{first: make([]byte, 1024), waiting: make(chan struct{}), release: release}
		r := httptest.NewRequest("POST", "/api/openai/chat/completions", b)
		r.ContentLength = announced
		wg.Go(func() { s.readBody(httptest.NewRecorder(), r) })
		<-b.waiting // the reader holds its buffer and waits for more
	}
	runtime.ReadMemStats(&during)
	close(release)
	wg.Wait()
	grew := during.TotalAlloc - before.TotalAlloc
	t.Logf("%d stalled bodies announcing %d MiB each: %d KiB allocated", clients, announced>>20, grew>>10)
	if grew > 4<<20 {
		t.Fatalf("%d stalled bodies of 1 KiB announcing %d MiB each allocated %d MiB", clients, announced>>20, grew>>20)
	}
}

// Finding 3: an authorized request that announces a body and sends none
// is answered 408 and its connection closed after BODY_READ_TIMEOUT, on
// the relay, the front door and the admin API.
func TestStalledBodyIsCutAtTheDeadline(t *testing.T) {
	_, addr := newListeningServer(t, Config{BodyReadTimeout: 200 * time.Millisecond})
	for _, tc := range []struct{ path, auth string }{
		{"/api/openai/chat/completions", "Authorization: Bearer " + testClientToken},
		{"/v1/chat/completions", "Authorization: Bearer " + testClientToken},
		{"/admin/keys", "X-Admin-Key: " + adminKey},
	} {
		rc := dialRaw(t, addr)
		rc.send("POST " + tc.path + " HTTP/1.1\r\nHost: x\r\n" + tc.auth + "\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"model\":")
		res, body := rc.response()
		if res.StatusCode != http.StatusRequestTimeout || !strings.Contains(body, "BODY_READ_TIMEOUT") || !res.Close {
			t.Errorf("%s: %d close=%v %s", tc.path, res.StatusCode, res.Close, body)
		}
		if !rc.closed() {
			t.Errorf("%s: connection left open after a stalled body", tc.path)
		}
	}
}

// Finding 3: a request without valid credentials is answered 401 at once,
// without waiting for (or reading) its body, and its connection closed;
// so is any request answered before its body is read (no such route, a
// route that takes no body, an unknown provider).
func TestUnreadBodyIsNotAwaited(t *testing.T) {
	_, addr := newListeningServer(t, Config{BodyReadTimeout: time.Hour})
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"POST", "/api/openai/chat/completions", 401},
		{"POST", "/v1/chat/completions", 401},
		{"POST", "/admin/keys", 401},
		{"POST", "/admin/keys/bulk", 401},
		{"PUT", "/admin/keys/k1", 401},
		{"POST", "/admin/tokens", 401},
		{"POST", "/api/nosuchprovider/x", 404},
		{"POST", "/nothing-here", 404},
		{"GET", "/healthz", 200},
		{"POST", "/healthz", 405},
	} {
		rc := dialRaw(t, addr)
		rc.send(tc.method + " " + tc.path + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong-token-0123456789\r\nX-Admin-Key: wrong-admin-key-0123456789\r\nContent-Length: 100000\r\n\r\n")
		res, body := rc.response()
		if res.StatusCode != tc.status || !res.Close {
			t.Errorf("%s %s: %d close=%v %s", tc.method, tc.path, res.StatusCode, res.Close, body)
		}
		if !rc.closed() {
			t.Errorf("%s %s: connection left open", tc.method, tc.path)
		}
	}
}

// Finding 3: bodies share a memory budget; past it a request gets a JSON
// 503 with Retry-After, and the budget comes back when requests end.
func TestBodyMemoryBudget(t *testing.T) {
	s, addr := newListeningServer(t, Config{MaxBodyBytes: 64 << 10, MaxBodyMemory: 100 << 10, BodyReadTimeout: time.Hour})
	hdr := "POST /api/openai/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + testClientToken + "\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n"
	body := `{"model":"m","pad":"` + strings.Repeat("x", 60000-len(`{"model":"m","pad":""}`)) + `"}`

	holder := dialRaw(t, addr)
	holder.send(hdr + body[:50000]) // and stalls
	waitFor(t, "the held body to be counted", func() bool { return s.bodies.used.Load() >= 50000 })
	rc := dialRaw(t, addr)
	rc.send(hdr + body)
	res, got := rc.response()
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" || !strings.Contains(got, "MAX_BODY_MEMORY") {
		t.Fatalf("over the budget: %d %v %s", res.StatusCode, res.Header, got)
	}
	holder.send(body[50000:])
	if res, got := holder.response(); res.StatusCode != 200 {
		t.Fatalf("the held request: %d %s", res.StatusCode, got)
	}
	waitFor(t, "the budget to come back", func() bool { return s.bodies.used.Load() == 0 })
	rc = dialRaw(t, addr)
	rc.send(hdr + body)
	if res, got := rc.response(); res.StatusCode != 200 {
		t.Fatalf("after the budget came back: %d %s", res.StatusCode, got)
	}
}

// Finding 8: a request with both Content-Length and Transfer-Encoding
// (net/http keeps the latter and drops the former) has its connection
// closed after the answer (RFC 9112 §6.1); the same request framed by
// Content-Length alone keeps it.
func TestContentLengthWithTransferEncodingClosesConnection(t *testing.T) {
	_, addr := newListeningServer(t, Config{})
	body := `{"model":"gpt-4o-mini"}`
	req := "POST /api/openai/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + testClientToken + "\r\nContent-Type: application/json\r\n"

	rc := dialRaw(t, addr)
	for range 2 {
		rc.send(req + fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body))
		if res, got := rc.response(); res.StatusCode != 200 || res.Close {
			t.Fatalf("Content-Length alone: %d close=%v %s", res.StatusCode, res.Close, got)
		}
	}

	rc = dialRaw(t, addr)
	rc.send(req + fmt.Sprintf("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(body), body))
	res, got := rc.response()
	if res.StatusCode != 200 || !res.Close {
		t.Fatalf("both headers: %d close=%v %s", res.StatusCode, res.Close, got)
	}
	if !rc.closed() {
		t.Fatal("connection kept after a request with both Content-Length and Transfer-Encoding")
	}
}

// Finding 8: an admin body over 1 MiB is a JSON 413, announced or not.
func TestAdminBodyOverLimitIs413(t *testing.T) {
	s, _ := newTestServer(t)
	big := `{"provider":"openai","apiKey":"sk-fake-0000000000000001","metadata":{"description":"` + strings.Repeat("x", maxAdminBody) + `"}}`
	for _, chunked := range []bool{false, true} {
		req := httptest.NewRequest("POST", "/admin/keys", strings.NewReader(big))
		if chunked {
			req.ContentLength = -1
		}
		req.Header.Set("X-Admin-Key", adminKey)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		var e struct{ Error string }
		if w.Code != http.StatusRequestEntityTooLarge || json.Unmarshal(w.Body.Bytes(), &e) != nil || !strings.Contains(e.Error, "larger than 1048576 bytes") {
			t.Errorf("chunked=%v: %d %s", chunked, w.Code, w.Body)
		}
	}
	if s.pool.Len() != 0 {
		t.Fatal("an oversized request added a key")
	}
}

// Finding 8: an apiKey that is not UTF-8 is refused, not stored with
// U+FFFD in place of its bad bytes: on add, bulk import and edit, raw or
// as an escaped lone surrogate.
func TestAdminRefusesInvalidUTF8(t *testing.T) {
	s, _ := newTestServer(t)
	w := serve(s, "POST", "/admin/keys", `{"provider":"openai","apiKey":"sk-fake-utf8-test-00001"}`)
	var added struct{ KeyID string }
	json.Unmarshal(w.Body.Bytes(), &added)
	for _, tc := range []struct{ method, path, body, want string }{
		{"POST", "/admin/keys", "{\"provider\":\"openai\",\"apiKey\":\"sk-fake-\xff\xfe-utf8-test\"}", "not valid UTF-8 (byte 39)"},
		{"POST", "/admin/keys", `{"provider":"openai","apiKey":"sk-fake-\ud800-utf8-test"}`, "U+FFFD"},
		{"POST", "/admin/keys/bulk", "{\"provider\":\"openai\",\"apiKeys\":[\"sk-fake-utf8-test-00002\",\"sk-fake-\xc3-utf8\"]}", "not valid UTF-8"},
		{"PUT", "/admin/keys/" + added.KeyID, "{\"metadata\":{\"description\":\"caf\xe9\"}}", "not valid UTF-8"},
	} {
		w := serve(s, tc.method, tc.path, tc.body)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), tc.want) {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, w.Code, w.Body)
		}
	}
	if s.pool.Len() != 1 {
		t.Fatalf("pool holds %d keys, want only the valid one", s.pool.Len())
	}
	if e, _ := s.pool.Entry(added.KeyID); e.Key().Description != "" {
		t.Fatal("an edit with a bad body changed the key")
	}
}

// Listening: /readyz tells anyone only ready or degraded; the key count
// and the store's health need the admin key.
func TestReadyzDetailsNeedTheAdminKey(t *testing.T) {
	s, _ := newTestServer(t)
	for _, key := range []string{"", "wrong-admin-key-0123456789"} {
		req := httptest.NewRequest("GET", "/readyz", nil)
		if key != "" {
			req.Header.Set("X-Admin-Key", key)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != 200 || strings.TrimSpace(w.Body.String()) != `{"status":"ready"}` {
			t.Errorf("key %q: %d %s", key, w.Code, w.Body)
		}
	}
	w := serve(s, "GET", "/readyz", "")
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil || m["status"] != "ready" || m["keys"] == nil || m["store"] == nil {
		t.Fatalf("with the admin key: %d %s", w.Code, w.Body)
	}
}

// A relay caller that sends the admin key as its token is told so.
func TestAdminKeyAsClientTokenHint(t *testing.T) {
	s, _ := newTestServer(t)
	for _, tc := range []struct{ token, want string }{
		{adminKey, "This is the admin key"},
		{"some-other-token-0123456789", "Send a client token"},
	} {
		req := httptest.NewRequest("POST", "/api/openai/chat/completions", strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer "+tc.token)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != 401 || !strings.Contains(w.Body.String(), tc.want) || strings.Contains(w.Body.String(), tc.token) {
			t.Errorf("token %.6s…: %d %s", tc.token, w.Code, w.Body)
		}
	}
}

// An admin caller that sends a client token is told so.
func TestClientTokenAsAdminKeyHint(t *testing.T) {
	s, _ := newListeningServer(t, Config{})
	for _, tc := range []struct{ key, want string }{
		{testClientToken, "This is a client token"},
		{"some-other-key-0123456789", "Invalid or missing admin key"},
	} {
		req := httptest.NewRequest("GET", "/admin/status", nil)
		req.Header.Set("X-Admin-Key", tc.key)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != 401 || !strings.Contains(w.Body.String(), tc.want) || strings.Contains(w.Body.String(), tc.key) {
			t.Errorf("key %.6s…: %d %s", tc.key, w.Code, w.Body)
		}
	}
}
