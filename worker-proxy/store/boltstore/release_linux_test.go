package boltstore

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/keypool/keypool/worker-proxy/internal/residency"
	"github.com/keypool/keypool/worker-proxy/pool"
)

// residentKB returns the resident size of this process's mappings of path.
func residentKB(t *testing.T, path string) int {
	t.Helper()
	kb, ok := residency.ResidentKB(path)
	if !ok {
		t.Skip("no /proc/self/smaps")
	}
	return kb
}

// releaseKeys returns n keys and a usage delta for each; long gives each
// key a description, which spreads the keys over many more pages.
func releaseKeys(n int, long bool) ([]pool.Key, []pool.UsageDelta) {
	keys := make([]pool.Key, n)
	deltas := make([]pool.UsageDelta, n)
	for i := range keys {
		id := fmt.Sprintf("key_%06d", i)
		keys[i] = pool.Key{ID: id, Provider: "openai", Secret: fmt.Sprintf("sk-release-test-%06d", i), IsActive: true}
		if long {
			keys[i].Description = fmt.Sprintf("a description long enough to spread the keys over many pages %06d", i)
		}
		deltas[i] = pool.UsageDelta{ID: id, Requests: 1, Successes: 1}
	}
	return keys, deltas
}

// reopened writes keys and usage into a new data file, closes it and
// opens it again, as a restart finds it; it returns the store and the
// file's path.
func reopened(t *testing.T, keys []pool.Key, usage []pool.UsageDelta) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keypool.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutKeys(t.Context(), keys...); err != nil {
		t.Fatal(err)
	}
	if len(usage) > 0 {
		if err := s.AddUsage(t.Context(), usage); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// After Load and after a usage flush that touched every key, the data
// file's pages are no longer resident in this process, and the data is
// still all there.
func TestDataFilePagesReleased(t *testing.T) {
	const n = 5000
	keys, deltas := releaseKeys(n, false)
	s, path := reopened(t, keys, nil)
	st, _ := os.Stat(path)
	c, err := s.Load(t.Context())
	if err != nil || len(c.Keys) != n {
		t.Fatalf("load: %d keys, %v", len(c.Keys), err)
	}
	// Reading through the map makes pages resident; the release drops them.
	// A few pages (meta, freelist) may be touched again by the release's
	// own read transaction.
	const allowKB = 64
	if kb := residentKB(t, path); kb > allowKB {
		t.Fatalf("after Load %d KB of the %d KB data file stay resident, want at most %d", kb, st.Size()/1024, allowKB)
	}
	if err := s.AddUsage(t.Context(), deltas); err != nil {
		t.Fatal(err)
	}
	if kb := residentKB(t, path); kb > allowKB {
		t.Fatalf("after a flush of %d keys %d KB stay resident, want at most %d", n, kb, allowKB)
	}
	c, err = s.Load(t.Context())
	if err != nil || len(c.Usage) != n || c.Usage["key_004999"].Requests != 1 {
		t.Fatalf("usage after release: %d records, %+v, %v", len(c.Usage), c.Usage["key_004999"], err)
	}
}

// Load drops the pages it read every releaseEvery records, so at no point
// of it is much of the data file resident: not only after it.
func TestLoadReleasesPagesAsItReads(t *testing.T) {
	const n = 4*releaseEvery + 100
	keys, deltas := releaseKeys(n, true)
	s, path := reopened(t, keys, deltas)
	st, _ := os.Stat(path)
	var calls, most int
	scanReleased = func() {
		calls++
		most = max(most, residentKB(t, path))
	}
	defer func() { scanReleased = nil }()
	c, err := s.Load(t.Context())
	if err != nil || len(c.Keys) != n || len(c.Usage) != n {
		t.Fatalf("load: %d keys, %d usage records, %v", len(c.Keys), len(c.Usage), err)
	}
	// Twice n records (keys and usage): a release after every releaseEvery
	// of each bucket.
	if want := 2 * (n / releaseEvery); calls != want {
		t.Fatalf("%d releases during Load, want %d", calls, want)
	}
	// The pages of the branch the scan is on may be touched again; a few
	// pages, not the file.
	const allowKB = 64
	if most > allowKB {
		t.Fatalf("during Load up to %d KB of the %d KB data file were resident, want at most %d", most, st.Size()/1024, allowKB)
	}
}
