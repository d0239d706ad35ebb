package pool

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable fake clock.
type clock struct{ ns atomic.Int64 }

func newClock() *clock               { c := &clock{}; c.ns.Store(t0.UnixNano()); return c }
func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }

func TestCoolingKeyRestsUntilItsTime(t *testing.T) {
	for _, s := range Strategies {
		t.Run(s.String(), func(t *testing.T) {
			c := newClock()
			p := New(c.now)
			p.Load(keys("gemini", 3), nil)
			e0, _ := p.Entry("key_0")
			p.Cool(e0, c.now().Add(10*time.Second), "429")
			p.Cool(e0, c.now().Add(time.Second), "shorter") // never shortens
			for range 60 {
				e := p.Pick("gemini", s)
				if e == nil || e.ID() == "key_0" {
					t.Fatalf("picked %v while key_0 cools", e)
				}
				e.Finish(Outcome{Success: true})
			}
			if got := p.Counts("gemini"); got.Cooling != 1 || got.Available != 2 {
				t.Fatalf("counts while cooling %+v", got)
			}
			if until, reason := e0.Cooling(c.now()); !until.Equal(t0.Add(10*time.Second)) || reason != "429" {
				t.Fatalf("Cooling() = %v %q", until, reason)
			}
			c.add(11 * time.Second)
			seen := false
			for range 200 {
				e := p.Pick("gemini", s)
				seen = seen || e.ID() == "key_0"
				e.Finish(Outcome{Success: true})
			}
			if !seen {
				t.Fatal("key_0 never came back after its rest")
			}
		})
	}
}

func TestUncoolRestoresAtOnce(t *testing.T) {
	c := newClock()
	p := New(c.now)
	p.Load(keys("gemini", 2), nil)
	e0, _ := p.Entry("key_0")
	e1, _ := p.Entry("key_1")
	p.Cool(e1, c.now().Add(time.Minute), "a")
	p.Cool(e0, c.now().Add(time.Hour), "b")
	if p.Pick("gemini", LeastUsed) != nil {
		t.Fatal("picked while all cool")
	}
	p.Uncool(e0) // not at the top of the rest heap
	for _, s := range Strategies {
		if e := p.Pick("gemini", s); e == nil || e.ID() != "key_0" {
			t.Fatalf("%v after Uncool: %v", s, e)
		}
	}
}

func TestDisableAndEnable(t *testing.T) {
	p := newPool(keys("gemini", 2)...)
	e0, _ := p.Entry("key_0")
	k := p.Disable(e0, "API_KEY_INVALID", t0)
	if k.DisabledReason != "API_KEY_INVALID" || !k.DisabledAt.Equal(t0) {
		t.Fatalf("disabled key %+v", k)
	}
	for _, s := range Strategies {
		for range 10 {
			if e := p.Pick("gemini", s); e == nil || e.ID() == "key_0" {
				t.Fatalf("%v picked %v", s, e)
			}
		}
	}
	if c := p.Counts("gemini"); c.Disabled != 1 || c.Available != 1 || c.Active != 2 {
		t.Fatalf("counts %+v", c)
	}
	p.Enable(e0)
	if got := pickIDs(t, p, LeastUsed, 1); got[0] != "key_0" {
		t.Fatalf("after enable: %v", got)
	}
}

func TestWeightedFollowsWeights(t *testing.T) {
	ks := keys("gemini", 3)
	ks[0].Weight, ks[1].Weight, ks[2].Weight = 1, 3, 0 // 0 means 1
	p := newPool(ks...)
	n := map[string]int{}
	for _, id := range pickIDs(t, p, Weighted, 5000) {
		n[id]++
	}
	// Expect 1:3:1 of 5000 = 1000, 3000, 1000.
	for id, want := range map[string]int{"key_0": 1000, "key_1": 3000, "key_2": 1000} {
		if n[id] < want*8/10 || n[id] > want*12/10 {
			t.Errorf("%s picked %d times, want about %d", id, n[id], want)
		}
	}
}

func TestLeastBusyAvoidsLoadedKeys(t *testing.T) {
	p := newPool(keys("gemini", 2)...)
	busy, _ := p.Entry("key_0")
	// Hold 50 requests open on key_0.
	for busy.InFlight() < 50 {
		if e := p.Pick("gemini", RoundRobin); e.ID() != "key_0" {
			e.Finish(Outcome{Success: true})
		}
	}
	n := map[string]int{}
	for _, id := range pickIDs(t, p, LeastBusy, 400) {
		n[id]++
	}
	// key_0 wins only when both draws land on it: about a quarter.
	if n["key_0"] > 160 || n["key_1"] < 240 {
		t.Fatalf("leastBusy spread %v, want key_1 to take most", n)
	}
}

func TestStrategyNames(t *testing.T) {
	for _, s := range Strategies {
		got, err := ParseStrategy(s.String())
		if err != nil || got != s {
			t.Errorf("round trip %v: %v %v", s, got, err)
		}
	}
	if s, _ := ParseStrategy("p2c"); s != LeastBusy {
		t.Error("p2c alias")
	}
	_ = fmt.Sprint
}

