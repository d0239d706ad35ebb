package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/failure"
	"github.com/keypool/keypool/worker-proxy/jobs"
	"github.com/keypool/keypool/worker-proxy/pool"
)

// jobBatch is how many keys an import or delete job writes per store
// call: each batch is one transaction (bbolt) or one publish (KV), and
// admin writes wait for at most one batch.
const jobBatch = 5000

// Job limits: running at once, and finished ones remembered.
const (
	maxRunningJobs = 4
	keptJobs       = 20
)

// maxRateLimitPause bounds how long a test job holds back a provider's
// tests after one of them was rate limited.
const maxRateLimitPause = time.Minute

// startJob starts spec and answers 202 with the job's status.
func (s *Server) startJob(w http.ResponseWriter, r *http.Request, spec jobs.Spec) {
	j, err := s.jobs.Start(r.Context(), spec)
	if errors.Is(err, jobs.ErrBusy) {
		writeError(w, http.StatusTooManyRequests, err.Error())
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "Internal error")
		return
	}
	s.log.Info("job started", "job", j.ID(), "kind", spec.Kind, "total", spec.Total)
	w.Header().Set("Location", "/admin/jobs/"+j.ID())
	writeJSON(w, http.StatusAccepted, j.Status())
}

// handleImportJob imports up to 100,000 keys in the background, jobBatch
// at a time, with the checks and results of POST /admin/keys/bulk.
func (s *Server) handleImportJob(w http.ResponseWriter, r *http.Request) {
	var req adminapi.BulkAddRequest
	if err := decodeJSON(w, r, maxBulkBody, &req); err != nil {
		badRequest(w, err)
		return
	}
	if err := s.checkBulkAdd(req); err != nil {
		badRequest(w, err)
		return
	}
	s.startJob(w, r, jobs.Spec{
		Kind: adminapi.JobImport, Provider: req.Provider, Total: len(req.APIKeys),
		Outcomes: []string{adminapi.BulkAdded, adminapi.BulkDuplicate, adminapi.BulkInvalid},
		Run: func(ctx context.Context, j *jobs.Job) error {
			ba := s.newBulkAdder(req)
			for first := 0; first < len(req.APIKeys); first += jobBatch {
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := s.importBatch(ctx, j, ba, first, req.APIKeys[first:min(first+jobBatch, len(req.APIKeys))]); err != nil {
					return err
				}
			}
			s.log.Info("import job done", "job", j.ID(), "provider", req.Provider)
			return nil
		},
	})
}

// importBatch checks and writes one batch of an import job.
func (s *Server) importBatch(ctx context.Context, j *jobs.Job, ba *bulkAdder, first int, secrets []string) error {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	results, keys := ba.prepare(first, secrets)
	if len(keys) > 0 {
		if err := s.store.PutKeys(ctx, keys...); err != nil {
			s.log.Error("import job: store write failed", "job", j.ID(), "err", err)
			return fmt.Errorf("storing keys %d to %d failed, so they were not imported (the keys before them were): %s", first, first+len(secrets)-1, storeErrorText(err))
		}
		s.pool.AddAll(keys)
	}
	for _, res := range results {
		if res.Status == adminapi.BulkAdded {
			j.Count(adminapi.BulkAdded, 1)
			continue
		}
		j.Report(adminapi.JobItem{Index: res.Index, KeyID: res.KeyID, MaskedKey: res.MaskedKey, Status: res.Status, Error: res.Error})
	}
	return nil
}

// storeErrorText says why a store write failed without naming internals.
func storeErrorText(err error) string {
	if errors.Is(err, context.Canceled) {
		return "the job was canceled"
	}
	if text, ok := duplicateText(err); ok {
		return text
	}
	return "the store refused the write; see the proxy's log"
}

