package journal

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/pool"
)

func rec(seq uint64, id string, n int64) Record {
	return Record{Seq: seq, Instance: "i-test", Entries: []Entry{{ID: id, Epoch: 7, Requests: n, Successes: n - 1, Failures: 1,
		LastUsed: time.Date(2026, 11, 25, 8, 0, int(seq), 0, time.UTC), LastError: &pool.LastError{Status: 429, Message: "slow down"}}}}
}

func TestAppendSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "kv-usage.journal")
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []Record{rec(1, "a", 3), rec(2, "b", 5)}
	for _, r := range want {
		if err := j.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	// Not closed: as after kill -9, but a second Open in this process
	// needs the lock released.
	j.unlock()
	j2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	if got := j2.Records(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen: %+v, want %+v", got, want)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("journal file mode: %v %v", info.Mode(), err)
	}
}

func TestTornLastRecordIsIgnored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv-usage.journal")
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	j.Append(rec(1, "a", 3))
	j.Append(rec(2, "b", 5))
	j.Close()
	whole, _ := os.ReadFile(path)
	first, _ := Read(path)
	if len(first) != 2 {
		t.Fatalf("%d records", len(first))
	}
	// Every cut inside the second record, and a flipped byte in it,
	// leaves the first record and only it.
	cut := len(whole) - 1
	for ; cut > 0; cut-- {
		os.WriteFile(path, whole[:cut], 0o600)
		if got, _ := Read(path); len(got) == 1 {
			break
		}
	}
	secondStart := cut
	for n := secondStart; n < len(whole); n++ {
		if err := os.WriteFile(path, whole[:n], 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := Read(path)
		if err != nil || len(got) != 1 || got[0].Seq != 1 {
			t.Fatalf("cut at %d of %d: %+v %v", n, len(whole), got, err)
		}
	}
	flipped := append([]byte(nil), whole...)
	flipped[len(flipped)-3] ^= 0x20
	os.WriteFile(path, flipped, 0o600)
	if got, _ := Read(path); len(got) != 1 {
		t.Fatalf("a damaged last record was read: %+v", got)
	}
	// Open cuts the torn tail, so a new record follows a whole one.
	os.WriteFile(path, whole[:len(whole)-4], 0o600)
	j, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Append(rec(3, "c", 1)); err != nil {
		t.Fatal(err)
	}
	j.Close()
	got, _ := Read(path)
	if len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 3 {
		t.Fatalf("after a torn tail and an append: %+v", got)
	}
}

func TestCompactKeepsLaterRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv-usage.journal")
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	for i := uint64(1); i <= 5; i++ {
		j.Append(rec(i, "a", int64(i)))
	}
	if err := j.Compact(3); err != nil {
		t.Fatal(err)
	}
	j.Append(rec(6, "a", 6))
	for _, got := range [][]Record{j.Records(), must(Read(path))} {
		var seqs []uint64
		for _, r := range got {
			seqs = append(seqs, r.Seq)
		}
		if !reflect.DeepEqual(seqs, []uint64{4, 5, 6}) {
			t.Fatalf("after Compact(3) and an append: seqs %v", seqs)
		}
	}
	if err := j.Replace(nil); err != nil {
		t.Fatal(err)
	}
	if got := must(Read(path)); len(got) != 0 {
		t.Fatalf("after Replace(nil): %+v", got)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("a temporary file was left: %v", err)
	}
}

func TestOneWriterAtATime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv-usage.journal")
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open: %v, want in use", err)
	}
	j.Close()
	j2, err := Open(path)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	j2.Close()
}

func must(r []Record, err error) []Record {
	if err != nil {
		panic(err)
	}
	return r
}

func TestMergeSumsUnflushedRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv-usage.journal")
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	j.Append(rec(1, "a", 100)) // flushed already, its compaction lost
	j.Append(rec(2, "a", 2))
	j.Append(rec(3, "a", 3))
	r4 := rec(4, "b", 4)
	r4.Entries = append(r4.Entries, Entry{ID: "a", Epoch: 8, Requests: 1}) // after a reset
	j.Append(r4)
	j.Append(rec(5, "a", 5)) // counted after the flush attempt began
	if err := j.Merge(1, 4, "i-new"); err != nil {
		t.Fatal(err)
	}
	got := must(Read(path))
	if len(got) != 2 || got[0].Seq != 4 || got[0].Instance != "i-new" || got[1].Seq != 5 {
		t.Fatalf("after Merge(1, 4): %+v", got)
	}
	want := []Entry{
		{ID: "a", Epoch: 7, Requests: 5, Successes: 3, Failures: 2, LastUsed: rec(3, "a", 0).Entries[0].LastUsed, LastError: &pool.LastError{Status: 429, Message: "slow down"}},
		{ID: "b", Epoch: 7, Requests: 4, Successes: 3, Failures: 1, LastUsed: rec(4, "b", 0).Entries[0].LastUsed, LastError: &pool.LastError{Status: 429, Message: "slow down"}},
		{ID: "a", Epoch: 8, Requests: 1},
	}
	if !reflect.DeepEqual(got[0].Entries, want) {
		t.Fatalf("merged entries:\n%+v\nwant\n%+v", got[0].Entries, want)
	}
}
