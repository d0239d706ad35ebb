package failure

import (
	"testing"
	"time"
)

func TestNextPacificMidnight(t *testing.T) {
	utc := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"summer", "2026-07-24T12:00:00Z", "2026-07-25T07:00:00Z"},
		{"summer, just before midnight", "2026-07-25T06:59:59Z", "2026-07-25T07:00:00Z"},
		{"exactly midnight gives the next one", "2026-07-25T07:00:00Z", "2026-07-26T07:00:00Z"},
		{"winter", "2026-01-15T20:00:00Z", "2026-01-16T08:00:00Z"},
		{"new year", "2026-12-31T20:00:00Z", "2027-01-01T08:00:00Z"},
		// 2026-03-08: clocks go from 02:00 PST to 03:00 PDT (a 23-hour day).
		{"eve of spring forward", "2026-03-07T12:00:00Z", "2026-03-08T08:00:00Z"},
		{"spring forward, before the change", "2026-03-08T09:00:00Z", "2026-03-09T07:00:00Z"},
		{"spring forward, after the change", "2026-03-08T12:00:00Z", "2026-03-09T07:00:00Z"},
		// 2026-11-01: clocks go from 02:00 PDT back to 01:00 PST (25 hours).
		{"eve of fall back", "2026-11-01T06:30:00Z", "2026-11-01T07:00:00Z"},
		{"fall back, first 01:30 (PDT)", "2026-11-01T08:30:00Z", "2026-11-02T08:00:00Z"},
		{"fall back, second 01:30 (PST)", "2026-11-01T09:30:00Z", "2026-11-02T08:00:00Z"},
		{"fall back, midnight", "2026-11-01T07:00:00Z", "2026-11-02T08:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := utc(tt.in)
			got := NextPacificMidnight(in)
			if !got.Equal(utc(tt.want)) {
				t.Errorf("NextPacificMidnight(%s) = %s, want %s", tt.in, got.UTC().Format(time.RFC3339), tt.want)
			}
			if got.Location().String() != "America/Los_Angeles" {
				t.Errorf("location %s, want America/Los_Angeles", got.Location())
			}
			// The instant is what counts, not the input's location.
			tokyo, err := time.LoadLocation("Asia/Tokyo")
			if err != nil {
				t.Fatal(err)
			}
			if g := NextPacificMidnight(in.In(tokyo)); !g.Equal(got) {
				t.Errorf("in Asia/Tokyo: %s, want %s", g, got)
			}
		})
	}
	// Day lengths across the changes.
	for _, tt := range []struct {
		day  string
		want time.Duration
	}{
		{"2026-03-08T08:00:00Z", 23 * time.Hour},
		{"2026-11-01T07:00:00Z", 25 * time.Hour},
		{"2026-07-24T07:00:00Z", 24 * time.Hour},
	} {
		start := utc(tt.day)
		if got := NextPacificMidnight(start).Sub(start); got != tt.want {
			t.Errorf("day starting %s lasts %s, want %s", tt.day, got, tt.want)
		}
	}
}

// The rule the edge build uses (no time zone database there) gives the
// database's answer at every instant from 2007, when the US rules took
// their present form, to 2060, and right around every change.
func TestPacificRuleMatchesTheDatabase(t *testing.T) {
	if pacific() == nil {
		t.Fatal("no America/Los_Angeles in a native build: tzdata.go should embed it")
	}
	check := func(in time.Time) {
		t.Helper()
		if got, want := nextPacificMidnightByRule(in), NextPacificMidnight(in); !got.Equal(want) {
			t.Fatalf("at %s: rule says %s, the database %s", in.UTC().Format(time.RFC3339), got.UTC().Format(time.RFC3339), want.UTC().Format(time.RFC3339))
		}
	}
	end := time.Date(2061, 1, 1, 0, 0, 0, 0, time.UTC)
	for in := time.Date(2007, 1, 1, 0, 0, 0, 0, time.UTC); in.Before(end); in = in.Add(7*time.Hour + 13*time.Minute + 17*time.Second) {
		check(in)
	}
	for y := 2007; y <= 2060; y++ {
		for _, change := range []time.Time{
			time.Date(y, time.March, nthSunday(y, time.March, 2), 10, 0, 0, 0, time.UTC),
			time.Date(y, time.November, nthSunday(y, time.November, 1), 9, 0, 0, 0, time.UTC),
		} {
			if change.In(pacific()).Weekday() != time.Sunday {
				t.Fatalf("%s is not a Sunday in Los Angeles", change)
			}
			for _, d := range []time.Duration{-25 * time.Hour, -2 * time.Hour, -time.Second, 0, time.Second, 2 * time.Hour, 22 * time.Hour, 23 * time.Hour, 25 * time.Hour} {
				check(change.Add(d))
			}
			// The zone changes exactly there.
			if pacificRule(change.Add(-time.Second)) == pacificRule(change) {
				t.Fatalf("no change of zone at %s", change)
			}
		}
	}
}

func TestMessageWait(t *testing.T) {
	tests := []struct {
		msg  string
		want time.Duration
	}{
		{"Please try again in 20s.", 20 * time.Second},
		{"Please try again in 174ms. Visit https://platform.openai.com", 174 * time.Millisecond},
		{"Please retry in 38.962214405s.", 38962214405 * time.Nanosecond},
		{"Please retry in 10h50m43.651927829s.", 10*time.Hour + 50*time.Minute + 43651927829*time.Nanosecond},
		{"PLEASE TRY AGAIN IN 1m30s, thanks", 90 * time.Second},
		{"Please try again later.", 0},
		{"Please retry in -5s.", 0},
		{"Please retry in", 0},
		{"", 0},
	}
	for _, tt := range tests {
		if got := messageWait(tt.msg); got != tt.want {
			t.Errorf("messageWait(%q) = %s, want %s", tt.msg, got, tt.want)
		}
	}
}
