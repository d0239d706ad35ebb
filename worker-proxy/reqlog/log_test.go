package reqlog_test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/reqlog"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Records added from many goroutines are all written, with distinct,
// increasing IDs, in batches.
func TestLogWritesEveryRecord(t *testing.T) {
	st, err := reqlog.OpenBolt(filepath.Join(t.TempDir(), "requests.db"), reqlog.Bounds{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := reqlog.New(st, "bolt", reqlog.Options{BatchDelay: 20 * time.Millisecond, Logger: quiet})
	defer l.Close()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 250 {
				l.Add(adminapi.RequestRecord{Time: time.Now(), Provider: "openai", Status: 200, LatencyMs: float64(g*1000 + i)})
			}
		})
	}
	wg.Wait()
	l.Flush()
	resp, err := l.Query(reqlog.Filter{Limit: reqlog.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[float64]bool{}
	n := 0
	for f := (reqlog.Filter{Limit: reqlog.MaxLimit}); ; {
		resp, err := l.Query(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range resp.Records {
			if i > 0 && r.ID >= resp.Records[i-1].ID {
				t.Fatalf("IDs not decreasing: %s after %s", r.ID, resp.Records[i-1].ID)
			}
			seen[r.LatencyMs] = true
			n++
		}
		if resp.Next == "" {
			break
		}
		f.Cursor = resp.Next
	}
	if n != 2000 || len(seen) != 2000 {
		t.Fatalf("%d records (%d distinct) written, want 2000", n, len(seen))
	}
	if s := l.Stats(); s.Written != 2000 || s.Dropped != 0 || s.Failed != 0 {
		t.Fatalf("stats %+v", s)
	}
	if resp.Backend != "bolt" || resp.MaxAge != "168h0m0s" || resp.Max != reqlog.DefaultMax {
		t.Fatalf("response describes the log as %q %q %d", resp.Backend, resp.MaxAge, resp.Max)
	}
}

// slowStore holds every Append until released, like a disk that stalls.
type slowStore struct {
	reqlog.Store
	release chan struct{}
}

func (s *slowStore) Append(recs []adminapi.RequestRecord) error {
	<-s.release
	return s.Store.Append(recs)
}

// A stalled store never blocks Add: past the queue, records are dropped
// and counted.
func TestAddNeverBlocks(t *testing.T) {
	slow := &slowStore{Store: reqlog.NewRing(reqlog.Bounds{Max: 100_000}, nil), release: make(chan struct{})}
	l := reqlog.New(slow, "memory", reqlog.Options{BatchDelay: time.Millisecond, Logger: quiet})
	done := make(chan struct{})
	go func() {
		for range 50_000 {
			l.Add(adminapi.RequestRecord{Provider: "gemini"})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Add blocked while the store stalled")
	}
	close(slow.release)
	l.Flush()
	s := l.Stats()
	if s.Dropped == 0 || s.Written+s.Dropped != 50_000 {
		t.Fatalf("stats %+v: want some dropped and written+dropped = 50000", s)
	}
	l.Close()
}

// Reopened, the file has its records and new IDs continue after them even
// if the clock went back.
func TestBoltReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "requests.db")
	st, err := reqlog.OpenBolt(path, reqlog.Bounds{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := reqlog.New(st, "bolt", reqlog.Options{Logger: quiet})
	l.Add(adminapi.RequestRecord{Time: time.Now(), Provider: "openai", Status: 200})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = reqlog.OpenBolt(path, reqlog.Bounds{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	last := st.LastID()
	past := time.Now().Add(-time.Hour)
	l = reqlog.New(st, "bolt", reqlog.Options{Logger: quiet, Now: func() time.Time { return past }})
	defer l.Close()
	l.Add(adminapi.RequestRecord{Time: time.Now(), Provider: "gemini", Status: 200})
	l.Flush()
	resp, _ := l.Query(reqlog.Filter{})
	if len(resp.Records) != 2 || resp.Records[0].Provider != "gemini" || resp.Records[1].ID != reqlog.FormatID(last) {
		t.Fatalf("after reopen: %+v", resp.Records)
	}
}

const crashEnv = "REQLOG_CRASH_WRITER"

// TestCrashWriter is the child of TestKill9: it writes batches of 100
// records as fast as it can and prints each batch number once written.
func TestCrashWriter(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("the child process of TestKill9")
	}
	st, err := reqlog.OpenBolt(path, reqlog.Bounds{Max: 1_000_000}, nil)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	for b := 1; ; b++ {
		recs := make([]adminapi.RequestRecord, 100)
		now := uint64(time.Now().UnixNano())
		for i := range recs {
			recs[i] = adminapi.RequestRecord{ID: reqlog.FormatID(now + uint64(i)), Provider: "openai", Status: 200, LatencyMs: float64(b)}
		}
		if err := st.Append(recs); err != nil {
			fmt.Println("append:", err)
			os.Exit(1)
		}
		fmt.Println(b)
	}
}

// Killed with SIGKILL while writing, the log file opens again and holds
// every batch it reported written, and no part of a batch.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	path := filepath.Join(t.TempDir(), "requests.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashWriter$")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	reported := 0
	for sc.Scan() {
		n, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
		if err != nil {
			t.Fatalf("child: %s", sc.Text())
		}
		if reported = n; n >= 30 {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	io.Copy(io.Discard, out)
	cmd.Wait()
	if reported < 30 {
		t.Fatalf("the child reported %d batches", reported)
	}
	st, err := reqlog.OpenBolt(path, reqlog.Bounds{Max: 1_000_000}, nil)
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer st.Close()
	if n := st.Count(); n%100 != 0 || n < reported*100 {
		t.Fatalf("%d records after kill -9; want whole batches, at least %d", n, reported*100)
	}
	if _, _, err := st.Query(reqlog.Filter{Limit: reqlog.MaxLimit}); err != nil {
		t.Fatal(err)
	}
}
