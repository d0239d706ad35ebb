// Package adminapi holds the request and response bodies of the proxy's
// admin API (/admin/...), shared by the proxy, its tests and the dashboard.
// It builds for GOOS=js GOARCH=wasm and imports only the standard library
// and the pool core.
package adminapi

import (
	"time"

	"github.com/keypool/keypool/worker-proxy/limits"
)

// TimeLayout is how the API writes times: UTC with milliseconds, as
// JavaScript's Date.toISOString does ("2024-01-15T10:30:00.000Z").
const TimeLayout = "2006-01-02T15:04:05.000Z"

// FormatTime writes t in TimeLayout, or nil for the zero time.
func FormatTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := string(appendTime(make([]byte, 0, len(TimeLayout)), t.UTC()))
	return &s
}

// appendTime appends t in TimeLayout, as t.AppendFormat(b, TimeLayout)
// does, without the general layout interpreter for the years 0–9999 (a
// key listing formats a few times per key, and on the edge each function a
// start runs is compiled first).
func appendTime(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, TimeLayout)
	}
	hour, minute, sec := t.Clock()
	two := func(b []byte, v int) []byte { return append(b, byte('0'+v/10), byte('0'+v%10)) }
	b = two(two(b, year/100), year%100)
	b = two(append(b, '-'), int(month))
	b = two(append(b, '-'), day)
	b = two(append(b, 'T'), hour)
	b = two(append(b, ':'), minute)
	b = two(append(b, ':'), sec)
	ms := t.Nanosecond() / 1e6
	return append(b, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}

// Metadata is a key's descriptive data. In updates a nil field is left as
// it is.
type Metadata struct {
	Description *string   `json:"description,omitempty"`
	Tags        *[]string `json:"tags,omitempty"`
}

// AddKeyRequest is the body of POST /admin/keys. MaxRequests 0 or absent
// means unlimited; IsActive absent means true.
type AddKeyRequest struct {
	Provider    string    `json:"provider"`
	APIKey      string    `json:"apiKey"`
	MaxRequests *int64    `json:"maxRequests,omitempty"`
	Weight      *int      `json:"weight,omitempty"`
	IsActive    *bool     `json:"isActive,omitempty"`
	Metadata    *Metadata `json:"metadata,omitempty"`
	// Project is the Google Cloud project (or account) whose quota the
	// key draws on; keys of one project share one quota. Absent: unknown,
	// learned from the provider's error details when it names one.
	Project *string `json:"project,omitempty"`
	// Proxy is the HTTP, HTTPS or SOCKS5 proxy for the key's upstream
	// calls ("socks5://user:pass@host:1080"); absent or "": direct.
	Proxy *string `json:"proxy,omitempty"`
}

// AddKeyResponse answers POST /admin/keys (201).
type AddKeyResponse struct {
	Message  string     `json:"message"`
	KeyID    string     `json:"keyId"`
	Provider string     `json:"provider"`
	Key      *KeyStatus `json:"key,omitempty"`
}

// BulkAddRequest is the body of POST /admin/keys/bulk: many keys of one
// provider sharing the same settings.
type BulkAddRequest struct {
	Provider    string    `json:"provider"`
	APIKeys     []string  `json:"apiKeys"`
	MaxRequests *int64    `json:"maxRequests,omitempty"`
	Weight      *int      `json:"weight,omitempty"`
	IsActive    *bool     `json:"isActive,omitempty"`
	Metadata    *Metadata `json:"metadata,omitempty"`
	// Project is the Google Cloud project (or account) whose quota the
	// key draws on; keys of one project share one quota. Absent: unknown,
	// learned from the provider's error details when it names one.
	Project *string `json:"project,omitempty"`
	// Proxy is the HTTP, HTTPS or SOCKS5 proxy for the key's upstream
	// calls ("socks5://user:pass@host:1080"); absent or "": direct.
	Proxy *string `json:"proxy,omitempty"`
}

// Results of one line of a bulk import.
const (
	BulkAdded     = "added"
	BulkDuplicate = "duplicate"
	BulkInvalid   = "invalid"
)

// BulkResult is the outcome of one apiKeys entry, in input order.
type BulkResult struct {
	Index     int    `json:"index"`
	Status    string `json:"status"`
	KeyID     string `json:"keyId,omitempty"`
	MaskedKey string `json:"maskedKey,omitempty"`
	Error     string `json:"error,omitempty"`
}

// BulkAddResponse answers POST /admin/keys/bulk.
type BulkAddResponse struct {
	Message    string       `json:"message"`
	Provider   string       `json:"provider"`
	Added      int          `json:"added"`
	Duplicates int          `json:"duplicates"`
	Invalid    int          `json:"invalid"`
	Results    []BulkResult `json:"results"`
}

