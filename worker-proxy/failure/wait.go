package failure

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// NextPacificMidnight returns the first midnight in America/Los_Angeles
// strictly after t, when Gemini's per-day quotas reset. It follows the
// daylight-saving rules of the time zone database: midnight is 08:00 UTC
// in winter and 07:00 UTC in summer, so the day of a change is 23 or 25
// hours long. The result is in the America/Los_Angeles location; without
// the database, in a fixed PST or PDT zone by the US rules in force since
// 2007 (see pacificRule).
func NextPacificMidnight(t time.Time) time.Time {
	loc := pacific()
	if loc == nil {
		return nextPacificMidnightByRule(t)
	}
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, loc)
}

var (
	pst = time.FixedZone("PST", -8*60*60)
	pdt = time.FixedZone("PDT", -7*60*60)
)

// pacificRule returns the Pacific zone in force at t: daylight time from
// the second Sunday of March, 02:00 PST (10:00 UTC), to the first Sunday
// of November, 02:00 PDT (09:00 UTC).
func pacificRule(t time.Time) *time.Location {
	t = t.UTC()
	y := t.Year()
	start := time.Date(y, time.March, nthSunday(y, time.March, 2), 10, 0, 0, 0, time.UTC)
	end := time.Date(y, time.November, nthSunday(y, time.November, 1), 9, 0, 0, 0, time.UTC)
	if !t.Before(start) && t.Before(end) {
		return pdt
	}
	return pst
}

// nthSunday is the day of the month of month's n-th Sunday in year y.
func nthSunday(y int, month time.Month, n int) int {
	first := time.Date(y, month, 1, 0, 0, 0, 0, time.UTC).Weekday()
	return 1 + (7-int(first))%7 + 7*(n-1)
}

// nextPacificMidnightByRule is NextPacificMidnight by pacificRule. A
// change happens at 02:00, never near midnight, so the zone in force at
// midnight read as PST is the midnight's.
func nextPacificMidnightByRule(t time.Time) time.Time {
	y, m, d := t.In(pacificRule(t)).Date()
	guess := time.Date(y, m, d+1, 0, 0, 0, 0, pst) // two hours or more from a change
	loc := pacificRule(guess)
	return time.Date(y, m, d+1, 0, 0, 0, 0, loc)
}

// seconds converts a positive number of seconds to a Duration, saturating
// far beyond any cap; ok is false for zero, negative or NaN.
func seconds(s float64) (time.Duration, bool) {
	if !(s > 0) {
		return 0, false
	}
	if s >= math.MaxInt64/float64(time.Second) {
		return math.MaxInt64, true
	}
	return time.Duration(s * float64(time.Second)), true
}

// retryAfter reads Retry-After-Ms (milliseconds) and then Retry-After
// (seconds, or an HTTP date), the headers openai-go and anthropic-sdk-go
// obey. It returns the first positive wait and its header.
func retryAfter(h http.Header, now time.Time) (time.Duration, string) {
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			if d, ok := seconds(f / 1000); ok {
				return d, "Retry-After-Ms"
			}
		}
	}
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			if d, ok := seconds(f); ok {
				return d, "Retry-After"
			}
		} else if t, err := http.ParseTime(v); err == nil && t.After(now) {
			return t.Sub(now), "Retry-After"
		}
	}
	return 0, ""
}

// resetWait returns the wait a family of x-ratelimit headers asks for:
// among the limits whose remaining count is "0", the latest reset; if none
// is known to be exhausted, the latest of all. get(kind, field) reads one
// header; values are durations ("6m0s", "12ms", "20s", a bare number of
// seconds) or RFC 3339 timestamps.
func resetWait(kinds []string, get func(kind, field string) string, now time.Time) time.Duration {
	var exhausted, any time.Duration
	for _, k := range kinds {
		d, ok := parseReset(get(k, "reset"), now)
		if !ok {
			continue
		}
		any = max(any, d)
		if strings.TrimSpace(get(k, "remaining")) == "0" {
			exhausted = max(exhausted, d)
		}
	}
	if exhausted > 0 {
		return exhausted
	}
	return any
}

func parseReset(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if d, err := time.ParseDuration(v); err == nil {
		return d, d > 0
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		return seconds(f)
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil && t.After(now) {
		return t.Sub(now), true
	}
	return 0, false
}

var openaiKinds = []string{"requests", "tokens"}

// openaiReset reads x-ratelimit-reset-{requests,tokens} (OpenAI, and
// Anthropic's OpenAI-compatible endpoint).
func openaiReset(h http.Header, now time.Time) time.Duration {
	return resetWait(openaiKinds, func(kind, field string) string {
		return h.Get("X-Ratelimit-" + field + "-" + kind)
	}, now)
}

// anthropicReset reads every anthropic-ratelimit-<kind>-reset header.
func anthropicReset(h http.Header, now time.Time) time.Duration {
	const pre, suf = "Anthropic-Ratelimit-", "-Reset"
	var kinds []string
	for k := range h {
		k = http.CanonicalHeaderKey(k)
		if len(k) > len(pre)+len(suf) && strings.HasPrefix(k, pre) && strings.HasSuffix(k, suf) {
			kinds = append(kinds, k[len(pre):len(k)-len(suf)])
		}
	}
	return resetWait(kinds, func(kind, field string) string {
		return h.Get(pre + kind + "-" + field)
	}, now)
}

// messageWait finds "try again in 20s" or "retry in 38.962214405s" in a
// provider message (OpenAI and Gemini write these).
func messageWait(msg string) time.Duration {
	lower := strings.ToLower(msg)
	for _, marker := range []string{"try again in ", "retry in "} {
		i := strings.Index(lower, marker)
		if i < 0 {
			continue
		}
		rest := msg[i+len(marker):]
		if j := strings.IndexAny(rest, " \t\n,;)"); j >= 0 {
			rest = rest[:j]
		}
		rest = strings.TrimRight(rest, ".")
		if d, err := time.ParseDuration(rest); err == nil && d > 0 {
			return d
		}
	}
	return 0
}

// exhaustedHeader reports whether a rate-limit header says the key's
// account has none of some limit left: x-ratelimit-remaining-{requests,
// tokens} (OpenAI) or anthropic-ratelimit-*-remaining at 0.
func exhaustedHeader(h http.Header) bool {
	for _, kind := range openaiKinds {
		if strings.TrimSpace(h.Get("X-Ratelimit-Remaining-"+kind)) == "0" {
			return true
		}
	}
	const pre, suf = "Anthropic-Ratelimit-", "-Remaining"
	for k, v := range h {
		k = http.CanonicalHeaderKey(k)
		if strings.HasPrefix(k, pre) && strings.HasSuffix(k, suf) && len(v) > 0 && strings.TrimSpace(v[0]) == "0" {
			return true
		}
	}
	return false
}
