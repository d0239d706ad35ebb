package boltstore

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/store"
	"github.com/keypool/keypool/worker-proxy/store/storetest"
)

func TestConformance(t *testing.T) {
	paths := map[store.Store]string{}
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Store {
			path := filepath.Join(t.TempDir(), "keypool.db")
			s, err := Open(path)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			paths[s] = path
			return s
		},
		Reopen: func(t *testing.T, s store.Store) store.Store {
			path := paths[s]
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			r, err := Open(path)
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			paths[r] = path
			return r
		},
		HonoursContext: true,
	})
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "data")
	path := filepath.Join(dir, "keypool.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()

	for _, tt := range []struct {
		path string
		want os.FileMode
	}{
		{dir, 0o700 | os.ModeDir},
		{path, 0o600},
	} {
		fi, err := os.Stat(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode(); got != tt.want {
			t.Errorf("mode of %s = %v, want %v", tt.path, got, tt.want)
		}
	}

	err = s.db.View(func(tx *bolt.Tx) error {
		for _, b := range []string{"keys", "usage", "tokens", "meta"} {
			if tx.Bucket([]byte(b)) == nil {
				t.Errorf("bucket %q missing", b)
			}
		}
		if got := string(tx.Bucket(bucketMeta).Get(metaSchema)); got != "1" {
			t.Errorf("meta schema = %q, want %q", got, "1")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenLockedFailsFast(t *testing.T) {
	t.Parallel() // waits for the lock timeout
	path := filepath.Join(t.TempDir(), "keypool.db")
	first, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer first.Close()

	start := time.Now()
	second, err := Open(path)
	elapsed := time.Since(start)
	if err == nil {
		second.Close()
		t.Fatal("second Open of a file in use succeeded, want an error")
	}
	if !strings.Contains(err.Error(), "data file is locked by another process") {
		t.Errorf("second Open: err = %q, want it to say the data file is locked", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("second Open: err = %q, want it to name %s", err, path)
	}
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("second Open: err = %v, want it to match store.ErrUnavailable", err)
	}
	if elapsed > lockTimeout+time.Second {
		t.Errorf("second Open took %v, want about %v", elapsed, lockTimeout)
	}

	// The first store is unharmed, and the file opens once it is closed.
	if err := first.PutKeys(t.Context(), pool.Key{ID: "a", Provider: "p", Secret: "s"}); err != nil {
		t.Fatalf("PutKeys on the first store: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	third, err := Open(path)
	if err != nil {
		t.Fatalf("Open after the first store closed: %v", err)
	}
	defer third.Close()
	c, err := third.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Keys) != 1 {
		t.Errorf("Load: %d keys, want 1", len(c.Keys))
	}
}

func TestOpenBadFile(t *testing.T) {
	random := make([]byte, 64<<10)
	rand.Read(random)

	// A valid data file cut short after its meta pages.
	valid := filepath.Join(t.TempDir(), "valid.db")
	s, err := Open(valid)
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]pool.Key, 2000)
	for i := range keys {
		keys[i] = pool.Key{ID: fmt.Sprintf("key_%04d", i), Provider: "p", Secret: fmt.Sprintf("s-test-%04d", i)}
	}
	if err := s.PutKeys(t.Context(), keys...); err != nil {
		t.Fatal(err)
	}
	s.Close()
	whole, err := os.ReadFile(valid)
	if err != nil {
		t.Fatal(err)
	}

	// A bbolt file of a later schema.
	later := filepath.Join(t.TempDir(), "later.db")
	db, err := bolt.Open(later, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		return b.Put(metaSchema, []byte("2"))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	laterData, err := os.ReadFile(later)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"random bytes", random, "corrupt"},
		{"text", []byte("not a database\n"), "corrupt"},
		{"zeros", make([]byte, 32<<10), "corrupt"},
		{"one page of random bytes", random[:4096], "corrupt"},
		{"truncated", whole[:4*4096], "corrupt"},
		{"meta pages zeroed", append(make([]byte, 2*4096), whole[2*4096:]...), "corrupt"},
		{"later schema", laterData, `schema version "2"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keypool.db")
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(path)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded, want an error")
			}
			t.Logf("Open: %v", err)
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "boltstore: open "+path) {
				t.Errorf("Open: err = %q, want it to start with %q and contain %q", err, "boltstore: open "+path, tt.want)
			}
			// The file is left as it was, for the user to inspect.
			if got, _ := os.ReadFile(path); !bytes.Equal(got, tt.data) {
				t.Error("Open changed the bad file")
			}
		})
	}
}

func TestEmptyFileIsInitialised(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keypool.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open of an empty file: %v", err)
	}
	defer s.Close()
	if _, err := s.Load(t.Context()); err != nil {
		t.Fatalf("Load: %v", err)
	}
}

func TestEmptyIDs(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "keypool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	good := pool.Key{ID: "a", Provider: "p", Secret: "s"}
	if err := s.PutKeys(ctx, good, pool.Key{Provider: "p", Secret: "s"}); err == nil {
		t.Error("PutKeys with an empty id: err = nil, want an error")
	}
	if err := s.PutToken(ctx, pool.ClientToken{Name: "x"}); err == nil {
		t.Error("PutToken with an empty id: err = nil, want an error")
	}
	if err := s.DeleteToken(ctx, ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteToken(\"\"): err = %v, want ErrNotFound", err)
	}
	for name, err := range map[string]error{
		"DeleteKeys": s.DeleteKeys(ctx, ""),
		"AddUsage":   s.AddUsage(ctx, []pool.UsageDelta{{Requests: 1}}),
		"ResetUsage": s.ResetUsage(ctx, []string{""}),
	} {
		if err != nil {
			t.Errorf("%s with an empty id: %v, want it ignored", name, err)
		}
	}
	// The failed PutKeys wrote nothing, not even its valid key.
	c, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Keys) != 0 || len(c.Tokens) != 0 || len(c.Usage) != 0 {
		t.Errorf("Load = %+v, want an empty store", c)
	}
}

func TestErrorsAfterClose(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "keypool.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Load(t.Context()); err == nil {
		t.Error("Load after Close: err = nil, want an error")
	}
	if err := s.PutKeys(t.Context(), pool.Key{ID: "a"}); err == nil || !strings.HasPrefix(err.Error(), "boltstore: put keys: ") {
		t.Errorf("PutKeys after Close: err = %v, want a boltstore: put keys: error", err)
	}
}
