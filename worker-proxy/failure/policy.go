package failure

import (
	"fmt"
	"strconv"
	"strings"
)

// Class is what an upstream outcome says about the key that was used.
//
// The zero value is Success.
type Class uint8

// The classes, from [Classifier.Response], [Classifier.Err] and
// [Classifier.StreamError].
const (
	// Success: 1xx–3xx, or no error. Nothing to do.
	Success Class = iota
	// InvalidKey: the key will not work again without a human: invalid,
	// expired, revoked, suspended, or its account is out of credit or past
	// its spend limit.
	InvalidKey
	// RateLimited: a short-term limit (per minute, per second, burst).
	// Verdict.Until says when the key may serve again.
	RateLimited
	// QuotaExhausted: a long-term quota (Gemini per-day quota, Anthropic
	// usage limit). Verdict.Until is when it resets.
	QuotaExhausted
	// Upstream: the provider or the path to it failed (5xx, 529,
	// overloaded, 408, timeouts, connection errors) or refuses the proxy's
	// IP address or region. Not the key's fault, and not the client's.
	Upstream
	// Client: the request itself is wrong (400, 404, 405, 409, 413, 415,
	// 422…). The answer goes back to the client as it is; another key would
	// get the same answer.
	Client
	// Canceled: the caller's context was canceled, normally because the
	// client went away. Nobody is to blame and nothing is retried.
	Canceled
)

var classNames = [...]string{
	Success:        "success",
	InvalidKey:     "invalid_key",
	RateLimited:    "rate_limited",
	QuotaExhausted: "quota_exhausted",
	Upstream:       "upstream",
	Client:         "client",
	Canceled:       "canceled",
}

// String returns the class's name: "success", "invalid_key",
// "rate_limited", "quota_exhausted", "upstream", "client" or "canceled".
// These are the names [ParsePolicy] reads.
func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return "Class(" + strconv.Itoa(int(c)) + ")"
}

// configurable are the classes a Policy may set, in String order.
var configurable = [...]Class{InvalidKey, RateLimited, QuotaExhausted, Upstream, Client}

// Action is what the relay does after one failed attempt.
type Action struct {
	Retry    bool // try the request again on another key
	Disable  bool // take the key out of the pool until a human or a re-test restores it
	Cooldown bool // rest the key until Verdict.Until (zero: the caller's default)
	Blame    bool // count the failure toward the key's passive-health failures
}

// String returns the action as ParsePolicy writes it: the set words joined
// by "+" in the order retry, disable, cooldown, blame, or "none".
func (a Action) String() string {
	var w []string
	if a.Retry {
		w = append(w, "retry")
	}
	if a.Disable {
		w = append(w, "disable")
	}
	if a.Cooldown {
		w = append(w, "cooldown")
	}
	if a.Blame {
		w = append(w, "blame")
	}
	if len(w) == 0 {
		return "none"
	}
	return strings.Join(w, "+")
}

// Policy maps each failure class to the relay's action. Read it with
// [Policy.For], which fills in defaults.
type Policy map[Class]Action

var defaults = [...]Action{
	InvalidKey:     {Retry: true, Disable: true},
	RateLimited:    {Retry: true, Cooldown: true},
	QuotaExhausted: {Retry: true, Cooldown: true},
	// Blame feeds a short passive-health window kept elsewhere: a 503 storm
	// must not disable healthy keys, so Upstream never disables or cools
	// down by default.
	Upstream: {Retry: true, Blame: true},
	Client:   {},
	Canceled: {},
}

// DefaultPolicy returns a new copy of the default policy:
//
//	invalid_key=retry+disable
//	rate_limited=retry+cooldown
//	quota_exhausted=retry+cooldown
//	upstream=retry+blame
//	client=none
func DefaultPolicy() Policy {
	p := make(Policy, len(configurable))
	for _, c := range configurable {
		p[c] = defaults[c]
	}
	return p
}

// For returns the action for class c: p's entry if it has one, else the
// default. Success, Canceled and unknown classes always get the zero Action
// (no retry, no blame), whatever p holds.
func (p Policy) For(c Class) Action {
	switch c {
	case InvalidKey, RateLimited, QuotaExhausted, Upstream, Client:
	default:
		return Action{}
	}
	if a, ok := p[c]; ok {
		return a
	}
	return defaults[c]
}

// String returns the full policy in the form ParsePolicy reads, every
// configurable class in a fixed order, for example
// "invalid_key=retry+disable,rate_limited=retry+cooldown,…,client=none".
func (p Policy) String() string {
	var b strings.Builder
	for i, c := range configurable {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(c.String())
		b.WriteByte('=')
		b.WriteString(p.For(c).String())
	}
	return b.String()
}

const (
	classList  = "invalid_key, rate_limited, quota_exhausted, upstream, client"
	actionList = "none, or retry, disable, cooldown, blame joined by '+'"
)

// ParsePolicy reads comma-separated class=action overrides on top of
// [DefaultPolicy], for example
//
//	upstream=retry,rate_limited=retry+cooldown,client=none
//
// Class names are those of [Class.String] except success and canceled,
// which cannot be configured. An action is "none" or a "+"-joined set of
// retry, disable, cooldown and blame; it replaces the class's whole default
// action (so "upstream=retry" drops the default blame). Names are
// case-insensitive, '-' may stand for '_', spaces around names and empty
// entries are ignored. The empty string gives the defaults. A class given
// twice, an unknown word, a repeated word or "none" mixed with other words
// is an error naming the entry.
func ParsePolicy(s string) (Policy, error) {
	p := DefaultPolicy()
	var seen [len(classNames)]bool
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, acts, ok := strings.Cut(entry, "=")
		if !ok {
			return nil, fmt.Errorf("failure policy: entry %q: want class=action, e.g. upstream=retry+blame", entry)
		}
		c, err := parseClass(name)
		if err != nil {
			return nil, fmt.Errorf("failure policy: entry %q: %w", entry, err)
		}
		if seen[c] {
			return nil, fmt.Errorf("failure policy: entry %q: class %s given twice", entry, c)
		}
		seen[c] = true
		a, err := parseAction(acts)
		if err != nil {
			return nil, fmt.Errorf("failure policy: entry %q: %w", entry, err)
		}
		p[c] = a
	}
	return p, nil
}

func parseClass(s string) (Class, error) {
	n := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "-", "_")
	for _, c := range configurable {
		if n == c.String() {
			return c, nil
		}
	}
	if n == Success.String() || n == Canceled.String() {
		return 0, fmt.Errorf("class %q cannot be configured (want one of %s)", n, classList)
	}
	return 0, fmt.Errorf("unknown class %q (want one of %s)", strings.TrimSpace(s), classList)
}

func parseAction(s string) (Action, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return Action{}, fmt.Errorf("no action (want %s)", actionList)
	}
	if s == "none" {
		return Action{}, nil
	}
	var a Action
	for w := range strings.SplitSeq(s, "+") {
		w = strings.TrimSpace(w)
		var f *bool
		switch w {
		case "retry":
			f = &a.Retry
		case "disable":
			f = &a.Disable
		case "cooldown":
			f = &a.Cooldown
		case "blame":
			f = &a.Blame
		case "none":
			return Action{}, fmt.Errorf("%q cannot be combined with other actions", "none")
		case "":
			return Action{}, fmt.Errorf("empty action word in %q (want %s)", s, actionList)
		default:
			return Action{}, fmt.Errorf("unknown action %q (want %s)", w, actionList)
		}
		if *f {
			return Action{}, fmt.Errorf("action %q given twice", w)
		}
		*f = true
	}
	return a, nil
}
