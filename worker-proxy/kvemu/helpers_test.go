package kvemu_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudflare/cloudflare-go/v6/kv"
	"github.com/cloudflare/cloudflare-go/v6/option"

	"github.com/keypool/keypool/worker-proxy/kvemu"
)

const (
	acct      = "0123456789abcdef0123456789abcdef"
	otherAcct = "fedcba9876543210fedcba9876543210"
	tokRW     = "token-edit"
	tokRO     = "token-read"
	tokOther  = "token-other-account"
	tokRW2    = "token-edit-2"
)

func tokens() map[string]kvemu.TokenInfo {
	return map[string]kvemu.TokenInfo{
		tokRW:    {AccountID: acct, CanRead: true, CanWrite: true},
		tokRW2:   {AccountID: acct, CanRead: true, CanWrite: true},
		tokRO:    {AccountID: acct, CanRead: true},
		tokOther: {AccountID: otherAcct, CanRead: true, CanWrite: true},
	}
}

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func start(t *testing.T, opts kvemu.Options) *kvemu.Server {
	t.Helper()
	srv, err := kvemu.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// sdk builds the SDK's namespace service without the root cloudflare
// package, so nothing is read from the environment.
func sdk(srv *kvemu.Server, token string) *kv.NamespaceService {
	return kv.NewNamespaceService(
		option.WithBaseURL(srv.URL+"/client/v4/"),
		option.WithAPIToken(token),
		option.WithMaxRetries(0),
	)
}

// kvValue satisfies the SDK's value union without importing its shared
// package; apiform sends it as a plain "value" form field.
type kvValue string

func (kvValue) ImplementsNamespaceValueUpdateParamsValueUnion() {}

func newNamespace(ctx context.Context, c *kv.NamespaceService, title string) (*kv.Namespace, error) {
	var p kv.NamespaceNewParams
	p.AccountID.Value, p.AccountID.Present = acct, true
	p.Title.Value, p.Title.Present = title, true
	return c.New(ctx, p)
}

// put writes one value; meta is sent as given (pass a JSON string).
func put(ctx context.Context, c *kv.NamespaceService, ns, key, value string, meta any, ttl float64) error {
	var p kv.NamespaceValueUpdateParams
	p.AccountID.Value, p.AccountID.Present = acct, true
	p.Value.Value, p.Value.Present = kvValue(value), true
	if meta != nil {
		p.Metadata.Value, p.Metadata.Present = meta, true
	}
	if ttl != 0 {
		p.ExpirationTTL.Value, p.ExpirationTTL.Present = ttl, true
	}
	// The SDK's multipart encoder races on its type cache when two
	// goroutines encode at once (internal/apiform/encoder.go, v6.10.0):
	// parallel tests take turns. The proxy's store writes only in bulk,
	// as JSON, and never meets it.
	multipartMu.Lock()
	defer multipartMu.Unlock()
	_, err := c.Values.Update(ctx, ns, url.PathEscape(key), p)
	return err
}

var multipartMu sync.Mutex

func get(ctx context.Context, c *kv.NamespaceService, ns, key string) (string, http.Header, error) {
	var p kv.NamespaceValueGetParams
	p.AccountID.Value, p.AccountID.Present = acct, true
	res, err := c.Values.Get(ctx, ns, url.PathEscape(key), p)
	if res != nil && res.Body != nil {
		defer res.Body.Close()
	}
	if err != nil {
		return "", nil, err
	}
	b, err := io.ReadAll(res.Body)
	return string(b), res.Header, err
}

func metadata(ctx context.Context, c *kv.NamespaceService, ns, key string) (any, error) {
	var p kv.NamespaceMetadataGetParams
	p.AccountID.Value, p.AccountID.Present = acct, true
	res, err := c.Metadata.Get(ctx, ns, url.PathEscape(key), p)
	if err != nil {
		return nil, err
	}
	return *res, nil
}

func listPage(ctx context.Context, c *kv.NamespaceService, ns, prefix, cursor string, limit float64) ([]kv.Key, string, error) {
	var p kv.NamespaceKeyListParams
	p.AccountID.Value, p.AccountID.Present = acct, true
	if prefix != "" {
		p.Prefix.Value, p.Prefix.Present = prefix, true
	}
	if cursor != "" {
		p.Cursor.Value, p.Cursor.Present = cursor, true
	}
	if limit != 0 {
		p.Limit.Value, p.Limit.Present = limit, true
	}
	page, err := c.Keys.List(ctx, ns, p)
	if err != nil {
		return nil, "", err
	}
	return page.Result, page.ResultInfo.Cursor, nil
}

// apiError unwraps the SDK's error and checks status and first code (0:
// not checked).
func apiError(t *testing.T, err error, status int, code int64) *kv.Error {
	t.Helper()
	var e *kv.Error
	if !errors.As(err, &e) {
		t.Fatalf("got error %T %v, want *kv.Error with status %d", err, err, status)
	}
	if e.StatusCode != status {
		t.Errorf("status = %d, want %d (%v)", e.StatusCode, status, err)
	}
	if code != 0 && (len(e.Errors) == 0 || e.Errors[0].Code != code) {
		t.Errorf("errors = %+v, want code %d", e.Errors, code)
	}
	return e
}

// resp is a decoded envelope from call.
type resp struct {
	Status int
	Header http.Header
	Body   []byte
	Env    struct {
		Success    bool              `json:"success"`
		Errors     []kvemuMessage    `json:"errors"`
		Messages   []json.RawMessage `json:"messages"`
		Result     json.RawMessage   `json:"result"`
		ResultInfo json.RawMessage   `json:"result_info"`
	}
}

type kvemuMessage struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (r *resp) code() int {
	if len(r.Env.Errors) == 0 {
		return 0
	}
	return r.Env.Errors[0].Code
}

// call serves one request in process. body may be a string, []byte or a
// value to encode as JSON.
func call(t *testing.T, h http.Handler, method, path, token string, body any) *resp {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = strings.NewReader(string(b))
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = strings.NewReader(string(j))
	}
	req := httptest.NewRequest(method, "http://api.test"+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if _, ok := body.(string); !ok && body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	r := &resp{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(r.Body, &r.Env); err != nil {
			t.Fatalf("%s %s: body is not an envelope: %v: %s", method, path, err, r.Body)
		}
	}
	return r
}

func nsPath(ns string) string {
	return "/client/v4/accounts/" + acct + "/storage/kv/namespaces/" + ns
}
