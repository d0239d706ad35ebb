package pool

import (
	"testing"
	"time"
)

func TestModelRestSkipsOnlyThatPair(t *testing.T) {
	for _, s := range []Strategy{RoundRobin, Random, LeastUsed, Weighted, LeastBusy} {
		t.Run(s.String(), func(t *testing.T) {
			p := newPool(keys("gemini", 3)...)
			e0, _ := p.Entry("key_0")
			e1, _ := p.Entry("key_1")
			p.CoolModel(e0, "gemini-2.5-pro", t0.Add(time.Minute), "rate_limited")
			p.CoolModel(e1, "gemini-2.5-pro", t0.Add(2*time.Minute), "rate_limited")
			if !p.ModelRestsActive("gemini") {
				t.Fatal("ModelRestsActive false after a model rest")
			}
			for range 20 {
				e := p.PickFor("gemini", "gemini-2.5-pro", s, nil)
				if e == nil || e.ID() != "key_2" {
					t.Fatalf("pick for the resting model got %v, want key_2, the only key whose pair is not at rest", e)
				}
				e.Finish(Outcome{Success: true})
			}
			seen := map[string]bool{}
			for range 60 {
				e := p.PickFor("gemini", "gemini-2.5-flash", s, nil)
				if e == nil {
					t.Fatal("no key for another model")
				}
				seen[e.ID()] = true
				e.Finish(Outcome{Success: true})
			}
			if s != LeastBusy && s != LeastUsed && len(seen) != 3 {
				t.Fatalf("another model used keys %v, want all 3: a model rest must not rest the key", seen)
			}
			if !e0.AvailableFor("gemini-2.5-flash", t0) || e0.AvailableFor("gemini-2.5-pro", t0) {
				t.Fatal("AvailableFor does not follow the pair's rest")
			}
		})
	}
}

func TestModelRestNextAvailableAndStatus(t *testing.T) {
	now := t0
	p := New(func() time.Time { return now })
	p.Load(keys("gemini", 2), nil)
	e0, _ := p.Entry("key_0")
	e1, _ := p.Entry("key_1")
	p.CoolModel(e0, "m", t0.Add(time.Hour), "quota_exhausted")
	p.CoolModel(e0, "m", t0.Add(time.Minute), "shorter") // never shortens
	p.CoolModel(e1, "m", t0.Add(2*time.Hour), "quota_exhausted")
	p.Cool(e0, t0.Add(90*time.Minute), "rate_limited") // the key rests longer than its pair
	if e := p.PickFor("gemini", "m", RoundRobin, nil); e != nil {
		t.Fatalf("picked %s although every pair rests", e.ID())
	}
	got, ok := p.NextAvailableFor("gemini", "m")
	if !ok || !got.Equal(t0.Add(90*time.Minute)) {
		t.Fatalf("NextAvailableFor = %v %v, want the later of key_0's rests, t0+90m", got, ok)
	}
	rs := e0.ModelRests(now)
	if len(rs) != 1 || rs[0].Model != "m" || !rs[0].Until.Equal(t0.Add(time.Hour)) || rs[0].Reason != "quota_exhausted" {
		t.Fatalf("ModelRests = %+v", rs)
	}
	now = t0.Add(3 * time.Hour)
	if len(e0.ModelRests(now)) != 0 || p.ModelRestsActive("gemini") {
		t.Fatal("rests outlived their time")
	}
	if e := p.PickFor("gemini", "m", RoundRobin, nil); e == nil {
		t.Fatal("no key after every rest ended")
	}
	p.CoolModel(e1, "m", now.Add(time.Hour), "x")
	p.Uncool(e1)
	if len(e1.ModelRests(now)) != 0 {
		t.Fatal("Uncool left a model rest")
	}
	// No model, or a silly one, rests the whole key.
	p.CoolModel(e1, "", now.Add(time.Hour), "whole key")
	if u, _ := e1.Cooling(now); u.IsZero() {
		t.Fatal("an empty model did not rest the key")
	}
}

func TestProjects(t *testing.T) {
	ks := keys("gemini", 5)
	ks[0].Project, ks[1].Project, ks[2].Project = "111", "111", "222"
	p := newPool(ks...)
	if n, u := p.Projects("gemini"); n != 2 || u != 2 {
		t.Fatalf("Projects = %d, %d unknown; want 2, 2", n, u)
	}
	e3, _ := p.Entry("key_3")
	if k, ok := p.SetProject(e3, "111"); !ok || k.Project != "111" || k.Revision != 1 {
		t.Fatalf("SetProject on a key without one: %+v %v", k, ok)
	}
	e0, _ := p.Entry("key_0")
	if _, ok := p.SetProject(e0, "999"); ok || e0.Key().Project != "111" {
		t.Fatal("a learned project replaced the one set")
	}
	if _, ok := p.SetProject(e3, "bad/name"); ok {
		t.Fatal("an invalid project was set")
	}
	var ids []string
	for _, e := range p.SameProject("gemini", "111") {
		ids = append(ids, e.ID())
	}
	if len(ids) != 3 || ids[0] != "key_0" || ids[2] != "key_3" {
		t.Fatalf("SameProject = %v", ids)
	}
	if p.SameProject("gemini", "") != nil {
		t.Fatal("the empty project groups keys")
	}
}
