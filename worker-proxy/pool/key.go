package pool

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keypool/keypool/worker-proxy/limits"
)

// Limits on what a key may carry. They keep one key small enough for any
// store (a Cloudflare KV value's metadata is at most 1,024 bytes).
const (
	MaxSecretLen      = 512
	MaxDescriptionLen = 500
	MaxTags           = 16
	MaxTagLen         = 32
	MaxWeight         = 1000
	MaxProjectLen     = 64
)

// Key is one pooled API key and its configuration. Secret is the provider
// credential; it never leaves the proxy except masked (see Mask).
type Key struct {
	ID       string `json:"id"`
	Provider string `json:"provider"`
	Secret   string `json:"apiKey"`
	IsActive bool   `json:"isActive"`
	// ProjectLearned says Project came from the provider's error details
	// (SetProject), not from an operator; false when Project is "". (It
	// sits beside IsActive so that a Key takes 240 bytes, not 256.)
	ProjectLearned bool      `json:"projectLearned,omitempty"`
	MaxRequests    int64     `json:"maxRequests"` // 0 means unlimited
	Weight         int       `json:"weight,omitempty"`
	Description    string    `json:"description,omitempty"`
	Tags           []string  `json:"tags,omitempty"`
	CreatedAt      time.Time `json:"createdAt"`
	UpdatedAt      time.Time `json:"updatedAt"`
	// DisabledReason, when set, keeps the key from serving until an
	// operator or a successful key test clears it: the provider said the
	// key is invalid, revoked or out of credit.
	DisabledReason string    `json:"disabledReason,omitempty"`
	DisabledAt     time.Time `json:"disabledAt,omitzero"`
	// Revision counts the changes to the key, from 1 when it is added. A
	// store writes a key only over an older revision, so two instances'
	// concurrent edits cannot silently overwrite each other.
	Revision int64 `json:"revision,omitempty"`
	// Project is the Google Cloud project (or provider account) whose
	// quota the key draws on: keys of one project share one quota. Set
	// by an operator, or learned from the provider's error details
	// (Google's ErrorInfo consumer "projects/N" gives "N"). "" when unknown.
	Project string `json:"project,omitempty"`
	// Proxy is the HTTP, HTTPS or SOCKS5 proxy the key's upstream calls
	// go through ("socks5://user:pass@10.0.0.7:1080"), "" for a direct
	// connection. A broken proxy fails the attempt; the call never goes
	// direct. Its password is a secret: shown only by MaskProxy.
	Proxy string `json:"proxy,omitempty"`
}

// EffectiveWeight is the key's selection weight, 1 when unset.
func (k Key) EffectiveWeight() int {
	if k.Weight <= 0 {
		return 1
	}
	return k.Weight
}

// Clone returns a deep copy of k.
func (k Key) Clone() Key {
	if k.Tags != nil {
		k.Tags = append([]string(nil), k.Tags...)
	}
	return k
}

