// Package journal keeps usage counts that a shared store has not flushed
// yet in a local file, so that a crash (kill -9, power loss) loses none of
// them: the store appends each batch of counts it takes in, replays the
// file when it starts, and compacts it after each successful flush.
//
// # File format
//
// A sequence of records, each an 8-byte header (the payload's length and
// its CRC-32C, both big-endian uint32) followed by the payload, a Record in
// JSON. Reading stops at the first record that is cut short or fails its
// checksum: a write torn by a crash. Open cuts the file back to its last
// whole record. A sibling file, path + ".lock", is locked while a Journal
// is open, so two processes never write one journal.
package journal

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/keypool/keypool/worker-proxy/pool"
)

// Entry is one key's usage counted in one batch.
type Entry struct {
	ID string `json:"id"`
	// Epoch is the key's usage epoch when counted (the store's reset
	// stamp): counts of another epoch no longer add up.
	Epoch     int64           `json:"e,omitempty"`
	Requests  int64           `json:"r,omitempty"`
	Successes int64           `json:"s,omitempty"`
	Failures  int64           `json:"f,omitempty"`
	LastUsed  time.Time       `json:"lu,omitzero"`
	LastError *pool.LastError `json:"le,omitempty"`
	// Prompt and completion tokens.
	PromptTokens     int64 `json:"pt,omitempty"`
	CompletionTokens int64 `json:"ct,omitempty"`
}

// Record is one batch of counts. Seq grows by one per record; a store
// flush that covers every record up to Seq N stores N with the counts, so
// a replay skips exactly the records already flushed.
type Record struct {
	Seq      uint64  `json:"seq"`
	Instance string  `json:"inst"` // the store instance that counted them
	Entries  []Entry `json:"entries"`
}

const headerLen = 8

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Journal is an open journal file. Its methods are safe for concurrent use.
type Journal struct {
	mu     sync.Mutex
	path   string
	f      *os.File
	recs   []Record // the file's records, in order
	unlock func()
}

// Open opens the journal at path, creating it (mode 0600) and its
// directory (mode 0700) if missing, and reads its records. It fails if
// another process has the journal open.
func Open(path string) (*Journal, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, fmt.Errorf("journal: %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("journal: %w", err)
	}
	recs, good, err := decode(f)
	if err == nil {
		// Cut a torn tail, so the next record follows a whole one.
		err = f.Truncate(good)
	}
	if err == nil {
		_, err = f.Seek(good, io.SeekStart)
	}
	if err != nil {
		f.Close()
		unlock()
		return nil, fmt.Errorf("journal: %s: %w", path, err)
	}
	return &Journal{path: path, f: f, recs: recs, unlock: unlock}, nil
}

// Read returns the whole records of the journal at path without opening it
// for writing; a missing file has none.
func Read(path string) ([]Record, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	recs, _, err := decode(f)
	return recs, err
}

// decode reads records until the end or the first torn one; good is the
// length of the whole records.
func decode(r io.Reader) (recs []Record, good int64, err error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, 0, err
	}
	for len(data)-int(good) >= headerLen {
		rest := data[good:]
		n := binary.BigEndian.Uint32(rest)
		sum := binary.BigEndian.Uint32(rest[4:])
		if uint64(n) > uint64(len(rest)-headerLen) {
			break
		}
		payload := rest[headerLen : headerLen+int(n)]
		if crc32.Checksum(payload, castagnoli) != sum {
			break
		}
		var rec Record
		if json.Unmarshal(payload, &rec) != nil {
			break
		}
		recs = append(recs, rec)
		good += int64(headerLen + int(n))
	}
	return recs, good, nil
}

func encode(buf *bytes.Buffer, rec Record) error {
	payload, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	var h [headerLen]byte
	binary.BigEndian.PutUint32(h[:], uint32(len(payload)))
	binary.BigEndian.PutUint32(h[4:], crc32.Checksum(payload, castagnoli))
	buf.Write(h[:])
	buf.Write(payload)
	return nil
}

// Records returns the records in the journal, oldest first.
func (j *Journal) Records() []Record {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]Record(nil), j.recs...)
}

// Append adds a record and syncs the file: when it returns nil the record
// survives a crash.
func (j *Journal) Append(rec Record) error {
	var buf bytes.Buffer
	if err := encode(&buf, rec); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return errors.New("journal: closed")
	}
	if _, err := j.f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("journal: append: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal: sync: %w", err)
	}
	j.recs = append(j.recs, rec)
	return nil
}

// Compact drops the records with Seq up to through (flushed), keeping the
// later ones.
func (j *Journal) Compact(through uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	var keep []Record
	for _, r := range j.recs {
		if r.Seq > through {
			keep = append(keep, r)
		}
	}
	if len(keep) == len(j.recs) {
		return nil
	}
	return j.replaceLocked(keep)
}

// Merge drops the records with Seq up to after (flushed) and replaces
// those after it up to through by one record, Seq through and instance
// inst, that sums their counts per key and epoch (newest LastUsed, last
// LastError), keeping the file small while the shared store is
// unreachable. Call it only when no flush covering part of those records
// may still succeed.
func (j *Journal) Merge(after, through uint64, inst string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	type slot struct {
		id    string
		epoch int64
	}
	var (
		merged  = Record{Seq: through, Instance: inst}
		at      = map[slot]int{}
		n, rest = 0, []Record(nil)
	)
	dropped := 0
	for _, r := range j.recs {
		if r.Seq <= after {
			dropped++
			continue
		}
		if r.Seq > through {
			rest = append(rest, r)
			continue
		}
		n++
		for _, e := range r.Entries {
			k := slot{e.ID, e.Epoch}
			i, ok := at[k]
			if !ok {
				at[k] = len(merged.Entries)
				merged.Entries = append(merged.Entries, e)
				continue
			}
			m := &merged.Entries[i]
			m.Requests += e.Requests
			m.Successes += e.Successes
			m.Failures += e.Failures
			m.PromptTokens += e.PromptTokens
			m.CompletionTokens += e.CompletionTokens
			if e.LastUsed.After(m.LastUsed) {
				m.LastUsed = e.LastUsed
			}
			if e.LastError != nil {
				m.LastError = e.LastError
			}
		}
	}
	if n < 2 && dropped == 0 {
		return nil
	}
	if n == 0 {
		return j.replaceLocked(rest)
	}
	return j.replaceLocked(append([]Record{merged}, rest...))
}

// Replace makes recs the journal's whole content, atomically: after a
// crash the file holds either the old records or recs.
func (j *Journal) Replace(recs []Record) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.replaceLocked(recs)
}

func (j *Journal) replaceLocked(recs []Record) error {
	if j.f == nil {
		return errors.New("journal: closed")
	}
	var buf bytes.Buffer
	for _, r := range recs {
		if err := encode(&buf, r); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
	}
	tmp := j.path + ".tmp"
	if err := writeSynced(tmp, buf.Bytes()); err != nil {
		return fmt.Errorf("journal: compact: %w", err)
	}
	if err := os.Rename(tmp, j.path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("journal: compact: %w", err)
	}
	syncDir(filepath.Dir(j.path))
	f, err := os.OpenFile(j.path, os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("journal: reopen: %w", err)
	}
	j.f.Close()
	j.f, j.recs = f, append([]Record(nil), recs...)
	return nil
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir makes a rename in dir durable (best effort: not every system
// can sync a directory).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// Close closes the file and releases the lock.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	j.unlock()
	return err
}
