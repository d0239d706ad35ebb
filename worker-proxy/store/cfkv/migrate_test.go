package cfkv

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/kvemu"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/store"
	"github.com/keypool/keypool/worker-proxy/store/cfkv/internal/schema1"
)

// testClock is a settable clock shared by the emulator and the stores.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// writeSchema1 fills the emulator's namespace as proxies of schema 1 did
// (the frozen copy of that code): keys over two providers, one edited,
// two client tokens, two instances' usage with a reset in between, and
// returns what a schema-1 instance loads from it.
func writeSchema1(t *testing.T, srv *kvemu.Server, ns string) *store.Contents {
	t.Helper()
	cfg := func(inst string) schema1.Config {
		c := testConfig(srv, ns, inst)
		return schema1.Config{AccountID: c.AccountID, NamespaceID: c.NamespaceID, APIToken: c.APIToken,
			BaseURL: c.BaseURL, InstanceID: inst, Logger: c.Logger}
	}
	open1 := func(inst string) *schema1.Store {
		s, err := schema1.Open(t.Context(), cfg(inst))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Load(t.Context()); err != nil {
			t.Fatal(err)
		}
		return s
	}
	a := open1("i-old-a")
	var keys []pool.Key
	for i := range 40 {
		k := pool.Key{ID: fmt.Sprintf("key_old_%03d", i), Provider: "openai", Secret: fmt.Sprintf("sk-test-old-%03d", i),
			IsActive: i%5 != 0, Revision: 1, Description: "from schema 1"}
		if i%2 == 1 {
			k.Provider, k.Secret = "gemini", fmt.Sprintf("AIza-test-old-%03d", i)
		}
		keys = append(keys, k)
	}
	if err := a.PutKeys(t.Context(), keys...); err != nil {
		t.Fatal(err)
	}
	edited := keys[3]
	edited.Description, edited.Revision = "edited under schema 1", 2
	if err := a.PutKeys(t.Context(), edited); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"tok_old_1", "tok_old_2"} {
		if err := a.PutToken(t.Context(), pool.ClientToken{ID: id, Name: "client " + id, Hash: strings.Repeat("cd", 32), Masked: "kp-t…" + id}); err != nil {
			t.Fatal(err)
		}
	}
	b := open1("i-old-b")
	use := func(s *schema1.Store, n int64) {
		var ds []pool.UsageDelta
		for i, k := range keys {
			ds = append(ds, pool.UsageDelta{ID: k.ID, Requests: n + int64(i), Successes: n, Failures: int64(i), LastUsed: time.Date(2026, 11, 20, 0, 0, i, 0, time.UTC)})
		}
		if err := s.AddUsage(t.Context(), ds); err != nil {
			t.Fatal(err)
		}
		if err := s.FlushUsage(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	use(a, 10)
	use(b, 100)
	if err := a.ResetUsage(t.Context(), []string{keys[0].ID, keys[1].ID}); err != nil {
		t.Fatal(err)
	}
	use(a, 1000)
	a.Close()
	b.Close()
	c, err := open1("i-old-reader").Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Keys) != 40 || len(c.Tokens) != 2 || c.Usage[keys[5].ID].Requests != 1110+15 {
		t.Fatalf("schema-1 namespace: %d keys, %d tokens, usage %+v", len(c.Keys), len(c.Tokens), c.Usage[keys[5].ID])
	}
	return c
}

// sameContents fails unless got holds exactly want's keys, tokens and usage.
func sameContents(t *testing.T, who string, got, want *store.Contents) {
	t.Helper()
	if len(got.Keys) != len(want.Keys) {
		t.Errorf("%s: %d keys, want %d", who, len(got.Keys), len(want.Keys))
	}
	wk := map[string]pool.Key{}
	for _, k := range want.Keys {
		wk[k.ID] = k
	}
	secrets := map[string]bool{}
	for _, k := range got.Keys {
		if secrets[k.Secret] {
			t.Errorf("%s: secret of %s stored twice", who, k.ID)
		}
		secrets[k.Secret] = true
		w, ok := wk[k.ID]
		if !ok || w.Secret != k.Secret || w.Revision != k.Revision || w.Description != k.Description || w.IsActive != k.IsActive || w.Provider != k.Provider {
			t.Errorf("%s: key %s = %+v, want %+v", who, k.ID, k, w)
		}
	}
	var gt, wt []string
	for _, tok := range got.Tokens {
		gt = append(gt, tok.ID+"/"+tok.Name+"/"+tok.Hash)
	}
	for _, tok := range want.Tokens {
		wt = append(wt, tok.ID+"/"+tok.Name+"/"+tok.Hash)
	}
	if !slices.Equal(gt, wt) {
		t.Errorf("%s: tokens %v, want %v", who, gt, wt)
	}
	for id, u := range want.Usage {
		g := got.Usage[id]
		if g.Requests != u.Requests || g.Successes != u.Successes || g.Failures != u.Failures || !g.LastUsed.Equal(u.LastUsed) {
			t.Errorf("%s: usage of %s = %+v, want %+v (counted once)", who, id, g, u)
		}
	}
	if len(got.Usage) != len(want.Usage) {
		t.Errorf("%s: usage of %d keys, want %d", who, len(got.Usage), len(want.Usage))
	}
}

