//go:build unix

package boltlog

import (
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/reqlog"
)

// cpuTime is the process's user and system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkAppend writes batches of a busy proxy's records to a full log
// (every batch prunes as many as it adds); per record: CPU time and the
// bytes bbolt wrote.
func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{512, 4096} {
		b.Run(strconv.Itoa(batch), func(b *testing.B) {
			now := time.Date(2026, 12, 4, 4, 0, 0, 0, time.UTC)
			s, err := Open(filepath.Join(b.TempDir(), "requests.db"), reqlog.Bounds{Max: 20_000}, func() time.Time { return now })
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			id := uint64(now.Add(-time.Hour).UnixNano())
			recs := make([]adminapi.RequestRecord, batch)
			fill := func() {
				for i := range recs {
					id++
					recs[i] = adminapi.RequestRecord{ID: reqlog.FormatID(id), Time: now, Token: "team", TokenID: "tok_1", Route: "api",
						Provider: "openai", Model: "gpt-4o-mini", Strategy: "roundRobin", KeyID: "key_000001", Key: "sk-b…0001", Status: 200,
						Attempts: []adminapi.RequestAttempt{{KeyID: "key_000001", Key: "sk-b…0001", Class: "success"}}, LatencyMs: 1.234, TTFBMs: 0.9, PromptTokens: 9, CompletionTokens: 6}
				}
			}
			for range 40_000 / batch { // fill the log past Max first
				fill()
				if err := s.Append(recs); err != nil {
					b.Fatal(err)
				}
			}
			before, cpu0 := s.db.Stats().TxStats, cpuTime()
			n := 0
			b.ResetTimer()
			for b.Loop() {
				fill()
				if err := s.Append(recs); err != nil {
					b.Fatal(err)
				}
				n += batch
			}
			after, cpu1 := s.db.Stats().TxStats, cpuTime()
			b.ReportMetric(float64(after.GetWrite()-before.GetWrite())/float64(n), "pages/record")
			b.ReportMetric(float64(cpu1-cpu0)/float64(n), "cpu-ns/record")
		})
	}
}
