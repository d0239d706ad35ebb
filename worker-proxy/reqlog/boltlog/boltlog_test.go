package boltlog

import (
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/internal/residency"
	"github.com/keypool/keypool/worker-proxy/reqlog"
)

// A busy log writes and prunes all over its file; the file's pages must
// not stay in the process's resident memory (before, a proxy's RSS grew
// with the log: 134 MB with 10 keys after a million requests), and every
// record kept must still be there.
func TestAppendLeavesNoFilePagesResident(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("resident pages are read from /proc/self/smaps")
	}
	path := filepath.Join(t.TempDir(), "requests.db")
	now := time.Date(2026, 12, 4, 4, 0, 0, 0, time.UTC)
	s, err := Open(path, reqlog.Bounds{Max: 5000}, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := uint64(now.Add(-time.Hour).UnixNano())
	const total, batch = 20000, 512
	for first := 0; first < total; first += batch {
		recs := make([]adminapi.RequestRecord, 0, batch)
		for i := first; i < min(first+batch, total); i++ {
			recs = append(recs, adminapi.RequestRecord{
				ID: reqlog.FormatID(base + uint64(i)), Time: now, Route: "api", Provider: "openai",
				Model: "gpt-4o-mini", Status: 200, Key: "sk-…" + strings.Repeat("x", 4),
			})
		}
		if err := s.Append(recs); err != nil {
			t.Fatal(err)
		}
	}
	kb, ok := residency.ResidentKB(path)
	if !ok {
		t.Skip("no /proc/self/smaps")
	}
	// A few pages (meta, freelist) may be touched again by the release's
	// own read transaction.
	if kb > 64 {
		t.Fatalf("after %d appended records %d KB of the log's file stay resident, want at most 64", total, kb)
	}
	got, _, err := s.Query(reqlog.Filter{Limit: 5})
	if err != nil || len(got) != 5 || got[0].ID != reqlog.FormatID(base+total-1) {
		t.Fatalf("newest records after pruning: %v, %v", got, err)
	}
	if kb, _ := residency.ResidentKB(path); kb > 64 {
		t.Fatalf("after a query %d KB stay resident", kb)
	}
}
