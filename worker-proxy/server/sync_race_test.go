package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/provider"
	"github.com/keypool/keypool/worker-proxy/store"
	"github.com/keypool/keypool/worker-proxy/store/cfkv"
)

// heldSync is a shared store whose Sync, once it has read the store,
// waits until the test lets it return what it read.
type heldSync struct {
	*cfkv.Store
	read, release chan struct{}
}

func (h heldSync) Sync(ctx context.Context) (*store.Contents, error) {
	c, err := h.Store.Sync(ctx)
	h.read <- struct{}{}
	<-h.release
	return c, err
}

// An admin write that lands while a sync is between reading the shared
// store and applying what it read must survive that sync: before, a key
// added then vanished from the pool (503 "no available keys" on the
// instance that added it) until the next sync, and a key deleted then
// came back. Seen first in the Deno KV test under load.
func TestAdminWriteDuringSyncSurvivesIt(t *testing.T) {
	emu, ns := newEmulator(t)
	clock := &kvClock{t: time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)}
	ts := httptest.NewServer(emu)
	t.Cleanup(ts.Close)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	open := func(instance string) *cfkv.Store {
		st, err := cfkv.Open(t.Context(), cfkv.Config{
			AccountID: kvTestAccount, NamespaceID: ns, APIToken: kvTestToken, BaseURL: ts.URL,
			InstanceID: instance, Logger: quiet, Now: clock.Now,
		})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	held := heldSync{Store: open("i-held"), read: make(chan struct{}), release: make(chan struct{})}
	reg, _ := provider.NewRegistry(provider.Defaults()...)
	s, err := New(t.Context(), Config{AdminKey: adminKey, Logger: quiet, StoreName: "cfkv"}, held, reg)
	if err != nil {
		t.Fatal(err)
	}

	w := serve(s, "POST", "/admin/keys", `{"provider":"openai","apiKey":"sk-test-sync-race-doomed-0001"}`)
	var doomed adminapi.AddKeyResponse
	json.Unmarshal(w.Body.Bytes(), &doomed)
	if w.Code != 201 {
		t.Fatalf("add: %d %s", w.Code, w.Body)
	}
	// Another instance changes the namespace, so the next sync reads it.
	other := open("i-other")
	if err := other.PutKeys(t.Context(), pool.Key{ID: "key_other_0001", Provider: "openai", Secret: "sk-test-sync-race-other-0002",
		IsActive: true, CreatedAt: clock.Now(), Revision: 1}); err != nil {
		t.Fatal(err)
	}

	synced := make(chan error, 1)
	go func() { _, err := s.SyncOnce(t.Context()); synced <- err }()
	<-held.read // the sync has read the store: the new key is not in it, the doomed one is
	added, deleted := make(chan *httptest.ResponseRecorder, 1), make(chan *httptest.ResponseRecorder, 1)
	go func() {
		added <- serve(s, "POST", "/admin/keys", `{"provider":"openai","apiKey":"sk-test-sync-race-added-0003"}`)
		deleted <- serve(s, "DELETE", "/admin/keys/"+doomed.KeyID, "")
	}()
	select { // before the fix both land here; now they wait for the sync
	case <-added:
		t.Log("the add landed while the sync was held")
	case <-time.After(300 * time.Millisecond):
	}
	close(held.release)
	if err := <-synced; err != nil {
		t.Fatal(err)
	}
	<-deleted
	var keys []string
	for _, e := range s.pool.Entries("openai") {
		keys = append(keys, pool.Mask(e.Secret()))
	}
	if s.pool.Len() != 2 {
		t.Fatalf("pool after the sync: %v, want the other instance's key and the one added during the sync", keys)
	}
	if _, ok := s.pool.Entry(doomed.KeyID); ok {
		t.Fatalf("the key deleted during the sync came back: %v", keys)
	}
	if _, ok := s.pool.FindSecret("openai", "sk-test-sync-race-added-0003"); !ok {
		t.Fatalf("the key added during the sync is gone: %v", keys)
	}
}