// BulkDeleteRequest is the body of POST /admin/keys/bulk-delete.
type BulkDeleteRequest struct {
	IDs []string `json:"ids"`
}

// BulkDeleteResponse answers POST /admin/keys/bulk-delete.
type BulkDeleteResponse struct {
	Message  string   `json:"message"`
	Deleted  int      `json:"deleted"`
	NotFound []string `json:"notFound"`
}

// UpdateKeyRequest is the body of PUT /admin/keys/{id}; absent fields stay.
// "isActive": true also clears a disabled state and a cooldown: the
// operator vouches for the key.
type UpdateKeyRequest struct {
	IsActive    *bool     `json:"isActive,omitempty"`
	MaxRequests *int64    `json:"maxRequests,omitempty"`
	Weight      *int      `json:"weight,omitempty"`
	Metadata    *Metadata `json:"metadata,omitempty"`
	// Project sets the key's project; "" clears it.
	Project *string `json:"project,omitempty"`
	// Proxy sets the key's outbound proxy; "" removes it.
	Proxy *string `json:"proxy,omitempty"`
}

// KeyResponse answers PUT and DELETE /admin/keys/{id}.
type KeyResponse struct {
	Message string     `json:"message"`
	KeyID   string     `json:"keyId"`
	Key     *KeyStatus `json:"key,omitempty"`
}

// Key states, as KeyStatus.State reports them.
const (
	StateActive    = "active"    // can serve
	StateInactive  = "inactive"  // turned off by an operator
	StateExhausted = "exhausted" // reached maxRequests
	StateCooling   = "cooling"   // rate limited: rests until coolingUntil
	StateDisabled  = "disabled"  // the provider rejected it: see disabledReason
)

// LastError is a key's most recent failed upstream answer.
type LastError struct {
	Status  int     `json:"status"`
	Message string  `json:"message"`
	At      *string `json:"at"`
}

// KeyStatus is one key as status reports it. It never holds the secret.
type KeyStatus struct {
	ID          string     `json:"id"`
	Provider    string     `json:"provider"`
	IsActive    bool       `json:"isActive"`
	Usage       string     `json:"usage"` // "150/1000", or "150/unlimited"
	LastUsed    *string    `json:"lastUsed"`
	MaskedKey   string     `json:"maskedKey"`
	State       string     `json:"state"`
	Available   bool       `json:"available"`
	MaxRequests int64      `json:"maxRequests"`
	Weight      int        `json:"weight"`
	Requests    int64      `json:"requests"`
	Successes   int64      `json:"successes"`
	Failures    int64      `json:"failures"`
	SuccessRate float64    `json:"successRate"`
	InFlight    int64      `json:"inFlight"`
	LastError   *LastError `json:"lastError"`
	// ConsecutiveFailures counts failures blamed on the key since its last
	// success.
	ConsecutiveFailures int64 `json:"consecutiveFailures"`
	// PromptTokens and CompletionTokens add up what the key's answers
	// reported, kept with its usage (reset with it).
	PromptTokens     int64    `json:"promptTokens"`
	CompletionTokens int64    `json:"completionTokens"`
	CoolingUntil     *string  `json:"coolingUntil"`
	CoolingReason    string   `json:"coolingReason,omitempty"`
	DisabledReason   string   `json:"disabledReason,omitempty"`
	DisabledAt       *string  `json:"disabledAt"`
	Description      string   `json:"description"`
	Tags             []string `json:"tags"`
	CreatedAt        *string  `json:"createdAt"`
	UpdatedAt        *string  `json:"updatedAt"`
	// Project is the Google Cloud project (or account) whose quota the key
	// draws on, set or learned; "" when unknown.
	Project string `json:"project,omitempty"`
	// ProjectLearned is true when the proxy learned Project from the
	// provider's error details (Google's ErrorInfo consumer), false when
	// an operator set it.
	ProjectLearned bool `json:"projectLearned,omitempty"`
	// Proxy is the key's outbound proxy with its password masked
	// ("socks5://user:xxxxx@host:1080"); "" for a direct connection.
	Proxy string `json:"proxy,omitempty"`
	// ModelCooldowns are the (key, model) pairs at rest: the key serves
	// its other models meanwhile.
	ModelCooldowns []ModelCooldown `json:"modelCooldowns,omitempty"`
}

// ModelCooldown is one (key, model) pair at rest: a rate limit or a
// per-model quota of that model only.
type ModelCooldown struct {
	Model  string  `json:"model"`
	Until  *string `json:"until"`
	Reason string  `json:"reason,omitempty"`
}

