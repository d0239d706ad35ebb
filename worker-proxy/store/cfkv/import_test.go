package cfkv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/kvemu"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/store"
)

// names lists the key names the emulator holds under prefix p.
func names(t *testing.T, emu *kvemu.Emulator, p string) []string {
	t.Helper()
	var buf bytes.Buffer
	if err := emu.Save(&buf); err != nil {
		t.Fatal(err)
	}
	var snap struct {
		Accounts map[string][]struct {
			Keys []struct {
				Name string `json:"name"`
			} `json:"keys"`
		} `json:"accounts"`
	}
	json.Unmarshal(buf.Bytes(), &snap)
	var out []string
	for _, nss := range snap.Accounts {
		for _, ns := range nss {
			for _, k := range ns.Keys {
				if strings.HasPrefix(k.Name, p) {
					out = append(out, k.Name)
				}
			}
		}
	}
	return out
}

func importKeys(n int, tag string) []pool.Key {
	keys := make([]pool.Key, n)
	for i := range keys {
		keys[i] = pool.Key{ID: fmt.Sprintf("key_%s_%05d", tag, i), Provider: "openai", Secret: fmt.Sprintf("sk-test-%s-%05d", tag, i), Revision: 1}
	}
	return keys
}

// kvProxy stands between the store and the emulator: hold, when set, is
// called with each bulk write before the emulator serves it, and may
// answer itself (true) after or instead of the emulator.
type kvProxy struct {
	emu  *kvemu.Emulator
	mu   sync.Mutex
	hold func(w http.ResponseWriter, r *http.Request, n int) bool
	n    int // bulk writes seen
	// failGets and failDeletes are how many of the next bulk reads and
	// bulk deletes fail (503).
	failGets, failDeletes int
}

