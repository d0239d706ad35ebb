package limits

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable time source.
type clock struct{ t atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.t.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *clock) advance(d time.Duration) { c.t.Add(int64(d)) }
func admitN(l *Limiter, id string, lim Limits, n int) (ok int, last Decision) {
	for range n {
		last = l.Admit(id, lim)
		if last.OK {
			ok++
		}
	}
	return ok, last
}

func TestRPMWindowEdges(t *testing.T) {
	c := newClock()
	l := New(c.now)
	lim := Limits{RPM: 3}
	if ok, _ := admitN(l, "a", lim, 3); ok != 3 {
		t.Fatalf("first 3 requests: %d admitted, want 3", ok)
	}
	d := l.Admit("a", lim)
	if d.OK || d.Budget != RPM || d.Limit != 3 || d.RetryAfter != 20*time.Second {
		t.Fatalf("4th request: %+v, want refused by rpm 3 with RetryAfter 20s", d)
	}
	// One nanosecond before the slot frees: still refused, and the wait shrinks.
	c.advance(20*time.Second - 1)
	if d := l.Admit("a", lim); d.OK || d.RetryAfter != 1 {
		t.Fatalf("just before the edge: %+v, want refused with 1ns to wait", d)
	}
	c.advance(1)
	if d := l.Admit("a", lim); !d.OK {
		t.Fatalf("at the edge: %+v, want admitted", d)
	}
	if d := l.Admit("a", lim); d.OK {
		t.Fatal("a refused request must not have taken a slot, and only one slot freed")
	}
	// A full window later every slot is back.
	c.advance(time.Minute)
	if ok, _ := admitN(l, "a", lim, 4); ok != 3 {
		t.Fatalf("after a quiet minute: %d admitted, want 3", ok)
	}
	// Other tokens have their own windows.
	if ok, _ := admitN(l, "b", lim, 3); ok != 3 {
		t.Fatalf("token b: %d admitted, want 3", ok)
	}
}

func TestRPDAndRPMTogether(t *testing.T) {
	c := newClock()
	l := New(c.now)
	lim := Limits{RPM: 10, RPD: 12}
	if ok, _ := admitN(l, "a", lim, 10); ok != 10 {
		t.Fatalf("%d admitted, want 10", ok)
	}
	if d := l.Admit("a", lim); d.OK || d.Budget != RPM {
		t.Fatalf("11th: %+v, want refused by rpm", d)
	}
	c.advance(time.Minute)
	if ok, _ := admitN(l, "a", lim, 2); ok != 2 {
		t.Fatalf("next minute: %d admitted, want 2", ok)
	}
	d := l.Admit("a", lim)
	// 12 per day: one every 2h; 12 taken at once-ish, so the next frees
	// 2h after the first, which was a minute ago.
	if d.OK || d.Budget != RPD || d.RetryAfter != 2*time.Hour-time.Minute {
		t.Fatalf("13th: %+v, want refused by rpd with RetryAfter 1h59m", d)
	}
	// rpm has room again after a minute, but rpd refuses: nothing taken.
	c.advance(time.Minute)
	if d := l.Admit("a", lim); d.OK || d.Budget != RPD {
		t.Fatalf("%+v, want still refused by rpd", d)
	}
}

func TestTokensPushOverThenRefuse(t *testing.T) {
	c := newClock()
	l := New(c.now)
	lim := Limits{TPM: 1000}
	if d := l.Admit("a", lim); !d.OK {
		t.Fatal("the first request must pass: nothing spent yet")
	}
	l.AddTokens("a", lim, 999)
	if d := l.Admit("a", lim); !d.OK {
		t.Fatal("one token left: the next request must pass")
	}
	// This request pushes over; it has already finished.
	l.AddTokens("a", lim, 500)
	d := l.Admit("a", lim)
	if d.OK || d.Budget != TPM || d.Limit != 1000 {
		t.Fatalf("after going over: %+v, want refused by tpm", d)
	}
	// 1499 spent at 60ms a token fill the budget until 89.94s from now;
	// one more token fits when that is a window (60s) minus one token's
	// 60ms away: in 30s.
	if want := 30 * time.Second; d.RetryAfter != want {
		t.Fatalf("RetryAfter %v, want %v", d.RetryAfter, want)
	}
	c.advance(d.RetryAfter)
	if d := l.Admit("a", lim); !d.OK {
		t.Fatalf("after RetryAfter: %+v, want admitted", d)
	}
}

