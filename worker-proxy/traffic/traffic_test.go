package traffic

import (
	"sync"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestSeriesCountsPerMinuteAndProvider(t *testing.T) {
	c0 := &clock{t: time.Date(2026, 11, 25, 10, 0, 30, 0, time.UTC)}
	c := New(c0.now)
	c.Record("openai", Success, 0)
	c.Record("openai", Error, 2)
	c.Record("openai", Unserved, 0)
	c.Record("openai", Abandoned, 1)
	c0.add(2 * time.Minute)
	c.Record("gemini", Success, 1)

	got := c.Series(3)
	if got.BucketSeconds != 60 || got.Start != "2026-11-25T10:00:00.000Z" || got.Since != "2026-11-25T10:00:30.000Z" {
		t.Fatalf("header: %+v", got)
	}
	if len(got.Providers) != 2 || got.Providers[0].Provider != "gemini" || got.Providers[1].Provider != "openai" {
		t.Fatalf("providers: %+v", got.Providers)
	}
	want := []adminapi.TrafficBucket{{Requests: 4, Success: 1, Errors: 2, Unserved: 1, Retries: 3}, {}, {}}
	for i, b := range got.Providers[1].Buckets {
		if b != want[i] {
			t.Errorf("openai bucket %d = %+v, want %+v", i, b, want[i])
		}
	}
	if b := got.Providers[0].Buckets; len(b) != 3 || b[2] != (adminapi.TrafficBucket{Requests: 1, Success: 1, Retries: 1}) || b[0] != (adminapi.TrafficBucket{}) {
		t.Errorf("gemini buckets %+v", b)
	}
	// A shorter window leaves the old minute out.
	if b := c.Series(1).Providers[1].Buckets; len(b) != 1 || b[0] != (adminapi.TrafficBucket{}) {
		t.Errorf("last minute of openai: %+v", b)
	}
}

// A slot reused a day later starts from zero, and the window is clamped.
func TestSeriesForgetsAfterADay(t *testing.T) {
	c0 := &clock{t: time.Unix(1_800_000_000, 0)}
	c := New(c0.now)
	c.Record("openai", Success, 0)
	c0.add(Window * time.Minute)
	if b := c.Series(Window).Providers[0].Buckets; len(b) != Window || b[0] != (adminapi.TrafficBucket{}) || b[Window-1] != (adminapi.TrafficBucket{}) {
		t.Fatalf("a day later the old minute still counts: first %+v last %+v", b[0], b[Window-1])
	}
	c.Record("openai", Error, 0)
	s := c.Series(Window * 10)
	if n := len(s.Providers[0].Buckets); n != Window {
		t.Fatalf("window not clamped: %d buckets", n)
	}
	if b := s.Providers[0].Buckets[Window-1]; b != (adminapi.TrafficBucket{Requests: 1, Errors: 1}) {
		t.Fatalf("reused slot: %+v, want only the new error", b)
	}
	if b := c.Series(0).Providers[0].Buckets; len(b) != 1 {
		t.Fatalf("minutes 0 gave %d buckets, want 1", len(b))
	}
}

func TestRecordConcurrently(t *testing.T) {
	c := New(nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				c.Record("openai", Success, 0)
			}
		})
	}
	wg.Wait()
	b := c.Series(2).Providers[0].Buckets
	if n := b[0].Requests + b[1].Requests; n != 8000 {
		t.Fatalf("counted %d requests, want 8000", n)
	}
}

func BenchmarkRecord(b *testing.B) {
	c := New(nil)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Record("openai", Success, 0)
		}
	})
}
