package server

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/limits"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/tokenusage"
	"github.com/keypool/keypool/worker-proxy/traffic"
)

// Admin request bodies are small; bulk imports may be large.
const (
	maxAdminBody = 1 << 20
	maxBulkBody  = 64 << 20 // 100,000 keys of up to 512 bytes, quoted
	maxBulkKeys  = adminapi.MaxJobItems
)

// keyStatus describes e for the admin API, without its secret.
func keyStatus(e *pool.Entry, now time.Time) adminapi.KeyStatus {
	k, u := e.Key(), e.Usage()
	limit := "unlimited"
	if k.MaxRequests > 0 {
		limit = strconv.FormatInt(k.MaxRequests, 10)
	}
	st := adminapi.KeyStatus{
		ID: k.ID, Provider: k.Provider, IsActive: k.IsActive,
		Usage:    strconv.FormatInt(u.Requests, 10) + "/" + limit,
		LastUsed: adminapi.FormatTime(u.LastUsed), MaskedKey: pool.Mask(k.Secret),
		Available: e.AvailableAt(now), MaxRequests: k.MaxRequests, Weight: k.EffectiveWeight(),
		Requests: u.Requests, Successes: u.Successes, Failures: u.Failures,
		SuccessRate: u.SuccessRate(), InFlight: e.InFlight(),
		Description: k.Description, Tags: k.Tags, Project: k.Project, ProjectLearned: k.ProjectLearned && k.Project != "", Proxy: pool.MaskProxy(k.Proxy),
		CreatedAt: adminapi.FormatTime(k.CreatedAt), UpdatedAt: adminapi.FormatTime(k.UpdatedAt),
		ConsecutiveFailures: e.ConsecutiveFailures(),
		PromptTokens:        u.PromptTokens, CompletionTokens: u.CompletionTokens,
		DisabledReason: k.DisabledReason, DisabledAt: adminapi.FormatTime(k.DisabledAt),
	}
	until, reason := e.Cooling(now)
	st.CoolingUntil, st.CoolingReason = adminapi.FormatTime(until), reason
	for _, mr := range e.ModelRests(now) {
		st.ModelCooldowns = append(st.ModelCooldowns, adminapi.ModelCooldown{Model: mr.Model, Until: adminapi.FormatTime(mr.Until), Reason: mr.Reason})
	}
	if st.Tags == nil {
		st.Tags = []string{}
	}
	switch {
	case !k.IsActive:
		st.State = adminapi.StateInactive
	case k.DisabledReason != "":
		st.State = adminapi.StateDisabled
	case st.CoolingUntil != nil:
		st.State = adminapi.StateCooling
	case !st.Available:
		st.State = adminapi.StateExhausted
	default:
		st.State = adminapi.StateActive
	}
	if le := u.LastError; le != nil {
		st.LastError = &adminapi.LastError{Status: le.Status, Message: le.Message, At: adminapi.FormatTime(le.At)}
	}
	return st
}

func (s *Server) providerStatus(name string) adminapi.ProviderStatus {
	entries := s.pool.Entries(name)
	ps := adminapi.ProviderStatus{Provider: name, Keys: make([]adminapi.KeyStatus, 0, len(entries))}
	ps.Projects, ps.KeysWithoutProject = s.pool.Projects(name)
	now := s.cfg.Now()
	for _, e := range entries {
		ks := keyStatus(e, now)
		ps.TotalKeys++
		if ks.IsActive {
			ps.ActiveKeys++
		}
		if ks.Available {
			ps.AvailableKeys++
		}
		if ks.CoolingUntil != nil {
			ps.CoolingKeys++
		}
		if ks.DisabledReason != "" {
			ps.DisabledKeys++
		}
		ps.RestingModelPairs += len(ks.ModelCooldowns)
		ps.PromptTokens += ks.PromptTokens
		ps.CompletionTokens += ks.CompletionTokens
		ps.Keys = append(ps.Keys, ks)
	}
	return ps
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	if adminapi.IsPaged(r.URL.Query()) {
		s.handleStatusPage(w, r)
		return
	}
	if name := r.URL.Query().Get("provider"); name != "" {
		if _, ok := s.providers.Get(name); !ok {
			s.unknownProvider(w, http.StatusBadRequest, name)
			return
		}
		writeJSON(w, http.StatusOK, s.providerStatus(name))
		return
	}
	var all adminapi.StatusResponse
	all.Store = s.storeHealth()
	all.Providers = []adminapi.ProviderStatus{}
	for _, name := range s.providerNames() {
		ps := s.providerStatus(name)
		all.TotalKeys += ps.TotalKeys
		all.ActiveKeys += ps.ActiveKeys
		all.AvailableKeys += ps.AvailableKeys
		all.CoolingKeys += ps.CoolingKeys
		all.DisabledKeys += ps.DisabledKeys
		all.Projects += ps.Projects
		all.KeysWithoutProject += ps.KeysWithoutProject
		all.Providers = append(all.Providers, ps)
	}
	writeJSON(w, http.StatusOK, all)
}