func TestPickExceptSkipsTried(t *testing.T) {
	for _, s := range Strategies {
		p := newPool(keys("gemini", 3)...)
		var tried []*Entry
		for range 3 {
			e := p.PickExcept("gemini", s, tried)
			if e == nil {
				t.Fatalf("%v: no key after %d tries", s, len(tried))
			}
			for _, x := range tried {
				if x == e {
					t.Fatalf("%v: picked %s twice", s, e.ID())
				}
			}
			tried = append(tried, e)
		}
		if e := p.PickExcept("gemini", s, tried); e != nil {
			t.Fatalf("%v: picked %s with every key tried", s, e.ID())
		}
		var total int64
		for _, e := range p.Entries("gemini") {
			total += e.Usage().Requests
		}
		if total != 3 {
			t.Fatalf("%v: %d requests counted for 3 picks", s, total)
		}
	}
}

func TestNextAvailable(t *testing.T) {
	c := newClock()
	p := New(c.now)
	ks := keys("gemini", 3)
	p.Load(ks, nil)
	if _, ok := p.NextAvailable("gemini"); ok {
		t.Fatal("nothing rests, yet a return time")
	}
	e0, _ := p.Entry("key_0")
	e1, _ := p.Entry("key_1")
	e2, _ := p.Entry("key_2")
	p.Cool(e0, c.now().Add(time.Hour), "")
	p.Cool(e1, c.now().Add(time.Minute), "")
	p.Disable(e2, "dead", c.now())
	got, ok := p.NextAvailable("gemini")
	if !ok || !got.Equal(c.now().Add(time.Minute)) {
		t.Fatalf("NextAvailable = %v %v", got, ok)
	}
	p.Enable(e2)
	if n := p.Servable("gemini"); n != 3 {
		t.Fatalf("servable %d, want 3", n)
	}
}

func TestSyncWithSharedStore(t *testing.T) {
	p := New(func() time.Time { return t0 })
	ks := keys("gemini", 3)
	for i := range ks {
		ks[i].Revision = 1
		ks[i].MaxRequests = 10
	}
	p.Load(ks, map[string]Usage{"key_0": {Requests: 4}})
	// This instance serves 2 requests on key_0 and flushes them.
	for range 2 {
		e := p.Pick("gemini", LeastUsed)
		if e.ID() == "key_0" {
			t.Fatal("leastUsed picked the busiest key")
		}
		e.Finish(Outcome{Success: true})
	}
	p.Flush(func([]UsageDelta) error { return nil })
	e1, _ := p.Entry("key_1")
	// Another instance: key_1 edited (revision 2), key_2 deleted, key_3
	// added; key_0 used 5 more times there, key_1 6 more; and key_1's
	// counts include this instance's flushed request.
	edited := ks[1]
	edited.Revision, edited.Description = 2, "edited elsewhere"
	added := Key{ID: "key_3", Provider: "gemini", Secret: "s3", IsActive: true, CreatedAt: t0.Add(time.Hour), Revision: 1}
	p.Sync([]Key{ks[0], edited, added}, map[string]Usage{
		"key_0": {Requests: 9},
		"key_1": {Requests: e1.Usage().Requests + 6, Successes: 7},
	})
	if e0, _ := p.Entry("key_0"); e0.Usage().Requests != 9 {
		t.Fatalf("key_0 requests %d, want 9", e0.Usage().Requests)
	}
	if got := e1.Usage(); got.Requests != 7 || e1.Key().Description != "edited elsewhere" {
		t.Fatalf("key_1 %+v %q", got, e1.Key().Description)
	}
	if _, ok := p.Entry("key_2"); ok || p.Len() != 3 {
		t.Fatalf("deleted key still there (len %d)", p.Len())
	}
	// A stale revision from the store does not undo a newer local one.
	e0, _ := p.Entry("key_0")
	p.Disable(e0, "invalid", t0) // revision 2 locally
	p.Sync([]Key{ks[0], edited, added}, map[string]Usage{"key_0": {Requests: 9}, "key_1": {Requests: 7, Successes: 7}})
	if e0.Key().DisabledReason == "" {
		t.Fatal("sync with an older revision re-enabled a key disabled here")
	}
	// key_0 at 9 of 10: one more request, then it is exhausted cluster-wide.
	p.Enable(e0)
	got := 0
	for range 20 {
		if e := p.Pick("gemini", RoundRobin); e != nil && e.ID() == "key_0" {
			got++
		}
	}
	if got != 1 {
		t.Fatalf("key_0 served %d more, want 1 (maxRequests counts other instances)", got)
	}
	// A reset elsewhere: the store's totals drop; the pool follows.
	p.Sync([]Key{ks[0], edited, added}, map[string]Usage{})
	// Only this instance's unflushed request is left.
	if n := e0.Usage().Requests; n != 1 {
		t.Fatalf("after a reset elsewhere key_0 has %d requests, want 1", n)
	}
}
