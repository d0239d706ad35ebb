// Package adminclient is the typed client of the proxy's admin API
// (/admin/...), used by the dashboard (GOOS=js GOARCH=wasm, over
// window.fetch) and by tests (over net/http). The browser build does not
// import net/http: requests go through the small Doer interface.
package adminclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/keypool/keypool/worker-proxy/adminapi"
)

// Doer sends one HTTP request and returns the status and body of the
// answer. A request that got no answer returns an error; a *TransportError
// says whether the server was unreachable or the browser refused the
// answer (CORS).
type Doer interface {
	Do(ctx context.Context, method, url string, headers map[string]string, body []byte) (status int, respBody []byte, err error)
}

// Kind classifies an Error.
type Kind int

const (
	KindHTTP         Kind = iota // the server answered with an error status
	KindUnreachable              // no answer: wrong URL, server down, network
	KindCORS                     // the server answered but the browser hid it: origin not in ALLOWED_ORIGINS
	KindUnauthorized             // 401: wrong or missing admin key
	KindDecode                   // the answer was not the expected JSON
)

func (k Kind) String() string {
	switch k {
	case KindUnreachable:
		return "unreachable"
	case KindCORS:
		return "cors"
	case KindUnauthorized:
		return "unauthorized"
	case KindDecode:
		return "decode"
	}
	return "http"
}

// TransportError is what a Doer returns when no answer could be read.
type TransportError struct {
	CORS bool // the server is reachable, but the browser blocked the answer
	Err  error
}

func (e *TransportError) Error() string {
	if e.CORS {
		return "request blocked by the browser (CORS): " + e.Err.Error()
	}
	return "proxy unreachable: " + e.Err.Error()
}

func (e *TransportError) Unwrap() error { return e.Err }

// Error is every error a Client method returns.
type Error struct {
	Kind    Kind
	Status  int    // HTTP status; 0 when no answer came
	Message string // the server's "error" field, or a description
	Err     error  // the underlying error, if any
}

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("%d: %s", e.Status, e.Message)
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns err's Kind, or KindHTTP when err is not an *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindHTTP
}

// StatusOf returns the HTTP status carried by err, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// Client calls one proxy's admin API.
type Client struct {
	BaseURL  string // e.g. "http://127.0.0.1:8080", without a trailing slash
	AdminKey string
	Doer     Doer
}

// New returns a Client using the platform's default Doer (window.fetch in
// the browser, net/http elsewhere).
func New(baseURL, adminKey string) *Client {
	return &Client{BaseURL: NormalizeURL(baseURL), AdminKey: adminKey, Doer: DefaultDoer()}
}

// NormalizeURL trims spaces and trailing slashes, and adds http:// when no
// scheme is given.
func NormalizeURL(u string) string {
	u = strings.TrimSpace(u)
	if u != "" && !strings.Contains(u, "://") {
		u = "http://" + u
	}
	return strings.TrimRight(u, "/")
}

func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	if out == nil {
		return c.callDecode(ctx, method, path, in, nil)
	}
	return c.callDecode(ctx, method, path, in, func(b []byte) error { return json.Unmarshal(b, out) })
}

// callDecode sends the request and hands a 2xx body to decode (if any).
func (c *Client) callDecode(ctx context.Context, method, path string, in any, decode func([]byte) error) error {
	var body []byte
	headers := map[string]string{"X-Admin-Key": c.AdminKey}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return &Error{Kind: KindDecode, Message: err.Error(), Err: err}
		}
		body = b
		headers["Content-Type"] = "application/json"
	}
	status, resp, err := c.Doer.Do(ctx, method, c.BaseURL+path, headers, body)
	if err != nil {
		var te *TransportError
		if errors.As(err, &te) && te.CORS {
			return &Error{Kind: KindCORS, Message: te.Error(), Err: err}
		}
		if ctx.Err() != nil {
			return &Error{Kind: KindUnreachable, Message: ctx.Err().Error(), Err: err}
		}
		return &Error{Kind: KindUnreachable, Message: err.Error(), Err: err}
	}
	if status < 200 || status > 299 {
		var e adminapi.Error
		msg := ""
		if json.Unmarshal(resp, &e) == nil && e.Error != "" {
			msg = e.Error
		} else {
			msg = strings.TrimSpace(string(resp))
			if len(msg) > 200 {
				msg = msg[:200]
			}
		}
		kind := KindHTTP
		if status == 401 {
			kind = KindUnauthorized
		}
		return &Error{Kind: kind, Status: status, Message: msg}
	}
	if decode != nil {
		if err := decode(resp); err != nil {
			return &Error{Kind: KindDecode, Status: status, Message: "unexpected answer: " + err.Error(), Err: err}
		}
	}
	return nil
}

