package pool

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func keys(provider string, n int) []Key {
	out := make([]Key, n)
	for i := range out {
		out[i] = Key{
			ID: fmt.Sprintf("key_%d", i), Provider: provider, Secret: fmt.Sprintf("secret-%s-%06d", provider, i),
			IsActive: true, CreatedAt: t0.Add(time.Duration(i) * time.Second),
		}
	}
	return out
}

func newPool(ks ...Key) *Pool {
	p := New(func() time.Time { return t0 })
	p.Load(ks, nil)
	return p
}

func pickIDs(t *testing.T, p *Pool, s Strategy, n int) []string {
	t.Helper()
	var ids []string
	for range n {
		e := p.Pick("gemini", s)
		if e == nil {
			ids = append(ids, "")
			continue
		}
		ids = append(ids, e.ID())
		e.Finish(Outcome{Success: true})
	}
	return ids
}

func TestRoundRobinTakesEachInTurn(t *testing.T) {
	ks := keys("gemini", 3)
	// Stable order is by creation time, whatever order they load in.
	p := newPool(ks[2], ks[0], ks[1])
	got := pickIDs(t, p, RoundRobin, 7)
	want := []string{"key_0", "key_1", "key_2", "key_0", "key_1", "key_2", "key_0"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestRoundRobinSkipsUnavailable(t *testing.T) {
	ks := keys("gemini", 4)
	ks[1].IsActive = false
	ks[2].MaxRequests = 1
	p := newPool(ks...)
	got := pickIDs(t, p, RoundRobin, 6)
	// key_2 serves once, then is at its limit.
	for i, id := range got {
		if id == "key_1" {
			t.Fatalf("pick %d used the inactive key: %v", i, got)
		}
	}
	n2 := 0
	for _, id := range got {
		if id == "key_2" {
			n2++
		}
	}
	if n2 != 1 {
		t.Fatalf("key_2 (maxRequests 1) served %d times: %v", n2, got)
	}
}

func TestLeastUsedPicksLowestCount(t *testing.T) {
	ks := keys("gemini", 3)
	p := New(func() time.Time { return t0 })
	p.Load(ks, map[string]Usage{"key_0": {Requests: 5}, "key_1": {Requests: 2}, "key_2": {Requests: 3}})
	got := pickIDs(t, p, LeastUsed, 5)
	// Counts 5,2,3 → key_1(3) → tie 3,3: key_1 is earlier? no: key_1=3,key_2=3 → key_1 (earlier) ...
	want := []string{"key_1", "key_1", "key_2", "key_1", "key_2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestLeastUsedSeesOtherStrategiesUse(t *testing.T) {
	p := newPool(keys("gemini", 2)...)
	if id := pickIDs(t, p, LeastUsed, 1)[0]; id != "key_0" {
		t.Fatalf("first pick %s", id)
	}
	// Round robin uses keys behind the heap's back: key_0 twice, key_1 once.
	if got := pickIDs(t, p, RoundRobin, 3); fmt.Sprint(got) != "[key_0 key_1 key_0]" {
		t.Fatalf("round robin: %v", got)
	}
	// Counts are now key_0=3, key_1=1.
	if got := pickIDs(t, p, LeastUsed, 3); fmt.Sprint(got) != "[key_1 key_1 key_0]" {
		t.Fatalf("got %v, want [key_1 key_1 key_0]", got)
	}
}

func TestRandomCoversAllAvailable(t *testing.T) {
	ks := keys("gemini", 5)
	ks[3].IsActive = false
	p := newPool(ks...)
	seen := map[string]int{}
	for _, id := range pickIDs(t, p, Random, 2000) {
		seen[id]++
	}
	if seen["key_3"] != 0 || seen[""] != 0 {
		t.Fatalf("random used an inactive key or failed: %v", seen)
	}
	for _, id := range []string{"key_0", "key_1", "key_2", "key_4"} {
		if seen[id] < 350 || seen[id] > 650 {
			t.Errorf("%s picked %d times of 2000, want about 500", id, seen[id])
		}
	}
}

func TestNoKeyAvailable(t *testing.T) {
	ks := keys("gemini", 2)
	ks[0].IsActive = false
	ks[1].MaxRequests = 2
	p := newPool(ks...)
	for _, s := range Strategies {
		p.ResetUsage("gemini", func([]string) error { return nil })
		got := pickIDs(t, p, s, 3)
		if got[0] != "key_1" || got[1] != "key_1" || got[2] != "" {
			t.Errorf("%v: got %v, want key_1 twice then none", s, got)
		}
	}
	if p.Pick("openai", RoundRobin) != nil {
		t.Error("pick from a provider without keys returned a key")
	}
}

func TestMaxRequestsHoldsUnderRace(t *testing.T) {
	ks := keys("gemini", 10)
	for i := range ks {
		ks[i].MaxRequests = 100
	}
	p := newPool(ks...)
	var wg sync.WaitGroup
	var mu sync.Mutex
	served := 0
	for g := range 8 {
		wg.Go(func() {
			for range 500 {
				e := p.Pick("gemini", Strategies[g%3])
				if e == nil {
					continue
				}
				e.Finish(Outcome{Success: true})
				mu.Lock()
				served++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if served != 1000 {
		t.Fatalf("served %d requests, want exactly 1000 (10 keys × maxRequests 100)", served)
	}
	for _, e := range p.Entries("gemini") {
		if u := e.Usage(); u.Requests != 100 {
			t.Errorf("%s: %d requests, want 100", e.ID(), u.Requests)
		}
	}
}

func TestResetMakesKeysAvailableAgain(t *testing.T) {
	ks := keys("gemini", 2)
	ks[0].MaxRequests, ks[1].MaxRequests = 1, 1
	p := newPool(ks...)
	pickIDs(t, p, LeastUsed, 2)
	if p.Pick("gemini", LeastUsed) != nil {
		t.Fatal("keys at their limit still serve")
	}
	var gotIDs []string
	n, err := p.ResetUsage("gemini", func(ids []string) error { gotIDs = ids; return nil })
	if err != nil || n != 2 || len(gotIDs) != 2 {
		t.Fatalf("reset = %d, %v, ids %v", n, err, gotIDs)
	}
	for _, s := range Strategies {
		if p.Pick("gemini", s) == nil {
			t.Errorf("%v: no key after reset", s)
		}
		p.ResetUsage("gemini", func([]string) error { return nil })
	}
	// A failing store reset changes nothing in memory.
	pickIDs(t, p, RoundRobin, 1)
	if _, err := p.ResetUsage("gemini", func([]string) error { return errors.New("boom") }); err == nil {
		t.Fatal("reset error was swallowed")
	}
	if c := p.Counts("gemini"); c.Available != 1 {
		t.Fatalf("after failed reset: %+v, want 1 available", c)
	}
}

func TestUpdateAndRemove(t *testing.T) {
	p := newPool(keys("gemini", 3)...)
	e, _ := p.Entry("key_1")
	k := e.Key()
	k.IsActive = false
	if err := p.Update(k); err != nil {
		t.Fatal(err)
	}
	if got := pickIDs(t, p, RoundRobin, 4); fmt.Sprint(got) != "[key_0 key_2 key_0 key_2]" {
		t.Fatalf("after deactivating key_1: %v", got)
	}
	if err := p.Update(Key{ID: "nope"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update unknown: %v", err)
	}
	if n := p.Remove("key_0", "nope"); n != 1 {
		t.Fatalf("removed %d", n)
	}
	if got := pickIDs(t, p, LeastUsed, 2); fmt.Sprint(got) != "[key_2 key_2]" {
		t.Fatalf("after removing key_0: %v", got)
	}
	if _, ok := p.FindSecret("gemini", "secret-gemini-000000"); ok {
		t.Fatal("removed key still found by secret")
	}
	if e, ok := p.FindSecret("gemini", "secret-gemini-000002"); !ok || e.ID() != "key_2" {
		t.Fatal("FindSecret missed key_2")
	}
	if c := p.Counts("gemini"); c != (Counts{Total: 2, Active: 1, Available: 1}) {
		t.Fatalf("counts %+v", c)
	}
}

func TestFlushDeltas(t *testing.T) {
	p := New(func() time.Time { return t0 })
	p.Load(keys("gemini", 2), map[string]Usage{"key_0": {Requests: 10, Successes: 9, Failures: 1}})
	e := p.Pick("gemini", RoundRobin) // key_0
	e.Finish(Outcome{Error: &LastError{Status: 429, Message: "slow down", At: t0}})
	var got []UsageDelta
	if err := p.Flush(func(d []UsageDelta) error { got = d; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != "key_0" || got[0].Requests != 1 || got[0].Failures != 1 || got[0].LastError == nil || !got[0].LastUsed.Equal(t0) {
		t.Fatalf("deltas %+v", got)
	}
	// Nothing new: nothing to write.
	called := false
	p.Flush(func([]UsageDelta) error { called = true; return nil })
	if called {
		t.Fatal("flush wrote with no change")
	}
	// A failed write is retried with the same and newer deltas.
	e = p.Pick("gemini", LeastUsed) // key_1
	e.Finish(Outcome{Success: true})
	if err := p.Flush(func([]UsageDelta) error { return errors.New("down") }); err == nil {
		t.Fatal("flush error swallowed")
	}
	e.Finish(Outcome{Success: true})
	p.Flush(func(d []UsageDelta) error { got = d; return nil })
	if len(got) != 1 || got[0].ID != "key_1" || got[0].Requests != 1 || got[0].Successes != 2 {
		t.Fatalf("after failed flush: %+v", got)
	}
}

// A flush of many keys comes in batches of at most FlushBatch, in id
// order; a batch that fails is written again next time, with the ones
// after it, and the batches before it are not.
func TestFlushInBatches(t *testing.T) {
	n := 2*FlushBatch + 100
	p := New(func() time.Time { return t0 })
	p.Load(keys("gemini", n), nil)
	for range n {
		p.Pick("gemini", RoundRobin).Finish(Outcome{Success: true})
	}
	var sizes []int
	written := map[string]int64{}
	fail := 2 // the second batch fails once
	write := func(d []UsageDelta) error {
		if len(d) > FlushBatch {
			t.Fatalf("a batch of %d deltas, over %d", len(d), FlushBatch)
		}
		if !slices.IsSortedFunc(d, func(a, b UsageDelta) int { return strings.Compare(a.ID, b.ID) }) {
			t.Fatal("a batch out of id order")
		}
		if fail--; fail == 0 {
			return errors.New("disk full")
		}
		sizes = append(sizes, len(d))
		for _, x := range d {
			written[x.ID] += x.Requests
		}
		return nil
	}
	if err := p.Flush(write); err == nil {
		t.Fatal("the failed batch's error was swallowed")
	}
	if len(sizes) != 1 || len(written) != FlushBatch {
		t.Fatalf("before the failure: batches %v, %d keys written", sizes, len(written))
	}
	if err := p.Flush(write); err != nil {
		t.Fatal(err)
	}
	if want := []int{FlushBatch, FlushBatch, 100}; !slices.Equal(sizes, want) {
		t.Fatalf("batches %v, want %v", sizes, want)
	}
	for i := range n {
		if id := fmt.Sprintf("key_%d", i); written[id] != 1 {
			t.Fatalf("%s written with %d requests, want 1 (lost or counted twice)", id, written[id])
		}
	}
}

func TestAbortedCountsNeither(t *testing.T) {
	p := newPool(keys("gemini", 1)...)
	e := p.Pick("gemini", RoundRobin)
	if e.InFlight() != 1 {
		t.Fatalf("in flight %d", e.InFlight())
	}
	e.Finish(Outcome{Aborted: true})
	u := e.Usage()
	if u.Requests != 1 || u.Successes != 0 || u.Failures != 0 || e.InFlight() != 0 {
		t.Fatalf("usage %+v inflight %d", u, e.InFlight())
	}
}

func TestBitsetNext(t *testing.T) {
	b := newBitset(130)
	for _, i := range []int{3, 64, 129} {
		b.set(i)
	}
	tests := []struct{ from, want int }{{0, 3}, {3, 3}, {4, 64}, {65, 129}, {129, 129}, {0, 3}}
	for _, tt := range tests {
		if got := b.next(tt.from); got != tt.want {
			t.Errorf("next(%d) = %d, want %d", tt.from, got, tt.want)
		}
	}
	b.clear(3)
	if got := b.next(100); got != 129 {
		t.Errorf("next(100) = %d", got)
	}
	b.clear(129)
	if got := b.next(100); got != 64 {
		t.Errorf("wrap: next(100) = %d, want 64", got)
	}
	b.clear(64)
	if got := b.next(5); got != -1 || b.count() != 0 {
		t.Errorf("empty: next = %d, count %d", got, b.count())
	}
}

func TestValidationAndMask(t *testing.T) {
	good := Key{Provider: "gemini", Secret: "AIzaSyA-1234567890abcdefx7Q2"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []Key{
		{Provider: "", Secret: "x"},
		{Provider: "Gemini!", Secret: "x"},
		{Provider: "gemini", Secret: ""},
		{Provider: "gemini", Secret: "has space"},
		{Provider: "gemini", Secret: "tab\tkey"},
		{Provider: "gemini", Secret: "k", MaxRequests: -1},
		{Provider: "gemini", Secret: "k", Weight: -2},
		{Provider: "gemini", Secret: "k", Description: "bell\a"},
		{Provider: "gemini", Secret: "k", Tags: []string{""}},
	}
	for _, k := range bad {
		if err := k.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalid", k, err)
		}
	}
	if got := Mask("AIzaSyA-1234567890abcdefx7Q2"); got != "AIza…x7Q2" {
		t.Errorf("Mask = %q", got)
	}
	if got := Mask("short1"); got != "s…t1" {
		t.Errorf("Mask short = %q", got)
	}
	if got := Mask("abc"); got != "…" {
		t.Errorf("Mask tiny = %q", got)
	}
	id := NewKeyID(time.UnixMilli(1234567890123))
	if len(id) != len("key_1234567890123_abc123") || id[:18] != "key_1234567890123_" {
		t.Errorf("NewKeyID = %q", id)
	}
	tags, err := NormalizeTags([]string{" prod ", "backup", "prod"})
	if err != nil || fmt.Sprint(tags) != "[prod backup]" {
		t.Errorf("NormalizeTags = %v, %v", tags, err)
	}
	for name, want := range map[string]Strategy{"": RoundRobin, "roundRobin": RoundRobin, "least_used": LeastUsed, "RANDOM": Random} {
		if got, err := ParseStrategy(name); err != nil || got != want {
			t.Errorf("ParseStrategy(%q) = %v, %v", name, got, err)
		}
	}
	if _, err := ParseStrategy("fastest"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseStrategy(fastest) = %v", err)
	}
}

func TestTokenCountsFlushSyncAndReset(t *testing.T) {
	p := New(func() time.Time { return t0 })
	p.Load(keys("openai", 1), map[string]Usage{"key_0": {Requests: 1, PromptTokens: 100, CompletionTokens: 10}})
	e, _ := p.Entry("key_0")
	e.AddTokens(5, 3)
	e.AddTokens(-1, 0) // nonsense counts are ignored
	if u := e.Usage(); u.PromptTokens != 105 || u.CompletionTokens != 13 {
		t.Fatalf("usage %+v, want 105 prompt and 13 completion tokens", u)
	}
	var got []UsageDelta
	p.Flush(func(d []UsageDelta) error { got = d; return nil })
	if len(got) != 1 || got[0].PromptTokens != 5 || got[0].CompletionTokens != 3 || got[0].Requests != 0 {
		t.Fatalf("flushed %+v, want only the 5/3 tokens counted since Load", got)
	}
	// Another instance counted 50 more prompt tokens.
	p.Sync(keys("openai", 1), map[string]Usage{"key_0": {Requests: 1, PromptTokens: 155, CompletionTokens: 13}})
	if u := e.Usage(); u.PromptTokens != 155 || u.CompletionTokens != 13 {
		t.Fatalf("after Sync: %+v, want 155/13", u)
	}
	p.ResetUsage("openai", func([]string) error { return nil })
	if u := e.Usage(); u.PromptTokens != 0 || u.CompletionTokens != 0 {
		t.Fatalf("after ResetUsage: %+v, want no tokens", u)
	}
}
