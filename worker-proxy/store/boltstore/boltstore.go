// Package boltstore is the default, embedded Store: one bbolt file on local
// disk.
//
// The file holds four buckets: "keys" (key id → JSON of pool.Key), "usage"
// (key id → JSON of pool.Usage), "tokens" (token id → JSON of
// pool.ClientToken) and "meta", whose "schema" entry names the layout
// version ("1"). Every method runs as a single bbolt transaction, so it
// writes all or nothing, and is durable (fsynced) when it returns.
//
// PutKeys refuses a second copy of a secret (store.ErrDuplicate), checked
// against fingerprints of the stored secrets kept in memory, built by the
// first Load (or the first key write, if that comes first) in the same
// pass that reads the keys. Health reports whether writes reach the file.
//
// Only one process may have the file open; a second Open fails after a short
// timeout with an error saying the file is locked.
package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/keypool/keypool/worker-proxy/internal/residency"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/store"
)

// SchemaVersion is the layout version this package reads and writes, kept
// in the "meta" bucket under "schema".
const SchemaVersion = "1"

// lockTimeout bounds how long Open waits for the file lock held by another
// process.
const lockTimeout = 2 * time.Second

var (
	bucketKeys   = []byte("keys")
	bucketUsage  = []byte("usage")
	bucketTokens = []byte("tokens")
	bucketMeta   = []byte("meta")
	metaSchema   = []byte("schema")
)

// Store is a store.Store over a bbolt file. It is safe for concurrent use;
// bbolt serialises writers.
type Store struct {
	db   *bolt.DB
	file *os.File // the data file bbolt writes through

	keysMu  sync.Mutex         // held over a key write and its fingerprint check, and over fps
	fps     store.Fingerprints // secrets of the stored keys, by fingerprint
	indexed bool               // fps holds every stored key

	healthMu sync.Mutex
	health   store.Health
}

var (
	_ store.Store          = (*Store)(nil)
	_ store.HealthReporter = (*Store)(nil)
)

// Open opens the data file at path, creating it (mode 0600) and its parent
// directory (mode 0700) if missing. It fails, rather than waiting, when
// another process holds the file: the error says the data file is locked
// and matches store.ErrUnavailable. A file that is not a valid data file
// (garbage, truncated, another schema version) gives an error, not a panic.
func Open(path string) (*Store, error) {
	return open(path, lockTimeout)
}

func open(path string, timeout time.Duration) (s *Store, err error) {
	if path == "" {
		return nil, errors.New("boltstore: open: empty path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("boltstore: open %s: create directory: %w", path, err)
	}

	// bbolt trusts the page structure of a file whose meta pages pass their
	// checksums: a truncated or damaged file can make it panic, or fault
	// on the memory map (fatal unless SetPanicOnFault). Report either as a
	// corrupt file. SetPanicOnFault covers this goroutine, which runs both
	// bolt.Open and initialise.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	var (
		db   *bolt.DB
		file *os.File // to release the lock if bolt.Open panics
	)
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				_ = db.Close()
			} else if file != nil {
				_ = file.Close()
			}
			s, err = nil, fmt.Errorf("boltstore: open %s: data file is corrupt: %v", path, r)
		}
	}()

	db, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout: timeout,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			file = f
			return f, err
		},
	})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("boltstore: open %s: data file is locked by another process: %w", path, store.ErrUnavailable)
	case err != nil && isIOError(err):
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	case err != nil:
		// bbolt rejected the file's contents: ErrInvalid, ErrChecksum,
		// ErrVersionMismatch, or an unexported "file size too small".
		return nil, fmt.Errorf("boltstore: open %s: data file is corrupt or not a keypool data file: %w", path, err)
	}

	if err := initialise(db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	return &Store{db: db, file: file, health: store.Health{OK: true}}, nil
}

// storedKey is what a key write needs of the stored copy it replaces.
type storedKey struct {
	Secret   string `json:"apiKey"`
	Revision int64  `json:"revision"`
}

// indexLocked records the fingerprint of every stored key's secret, once;
// keysMu must be held.
func (s *Store) indexLocked() error {
	if s.indexed {
		return nil
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		return forEachReleasing(tx, bucketKeys, func(id, v []byte) error {
			var k storedKey
			if err := json.Unmarshal(v, &k); err != nil {
				return fmt.Errorf("key %q: %w", id, err)
			}
			s.fps.Set(string(id), k.Secret)
			return nil
		})
	})
	if err != nil {
		s.fps = store.Fingerprints{}
		return fmt.Errorf("index secrets: %w", err)
	}
	s.releaseMapping()
	s.indexed = true
	return nil
}

