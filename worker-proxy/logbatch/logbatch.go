// Package logbatch batches log lines into few writes. A relay writes one
// log line per request; written one by one to stderr, each costs a system
// call, which on a busy proxy is a visible share of a request's CPU.
package logbatch

import (
	"io"
	"sync"
	"time"
)

// maxBuffered is how many bytes wait before a write goes out at once.
const maxBuffered = 32 << 10

// Writer buffers what is written to it and passes it on within Delay, or
// at once when maxBuffered bytes wait. Each Write reaches the destination
// whole and in order. An idle Writer has no timer running. Safe for
// concurrent use.
type Writer struct {
	dst   io.Writer
	delay time.Duration

	mu    sync.Mutex
	buf   []byte
	timer *time.Timer // armed while buf holds something
	err   error       // the destination's first error, returned by Flush
}

// New returns a Writer to dst that holds lines for at most delay. A delay
// of 0 or less writes every line straight through.
func New(dst io.Writer, delay time.Duration) *Writer {
	return &Writer{dst: dst, delay: delay}
}

// Write buffers p. It never fails: a destination error is kept for Flush.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.delay <= 0 {
		w.writeLocked(p)
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	if len(w.buf) >= maxBuffered {
		w.flushLocked()
		return len(p), nil
	}
	if w.timer == nil {
		w.timer = time.AfterFunc(w.delay, func() { w.Flush() })
	}
	return len(p), nil
}

// Flush writes out what waits and returns the destination's first error.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushLocked()
	return w.err
}

func (w *Writer) flushLocked() {
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	if len(w.buf) == 0 {
		return
	}
	w.writeLocked(w.buf)
	if cap(w.buf) > 4*maxBuffered {
		w.buf = nil // a burst of huge lines: do not hold its memory
	} else {
		w.buf = w.buf[:0]
	}
}

func (w *Writer) writeLocked(p []byte) {
	if _, err := w.dst.Write(p); err != nil && w.err == nil {
		w.err = err
	}
}