// providerNames lists configured providers and any that still hold keys.
func (s *Server) providerNames() []string {
	names := slices.Clone(s.providers.Names())
	for _, p := range s.pool.Providers() {
		if !slices.Contains(names, p) {
			names = append(names, p)
		}
	}
	slices.Sort(names)
	return names
}

func (s *Server) unknownProvider(w http.ResponseWriter, status int, name string) {
	writeJSON(w, status, map[string]any{
		"error":     "Unknown provider",
		"provider":  truncate(name, 40),
		"providers": s.providers.Names(),
	})
}

func (s *Server) handleGetKey(w http.ResponseWriter, r *http.Request) {
	e, ok := s.pool.Entry(r.PathValue("id"))
	if !ok {
		s.keyNotFound(w, r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, keyStatus(e, s.cfg.Now()))
}

func (s *Server) keyNotFound(w http.ResponseWriter, id string) {
	writeJSON(w, http.StatusNotFound, adminapi.Error{Error: "Key not found", KeyID: truncate(id, 64)})
}

// badRequest answers 400 (or the status a decoding error names) with err's
// message; err comes from validation or decoding and holds no secret.
func badRequest(w http.ResponseWriter, err error) {
	msg, status := err.Error(), http.StatusBadRequest
	var br errBadRequest
	if errors.As(err, &br) {
		msg, status = br.msg, cmp.Or(br.status, status)
	} else if errors.Is(err, pool.ErrInvalid) {
		msg = msg[len(pool.ErrInvalid.Error())+2:]
	}
	writeError(w, status, msg)
}

// newKey builds a validated key from the shared fields of add requests.
func (s *Server) newKey(provider, secret string, maxReq *int64, weight *int, active *bool, md *adminapi.Metadata, project, proxy *string) (pool.Key, error) {
	now := s.cfg.Now().UTC()
	k := pool.Key{
		ID: pool.NewKeyID(now), Provider: provider, Secret: secret, IsActive: true,
		CreatedAt: now, UpdatedAt: now, Revision: 1,
	}
	if strings.ContainsRune(secret, utf8.RuneError) {
		// encoding/json's stand-in for a byte or escape that is not UTF-8.
		return k, fmt.Errorf("%w: apiKey contains U+FFFD, the mark of text that was not valid UTF-8", pool.ErrInvalid)
	}
	if _, ok := s.providers.Get(provider); !ok && provider != "" {
		return k, fmt.Errorf("%w: unknown provider %q: configured providers are %v", pool.ErrInvalid, truncate(provider, 40), s.providers.Names())
	}
	if maxReq != nil {
		k.MaxRequests = *maxReq
	}
	if weight != nil {
		k.Weight = *weight
	}
	if active != nil {
		k.IsActive = *active
	}
	if project != nil {
		k.Project, k.ProjectLearned = strings.TrimSpace(*project), false
	}
	if proxy != nil {
		k.Proxy = strings.TrimSpace(*proxy)
	}
	if md != nil {
		if md.Description != nil {
			k.Description = *md.Description
		}
		if md.Tags != nil {
			tags, err := pool.NormalizeTags(*md.Tags)
			if err != nil {
				return k, err
			}
			k.Tags = tags
		}
	}
	return k, k.Validate()
}

func (s *Server) handleAddKey(w http.ResponseWriter, r *http.Request) {
	var req adminapi.AddKeyRequest
	if err := decodeJSON(w, r, maxAdminBody, &req); err != nil {
		badRequest(w, err)
		return
	}
	k, err := s.newKey(req.Provider, req.APIKey, req.MaxRequests, req.Weight, req.IsActive, req.Metadata, req.Project, req.Proxy)
	if err != nil {
		badRequest(w, err)
		return
	}
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	if e, dup := s.pool.FindSecret(k.Provider, k.Secret); dup {
		writeJSON(w, http.StatusConflict, adminapi.Error{Error: "This API key is already in the pool", Provider: k.Provider, KeyID: e.ID()})
		return
	}
	for s.idTaken(k.ID) {
		k.ID = pool.NewKeyID(k.CreatedAt)
	}
	if err := s.store.PutKeys(r.Context(), k); err != nil {
		if !storeDuplicate(w, err, nil) {
			s.storeError(w, "add key", err)
		}
		return
	}
	s.pool.Add(k)
	e, _ := s.pool.Entry(k.ID)
	st := keyStatus(e, s.cfg.Now())
	s.log.Info("key added", "provider", k.Provider, "key", k.ID, "masked", pool.Mask(k.Secret))
	writeJSON(w, http.StatusCreated, adminapi.AddKeyResponse{Message: "Key added successfully", KeyID: k.ID, Provider: k.Provider, Key: &st})
}

func (s *Server) handleBulkAdd(w http.ResponseWriter, r *http.Request) {
	var req adminapi.BulkAddRequest
	if err := decodeJSON(w, r, maxBulkBody, &req); err != nil {
		badRequest(w, err)
		return
	}
	if err := s.checkBulkAdd(req); err != nil {
		badRequest(w, err)
		return
	}
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	ba := s.newBulkAdder(req)
	resp := adminapi.BulkAddResponse{Provider: req.Provider}
	var keys []pool.Key
	resp.Results, keys = ba.prepare(0, req.APIKeys)
	for _, res := range resp.Results {
		switch res.Status {
		case adminapi.BulkAdded:
			resp.Added++
		case adminapi.BulkDuplicate:
			resp.Duplicates++
		default:
			resp.Invalid++
		}
	}
	if len(keys) > 0 {
		if err := s.store.PutKeys(r.Context(), keys...); err != nil {
			if !storeDuplicate(w, err, resp.Results) {
				s.storeError(w, "bulk add keys", err)
			}
			return
		}
		s.pool.AddAll(keys)
	}
	s.log.Info("keys imported", "provider", req.Provider, "added", resp.Added, "duplicates", resp.Duplicates, "invalid", resp.Invalid)
	resp.Message = fmt.Sprintf("%d added, %d duplicates, %d invalid", resp.Added, resp.Duplicates, resp.Invalid)
	status := http.StatusOK
	if resp.Added > 0 {
		status = http.StatusCreated
	}
	writeJSON(w, status, resp)
}

// checkBulkAdd checks a bulk import's size and shared settings.
func (s *Server) checkBulkAdd(req adminapi.BulkAddRequest) error {
	if len(req.APIKeys) == 0 {
		return errBadRequest{msg: "apiKeys must hold at least one key"}
	}
	if len(req.APIKeys) > maxBulkKeys {
		return errBadRequest{msg: fmt.Sprintf("at most %d keys per bulk request", maxBulkKeys)}
	}
	// Check the shared settings once, with a placeholder secret.
	_, err := s.newKey(req.Provider, "placeholder", req.MaxRequests, req.Weight, req.IsActive, req.Metadata, req.Project, req.Proxy)
	return err
}

// bulkAdder checks and builds the keys of one import, in one batch or
// several: a secret repeated in a later batch is a duplicate too, and the
// keys keep their input order in the pool.
type bulkAdder struct {
	s    *Server
	req  adminapi.BulkAddRequest
	base time.Time
	n    int                  // keys built so far
	seen map[string]bulkFirst // secret → where this import first had it
	ids  map[string]bool      // ids given out by this import
}

type bulkFirst struct {
	index int
	id    string
}

func (s *Server) newBulkAdder(req adminapi.BulkAddRequest) *bulkAdder {
	return &bulkAdder{s: s, req: req, base: s.cfg.Now().UTC(), seen: map[string]bulkFirst{}, ids: map[string]bool{}}
}

// prepare checks the secrets at positions first.. of the import and
// returns a result for each and the keys to write. s.adminMu must be held.
func (b *bulkAdder) prepare(first int, secrets []string) ([]adminapi.BulkResult, []pool.Key) {
	s, req := b.s, b.req
	results := make([]adminapi.BulkResult, len(secrets))
	var keys []pool.Key
	for i, secret := range secrets {
		res := &results[i]
		res.Index = first + i
		k, err := s.newKey(req.Provider, secret, req.MaxRequests, req.Weight, req.IsActive, req.Metadata, req.Project, req.Proxy)
		if err != nil {
			res.Status, res.Error = adminapi.BulkInvalid, errorText(err)
			continue
		}
		res.MaskedKey = pool.Mask(secret)
		if f, dup := b.seen[secret]; dup {
			res.Status, res.KeyID, res.Error = adminapi.BulkDuplicate, f.id, fmt.Sprintf("same key as apiKeys[%d] of this request", f.index)
			continue
		}
		if e, dup := s.pool.FindSecret(k.Provider, secret); dup {
			res.Status, res.KeyID, res.Error = adminapi.BulkDuplicate, e.ID(), "already in the pool"
			continue
		}
		// Keys added together keep their input order in the pool.
		k.CreatedAt = b.base.Add(time.Duration(b.n) * time.Microsecond)
		k.UpdatedAt = k.CreatedAt
		k.ID = pool.NewKeyID(k.CreatedAt)
		for s.idTaken(k.ID) || b.ids[k.ID] {
			k.ID = pool.NewKeyID(k.CreatedAt)
		}
		b.n++
		b.ids[k.ID] = true
		b.seen[secret] = bulkFirst{index: first + i, id: k.ID}
		keys = append(keys, k)
		res.Status, res.KeyID = adminapi.BulkAdded, k.ID
	}
	return results, keys
}

// idTaken reports whether a key id is in use (ids carry 6 random
// handleTraffic answers GET /admin/traffic?minutes=N (1..1440, default 60).
func (s *Server) handleTraffic(w http.ResponseWriter, r *http.Request) {
	minutes := 60
	if v := r.URL.Query().Get("minutes"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > traffic.Window {
			writeError(w, http.StatusBadRequest, "minutes must be a whole number from 1 to 1440")
			return
		}
		minutes = n
	}
	writeJSON(w, http.StatusOK, s.traffic.Series(minutes))
}

// characters, so ids made in one millisecond can collide).
func (s *Server) idTaken(id string) bool {
	_, ok := s.pool.Entry(id)
	return ok
}

func errorText(err error) string {
	msg := err.Error()
	if errors.Is(err, pool.ErrInvalid) {
		msg = msg[len(pool.ErrInvalid.Error())+2:]
	}
	return msg
}

// maxEditAttempts bounds how often an edit is re-applied because the key
// changed while it was being written (each retry needs another change).
const maxEditAttempts = 10

// handleUpdateKey applies the fields a PUT names, and only those, to the
// key as the pool holds it. If the relay changes the key (disables it)
// while the edit is being written to the store, the edit is applied again
// onto the changed key, so it never writes back an older copy.
func (s *Server) handleUpdateKey(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var req adminapi.UpdateKeyRequest
	if err := decodeJSON(w, r, maxAdminBody, &req); err != nil {
		badRequest(w, err)
		return
	}
	var tags []string
	if md := req.Metadata; md != nil && md.Tags != nil {
		var err error
		if tags, err = pool.NormalizeTags(*md.Tags); err != nil {
			badRequest(w, err)
			return
		}
	}
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	for attempt := 1; ; attempt++ {
		e, ok := s.pool.Entry(id)
		if !ok {
			s.keyNotFound(w, id)
			return
		}
		cur := e.Key()
		k := editKey(cur, req, tags)
		if err := k.Validate(); err != nil {
			badRequest(w, err)
			return
		}
		k.UpdatedAt = s.cfg.Now().UTC()
		k.Revision = cur.Revision + 1
		if err := s.store.PutKeys(r.Context(), k); err != nil {
			s.storeError(w, "update key", err)
			return
		}
		switch err := s.pool.UpdateIf(k, cur.Revision); {
		case errors.Is(err, pool.ErrNotFound):
			s.keyNotFound(w, id)
			return
		case errors.Is(err, pool.ErrChanged):
			if attempt < maxEditAttempts {
				continue // apply the edit again onto the changed key
			}
			s.persist(e.Key())
			writeError(w, http.StatusConflict, "The key kept changing while it was being edited; try again")
			return
		}
		if req.IsActive != nil && *req.IsActive {
			s.pool.Uncool(e)
		}
		st := keyStatus(e, s.cfg.Now())
		s.log.Info("key updated", "provider", k.Provider, "key", k.ID)
		writeJSON(w, http.StatusOK, adminapi.KeyResponse{Message: "Key updated successfully", KeyID: id, Key: &st})
		return
	}
}

// editKey returns k with the fields req names set; tags are req's,
// normalized. An explicit isActive:true also clears a disabled state.
func editKey(k pool.Key, req adminapi.UpdateKeyRequest, tags []string) pool.Key {
	if req.IsActive != nil {
		k.IsActive = *req.IsActive
		if *req.IsActive {
			k.DisabledReason, k.DisabledAt = "", time.Time{}
		}
	}
	if req.MaxRequests != nil {
		k.MaxRequests = *req.MaxRequests
	}
	if req.Weight != nil {
		k.Weight = *req.Weight
	}
	if req.Project != nil {
		k.Project, k.ProjectLearned = strings.TrimSpace(*req.Project), false
	}
	if req.Proxy != nil {
		k.Proxy = strings.TrimSpace(*req.Proxy)
	}
	if md := req.Metadata; md != nil {
		if md.Description != nil {
			k.Description = *md.Description
		}
		if md.Tags != nil {
			k.Tags = tags
		}
	}
	return k
}

func (s *Server) handleDeleteKey(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	if _, ok := s.pool.Entry(id); !ok {
		s.keyNotFound(w, id)
		return
	}
	if err := s.store.DeleteKeys(r.Context(), id); err != nil {
		s.storeError(w, "delete key", err)
		return
	}
	s.pool.Remove(id)
	s.log.Info("key deleted", "key", id)
	writeJSON(w, http.StatusOK, adminapi.KeyResponse{Message: "Key deleted successfully", KeyID: id})
}

func (s *Server) handleBulkDelete(w http.ResponseWriter, r *http.Request) {
	var req adminapi.BulkDeleteRequest
	if err := decodeJSON(w, r, maxBulkBody, &req); err != nil {
		badRequest(w, err)
		return
	}
	if len(req.IDs) == 0 {
		writeError(w, http.StatusBadRequest, "ids must hold at least one key id")
		return
	}
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	var found []string
	resp := adminapi.BulkDeleteResponse{NotFound: []string{}}
	for _, id := range req.IDs {
		if _, ok := s.pool.Entry(id); ok {
			found = append(found, id)
		} else {
			resp.NotFound = append(resp.NotFound, truncate(id, 64))
		}
	}
	if len(found) > 0 {
		if err := s.store.DeleteKeys(r.Context(), found...); err != nil {
			s.storeError(w, "bulk delete keys", err)
			return
		}
		resp.Deleted = s.pool.Remove(found...)
	}
	s.log.Info("keys deleted", "deleted", resp.Deleted, "notFound", len(resp.NotFound))
	resp.Message = fmt.Sprintf("%d keys deleted", resp.Deleted)
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleReset(w http.ResponseWriter, r *http.Request) {
	var req adminapi.ResetRequest
	if err := decodeJSON(w, r, maxAdminBody, &req); err != nil {
		badRequest(w, err)
		return
	}
	if req.Provider == "" {
		writeError(w, http.StatusBadRequest, "provider is required")
		return
	}
	if _, ok := s.providers.Get(req.Provider); !ok && !slices.Contains(s.pool.Providers(), req.Provider) {
		s.unknownProvider(w, http.StatusBadRequest, req.Provider)
		return
	}
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	n, err := s.pool.ResetUsage(req.Provider, func(ids []string) error { return s.store.ResetUsage(r.Context(), ids) })
	if err != nil {
		s.storeError(w, "reset usage", err)
		return
	}
	s.log.Info("usage reset", "provider", req.Provider, "keys", n)
	writeJSON(w, http.StatusOK, adminapi.ResetResponse{Message: "Usage reset successfully", Provider: req.Provider, KeysReset: n})
}

// tokenView describes a client token for the admin API: masked, with its
// settings and what it used on this instance.
func (s *Server) tokenView(t tokenRef) adminapi.Token {
	u := s.usage.tokens.Get(t.id)
	v := adminapi.Token{
		ID: t.id, Name: t.name, Masked: t.masked, Source: t.source,
		CreatedAt: adminapi.FormatTime(t.token.CreatedAt), UpdatedAt: adminapi.FormatTime(t.token.UpdatedAt),
		Limits: t.token.Limits, ExpiresAt: adminapi.FormatTime(t.token.ExpiresAt),
		Expired:   limits.Expired(t.token.ExpiresAt, s.cfg.Now()),
		Providers: nonNil(t.token.Providers), Models: nonNil(t.token.Models),
		Usage: adminapi.TokenUsage{Requests: u.Requests, Refused: u.Refused, PromptTokens: u.Prompt, CompletionTokens: u.Completion,
			Since: adminapi.FormatTime(s.usage.since)},
	}
	return v
}

func (s *Server) handleListTokens(w http.ResponseWriter, r *http.Request) {
	refs := s.tokens.list()
	slices.SortFunc(refs, func(a, b tokenRef) int {
		return cmp.Or(cmp.Compare(a.source, b.source), a.token.CreatedAt.Compare(b.token.CreatedAt), cmp.Compare(a.id, b.id))
	})
	out := adminapi.TokenList{Tokens: make([]adminapi.Token, 0, len(refs))}
	for _, t := range refs {
		out.Tokens = append(out.Tokens, s.tokenView(t))
	}
	writeJSON(w, http.StatusOK, out)
}

// nonNil returns l, or an empty list for nil (JSON [] rather than null).
func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// validTokenName checks a client token's name.
func validTokenName(name string) error {
	if err := pool.ValidateDescription(name); err != nil || len([]rune(name)) > 100 {
		return errors.New("name must be at most 100 printable characters")
	}
	return nil
}

// tokenSettings checks and applies the settings a create or update names
// (nil: leave as it is) to t.
func (s *Server) tokenSettings(t *pool.ClientToken, lim *limits.Limits, expiresAt *string, providers, models *[]string) error {
	if lim != nil {
		if err := lim.Validate(); err != nil {
			return errors.New(strings.TrimPrefix(err.Error(), limits.ErrInvalid.Error()+": "))
		}
		t.Limits = *lim
	}
	if expiresAt != nil {
		if *expiresAt == "" {
			t.ExpiresAt = time.Time{}
		} else {
			at, err := time.Parse(time.RFC3339Nano, *expiresAt)
			if err != nil {
				return errors.New("expiresAt must be an RFC 3339 time such as 2026-12-31T23:59:59Z, or \"\" for never")
			}
			if !at.After(s.cfg.Now()) {
				return errors.New("expiresAt must be in the future")
			}
			t.ExpiresAt = at.UTC()
		}
	}
	if providers != nil {
		if err := limits.ValidatePatterns("providers", *providers); err != nil {
			return errors.New(strings.TrimPrefix(err.Error(), limits.ErrInvalid.Error()+": "))
		}
		for i, p := range *providers {
			if !slices.ContainsFunc(s.providers.Names(), func(n string) bool { return limits.Match(p, n) }) {
				return fmt.Errorf("providers[%d] %q matches no configured provider (%s)", i, truncate(p, 40), strings.Join(s.providers.Names(), ", "))
			}
		}
		t.Providers = slices.Clone(*providers)
		if len(t.Providers) == 0 {
			t.Providers = nil
		}
	}
	if models != nil {
		if err := limits.ValidatePatterns("models", *models); err != nil {
			return errors.New(strings.TrimPrefix(err.Error(), limits.ErrInvalid.Error()+": "))
		}
		t.Models = slices.Clone(*models)
		if len(t.Models) == 0 {
			t.Models = nil
		}
	}
	return nil
}

func (s *Server) handleCreateToken(w http.ResponseWriter, r *http.Request) {
	var req adminapi.CreateTokenRequest
	if err := decodeJSON(w, r, maxAdminBody, &req); err != nil {
		badRequest(w, err)
		return
	}
	if err := validTokenName(req.Name); err != nil {
		badRequest(w, err)
		return
	}
	secret := pool.NewTokenSecret()
	sum, hexSum := hashToken(secret)
	t := pool.ClientToken{ID: pool.NewTokenID(), Name: req.Name, Hash: hexSum, Masked: pool.Mask(secret), CreatedAt: s.cfg.Now().UTC()}
	var providers, models *[]string
	if req.Providers != nil {
		providers = &req.Providers
	}
	if req.Models != nil {
		models = &req.Models
	}
	if err := s.tokenSettings(&t, req.Limits, req.ExpiresAt, providers, models); err != nil {
		badRequest(w, err)
		return
	}
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	if err := s.store.PutToken(r.Context(), t); err != nil {
		s.storeError(w, "create token", err)
		return
	}
	ref := tokenRef{id: t.ID, name: t.Name, masked: t.Masked, source: adminapi.TokenSourceAdmin, token: t}
	s.tokens.update(func(m map[[32]byte]tokenRef) { m[sum] = ref })
	s.log.Info("client token created", "id", t.ID, "masked", t.Masked)
	view := s.tokenView(ref)
	writeJSON(w, http.StatusCreated, adminapi.CreateTokenResponse{Message: "Token created; store it now, it is not shown again",
		ID: t.ID, Name: t.Name, Token: secret, Masked: t.Masked, Settings: &view})
}

// findToken returns the client token with id and its hash.
func (s *Server) findToken(id string) (tokenRef, [32]byte, bool) {
	for h, t := range *s.tokens.byHash.Load() {
		if t.id == id {
			return t, h, true
		}
	}
	return tokenRef{}, [32]byte{}, false
}

// handleUpdateToken applies the fields a PUT /admin/tokens/{id} names, and
// only those. Changed limits start with full budgets.
func (s *Server) handleUpdateToken(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var req adminapi.UpdateTokenRequest
	if err := decodeJSON(w, r, maxAdminBody, &req); err != nil {
		badRequest(w, err)
		return
	}
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	ref, sum, ok := s.findToken(id)
	switch {
	case !ok:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "Token not found", "id": truncate(id, 64)})
		return
	case ref.source == adminapi.TokenSourceEnv:
		writeJSON(w, http.StatusConflict, map[string]string{"error": "This token comes from CLIENT_TOKENS and has no settings; create one with POST /admin/tokens to set limits", "id": id})
		return
	}
	t := ref.token
	t.Providers, t.Models = slices.Clone(t.Providers), slices.Clone(t.Models)
	if req.Name != nil {
		if err := validTokenName(*req.Name); err != nil {
			badRequest(w, err)
			return
		}
		t.Name = *req.Name
	}
	if err := s.tokenSettings(&t, req.Limits, req.ExpiresAt, req.Providers, req.Models); err != nil {
		badRequest(w, err)
		return
	}
	t.UpdatedAt = s.cfg.Now().UTC()
	if err := s.store.PutToken(r.Context(), t); err != nil {
		s.storeError(w, "update token", err)
		return
	}
	if t.Limits != ref.token.Limits {
		s.limiter.Reset(id)
	}
	ref.token, ref.name = t, t.Name
	s.tokens.update(func(m map[[32]byte]tokenRef) { m[sum] = ref })
	s.log.Info("client token updated", "id", id)
	writeJSON(w, http.StatusOK, adminapi.TokenResponse{Message: "Token updated", Token: s.tokenView(ref)})
}

