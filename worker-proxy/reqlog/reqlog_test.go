package reqlog_test

import (
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/reqlog"
	"github.com/keypool/keypool/worker-proxy/reqlog/boltlog"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var base = time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)

// stores runs f against each Store.
func stores(t *testing.T, b reqlog.Bounds, f func(t *testing.T, st reqlog.Store, clk *clock)) {
	t.Run("bolt", func(t *testing.T) {
		clk := &clock{t: base}
		st, err := boltlog.Open(filepath.Join(t.TempDir(), "requests.db"), b, clk.Now)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		f(t, st, clk)
	})
	t.Run("ring", func(t *testing.T) {
		clk := &clock{t: base}
		f(t, reqlog.NewRing(b, clk.Now), clk)
	})
}

// record makes the i-th test record, arriving i seconds after base.
func record(i int) adminapi.RequestRecord {
	provs := []string{"gemini", "openai", "anthropic"}
	statuses := []int{200, 429, 503, 200}
	at := base.Add(time.Duration(i) * time.Second)
	return adminapi.RequestRecord{
		ID: reqlog.FormatID(uint64(at.UnixNano()) + 1), Time: at,
		Token: fmt.Sprintf("team-%d", i%2), TokenID: fmt.Sprintf("tok_%d", i%2),
		Route: "api", Provider: provs[i%3], Model: fmt.Sprintf("model-%d", i%4), Strategy: "roundRobin",
		KeyID: fmt.Sprintf("key_%d", i%5), Key: "sk-t…fake", Status: statuses[i%4],
		Attempts:  []adminapi.RequestAttempt{{KeyID: fmt.Sprintf("key_%d", (i+1)%5), Class: "rate_limited", Status: 429}, {KeyID: fmt.Sprintf("key_%d", i%5), Class: "success"}},
		LatencyMs: float64(i),
	}
}

func appendN(t *testing.T, st reqlog.Store, from, to int) {
	t.Helper()
	var recs []adminapi.RequestRecord
	for i := from; i < to; i++ {
		recs = append(recs, record(i))
	}
	if err := st.Append(recs); err != nil {
		t.Fatal(err)
	}
}

// all pages through f and returns the records' indexes (LatencyMs).
func all(t *testing.T, st reqlog.Store, f reqlog.Filter) []int {
	t.Helper()
	var got []int
	for pages := 0; ; pages++ {
		recs, next, err := st.Query(f)
		if err != nil {
			t.Fatal(err)
		}
		if pages > 1000 {
			t.Fatal("paging does not end")
		}
		if next != "" && len(recs) == 0 && f.Limit > 0 {
			// allowed only when a scan budget ran out; not in these tests
			t.Fatal("an empty page with a next cursor")
		}
		for _, r := range recs {
			got = append(got, int(r.LatencyMs))
		}
		if next == "" {
			return got
		}
		f.Cursor = next
	}
}

func desc(from, to int, keep func(int) bool) []int {
	var out []int
	for i := to - 1; i >= from; i-- {
		if keep == nil || keep(i) {
			out = append(out, i)
		}
	}
	return out
}

func TestPagingNewestFirst(t *testing.T) {
	stores(t, reqlog.Bounds{}, func(t *testing.T, st reqlog.Store, clk *clock) {
		clk.Add(time.Hour)
		appendN(t, st, 0, 60)
		appendN(t, st, 60, 120)
		recs, next, err := st.Query(reqlog.Filter{Limit: 50})
		if err != nil || len(recs) != 50 || next != recs[49].ID || recs[0].LatencyMs != 119 {
			t.Fatalf("first page: %d records, next %q, err %v", len(recs), next, err)
		}
		if got, want := all(t, st, reqlog.Filter{Limit: 50}), desc(0, 120, nil); !slices.Equal(got, want) {
			t.Fatalf("pages give %v, want %v", got, want)
		}
		if got := all(t, st, reqlog.Filter{Limit: 7}); len(got) != 120 {
			t.Fatalf("pages of 7 give %d records", len(got))
		}
		if got, want := st.LastID(), uint64(base.Add(119*time.Second).UnixNano())+1; got != want {
			t.Fatalf("LastID = %d, want %d", got, want)
		}
	})
}

