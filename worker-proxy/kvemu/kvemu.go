// Package kvemu is an in-process emulator of Cloudflare's Workers KV REST API:
// the account-scoped paths under /client/v4/accounts/{account_id}/storage/kv/namespaces
// that github.com/cloudflare/cloudflare-go/v6/kv talks to. It keeps data in
// memory and reproduces what a client of the real API has to cope with:
//
//   - the JSON envelope {"success","errors","messages","result"[,"result_info"]}
//     with Content-Type application/json on every answer except a value read,
//     which is the raw bytes;
//   - status and error codes: 401/403 with code 10000, 404 with 10009 (key) and
//     10013 (namespace), 400 with 10014 (duplicate title), 413/414 for sizes,
//     429 with 10048 (daily free-plan limit) and 971 (REST rate limit);
//   - cursor pagination of up to 1,000 keys, metadata, TTLs, bulk write, bulk
//     delete and bulk get;
//   - billing as Cloudflare counts it (Counts), optionally the free plan's
//     limits (Options.Limits), eventual consistency (Options.StaleFor), and
//     injected faults (InjectFault).
//
// Serve it with Start (a test server on 127.0.0.1) or mount the Emulator, an
// http.Handler, anywhere: it routes on the escaped request path itself.
package kvemu

import (
	"net/http"
	"strings"
	"sync"
	"time"
)

// Error codes the emulator answers with, as Cloudflare's API does.
const (
	CodeRateLimited       = 971   // 429: the token sent more than Limits.RequestsPerWindow
	CodeNoRoute           = 7003  // 404: the path is not an API route
	CodeMethodNotAllowed  = 7001  // 405: the route exists, the method does not
	CodeAuth              = 10000 // 401: missing or unknown token; 403: token without access
	CodeInternal          = 10001 // 5xx (injected faults)
	CodeBadPage           = 10007 // 400: page < 1
	CodeBadPerPage        = 10008 // 400: per_page outside 5..100
	CodeKeyNotFound       = 10009 // 404: value or metadata read of a missing key
	CodeMalformedValue    = 10012 // 400: no value part, bad base64, value not JSON for type "json"
	CodeNamespaceNotFound = 10013 // 404
	CodeNamespaceExists   = 10014 // 400: create or rename to a title the account already uses
	CodeTooManyNamespaces = 10018 // 400: more than 1,000 namespaces in the account
	CodeMissingTitle      = 10019 // 400
	CodePayloadTooLarge   = 10024 // 413: value > 25 MiB, metadata > 1,024 bytes, bulk body > 100 MB
	CodeBadLimit          = 10028 // 400: list keys limit outside 10..1000
	CodeInvalidRequest    = 10029 // 400: body is not the JSON the route takes
	CodeKeyTooLong        = 10030 // 414 (path) or 400 (bulk body): key name > 512 bytes
	CodeBadExpiration     = 10033 // 400: expiration less than 60 s in the future
	CodeBadExpirationTTL  = 10034 // 400: expiration_ttl < 60
	CodeBadCursor         = 10041 // 400
	CodeIllegalKey        = 10042 // 400: empty, ".", ".." or not percent-decodable
	CodeBadOrder          = 10043 // 400
	CodeBadDirection      = 10044 // 400
	CodeTooManyBulkKeys   = 10046 // 400: > 10,000 pairs/keys (write, delete) or > 100 keys (get)
	CodeInvalidMetadata   = 10047 // 400: metadata is not JSON
	CodeDailyLimit        = 10048 // 429: free-plan daily limit for the operation reached
)

// Messages of the codes a client is most likely to match on.
const (
	MsgAuth        = "Authentication error"
	MsgDailyLimit  = "account has reached the free usage limit for this operation for today"
	MsgRateLimited = "Please wait and consider throttling your request speed"
	// The permission a KV token needs, named in 403 messages.
	PermissionName = "Workers KV Storage"
)

// Limits of Cloudflare's API and storage that the emulator always enforces.
const (
	MaxKeyBytes      = 512
	MaxMetadataBytes = 1024
	MaxValueBytes    = 25 << 20
	MaxBulkBodyBytes = 100_000_000
	MaxBulkPairs     = 10_000
	MaxBulkGetKeys   = 100
	MinExpirationTTL = 60
	MaxNamespaces    = 1000
	DefaultListLimit = 1000
	MinListLimit     = 10
	DefaultPerPage   = 20
	MinPerPage       = 5
	MaxPerPage       = 100
)

const freePlanWindow = 5 * time.Minute

// TokenInfo is what an API token may do.
type TokenInfo struct {
	// AccountID is the only account the token works for; any other account in
	// the path answers 403.
	AccountID string
	// CanRead allows listing namespaces and keys and reading values,
	// metadata and bulk gets (Account → Workers KV Storage → Read).
	CanRead bool
	// CanWrite allows creating, renaming and deleting namespaces and writing
	// and deleting keys (Account → Workers KV Storage → Edit, which includes
	// Read).
	CanWrite bool
}