// ProviderStatus answers GET /admin/status?provider=NAME.
type ProviderStatus struct {
	Provider string `json:"provider"`
	// PromptTokens and CompletionTokens add up its keys' counts.
	PromptTokens     int64 `json:"promptTokens"`
	CompletionTokens int64 `json:"completionTokens"`
	TotalKeys        int   `json:"totalKeys"`
	ActiveKeys       int   `json:"activeKeys"`
	AvailableKeys    int   `json:"availableKeys"`
	CoolingKeys      int   `json:"coolingKeys"`
	DisabledKeys     int   `json:"disabledKeys"`
	// RestingModelPairs counts the (key, model) pairs at rest.
	RestingModelPairs int `json:"restingModelPairs"`
	// Projects counts the distinct projects the keys name, and
	// KeysWithoutProject the keys whose project is unknown: the pool holds
	// at most Projects+KeysWithoutProject independent quotas ("120 keys in
	// 9 projects").
	Projects           int         `json:"projects"`
	KeysWithoutProject int         `json:"keysWithoutProject"`
	Keys               []KeyStatus `json:"keys"`
}

// StatusResponse answers GET /admin/status without a provider: every
// configured provider's block, and totals.
type StatusResponse struct {
	Store         StoreHealth      `json:"store"`
	TotalKeys     int              `json:"totalKeys"`
	ActiveKeys    int              `json:"activeKeys"`
	AvailableKeys int              `json:"availableKeys"`
	CoolingKeys   int              `json:"coolingKeys"`
	DisabledKeys  int              `json:"disabledKeys"`
	Providers     []ProviderStatus `json:"providers"`
	// Projects and KeysWithoutProject sum the providers' (see
	// ProviderStatus).
	Projects           int `json:"projects"`
	KeysWithoutProject int `json:"keysWithoutProject"`
}

// ResetRequest is the body of POST /admin/reset.
type ResetRequest struct {
	Provider string `json:"provider"`
}

// ResetResponse answers POST /admin/reset.
type ResetResponse struct {
	Message   string `json:"message"`
	Provider  string `json:"provider"`
	KeysReset int    `json:"keysReset"`
}

// CreateTokenRequest is the body of POST /admin/tokens. Only Name is
// required; absent settings restrict nothing.
type CreateTokenRequest struct {
	Name string `json:"name"`
	// Limits: rpm, rpd, tpm, tpd; 0 or absent means unlimited.
	Limits *limits.Limits `json:"limits,omitempty"`
	// ExpiresAt is an RFC 3339 time in the future; absent: never.
	ExpiresAt *string `json:"expiresAt,omitempty"`
	// Providers and Models the token may use: names or * patterns;
	// absent or empty allows all.
	Providers []string `json:"providers,omitempty"`
	Models    []string `json:"models,omitempty"`
}

// UpdateTokenRequest is the body of PUT /admin/tokens/{id}; absent fields
// stay. Limits replaces all four limits (an absent one becomes
// unlimited); "expiresAt": "" removes the expiry; an empty providers or
// models list allows all.
type UpdateTokenRequest struct {
	Name      *string        `json:"name,omitempty"`
	Limits    *limits.Limits `json:"limits,omitempty"`
	ExpiresAt *string        `json:"expiresAt,omitempty"`
	Providers *[]string      `json:"providers,omitempty"`
	Models    *[]string      `json:"models,omitempty"`
}

// TokenResponse answers PUT /admin/tokens/{id}.
type TokenResponse struct {
	Message string `json:"message"`
	Token   Token  `json:"token"`
}

// TokenUsage is what one client token used on this proxy instance since
// Since (its start): requests it made (refused ones included) and the
// tokens their answers reported.
type TokenUsage struct {
	Requests         int64   `json:"requests"`
	Refused          int64   `json:"refused"` // answered 401/403/429 by the token's settings
	PromptTokens     int64   `json:"promptTokens"`
	CompletionTokens int64   `json:"completionTokens"`
	Since            *string `json:"since"`
}

// CreateTokenResponse answers POST /admin/tokens (201). Token is shown this
// once and never again.
type CreateTokenResponse struct {
	Message string `json:"message"`
	ID      string `json:"id"`
	Name    string `json:"name"`
	Token   string `json:"token"`
	Masked  string `json:"masked"`
	// Settings is the token as GET /admin/tokens lists it.
	Settings *Token `json:"settings,omitempty"`
}

// Where a client token comes from.
const (
	TokenSourceAdmin = "admin" // created through the admin API; revocable
	TokenSourceEnv   = "env"   // from CLIENT_TOKENS; change the environment to revoke
)

