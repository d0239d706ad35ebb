package pool

import (
	"hash/maphash"
	"iter"
)

// index finds entries by a key K (an id; a provider and secret). It maps a
// 64-bit hash of the key to the entry, not the key itself, and compares
// the key the entry holds on every hit, so it keeps no copy of any string:
// 16 bytes a slot where a map[string]*Entry takes 24 and a map keyed by
// provider and secret 40. A key whose hash another key already holds (one
// in 2^64 pairs) goes to a small map of its own.
type index[K comparable] struct {
	hash  func(K) uint64
	keyOf func(*Entry) K // the key an entry is indexed by, from its current configuration
	m     map[uint64]*Entry
	more  map[K]*Entry // keys whose hash another key holds; nil while none
}

func newIndex[K comparable](n int, hash func(K) uint64, keyOf func(*Entry) K) *index[K] {
	return &index[K]{hash: hash, keyOf: keyOf, m: make(map[uint64]*Entry, n)}
}

// get returns the entry indexed by k.
func (ix *index[K]) get(k K) (*Entry, bool) {
	if e, ok := ix.m[ix.hash(k)]; ok && ix.keyOf(e) == k {
		return e, true
	}
	e, ok := ix.more[k]
	return e, ok
}

// put indexes e by k, replacing the entry k indexed before, if any.
func (ix *index[K]) put(k K, e *Entry) {
	h := ix.hash(k)
	if cur, ok := ix.m[h]; ok && ix.keyOf(cur) != k {
		if ix.more == nil {
			ix.more = map[K]*Entry{}
		}
		ix.more[k] = e
		return
	}
	ix.m[h] = e
	delete(ix.more, k)
}

// del removes k. The entry k indexes must still hold k (change an entry's
// key only after removing it).
func (ix *index[K]) del(k K) {
	h := ix.hash(k)
	if cur, ok := ix.m[h]; ok && ix.keyOf(cur) == k {
		delete(ix.m, h)
	}
	delete(ix.more, k)
}

// len returns how many keys are indexed.
func (ix *index[K]) len() int { return len(ix.m) + len(ix.more) }

// all yields every indexed entry, in no order. The loop may delete keys.
func (ix *index[K]) all() iter.Seq[*Entry] {
	return func(yield func(*Entry) bool) {
		for _, e := range ix.m {
			if !yield(e) {
				return
			}
		}
		for _, e := range ix.more {
			if !yield(e) {
				return
			}
		}
	}
}

// secretRef is what the pool finds keys by secret with.
type secretRef struct{ provider, secret string }

var indexSeed = maphash.MakeSeed()

func hashID(id string) uint64 { return maphash.String(indexSeed, id) }

func hashSecret(s secretRef) uint64 {
	return maphash.String(indexSeed, s.secret) ^ maphash.String(indexSeed, s.provider)*0x9e3779b97f4a7c15
}

func entryID(e *Entry) string { return e.cfg.Load().id() }

func entrySecret(e *Entry) secretRef {
	r := e.cfg.Load()
	return secretRef{r.provider(), r.secret()}
}

func newIDIndex(n int) *index[string] { return newIndex(n, hashID, entryID) }

func newSecretIndex(n int) *index[secretRef] { return newIndex(n, hashSecret, entrySecret) }
