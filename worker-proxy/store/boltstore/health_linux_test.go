package boltstore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/store"
)

// failWrites makes the data file refuse writes for real: the descriptor
// bbolt writes through is replaced by a read-only one of the same file, so
// pwrite and fdatasync fail in the kernel as on a dead disk. The returned
// function puts the writable descriptor back.
func failWrites(t *testing.T, s *Store) (restore func()) {
	t.Helper()
	fd := int(s.file.Fd())
	saved, err := syscall.Dup(fd) // keeps the open file (and its lock) alive
	if err != nil {
		t.Fatal(err)
	}
	ro, err := os.Open(s.db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := syscall.Dup3(int(ro.Fd()), fd, syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := syscall.Dup3(saved, fd, syscall.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		syscall.Close(saved)
	}
}

func TestHealthReportsFailingWrites(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "keypool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var hr store.HealthReporter = s
	if h := hr.Health(); !h.OK {
		t.Fatalf("new store: %+v", h)
	}
	k := pool.Key{ID: "key_a", Provider: "openai", Secret: "sk-test-health-0001", IsActive: true}
	if err := s.PutKeys(t.Context(), k); err != nil {
		t.Fatal(err)
	}

	// A refusal by the store's rules is not a disk problem.
	dup := k
	dup.ID = "key_b"
	if err := s.PutKeys(t.Context(), dup); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("duplicate: %v", err)
	}
	if h := hr.Health(); !h.OK {
		t.Fatalf("a refused duplicate degraded the store: %+v", h)
	}

	restore := failWrites(t, s)
	err = s.AddUsage(t.Context(), []pool.UsageDelta{{ID: "key_a", Requests: 1}})
	if err == nil {
		restore()
		t.Fatal("AddUsage succeeded on a file that refuses writes")
	}
	h := hr.Health()
	if h.OK || h.Since.IsZero() || !strings.Contains(h.Detail, "keypool.db") {
		restore()
		t.Fatalf("after a failed write: %+v (error %v)", h, err)
	}
	t.Logf("degraded: %s", h.Detail)
	since := h.Since
	k2 := pool.Key{ID: "key_c", Provider: "openai", Secret: "sk-test-health-0002", IsActive: true}
	if err := s.PutKeys(t.Context(), k2); err == nil {
		restore()
		t.Fatal("PutKeys succeeded on a file that refuses writes")
	}
	if h := hr.Health(); h.OK || !h.Since.Equal(since) {
		restore()
		t.Fatalf("a second failure: %+v, want degraded since %v", h, since)
	}

	restore()
	if err := s.AddUsage(t.Context(), []pool.UsageDelta{{ID: "key_a", Requests: 1}}); err != nil {
		t.Fatalf("write after the disk came back: %v", err)
	}
	if h := hr.Health(); !h.OK || h.Detail != "" {
		t.Fatalf("after a successful write: %+v", h)
	}
	c, err := s.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Keys) != 1 || c.Usage["key_a"].Requests != 1 {
		t.Fatalf("after recovery: %d keys, usage %+v; want the one key and the one request written", len(c.Keys), c.Usage["key_a"])
	}
}
