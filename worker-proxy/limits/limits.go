// Package limits decides whether a client token may make another request:
// its request and token budgets (rpm, rpd, tpm, tpd), its expiry and the
// providers and models it may use. It keeps its windows in memory, per
// proxy instance, and builds for js/wasm.
//
// Budgets use GCRA (the generic cell rate algorithm): a limit of N per
// window W lets a token spend N at once, after which one unit comes back
// every W/N. It is exact, needs one timestamp per budget whatever N is,
// and says precisely when the next unit frees (Retry-After).
package limits

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Limits are a client token's budgets; 0 means unlimited.
type Limits struct {
	RPM int64 `json:"rpm,omitempty"` // requests per minute
	RPD int64 `json:"rpd,omitempty"` // requests per day
	TPM int64 `json:"tpm,omitempty"` // tokens (prompt + completion) per minute
	TPD int64 `json:"tpd,omitempty"` // tokens per day
}

// IsZero reports whether l limits nothing.
func (l Limits) IsZero() bool { return l == Limits{} }

// ErrInvalid marks a limit or pattern that cannot be used.
var ErrInvalid = errors.New("limits: invalid")

// MaxLimit bounds each budget, far above any real use, so that W/N and
// sums of costs never overflow.
const MaxLimit = 1 << 40

// Validate checks that every budget is between 0 and MaxLimit.
func (l Limits) Validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{{"rpm", l.RPM}, {"rpd", l.RPD}, {"tpm", l.TPM}, {"tpd", l.TPD}} {
		if f.v < 0 || f.v > MaxLimit {
			return fmt.Errorf("%w: limits.%s must be a whole number from 0 (unlimited) to %d", ErrInvalid, f.name, int64(MaxLimit))
		}
	}
	return nil
}

// Pattern limits.
const (
	MaxPatterns   = 100
	MaxPatternLen = 200
)

// ValidatePatterns checks a list of provider or model patterns: at most
// MaxPatterns, each non-empty, at most MaxPatternLen printable characters.
// field names the list in the error.
func ValidatePatterns(field string, patterns []string) error {
	if len(patterns) > MaxPatterns {
		return fmt.Errorf("%w: %s holds more than %d patterns", ErrInvalid, field, MaxPatterns)
	}
	for i, p := range patterns {
		if p == "" || len(p) > MaxPatternLen || strings.TrimSpace(p) != p {
			return fmt.Errorf("%w: %s[%d] must be a name or * pattern of 1 to %d characters without surrounding spaces", ErrInvalid, field, i, MaxPatternLen)
		}
		for _, r := range p {
			if r < 0x20 || r == 0x7f {
				return fmt.Errorf("%w: %s[%d] holds a control character", ErrInvalid, field, i)
			}
		}
	}
	return nil
}

// Match reports whether name matches pattern, where "*" stands for any
// run of characters (slashes included) and everything else is literal.
func Match(pattern, name string) bool {
	star := strings.IndexByte(pattern, '*')
	if star < 0 {
		return pattern == name
	}
	if !strings.HasPrefix(name, pattern[:star]) {
		return false
	}
	name = name[star:]
	parts := strings.Split(pattern[star+1:], "*")
	last := parts[len(parts)-1]
	for _, part := range parts[:len(parts)-1] {
		i := strings.Index(name, part)
		if i < 0 {
			return false
		}
		name = name[i+len(part):]
	}
	return strings.HasSuffix(name, last)
}

// Allowed reports whether name matches one of patterns; an empty list
// allows everything.
func Allowed(patterns []string, name string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if Match(p, name) {
			return true
		}
	}
	return false
}

// Expired reports whether a token that expires at expiresAt (zero: never)
// has expired at now.
func Expired(expiresAt, now time.Time) bool { return !expiresAt.IsZero() && !now.Before(expiresAt) }

// Windows are the length of each budget's window, in the order rpm, rpd,
// tpm, tpd; a Shared implementation uses them.
var Windows = windows

// Budgets names the budgets in the order of Windows.
var Budgets = budgets

// Values returns lim's budgets in the order of Windows.
func (lim Limits) Values() [4]int64 { return lim.values() }

// Budget names a limit in a Decision.
type Budget string

const (
	RPM Budget = "rpm"
	RPD Budget = "rpd"
	TPM Budget = "tpm"
	TPD Budget = "tpd"
)

// Decision is the answer to Admit.
type Decision struct {
	OK bool
	// When refused: the budget that refused, its limit, and how long until
	// it frees a unit (a request, or a token for tpm/tpd).
	Budget     Budget
	Limit      int64
	RetryAfter time.Duration
}

// Shared keeps the windows where every proxy instance sees them (Redis),
// running the same GCRA steps as Limiter atomically. A method that returns
// an error changed nothing.
type Shared interface {
	AdmitShared(ctx context.Context, id string, lim Limits, now time.Time) (Decision, error)
	AddTokensShared(ctx context.Context, id string, lim Limits, n int64, now time.Time) error
	ForgetShared(ctx context.Context, id string) error
}

