package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/keypool/keypool/worker-proxy/internal/fakeupstream"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/provider"
	"github.com/keypool/keypool/worker-proxy/store"
	"github.com/keypool/keypool/worker-proxy/store/boltstore"
)

// hookStore runs a hook before each PutKeys, to interleave other work
// with a write in flight.
type hookStore struct {
	store.Store
	mu   sync.Mutex
	hook func(keys []pool.Key)
}

func (h *hookStore) setHook(f func(keys []pool.Key)) {
	h.mu.Lock()
	h.hook = f
	h.mu.Unlock()
}

func (h *hookStore) PutKeys(ctx context.Context, keys ...pool.Key) error {
	h.mu.Lock()
	f := h.hook
	h.mu.Unlock()
	if f != nil {
		f(keys)
	}
	return h.Store.PutKeys(ctx, keys...)
}

// An admin edit of an unrelated field racing the relay's automatic
// disable (a 401 from the upstream) must not re-enable the key: in every
// round the key ends disabled with its reason, in the pool and in the
// store, and carries the edit. Even rounds force the worst interleaving
// (the relay disables the key while the edit is being written); odd ones
// run both at once. An explicit isActive:true still re-enables the key.
func TestAdminEditDoesNotUndoRelayDisable(t *testing.T) {
	up, err := fakeupstream.Start(fakeupstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	bolt, err := boltstore.Open(filepath.Join(t.TempDir(), "keypool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer bolt.Close()
	st := &hookStore{Store: bolt}
	provs := provider.Defaults()
	for _, p := range provs {
		if p.Name == "openai" {
			if p.Base, err = provider.ParseBase(up.URL + "/v1"); err != nil {
				t.Fatal(err)
			}
		}
	}
	reg, err := provider.NewRegistry(provs...)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(t.Context(), Config{AdminKey: adminKey, AllowAnonymous: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, st, reg)
	if err != nil {
		t.Fatal(err)
	}

	const secret = "sk-test-fake-edit-race-0001"
	w := serve(s, "POST", "/admin/keys", `{"provider":"openai","apiKey":"`+secret+`"}`)
	if w.Code != 201 {
		t.Fatalf("add: %d %s", w.Code, w.Body)
	}
	var added struct{ KeyID string }
	json.Unmarshal(w.Body.Bytes(), &added)
	id := added.KeyID
	up.SetBehavior(secret, fakeupstream.Invalid)

	relay := func() {
		req := httptest.NewRequest("POST", "/api/openai/chat/completions", strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Content-Type", "application/json")
		rw := httptest.NewRecorder()
		s.ServeHTTP(rw, req)
		if rw.Code != 401 {
			t.Errorf("relay: %d %s, want the upstream's 401", rw.Code, rw.Body)
		}
	}
	e, _ := s.pool.Entry(id)
	lost := 0
	for round := range 100 {
		// The operator re-enables the key: that is theirs to decide.
		if w := serve(s, "PUT", "/admin/keys/"+id, `{"isActive":true}`); w.Code != 200 {
			t.Fatalf("round %d: re-enable: %d %s", round, w.Code, w.Body)
		}
		if k := e.Key(); !k.IsActive || k.DisabledReason != "" {
			t.Fatalf("round %d: isActive:true did not re-enable the key: %+v", round, k.DisabledReason)
		}
		desc := fmt.Sprintf("edited in round %d", round)
		var wg sync.WaitGroup
		if round%2 == 0 {
			var once sync.Once
			st.setHook(func(keys []pool.Key) {
				if len(keys) == 1 && keys[0].ID == id && keys[0].Description == desc {
					once.Do(relay)
				}
			})
		} else {
			wg.Go(relay)
		}
		w := serve(s, "PUT", "/admin/keys/"+id, `{"metadata":{"description":"`+desc+`"}}`)
		wg.Wait()
		st.setHook(nil)
		if w.Code != 200 {
			t.Fatalf("round %d: edit: %d %s", round, w.Code, w.Body)
		}
		k := e.Key()
		if k.DisabledReason == "" || k.DisabledAt.IsZero() {
			lost++
			continue
		}
		if !strings.Contains(k.DisabledReason, "invalid") || k.Description != desc {
			t.Fatalf("round %d: reason %q, description %q; want the invalid-key reason and the edit", round, k.DisabledReason, k.Description)
		}
		// The store ends with the same state once queued changes are written.
		s.writeQueued(t.Context())
		c, err := bolt.Load(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if sk := c.Keys[0]; sk.DisabledReason == "" || sk.Description != desc || sk.Revision != k.Revision {
			t.Fatalf("round %d: store holds reason %q, description %q, revision %d; pool revision %d", round, sk.DisabledReason, sk.Description, sk.Revision, k.Revision)
		}
	}
	if lost > 0 {
		t.Fatalf("the admin edit re-enabled the disabled key in %d of 100 rounds", lost)
	}
}
