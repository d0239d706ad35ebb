package pool

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkPick measures one pick (and its Finish) per operation for every
// strategy at 10, 1,000 and 100,000 keys, from one goroutine and from
// GOMAXPROCS goroutines.
func BenchmarkPick(b *testing.B) {
	for _, n := range []int{10, 1000, 100000} {
		p := newPool(keys("gemini", n)...)
		for _, s := range Strategies {
			b.Run(fmt.Sprintf("%s/keys=%d/seq", s, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					e := p.Pick("gemini", s)
					if e == nil {
						b.Fatal("no key")
					}
					e.Finish(Outcome{Success: true})
				}
			})
			b.Run(fmt.Sprintf("%s/keys=%d/parallel", s, n), func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						e := p.Pick("gemini", s)
						if e == nil {
							b.Fatal("no key")
						}
						e.Finish(Outcome{Success: true})
					}
				})
			})
		}
	}
}

// BenchmarkPickSparse: 100,000 keys of which only every 1,000th can serve,
// the worst case for a scan: the bitset keeps it to one word per 64 keys.
func BenchmarkPickSparse(b *testing.B) {
	ks := keys("gemini", 100000)
	for i := range ks {
		ks[i].IsActive = i%1000 == 0
	}
	p := newPool(ks...)
	for _, s := range Strategies {
		b.Run(s.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Pick("gemini", s).Finish(Outcome{Success: true})
			}
		})
	}
}

// BenchmarkPickForModel compares, in one run, a plain Pick with PickFor a
// model while no pair rests (the relay's common case), while a tenth of
// the keys rest for that model, and while they rest for another model:
// 1,000 keys, round robin.
func BenchmarkPickForModel(b *testing.B) {
	const n = 1000
	run := func(b *testing.B, p *Pool, pick func() *Entry) {
		b.ReportAllocs()
		for b.Loop() {
			e := pick()
			if e == nil {
				b.Fatal("no key")
			}
			e.Finish(Outcome{Success: true})
		}
	}
	b.Run("Pick", func(b *testing.B) {
		p := newPool(keys("gemini", n)...)
		run(b, p, func() *Entry { return p.Pick("gemini", RoundRobin) })
	})
	b.Run("PickFor/no-rests", func(b *testing.B) {
		p := newPool(keys("gemini", n)...)
		run(b, p, func() *Entry { return p.PickFor("gemini", "gemini-2.5-pro", RoundRobin, nil) })
	})
	rest := func(model string) *Pool {
		p := newPool(keys("gemini", n)...)
		for i, e := range p.Entries("gemini") {
			if i%10 == 0 {
				p.CoolModel(e, model, t0.Add(time.Hour), "rate_limited")
			}
		}
		return p
	}
	b.Run("PickFor/tenth-resting", func(b *testing.B) {
		p := rest("gemini-2.5-pro")
		run(b, p, func() *Entry { return p.PickFor("gemini", "gemini-2.5-pro", RoundRobin, nil) })
	})
	b.Run("PickFor/other-model-resting", func(b *testing.B) {
		p := rest("gemini-2.5-flash")
		run(b, p, func() *Entry { return p.PickFor("gemini", "gemini-2.5-pro", RoundRobin, nil) })
	})
}