func (p *kvProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var counter *int
	switch {
	case strings.HasSuffix(r.URL.Path, "/bulk/get"):
		counter = &p.failGets
	case strings.HasSuffix(r.URL.Path, "/bulk/delete"):
		counter = &p.failDeletes
	}
	if counter != nil {
		p.mu.Lock()
		fail := *counter > 0
		*counter--
		p.mu.Unlock()
		if fail {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"success":false,"errors":[{"code":10001,"message":"service unavailable"}],"messages":[],"result":null}`))
			return
		}
	}
	if r.Method == "PUT" && strings.HasSuffix(r.URL.Path, "/bulk") {
		p.mu.Lock()
		p.n++
		n, hold := p.n, p.hold
		p.mu.Unlock()
		if hold != nil && hold(w, r, n) {
			return
		}
	}
	p.emu.ServeHTTP(w, r)
}

func kvBehindProxy(t *testing.T) (*kvProxy, Config) {
	t.Helper()
	srv, ns := emulator(t, kvemu.Options{})
	p := &kvProxy{emu: srv.Emu}
	ts := httptest.NewServer(p)
	t.Cleanup(ts.Close)
	cfg := testConfig(srv, ns, "i-import")
	cfg.BaseURL = ts.URL
	return p, cfg
}

// While an import larger than one bulk request is being written, other
// instances see none of it; once published, all of it.
func TestImportInvisibleUntilPublished(t *testing.T) {
	p, cfg := kvBehindProxy(t)
	s := open(t, cfg)
	readerCfg := cfg
	readerCfg.InstanceID = "i-reader"
	arrived, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	defer releaseOnce.Do(func() { close(release) }) // on failure too
	p.hold = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n == 3 { // schema write was 1, the staged keys 2: hold the publish
			close(arrived)
			<-release
		}
		return false
	}
	keys := importKeys(10_000, "inv")
	done := make(chan error, 1)
	go func() { done <- s.PutKeys(t.Context(), keys...) }()
	<-arrived
	if got := len(names(t, p.emu, keysPrefix)); got != len(keys) {
		t.Fatalf("%d keys staged, want %d", got, len(keys))
	}
	c, err := open(t, readerCfg).Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Keys) != 0 {
		t.Fatalf("another instance sees %d keys of an import not yet published", len(c.Keys))
	}
	releaseOnce.Do(func() { close(release) })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c, err = open(t, readerCfg).Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Keys) != len(keys) {
		t.Fatalf("after publishing, another instance sees %d keys, want %d", len(c.Keys), len(keys))
	}
	// An edit drops the staging mark; the key stays.
	edited := keys[0]
	edited.Revision, edited.Description = 2, "edited"
	if err := s.PutKeys(t.Context(), edited); err != nil {
		t.Fatal(err)
	}
	c, _ = open(t, readerCfg).Load(t.Context())
	if len(c.Keys) != len(keys) || c.Keys[0].Description != "edited" {
		t.Fatalf("after an edit: %d keys, first %q", len(c.Keys), c.Keys[0].Description)
	}
}

// A publish whose answer is lost after KV applied it is an import done,
// not a failure to retry (which would store every key twice).
func TestImportPublishAnswerLost(t *testing.T) {
	p, cfg := kvBehindProxy(t)
	s := open(t, cfg)
	p.hold = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n != 3 {
			return false
		}
		p.emu.ServeHTTP(httptest.NewRecorder(), r) // applied ...
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway) // ... but the answer is an edge error
		return true
	}
	keys := importKeys(10_000, "lost")
	if err := s.PutKeys(t.Context(), keys...); err != nil {
		t.Fatalf("PutKeys: %v", err)
	}
	c, _ := s.Load(t.Context())
	if len(c.Keys) != len(keys) {
		t.Fatalf("%d keys, want %d", len(c.Keys), len(keys))
	}
}

// An import failing at any of its requests publishes nothing; the keys it
// staged are deleted, at once or by the next sync.
func TestImportFailurePublishesNothing(t *testing.T) {
	for _, failAt := range []int{2, 3, 4} { // staging (2, 3) or publishing (4)
		t.Run(fmt.Sprint("bulk write ", failAt), func(t *testing.T) {
			p, cfg := kvBehindProxy(t)
			now := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
			var clockMu sync.Mutex
			cfg.Now = func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
			s := open(t, cfg)
			p.hold = func(w http.ResponseWriter, r *http.Request, n int) bool {
				if n != failAt {
					return false
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte(`{"success":false,"errors":[{"code":10001,"message":"service unavailable"}],"messages":[],"result":null}`))
				return true
			}
			keys := importKeys(15_000, "fail")
			err := s.PutKeys(t.Context(), keys...)
			if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "nothing was published") {
				t.Fatalf("PutKeys = %v, want ErrUnavailable, nothing published", err)
			}
			readerCfg := cfg
			readerCfg.InstanceID = "i-reader"
			if c, _ := open(t, readerCfg).Load(t.Context()); len(c.Keys) != 0 {
				t.Fatalf("another instance sees %d keys of a failed import", len(c.Keys))
			}
			clockMu.Lock()
			now = now.Add(10 * time.Minute) // past the backoff
			clockMu.Unlock()
			if _, err := s.Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
			if c, err := s.Load(t.Context()); err != nil || len(c.Keys) != 0 {
				t.Fatalf("the importing instance: %v, or it sees keys of a failed import", err)
			}
			if left := names(t, p.emu, keysPrefix); len(left) != 0 {
				t.Fatalf("%d staged keys left after the next sync", len(left))
			}
			// The retry stores each key once.
			if err := s.PutKeys(t.Context(), keys...); err != nil {
				t.Fatal(err)
			}
			if got := len(names(t, p.emu, keysPrefix)); got != len(keys) {
				t.Fatalf("after the retry KV holds %d keys, want %d", got, len(keys))
			}
		})
	}
}

// A publish whose outcome cannot be learnt at once (its answer lost, and
// the marker unreadable) is resolved before the next write: a retry of the
// import is then refused as duplicates instead of storing every key twice.
func TestImportInDoubtResolvedBeforeRetry(t *testing.T) {
	p, cfg := kvBehindProxy(t)
	now := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	var clockMu sync.Mutex
	cfg.Now = func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	s := open(t, cfg)
	p.hold = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n != 3 {
			return false
		}
		p.emu.ServeHTTP(httptest.NewRecorder(), r) // applied, answer lost
		p.mu.Lock()
		p.failGets = 1 // and the read-back fails
		p.mu.Unlock()
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		return true
	}
	keys := importKeys(10_000, "doubt")
	if err := s.PutKeys(t.Context(), keys...); err == nil || !strings.Contains(err.Error(), "could not be read back") {
		t.Fatalf("PutKeys = %v, want an unknown outcome", err)
	}
	clockMu.Lock()
	now = now.Add(10 * time.Minute) // past the backoff
	clockMu.Unlock()
	retry := importKeys(10_000, "doubt")
	for i := range retry {
		retry[i].ID += "_retry" // the server gives a retry new ids
	}
	if err := s.PutKeys(t.Context(), retry...); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("retry = %v, want ErrDuplicate", err)
	}
	if got := len(names(t, p.emu, keysPrefix)); got != len(keys) {
		t.Fatalf("KV holds %d keys, want %d", got, len(keys))
	}
	c, err := s.Load(t.Context())
	if err != nil || len(c.Keys) != len(keys) {
		t.Fatalf("Load: %v, %d keys; want %d", err, len(c.Keys), len(keys))
	}
}

// Staged keys an import left behind (its instance crashed before deleting
// them) are deleted by any instance once they are an hour old.
func TestLeftoverStagedKeysAreCollected(t *testing.T) {
	p, cfg := kvBehindProxy(t)
	now := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	var clockMu sync.Mutex
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	cfg.Now = clock
	s := open(t, cfg)
	p.failDeletes = 1 // the deletion after the failed publish fails too
	p.hold = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n != 3 { // the publish fails
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"success":false,"errors":[{"code":10001,"message":"service unavailable"}],"messages":[],"result":null}`))
		return true
	}
	keys := importKeys(10_000, "left")
	if err := s.PutKeys(t.Context(), keys...); err == nil {
		t.Fatal("PutKeys succeeded")
	}
	_ = s // crashes here: its list of keys to delete is lost
	if got := len(names(t, p.emu, keysPrefix)); got != len(keys) {
		t.Fatalf("%d staged keys left, want %d", got, len(keys))
	}
	other := cfg
	other.InstanceID = "i-other"
	o := open(t, other) // young leftovers: kept (an import may be running)
	if _, err := o.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := len(names(t, p.emu, keysPrefix)); got != len(keys) {
		t.Fatalf("%d staged keys after a sync, want %d (too young to collect)", got, len(keys))
	}
	clockMu.Lock()
	now = now.Add(2 * time.Hour)
	clockMu.Unlock()
	o = open(t, other)
	if _, err := o.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if left := names(t, p.emu, keysPrefix); len(left) != 0 {
		t.Fatalf("%d leftover staged keys after an hour", len(left))
	}
}