func (s *Server) handleDeleteToken(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	var found *tokenRef
	var sum [32]byte
	for h, t := range *s.tokens.byHash.Load() {
		if t.id == id {
			found, sum = &t, h
			break
		}
	}
	switch {
	case found == nil:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "Token not found", "id": truncate(id, 64)})
		return
	case found.source == adminapi.TokenSourceEnv:
		writeJSON(w, http.StatusConflict, map[string]string{"error": "This token comes from CLIENT_TOKENS; remove it there and restart", "id": id})
		return
	}
	if err := s.store.DeleteToken(r.Context(), id); err != nil {
		s.storeError(w, "revoke token", err)
		return
	}
	s.tokens.update(func(m map[[32]byte]tokenRef) { delete(m, sum) })
	s.limiter.Forget(id)
	s.log.Info("client token revoked", "id", id)
	writeJSON(w, http.StatusOK, map[string]string{"message": "Token revoked", "id": id})
}

// handleUsage answers GET /admin/usage: requests and tokens this instance
// relayed since it started, by provider, model and client token.
func (s *Server) handleUsage(w http.ResponseWriter, r *http.Request) {
	conv := func(all []tokenusage.Named) []adminapi.UsageTotals {
		out := make([]adminapi.UsageTotals, 0, len(all))
		for _, n := range all {
			out = append(out, adminapi.UsageTotals{Name: n.Name, Requests: n.Requests, PromptTokens: n.Prompt, CompletionTokens: n.Completion})
		}
		return out
	}
	writeJSON(w, http.StatusOK, adminapi.UsageResponse{
		Since:     *adminapi.FormatTime(s.usage.since),
		Providers: conv(s.usage.providers.All()),
		Models:    conv(s.usage.models.All()),
		Tokens:    conv(s.usage.tokens.All()),
	})
}