// handleDeleteJob deletes up to 100,000 keys in the background, jobBatch
// at a time.
func (s *Server) handleDeleteJob(w http.ResponseWriter, r *http.Request) {
	var req adminapi.DeleteJobRequest
	if err := decodeJSON(w, r, maxBulkBody, &req); err != nil {
		badRequest(w, err)
		return
	}
	if len(req.IDs) == 0 || len(req.IDs) > adminapi.MaxJobItems {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("ids must hold 1 to %d key ids", adminapi.MaxJobItems))
		return
	}
	s.startJob(w, r, jobs.Spec{
		Kind: adminapi.JobDelete, Total: len(req.IDs), Outcomes: []string{"deleted", "not_found"},
		Run: func(ctx context.Context, j *jobs.Job) error {
			for first := 0; first < len(req.IDs); first += jobBatch {
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := s.deleteBatch(ctx, j, first, req.IDs[first:min(first+jobBatch, len(req.IDs))]); err != nil {
					return err
				}
			}
			s.log.Info("delete job done", "job", j.ID())
			return nil
		},
	})
}

func (s *Server) deleteBatch(ctx context.Context, j *jobs.Job, first int, ids []string) error {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	var found []string
	seen := make(map[string]bool, len(ids))
	for i, id := range ids {
		if _, ok := s.pool.Entry(id); ok && !seen[id] {
			seen[id] = true
			found = append(found, id)
		} else {
			j.Report(adminapi.JobItem{Index: first + i, KeyID: truncate(id, 64), Status: "not_found", Error: "Key not found"})
		}
	}
	if len(found) == 0 {
		return nil
	}
	if err := s.store.DeleteKeys(ctx, found...); err != nil {
		s.log.Error("delete job: store write failed", "job", j.ID(), "err", err)
		return fmt.Errorf("deleting ids %d to %d failed, so they were not deleted (the ids before them were): %s", first, first+len(ids)-1, storeErrorText(err))
	}
	j.Count("deleted", s.pool.Remove(found...))
	return nil
}

// handleTestJob tests many keys in the background, Concurrency at a time:
// the ids given, or every key in a state (disabled by default). When a
// provider answers a test with a rate limit, that provider's remaining
// tests wait until the limit's end (its Retry-After, or the default
// cooldown; at most a minute at a time) so the job does not hammer it.
func (s *Server) handleTestJob(w http.ResponseWriter, r *http.Request) {
	var req adminapi.TestJobRequest
	if err := decodeJSON(w, r, maxBulkBody, &req); err != nil {
		badRequest(w, err)
		return
	}
	conc := req.Concurrency
	if conc == 0 {
		conc = adminapi.DefaultTestConcurrency
	}
	switch {
	case conc < 1 || conc > adminapi.MaxTestConcurrency:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("concurrency must be 1 to %d", adminapi.MaxTestConcurrency))
		return
	case len(req.IDs) > adminapi.MaxJobItems:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("ids must hold at most %d key ids", adminapi.MaxJobItems))
		return
	case len(req.IDs) > 0 && (req.State != "" || req.Provider != ""):
		writeError(w, http.StatusBadRequest, "give either ids, or state and provider, not both")
		return
	case req.State != "" && !slices.Contains(adminapi.States, req.State):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("state must be one of %v", adminapi.States))
		return
	case req.Provider != "" && !slices.Contains(s.providerNames(), req.Provider):
		s.unknownProvider(w, http.StatusBadRequest, req.Provider)
		return
	}
	type item struct {
		index int
		id    string
		e     *pool.Entry
	}
	var items []item
	if len(req.IDs) > 0 {
		for i, id := range req.IDs {
			e, _ := s.pool.Entry(id)
			items = append(items, item{i, id, e})
		}
	} else {
		state := cmp.Or(req.State, adminapi.StateDisabled)
		names := s.providerNames()
		if req.Provider != "" {
			names = []string{req.Provider}
		}
		now := s.cfg.Now()
		for _, name := range names {
			for _, e := range s.pool.Entries(name) {
				if keyState(e, now) == state {
					items = append(items, item{len(items), e.ID(), e})
				}
			}
		}
	}
	s.startJob(w, r, jobs.Spec{
		Kind: adminapi.JobTest, Provider: req.Provider, Total: len(items), Concurrency: conc,
		Outcomes: []string{"passed", "failed", "not_found"},
		Run: func(ctx context.Context, j *jobs.Job) error {
			gate := newProviderGate()
			sem := make(chan struct{}, conc)
			var wg sync.WaitGroup
			for _, it := range items {
				if it.e == nil {
					j.Report(adminapi.JobItem{Index: it.index, KeyID: truncate(it.id, 64), Status: "not_found", Error: "Key not found"})
					continue
				}
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
				}
				if ctx.Err() != nil {
					break
				}
				wg.Go(func() {
					defer func() { <-sem }()
					prov := it.e.Provider()
					if !gate.wait(ctx, prov) {
						return
					}
					res := s.testKey(ctx, it.e)
					if ctx.Err() != nil && !res.OK {
						return // canceled mid-test: not counted
					}
					if res.Class == failure.RateLimited.String() {
						until, _ := it.e.Cooling(s.cfg.Now())
						gate.pause(prov, until, s.cfg.DefaultCooldown)
					}
					if res.OK {
						j.Count("passed", 1)
						return
					}
					j.Report(adminapi.JobItem{Index: it.index, KeyID: res.KeyID, MaskedKey: maskedOf(res), Status: "failed", Error: cmp.Or(res.Class, "failed") + ": " + res.Message})
				})
			}
			wg.Wait()
			s.log.Info("test job done", "job", j.ID())
			return nil
		},
	})
}