// isIOError reports whether err comes from the operating system (opening,
// locking, reading or mapping the file) rather than from bbolt judging the
// file's contents.
func isIOError(err error) bool {
	var pathErr *fs.PathError
	var errno syscall.Errno
	return errors.As(err, &pathErr) || errors.As(err, &errno)
}

// initialise checks the file and creates the buckets and schema version of
// a new file.
func initialise(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		// A file cut short after its meta pages would make bbolt read past
		// the end of the mapping (SIGBUS), so check the high-water mark.
		info, err := os.Stat(db.Path())
		if err != nil {
			return err
		}
		if info.Size() < tx.Size() {
			return fmt.Errorf("data file is corrupt: truncated to %d bytes, want at least %d", info.Size(), tx.Size())
		}

		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			if meta, err = tx.CreateBucket(bucketMeta); err != nil {
				return err
			}
		}
		switch v := meta.Get(metaSchema); {
		case v == nil:
			if err := meta.Put(metaSchema, []byte(SchemaVersion)); err != nil {
				return err
			}
		case string(v) != SchemaVersion:
			return fmt.Errorf("data file has schema version %q, this program reads %q", v, SchemaVersion)
		}
		for _, name := range [][]byte{bucketKeys, bucketUsage, bucketTokens} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %q: %w", name, err)
			}
		}
		return nil
	})
}

// update runs fn in one read-write transaction unless ctx is already done.
// A transaction that fn accepted but the file refused (a write or fsync
// failing) degrades the store's health; the next one that commits heals it.
func (s *Store) update(ctx context.Context, op string, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: %s: %w", op, err)
	}
	var fnErr error
	if err := s.db.Update(func(tx *bolt.Tx) error { fnErr = fn(tx); return fnErr }); err != nil {
		if fnErr == nil {
			s.observe(op, err)
		}
		return fmt.Errorf("boltstore: %s: %w", op, err)
	}
	s.observe(op, nil)
	s.releaseMapping()
	return nil
}

// observe records whether a write reached the file.
func (s *Store) observe(op string, err error) {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	switch {
	case err == nil && !s.health.OK:
		s.health = store.Health{OK: true, Since: time.Now()}
	case err != nil:
		if s.health.OK {
			s.health.OK, s.health.Since = false, time.Now()
		}
		s.health.Detail = fmt.Sprintf("writing the data file %s failed (%s): %v", filepath.Base(s.db.Path()), op, err)
	}
}

// Health reports whether the last write reached the data file: a disk
// that fails writes degrades it until a write succeeds again.
func (s *Store) Health() store.Health {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	return s.health
}

// releaseMapping drops the data file's pages from this process's resident
// memory after a transaction read them through bbolt's memory map (a usage
// flush touches every page of the keys it updates; Load touches them all).
// The read transaction holds bbolt's map lock, so the mapping cannot move
// meanwhile. Without this, a 10,000-key file stays resident: about 7 MB of
// the process's RSS for data that is only read again at the next flush.
func (s *Store) releaseMapping() { residency.Release(s.db) }

// releaseEvery is how many records a scan of a whole bucket reads between
// two releases of the pages it read (forEachReleasing): a few hundred KB.
const releaseEvery = 2048

// scanReleased, when set, is called (in tests) after each release in a scan.
var scanReleased func()

// forEachReleasing is tx.Bucket(name).ForEach, dropping the data file's
// pages from this process's resident memory every releaseEvery records:
// Load reads the whole file, and at 100,000 keys the pages read would
// otherwise all be resident at once before the release after it (about
// 70 MB, the process's highest RSS of its life). tx is a read transaction,
// which holds bbolt's map lock, so the mapping cannot move meanwhile.
func forEachReleasing(tx *bolt.Tx, name []byte, fn func(k, v []byte) error) error {
	n := 0
	return tx.Bucket(name).ForEach(func(k, v []byte) error {
		if err := fn(k, v); err != nil {
			return err
		}
		if n++; n%releaseEvery == 0 {
			residency.DropPages(tx.DB().Info().Data, int(tx.Size()))
			if scanReleased != nil {
				scanReleased()
			}
		}
		return nil
	})
}

