package server

import "testing"

// Putting a copy buffer back allocates nothing, and Get hands it out again.
func TestBufferPoolPutAllocatesNothing(t *testing.T) {
	var bp bufferPool
	if n := len(bp.Get()); n != copyBufferSize {
		t.Fatalf("buffer of %d bytes, want %d", n, copyBufferSize)
	}
	if a := testing.AllocsPerRun(1000, func() { bp.Put(bp.Get()) }); a != 0 {
		t.Fatalf("%v allocations per Get and Put, want 0", a)
	}
	bp.Put(make([]byte, 10)) // not one of its own: dropped
	if n := len(bp.Get()); n != copyBufferSize {
		t.Fatalf("buffer of %d bytes after a foreign Put", n)
	}
}
