package pool

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// Every field of a Key survives the pool's packed form, the values the
// packed fields cannot hold included.
func TestRecordRoundTrip(t *testing.T) {
	local := time.Date(2026, 3, 4, 5, 6, 7, 8, time.FixedZone("UTC+8", 8*3600))
	full := Key{
		ID: "key_1", Provider: "gemini", Secret: "test-fake-secret-1", IsActive: true, ProjectLearned: true,
		MaxRequests: 99, Weight: 7, Description: "a test key", Tags: []string{"a", "b"},
		CreatedAt: t0, UpdatedAt: t0.Add(time.Second), DisabledReason: "invalid_key", DisabledAt: t0.Add(time.Minute),
		Revision: 42, Project: "895908428397", Proxy: "socks5://user:pass@10.0.0.7:1080",
	}
	cases := map[string]func(k *Key){
		"every field":          func(k *Key) {},
		"nothing rare":         func(k *Key) { *k = Key{ID: k.ID, Provider: k.Provider, Secret: k.Secret, CreatedAt: t0} },
		"zero key":             func(k *Key) { *k = Key{} },
		"zero times":           func(k *Key) { k.CreatedAt, k.UpdatedAt, k.DisabledAt = time.Time{}, time.Time{}, time.Time{} },
		"the unix epoch":       func(k *Key) { k.CreatedAt = time.Unix(0, 0).UTC() },
		"an offset zone":       func(k *Key) { k.CreatedAt, k.UpdatedAt = local, local },
		"a monotonic reading":  func(k *Key) { k.CreatedAt = time.Now() },
		"the local zone":       func(k *Key) { k.UpdatedAt = t0.Local() },
		"year 1":               func(k *Key) { k.CreatedAt = time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC) },
		"year 3000":            func(k *Key) { k.CreatedAt = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"negative weight":      func(k *Key) { k.Weight = -3 },
		"huge weight":          func(k *Key) { k.Weight = 1 << 20 },
		"weight 65535":         func(k *Key) { k.Weight = 65535 },
		"empty tags":           func(k *Key) { k.Tags = []string{} },
		"long id":              func(k *Key) { k.ID = strings.Repeat("i", 70000) },
		"empty secret":         func(k *Key) { k.Secret = "" },
		"only a reason":        func(k *Key) { *k = Key{ID: "x", Provider: "openai", DisabledReason: "quota"} },
		"a new provider":       func(k *Key) { k.Provider = "test-provider-roundtrip" },
		"negative maxRequests": func(k *Key) { k.MaxRequests = -1 },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			k := full.Clone()
			change(&k)
			r := newRec(&k)
			got := r.key()
			if !reflect.DeepEqual(got, k.Clone()) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, k.Clone())
			}
			c := Config{r}
			view := Key{ID: c.ID(), Provider: c.Provider(), Secret: c.Secret(), IsActive: c.IsActive(), ProjectLearned: c.ProjectLearned(),
				MaxRequests: c.MaxRequests(), Weight: c.Weight(), Description: c.Description(), Tags: c.Tags(),
				CreatedAt: c.CreatedAt(), UpdatedAt: c.UpdatedAt(), DisabledReason: c.DisabledReason(), DisabledAt: c.DisabledAt(),
				Revision: c.Revision(), Project: c.Project(), Proxy: c.Proxy()}
			if len(view.Tags) == 0 {
				view.Tags = nil
			}
			if !reflect.DeepEqual(view, k.Clone()) {
				t.Fatalf("Config:\n got %#v\nwant %#v", view, k.Clone())
			}
			if r.servable() != (k.IsActive && k.DisabledReason == "") {
				t.Fatalf("servable = %v", r.servable())
			}
			if k.Tags != nil && len(k.Tags) > 0 {
				got.Tags[0] = "changed"
				if c.Tags()[0] == "changed" {
					t.Fatal("Key shares its Tags with the pool")
				}
			}
		})
	}
}

// The packed form keeps nothing of the Key it was made from alive: a
// caller may reuse its Key's tag slice.
func TestRecordCopiesTags(t *testing.T) {
	k := Key{ID: "key_1", Provider: "gemini", Secret: "test-fake-s", Tags: []string{"a"}}
	r := newRec(&k)
	k.Tags[0] = "b"
	if got := (Config{r}).Tags(); got[0] != "a" {
		t.Fatalf("Tags = %v", got)
	}
}

