package server

import (
	"cmp"
	"context"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/failure"
	"github.com/keypool/keypool/worker-proxy/pool"
)

// testTimeout bounds one key test.
const testTimeout = 20 * time.Second

// testKey checks a key against its provider with the cheapest call there
// is, listing one model, and updates the key's state from the answer: a
// success re-enables it, an invalid key disables it, a rate limit rests it.
// It does not count as usage.
func (s *Server) testKey(ctx context.Context, e *pool.Entry) adminapi.KeyTestResult {
	k := e.Key()
	res := adminapi.KeyTestResult{KeyID: k.ID, Provider: k.Provider}
	prov, ok := s.providers.Get(k.Provider)
	if !ok {
		res.Class, res.Message = "client", "provider is not configured"
		return res
	}
	q := url.Values{}
	switch k.Provider {
	case "gemini":
		q.Set("pageSize", "1")
	case "anthropic":
		q.Set("limit", "1")
	}
	target, _ := prov.Target("models", q)
	ctx, cancel := context.WithTimeout(ctx, testTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	prov.SetKey(req.Header, req.URL, k.Secret)
	start := time.Now()
	resp, err := s.cfg.Transport.RoundTrip(req)
	res.LatencyMs = time.Since(start).Milliseconds()
	var v failure.Verdict
	if err != nil {
		v = s.classifier.Err(err)
		res.Message = transportDetail(err, k.Secret)
	} else {
		peek, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorPeek))
		resp.Body.Close()
		res.Status = resp.StatusCode
		v = s.classifier.Response(resp.StatusCode, resp.Header, peek)
		if resp.StatusCode >= 400 {
			res.Message = scrub(cmp.Or(v.Reason, upstreamMessage(peek, resp.StatusCode)), k.Secret)
		}
	}
	res.Class = v.Class.String()
	now := s.cfg.Now()
	if v.Class != failure.Success {
		e.NoteError(pool.LastError{Status: cmp.Or(res.Status, http.StatusBadGateway), Message: "key test: " + res.Message, At: now.UTC()})
	}
	switch v.Class {
	case failure.Success:
		res.OK = true
		if k.DisabledReason != "" {
			s.persist(s.pool.Enable(e))
			s.log.Info("key re-enabled by a test", "provider", k.Provider, "key", k.ID)
		} else {
			s.pool.Uncool(e)
		}
	case failure.InvalidKey:
		if s.policy.For(v.Class).Disable {
			s.persist(s.pool.Disable(e, v.Class.String()+": "+res.Message, now))
		}
	case failure.RateLimited, failure.QuotaExhausted:
		if s.policy.For(v.Class).Cooldown {
			until := v.Until
			if until.IsZero() || !until.After(now) {
				until = now.Add(s.cfg.DefaultCooldown)
			}
			s.cool(e, until, v.Class.String())
		}
	}
	st := keyStatus(e, now)
	res.Key = &st
	return res
}

func (s *Server) handleTestKey(w http.ResponseWriter, r *http.Request) {
	e, ok := s.pool.Entry(r.PathValue("id"))
	if !ok {
		s.keyNotFound(w, r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, s.testKey(r.Context(), e))
}

// handleBulkTest tests many keys, a few at a time.
func (s *Server) handleBulkTest(w http.ResponseWriter, r *http.Request) {
	var req adminapi.BulkDeleteRequest // {"ids": [...]}
	if err := decodeJSON(w, r, maxBulkBody, &req); err != nil {
		badRequest(w, err)
		return
	}
	if len(req.IDs) == 0 || len(req.IDs) > 1000 {
		writeError(w, http.StatusBadRequest, "ids must hold 1 to 1000 key ids")
		return
	}
	out := adminapi.BulkTestResponse{Results: make([]adminapi.KeyTestResult, len(req.IDs))}
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, id := range req.IDs {
		e, ok := s.pool.Entry(id)
		if !ok {
			out.Results[i] = adminapi.KeyTestResult{KeyID: truncate(id, 64), Class: "not_found", Message: "Key not found"}
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			out.Results[i] = s.testKey(r.Context(), e)
		})
	}
	wg.Wait()
	for _, res := range out.Results {
		if res.OK {
			out.Passed++
		} else {
			out.Failed++
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// RunRetester re-tests disabled keys every interval, batch at a time, the
// longest-disabled first, so keys that were only suspended come back.
func (s *Server) RunRetester(ctx context.Context, interval time.Duration, batch int) {
	if interval <= 0 || batch <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.retestOnce(ctx, batch)
		}
	}
}

// retestOnce tests up to batch disabled keys and returns how many came back.
func (s *Server) retestOnce(ctx context.Context, batch int) int {
	var disabled []*pool.Entry
	for _, prov := range s.pool.Providers() {
		for _, e := range s.pool.Entries(prov) {
			if k := e.Key(); k.DisabledReason != "" && k.IsActive {
				disabled = append(disabled, e)
			}
		}
	}
	slices.SortFunc(disabled, func(a, b *pool.Entry) int { return a.Key().DisabledAt.Compare(b.Key().DisabledAt) })
	back := 0
	for _, e := range disabled[:min(batch, len(disabled))] {
		if ctx.Err() != nil {
			break
		}
		if res := s.testKey(ctx, e); res.OK {
			back++
		}
	}
	if len(disabled) > 0 {
		s.log.Info("re-tested disabled keys", "tested", min(batch, len(disabled)), "reenabled", back, "stillDisabled", len(disabled)-back)
	}
	return back
}
