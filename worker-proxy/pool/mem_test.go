package pool

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// liveHeap returns the heap's live bytes after two collections.
func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// memKeys returns n keys shaped like the proxy's: ids of NewKeyID's form,
// 39-byte secrets, UTC times, split between two providers.
func memKeys(n int) []Key {
	out := make([]Key, n)
	for i := range out {
		prov := "gemini"
		if i%2 == 1 {
			prov = "openai"
		}
		at := t0.Add(time.Duration(i) * time.Millisecond)
		out[i] = Key{
			ID: fmt.Sprintf("key_%d_%06d", at.UnixMilli(), i), Provider: prov,
			Secret:   fmt.Sprintf("test-fake-secret-%022d", i),
			IsActive: true, CreatedAt: at, UpdatedAt: at, Revision: 1,
		}
	}
	return out
}

// BenchmarkPoolMemory reports the live heap the pool keeps per key at
// 100,000 keys (bytes/key, after a collection), loaded with usage for
// every key and after a pick and a flush of each: what the proxy holds
// under load. The timed part is meaningless; the metric is the point.
func BenchmarkPoolMemory(b *testing.B) {
	const n = 100000
	for b.Loop() {
		b.StopTimer()
		before := liveHeap()
		ks := memKeys(n)
		usage := make(map[string]Usage, n)
		for _, k := range ks {
			usage[k.ID] = Usage{Requests: 3, Successes: 2, Failures: 1, LastUsed: t0}
		}
		p := New(func() time.Time { return t0 })
		p.Load(ks, usage)
		ks, usage = nil, nil
		for range n {
			p.Pick("gemini", RoundRobin).Finish(Outcome{Success: true})
		}
		if err := p.Flush(func([]UsageDelta) error { return nil }); err != nil {
			b.Fatal(err)
		}
		after := liveHeap()
		runtime.KeepAlive(p)
		b.ReportMetric(float64(after-before)/n, "bytes/key")
		b.StartTimer()
	}
}
