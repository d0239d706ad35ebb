package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keypool/keypool/worker-proxy/limits"
	"github.com/keypool/keypool/worker-proxy/provider"
	"github.com/keypool/keypool/worker-proxy/tokenusage"
)

// Client token settings on the relay: expiry (401), allowed providers and
// models (403) and budgets (429), each answered in the error shape of the
// API the caller speaks, before anything goes upstream.

// errorStyle is the error body shape a route's callers parse.
type errorStyle int

const (
	styleOpenAI    errorStyle = iota // {"error":{"message","type","param","code"}}
	styleGoogle                      // {"error":{"code","message","status","details"}}
	styleAnthropic                   // {"type":"error","error":{"type","message"}}
)

// styleFor returns the error shape of prov's native API: Google's when it
// takes the key as x-goog-api-key or ?key=, Anthropic's when it takes
// x-api-key, else OpenAI's. Its OpenAI-compatible API (compat, or a native
// path under CompatPath) speaks OpenAI's.
func styleFor(prov *provider.Provider, compat bool, rest string) errorStyle {
	if compat {
		return styleOpenAI
	}
	if cp := strings.Trim(prov.CompatPath, "/"); prov.Compat && cp != "" {
		// rest may start with an API version ("v1beta/openai/...").
		if i := strings.Index(rest, cp+"/"); i >= 0 && (i == 0 || rest[i-1] == '/') {
			return styleOpenAI
		}
	}
	switch {
	case prov.Auth.Header == "X-Goog-Api-Key" || prov.Auth.Query == "key":
		return styleGoogle
	case prov.Auth.Header == "X-Api-Key":
		return styleAnthropic
	}
	return styleOpenAI
}

// Reasons a client token refuses a request.
const (
	refuseExpired  = "token_expired"
	refuseProvider = "provider_not_allowed"
	refuseModel    = "model_not_allowed"
	refuseLimit    = "rate_limit_exceeded"
)

