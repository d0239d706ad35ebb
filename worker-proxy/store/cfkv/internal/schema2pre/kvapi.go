package schema2pre

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cloudflare/cloudflare-go/v6/kv"
	"github.com/cloudflare/cloudflare-go/v6/option"

	"github.com/keypool/keypool/worker-proxy/store"
)

// Cloudflare's error codes that the store treats specially.
const (
	codeDailyLimit = 10048 // free plan: daily limit for this operation reached
	codeKeyMissing = 10009
)

// pair is one entry of a bulk write.
type pair struct {
	Key      string
	Value    string
	Metadata any
}

// listed is one entry of a key listing.
type listed struct {
	name string
	meta json.RawMessage
}

// health tracks whether KV answers, and backs off when it asks to.
type health struct {
	ok           bool
	since        time.Time
	detail       string
	blockedUntil time.Time // no call before this (429 Retry-After, backoff)
	writesUntil  time.Time // no write before this (daily write limit)
	failures     int
}

// Health reports whether KV answers; while it does not, the proxy serves
// from memory and admin writes answer 503. It answers from what the last
// calls found, at once, even while a call hangs.
func (s *Store) Health() store.Health {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	return store.Health{OK: s.health.ok, Since: s.health.since, Detail: s.health.detail}
}

// writable fails fast while KV asked to be left alone or writes are out
// of today's budget.
func (s *Store) writable() error {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	now := s.cfg.Now()
	if now.Before(s.health.blockedUntil) {
		return fmt.Errorf("cfkv: backing off until %s: %s: %w", s.health.blockedUntil.UTC().Format(time.RFC3339), s.health.detail, store.ErrUnavailable)
	}
	if now.Before(s.health.writesUntil) {
		return fmt.Errorf("cfkv: %s: %w", s.health.detail, store.ErrUnavailable)
	}
	return nil
}

// callable fails fast while KV asked to be left alone.
func (s *Store) callable() error {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if now := s.cfg.Now(); now.Before(s.health.blockedUntil) {
		return fmt.Errorf("cfkv: backing off until %s: %s: %w", s.health.blockedUntil.UTC().Format(time.RFC3339), s.health.detail, store.ErrUnavailable)
	}
	return nil
}

// observe records the outcome of a KV call, and turns a failure into an
// error that says what happened, matching store.ErrUnavailable when KV is
// down, slow or limiting.
func (s *Store) observe(op string, err error) error {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	now := s.cfg.Now()
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", op, err) // the caller gave up; KV is not to blame
	}
	if err == nil {
		if !s.health.ok {
			s.cfg.Logger.Info("cfkv: Cloudflare KV answers again", "degradedFor", now.Sub(s.health.since).Round(time.Second))
		}
		s.health = health{ok: true, since: now, writesUntil: s.health.writesUntil, detail: s.health.writesDetail()}
		return nil
	}
	var apiErr *kv.Error
	status, code, msg := 0, 0, ""
	if errors.As(err, &apiErr) {
		status = apiErr.StatusCode
		if len(apiErr.Errors) > 0 {
			code, msg = int(apiErr.Errors[0].Code), apiErr.Errors[0].Message
		}
	}
	var detail string
	backoff := time.Duration(0)
	switch {
	case code == codeDailyLimit:
		next := now.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
		detail = "Cloudflare KV free plan: today's limit for this operation is reached (code 10048); it resets at 00:00 UTC"
		if op == "write" || op == "delete" {
			s.health.writesUntil = next
		} else {
			backoff = next.Sub(now)
		}
	case status == http.StatusTooManyRequests:
		backoff = retryAfter(apiErr, 5*time.Minute)
		detail = "Cloudflare rate-limited the API token (429); retrying after " + backoff.String()
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		detail = fmt.Sprintf("Cloudflare refused the API token (%d): it needs the permission Account → Workers KV Storage → Edit", status)
		backoff = time.Minute
	case status >= 500:
		s.health.failures++
		backoff = min(time.Duration(1<<min(s.health.failures, 8))*time.Second, 5*time.Minute)
		detail = fmt.Sprintf("Cloudflare KV answered %d", status)
	case status >= 400:
		// A request error: ours, not KV's health.
		return fmt.Errorf("%s: Cloudflare answered %d (code %d): %s", op, status, code, msg)
	default:
		s.health.failures++
		backoff = min(time.Duration(1<<min(s.health.failures, 8))*time.Second, 5*time.Minute)
		detail = "Cloudflare KV is unreachable: " + transportMessage(err)
	}
	if s.health.ok {
		s.health.ok, s.health.since = false, now
		s.cfg.Logger.Warn("cfkv: Cloudflare KV degraded; serving from memory", "detail", detail)
	}
	s.health.detail = detail
	if backoff > 0 {
		s.health.blockedUntil = now.Add(backoff)
	}
	return fmt.Errorf("%s: %s: %w", op, detail, store.ErrUnavailable)
}

