package cfkv

import (
	"fmt"
	"hash/fnv"
	"strings"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/kvemu"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/store"
	"github.com/keypool/keypool/worker-proxy/store/cfkv/internal/schema2pre"
)

// propagation is the emulator's eventual consistency in these tests: a
// write is seen by every read from 60 s after it on, as Cloudflare says
// of KV between locations.
const propagation = 60 * time.Second

// staleEmulator is an emulator whose writes take propagation to be seen,
// on the clock returned.
func staleEmulator(t *testing.T) (*kvemu.Server, string, *testClock) {
	t.Helper()
	clock := &testClock{t: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}
	srv, ns := emulator(t, kvemu.Options{Now: clock.Now, StaleFor: propagation})
	return srv, ns, clock
}

// idsInShards returns n key ids, each in a shard of its own.
func idsInShards(prefix string, n int) []string {
	var ids []string
	used := map[string]bool{}
	for i := 0; len(ids) < n; i++ {
		id := fmt.Sprintf("%s_%03d", prefix, i)
		if sh := shardOf(id); !used[sh] {
			used[sh] = true
			ids = append(ids, id)
		}
	}
	return ids
}

// clockConfig is testConfig on the test's clock.
func clockConfig(srv *kvemu.Server, ns, instance string, clock *testClock) Config {
	c := testConfig(srv, ns, instance)
	c.Now = clock.Now
	return c
}

func testKey(id string, rev int64) pool.Key {
	return pool.Key{ID: id, Provider: "gemini", Secret: "AIza-test-" + id, IsActive: true, Revision: rev}
}

// startCost opens and loads a new instance, and returns what it loaded
// and the reads and lists that cost.
func startCost(t *testing.T, srv *kvemu.Server, cfg Config) (*Store, *store.Contents, kvemu.Counts) {
	t.Helper()
	before := srv.Emu.Counts()
	s, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	after := srv.Emu.Counts()
	return s, c, kvemu.Counts{Reads: after.Reads - before.Reads, Lists: after.Lists - before.Lists, Writes: after.Writes - before.Writes}
}

func keyIDs(c *store.Contents) map[string]int64 {
	m := map[string]int64{}
	for _, k := range c.Keys {
		m[k.ID] = k.Revision
	}
	return m
}