func TestFilters(t *testing.T) {
	stores(t, reqlog.Bounds{}, func(t *testing.T, st reqlog.Store, clk *clock) {
		clk.Add(time.Hour)
		appendN(t, st, 0, 100)
		for _, tc := range []struct {
			name string
			f    reqlog.Filter
			keep func(int) bool
		}{
			{"provider", reqlog.Filter{Provider: "openai"}, func(i int) bool { return i%3 == 1 }},
			{"final key or an attempt's", reqlog.Filter{KeyID: "key_2"}, func(i int) bool { return i%5 == 2 || (i+1)%5 == 2 }},
			{"token name", reqlog.Filter{Token: "team-1"}, func(i int) bool { return i%2 == 1 }},
			{"token id", reqlog.Filter{Token: "tok_0"}, func(i int) bool { return i%2 == 0 }},
			{"model", reqlog.Filter{Model: "model-3"}, func(i int) bool { return i%4 == 3 }},
			{"status class", reqlog.Filter{Status: "4xx"}, func(i int) bool { return i%4 == 1 }},
			{"exact status", reqlog.Filter{Status: "503"}, func(i int) bool { return i%4 == 2 }},
			{"2xx", reqlog.Filter{Status: "2xx"}, func(i int) bool { return i%4 == 0 || i%4 == 3 }},
			{"since", reqlog.Filter{Since: base.Add(90 * time.Second)}, func(i int) bool { return i >= 90 }},
			{"until", reqlog.Filter{Until: base.Add(9 * time.Second)}, func(i int) bool { return i <= 9 }},
			{"combined", reqlog.Filter{Provider: "gemini", Status: "2xx", Since: base.Add(30 * time.Second), Until: base.Add(60 * time.Second)},
				func(i int) bool { return i%3 == 0 && (i%4 == 0 || i%4 == 3) && i >= 30 && i <= 60 }},
			{"nothing", reqlog.Filter{Provider: "none"}, func(int) bool { return false }},
		} {
			tc.f.Limit = 8
			if got, want := all(t, st, tc.f), desc(0, 100, tc.keep); !slices.Equal(got, want) {
				t.Errorf("%s: got %v, want %v", tc.name, got, want)
			}
		}
	})
}

func TestBounds(t *testing.T) {
	stores(t, reqlog.Bounds{Max: 100, MaxAge: time.Hour}, func(t *testing.T, st reqlog.Store, clk *clock) {
		clk.Add(10 * time.Minute)
		appendN(t, st, 0, 90)
		appendN(t, st, 90, 250)
		if got, want := all(t, st, reqlog.Filter{Limit: 500}), desc(150, 250, nil); !slices.Equal(got, want) {
			t.Fatalf("after 250 records with Max 100: %v", got)
		}
		if b, ok := st.(*boltlog.Bolt); ok && b.Count() != 100 {
			t.Fatalf("bolt counts %d records, want 100", b.Count())
		}
		// An hour after record 200 arrived, records 0–200 are too old: a
		// query hides them at once, the next append deletes them.
		clk.t = base.Add(200*time.Second + time.Hour + 2)
		if got, want := all(t, st, reqlog.Filter{}), desc(201, 250, nil); !slices.Equal(got, want) {
			t.Fatalf("past MaxAge: %v, want %v", got, want)
		}
		appendN(t, st, 250, 251)
		if b, ok := st.(*boltlog.Bolt); ok && b.Count() != 50 {
			t.Fatalf("bolt keeps %d records after the age prune, want 50", b.Count())
		}
	})
}

// TestRingGrows: a Ring starts small and grows as records come, also
// when its oldest records were pruned and the buffer has wrapped; the
// order and the bounds stay those of a Ring allocated whole.
func TestRingGrows(t *testing.T) {
	clk := &clock{t: base.Add(10 * time.Minute)}
	st := reqlog.NewRing(reqlog.Bounds{Max: 300, MaxAge: time.Hour}, clk.Now)
	appendN(t, st, 0, 50)
	clk.t = base.Add(20*time.Second + time.Hour + 2) // records 0–20 too old
	appendN(t, st, 50, 51)                           // prunes them: the oldest is no longer first
	for i := 51; i < 200; i += 7 {
		appendN(t, st, i, min(i+7, 200))
	}
	if got, want := all(t, st, reqlog.Filter{Limit: 500}), desc(21, 200, nil); !slices.Equal(got, want) {
		t.Fatalf("after growing: %v", got)
	}
	appendN(t, st, 200, 400)
	if got, want := all(t, st, reqlog.Filter{Limit: 500}), desc(100, 400, nil); !slices.Equal(got, want) {
		t.Fatalf("past Max 300: %v", got)
	}
}

func TestParseFilter(t *testing.T) {
	f, err := reqlog.ParseFilter(url.Values{"provider": {"gemini"}, "key": {"key_1"}, "token": {"team"}, "status": {"5XX"},
		"since": {"2026-01-15T10:00:00Z"}, "until": {"2026-01-15T11:00:00.5+01:00"}, "limit": {"20"}, "cursor": {reqlog.FormatID(7)}})
	if err != nil || f.Provider != "gemini" || f.KeyID != "key_1" || f.Token != "team" || f.Status != "5xx" ||
		!f.Since.Equal(base) || f.Limit != 20 || f.Until.IsZero() {
		t.Fatalf("ParseFilter = %+v, %v", f, err)
	}
	for _, q := range []url.Values{
		{"status": {"6xx"}}, {"status": {"abc"}}, {"status": {"99"}},
		{"since": {"yesterday"}}, {"until": {"2026-01-15"}},
		{"limit": {"0"}}, {"limit": {"501"}}, {"limit": {"x"}},
		{"cursor": {"zz"}}, {"cursor": {"000000000000000g"}},
	} {
		if _, err := reqlog.ParseFilter(q); err == nil {
			t.Errorf("ParseFilter(%v) accepted", q)
		}
	}
}