// Load returns every key, usage record and token. Keys and tokens are in id
// order; Usage is never nil.
func (s *Store) Load(ctx context.Context) (*store.Contents, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("boltstore: load: %w", err)
	}
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	index := !s.indexed // build the fingerprints in this same pass
	c := &store.Contents{Usage: make(map[string]pool.Usage)}
	err := s.db.View(func(tx *bolt.Tx) error {
		keys := tx.Bucket(bucketKeys)
		c.Keys = make([]pool.Key, 0, keys.Stats().KeyN)
		if err := forEachReleasing(tx, bucketKeys, func(id, v []byte) error {
			var k pool.Key
			if err := json.Unmarshal(v, &k); err != nil {
				return fmt.Errorf("key %q: %w", id, err)
			}
			c.Keys = append(c.Keys, k)
			if index {
				s.fps.Set(k.ID, k.Secret)
			}
			return nil
		}); err != nil {
			return err
		}
		if err := forEachReleasing(tx, bucketUsage, func(id, v []byte) error {
			var u pool.Usage
			if err := json.Unmarshal(v, &u); err != nil {
				return fmt.Errorf("usage of key %q: %w", id, err)
			}
			c.Usage[string(id)] = u
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketTokens).ForEach(func(id, v []byte) error {
			var t pool.ClientToken
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("token %q: %w", id, err)
			}
			c.Tokens = append(c.Tokens, t)
			return nil
		})
	})
	if err != nil {
		if index {
			s.fps = store.Fingerprints{}
		}
		return nil, fmt.Errorf("boltstore: load: %w", err)
	}
	s.indexed = true
	s.releaseMapping()
	return c, nil
}