// Status returns every provider's keys and the store's health.
func (c *Client) Status(ctx context.Context) (*adminapi.StatusResponse, error) {
	var out adminapi.StatusResponse
	return &out, c.callDecode(ctx, "GET", "/admin/status", nil, func(b []byte) error { return decodeStatus(b, &out) })
}

// ProviderStatus returns one provider's keys.
func (c *Client) ProviderStatus(ctx context.Context, provider string) (*adminapi.ProviderStatus, error) {
	var out adminapi.ProviderStatus
	return &out, c.callDecode(ctx, "GET", "/admin/status?provider="+url.QueryEscape(provider), nil, func(b []byte) error {
		// One provider's answer is a ProviderStatus: decode it as a status
		// with one provider so the browser's fast path applies too.
		var st adminapi.StatusResponse
		if err := decodeStatus(append(append([]byte(`{"providers":[`), b...), ']', '}'), &st); err != nil {
			return err
		}
		if len(st.Providers) == 1 {
			out = st.Providers[0]
		}
		return nil
	})
}

// StatusPage returns one page of keys, filtered and sorted as q says, with
// the totals around it; pass the answer's NextCursor as q.Cursor for the
// next page. At 100,000 keys a page answers in milliseconds, where Status
// would download every key.
func (c *Client) StatusPage(ctx context.Context, q adminapi.StatusQuery) (*adminapi.StatusPage, error) {
	var out adminapi.StatusPage
	return &out, c.call(ctx, "GET", "/admin/status?"+q.Values().Encode(), nil, &out)
}

// Summary returns the pool in numbers without a single key: per provider
// the keys by state, the resting (key, model) pairs, the projects and tags
// with their key counts and the usage counts, and totals. Its size does
// not grow with the pool; it is what a dashboard shows before any key.
func (c *Client) Summary(ctx context.Context) (*adminapi.Summary, error) {
	var out adminapi.Summary
	return &out, c.call(ctx, "GET", "/admin/summary", nil, &out)
}

// GetKey returns one key's status.
func (c *Client) GetKey(ctx context.Context, id string) (*adminapi.KeyStatus, error) {
	var out adminapi.KeyStatus
	return &out, c.call(ctx, "GET", "/admin/keys/"+url.PathEscape(id), nil, &out)
}

// AddKey adds one key.
func (c *Client) AddKey(ctx context.Context, req adminapi.AddKeyRequest) (*adminapi.AddKeyResponse, error) {
	var out adminapi.AddKeyResponse
	return &out, c.call(ctx, "POST", "/admin/keys", req, &out)
}

// BulkAdd adds many keys of one provider; Results has one entry per input line.
func (c *Client) BulkAdd(ctx context.Context, req adminapi.BulkAddRequest) (*adminapi.BulkAddResponse, error) {
	var out adminapi.BulkAddResponse
	return &out, c.call(ctx, "POST", "/admin/keys/bulk", req, &out)
}

// UpdateKey changes the fields req sets.
func (c *Client) UpdateKey(ctx context.Context, id string, req adminapi.UpdateKeyRequest) (*adminapi.KeyResponse, error) {
	var out adminapi.KeyResponse
	return &out, c.call(ctx, "PUT", "/admin/keys/"+url.PathEscape(id), req, &out)
}

// DeleteKey deletes one key.
func (c *Client) DeleteKey(ctx context.Context, id string) (*adminapi.KeyResponse, error) {
	var out adminapi.KeyResponse
	return &out, c.call(ctx, "DELETE", "/admin/keys/"+url.PathEscape(id), nil, &out)
}

// BulkDelete deletes the keys with the given ids.
func (c *Client) BulkDelete(ctx context.Context, ids []string) (*adminapi.BulkDeleteResponse, error) {
	var out adminapi.BulkDeleteResponse
	return &out, c.call(ctx, "POST", "/admin/keys/bulk-delete", adminapi.BulkDeleteRequest{IDs: ids}, &out)
}

// TestKey checks a key against its provider and updates its state.
func (c *Client) TestKey(ctx context.Context, id string) (*adminapi.KeyTestResult, error) {
	var out adminapi.KeyTestResult
	return &out, c.call(ctx, "POST", "/admin/keys/"+url.PathEscape(id)+"/test", nil, &out)
}

// BulkTest tests up to 1000 keys.
func (c *Client) BulkTest(ctx context.Context, ids []string) (*adminapi.BulkTestResponse, error) {
	var out adminapi.BulkTestResponse
	return &out, c.call(ctx, "POST", "/admin/keys/bulk-test", adminapi.BulkDeleteRequest{IDs: ids}, &out)
}

