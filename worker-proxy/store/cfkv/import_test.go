package cfkv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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

// sameShard returns n key ids that hash to one shard.
func sameShard(n int) []string {
	var ids []string
	want := shardOf("key_merge_0000")
	for i := 0; len(ids) < n; i++ {
		if id := fmt.Sprintf("key_merge_%04d", i); shardOf(id) == want {
			ids = append(ids, id)
		}
	}
	return ids
}

// An import of 10,000 keys writes the shards and "rev": at most 50 KV
// writes, and no list; every key reaches a second instance.
func TestImportCost(t *testing.T) {
	srv, ns := emulator(t, kvemu.Options{})
	s := open(t, testConfig(srv, ns, "i-import"))
	keys := importKeys(10_000, "cost")
	srv.Emu.ResetCounts()
	if err := s.PutKeys(t.Context(), keys...); err != nil {
		t.Fatal(err)
	}
	c := srv.Emu.Counts()
	t.Logf("importing 10,000 keys: %d writes, %d reads, %d lists, %d REST requests", c.Writes, c.Reads, c.Lists, c.TotalRequests())
	if c.Writes > 50 || c.Lists != 0 || c.Deletes != 0 {
		t.Errorf("importing 10,000 keys cost %d writes, %d lists, %d deletes; want ≤ 50 writes, no list or delete", c.Writes, c.Lists, c.Deletes)
	}
	if got := len(names(t, srv.Emu, shardPrefix)); got > numShards {
		t.Errorf("%d shard entries, want ≤ %d", got, numShards)
	}
	other := open(t, testConfig(srv, ns, "i-other"))
	loaded, err := other.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded.Keys) != len(keys) {
		t.Errorf("second instance loaded %d keys, want %d", len(loaded.Keys), len(keys))
	}
}

// A failed import writes nothing, and may be retried.
func TestImportFailureWritesNothing(t *testing.T) {
	srv, ns := emulator(t, kvemu.Options{})
	s := open(t, testConfig(srv, ns, "i-import"))
	keys := importKeys(2_000, "fail")
	srv.Emu.InjectFault(kvemu.Fault{Status: 500, Count: 1, Paths: []string{"/bulk"}, Methods: []string{"PUT"}})
	if err := s.PutKeys(t.Context(), keys...); err == nil {
		t.Fatal("PutKeys succeeded through a failing write")
	}
	if got := names(t, srv.Emu, shardPrefix); len(got) != 0 {
		t.Fatalf("a failed import left %d shards", len(got))
	}
	s.mu.Lock()
	inMemory := len(s.keys)
	s.mu.Unlock()
	if inMemory != 0 {
		t.Fatalf("a failed import left %d keys in memory", inMemory)
	}
	// The store backs off after a 500; a later attempt succeeds.
	s.hmu.Lock()
	s.health.blockedUntil = time.Time{}
	s.hmu.Unlock()
	if err := s.PutKeys(t.Context(), keys...); err != nil {
		t.Fatal(err)
	}
	c, err := open(t, testConfig(srv, ns, "i-other")).Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Keys) != len(keys) {
		t.Errorf("after the retry another instance sees %d keys, want %d", len(c.Keys), len(keys))
	}
}

// Two instances edit different keys of one shard, each without having
// seen the other's edit: both edits stand (a read-merge-write of the
// shard with per-key revisions). Edits of the same key conflict.
func TestShardMergeTwoInstances(t *testing.T) {
	srv, ns := emulator(t, kvemu.Options{})
	ids := sameShard(3)
	a := open(t, testConfig(srv, ns, "i-a"))
	var keys []pool.Key
	for i, id := range ids {
		keys = append(keys, pool.Key{ID: id, Provider: "openai", Secret: fmt.Sprintf("sk-test-merge-%d", i), Revision: 1, IsActive: true})
	}
	if err := a.PutKeys(t.Context(), keys...); err != nil {
		t.Fatal(err)
	}
	b := open(t, testConfig(srv, ns, "i-b"))

	// A edits the first key, then B (not synced since) the second.
	ea, eb := keys[0], keys[1]
	ea.Description, ea.Revision = "edited by a", 2
	eb.Description, eb.Revision = "edited by b", 2
	if err := a.PutKeys(t.Context(), ea); err != nil {
		t.Fatal(err)
	}
	if err := b.PutKeys(t.Context(), eb); err != nil {
		t.Fatal(err)
	}
	// A deletes the third; B edits nothing more.
	if err := a.DeleteKeys(t.Context(), ids[2]); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*Store{"fresh": open(t, testConfig(srv, ns, "i-c")), "a": a, "b": b} {
		c, err := s.Load(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]pool.Key{}
		for _, k := range c.Keys {
			got[k.ID] = k
		}
		if got[ids[0]].Description != "edited by a" || got[ids[1]].Description != "edited by b" {
			t.Errorf("%s sees %q and %q: an edit was lost", name, got[ids[0]].Description, got[ids[1]].Description)
		}
		if _, ok := got[ids[2]]; ok || len(got) != 2 {
			t.Errorf("%s sees %d keys, the deleted one included: %v", name, len(got), ok)
		}
	}

	// Both edit the first key from revision 2: the second writer is refused.
	a2, b2 := ea, ea
	a2.Description, a2.Revision = "a again", 3
	b2.Description, b2.Revision = "b again", 3
	if err := a.PutKeys(t.Context(), a2); err != nil {
		t.Fatal(err)
	}
	if err := b.PutKeys(t.Context(), b2); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second edit of one key from the same revision: %v, want ErrConflict", err)
	}
	c, _ := open(t, testConfig(srv, ns, "i-d")).Load(t.Context())
	for _, k := range c.Keys {
		if k.ID == ids[0] && k.Description != "a again" {
			t.Errorf("the refused edit landed: %q", k.Description)
		}
	}
}
