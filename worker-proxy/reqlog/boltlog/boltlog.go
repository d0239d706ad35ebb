// Package boltlog is the request log's store in a bbolt file of its own
// (DATA_DIR/requests.db with STORE=bolt), apart from the key database so
// the log's writes never contend with key changes.
package boltlog

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/internal/residency"
	"github.com/keypool/keypool/worker-proxy/reqlog"
)

var bucketRecords = []byte("requests")

// maxKeptBuffer is the largest encoding buffer kept between batches.
const maxKeptBuffer = 4 << 20

// Bolt is a reqlog.Store in a bbolt file of its own: bucket "requests", keyed by
// the 8-byte big-endian ID, each value a record's JSON. Each Append is one
// transaction, fsynced, so a crash loses at most the batches not yet
// written, never part of one.
type Bolt struct {
	db  *bolt.DB
	b   reqlog.Bounds
	now func() time.Time

	mu    sync.Mutex // guards count and buf
	count int
	// buf holds a batch's encoded keys and values: bbolt keeps references
	// to them until the transaction ends, and the next batch reuses it.
	buf []byte
}

var _ reqlog.Store = (*Bolt)(nil)

// Open opens (creating, mode 0600) the log file at path; b.Max
// defaults to DefaultMax. now is the clock for MaxAge (nil: time.Now). It
// fails after a short wait if another process has the file open.
func Open(path string, b reqlog.Bounds, now func() time.Time) (*Bolt, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("request log: %w", err)
	}
	// The free page list is not written at each commit (bbolt rebuilds it
	// when it opens the file): the log commits often and frees pages at
	// each prune, so writing the list was a good part of a commit.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("request log: open %s: %w", path, err)
	}
	if now == nil {
		now = time.Now
	}
	s := &Bolt{db: db, b: b.WithDefaults(reqlog.DefaultMax), now: now}
	err = db.Update(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(bucketRecords)
		if err != nil {
			return err
		}
		s.count = bk.Stats().KeyN
		return s.pruneLocked(bk)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("request log: %s: %w", path, err)
	}
	return s, nil
}

func idKey(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

// Append writes recs in one transaction and prunes.
func (s *Bolt) Append(recs []adminapi.RequestRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	added := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketRecords)
		// IDs only grow: full pages split less and the file stays smaller.
		bk.FillPercent = 0.95
		buf := s.buf[:0]
		for i := range recs {
			r := &recs[i]
			id, err := reqlog.ParseID(r.ID)
			if err != nil {
				return fmt.Errorf("record id %q: %w", r.ID, err)
			}
			// Each key and value is a slice of buf. When buf grows, the
			// earlier slices keep the old array, never written again.
			start := len(buf)
			buf = binary.BigEndian.AppendUint64(buf, id)
			if buf, err = reqlog.AppendRecord(buf, r); err != nil {
				return err
			}
			if err := bk.Put(buf[start:start+8:start+8], buf[start+8:len(buf):len(buf)]); err != nil {
				return err
			}
		}
		if cap(buf) <= maxKeptBuffer {
			s.buf = buf
		}
		added = len(recs)
		s.count += added
		if err := s.pruneLocked(bk); err != nil {
			s.count -= added
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("request log: append: %w", err)
	}
	// The batch and the pruning touched pages all over the file, whose
	// mapping would otherwise stay resident and grow with the file (a
	// 100,000-record log is about 120 MB).
	residency.Release(s.db)
	return nil
}

// pruneLocked deletes the oldest records beyond Max and those older than
// MaxAge.
func (s *Bolt) pruneLocked(bk *bolt.Bucket) error {
	cutoff := idKey(uint64(s.now().Add(-s.b.MaxAge).UnixNano()))
	var del [][]byte
	c := bk.Cursor()
	excess := s.count - s.b.Max
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if excess <= len(del) && string(k) >= string(cutoff) {
			break
		}
		del = append(del, k)
	}
	for _, k := range del {
		if err := bk.Delete(k); err != nil {
			return err
		}
	}
	s.count -= len(del)
	return nil
}

// Query scans from the newest record (or the cursor) back.
func (s *Bolt) Query(f reqlog.Filter) ([]adminapi.RequestRecord, string, error) {
	var start []byte
	if f.Cursor != "" {
		c, err := reqlog.ParseID(f.Cursor)
		if err != nil {
			return nil, "", reqlog.ErrBadFilter
		}
		start = idKey(c)
	}
	cutoff := uint64(s.now().Add(-s.b.MaxAge).UnixNano())
	limit, stop := f.PageLimit(), max(f.StopAt(), cutoff)
	var out []adminapi.RequestRecord
	var next string
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRecords).Cursor()
		var k, v []byte
		if start == nil {
			k, v = c.Last()
		} else {
			k, v = c.Seek(start)
			if k == nil {
				k, v = c.Last()
			}
			for k != nil && string(k) >= string(start) {
				k, v = c.Prev()
			}
		}
		for scanned := 0; k != nil; k, v = c.Prev() {
			id := binary.BigEndian.Uint64(k)
			if id < stop {
				return nil
			}
			if scanned++; scanned > reqlog.ScanBudget {
				next = reqlog.FormatID(id + 1)
				return nil
			}
			var r adminapi.RequestRecord
			if err := json.Unmarshal(v, &r); err != nil {
				continue // not a record this version wrote; skip it
			}
			if !f.Match(&r) {
				continue
			}
			if len(out) == limit {
				next = out[len(out)-1].ID
				return nil
			}
			out = append(out, r)
		}
		return nil
	})
	residency.Release(s.db) // a query reads up to reqlog.ScanBudget records' pages
	if err != nil {
		return nil, "", fmt.Errorf("request log: query: %w", err)
	}
	return out, next, nil
}

// LastID is the newest record's ID.
func (s *Bolt) LastID() uint64 {
	var id uint64
	s.db.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bucketRecords).Cursor().Last(); k != nil {
			id = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	return id
}

// Count returns how many records the file holds.
func (s *Bolt) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// Close closes the file.
func (s *Bolt) Close() error {
	if err := s.db.Close(); err != nil && !errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return err
	}
	return nil
}

// Bounds says how much the store keeps.
func (s *Bolt) Bounds() reqlog.Bounds { return s.b }