func (h health) writesDetail() string {
	if h.writesUntil.IsZero() {
		return ""
	}
	return h.detail
}

// retryAfter reads a 429's Retry-After, else def.
func retryAfter(e *kv.Error, def time.Duration) time.Duration {
	if e != nil && e.Response != nil {
		if n, err := strconv.Atoi(e.Response.Header.Get("Retry-After")); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
	}
	return def
}

// transportMessage drops the URL from a transport error.
func transportMessage(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return msg
}

// bulkGet reads up to any number of values, 100 per request; absent names
// are absent from the result.
func (s *Store) bulkGet(ctx context.Context, names []string) (map[string]string, error) {
	return s.read(ctx, names, true, false)
}

// bulkGetJSON is bulkGet of values that are JSON, asked for as JSON: the
// answer holds them as they are instead of as escaped strings, which is
// cheaper to decode when they are large (usage slots). Each comes back
// as JSON text.
func (s *Store) bulkGetJSON(ctx context.Context, names []string) (map[string]string, error) {
	return s.read(ctx, names, true, true)
}

// read is bulkGet; backoff false reads even while backing off (to learn
// the outcome of a write whose answer was lost); asJSON asks for the
// values as JSON.
func (s *Store) read(ctx context.Context, names []string, backoff, asJSON bool) (map[string]string, error) {
	out := make(map[string]string, len(names))
	for len(names) > 0 {
		batch := names[:min(100, len(names))]
		names = names[len(batch):]
		if backoff {
			if err := s.callable(); err != nil {
				return nil, err
			}
		}
		// Fields are set directly: cloudflare.F lives in the SDK's root
		// package, which pulls in every Cloudflare service.
		var params kv.NamespaceBulkGetParams
		params.AccountID.Value, params.AccountID.Present = s.cfg.AccountID, true
		params.Keys.Value, params.Keys.Present = batch, true
		params.Type.Value, params.Type.Present = kv.NamespaceBulkGetParamsTypeText, true
		if asJSON {
			params.Type.Value = kv.NamespaceBulkGetParamsTypeJson
		}
		// The answer is decoded here, once: the SDK's own decoder would
		// decode every value a second time (usage slots are megabytes).
		var raw []byte
		_, err := s.ns.BulkGet(ctx, s.cfg.NamespaceID, params, option.WithResponseBodyInto(&raw))
		if err := s.observe("read", err); err != nil {
			return nil, err
		}
		if asJSON {
			var body struct {
				Result struct {
					Values map[string]json.RawMessage `json:"values"`
				} `json:"result"`
			}
			if err := json.Unmarshal(raw, &body); err != nil {
				return nil, fmt.Errorf("read: unexpected answer: %w", err)
			}
			for k, v := range body.Result.Values {
				switch {
				case len(v) == 0 || string(v) == "null":
				case v[0] == '"': // a server that answers text whatever the type
					var t string
					if err := json.Unmarshal(v, &t); err != nil {
						return nil, fmt.Errorf("read: unexpected answer: %w", err)
					}
					out[k] = t
				default:
					out[k] = string(v)
				}
			}
			continue
		}
		var body struct {
			Result struct {
				Values map[string]*string `json:"values"`
			} `json:"result"`
		}
		if err := json.Unmarshal(raw, &body); err != nil {
			return nil, fmt.Errorf("read: unexpected answer: %w", err)
		}
		for k, v := range body.Result.Values {
			if v != nil {
				out[k] = *v
			}
		}
	}
	return out, nil
}

