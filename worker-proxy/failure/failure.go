// Package failure decides what a failed upstream attempt means for the key
// that made it.
//
// A [Classifier] turns an upstream answer ([Classifier.Response]), a
// transport error ([Classifier.Err]) or an error event inside a stream
// ([Classifier.StreamError]) into a [Verdict]: a [Class], when the key may
// serve again, and a short secret-free reason. A [Policy] maps the class to
// an [Action]: retry on another key, disable the key, cool it down, or count
// the failure against the key's passive health.
//
// The rules follow the real error bodies of Gemini (native and
// OpenAI-compatible), OpenAI, Anthropic (native and OpenAI-compatible) and
// OpenAI-compatible providers. Their guiding principle is to blame a key
// only for what another key would not have met: a 503 storm, an IP or region
// block or a bad request must never disable healthy keys.
package failure

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Verdict is the classification of one upstream attempt.
type Verdict struct {
	Class Class
	// Until is when the key may serve again. For RateLimited and
	// QuotaExhausted it is always set and after the Classifier's Now. For
	// Upstream it is set only when the upstream sent Retry-After-Ms or
	// Retry-After (useful for an honest Retry-After to the client); zero
	// there means no hint, and a caller that cools down on Upstream uses its
	// own default. It is zero for the other classes.
	Until time.Time
	// Reason is a short human explanation: the HTTP status, the provider's
	// code and its message, e.g. "400 API_KEY_INVALID: API key not valid.
	// Please pass a valid API key." or "429 RESOURCE_EXHAUSTED per-day quota
	// GenerateRequestsPerDayPerProjectPerModel-FreeTier". It is one line of
	// at most MaxReason characters, with key-shaped tokens masked (see
	// [Scrub] for masking one known key). Empty for Success.
	Reason string
	// AboutKey: the answer singles out the key (or the account or project
	// it belongs to), so another key may well succeed and a refusal costs
	// none of the retries meant for upstream trouble. True for InvalidKey
	// and QuotaExhausted; for RateLimited when the answer names the limit
	// (a Google quota violation or ErrorInfo, OpenAI rate_limit_exceeded,
	// Anthropic rate_limit_error) or a rate-limit header shows a count of 0
	// left. A bare 429 ("Resource has been exhausted") is not.
	AboutKey bool
	// Model is the model a quota violation names (Google
	// quotaDimensions.model), or "".
	Model string
	// Project is the Google Cloud project number the answer names as the
	// key's consumer (ErrorInfo metadata "consumer": "projects/N"), or "".
	Project string
	// ProjectWide: the quota hit is counted per project (quotaId
	// "…PerProject…"): every key of the project met it.
	ProjectWide bool
}

// Classifier classifies upstream outcomes. The zero value (and a nil
// *Classifier) is ready to use. Its methods never panic and are safe for
// concurrent use as long as the fields are not changed.
type Classifier struct {
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// DefaultCooldown is the wait of a RateLimited verdict whose answer
	// carries no retry hint; zero or negative means 60s. It is capped at
	// MaxCooldown.
	DefaultCooldown time.Duration
	// MaxCooldown caps the wait of RateLimited and Upstream verdicts (not
	// of QuotaExhausted ones, which last until the quota resets); zero or
	// negative means 1h.
	MaxCooldown time.Duration
}

const (
	defaultCooldown    = 60 * time.Second
	defaultMaxCooldown = time.Hour
	// maxQuotaWait bounds a QuotaExhausted wait read from a message.
	maxQuotaWait = 32 * 24 * time.Hour
)

