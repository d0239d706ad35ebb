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

// requestModel reads the body once; a new body (an alias rewrote it) is
// read again.
func TestRequestModelReadOnce(t *testing.T) {
	st := &relayState{body: []byte(`{"model":"gpt-4o-mini","messages":[]}`)}
	if m := st.requestModel(); m != "gpt-4o-mini" {
		t.Fatalf("model %q", m)
	}
	if a := testing.AllocsPerRun(100, func() { st.requestModel() }); a != 0 {
		t.Fatalf("%v allocations reading the model again, want 0", a)
	}
	st.body, st.bodyModelD = []byte(`{"model":"gpt-4.1"}`), false
	if m := st.requestModel(); m != "gpt-4.1" {
		t.Fatalf("model after a new body %q", m)
	}
}