// v1Left counts the schema-1 entries other than keypool/v1/schema.
func v1Left(t *testing.T, emu *kvemu.Emulator) int {
	n := 0
	for _, name := range names(t, emu, v1Prefix) {
		if name != v1SchemaName {
			n++
		}
	}
	return n
}

// The first instance started on a schema-1 namespace migrates it: every
// key, token, reset and usage count arrives once, proxies of schema 1
// refuse the namespace after, and the schema-1 entries are deleted.
func TestMigrateFromSchema1(t *testing.T) {
	srv, ns := emulator(t, kvemu.Options{})
	want := writeSchema1(t, srv, ns)
	srv.Emu.ResetCounts()
	s := open(t, testConfig(srv, ns, "i-new"))
	c := srv.Emu.Counts()
	t.Logf("migrating 40 keys, 2 tokens, 2 usage records, 1 reset: %d reads, %d writes, %d lists, %d deletes", c.Reads, c.Writes, c.Lists, c.Deletes)
	got, err := s.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	sameContents(t, "migrating instance", got, want)
	fresh, err := open(t, testConfig(srv, ns, "i-fresh")).Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	sameContents(t, "fresh instance", fresh, want)
	if n := v1Left(t, srv.Emu); n != 0 {
		t.Errorf("%d schema-1 entries left", n)
	}
	if _, err := schema1.Open(t.Context(), schema1.Config{AccountID: testAccount, NamespaceID: ns, APIToken: testToken, BaseURL: srv.URL}); err == nil {
		t.Error("a proxy of schema 1 opened the migrated namespace")
	}
	// The migrated usage records are the old instances' own: one that
	// comes back under its id continues its counts.
	old := open(t, testConfig(srv, ns, "i-old-a"))
	if err := old.AddUsage(t.Context(), []pool.UsageDelta{{ID: want.Keys[5].ID, Requests: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := old.FlushUsage(t.Context()); err != nil {
		t.Fatal(err)
	}
	again, _ := open(t, testConfig(srv, ns, "i-reader")).Load(t.Context())
	if g, w := again.Usage[want.Keys[5].ID].Requests, want.Usage[want.Keys[5].ID].Requests+1; g != w {
		t.Errorf("after the old instance counted one more: %d requests, want %d", g, w)
	}
}

// A migration interrupted half-way (a bulk write fails after K went
// through) leaves schema 1 in place; the next start resumes it and every
// entry arrives exactly once. An interruption in the cleanup leaves the
// rest for the next day.
func TestMigrationResumes(t *testing.T) {
	for k := 0; k <= 6; k++ {
		t.Run(fmt.Sprint("after ", k, " writes"), func(t *testing.T) {
			clock := &testClock{t: time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)}
			srv, ns := emulator(t, kvemu.Options{Now: clock.Now})
			want := writeSchema1(t, srv, ns)
			srv.Emu.InjectFault(kvemu.Fault{Status: 503, After: k, Count: 1, Methods: []string{"PUT"}})
			cfg := testConfig(srv, ns, "i-new")
			cfg.Now = clock.Now
			first, err := Open(t.Context(), cfg)
			if err == nil {
				t.Logf("the fault hit after the flip: the start succeeded; %d schema-1 entries left", v1Left(t, srv.Emu))
				first.Load(t.Context())
			} else {
				t.Logf("first start: %v", err)
				// Not flipped: a proxy of schema 1 still runs on it.
				old, err := schema1.Open(t.Context(), schema1.Config{AccountID: testAccount, NamespaceID: ns, APIToken: testToken, BaseURL: srv.URL})
				if err != nil {
					t.Fatalf("after a failed migration a proxy of schema 1 cannot open the namespace: %v", err)
				}
				if c, err := old.Load(t.Context()); err != nil || len(c.Keys) != len(want.Keys) {
					t.Fatalf("after a failed migration schema 1 holds %d keys (%v)", len(c.Keys), err)
				}
			}
			srv.Emu.ClearFaults()
			clock.Add(25 * time.Hour) // a later start; past any cleanup of today
			cfg.InstanceID = "i-second"
			s, err := Open(t.Context(), cfg)
			if err != nil {
				t.Fatalf("start after the interruption: %v", err)
			}
			got, err := s.Load(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			sameContents(t, "after resuming", got, want)
			if n := v1Left(t, srv.Emu); n != 0 {
				t.Errorf("%d schema-1 entries left", n)
			}
		})
	}
}

// Two instances starting at once on a schema-1 namespace both open it,
// and the result holds everything once.
func TestMigrationTwoAtOnce(t *testing.T) {
	srv, ns := emulator(t, kvemu.Options{})
	want := writeSchema1(t, srv, ns)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Open(t.Context(), testConfig(srv, ns, fmt.Sprint("i-start-", i)))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("instance %d: %v", i, err)
		}
	}
	got, err := open(t, testConfig(srv, ns, "i-reader")).Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	sameContents(t, "after two migrations at once", got, want)
}