func (c *Classifier) now() time.Time {
	if c == nil || c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

func (c *Classifier) limits() (def, maxWait time.Duration) {
	def, maxWait = defaultCooldown, defaultMaxCooldown
	if c != nil && c.MaxCooldown > 0 {
		maxWait = c.MaxCooldown
	}
	if c != nil && c.DefaultCooldown > 0 {
		def = c.DefaultCooldown
	}
	return min(def, maxWait), maxWait
}

// Google ErrorInfo reasons that mean the key (or its project) cannot be
// used: invalid, expired, suspended, restricted to other callers or APIs,
// API or billing disabled.
var googleKeyReasons = map[string]bool{
	"API_KEY_INVALID":               true,
	"API_KEY_EXPIRED":               true,
	"CONSUMER_SUSPENDED":            true,
	"CONSUMER_INVALID":              true,
	"SERVICE_DISABLED":              true,
	"BILLING_DISABLED":              true,
	"API_KEY_SERVICE_BLOCKED":       true,
	"API_KEY_HTTP_REFERRER_BLOCKED": true,
	"API_KEY_IP_ADDRESS_BLOCKED":    true,
	"API_KEY_ANDROID_APP_BLOCKED":   true,
	"API_KEY_IOS_APP_BLOCKED":       true,
}

// Response classifies an upstream HTTP answer. body is the start of the
// answer's body; it may be truncated, a Google error wrapped in a JSON
// array, HTML or garbage (fields cut off are simply missing). Pass up to 16
// KiB: Gemini's 429 bodies that list several violations run to a few KiB,
// and only the first 64 KiB is read. h may be nil. The rules, first match
// wins:
//
//   - 1xx–3xx: Success.
//   - a status outside 100–599, any 5xx (529 included), 408, 421, 425:
//     Upstream.
//   - an IP or region block (OpenAI unsupported_country_region_territory,
//     Anthropic 403 "forbidden", Gemini FAILED_PRECONDITION "User location
//     is not supported" or "…not available in your country", 451): Upstream.
//   - 401, 402; OpenAI invalid_api_key / account_deactivated and
//     insufficient_quota (no credit until billing is fixed); Anthropic
//     billing_error, enforced_spend_limit_reached, "Your credit balance is
//     too low", "This organization has been disabled"; Gemini's monthly
//     spending cap; a Google ErrorInfo reason such as API_KEY_INVALID or
//     CONSUMER_SUSPENDED; Gemini messages "API key not valid", "API key
//     expired", "API Key not found", "Permission denied: Consumer
//     'api_key:…", "Method doesn't allow unregistered callers": InvalidKey.
//   - Anthropic "You have reached your specified API usage limits. You will
//     regain access on <date> at <time> UTC": QuotaExhausted until then (at
//     most 32 days; MaxCooldown when the date is missing).
//   - 429 naming a per-day Google quota (quotaId "…PerDay…", quotaMetric
//     "…per_day…"), even next to per-minute ones: QuotaExhausted until
//     [NextPacificMidnight].
//   - any other 429: RateLimited, Until from the first positive hint:
//     Retry-After-Ms, Retry-After, Google RetryInfo.retryDelay,
//     x-ratelimit-reset-{requests,tokens}, anthropic-ratelimit-*-reset
//     (for these two: the latest reset of a limit whose remaining count is
//     0, else the latest), "try again in 20s" / "retry in 38.9s" in the
//     message; else DefaultCooldown; capped at MaxCooldown.
//   - 403 whose body is not a JSON error (a CDN or firewall page): Upstream.
//   - any other 4xx: Client.
func (c *Classifier) Response(status int, h http.Header, body []byte) Verdict {
	if status >= 100 && status < 400 {
		return Verdict{Class: Success}
	}
	if h == nil {
		h = http.Header{}
	}
	f := parseBody(body)
	v := c.response(status, h, &f)
	v.Project = f.project()
	switch v.Class {
	case InvalidKey, QuotaExhausted:
		v.AboutKey = true
	case RateLimited:
		v.AboutKey = f.namesLimit() || exhaustedHeader(h)
	}
	if v.Class == RateLimited || v.Class == QuotaExhausted {
		v.Model = f.quotaModel()
		v.ProjectWide = f.perProject()
	}
	return v
}

func (c *Classifier) response(status int, h http.Header, f *facts) Verdict {
	now := c.now()
	def, maxWait := c.limits()
	label, msg := f.label(), f.message

	upstream := func(note string) Verdict {
		v := Verdict{Class: Upstream, Reason: reason(status, label, note, msg)}
		if d, _ := retryAfter(h, now); d > 0 {
			v.Until = now.Add(min(d, maxWait))
		}
		return v
	}
	invalid := func(label, note string) Verdict {
		return Verdict{Class: InvalidKey, Reason: reason(status, label, note, msg)}
	}

	switch {
	case status < 100 || status > 599:
		return upstream("invalid HTTP status")
	case status >= 500, status == 408, status == 421, status == 425:
		return upstream("")
	}

	// 4xx from here on.
	if note, ok := f.regionBlock(status); ok {
		return upstream(note)
	}
	switch {
	case f.is("insufficient_quota"):
		return invalid("insufficient_quota", "no credit: dead until billing is fixed")
	case f.hasErrorCode("enforced_spend_limit_reached"):
		return invalid("enforced_spend_limit_reached", "spend limit reached")
	case f.msgHasPrefix("Your credit balance is too low"):
		return invalid(label, "no credit: dead until billing is fixed")
	case f.msgHasPrefix("Your project has exceeded its monthly spending cap"):
		return invalid(label, "monthly spending cap reached")
	case f.msgHasPrefix("This organization has been disabled"):
		return invalid(label, "organization disabled")
	case status == 402 || f.is("billing_error"):
		return invalid(label, "billing")
	}
	if r, ok := f.hasReason(googleKeyReasons); ok {
		return invalid(r, "")
	}
	if status == 401 || f.is("invalid_api_key", "account_deactivated") ||
		f.msgHasPrefix("API key not valid", "API key expired", "API Key not found",
			"Permission denied: Consumer 'api_key:", "Method doesn't allow unregistered callers") {
		return invalid(label, "")
	}
	if f.msgHasPrefix("You have reached your specified API usage limits") {
		until, ok := usageLimitEnd(msg, now)
		if !ok {
			until = now.Add(maxWait)
		}
		return Verdict{Class: QuotaExhausted, Until: until, Reason: reason(status, label, "usage limit", msg)}
	}
	if status == 429 {
		if q, ok := f.perDay(); ok {
			return Verdict{
				Class:  QuotaExhausted,
				Until:  NextPacificMidnight(now),
				Reason: reason(status, cmp(f.status, "RESOURCE_EXHAUSTED"), "", "per-day quota "+q),
			}
		}
		d := c.rateLimitWait(h, f, now)
		if d <= 0 {
			d = def
		}
		v := Verdict{Class: RateLimited, Until: now.Add(min(d, maxWait))}
		if q := f.quota(); q != "" {
			v.Reason = reason(status, cmp(f.status, "RESOURCE_EXHAUSTED"), "", "quota "+q)
		} else {
			v.Reason = reason(status, label, "", msg)
		}
		return v
	}
	if status == 403 && !f.errObj {
		return upstream("not a provider error: proxy IP blocked?")
	}
	return Verdict{Class: Client, Reason: reason(status, label, "", msg)}
}

// rateLimitWait returns the first positive wait hinted by a 429, or 0.
func (c *Classifier) rateLimitWait(h http.Header, f *facts, now time.Time) time.Duration {
	if d, _ := retryAfter(h, now); d > 0 {
		return d
	}
	if f.retryDelay != "" {
		if d, err := time.ParseDuration(strings.TrimSpace(f.retryDelay)); err == nil && d > 0 {
			return d
		}
	}
	if d := openaiReset(h, now); d > 0 {
		return d
	}
	if d := anthropicReset(h, now); d > 0 {
		return d
	}
	return messageWait(f.message)
}

// regionBlock recognises answers that refuse the proxy's IP address or
// region rather than the key.
func (f *facts) regionBlock(status int) (string, bool) {
	const note = "proxy IP or region blocked"
	switch {
	case status == 451,
		f.is("unsupported_country_region_territory"),
		status == 403 && f.typ == "forbidden", // Anthropic: "Request not allowed"
		f.status == "FAILED_PRECONDITION" && f.msgHasPrefix("User location is not supported"),
		f.msgHasPrefix("Country, region, or territory not supported"):
		return note, true
	case f.status == "FAILED_PRECONDITION" && strings.Contains(f.message, "not available in your country"):
		return note, true
	}
	return "", false
}

// usageLimitEnd reads "You will regain access on 2026-08-01 at 00:00 UTC"
// from an Anthropic usage-limit message.
func usageLimitEnd(msg string, now time.Time) (time.Time, bool) {
	const marker = "regain access on "
	i := strings.Index(msg, marker)
	if i < 0 {
		return time.Time{}, false
	}
	rest := msg[i+len(marker):]
	j := strings.Index(rest, " UTC")
	if j < 0 {
		return time.Time{}, false
	}
	t, err := time.ParseInLocation("2006-01-02 at 15:04", rest[:j], time.UTC)
	if err != nil || !t.After(now) || t.Sub(now) > maxQuotaWait {
		return time.Time{}, false
	}
	return t, true
}

func cmp(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// reason formats "<status> <label> (<note>): <msg>", leaving out empty
// parts; with neither label nor message the status text stands for the
// label, e.g. "502 Bad Gateway".
func reason(status int, label, note, msg string) string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(status))
	if label == "" && msg == "" {
		if t := http.StatusText(status); t != "" {
			b.WriteString(" " + t)
		}
	}
	if label != "" {
		b.WriteString(" " + label)
	}
	if note != "" {
		b.WriteString(" (" + note + ")")
	}
	if msg != "" {
		b.WriteString(": " + msg)
	}
	return clean(b.String())
}