// LastError describes the most recent failed upstream answer of a key. Its
// Message is short and never holds a secret.
type LastError struct {
	Status  int       `json:"status"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// Usage is the persisted statistics of one key.
type Usage struct {
	Requests  int64      `json:"requests"`
	Successes int64      `json:"successes"`
	Failures  int64      `json:"failures"`
	LastUsed  time.Time  `json:"lastUsed,omitzero"`
	LastError *LastError `json:"lastError,omitempty"`
	// PromptTokens and CompletionTokens add up what the key's successful
	// answers reported (package tokenusage).
	PromptTokens     int64 `json:"promptTokens,omitempty"`
	CompletionTokens int64 `json:"completionTokens,omitempty"`
}

// SuccessRate is successes over finished requests, or 1 when none finished.
func (u Usage) SuccessRate() float64 {
	done := u.Successes + u.Failures
	if done == 0 {
		return 1
	}
	return float64(u.Successes) / float64(done)
}

// UsageDelta is what one key did since the last flush: counts to add, and
// the newest LastUsed and LastError to keep (zero or nil: unchanged).
type UsageDelta struct {
	ID               string     `json:"id"`
	Requests         int64      `json:"requests"`
	Successes        int64      `json:"successes"`
	Failures         int64      `json:"failures"`
	LastUsed         time.Time  `json:"lastUsed,omitzero"`
	LastError        *LastError `json:"lastError,omitempty"`
	PromptTokens     int64      `json:"promptTokens,omitempty"`
	CompletionTokens int64      `json:"completionTokens,omitempty"`
}

// Counts reports whether d adds to any count (requests or tokens).
func (d UsageDelta) Counts() bool {
	return d.Requests != 0 || d.Successes != 0 || d.Failures != 0 || d.PromptTokens != 0 || d.CompletionTokens != 0
}

// Apply returns u with d added.
func (u Usage) Apply(d UsageDelta) Usage {
	u.Requests += d.Requests
	u.Successes += d.Successes
	u.Failures += d.Failures
	u.PromptTokens += d.PromptTokens
	u.CompletionTokens += d.CompletionTokens
	if d.LastUsed.After(u.LastUsed) {
		u.LastUsed = d.LastUsed
	}
	if d.LastError != nil && (u.LastError == nil || !d.LastError.At.Before(u.LastError.At)) {
		le := *d.LastError
		u.LastError = &le
	}
	return u
}

// ClientToken is a credential that relay callers present. Only its SHA-256
// Hash is kept; the token itself is shown once, when it is created.
type ClientToken struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Hash      string    `json:"hash"`   // hex SHA-256 of the token
	Masked    string    `json:"masked"` // Mask(token)
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt,omitzero"`

	// What the token may do; zero values restrict nothing (package limits).
	Limits    limits.Limits `json:"limits,omitzero"`
	ExpiresAt time.Time     `json:"expiresAt,omitzero"` // zero: never
	// Providers and Models the token may use: names or * patterns; empty
	// allows all.
	Providers []string `json:"providers,omitempty"`
	Models    []string `json:"models,omitempty"`
}

const alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
const base62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomString returns n characters drawn uniformly from alphabet.
func randomString(alphabet string, n int) string {
	b := make([]byte, n)
	max := byte(256 - 256%len(alphabet))
	var buf [64]byte
	for i := 0; i < n; {
		rand.Read(buf[:])
		for _, c := range buf {
			if c < max && i < n {
				b[i] = alphabet[int(c)%len(alphabet)]
				i++
			}
		}
	}
	return string(b)
}

// NewKeyID returns an id of the form key_<unix millis>_<6 lowercase alphanumerics>.
func NewKeyID(now time.Time) string {
	return "key_" + strconv.FormatInt(now.UnixMilli(), 10) + "_" + randomString(alnum, 6)
}

// NewTokenID returns an id for a client token, tok_<12 alphanumerics>.
func NewTokenID() string { return "tok_" + randomString(alnum, 12) }

// NewTokenSecret returns a new client token: "kp-" and 40 base62 characters.
func NewTokenSecret() string { return "kp-" + randomString(base62, 40) }

// NewAdminKey returns a strong random admin key.
func NewAdminKey() string { return "kpa-" + randomString(base62, 40) }

// Mask shows just enough of a secret to tell keys apart: "AIza…x7Q2".
func Mask(secret string) string {
	r := []rune(secret)
	switch n := len(r); {
	case n >= 12:
		return string(r[:4]) + "…" + string(r[n-4:])
	case n >= 6:
		return string(r[:1]) + "…" + string(r[n-2:])
	default:
		return "…"
	}
}

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// ValidateProvider checks a provider name: 1-32 of a-z, 0-9, '-', '_'.
func ValidateProvider(name string) error {
	if name == "" {
		return invalid("provider is required")
	}
	if len(name) > 32 {
		return invalid("provider name is longer than 32 characters")
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return invalid("provider name may only contain a-z, 0-9, '-' and '_'")
		}
	}
	return nil
}

// ValidateSecret checks an API key as given by a user. It never echoes it.
func ValidateSecret(s string) error {
	switch {
	case s == "":
		return invalid("apiKey is required")
	case len(s) > MaxSecretLen:
		return invalid("apiKey is longer than %d bytes", MaxSecretLen)
	case !utf8.ValidString(s):
		return invalid("apiKey is not valid UTF-8")
	}
	for _, c := range s {
		if c <= ' ' || c == 0x7f || unicode.IsSpace(c) || !unicode.IsPrint(c) {
			return invalid("apiKey contains whitespace or control characters")
		}
	}
	return nil
}

