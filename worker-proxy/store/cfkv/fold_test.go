package cfkv

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/kvemu"
	"github.com/keypool/keypool/worker-proxy/pool"
)

func TestSlotCodecRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 25, 8, 0, 0, 123456789, time.UTC)
	sl := usageSlot{
		Instances: map[string]usageRecord{
			"i-a": {Instance: "i-a", UpdatedAt: at, JournalSeq: 7, Keys: map[string]usageEntry{
				"key_1":        {Epoch: 5, Requests: 10, Successes: 8, Failures: 2, LastUsed: at, PromptTokens: 100, CompletionTokens: 50},
				"key with sp":  {Requests: 1},
				"key\nnewline": {Requests: 2, LastError: &pool.LastError{Status: 429, Message: "quota", At: at}},
				`"quoted`:      {Requests: 3, Failures: -1},
			}},
			"i-b": {Instance: "i-b", UpdatedAt: at, Keys: map[string]usageEntry{}},
		},
		Folded: &foldedUsage{
			Keys: map[string]usageEntry{"key_1": {Requests: 4, LastError: &pool.LastError{Status: 401, Message: "bad", At: at}}},
			IDs:  map[string]foldedID{"i-gone": {At: at.UnixNano(), Seq: 3}},
		},
		WrittenAt: at.UnixNano(),
	}
	b, err := sl.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseSlot(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, sl) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, sl)
	}
	counts, err := SlotRequests(string(b))
	if err != nil || counts["key_1"] != 14 || counts["key\nnewline"] != 2 {
		t.Fatalf("SlotRequests = %v, %v", counts, err)
	}
}

// sameSlotIDs returns n instance ids whose records share one usage slot.
func sameSlotIDs(n int, tag string) []string {
	var ids []string
	want := slotOf(tag + "-0")
	for i := 0; len(ids) < n; i++ {
		if id := fmt.Sprintf("%s-%d", tag, i); slotOf(id) == want {
			ids = append(ids, id)
		}
	}
	return ids
}

// foldRig is a namespace with one key and a shared clock.
type foldRig struct {
	t     *testing.T
	srv   *kvemu.Server
	ns    string
	clock *testClock
	probe *Store // reads slots as KV serves them
}

func newFoldRig(t *testing.T, stale time.Duration) *foldRig {
	clock := &testClock{t: time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)}
	srv, ns := emulator(t, kvemu.Options{Now: clock.Now, StaleFor: stale})
	r := &foldRig{t: t, srv: srv, ns: ns, clock: clock}
	s := r.open("i-setup")
	if err := s.PutKeys(t.Context(), pool.Key{ID: "key_a", Provider: "gemini", Secret: "AIza-fold-test-0001", IsActive: true, Revision: 1}); err != nil {
		t.Fatal(err)
	}
	clock.Add(stale + time.Second)
	r.probe = s
	return r
}

func (r *foldRig) open(inst string) *Store {
	cfg := testConfig(r.srv, r.ns, inst)
	cfg.Now = r.clock.Now
	return open(r.t, cfg)
}

// count adds n requests to s and writes its record now.
func (r *foldRig) count(s *Store, n int64) {
	r.t.Helper()
	if err := s.AddUsage(r.t.Context(), []pool.UsageDelta{{ID: "key_a", Requests: n, Successes: n}}); err != nil {
		r.t.Fatal(err)
	}
	if err := s.FlushUsage(r.t.Context()); err != nil {
		r.t.Fatal(err)
	}
}

// total is what a new instance counts for key_a.
func (r *foldRig) total() int64 {
	r.t.Helper()
	s := r.open(fmt.Sprintf("i-reader-%d", r.clock.Now().UnixNano()))
	c, err := s.Load(r.t.Context())
	if err != nil {
		r.t.Fatal(err)
	}
	return c.Usage["key_a"].Requests
}

// slot is the slot of inst as KV holds it now.
func (r *foldRig) slot(inst string) usageSlot {
	r.t.Helper()
	vals, err := r.probe.read(r.t.Context(), []string{slotOf(inst)}, false, false)
	if err != nil {
		r.t.Fatal(err)
	}
	sl, err := parseSlot(vals[slotOf(inst)])
	if err != nil {
		r.t.Fatal(err)
	}
	return sl
}