// Err classifies a failure to get an answer at all: a transport error from
// http.Client.Do, or an error while reading the body. nil gives Success.
//
// If err is or wraps context.Canceled the caller's context was canceled,
// normally because the client went away: the verdict is Canceled, which
// blames nobody. Everything else (timeouts, context.DeadlineExceeded,
// connection refused or reset, DNS and TLS failures, a body cut short) is
// Upstream. The Reason names the cause without the request URL, which may
// carry the key (?key=…).
func (c *Classifier) Err(err error) Verdict {
	if err == nil {
		return Verdict{Class: Success}
	}
	if errors.Is(err, context.Canceled) {
		return Verdict{Class: Canceled, Reason: "canceled: the caller's context was canceled"}
	}
	inner := err
	if ue, ok := errors.AsType[*url.Error](err); ok && ue.Err != nil {
		inner = ue.Err // leave out Op and URL
	}
	text := inner.Error()
	var kind string
	var dns *net.DNSError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		kind = "timeout"
	case isTimeout(err):
		kind = "timeout"
	case errors.As(err, &dns):
		kind = "dns"
	case strings.Contains(text, "connection refused"), strings.Contains(text, "actively refused"):
		kind = "connection refused"
	case strings.Contains(text, "connection reset"):
		kind = "connection reset"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		kind = "connection closed early"
	case strings.Contains(text, "tls:"), strings.Contains(text, "x509:"):
		kind = "tls"
	default:
		kind = "transport"
	}
	return Verdict{Class: Upstream, Reason: clean(kind + ": " + text)}
}