func maskedOf(res adminapi.KeyTestResult) string {
	if res.Key != nil {
		return res.Key.MaskedKey
	}
	return ""
}

// providerGate holds back a provider's tests while it rate limits us.
type providerGate struct {
	mu    sync.Mutex
	until map[string]time.Time
}

func newProviderGate() *providerGate { return &providerGate{until: map[string]time.Time{}} }

// pause holds provider back until until (or for def when until is zero),
// at most maxRateLimitPause from now; a later pause never shortens one.
func (g *providerGate) pause(provider string, until time.Time, def time.Duration) {
	now := time.Now()
	if !until.After(now) {
		until = now.Add(def)
	}
	until = minTime(until, now.Add(maxRateLimitPause))
	g.mu.Lock()
	if until.After(g.until[provider]) {
		g.until[provider] = until
	}
	g.mu.Unlock()
}

// wait blocks while provider is held back; false if ctx ended first.
func (g *providerGate) wait(ctx context.Context, provider string) bool {
	for {
		g.mu.Lock()
		d := time.Until(g.until[provider])
		g.mu.Unlock()
		if d <= 0 {
			return ctx.Err() == nil
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (s *Server) handleListJobs(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, adminapi.JobList{Jobs: s.jobs.List()})
}

func (s *Server) jobNotFound(w http.ResponseWriter, id string) {
	writeJSON(w, http.StatusNotFound, map[string]string{"error": "Job not found", "id": truncate(id, 64)})
}

func (s *Server) handleGetJob(w http.ResponseWriter, r *http.Request) {
	j, ok := s.jobs.Get(r.PathValue("id"))
	if !ok {
		s.jobNotFound(w, r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, j.Status())
}

// handleCancelJob stops a running job; what it finished stays done.
func (s *Server) handleCancelJob(w http.ResponseWriter, r *http.Request) {
	j, ok := s.jobs.Get(r.PathValue("id"))
	if !ok {
		s.jobNotFound(w, r.PathValue("id"))
		return
	}
	if !j.Cancel() {
		writeError(w, http.StatusConflict, "The job has already finished")
		return
	}
	<-j.Done()
	s.log.Info("job canceled", "job", j.ID())
	writeJSON(w, http.StatusOK, j.Status())
}