// TestFoldGoneInstances: instances that come and go (each with a new id,
// as an edge isolate) leave a record each; the next writer of the slot
// folds those not updated for minFoldAfter into the slot's sum, so the
// slot holds the instances of the last hours only, and totals stay exact.
func TestFoldGoneInstances(t *testing.T) {
	r := newFoldRig(t, 0)
	ids := sameSlotIDs(41, "i-churn")
	var served int64
	// 40 instances, one started every 15 minutes, each counting and
	// writing once, never closed (an isolate killed after its write).
	for i, id := range ids[:40] {
		s := r.open(id)
		n := int64(i + 1)
		r.count(s, n)
		served += n
		r.clock.Add(15 * time.Minute)
	}
	sl := r.slot(ids[0])
	// Records are folded by the next write once minFoldAfter (2 h) old:
	// the last 2 h of instances stay, at 15 minutes apart.
	if n := len(sl.Instances); n > int(minFoldAfter/(15*time.Minute))+1 {
		t.Errorf("the slot holds %d records after 40 instances came and went", n)
	}
	if n := len(sl.Folded.IDs); n < 30 {
		t.Errorf("the slot names %d folded instances, want ≥ 30", n)
	}
	if got := r.total(); got != served {
		t.Fatalf("total %d after folding, served %d", got, served)
	}
	// The folded ids are forgotten after foldedIDsKept; the sum stays.
	r.clock.Add(foldedIDsKept + time.Hour)
	last := r.open(ids[40])
	r.count(last, 1)
	served++
	if sl := r.slot(ids[0]); len(sl.Instances) != 1 || len(sl.Folded.IDs) != 0 {
		t.Errorf("slot after a week: %d records, %d folded ids; want 1 and none", len(sl.Instances), len(sl.Folded.IDs))
	}
	if got := r.total(); got != served {
		t.Fatalf("total %d a week later, served %d", got, served)
	}
}

// TestFoldLiveInstance: an instance idle for longer than minFoldAfter is
// folded while alive; when it counts again it takes the folded copy out
// of its own record, so nothing counts twice, also across a restart.
func TestFoldLiveInstance(t *testing.T) {
	r := newFoldRig(t, 0)
	ids := sameSlotIDs(2, "i-live")
	a, b := r.open(ids[0]), r.open(ids[1])
	r.count(a, 5)
	r.clock.Add(minFoldAfter + time.Minute)
	r.count(b, 7) // folds a's record
	if sl := r.slot(ids[0]); len(sl.Instances) != 1 || sl.Folded.IDs[ids[0]].At == 0 {
		t.Fatalf("a's record was not folded: %d records, ids %v", len(sl.Instances), sl.Folded.IDs)
	}
	if got := r.total(); got != 12 {
		t.Fatalf("total %d after the fold, want 12", got)
	}
	r.count(a, 3) // a finds its record folded
	if got := r.total(); got != 15 {
		t.Fatalf("total %d after a counted on, want 15", got)
	}
	if rec := r.slot(ids[0]).Instances[ids[0]]; rec.Keys["key_a"].Requests != 3 {
		t.Fatalf("a's record holds %d requests, want the 3 counted after the fold", rec.Keys["key_a"].Requests)
	}
	// a's usage read sees the fold too, without double counting.
	r.clock.Add(11 * time.Minute)
	if _, err := a.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	c, _ := a.Load(t.Context())
	if got := c.Usage["key_a"].Requests; got != 15 {
		t.Fatalf("a counts %d, want 15", got)
	}
	// A restart of a (same id) adopts its record of 3, not the folded 5.
	a.Close()
	a2 := r.open(ids[0])
	r.count(a2, 1)
	if got := r.total(); got != 16 {
		t.Fatalf("total %d after a restarted, want 16", got)
	}
}

