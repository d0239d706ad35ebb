package kvemu

import (
	"fmt"
	"maps"
	"net/http"
	"time"
)

// Counts are the operations the emulator served since New or ResetCounts,
// counted as Cloudflare bills them, over all accounts.
type Counts struct {
	// Reads: value reads, metadata reads, and one per key of a bulk get;
	// reads of missing keys count.
	Reads int64
	// Writes: value writes, and one per pair of a bulk write.
	Writes int64
	// Deletes: value deletes, and one per key of a bulk delete; deletes of
	// missing keys count.
	Deletes int64
	// Lists: list-keys calls (each page is one). Listing namespaces is not
	// a KV operation and is not counted here.
	Lists int64
	// Requests are REST requests per token: every request with a known
	// token that got past injected faults, whatever it answered (errors and
	// 429s included).
	Requests map[string]int64
	// RateLimited requests answered 429/971 (Limits.RequestsPerWindow).
	RateLimited int64
	// DailyLimited requests answered 429/10048 (Limits.*PerDay).
	DailyLimited int64
	// Faulted requests answered by an injected fault (not in Requests).
	Faulted int64
	// Unauthenticated requests answered 401 (not in Requests).
	Unauthenticated int64
}

// TotalRequests sums Requests over all tokens.
func (c Counts) TotalRequests() int64 {
	var n int64
	for _, v := range c.Requests {
		n += v
	}
	return n
}

// Ops is Reads+Writes+Deletes+Lists.
func (c Counts) Ops() int64 { return c.Reads + c.Writes + c.Deletes + c.Lists }

// String formats the counts on one line.
func (c Counts) String() string {
	return fmt.Sprintf("reads=%d writes=%d deletes=%d lists=%d requests=%d rate_limited=%d daily_limited=%d faulted=%d unauthenticated=%d",
		c.Reads, c.Writes, c.Deletes, c.Lists, c.TotalRequests(), c.RateLimited, c.DailyLimited, c.Faulted, c.Unauthenticated)
}

// Counts returns a copy of the counters.
func (e *Emulator) Counts() Counts {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.counts
	c.Requests = maps.Clone(e.counts.Requests)
	return c
}

// ResetCounts zeroes the counters. Daily quotas and request windows, which
// follow the clock, are not reset.
func (e *Emulator) ResetCounts() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.counts = Counts{Requests: make(map[string]int64)}
}

type opKind int

const (
	kindRead opKind = iota
	kindWrite
	kindDelete
	kindList
)

func (e *Emulator) dailyLimit(k opKind) int64 {
	switch k {
	case kindRead:
		return e.limits.ReadsPerDay
	case kindWrite:
		return e.limits.WritesPerDay
	case kindDelete:
		return e.limits.DeletesPerDay
	default:
		return e.limits.ListsPerDay
	}
}

// charge bills n operations of kind k to the account, or refuses all of
// them with 429/10048 if that would pass the daily quota. Call with e.mu held.
func (e *Emulator) charge(a *account, k opKind, n int64, now time.Time) *apiErr {
	day := utcDay(now)
	if a.day != day {
		a.day = day
		a.used = [4]int64{}
	}
	if lim := e.dailyLimit(k); lim > 0 && a.used[k]+n > lim {
		e.counts.DailyLimited++
		return &apiErr{status: http.StatusTooManyRequests, code: CodeDailyLimit, msg: MsgDailyLimit}
	}
	a.used[k] += n
	switch k {
	case kindRead:
		e.counts.Reads += n
	case kindWrite:
		e.counts.Writes += n
	case kindDelete:
		e.counts.Deletes += n
	default:
		e.counts.Lists += n
	}
	return nil
}

// window is a token's current rate-limit window.
type window struct {
	start time.Time
	n     int64
}

// admit counts a request of token and applies Limits.RequestsPerWindow.
func (e *Emulator) admit(token string) *apiErr {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.counts.Requests[token]++
	if e.limits.RequestsPerWindow <= 0 {
		return nil
	}
	now := e.now()
	w := e.windows[token]
	if w == nil || !now.Before(w.start.Add(e.limits.Window)) {
		w = &window{start: now}
		e.windows[token] = w
	}
	w.n++
	if w.n <= e.limits.RequestsPerWindow {
		return nil
	}
	e.counts.RateLimited++
	return &apiErr{status: http.StatusTooManyRequests, code: CodeRateLimited, msg: MsgRateLimited,
		retryAfter: w.start.Add(e.limits.Window).Sub(now)}
}

// utcDay numbers the UTC day of t; days start at 00:00 UTC.
func utcDay(t time.Time) int64 {
	s := t.Unix()
	d := s / 86400
	if s < 0 && s%86400 != 0 {
		d--
	}
	return d
}
