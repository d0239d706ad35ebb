package server

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/kvemu"
	"github.com/keypool/keypool/worker-proxy/provider"
	"github.com/keypool/keypool/worker-proxy/store/cfkv"
)

// The store refuses a second copy of a secret even where the pool's own
// check (per provider) lets it through: 409 naming the key that holds it,
// never the secret, and nothing changes.
func TestDuplicateSecretRefusedByTheStore(t *testing.T) {
	s, _ := newTestServer(t)
	const secret = "sk-test-duplicate-secret-0001"
	w := serve(s, "POST", "/admin/keys", `{"provider":"openai","apiKey":"`+secret+`"}`)
	if w.Code != 201 {
		t.Fatalf("add: %d %s", w.Code, w.Body)
	}
	var added adminapi.AddKeyResponse
	json.Unmarshal(w.Body.Bytes(), &added)

	w = serve(s, "POST", "/admin/keys", `{"provider":"anthropic","apiKey":"`+secret+`"}`)
	var ans struct {
		Error string `json:"error"`
		Index *int   `json:"index"`
		KeyID string `json:"keyId"`
	}
	json.Unmarshal(w.Body.Bytes(), &ans)
	if w.Code != 409 || ans.KeyID != added.KeyID || ans.Index != nil || strings.Contains(w.Body.String(), secret) {
		t.Fatalf("add of a stored secret under another provider: %d %s", w.Code, w.Body)
	}

	w = serve(s, "POST", "/admin/keys/bulk", `{"provider":"anthropic","apiKeys":["sk-test-other-secret-0002","`+secret+`"]}`)
	ans = struct {
		Error string `json:"error"`
		Index *int   `json:"index"`
		KeyID string `json:"keyId"`
	}{}
	json.Unmarshal(w.Body.Bytes(), &ans)
	if w.Code != 409 || ans.Index == nil || *ans.Index != 1 || ans.KeyID != added.KeyID ||
		!strings.Contains(ans.Error, "apiKeys[1]") || strings.Contains(w.Body.String(), secret) {
		t.Fatalf("bulk add with a stored secret: %d %s", w.Code, w.Body)
	}
	if n := s.pool.Len(); n != 1 {
		t.Fatalf("pool has %d keys, want 1", n)
	}
}

// kvClock is a settable clock for the store, so a test skips KV backoffs
// without waiting.
type kvClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *kvClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *kvClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

const (
	kvTestAccount = "acc-server-test-0123"
	kvTestToken   = "cf-server-test-token-0123456789"
)