// Packing a key allocates only what the packed form keeps: the id and
// secret string, and a recExtra only for a key that needs one. A recExtra
// made and dropped for every key would land between the entries Load
// allocates (both are 192 bytes), and after the collection every span of
// entries would stay half empty: about 18 MB at 100,000 keys.
func TestPackRecAllocatesWhatItKeeps(t *testing.T) {
	plain := memKeys(1)[0]
	described := plain
	described.Description = "a test key"
	for _, c := range []struct {
		name string
		k    Key
		want float64
	}{{"plain", plain, 1}, {"described", described, 2}} {
		var r rec
		got := testing.AllocsPerRun(100, func() { r = rec{}; packRec(&r, &c.k) })
		if got != c.want {
			t.Errorf("%s key: packRec allocates %v times, want %v", c.name, got, c.want)
		}
		if (r.x != nil) != (c.want == 2) || !reflect.DeepEqual(r.key(), c.k) {
			t.Errorf("%s key: packed %+v (extra %v), want %+v", c.name, r.key(), r.x != nil, c.k)
		}
	}
}

// Load allocates two objects for each plain key: its Entry and its id and
// secret string; the rest of its allocations do not grow with the keys.
func TestLoadAllocatesTwoObjectsPerPlainKey(t *testing.T) {
	small, large := memKeys(100), memKeys(300)
	p := New(func() time.Time { return t0 })
	a := testing.AllocsPerRun(20, func() { p.Load(small, nil) })
	b := testing.AllocsPerRun(20, func() { p.Load(large, nil) })
	if perKey := (b - a) / 200; perKey != 2 {
		t.Fatalf("Load allocates %v objects per key (%v for 100 keys, %v for 300), want 2", perKey, a, b)
	}
}

// Keys whose hashes collide are all found, replaced and removed.
func TestIndexCollisions(t *testing.T) {
	entries := map[string]*Entry{}
	p := New(nil)
	for i := range 6 {
		id := fmt.Sprintf("key_%d", i)
		e := p.newEntryLocked(&Key{ID: id, Provider: "gemini", Secret: "test-fake-" + id})
		entries[id] = e
	}
	for _, hash := range map[string]func(string) uint64{
		"all collide": func(string) uint64 { return 7 },
		"at the end":  func(string) uint64 { return math.MaxUint64 },
		"two buckets": func(s string) uint64 { return uint64(s[len(s)-1] % 2) },
		"real":        hashID,
	} {
		ix := newIndex(0, hash, entryID)
		for id, e := range entries {
			ix.put(id, e)
		}
		check := func(want map[string]*Entry) {
			t.Helper()
			if ix.len() != len(want) {
				t.Fatalf("len = %d, want %d", ix.len(), len(want))
			}
			n := 0
			for e := range ix.all() {
				if want[e.ID()] != e {
					t.Fatalf("all yields %s", e.ID())
				}
				n++
			}
			if n != len(want) {
				t.Fatalf("all yields %d entries, want %d", n, len(want))
			}
			for id := range entries {
				e, ok := ix.get(id)
				if w, in := want[id]; ok != in || e != w {
					t.Fatalf("get(%s) = %v, %v", id, e, ok)
				}
			}
			if _, ok := ix.get("key_missing"); ok {
				t.Fatal("get finds a missing key")
			}
		}
		want := map[string]*Entry{}
		for id, e := range entries {
			want[id] = e
		}
		check(want)
		// Remove the one holding the hash, then the others one by one,
		// putting some back.
		for _, id := range []string{"key_0", "key_3", "key_1"} {
			ix.del(id)
			delete(want, id)
			check(want)
		}
		ix.put("key_0", entries["key_0"])
		want["key_0"] = entries["key_0"]
		check(want)
		ix.put("key_0", entries["key_0"]) // again: still one
		check(want)
		for id := range entries {
			ix.del(id)
		}
		check(map[string]*Entry{})
	}
}

