package pool

import (
	"math/bits"
	"sync/atomic"
)

// bitset is a fixed-size set of small integers whose bits are set and
// cleared atomically. The pool uses it as a hint of which keys can serve.
type bitset struct {
	words []atomic.Uint64
	n     int
}

func newBitset(n int) *bitset {
	return &bitset{words: make([]atomic.Uint64, (n+63)/64), n: n}
}

func (b *bitset) set(i int)      { b.words[i>>6].Or(1 << (uint(i) & 63)) }
func (b *bitset) clear(i int)    { b.words[i>>6].And(^(uint64(1) << (uint(i) & 63))) }
func (b *bitset) has(i int) bool { return b.words[i>>6].Load()&(1<<(uint(i)&63)) != 0 }

// next returns the first set bit at or after i, wrapping around once, or -1.
func (b *bitset) next(i int) int {
	if b.n == 0 {
		return -1
	}
	w := i >> 6
	// The tail of word w, at or after i.
	if v := b.words[w].Load() >> (uint(i) & 63); v != 0 {
		if j := i + bits.TrailingZeros64(v); j < b.n {
			return j
		}
	}
	for k := 1; k <= len(b.words); k++ {
		ww := (w + k) % len(b.words)
		v := b.words[ww].Load()
		if ww == w {
			// Back at the start: only the bits before i are left.
			v &= (uint64(1) << (uint(i) & 63)) - 1
		}
		if v != 0 {
			if j := ww<<6 + bits.TrailingZeros64(v); j < b.n {
				return j
			}
		}
	}
	return -1
}

func (b *bitset) count() int {
	c := 0
	for i := range b.words {
		c += bits.OnesCount64(b.words[i].Load())
	}
	return c
}