// clientRefusal writes a refusal in style's shape. retry is the wait a
// 429 names.
func clientRefusal(w http.ResponseWriter, style errorStyle, status int, code, msg string, retry time.Duration) {
	h := w.Header()
	var retryDelay string
	if status == http.StatusTooManyRequests {
		secs := retrySeconds(retry)
		h.Set("Retry-After", strconv.FormatInt(secs, 10))
		// SDKs sleep for Retry-After and retry; past a minute, tell them
		// not to (anthropic-sdk-go would sleep for hours).
		if secs > 60 {
			h.Set("X-Should-Retry", "false")
		} else {
			h.Set("X-Should-Retry", "true")
		}
		retryDelay = strconv.FormatInt(secs, 10) + "s"
	} else {
		h.Set("X-Should-Retry", "false")
	}
	var body any
	switch style {
	case styleGoogle:
		canon := map[int]string{401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED"}[status]
		e := map[string]any{"code": status, "message": msg, "status": canon}
		details := []any{map[string]any{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": strings.ToUpper(code), "domain": "keypool"}}
		if retryDelay != "" {
			details = append(details, map[string]any{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retryDelay})
		}
		e["details"] = details
		body = map[string]any{"error": e}
	case styleAnthropic:
		typ := map[int]string{401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}[status]
		body = map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": msg}}
	default:
		typ := "invalid_request_error"
		if status == http.StatusTooManyRequests {
			typ = "requests"
			if strings.Contains(msg, "tokens per") {
				typ = "tokens"
			}
		}
		body = map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": code}}
	}
	writeJSON(w, status, body)
}

// retrySeconds is a wait in whole seconds, rounded up, at least 1.
func retrySeconds(d time.Duration) int64 { return max(int64(math.Ceil(d.Seconds())), 1) }

// budgetText describes a budget for a person: "requests per minute".
func budgetText(b limits.Budget) string {
	switch b {
	case limits.RPM:
		return "requests per minute"
	case limits.RPD:
		return "requests per day"
	case limits.TPM:
		return "tokens per minute"
	default:
		return "tokens per day"
	}
}

// restricts reports whether the request's client token has settings to
// apply.
func (st *relayState) restricts() bool {
	if st.client == nil {
		return false
	}
	t := &st.client.token
	return !t.Limits.IsZero() || !t.ExpiresAt.IsZero() || len(t.Providers) > 0 || len(t.Models) > 0
}

// refuse answers a request its client token's settings refuse, in style's
// shape, and counts it on the token.
func (s *Server) refuse(w http.ResponseWriter, st *relayState, style errorStyle, status int, code, msg string, retry time.Duration) bool {
	s.usage.tokens.Add(st.client.id, tokenusage.Totals{Requests: 1, Refused: 1})
	st.refused = code
	clientRefusal(w, style, status, code, msg, retry)
	if st.prov != nil {
		s.observe(st, status)
	}
	return false
}

// admitScope checks the client token's expiry and providers before the
// request's body is read. It answers a refusal itself and returns false.
func (s *Server) admitScope(w http.ResponseWriter, st *relayState, style errorStyle) bool {
	if !st.restricts() {
		return true
	}
	t, name := &st.client.token, st.client.name
	if limits.Expired(t.ExpiresAt, s.cfg.Now()) {
		return s.refuse(w, st, style, http.StatusUnauthorized, refuseExpired,
			fmt.Sprintf("Client token %q expired at %s; ask the proxy's operator for a new one", name, t.ExpiresAt.UTC().Format(time.RFC3339)), 0)
	}
	if !limits.Allowed(t.Providers, st.prov.Name) {
		return s.refuse(w, st, style, http.StatusForbidden, refuseProvider,
			fmt.Sprintf("Client token %q may not use provider %q (allowed: %s)", name, st.prov.Name, strings.Join(t.Providers, ", ")), 0)
	}
	return true
}

// admitRequest checks the model st names (none: allowed) against the
// client token's models, then takes one request from its budgets. It
// answers a refusal itself and returns false; a refused request takes
// nothing.
func (s *Server) admitRequest(w http.ResponseWriter, st *relayState, style errorStyle) bool {
	if !st.restricts() {
		return true
	}
	t, name := &st.client.token, st.client.name
	if len(t.Models) > 0 && st.model != "" && !modelAllowed(t.Models, st.prov.Name, st.model) {
		return s.refuse(w, st, style, http.StatusForbidden, refuseModel,
			fmt.Sprintf("Client token %q may not use model %q (allowed: %s)", name, truncate(st.model, 100), strings.Join(t.Models, ", ")), 0)
	}
	if d := s.limiter.Admit(st.client.id, t.Limits); !d.OK {
		return s.refuse(w, st, style, http.StatusTooManyRequests, refuseLimit, limitText(name, d), d.RetryAfter)
	}
	return true
}

// admitListing applies the client token's expiry and request budgets to
// GET /v1/models, which asks every allowed provider.
func (s *Server) admitListing(w http.ResponseWriter, client *tokenRef) bool {
	st := &relayState{client: client}
	if !st.restricts() {
		return true
	}
	if limits.Expired(client.token.ExpiresAt, s.cfg.Now()) {
		return s.refuse(w, st, styleOpenAI, http.StatusUnauthorized, refuseExpired,
			fmt.Sprintf("Client token %q expired at %s; ask the proxy's operator for a new one", client.name, client.token.ExpiresAt.UTC().Format(time.RFC3339)), 0)
	}
	if d := s.limiter.Admit(client.id, client.token.Limits); !d.OK {
		return s.refuse(w, st, styleOpenAI, http.StatusTooManyRequests, refuseLimit, limitText(client.name, d), d.RetryAfter)
	}
	return true
}

// limitText tells a client which budget refused it and for how long.
func limitText(name string, d limits.Decision) string {
	return fmt.Sprintf("Client token %q reached its limit of %d %s (%s); retry in %s", name, d.Limit, budgetText(d.Budget), d.Budget,
		time.Duration(retrySeconds(d.RetryAfter))*time.Second)
}

// modelAllowed reports whether model (as the request names it, maybe
// "models/…" or "provider/…") matches one of patterns, bare or with
// either prefix.
func modelAllowed(patterns []string, prov, model string) bool {
	bare := strings.TrimPrefix(model, "models/")
	if p, m, ok := strings.Cut(bare, "/"); ok && p == prov {
		bare = m
	}
	for _, name := range []string{bare, model, prov + "/" + bare} {
		if limits.Allowed(patterns, name) {
			return true
		}
	}
	return false
}

// pathModel returns the model a native relay path names
// (".../models/{model}:generateContent", ".../models/{model}"), or "".
func pathModel(rest string) string {
	i := strings.LastIndex(rest, "models/")
	if i < 0 || (i > 0 && rest[i-1] != '/') {
		return ""
	}
	m := rest[i+len("models/"):]
	if j := strings.IndexAny(m, ":/"); j >= 0 {
		m = m[:j]
	}
	return m
}

// errDuplicateModel: a body names "model" twice at its top level, so the
// proxy and the upstream might read different models.
var errDuplicateModel = errors.New(`the body names "model" more than once`)

// bodyModel returns the "model" field at the top level of a JSON body,
// exactly: every top-level "model" must agree. "" if there is none or the
// body is not a JSON object.
func bodyModel(body []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", nil
	}
	var model string
	seen := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", nil
		}
		key, _ := tok.(string)
		if key != "model" {
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				return "", nil
			}
			continue
		}
		var m string
		if dec.Decode(&m) != nil {
			return "", nil
		}
		if seen && m != model {
			return "", errDuplicateModel
		}
		model, seen = m, true
	}
	return model, nil
}