// newKVServer runs a Server over a cfkv store on the KV API served by h
// (an emulator, possibly wrapped).
func newKVServer(t *testing.T, h http.Handler, ns string, clock *kvClock) (*Server, *cfkv.Store) {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := cfkv.Open(t.Context(), cfkv.Config{
		AccountID: kvTestAccount, NamespaceID: ns, APIToken: kvTestToken, BaseURL: ts.URL,
		InstanceID: "i-server-test", Logger: quiet, Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := provider.NewRegistry(provider.Defaults()...)
	s, err := New(t.Context(), Config{AdminKey: adminKey, Logger: quiet, StoreName: "cfkv"}, st, reg)
	if err != nil {
		t.Fatal(err)
	}
	return s, st
}

func newEmulator(t *testing.T) (*kvemu.Emulator, string) {
	t.Helper()
	emu := kvemu.New(kvemu.Options{Tokens: map[string]kvemu.TokenInfo{kvTestToken: {AccountID: kvTestAccount, CanRead: true, CanWrite: true}}})
	ns, err := emu.CreateNamespace(kvTestAccount, "keypool-server-test")
	if err != nil {
		t.Fatal(err)
	}
	return emu, ns
}

// An import of more keys than one KV bulk request takes (10,000 pairs)
// whose write fails publishes nothing and says so; the retry stores every
// key once, and a second retry finds them all stored. (cfkv writes an
// import's shards in one bulk request, whatever its size.)
func TestKVImportOver10000KeysIsAllOrNothing(t *testing.T) {
	emu, ns := newEmulator(t)
	clock := &kvClock{t: time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)}
	s, _ := newKVServer(t, emu, ns, clock)

	const n = 10_050
	secrets := make([]string, n)
	for i := range secrets {
		secrets[i] = fmt.Sprintf("sk-test-import-%06d", i)
	}
	body, _ := json.Marshal(adminapi.BulkAddRequest{Provider: "openai", APIKeys: secrets})
	stored := func() []string {
		t.Helper()
		fresh, err := cfkv.Open(t.Context(), cfkv.Config{AccountID: kvTestAccount, NamespaceID: ns, APIToken: kvTestToken,
			BaseURL: httptest.NewServer(emu).URL, InstanceID: "i-reader", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		c, err := fresh.Load(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		out := make([]string, len(c.Keys))
		for i, k := range c.Keys {
			out[i] = k.Secret
		}
		return out
	}

	emu.InjectFault(kvemu.Fault{Status: 503, Count: 1, Paths: []string{"/bulk"}, Methods: []string{"PUT"}})
	w := serve(s, "POST", "/admin/keys/bulk", string(body))
	if w.Code != 503 || !strings.Contains(w.Body.String(), "nothing was changed") {
		t.Fatalf("import with a failure half-way: %d %.300s", w.Code, w.Body)
	}
	if got := stored(); len(got) != 0 {
		t.Fatalf("the failed import left %d keys readable in KV, its answer said nothing was changed", len(got))
	}
	if n := s.pool.Len(); n != 0 {
		t.Fatalf("pool has %d keys after the failed import", n)
	}

	clock.Add(10 * time.Minute) // past the store's backoff
	w = serve(s, "POST", "/admin/keys/bulk", string(body))
	var resp adminapi.BulkAddResponse
	json.Unmarshal(w.Body.Bytes(), &resp)
	if w.Code != 201 || resp.Added != n {
		t.Fatalf("retry: %d added %d, want 201 and %d: %.300s", w.Code, resp.Added, n, w.Body)
	}
	w = serve(s, "POST", "/admin/keys/bulk", string(body))
	resp = adminapi.BulkAddResponse{}
	json.Unmarshal(w.Body.Bytes(), &resp)
	if w.Code != 200 || resp.Added != 0 || resp.Duplicates != n {
		t.Fatalf("second retry: %d added %d duplicates %d", w.Code, resp.Added, resp.Duplicates)
	}
	got := stored()
	seen := map[string]bool{}
	for _, sec := range got {
		if seen[sec] {
			t.Fatalf("a secret is stored twice")
		}
		seen[sec] = true
	}
	if len(got) != n || s.pool.Len() != n {
		t.Fatalf("KV holds %d keys, the pool %d; want %d", len(got), s.pool.Len(), n)
	}
}

// hangingKV passes requests to the emulator, except that once armed it
// holds the next one until released, telling the test it arrived.
type hangingKV struct {
	next    http.Handler
	mu      sync.Mutex
	armed   bool
	arrived chan struct{}
	release chan struct{}
}

func (h *hangingKV) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	hang := h.armed
	h.armed = false
	h.mu.Unlock()
	if hang {
		close(h.arrived)
		<-h.release
	}
	h.next.ServeHTTP(w, r)
}

// While a KV call hangs, /readyz and /admin/status answer from what is
// known, at once.
func TestKVHealthAnswersWhileKVHangs(t *testing.T) {
	emu, ns := newEmulator(t)
	clock := &kvClock{t: time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)}
	h := &hangingKV{next: emu, arrived: make(chan struct{}), release: make(chan struct{})}
	s, _ := newKVServer(t, h, ns, clock)
	released := false
	release := func() {
		if !released {
			released = true
			close(h.release)
		}
	}
	defer release()

	h.mu.Lock()
	h.armed = true
	h.mu.Unlock()
	synced := make(chan error, 1)
	go func() { _, err := s.SyncOnce(t.Context()); synced <- err }()
	<-h.arrived // the sync's first KV call is now held

	for _, path := range []string{"/readyz", "/admin/status"} {
		answered := make(chan *httptest.ResponseRecorder, 1)
		start := time.Now()
		go func() { answered <- serve(s, "GET", path, "") }()
		select {
		case w := <-answered:
			if w.Code != 200 || !strings.Contains(w.Body.String(), `"backend":"cfkv"`) {
				t.Errorf("%s: %d %s", path, w.Code, w.Body)
			}
			t.Logf("%s answered in %s while a KV call hung", path, time.Since(start))
		case err := <-synced:
			t.Fatalf("the sync returned (%v) before %s answered", err, path)
		case <-time.After(20 * time.Second): // a watchdog, not the assertion
			release()
			t.Fatalf("%s did not answer while a KV call hung", path)
		}
	}
	select {
	case err := <-synced:
		t.Fatalf("the sync returned (%v) while its KV call was held", err)
	default:
	}
	release()
	if err := <-synced; err != nil {
		t.Fatalf("sync after release: %v", err)
	}
}

// A bolt store whose writes fail says so in the status, and heals with the
// next write that succeeds (the store package tests a real failing disk).
func TestBoltWriteFailureShowsInStatus(t *testing.T) {
	s, st := newTestServer(t)
	st.Close() // every later write fails
	if w := serve(s, "POST", "/admin/keys", `{"provider":"openai","apiKey":"sk-test-status-0000001"}`); w.Code != 500 {
		t.Fatalf("add on a closed store: %d %s", w.Code, w.Body)
	}
	var status adminapi.StatusResponse
	json.Unmarshal(serve(s, "GET", "/admin/status", "").Body.Bytes(), &status)
	if status.Store.OK || status.Store.Since == nil || status.Store.Detail == "" {
		t.Fatalf("store health after a failed write: %+v", status.Store)
	}
}