// Token is a client token as listed: masked, never whole.
type Token struct {
	ID        string        `json:"id"`
	Name      string        `json:"name"`
	Masked    string        `json:"masked"`
	Source    string        `json:"source"`
	CreatedAt *string       `json:"createdAt"`
	UpdatedAt *string       `json:"updatedAt"`
	Limits    limits.Limits `json:"limits"`
	ExpiresAt *string       `json:"expiresAt"`
	Expired   bool          `json:"expired"`
	Providers []string      `json:"providers"`
	Models    []string      `json:"models"`
	Usage     TokenUsage    `json:"usage"`
}

// TokenList answers GET /admin/tokens.
type TokenList struct {
	Tokens []Token `json:"tokens"`
}

// Error is the body of every error answer. Other fields may accompany it
// (provider, strategy, suggestion, keyId).
type Error struct {
	Error      string `json:"error"`
	Provider   string `json:"provider,omitempty"`
	Strategy   string `json:"strategy,omitempty"`
	Suggestion string `json:"suggestion,omitempty"`
	KeyID      string `json:"keyId,omitempty"`
}

// KeyTestResult answers POST /admin/keys/{id}/test: what the provider said
// to the cheapest call (listing models) with the key, and the key's state
// after it.
type KeyTestResult struct {
	KeyID     string     `json:"keyId"`
	Provider  string     `json:"provider"`
	OK        bool       `json:"ok"`
	Status    int        `json:"status"` // upstream HTTP status; 0 if none came
	Class     string     `json:"class"`  // success, invalid_key, rate_limited, quota_exhausted, upstream, client
	Message   string     `json:"message,omitempty"`
	LatencyMs int64      `json:"latencyMs"`
	Key       *KeyStatus `json:"key,omitempty"`
}

// BulkTestResponse answers POST /admin/keys/bulk-test ({"ids": [...]}).
type BulkTestResponse struct {
	Passed  int             `json:"passed"`
	Failed  int             `json:"failed"`
	Results []KeyTestResult `json:"results"`
}

// StoreHealth says whether the store backs the proxy as it should. While
// it is degraded the relay serves from memory and admin writes answer 503.
type StoreHealth struct {
	Backend string  `json:"backend"`
	OK      bool    `json:"ok"`
	Since   *string `json:"since"`
	Detail  string  `json:"detail,omitempty"`
}

// TrafficBucket counts the client requests one provider finished within
// one bucket. Requests = Success + Errors + requests the client abandoned;
// Unserved (503: no key could serve) is part of Errors; Retries counts the
// extra upstream attempts failover made.
type TrafficBucket struct {
	Requests int64 `json:"requests"`
	Success  int64 `json:"success"`
	Errors   int64 `json:"errors"`
	Unserved int64 `json:"unserved"`
	Retries  int64 `json:"retries"`
}

// Add adds o's counts to b.
func (b *TrafficBucket) Add(o TrafficBucket) {
	b.Requests += o.Requests
	b.Success += o.Success
	b.Errors += o.Errors
	b.Unserved += o.Unserved
	b.Retries += o.Retries
}

// ProviderTraffic is one provider's buckets, oldest first.
type ProviderTraffic struct {
	Provider string          `json:"provider"`
	Buckets  []TrafficBucket `json:"buckets"`
}

// TrafficResponse answers GET /admin/traffic?minutes=N: the requests this
// proxy instance relayed, per provider, in buckets of BucketSeconds from
// Start, the last one still filling. Counts live in memory and start at
// Since (the instance's start).
type TrafficResponse struct {
	BucketSeconds int               `json:"bucketSeconds"`
	Start         string            `json:"start"`
	Since         string            `json:"since"`
	Providers     []ProviderTraffic `json:"providers"`
}

// UsageTotals are requests and tokens under one name.
type UsageTotals struct {
	Name             string `json:"name"`
	Requests         int64  `json:"requests"`
	PromptTokens     int64  `json:"promptTokens"`
	CompletionTokens int64  `json:"completionTokens"`
}

// UsageResponse answers GET /admin/usage: the requests this proxy instance
// relayed since Since (its start) and the tokens their answers reported,
// by provider, by model and by client token (its id). Models beyond the
// first MaxUsageModels are counted under "other".
type UsageResponse struct {
	Since     string        `json:"since"`
	Providers []UsageTotals `json:"providers"`
	Models    []UsageTotals `json:"models"`
	Tokens    []UsageTotals `json:"tokens"`
}

// MaxUsageModels bounds the model names UsageResponse tracks.
const MaxUsageModels = 500
