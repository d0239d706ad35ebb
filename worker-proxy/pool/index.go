package pool

import (
	"hash/maphash"
	"iter"
)

// index finds entries by a key K (an id; a provider and secret). It is an
// open-addressing hash table of entry pointers with linear probing: it
// keeps no copy of any key, but compares the key the entry holds, and a
// byte of each key's hash beside its slot lets a probe skip other keys
// without reading their entries. At most 4/5 full, it takes 9 to 18 bytes
// a key, where a map[string]*Entry takes about 30 and a map keyed by
// provider and secret about 50.
//
// An entry's key must not change while it is indexed: remove it, change
// it, put it back.
type index[K comparable] struct {
	hash  func(K) uint64
	keyOf func(*Entry) K // the key an entry is indexed by, from its current configuration
	slots []*Entry       // a power of two long, or empty; nil is a free slot
	tags  []uint8        // the top byte of the hash of slots[i]'s key
	n     int
}

func newIndex[K comparable](n int, hash func(K) uint64, keyOf func(*Entry) K) *index[K] {
	ix := &index[K]{hash: hash, keyOf: keyOf}
	if n > 0 {
		ix.resize(sizeFor(n))
	}
	return ix
}

// sizeFor returns the table size for n keys: a power of two, at least 8,
// at most 4/5 full.
func sizeFor(n int) int {
	size := 8
	for size*4 < n*5 {
		size *= 2
	}
	return size
}

func (ix *index[K]) resize(size int) {
	old := ix.slots
	ix.slots, ix.tags, ix.n = make([]*Entry, size), make([]uint8, size), 0
	for _, e := range old {
		if e != nil {
			ix.put(ix.keyOf(e), e)
		}
	}
}

// find returns k's slot, or -1.
func (ix *index[K]) find(k K) int {
	if ix.n == 0 {
		return -1
	}
	h := ix.hash(k)
	mask, tag := uint64(len(ix.slots)-1), uint8(h>>56)
	for i := h & mask; ; i = (i + 1) & mask {
		e := ix.slots[i]
		if e == nil {
			return -1
		}
		if ix.tags[i] == tag && ix.keyOf(e) == k {
			return int(i)
		}
	}
}

// get returns the entry indexed by k.
func (ix *index[K]) get(k K) (*Entry, bool) {
	if i := ix.find(k); i >= 0 {
		return ix.slots[i], true
	}
	return nil, false
}

// put indexes e by k, replacing the entry k indexed before, if any.
func (ix *index[K]) put(k K, e *Entry) {
	if (ix.n+1)*5 > len(ix.slots)*4 {
		ix.resize(max(8, 2*len(ix.slots)))
	}
	h := ix.hash(k)
	mask, tag := uint64(len(ix.slots)-1), uint8(h>>56)
	for i := h & mask; ; i = (i + 1) & mask {
		cur := ix.slots[i]
		if cur == nil {
			ix.slots[i], ix.tags[i] = e, tag
			ix.n++
			return
		}
		if ix.tags[i] == tag && ix.keyOf(cur) == k {
			ix.slots[i] = e
			return
		}
	}
}

// del removes k, if indexed, moving the keys after it in its run back so
// that no probe stops short of them.
func (ix *index[K]) del(k K) {
	at := ix.find(k)
	if at < 0 {
		return
	}
	mask := uint64(len(ix.slots) - 1)
	i := uint64(at)
	for j := (i + 1) & mask; ix.slots[j] != nil; j = (j + 1) & mask {
		// The key in j may fill the hole in i unless its own place lies
		// after i (cyclically, in the run up to j).
		home := ix.hash(ix.keyOf(ix.slots[j])) & mask
		if (j-home)&mask >= (j-i)&mask {
			ix.slots[i], ix.tags[i] = ix.slots[j], ix.tags[j]
			i = j
		}
	}
	ix.slots[i], ix.tags[i] = nil, 0
	ix.n--
}

// len returns how many keys are indexed.
func (ix *index[K]) len() int { return ix.n }

// all yields every indexed entry, in no order. The loop must not change
// the index.
func (ix *index[K]) all() iter.Seq[*Entry] {
	return func(yield func(*Entry) bool) {
		for _, e := range ix.slots {
			if e != nil && !yield(e) {
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