// TestFoldRace: two instances write one slot within KV's propagation
// delay, both folding the same gone record; the last write wins, the
// loser writes its record again at its next usage read, and the totals
// are exact throughout: a fold is a function of the value read, so a
// lost fold leaves the record where it was and two folds count it once.
func TestFoldRace(t *testing.T) {
	const stale = 60 * time.Second
	r := newFoldRig(t, stale)
	ids := sameSlotIDs(3, "i-race")
	gone, a, b := r.open(ids[0]), r.open(ids[1]), r.open(ids[2])
	for _, w := range []*Store{gone, a, b} {
		r.count(w, map[*Store]int64{gone: 100, a: 1, b: 1}[w])
		r.clock.Add(stale + time.Second)
	}
	r.clock.Add(minFoldAfter + stale + time.Minute)
	// a and b both read the slot with gone's record, fold it, write.
	r.count(a, 10)
	r.clock.Add(time.Second)
	r.count(b, 20) // read before a's write is visible: a's new record is lost
	r.clock.Add(stale + time.Second)
	// b's stale read held gone's record and a's old one (1 request),
	// both older than minFoldAfter: b folded both, once each, and its
	// write, the last, lost a's new record.
	sl := r.slot(ids[0])
	if len(sl.Instances) != 1 || sl.Folded.Keys["key_a"].Requests != 101 || sl.Folded.IDs[ids[0]].At == 0 || sl.Folded.IDs[ids[1]].At == 0 {
		t.Fatalf("slot: %d records, folded sum %d, folded ids %v; want b's record alone, 101 folded from gone and a",
			len(sl.Instances), sl.Folded.Keys["key_a"].Requests, sl.Folded.IDs)
	}
	if got := r.total(); got != 122 {
		t.Fatalf("total %d while a's write is lost, want 122 (101 folded + b's 21)", got)
	}
	// a's next usage read finds its record folded: it takes the folded
	// copy (1) out of its own record and writes the rest (10) again.
	r.clock.Add(10 * time.Minute)
	if _, err := a.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := a.FlushUsage(t.Context()); err != nil {
		t.Fatal(err)
	}
	r.clock.Add(stale + time.Second)
	if got := r.total(); got != 132 {
		t.Fatalf("total %d, want 132 (100 + 11 + 21)", got)
	}

	// Now a itself is folded in a race it loses: a's idle record is
	// folded by b while a writes; b's stale read wins.
	r.clock.Add(minFoldAfter + time.Minute)
	r.count(a, 5)
	r.clock.Add(time.Second)
	r.count(b, 2) // folds a's previous record, loses a's new one
	r.clock.Add(stale + time.Second)
	if sl := r.slot(ids[0]); sl.Folded.IDs[ids[1]].At == 0 {
		t.Fatalf("a's record was not folded: %+v", sl.Folded.IDs)
	}
	r.clock.Add(10 * time.Minute)
	if _, err := a.Sync(t.Context()); err != nil { // takes the fold out of own
		t.Fatal(err)
	}
	if err := a.FlushUsage(t.Context()); err != nil {
		t.Fatal(err)
	}
	r.clock.Add(stale + time.Second)
	if got := r.total(); got != 139 {
		t.Fatalf("total %d, want 139 (132 + 5 + 2)", got)
	}
}

// bigSlot is a slot of n records of 10,000 keys each, as a day of
// traffic leaves it.
func bigSlot(n int) usageSlot {
	at := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	sl := usageSlot{Instances: map[string]usageRecord{}, Folded: &foldedUsage{Keys: map[string]usageEntry{}, IDs: map[string]foldedID{}}}
	for i := range n {
		keys := map[string]usageEntry{}
		for j := range 10000 {
			r := int64(100 + (i*7+j*13)%50)
			keys[fmt.Sprintf("key_%05d", j)] = usageEntry{Requests: r, Successes: r - 1, Failures: 1, LastUsed: at.Add(time.Duration(j) * time.Second)}
		}
		inst := fmt.Sprintf("i-%d", i)
		sl.Instances[inst] = usageRecord{Instance: inst, UpdatedAt: at, Keys: keys}
	}
	return sl
}

// TestSlotCompact: a record of 10,000 keys takes under a fifth of the
// room its counts take as JSON, so reading the 8 slots costs a fraction.
func TestSlotCompact(t *testing.T) {
	sl := bigSlot(1)
	compact, err := sl.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := json.Marshal(sl.Instances["i-0"].Keys)
	t.Logf("10,000 keys: %d bytes compact, %d as JSON", len(compact), len(plain))
	if len(compact)*5 > len(plain) {
		t.Errorf("compact slot %d bytes, over a fifth of JSON's %d", len(compact), len(plain))
	}
}

// BenchmarkSlotRead: a usage read of a slot of 2 records × 10,000 keys,
// decoded whole ("changed") and with its records' counts unchanged since
// the last read ("unchanged": not decoded again), the case of most slots
// at most usage reads.
func BenchmarkSlotRead(b *testing.B) {
	v, err := bigSlot(2).MarshalJSON()
	if err != nil {
		b.Fatal(err)
	}
	_, raws, err := decodeSlot(v, nil)
	if err != nil {
		b.Fatal(err)
	}
	sl, _, _ := decodeSlot(v, nil)
	prev := &slotView{records: sl.Instances, folded: *sl.Folded, recRaw: raws}
	// The baseline: the same slot as plain JSON, as schema 2 first
	// stored it (the counts of every key as a JSON object).
	type jsonSlot struct {
		Instances map[string]usageRecord `json:"instances"`
	}
	plain, _ := json.Marshal(jsonSlot{Instances: sl.Instances})
	b.Run("json", func(b *testing.B) {
		for b.Loop() {
			var js jsonSlot
			if err := json.Unmarshal(plain, &js); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, c := range []struct {
		name string
		prev *slotView
	}{{"changed", nil}, {"unchanged", prev}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, _, err := decodeSlot(v, c.prev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