// quickModel returns the first "model" string field of a JSON body,
// cheaply, for counting only: it may be a nested one.
func quickModel(body []byte) string {
	i := bytes.Index(body, []byte(`"model"`))
	if i < 0 {
		return ""
	}
	rest := bytes.TrimLeft(body[i+len(`"model"`):], " \t\r\n")
	if len(rest) == 0 || rest[0] != ':' {
		return ""
	}
	rest = bytes.TrimLeft(rest[1:], " \t\r\n")
	if len(rest) == 0 || rest[0] != '"' {
		return ""
	}
	end := bytes.IndexByte(rest[1:], '"')
	if end < 0 || end > 200 {
		return ""
	}
	m := rest[1 : 1+end]
	if bytes.IndexByte(m, '\\') >= 0 {
		return ""
	}
	return string(m)
}

// findModel finds the model a native relay request names: in its path,
// else in its JSON body (exactly when the token restricts models).
func findModel(st *relayState, rest string) (string, error) {
	if m := pathModel(rest); m != "" {
		return m, nil
	}
	if len(st.body) == 0 {
		return "", nil
	}
	if st.client != nil && len(st.client.token.Models) > 0 {
		return bodyModel(st.body)
	}
	return quickModel(st.body), nil
}

// usageCounts are what the relay counts in memory, by name.
type usageCounts struct {
	since     time.Time
	providers *tokenusage.Tally
	models    *tokenusage.Tally
	tokens    *tokenusage.Tally // by client token id
}

// account counts a finished relayed request: the tokens its answer
// reported on its key, its client token (and that token's tpm/tpd
// budgets), its model and its provider.
func (s *Server) account(st *relayState) {
	u, _ := st.usage.Usage()
	st.promptTokens, st.completionTokens = u.Prompt, u.Completion
	if st.entry != nil {
		st.entry.AddTokens(u.Prompt, u.Completion)
	}
	d := tokenusage.Totals{Requests: 1, Prompt: u.Prompt, Completion: u.Completion}
	s.usage.providers.Add(st.prov.Name, d)
	if st.model != "" {
		s.usage.models.Add(st.prov.Name+"/"+strings.TrimPrefix(st.model, "models/"), d)
	}
	if st.client != nil {
		s.usage.tokens.Add(st.client.id, d)
		s.limiter.AddTokens(st.client.id, st.client.token.Limits, u.Total())
	}
}