func TestHugeOvershootBlocksAtMostOneWindow(t *testing.T) {
	for _, tc := range []struct {
		lim    Limits
		budget Budget
		window time.Duration
	}{{Limits{TPM: 100}, TPM, time.Minute}, {Limits{TPD: 1000}, TPD, 24 * time.Hour}} {
		c := newClock()
		l := New(c.now)
		l.AddTokens("a", tc.lim, 1<<40) // far beyond; must not overflow
		d := l.Admit("a", tc.lim)
		if d.OK || d.Budget != tc.budget || d.RetryAfter > tc.window || d.RetryAfter < tc.window*99/100 {
			t.Fatalf("%+v, want refused by %s for about %v", d, tc.budget, tc.window)
		}
		c.advance(d.RetryAfter)
		if d := l.Admit("a", tc.lim); !d.OK {
			t.Fatalf("%+v: after RetryAfter the budget must have room", d)
		}
	}
}

func TestUnlimitedTouchesNothing(t *testing.T) {
	l := New(nil)
	for range 1000 {
		if !l.Admit("a", Limits{}).OK {
			t.Fatal("no limits must admit")
		}
	}
	l.AddTokens("a", Limits{}, 1e9)
	if len(l.states) != 0 {
		t.Fatalf("%d states kept for unlimited tokens, want 0", len(l.states))
	}
}

func TestForgetRefills(t *testing.T) {
	c := newClock()
	l := New(c.now)
	lim := Limits{RPM: 1}
	l.Admit("a", lim)
	if l.Admit("a", lim).OK {
		t.Fatal("second request must be refused")
	}
	l.Reset("a")
	if !l.Admit("a", lim).OK {
		t.Fatal("after Reset the budget must be full")
	}
}

// Under contention the limiter admits exactly the budget: never more.
func TestConcurrentAdmitIsExact(t *testing.T) {
	c := newClock()
	l := New(c.now)
	lim := Limits{RPM: 100, RPD: 1000, TPM: 1 << 30}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if l.Admit("shared", lim).OK {
					admitted.Add(1)
					l.AddTokens("shared", lim, 3)
				}
				l.Admit("own", Limits{RPM: 5})
			}
		})
	}
	wg.Wait()
	if got := admitted.Load(); got != 100 {
		t.Fatalf("%d admitted of 800 concurrent requests, want exactly 100", got)
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"gpt-4o", "gpt-4o", true},
		{"gpt-4o", "gpt-4o-mini", false},
		{"gpt-4o*", "gpt-4o-mini", true},
		{"*", "anything/at/all", true},
		{"*-mini", "gpt-4o-mini", true},
		{"*-mini", "gpt-4o-mini-2024", false},
		{"gemini-*-flash*", "gemini-2.5-flash-lite", true},
		{"gemini-*-flash*", "gemini-2.5-pro", false},
		{"models/*", "models/gemini-2.5-flash", true},
		{"a*b*a", "aba", true},
		{"a*b*a", "ab", false},
		{"a**", "a", true},
		{"claude-*", "gpt-4o", false},
	} {
		if got := Match(tc.pattern, tc.name); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
	if !Allowed(nil, "x") || Allowed([]string{"a"}, "x") || !Allowed([]string{"a", "x*"}, "xy") {
		t.Fatal("Allowed: an empty list allows all; otherwise one pattern must match")
	}
}

func TestValidate(t *testing.T) {
	for _, l := range []Limits{{RPM: -1}, {TPD: MaxLimit + 1}} {
		if err := l.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: err %v, want ErrInvalid", l, err)
		}
	}
	if err := (Limits{RPM: 1, RPD: MaxLimit}).Validate(); err != nil {
		t.Fatal(err)
	}
	for _, ps := range [][]string{{""}, {" gpt"}, {"a\nb"}, make([]string, MaxPatterns+1)} {
		if err := ValidatePatterns("models", ps); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: err %v, want ErrInvalid", ps, err)
		}
	}
	if err := ValidatePatterns("models", []string{"gpt-*", "claude-3-5-haiku"}); err != nil {
		t.Fatal(err)
	}
}

func TestExpired(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if Expired(time.Time{}, at) || Expired(at, at.Add(-1)) || !Expired(at, at) || !Expired(at, at.Add(time.Hour)) {
		t.Fatal("a token expires at expiresAt, never when it is zero")
	}
}

func BenchmarkAdmit(b *testing.B) {
	l := New(nil)
	lim := Limits{RPM: 1 << 40, RPD: 1 << 40, TPM: 1 << 40, TPD: 1 << 40}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Admit("tok", lim)
			l.AddTokens("tok", lim, 10)
		}
	})
}