// PutKeys creates or replaces keys by id, all or none. An empty id is an
// error. The keys' usage is left as it is.
func (s *Store) PutKeys(ctx context.Context, keys ...pool.Key) error {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	if err := s.indexLocked(); err != nil {
		return fmt.Errorf("boltstore: put keys: %w", err)
	}
	if err := s.fps.CheckNew(keys); err != nil {
		return fmt.Errorf("boltstore: put keys: %w", err)
	}
	replaced := make([]*string, len(keys)) // the secret each write replaced
	err := s.update(ctx, "put keys", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		for i, k := range keys {
			if k.ID == "" {
				return errors.New("key with empty id")
			}
			if old := b.Get([]byte(k.ID)); old != nil {
				var stored storedKey
				if err := json.Unmarshal(old, &stored); err != nil {
					return fmt.Errorf("key %q: stored value: %w", k.ID, err)
				}
				if k.Revision > 0 && stored.Revision >= k.Revision {
					return fmt.Errorf("key %q: revision %d is not newer than stored %d: %w", k.ID, k.Revision, stored.Revision, store.ErrConflict)
				}
				replaced[i] = &stored.Secret
			}
			v, err := json.Marshal(k)
			if err != nil {
				return fmt.Errorf("key %q: %w", k.ID, err)
			}
			if err := b.Put([]byte(k.ID), v); err != nil {
				return fmt.Errorf("key %q: %w", k.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, k := range keys {
		if old := replaced[i]; old != nil {
			s.fps.Remove(k.ID, *old)
		}
		s.fps.Set(k.ID, k.Secret)
	}
	return nil
}

// DeleteKeys removes keys and their usage by id, all or none. Unknown ids
// are ignored.
func (s *Store) DeleteKeys(ctx context.Context, ids ...string) error {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	if err := s.indexLocked(); err != nil {
		return fmt.Errorf("boltstore: delete keys: %w", err)
	}
	deleted := map[string]string{} // id → the secret it held
	err := s.update(ctx, "delete keys", func(tx *bolt.Tx) error {
		keys, usage := tx.Bucket(bucketKeys), tx.Bucket(bucketUsage)
		for _, id := range ids {
			if id == "" {
				continue // bbolt rejects empty keys; no record has one
			}
			if v := keys.Get([]byte(id)); v != nil {
				var stored storedKey
				if err := json.Unmarshal(v, &stored); err != nil {
					return fmt.Errorf("key %q: stored value: %w", id, err)
				}
				deleted[id] = stored.Secret
			}
			if err := keys.Delete([]byte(id)); err != nil {
				return fmt.Errorf("key %q: %w", id, err)
			}
			if err := usage.Delete([]byte(id)); err != nil {
				return fmt.Errorf("usage of key %q: %w", id, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for id, secret := range deleted {
		s.fps.Remove(id, secret)
	}
	return nil
}

// AddUsage applies the deltas to the stored usage with pool.Usage.Apply, all
// or none, in order. Deltas of ids not in the "keys" bucket are dropped.
func (s *Store) AddUsage(ctx context.Context, deltas []pool.UsageDelta) error {
	return s.update(ctx, "add usage", func(tx *bolt.Tx) error {
		keys, usage := tx.Bucket(bucketKeys), tx.Bucket(bucketUsage)
		// Lookups go through one cursor per bucket, which reuses its
		// search stack (Bucket.Get allocates one per call), in id order,
		// so consecutive deltas walk neighbouring pages.
		deltas = slices.Clone(deltas)
		slices.SortStableFunc(deltas, func(a, b pool.UsageDelta) int { return strings.Compare(a.ID, b.ID) })
		kc, uc := keys.Cursor(), usage.Cursor()
		var id []byte
		for _, d := range deltas {
			if d.ID == "" {
				continue
			}
			id = append(id[:0], d.ID...)
			// A usage record exists only beside its key (DeleteKeys removes
			// both), so the keys bucket, and its pages, are read only for
			// a key's first usage.
			var u pool.Usage
			if k, v := uc.Seek(id); v != nil && bytes.Equal(k, id) {
				if err := json.Unmarshal(v, &u); err != nil {
					return fmt.Errorf("usage of key %q: %w", d.ID, err)
				}
			} else if k, _ := kc.Seek(id); !bytes.Equal(k, id) {
				continue
			}
			v, err := json.Marshal(u.Apply(d))
			if err != nil {
				return fmt.Errorf("usage of key %q: %w", d.ID, err)
			}
			if err := usage.Put(id, v); err != nil {
				return fmt.Errorf("usage of key %q: %w", d.ID, err)
			}
		}
		return nil
	})
}

// ResetUsage zeroes the request, success and failure counts of the named
// keys, keeping LastUsed and LastError, all or none. Unknown ids, and keys
// without usage, are ignored.
func (s *Store) ResetUsage(ctx context.Context, ids []string) error {
	return s.update(ctx, "reset usage", func(tx *bolt.Tx) error {
		usage := tx.Bucket(bucketUsage)
		for _, id := range ids {
			if id == "" {
				continue
			}
			v := usage.Get([]byte(id))
			if v == nil {
				continue
			}
			var u pool.Usage
			if err := json.Unmarshal(v, &u); err != nil {
				return fmt.Errorf("usage of key %q: %w", id, err)
			}
			u.Requests, u.Successes, u.Failures, u.PromptTokens, u.CompletionTokens = 0, 0, 0, 0, 0
			v, err := json.Marshal(u)
			if err != nil {
				return fmt.Errorf("usage of key %q: %w", id, err)
			}
			if err := usage.Put([]byte(id), v); err != nil {
				return fmt.Errorf("usage of key %q: %w", id, err)
			}
		}
		return nil
	})
}

// PutToken creates or replaces a client token by id. An empty id is an
// error.
func (s *Store) PutToken(ctx context.Context, t pool.ClientToken) error {
	return s.update(ctx, "put token", func(tx *bolt.Tx) error {
		if t.ID == "" {
			return errors.New("token with empty id")
		}
		v, err := json.Marshal(t)
		if err != nil {
			return fmt.Errorf("token %q: %w", t.ID, err)
		}
		return tx.Bucket(bucketTokens).Put([]byte(t.ID), v)
	})
}

// DeleteToken removes a client token. It returns an error matching
// store.ErrNotFound if no token has that id.
func (s *Store) DeleteToken(ctx context.Context, id string) error {
	return s.update(ctx, "delete token", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		if id == "" || b.Get([]byte(id)) == nil {
			return fmt.Errorf("token %q: %w", id, store.ErrNotFound)
		}
		return b.Delete([]byte(id))
	})
}

// Close waits for running transactions, then closes the file and releases
// its lock. Closing twice is harmless; other calls after Close fail.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("boltstore: close: %w", err)
	}
	return nil
}

// metaAliases holds the admin API's model aliases (JSON object) in the
// "meta" bucket.
var metaAliases = []byte("aliases")

var _ store.AliasStore = (*Store)(nil)

// Aliases returns the stored model aliases.
func (s *Store) Aliases(ctx context.Context) (map[string]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("boltstore: aliases: %w", err)
	}
	out := map[string]string{}
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(metaAliases); v != nil {
			return json.Unmarshal(v, &out)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: aliases: %w", err)
	}
	return out, nil
}

// PutAliases replaces the stored model aliases.
func (s *Store) PutAliases(ctx context.Context, aliases map[string]string) error {
	v, err := json.Marshal(aliases)
	if err != nil {
		return fmt.Errorf("boltstore: put aliases: %w", err)
	}
	return s.update(ctx, "put aliases", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(metaAliases, v)
	})
}