// TestSnapshotRaceTwoWriters: two instances write keys of different
// shards within KV's propagation delay, so the second one's snapshot
// misses the first one's key; instances start every 10 s from just
// before the writes to 10 minutes after. Once both writes have
// propagated, every start must hold both keys (it may list to get them,
// but never trust a snapshot that misses one), whether the writers live
// on (and settle the snapshot) or are killed at once (the starters
// settle it). Once settled, a start costs no list.
func TestSnapshotRaceTwoWriters(t *testing.T) {
	for _, gap := range []time.Duration{0, 5 * time.Second, 30 * time.Second, 59 * time.Second, 70 * time.Second} {
		for _, writersLive := range []bool{true, false} {
			t.Run(fmt.Sprintf("gap_%s_live_%v", gap, writersLive), func(t *testing.T) {
				srv, ns, clock := staleEmulator(t)
				ids := idsInShards("key_race", 3)
				a := open(t, clockConfig(srv, ns, "i-writer-a", clock))
				// A pool exists, settled, before the race.
				if err := a.PutKeys(t.Context(), testKey(ids[0], 1)); err != nil {
					t.Fatal(err)
				}
				clock.Add(time.Hour)
				if _, err := a.Sync(t.Context()); err != nil {
					t.Fatal(err)
				}
				clock.Add(time.Hour)
				b := open(t, clockConfig(srv, ns, "i-writer-b", clock))
				if got := keyIDs(mustLoad(t, b)); len(got) != 1 {
					t.Fatalf("before the race the pool holds %v", got)
				}
				if _, _, cost := startCost(t, srv, clockConfig(srv, ns, "i-check", clock)); cost.Lists != 0 {
					t.Fatalf("a start on a settled snapshot listed %d times", cost.Lists)
				}

				start := clock.Now()
				clock.Add(-10 * time.Second) // the first starter comes before the writes
				var tA, tB time.Time
				var starts, trusted int
				for step := time.Duration(0); step <= 10*time.Minute; step += 10 * time.Second {
					now := start.Add(step - 10*time.Second)
					clock.Add(now.Sub(clock.Now()))
					if tA.IsZero() && !now.Before(start) {
						if err := a.PutKeys(t.Context(), testKey(ids[1], 1)); err != nil {
							t.Fatal(err)
						}
						tA = now
					}
					if tB.IsZero() && !now.Before(start.Add(gap)) {
						if err := b.PutKeys(t.Context(), testKey(ids[2], 1)); err != nil {
							t.Fatal(err)
						}
						tB = now
					}
					if writersLive && step%(30*time.Second) == 0 {
						for _, w := range []*Store{a, b} {
							if _, err := w.Sync(t.Context()); err != nil {
								t.Fatal(err)
							}
						}
					}
					s, c, cost := startCost(t, srv, clockConfig(srv, ns, fmt.Sprintf("i-start-%d", step/time.Second), clock))
					s.Close()
					starts++
					if cost.Lists == 0 {
						trusted++
					}
					got := keyIDs(c)
					if !tB.IsZero() && now.Sub(tB) >= propagation && now.Sub(tA) >= propagation {
						for _, id := range ids {
							if _, ok := got[id]; !ok {
								t.Fatalf("a start %s after both writes (gap %s) misses %s: holds %v (cost %d reads, %d lists)", now.Sub(tB), gap, id, got, cost.Reads, cost.Lists)
							}
						}
					}
					if !tB.IsZero() && now.Sub(tB) >= 2*settleAfter+2*propagation && cost.Lists != 0 {
						t.Errorf("a start %s after the last write listed %d times: the snapshot is not settled", now.Sub(tB), cost.Lists)
					}
				}
				t.Logf("%d starts, %d without a list", starts, trusted)
				// The writers themselves end up with both keys.
				clock.Add(10 * time.Minute)
				for i, w := range []*Store{a, b} {
					if _, err := w.Sync(t.Context()); err != nil {
						t.Fatal(err)
					}
					if got := keyIDs(mustLoad(t, w)); len(got) != 3 {
						t.Errorf("writer %d holds %v", i, got)
					}
				}
			})
		}
	}
}