// Limits are quotas the emulator enforces. A zero field is no limit; the
// zero Limits enforces nothing. FreePlan returns Cloudflare's free plan.
type Limits struct {
	// Daily operation quotas per account, reset at 00:00 UTC of Options.Now.
	// An operation that would go over answers 429 with code 10048 and does
	// nothing (a bulk request is refused whole).
	ReadsPerDay, WritesPerDay, DeletesPerDay, ListsPerDay int64
	// RequestsPerWindow caps REST requests per token in a fixed Window that
	// starts with the token's first request after the previous window ended.
	// Past the cap every request of the token answers 429 with code 971 and
	// Retry-After (seconds to the window's end) until the window ends.
	RequestsPerWindow int64
	// Window defaults to 5 minutes.
	Window time.Duration
}

// FreePlan returns the limits of Cloudflare's free plan: 100,000 reads,
// 1,000 writes, 1,000 deletes and 1,000 lists a day per account, and 1,200
// REST requests per 5 minutes per token.
func FreePlan() Limits {
	return Limits{
		ReadsPerDay:       100_000,
		WritesPerDay:      1_000,
		DeletesPerDay:     1_000,
		ListsPerDay:       1_000,
		RequestsPerWindow: 1_200,
		Window:            freePlanWindow,
	}
}

// Options configure an Emulator.
type Options struct {
	// Tokens maps a bearer token to what it may do. A request without a
	// token in the map answers 401.
	Tokens map[string]TokenInfo
	// Now is the clock for TTLs, StaleFor, daily quotas and the request
	// window. Default time.Now. Injected latency always uses real time.
	Now func() time.Time
	// StaleFor simulates eventual consistency. A write or delete made at time
	// t (by Now) is seen by reads — value reads, metadata reads, bulk gets and
	// key lists — only from t+StaleFor on; until then they see the key as it
	// was before (missing, if it did not exist). Several writes within the
	// window: a read at time r sees the newest one made at or before
	// r-StaleFor. Expiration is judged against the current time, never the
	// stale one. Namespace create/rename/delete take effect at once. Zero:
	// every read sees the latest write. With a frozen fake clock and
	// StaleFor > 0 nothing written becomes visible until the clock moves.
	StaleFor time.Duration
	// Limits to enforce; the zero value enforces none. Use FreePlan().
	Limits Limits
}

// Emulator is the KV REST API as an http.Handler. It serves paths starting
// with /client/v4/accounts/. Safe for concurrent use.
type Emulator struct {
	tokens   map[string]TokenInfo
	now      func() time.Time
	staleFor time.Duration
	limits   Limits

	mu       sync.Mutex
	accounts map[string]*account
	counts   Counts
	windows  map[string]*window
	faults   []*faultState
}

// New returns an empty Emulator.
func New(opts Options) *Emulator {
	e := &Emulator{
		tokens:   make(map[string]TokenInfo, len(opts.Tokens)),
		now:      opts.Now,
		staleFor: opts.StaleFor,
		limits:   opts.Limits,
		accounts: make(map[string]*account),
		windows:  make(map[string]*window),
	}
	for k, v := range opts.Tokens {
		e.tokens[k] = v
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.limits.RequestsPerWindow > 0 && e.limits.Window <= 0 {
		e.limits.Window = freePlanWindow
	}
	e.counts.Requests = make(map[string]int64)
	return e
}

// ServeHTTP answers one API request.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f := e.takeFault(r); f != nil {
		if !f.apply(w, r) {
			return
		}
	}

	token, ok := bearer(r)
	info, known := e.tokens[token]
	if !ok || !known {
		e.mu.Lock()
		e.counts.Unauthenticated++
		e.mu.Unlock()
		writeError(w, &apiErr{status: http.StatusUnauthorized, code: CodeAuth, msg: MsgAuth})
		return
	}
	if err := e.admit(token); err != nil {
		writeError(w, err)
		return
	}

	rt, err := parseRoute(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if info.AccountID != rt.account {
		writeError(w, &apiErr{status: http.StatusForbidden, code: CodeAuth,
			msg: MsgAuth + ": the API token has no " + PermissionName + " permission on account " + rt.account})
		return
	}
	if rt.op.writes() && !info.CanWrite {
		writeError(w, &apiErr{status: http.StatusForbidden, code: CodeAuth,
			msg: MsgAuth + ": the API token lacks the permission Account → " + PermissionName + " → Edit"})
		return
	}
	if !rt.op.writes() && !info.CanRead && !info.CanWrite {
		writeError(w, &apiErr{status: http.StatusForbidden, code: CodeAuth,
			msg: MsgAuth + ": the API token lacks the permission Account → " + PermissionName + " → Read"})
		return
	}
	if err := handlers[rt.op](e, w, r, rt); err != nil {
		writeError(w, err)
	}
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
