package logbatch

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// countingWriter records each Write it gets.
type countingWriter struct {
	mu     sync.Mutex
	writes []string
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, string(p))
	return len(p), nil
}

func (c *countingWriter) get() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.writes...)
}

func TestLinesGoOutTogetherWithinTheDelay(t *testing.T) {
	dst := &countingWriter{}
	w := New(dst, 50*time.Millisecond)
	for i := range 100 {
		fmt.Fprintf(w, "line %d\n", i)
	}
	if got := dst.get(); len(got) != 0 {
		t.Fatalf("%d writes before the delay, want 0", len(got))
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(dst.get()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	got := dst.get()
	if len(got) != 1 {
		t.Fatalf("%d writes, want the 100 lines in 1", len(got))
	}
	var want strings.Builder
	for i := range 100 {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	if got[0] != want.String() {
		t.Fatalf("lines lost or reordered: %q", got[0])
	}
}

func TestFullBufferAndFlushWriteAtOnce(t *testing.T) {
	dst := &countingWriter{}
	w := New(dst, time.Hour)
	line := bytes.Repeat([]byte("x"), 1000)
	for range maxBuffered/1000 + 1 {
		w.Write(line)
	}
	if n := len(dst.get()); n != 1 {
		t.Fatalf("%d writes after %d bytes, want 1", n, maxBuffered)
	}
	w.Write([]byte("tail\n"))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := dst.get(); len(got) != 2 || got[1] != "tail\n" {
		t.Fatalf("writes after Flush: %d", len(got))
	}
	// Nothing waits: no timer left behind.
	if w.timer != nil {
		t.Fatal("a timer is armed with an empty buffer")
	}
}

func TestZeroDelayWritesThrough(t *testing.T) {
	dst := &countingWriter{}
	w := New(dst, 0)
	w.Write([]byte("a\n"))
	w.Write([]byte("b\n"))
	if got := dst.get(); len(got) != 2 {
		t.Fatalf("%d writes, want 2", len(got))
	}
}

type failing struct{}

func (failing) Write(p []byte) (int, error) { return 0, errors.New("disk full") }

func TestDestinationErrorReportedByFlush(t *testing.T) {
	w := New(failing{}, time.Hour)
	if _, err := w.Write([]byte("x\n")); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := w.Flush(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Flush: %v", err)
	}
}

func TestConcurrentWritesStayWhole(t *testing.T) {
	dst := &countingWriter{}
	w := New(dst, time.Millisecond)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				fmt.Fprintf(w, "g%d-%04d\n", g, i)
			}
		})
	}
	wg.Wait()
	w.Flush()
	all := strings.Join(dst.get(), "")
	lines := strings.Split(strings.TrimSuffix(all, "\n"), "\n")
	if len(lines) != 4000 {
		t.Fatalf("%d lines, want 4000", len(lines))
	}
	for _, l := range lines {
		if len(l) != len("g0-0000") {
			t.Fatalf("torn line %q", l)
		}
	}
}

func BenchmarkWrite(b *testing.B) {
	line := []byte(`time=2026-11-25T10:00:00.000Z level=INFO msg=relay provider=openai strategy=roundRobin key=key_1764064800000_a1b2c3 status=200 latency_ms=5.1` + "\n")
	for _, delay := range []time.Duration{0, 200 * time.Millisecond} {
		b.Run(delay.String(), func(b *testing.B) {
			w := New(discard{}, delay)
			for b.Loop() {
				w.Write(line)
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