func mustLoad(t *testing.T, s *Store) *store.Contents {
	t.Helper()
	c, err := s.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSnapshotSameShardMerge: two instances editing different keys of one
// shard keep both, an edit of one key from an older revision is a
// conflict, and the settled snapshot afterwards holds the merge.
func TestSnapshotSameShardMerge(t *testing.T) {
	srv, ns, clock := staleEmulator(t)
	a := open(t, clockConfig(srv, ns, "i-a", clock))
	b := open(t, clockConfig(srv, ns, "i-b", clock))
	var same []string
	for i := 0; len(same) < 2; i++ {
		id := fmt.Sprintf("key_same_%03d", i)
		if len(same) == 0 || shardOf(id) == shardOf(same[0]) {
			same = append(same, id)
		}
	}
	if err := a.PutKeys(t.Context(), testKey(same[0], 1)); err != nil {
		t.Fatal(err)
	}
	clock.Add(2 * propagation)
	if err := b.PutKeys(t.Context(), testKey(same[1], 1)); err != nil {
		t.Fatal(err)
	}
	clock.Add(2 * propagation)
	if err := b.PutKeys(t.Context(), testKey(same[0], 1)); err == nil || !strings.Contains(err.Error(), "not newer") {
		t.Fatalf("an edit from an old revision: %v, want a conflict", err)
	}
	clock.Add(2 * settleAfter)
	for _, w := range []*Store{a, b} {
		if _, err := w.Sync(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	clock.Add(2 * propagation)
	_, c, cost := startCost(t, srv, clockConfig(srv, ns, "i-start", clock))
	if got := keyIDs(c); len(got) != 2 || cost.Lists != 0 {
		t.Fatalf("a start after the settle holds %v (%d lists)", got, cost.Lists)
	}
}

// writePre fills the namespace as the proxies before the snapshot did
// (the frozen copy of that code): keys over 32 shards and two providers,
// one edited, two tokens, a reset and two instances' usage; it returns
// what such a proxy loads from it.
func writePre(t *testing.T, srv *kvemu.Server, ns string, clock *testClock) *store.Contents {
	t.Helper()
	openPre := func(inst string) *schema2pre.Store {
		c := clockConfig(srv, ns, inst, clock)
		s, err := schema2pre.Open(t.Context(), schema2pre.Config{AccountID: c.AccountID, NamespaceID: c.NamespaceID,
			APIToken: c.APIToken, BaseURL: c.BaseURL, InstanceID: inst, Logger: c.Logger, Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Load(t.Context()); err != nil {
			t.Fatal(err)
		}
		return s
	}
	a := openPre("i-pre-a")
	var keys []pool.Key
	for i := range 60 {
		k := testKey(fmt.Sprintf("key_pre_%03d", i), 1)
		if i%3 == 0 {
			k.Provider, k.Secret = "openai", fmt.Sprintf("sk-test-pre-%03d", i)
		}
		keys = append(keys, k)
	}
	if err := a.PutKeys(t.Context(), keys...); err != nil {
		t.Fatal(err)
	}
	edited := keys[7]
	edited.Description, edited.Revision = "edited before the snapshot", 2
	if err := a.PutKeys(t.Context(), edited); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"tok_pre_1", "tok_pre_2"} {
		if err := a.PutToken(t.Context(), pool.ClientToken{ID: id, Name: "client " + id, Hash: strings.Repeat("ab", 32), Masked: "kp-t…" + id}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Add(propagation)
	b := openPre("i-pre-b")
	for i, s := range []*schema2pre.Store{a, b} {
		var ds []pool.UsageDelta
		for j, k := range keys {
			ds = append(ds, pool.UsageDelta{ID: k.ID, Requests: int64(10*i + j), Successes: int64(j), LastUsed: time.Date(2026, 11, 20, 0, 0, j, 0, time.UTC)})
		}
		if err := s.AddUsage(t.Context(), ds); err != nil {
			t.Fatal(err)
		}
		if err := s.FlushUsage(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.ResetUsage(t.Context(), []string{keys[1].ID}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	b.Close()
	clock.Add(propagation)
	c, err := openPre("i-pre-reader").Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Keys) != 60 || len(c.Tokens) != 2 {
		t.Fatalf("namespace before the snapshot: %d keys, %d tokens", len(c.Keys), len(c.Tokens))
	}
	return c
}

// TestSnapshotTakesOverPre: a namespace written by the proxies before
// the snapshot (no keypool/v2/config, unstamped revs, shards without a
// version in their value) loads the same in the current code; starts
// list it until an instance that saw its rev for settleAfter (twice that,
// not being its writer) settles a snapshot; a settle interrupted (its
// write refused) is done again by the next; from then on starts list
// nothing; and a write by an old proxy still running is seen by the
// starts after it (the snapshot no longer matches rev).
func TestSnapshotTakesOverPre(t *testing.T) {
	srv, ns, clock := staleEmulator(t)
	clock.Add(-time.Hour)
	want := writePre(t, srv, ns, clock)
	clock.Add(time.Hour)

	s1, c, cost := startCost(t, srv, clockConfig(srv, ns, "i-new-1", clock))
	sameContents(t, "first start of the current code", c, want)
	if cost.Lists != 1 {
		t.Errorf("first start: %d lists, want 1 (no snapshot yet)", cost.Lists)
	}
	// The rev is unstamped: the instance waits twice settleAfter from
	// when it first saw it, then settles. The first try is refused.
	clock.Add(2*settleAfter + time.Second)
	srv.Emu.InjectFault(kvemu.Fault{Status: 503, Count: 1, Methods: []string{"PUT"}, Paths: []string{"/bulk"}})
	if _, err := s1.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv.Emu.ClearFaults()
	clock.Add(2 * propagation)
	if _, _, cost := startCost(t, srv, clockConfig(srv, ns, "i-new-2", clock)); cost.Lists != 1 {
		t.Errorf("a start after an interrupted settle: %d lists, want 1", cost.Lists)
	}
	// Another instance that has seen the rev as long settles it.
	s3, _, _ := startCost(t, srv, clockConfig(srv, ns, "i-new-3", clock))
	clock.Add(2*settleAfter + time.Second)
	if _, err := s3.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	clock.Add(2 * propagation)
	s4, c, cost := startCost(t, srv, clockConfig(srv, ns, "i-new-4", clock))
	sameContents(t, "a start on the settled snapshot", c, want)
	if cost.Lists != 0 || cost.Reads > 2+numSlots {
		t.Errorf("a start on the settled snapshot: %d reads, %d lists; want at most %d reads, no list", cost.Reads, cost.Lists, 2+numSlots)
	}
	s4.Close()

	// An old proxy still running edits a key and adds a token.
	c2 := clockConfig(srv, ns, "i-pre-late", clock)
	old, err := schema2pre.Open(t.Context(), schema2pre.Config{AccountID: c2.AccountID, NamespaceID: c2.NamespaceID,
		APIToken: c2.APIToken, BaseURL: c2.BaseURL, InstanceID: "i-pre-late", Logger: c2.Logger, Now: c2.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	k := want.Keys[11]
	k.Description, k.Revision = "edited by an old proxy", k.Revision+1
	if err := old.PutKeys(t.Context(), k); err != nil {
		t.Fatal(err)
	}
	clock.Add(propagation)
	_, c, cost = startCost(t, srv, clockConfig(srv, ns, "i-new-5", clock))
	found := false
	for _, got := range c.Keys {
		if got.ID == k.ID {
			found = got.Revision == k.Revision && got.Description == k.Description
		}
	}
	if !found || cost.Lists != 1 {
		t.Errorf("a start after an old proxy's write: its edit seen %v, %d lists (want seen, 1 list)", found, cost.Lists)
	}
	s1.Close()
	s3.Close()
}

// TestSnapshotTokensAndResets: token writes, deletes and usage resets
// travel in the snapshot: a start on the settled snapshot sees them
// without a list, and a deleted token is gone.
func TestSnapshotTokensAndResets(t *testing.T) {
	srv, ns, clock := staleEmulator(t)
	a := open(t, clockConfig(srv, ns, "i-a", clock))
	id := idsInShards("key_tok", 1)[0]
	if err := a.PutKeys(t.Context(), testKey(id, 1)); err != nil {
		t.Fatal(err)
	}
	a.AddUsage(t.Context(), []pool.UsageDelta{{ID: id, Requests: 5}})
	if err := a.FlushUsage(t.Context()); err != nil {
		t.Fatal(err)
	}
	clock.Add(propagation)
	for _, tid := range []string{"tok_snap_1", "tok_snap_2"} {
		if err := a.PutToken(t.Context(), pool.ClientToken{ID: tid, Name: tid, Hash: strings.Repeat("ef", 32), Masked: "kp-t…"}); err != nil {
			t.Fatal(err)
		}
		clock.Add(propagation)
	}
	if err := a.DeleteToken(t.Context(), "tok_snap_1"); err != nil {
		t.Fatal(err)
	}
	clock.Add(propagation)
	if err := a.ResetUsage(t.Context(), []string{id}); err != nil {
		t.Fatal(err)
	}
	clock.Add(settleAfter + time.Second)
	if _, err := a.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	clock.Add(propagation)
	_, c, cost := startCost(t, srv, clockConfig(srv, ns, "i-start", clock))
	if cost.Lists != 0 {
		t.Errorf("a start after the settle listed %d times", cost.Lists)
	}
	if len(c.Tokens) != 1 || c.Tokens[0].ID != "tok_snap_2" {
		t.Errorf("tokens %v, want tok_snap_2 alone", c.Tokens)
	}
	if u := c.Usage[id]; u.Requests != 0 {
		t.Errorf("usage after the reset: %+v, want none counted", u)
	}
}

// TestShardOfIsFNV1a: the shard of a key is FNV-1a of its id modulo 32,
// as the layout says and as namespaces already written hold it.
func TestShardOfIsFNV1a(t *testing.T) {
	for i := range 2000 {
		id := fmt.Sprintf("key_%d_test", i)
		h := fnv.New32a()
		h.Write([]byte(id))
		if want := fmt.Sprintf("%s%02d", shardPrefix, h.Sum32()%numShards); shardOf(id) != want {
			t.Fatalf("shardOf(%q) = %s, want %s", id, shardOf(id), want)
		}
	}
}
