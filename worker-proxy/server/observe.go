package server

import (
	"crypto/sha256"
	"net/http"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/failure"
	"github.com/keypool/keypool/worker-proxy/metrics"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/reqlog"
)

// Observability: every relayed request that reached key selection is
// counted in the Prometheus metrics and, when a request log is configured,
// recorded there, after its response ended (off the time to first byte).

// attemptOutcome is how one failed upstream attempt ended.
type attemptOutcome struct {
	class  failure.Class
	status int
}

// newMetrics builds the metrics over the server's pool and store.
func (s *Server) newMetrics() *metrics.Metrics {
	return metrics.New(metrics.Source{
		Keys:     s.keyStates,
		KeyCount: s.pool.Len,
		PerKey: func() []metrics.KeyCounts {
			var out []metrics.KeyCounts
			for _, p := range s.pool.Providers() {
				for _, e := range s.pool.Entries(p) {
					u := e.Usage()
					out = append(out, metrics.KeyCounts{Provider: p, ID: e.ID(), Requests: u.Requests, Failures: u.Failures})
				}
			}
			return out
		},
		Store: func() (string, bool) { h := s.storeHealth(); return h.Backend, h.OK },
	}, metrics.Options{MaxKeyLabels: s.cfg.MetricsMaxKeyLabels, ExtraCollectors: s.cfg.MetricsCollectors})
}

// keyStates counts every provider's keys by the state GET /admin/status
// shows.
func (s *Server) keyStates() []metrics.KeyStates {
	now := s.cfg.Now()
	var out []metrics.KeyStates
	for _, p := range s.providerNames() {
		ks := metrics.KeyStates{Provider: p, Counts: map[string]int{}}
		for _, e := range s.pool.Entries(p) {
			ks.Counts[keyState(e, now)]++
		}
		out = append(out, ks)
	}
	return out
}

// keyState is a key's state as GET /admin/status names it.
func keyState(e *pool.Entry, now time.Time) string {
	k := e.Config() // copies nothing: status pages scan every key
	until, _ := e.Cooling(now)
	switch {
	case !k.IsActive():
		return adminapi.StateInactive
	case k.DisabledReason() != "":
		return adminapi.StateDisabled
	case !until.IsZero():
		return adminapi.StateCooling
	case !e.AvailableAt(now):
		return adminapi.StateExhausted
	}
	return adminapi.StateActive
}

// metricsAllowed admits a /metrics scrape: with METRICS_TOKEN set, its
// bearer token; else the admin key (X-Admin-Key or bearer).
func (s *Server) metricsAllowed(r *http.Request) bool {
	if s.cfg.MetricsToken != "" {
		return metrics.BearerIs(r, s.cfg.MetricsToken)
	}
	if s.admin.ok(r) {
		return true
	}
	tok := r.Header.Get("Authorization")
	return len(tok) > 7 && strings.EqualFold(tok[:7], "bearer ") && s.admin.is(strings.TrimSpace(tok[7:]))
}

// requestModel names the model a request asked for: the front door's, the
// body's "model" (OpenAI, Anthropic, compatible APIs) or the path's
// models/{model} (Gemini). "" when none is named.
func (st *relayState) requestModel() string {
	if st.model != "" {
		return st.model
	}
	if !st.bodyModelD {
		st.bodyModelD = true
		if len(st.body) > 0 && st.body[0] == '{' {
			if m := gjson.GetBytes(st.body, "model"); m.Type == gjson.String {
				st.bodyModel = truncate(m.Str, 100)
			}
		}
	}
	if st.bodyModel != "" {
		return st.bodyModel
	}
	if st.target != nil {
		p := st.target.Path
		if i := strings.LastIndex(p, "/models/"); i >= 0 {
			m := p[i+len("/models/"):]
			if j := strings.IndexAny(m, ":/"); j >= 0 {
				m = m[:j]
			}
			return truncate(m, 100)
		}
	}
	return ""
}

// client returns the caller's client token, looked up once; nil when the
// caller is anonymous.
func (s *Server) client(st *relayState) *tokenRef {
	if st.client == nil && st.token != "" {
		sum := sha256.Sum256([]byte(st.token))
		if ref, ok := (*s.tokens.byHash.Load())[sum]; ok {
			st.client = &ref
		}
	}
	return st.client
}

// observe counts and records one finished request; status is what the
// client got.
func (s *Server) observe(st *relayState, status int) {
	latency := time.Since(st.start)
	model := st.requestModel()
	var tokenName, tokenID string
	if c := s.client(st); c != nil {
		tokenName, tokenID = c.name, c.id
	}
	classes := st.classBuf[:0]
	for i := range st.tried {
		classes = append(classes, st.attemptClass(i, status).String())
	}
	s.metrics.Observe(metrics.Request{
		Provider: st.prov.Name, Strategy: st.strategy.String(), Token: tokenName, Model: model,
		Status: status, Attempts: classes, Latency: latency, TTFB: st.ttfb,
		PromptTokens: st.promptTokens, CompletionTokens: st.completionTokens,
	})
	if s.reqlog == nil {
		return
	}
	rec := adminapi.RequestRecord{
		Time: st.start.UTC(), Token: tokenName, TokenID: tokenID, Route: st.route,
		Provider: st.prov.Name, Model: model, Strategy: st.strategy.String(), Status: status,
		LatencyMs:    float64(latency.Microseconds()) / 1000,
		TTFBMs:       float64(st.ttfb.Microseconds()) / 1000,
		PromptTokens: st.promptTokens, CompletionTokens: st.completionTokens,
	}
	masked := ""
	if st.entry != nil {
		masked = pool.Mask(st.entry.Secret())
		rec.KeyID, rec.Key = st.entry.ID(), masked
	}
	if n := len(classes); n > 0 && classes[n-1] != "success" {
		rec.Class = classes[n-1]
	}
	if st.refused != "" {
		rec.Class = st.refused // the client token's settings refused it
	}
	rec.Attempts = make([]adminapi.RequestAttempt, len(st.tried))
	for i, e := range st.tried {
		a := adminapi.RequestAttempt{KeyID: e.ID(), Key: masked, Class: classes[i], Status: status}
		if e != st.entry {
			a.Key = pool.Mask(e.Secret())
		}
		if i < len(st.failed) {
			a.Status = st.failed[i].status
		}
		rec.Attempts[i] = a
	}
	s.reqlog.Add(rec)
}

// attemptClass is how attempt i ended: the failures failover recorded,
// then the final attempt's outcome.
func (st *relayState) attemptClass(i, status int) failure.Class {
	if i < len(st.failed) {
		return st.failed[i].class
	}
	switch {
	case st.streamErr != nil:
		return st.streamErr.Class
	case status == 499:
		return failure.Canceled
	case st.verdict.Class != failure.Success:
		return st.verdict.Class
	case status >= 400:
		return failure.Upstream
	}
	return failure.Success
}

// handleRequests serves GET /admin/requests: the request log, filtered and
// paged.
func (s *Server) handleRequests(w http.ResponseWriter, r *http.Request) {
	f, err := reqlog.ParseFilter(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if s.reqlog == nil {
		writeJSON(w, http.StatusOK, adminapi.RequestsResponse{Records: []adminapi.RequestRecord{}, Backend: "off"})
		return
	}
	resp, err := s.reqlog.Query(f)
	if err != nil {
		s.log.Error("request log query failed", "err", err)
		writeError(w, http.StatusInternalServerError, "Internal error: the request log could not be read")
		return
	}
	writeJSON(w, http.StatusOK, resp)
}