// bulkEntry is one pair of a bulk write, as the API takes it.
type bulkEntry struct {
	Key      string `json:"key"`
	Value    string `json:"value"`
	Metadata any    `json:"metadata,omitempty"` // an object in bulk writes
}

// bulkWrite writes pairs, 10,000 per request. The body is encoded here:
// the SDK's own encoder takes quadratic time over long arrays.
func (s *Store) bulkWrite(ctx context.Context, pairs []pair) error {
	for len(pairs) > 0 {
		batch := pairs[:min(10000, len(pairs))]
		pairs = pairs[len(batch):]
		body := make([]bulkEntry, len(batch))
		for i, p := range batch {
			body[i] = bulkEntry{Key: p.Key, Value: p.Value, Metadata: p.Metadata}
		}
		raw, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		if err := s.callable(); err != nil {
			return err
		}
		var params kv.NamespaceBulkUpdateParams
		params.AccountID.Value, params.AccountID.Present = s.cfg.AccountID, true
		res, err := s.ns.BulkUpdate(ctx, s.cfg.NamespaceID, params, option.WithRequestBody("application/json", raw))
		if err := s.observe("write", err); err != nil {
			return err
		}
		if res != nil && len(res.UnsuccessfulKeys) > 0 {
			return fmt.Errorf("write: Cloudflare did not write %d of %d entries: %w", len(res.UnsuccessfulKeys), len(batch), store.ErrUnavailable)
		}
	}
	return nil
}

// bulkDelete deletes names, 10,000 per request.
func (s *Store) bulkDelete(ctx context.Context, names []string) error {
	for len(names) > 0 {
		batch := names[:min(10000, len(names))]
		names = names[len(batch):]
		raw, _ := json.Marshal(batch)
		if err := s.callable(); err != nil {
			return err
		}
		var params kv.NamespaceBulkDeleteParams
		params.AccountID.Value, params.AccountID.Present = s.cfg.AccountID, true
		_, err := s.ns.BulkDelete(ctx, s.cfg.NamespaceID, params, option.WithRequestBody("application/json", raw))
		if err := s.observe("delete", err); err != nil {
			return err
		}
	}
	return nil
}

// list returns every name under prefix with its metadata, following the
// cursor itself (the SDK's auto-pager stops at an empty page).
func (s *Store) list(ctx context.Context, prefix string) ([]listed, error) {
	var out []listed
	cursor := ""
	for {
		if err := s.callable(); err != nil {
			return nil, err
		}
		var params kv.NamespaceKeyListParams
		params.AccountID.Value, params.AccountID.Present = s.cfg.AccountID, true
		params.Prefix.Value, params.Prefix.Present = prefix, true
		params.Limit.Value, params.Limit.Present = 1000, true
		if cursor != "" {
			params.Cursor.Value, params.Cursor.Present = cursor, true
		}
		page, err := s.nk.List(ctx, s.cfg.NamespaceID, params)
		if err := s.observe("list", err); err != nil {
			return nil, err
		}
		var raw struct {
			Result []struct {
				Name     string          `json:"name"`
				Metadata json.RawMessage `json:"metadata"`
			} `json:"result"`
		}
		json.Unmarshal([]byte(page.JSON.RawJSON()), &raw)
		for _, r := range raw.Result {
			out = append(out, listed{name: r.Name, meta: r.Metadata})
		}
		cursor = page.ResultInfo.Cursor
		if cursor == "" {
			return out, nil
		}
	}
}