// Random puts and deletes leave the index finding exactly what a map
// holds, with hashes that collide in their home slot, their tag or both,
// runs that wrap around the table's end, and growth.
func TestIndexRandomOps(t *testing.T) {
	const n = 300
	p := New(nil)
	entries := make([]*Entry, n)
	for i := range entries {
		id := fmt.Sprintf("key_%d", i)
		entries[i] = p.newEntryLocked(&Key{ID: id, Provider: "gemini", Secret: "test-fake-" + id})
	}
	for name, hash := range map[string]func(string) uint64{
		"real":         hashID,
		"five homes":   func(s string) uint64 { return hashID(s) % 5 },
		"five tags":    func(s string) uint64 { return hashID(s)&0xffff | (hashID(s)%5)<<56 },
		"high homes":   func(s string) uint64 { return math.MaxUint64 - hashID(s)%3 },
		"one tag home": func(s string) uint64 { return 1<<56 | 3 },
	} {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			ix := newIndex(rng.IntN(50), hash, entryID)
			want := map[string]*Entry{}
			for step := range 3000 {
				e := entries[rng.IntN(n)]
				if rng.IntN(3) == 0 {
					ix.del(e.ID())
					delete(want, e.ID())
				} else {
					ix.put(e.ID(), e)
					want[e.ID()] = e
				}
				if step%50 != 0 && step < 2990 {
					continue
				}
				if ix.len() != len(want) {
					t.Fatalf("step %d: len = %d, want %d", step, ix.len(), len(want))
				}
				for _, e := range entries {
					got, ok := ix.get(e.ID())
					if w, in := want[e.ID()]; ok != in || got != w {
						t.Fatalf("step %d: get(%s) = %v, %v; want %v", step, e.ID(), got != nil, ok, in)
					}
				}
				seen := 0
				for e := range ix.all() {
					if want[e.ID()] != e {
						t.Fatalf("step %d: all yields %s", step, e.ID())
					}
					seen++
				}
				if seen != len(want) {
					t.Fatalf("step %d: all yields %d, want %d", step, seen, len(want))
				}
			}
		})
	}
}

// Flush writes keys added after the last flush (its id order is sorted
// again) and leaves out removed ones.
func TestFlushAfterAddAndRemove(t *testing.T) {
	p := newPool(keys("gemini", 3)...)
	flush := func() []string {
		t.Helper()
		var ids []string
		if err := p.Flush(func(ds []UsageDelta) error {
			for _, d := range ds {
				ids = append(ids, fmt.Sprintf("%s:%d", d.ID, d.Requests))
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	for range 3 {
		p.Pick("gemini", RoundRobin).Finish(Outcome{Success: true})
	}
	if got := fmt.Sprint(flush()); got != "[key_0:1 key_1:1 key_2:1]" {
		t.Fatalf("first flush: %s", got)
	}
	p.Add(Key{ID: "key_00", Provider: "gemini", Secret: "test-fake-00", IsActive: true, CreatedAt: t0.Add(time.Hour)})
	p.Remove("key_1")
	for range 3 {
		p.Pick("gemini", RoundRobin).Finish(Outcome{Success: true})
	}
	if got := fmt.Sprint(flush()); got != "[key_0:1 key_00:1 key_2:1]" {
		t.Fatalf("after add and remove: %s", got)
	}
}

// Changes to keys race with picks, finishes and readers without a data
// race (go test -race) and without a reader seeing a half-made key.
func TestConfigChangesDuringPicks(t *testing.T) {
	ks := keys("gemini", 50)
	p := newPool(ks...)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for n := g; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				e := p.Pick("gemini", Strategies[n%len(Strategies)])
				if e == nil {
					continue
				}
				c := e.Config()
				if c.Provider() != "gemini" || !strings.HasPrefix(c.Secret(), "secret-gemini-") || e.Key().ID != c.ID() {
					t.Errorf("inconsistent key %q", c.ID())
				}
				_ = e.Usage()
				e.Finish(Outcome{Error: &LastError{Status: 500, Message: "test"}})
			}
		})
	}
	for i := range 400 {
		e := p.Entries("gemini")[i%50]
		switch i % 5 {
		case 0:
			k := e.Key()
			k.Description = fmt.Sprint("d", i)
			k.Tags = []string{"t"}
			if err := p.Update(k); err != nil {
				t.Fatal(err)
			}
		case 1:
			p.Disable(e, "test", t0)
		case 2:
			p.Enable(e)
		case 3:
			p.Cool(e, t0.Add(time.Second), "test")
			p.CoolModel(e, "m", t0.Add(time.Second), "test")
		case 4:
			p.SetProject(e, "p1")
			_ = p.Flush(func([]UsageDelta) error { return nil })
		}
	}
	close(stop)
	wg.Wait()
	if p.Len() != 50 {
		t.Fatalf("Len = %d", p.Len())
	}
	for _, k := range ks {
		e, ok := p.FindSecret("gemini", k.Secret)
		if !ok || e.ID() != k.ID {
			t.Fatalf("FindSecret(%s) = %v, %v", k.ID, e, ok)
		}
	}
}