// ImportJob starts importing up to 100,000 keys in the background; poll
// Job for its progress.
func (c *Client) ImportJob(ctx context.Context, req adminapi.BulkAddRequest) (*adminapi.JobStatus, error) {
	var out adminapi.JobStatus
	return &out, c.call(ctx, "POST", "/admin/jobs/import", req, &out)
}

// DeleteJob starts deleting up to 100,000 keys in the background.
func (c *Client) DeleteJob(ctx context.Context, ids []string) (*adminapi.JobStatus, error) {
	var out adminapi.JobStatus
	return &out, c.call(ctx, "POST", "/admin/jobs/delete", adminapi.DeleteJobRequest{IDs: ids}, &out)
}

// TestJob starts testing keys in the background: the ids given, or every
// key in a state (disabled by default), a few at a time.
func (c *Client) TestJob(ctx context.Context, req adminapi.TestJobRequest) (*adminapi.JobStatus, error) {
	var out adminapi.JobStatus
	return &out, c.call(ctx, "POST", "/admin/jobs/test", req, &out)
}

// Job returns a job's progress.
func (c *Client) Job(ctx context.Context, id string) (*adminapi.JobStatus, error) {
	var out adminapi.JobStatus
	return &out, c.call(ctx, "GET", "/admin/jobs/"+url.PathEscape(id), nil, &out)
}

// Jobs lists the running jobs and the recent finished ones, newest first.
func (c *Client) Jobs(ctx context.Context) ([]adminapi.JobStatus, error) {
	var out adminapi.JobList
	err := c.call(ctx, "GET", "/admin/jobs", nil, &out)
	return out.Jobs, err
}

// CancelJob stops a running job and returns its final status.
func (c *Client) CancelJob(ctx context.Context, id string) (*adminapi.JobStatus, error) {
	var out adminapi.JobStatus
	return &out, c.call(ctx, "DELETE", "/admin/jobs/"+url.PathEscape(id), nil, &out)
}

// Reset zeroes a provider's usage counters.
func (c *Client) Reset(ctx context.Context, provider string) (*adminapi.ResetResponse, error) {
	var out adminapi.ResetResponse
	return &out, c.call(ctx, "POST", "/admin/reset", adminapi.ResetRequest{Provider: provider}, &out)
}

// Tokens lists the client tokens, masked.
func (c *Client) Tokens(ctx context.Context) ([]adminapi.Token, error) {
	var out adminapi.TokenList
	err := c.call(ctx, "GET", "/admin/tokens", nil, &out)
	return out.Tokens, err
}

// CreateToken creates a client token; the answer holds it this once.
func (c *Client) CreateToken(ctx context.Context, name string) (*adminapi.CreateTokenResponse, error) {
	var out adminapi.CreateTokenResponse
	return &out, c.call(ctx, "POST", "/admin/tokens", adminapi.CreateTokenRequest{Name: name}, &out)
}

// CreateTokenWith creates a client token with settings (limits, expiry,
// providers, models); the answer holds it this once.
func (c *Client) CreateTokenWith(ctx context.Context, req adminapi.CreateTokenRequest) (*adminapi.CreateTokenResponse, error) {
	var out adminapi.CreateTokenResponse
	return &out, c.call(ctx, "POST", "/admin/tokens", req, &out)
}

// UpdateToken changes the fields req names of a client token.
func (c *Client) UpdateToken(ctx context.Context, id string, req adminapi.UpdateTokenRequest) (*adminapi.Token, error) {
	var out adminapi.TokenResponse
	err := c.call(ctx, "PUT", "/admin/tokens/"+url.PathEscape(id), req, &out)
	return &out.Token, err
}

// Usage returns the requests and tokens this instance relayed since it
// started, by provider, model and client token.
func (c *Client) Usage(ctx context.Context) (*adminapi.UsageResponse, error) {
	var out adminapi.UsageResponse
	return &out, c.call(ctx, "GET", "/admin/usage", nil, &out)
}

// RevokeToken revokes a token created through the admin API.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	return c.call(ctx, "DELETE", "/admin/tokens/"+url.PathEscape(id), nil, nil)
}

// Traffic returns the requests relayed per provider over the last minutes
// (1..1440), one bucket a minute.
func (c *Client) Traffic(ctx context.Context, minutes int) (*adminapi.TrafficResponse, error) {
	var out adminapi.TrafficResponse
	return &out, c.call(ctx, "GET", "/admin/traffic?minutes="+strconv.Itoa(minutes), nil, &out)
}
