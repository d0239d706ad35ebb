package adminapi

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestFormatTimeMatchesLayout: FormatTime writes what time.Format with
// TimeLayout writes, across years, zones, and sub-millisecond parts.
func TestFormatTimeMatchesLayout(t *testing.T) {
	zone := time.FixedZone("test", -(7*3600 + 30*60))
	times := []time.Time{
		time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC),
		time.Date(2026, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(999, 3, 4, 5, 6, 7, 8_000_000, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-5, 6, 7, 8, 9, 10, 11, time.UTC),
		time.Date(2026, 3, 8, 1, 2, 3, 45_600_000, zone),
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		times = append(times, time.Unix(r.Int64N(1<<36)-1<<35, r.Int64N(1e9)).In(zone))
	}
	for _, tm := range times {
		if got, want := *FormatTime(tm), tm.UTC().Format(TimeLayout); got != want {
			t.Fatalf("FormatTime(%v) = %q, want %q", tm, got, want)
		}
	}
	if FormatTime(time.Time{}) != nil {
		t.Fatal("the zero time is not nil")
	}
}

func BenchmarkFormatTime(b *testing.B) {
	tm := time.Date(2026, 12, 4, 8, 15, 30, 123_456_789, time.UTC)
	b.Run("FormatTime", func(b *testing.B) {
		for b.Loop() {
			FormatTime(tm)
		}
	})
	b.Run("time.Format", func(b *testing.B) {
		for b.Loop() {
			s := tm.UTC().Format(TimeLayout)
			_ = &s
		}
	})
}
