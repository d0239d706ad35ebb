package cfkv

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/keypool/keypool/worker-proxy/journal"
	"github.com/keypool/keypool/worker-proxy/kvemu"
	"github.com/keypool/keypool/worker-proxy/pool"
)

// crash abandons s as kill -9 would: nothing flushed, the journal file
// just closed (the lock goes with the process).
func crash(s *Store) { s.journal.Close() }

func requests(t *testing.T, s *Store, id string) int64 {
	t.Helper()
	c, err := s.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return c.Usage[id].Requests
}

// Usage counted but not yet written to KV survives a crash through the
// journal, is written once, and is never counted twice: not on a second
// crash before the flush, nor on a crash between the flush and the
// journal's compaction.
func TestJournalKeepsUnflushedUsage(t *testing.T) {
	srv, ns := emulator(t, kvemu.Options{})
	cfg := testConfig(srv, ns, "i-journal")
	cfg.JournalPath = filepath.Join(t.TempDir(), "kv-usage.journal")
	reader := func() int64 { // what KV holds, as a fresh instance reads it
		return requests(t, open(t, testConfig(srv, ns, "i-reader")), "key_a")
	}

	s := open(t, cfg)
	if err := s.PutKeys(t.Context(), pool.Key{ID: "key_a", Provider: "openai", Secret: "sk-test-journal-01", Revision: 1}); err != nil {
		t.Fatal(err)
	}
	for range 3 { // three pool flushes, one journal record each
		if err := s.AddUsage(t.Context(), []pool.UsageDelta{{ID: "key_a", Requests: 2, Successes: 2}}); err != nil {
			t.Fatal(err)
		}
	}
	crash(s)
	if got := reader(); got != 0 {
		t.Fatalf("KV holds %d requests before any flush", got)
	}

	s = open(t, cfg)
	if got := requests(t, s, "key_a"); got != 6 {
		t.Fatalf("after a crash: %d requests, want 6", got)
	}
	crash(s) // again, before any flush
	s = open(t, cfg)
	if got := requests(t, s, "key_a"); got != 6 {
		t.Fatalf("after a second crash: %d requests, want 6", got)
	}

	// A flush whose compaction is lost (the crash came between them).
	before, err := os.ReadFile(cfg.JournalPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.FlushUsage(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := reader(); got != 6 {
		t.Fatalf("KV holds %d requests after the flush, want 6", got)
	}
	crash(s)
	if err := os.WriteFile(cfg.JournalPath, before, 0o600); err != nil {
		t.Fatal(err)
	}
	s = open(t, cfg)
	if got := requests(t, s, "key_a"); got != 6 {
		t.Fatalf("after a crash between flush and compaction: %d requests, want 6", got)
	}
	// New counts after that continue from there.
	s.AddUsage(t.Context(), []pool.UsageDelta{{ID: "key_a", Requests: 1}})
	crash(s)
	s = open(t, cfg)
	if got := requests(t, s, "key_a"); got != 7 {
		t.Fatalf("after the last crash: %d requests, want 7", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := reader(); got != 7 {
		t.Fatalf("KV holds %d requests after a clean stop, want 7", got)
	}
	s = open(t, cfg)
	if got := requests(t, s, "key_a"); got != 7 {
		t.Fatalf("after a clean stop and start: %d requests, want 7", got)
	}
	s.Close()
}

// Journal records of a key reset since they were counted no longer add
// up, as KV's own counts of the old epoch do not.
func TestJournalRespectsResets(t *testing.T) {
	srv, ns := emulator(t, kvemu.Options{})
	cfg := testConfig(srv, ns, "i-journal")
	cfg.JournalPath = filepath.Join(t.TempDir(), "kv-usage.journal")
	s := open(t, cfg)
	s.PutKeys(t.Context(), pool.Key{ID: "key_a", Provider: "openai", Secret: "sk-test-journal-02", Revision: 1})
	s.AddUsage(t.Context(), []pool.UsageDelta{{ID: "key_a", Requests: 4}})
	crash(s)
	other := open(t, testConfig(srv, ns, "i-other"))
	if err := other.ResetUsage(t.Context(), []string{"key_a"}); err != nil {
		t.Fatal(err)
	}
	s = open(t, cfg)
	if got := requests(t, s, "key_a"); got != 0 {
		t.Fatalf("after a reset elsewhere: %d requests, want 0", got)
	}
	s.Close()
}

// While KV refuses the usage write, the journal folds its records into one
// instead of growing, and still counts each request once.
func TestJournalFoldsWhileKVIsDown(t *testing.T) {
	srv, ns := emulator(t, kvemu.Options{})
	cfg := testConfig(srv, ns, "i-journal")
	cfg.JournalPath = filepath.Join(t.TempDir(), "kv-usage.journal")
	s := open(t, cfg)
	s.PutKeys(t.Context(), pool.Key{ID: "key_a", Provider: "openai", Secret: "sk-test-journal-03", Revision: 1})
	for range 5 {
		s.AddUsage(t.Context(), []pool.UsageDelta{{ID: "key_a", Requests: 1}})
	}
	srv.Emu.InjectFault(kvemu.Fault{Status: 503, Methods: []string{"PUT"}})
	if err := s.FlushUsage(t.Context()); err == nil {
		t.Fatal("flush succeeded while KV refuses writes")
	}
	recs, err := journal.Read(cfg.JournalPath)
	if err != nil || len(recs) != 1 || recs[0].Entries[0].Requests != 5 {
		t.Fatalf("journal after a failed flush: %+v %v; want one record of 5 requests", recs, err)
	}
	crash(s)
	srv.Emu.ClearFaults()
	s = open(t, cfg)
	if got := requests(t, s, "key_a"); got != 5 {
		t.Fatalf("after the outage and a crash: %d requests, want 5", got)
	}
	s.Close()
}