func isTimeout(err error) bool {
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout()
}

// anthropicStatus maps the error types of Anthropic's error events to the
// HTTP status that carries them.
var anthropicStatus = map[string]int{
	"invalid_request_error": 400,
	"authentication_error":  401,
	"billing_error":         402,
	"permission_error":      403,
	"not_found_error":       404,
	"request_too_large":     413,
	"rate_limit_error":      429,
	"api_error":             500,
	"timeout_error":         504,
	"overloaded_error":      529,
}

// StreamError classifies an error that arrived inside a stream after a 200:
// Gemini's `data: {"error":{…}}` line or raw error JSON, OpenAI's
// `data: {"error":{…}}` event, Anthropic's `event: error` data. payload is
// the event's data (a leading "data:" is stripped). ok is false when
// payload is not an error object; the caller then has a normal chunk.
//
// The status is taken from the error itself (Google's code, Anthropic's
// type, OpenAI's code or type) and the payload classified as by
// [Classifier.Response] with no headers; an error without a recognisable
// status counts as a 500, so a broken stream is Upstream, never Success.
func (c *Classifier) StreamError(payload []byte) (v Verdict, ok bool) {
	s := strings.TrimSpace(string(payload[:min(len(payload), maxBody)]))
	s = strings.TrimSpace(strings.TrimPrefix(s, "data:"))
	f := parseBody([]byte(s))
	if !f.errObj {
		return Verdict{}, false
	}
	status := 0
	if n, err := strconv.Atoi(f.code); err == nil && n >= 400 && n <= 599 {
		status = n
	} else if n, ok := anthropicStatus[f.code]; ok { // OpenAI-compatible Anthropic
		status = n
	} else if n, ok := anthropicStatus[f.typ]; ok {
		status = n
	} else {
		switch {
		case f.is("rate_limit_exceeded", "insufficient_quota", "requests", "tokens"):
			status = 429
		case f.is("invalid_api_key"):
			status = 401
		default:
			status = 500
		}
	}
	return c.Response(status, nil, []byte(s)), true
}