// sharedTimeout bounds a call to Shared; past it the instance decides
// alone.
const sharedTimeout = 250 * time.Millisecond

// Limiter holds the windows of every client token. The zero value is not
// usable; call New. It is safe for concurrent use.
type Limiter struct {
	now    func() time.Time
	shared Shared
	// failed counts Shared calls that failed (the instance then used its
	// own windows).
	failed atomic.Int64

	mu     sync.RWMutex
	states map[string]*state
}

// state is one token's theoretical arrival times (unix nanoseconds), one
// per budget: the budget is spent up to that time.
type state struct {
	mu  sync.Mutex
	tat [4]int64 // rpm, rpd, tpm, tpd
}

var windows = [4]time.Duration{time.Minute, 24 * time.Hour, time.Minute, 24 * time.Hour}
var budgets = [4]Budget{RPM, RPD, TPM, TPD}

// New returns a Limiter reading the clock now (time.Now if nil).
func New(now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{now: now, states: map[string]*state{}}
}

func (l *Limiter) state(id string) *state {
	l.mu.RLock()
	s := l.states[id]
	l.mu.RUnlock()
	if s != nil {
		return s
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if s = l.states[id]; s == nil {
		s = &state{}
		l.states[id] = s
	}
	return s
}

func (lim Limits) values() [4]int64 { return [4]int64{lim.RPM, lim.RPD, lim.TPM, lim.TPD} }

// interval is the time one unit of a budget of n per w takes to come back,
// at least a nanosecond.
func interval(w time.Duration, n int64) int64 { return max(1, int64(w)/n) }

// Share makes l keep its windows in sh, across instances; while sh fails,
// l decides with its own windows. Call it before l is used.
func (l *Limiter) Share(sh Shared) { l.shared = sh }

// SharedFailures returns how many calls to the Shared windows failed.
func (l *Limiter) SharedFailures() int64 { return l.failed.Load() }

// Admit takes one request from token id's request budgets if every budget
// of lim has room: rpm and rpd for the request itself, tpm and tpd for at
// least one more token. A refused request takes nothing. Tokens with no
// limits are admitted without touching any state.
func (l *Limiter) Admit(id string, lim Limits) Decision {
	if lim.IsZero() {
		return Decision{OK: true}
	}
	if l.shared != nil {
		ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
		d, err := l.shared.AdmitShared(ctx, id, lim, l.now())
		cancel()
		if err == nil {
			return d
		}
		l.failed.Add(1)
	}
	now := l.now().UnixNano()
	vals := lim.values()
	s := l.state(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	var next [4]int64
	refused := Decision{OK: true}
	for i, n := range vals {
		if n == 0 {
			continue
		}
		t := interval(windows[i], n)
		tat := max(s.tat[i], now)
		// The unit this request needs (a request, or the next token) must
		// fit: the budget may be spent up to now+window.
		wait := tat + t - int64(windows[i]) - now
		if wait > 0 {
			if refused.OK || time.Duration(wait) > refused.RetryAfter {
				refused = Decision{Budget: budgets[i], Limit: n, RetryAfter: time.Duration(wait)}
			}
			continue
		}
		if i < 2 { // request budgets take the request now
			next[i] = tat + t
		}
	}
	if !refused.OK {
		return refused
	}
	for i := range 2 {
		if vals[i] != 0 {
			s.tat[i] = next[i]
		}
	}
	return Decision{OK: true}
}

// AddTokens charges n tokens, counted after a request finished, to token
// id's tpm and tpd budgets. They may go past the limit: the request that
// did it has finished, and the next Admit waits until the budget has room.
func (l *Limiter) AddTokens(id string, lim Limits, n int64) {
	if n <= 0 || (lim.TPM == 0 && lim.TPD == 0) {
		return
	}
	n = min(n, MaxLimit)
	if l.shared != nil {
		ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
		err := l.shared.AddTokensShared(ctx, id, lim, n, l.now())
		cancel()
		if err == nil {
			return
		}
		l.failed.Add(1)
	}
	now := l.now().UnixNano()
	s := l.state(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 2; i < 4; i++ {
		v := lim.values()[i]
		if v == 0 {
			continue
		}
		t := interval(windows[i], v)
		tat := max(s.tat[i], now)
		// Debt is capped so the budget is full for at most one more
		// window, as in a sliding window, where the tokens of a request
		// leave the window one window after it; the cap also keeps the
		// sum from overflowing.
		ceil := now + 2*int64(windows[i]) - t
		if n > (ceil-tat)/t {
			s.tat[i] = ceil
		} else {
			s.tat[i] = tat + n*t
		}
	}
}

// Forget drops token id's windows (a revoked token).
func (l *Limiter) Forget(id string) {
	l.mu.Lock()
	delete(l.states, id)
	l.mu.Unlock()
	if l.shared != nil {
		ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
		if l.shared.ForgetShared(ctx, id) != nil {
			l.failed.Add(1)
		}
		cancel()
	}
}

// Reset drops token id's windows so that its budgets start full; used when
// an operator changes its limits.
func (l *Limiter) Reset(id string) { l.Forget(id) }