// ValidateMaxRequests checks a usage limit; 0 means unlimited.
func ValidateMaxRequests(n int64) error {
	if n < 0 {
		return invalid("maxRequests must be 0 (unlimited) or a positive integer")
	}
	return nil
}

// ValidateWeight checks a selection weight; 0 means the default of 1.
func ValidateWeight(n int) error {
	if n < 0 || n > MaxWeight {
		return invalid("weight must be between 0 and %d", MaxWeight)
	}
	return nil
}

// ValidateDescription checks a free-text description.
func ValidateDescription(s string) error {
	if utf8.RuneCountInString(s) > MaxDescriptionLen {
		return invalid("description is longer than %d characters", MaxDescriptionLen)
	}
	if !utf8.ValidString(s) {
		return invalid("description is not valid UTF-8")
	}
	for _, c := range s {
		if c < ' ' && c != '\t' || c == 0x7f {
			return invalid("description contains control characters")
		}
	}
	return nil
}

// ValidateProject checks a project name: at most MaxProjectLen of a-z,
// A-Z, 0-9, '-', '_', '.' and ':'. Google's error details name the project
// by its number ("895908428397"), which is what the proxy learns; a key
// set to a project id ("my-project") is grouped only with keys set alike.
func ValidateProject(s string) error {
	if len(s) > MaxProjectLen {
		return invalid("project is longer than %d characters", MaxProjectLen)
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return invalid("project may only contain letters, digits, '-', '_', '.' and ':'")
		}
	}
	return nil
}

// MaxProxyLen bounds a key's proxy URL.
const MaxProxyLen = 512

// ValidateProxy checks a proxy URL: http, https, socks5 or socks5h, with a
// host and nothing after it but an optional "/".
func ValidateProxy(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > MaxProxyLen {
		return invalid("proxy is longer than %d characters", MaxProxyLen)
	}
	u, err := url.Parse(s)
	if err != nil {
		return invalid("proxy is not a URL")
	}
	switch u.Scheme {
	case "http", "https", "socks5", "socks5h":
	default:
		return invalid("proxy must be an http://, https://, socks5:// or socks5h:// URL")
	}
	if u.Hostname() == "" || u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "" {
		return invalid("proxy must be scheme://[user:password@]host:port")
	}
	return nil
}

// MaskProxy shows a proxy URL with its password masked
// ("socks5://user:xxxxx@10.0.0.7:1080"); "" stays "".
func MaskProxy(s string) string {
	u, err := url.Parse(s)
	if err != nil || s == "" {
		return ""
	}
	return u.Redacted()
}

// NormalizeTags trims, checks and de-duplicates tags, keeping their order.
func NormalizeTags(tags []string) ([]string, error) {
	if len(tags) > MaxTags {
		return nil, invalid("at most %d tags are allowed", MaxTags)
	}
	out := make([]string, 0, len(tags))
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		t = strings.TrimSpace(t)
		switch {
		case t == "":
			return nil, invalid("tags must not be empty")
		case utf8.RuneCountInString(t) > MaxTagLen:
			return nil, invalid("a tag is longer than %d characters", MaxTagLen)
		case !utf8.ValidString(t):
			return nil, invalid("a tag is not valid UTF-8")
		}
		for _, c := range t {
			if c < ' ' || c == 0x7f || c == ',' {
				return nil, invalid("tags must not contain control characters or commas")
			}
		}
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out, nil
}

// Validate checks every field of k that a user sets.
func (k Key) Validate() error {
	if err := ValidateProvider(k.Provider); err != nil {
		return err
	}
	if err := ValidateSecret(k.Secret); err != nil {
		return err
	}
	if err := ValidateMaxRequests(k.MaxRequests); err != nil {
		return err
	}
	if err := ValidateWeight(k.Weight); err != nil {
		return err
	}
	if err := ValidateDescription(k.Description); err != nil {
		return err
	}
	if err := ValidateProject(k.Project); err != nil {
		return err
	}
	if err := ValidateProxy(k.Proxy); err != nil {
		return err
	}
	_, err := NormalizeTags(k.Tags)
	return err
}
