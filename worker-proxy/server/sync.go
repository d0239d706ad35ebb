package server

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/store"
	"github.com/keypool/keypool/worker-proxy/store/sealed"
)

// restShare is a rest this instance decided, to share through a Live
// store.
type restShare struct {
	id     string
	until  time.Time
	reason string
}

// cool rests a key here and, with a Live store, on every instance: the
// share is queued, never waited for on the request path.
func (s *Server) cool(e *pool.Entry, until time.Time, reason string) {
	s.pool.Cool(e, until, reason)
	if s.cfg.Live == nil {
		return
	}
	select {
	case s.restQ <- restShare{id: e.ID(), until: until, reason: reason}:
	default:
		s.log.Warn("rest share queue full; the rest applies on this instance only", "key", e.ID())
	}
}

// modelRestMark starts the reason of a shared (key, model) rest:
// "\x1fmodel\x1f{model}\x1f{reason}". A Live store keeps one rest per
// key, the longest; instances that read a marked one rest the pair.
const modelRestMark = "\x1fmodel\x1f"

// coolModel rests a (key, model) pair here and, with a Live store, on
// every instance.
func (s *Server) coolModel(e *pool.Entry, model string, until time.Time, reason string) {
	s.pool.CoolModel(e, model, until, reason)
	if s.cfg.Live == nil {
		return
	}
	select {
	case s.restQ <- restShare{id: e.ID(), until: until, reason: modelRestMark + model + "\x1f" + reason}:
	default:
		s.log.Warn("rest share queue full; the rest applies on this instance only", "key", e.ID())
	}
}

// applyRest applies a rest another instance shared: the key's, or a
// (key, model) pair's.
func (s *Server) applyRest(e *pool.Entry, r store.Rest) {
	if rest, ok := strings.CutPrefix(r.Reason, modelRestMark); ok {
		if model, reason, ok := strings.Cut(rest, "\x1f"); ok {
			s.pool.CoolModel(e, model, r.Until, reason)
			return
		}
	}
	s.pool.Cool(e, r.Until, r.Reason)
}

// acquireTimeout bounds the wait for a Live store's count of a limited
// key on the request path; past it the store counts as down and the pool
// counts locally until it answers again.
const acquireTimeout = 500 * time.Millisecond

// liveLimiter counts limited keys' requests through a Live store.
type liveLimiter struct{ live store.Live }

func (l liveLimiter) Acquire(id string, max int64) (int64, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), acquireTimeout)
	defer cancel()
	return l.live.Acquire(ctx, id, max)
}

// SyncOnce brings the pool and the client tokens in line with a shared
// store, if the store is shared and changed. It reports whether anything
// was applied. A Live store that lost its data gets this instance's copy
// back.
func (s *Server) SyncOnce(ctx context.Context) (bool, error) {
	sh, ok := s.store.(store.Shared)
	if !ok {
		return false, nil
	}
	// Admin writes wait while the store is read and what it held applied:
	// a key added in between would leave the pool until the next sync (its
	// instance answering 503 meanwhile), and a key deleted would come back.
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	c, err := sh.Sync(ctx)
	if errors.Is(err, store.ErrLost) && s.cfg.Live != nil {
		if err := s.restoreLocked(ctx); err != nil && !errors.Is(err, store.ErrConflict) {
			return false, err
		}
		return false, nil // the next sync loads what was written back
	}
	if err != nil || c == nil {
		return false, err
	}
	s.pool.Sync(c.Keys, c.Usage)
	s.setTokens(c.Tokens)
	now := s.cfg.Now()
	for id, r := range c.Rests {
		if !r.Until.After(now) {
			continue
		}
		if e, ok := s.pool.Entry(id); ok {
			s.applyRest(e, r)
		}
	}
	return true, nil
}

// restore writes this instance's copy of the pool (keys, tokens, usage
// counted so far, rests) into a Live store that lost its data. The usage
// written counts as flushed. s.adminMu must be held.
func (s *Server) restoreLocked(ctx context.Context) error {
	tokens := s.storedTokens()
	rests := map[string]store.Rest{}
	now := s.cfg.Now()
	for _, prov := range s.pool.Providers() {
		for _, e := range s.pool.Entries(prov) {
			if until, reason := e.Cooling(now); !until.IsZero() {
				rests[e.ID()] = store.Rest{Until: until, Reason: reason}
			}
		}
	}
	return s.pool.Restore(func(keys []pool.Key, usage map[string]pool.Usage) error {
		keys = sealed.SealAs(s.store, keys)
		return s.cfg.Live.Restore(ctx, &store.Contents{Keys: keys, Usage: usage, Tokens: tokens, Rests: rests})
	})
}

// storedTokens returns the client tokens created through the admin API.
func (s *Server) storedTokens() []pool.ClientToken {
	var out []pool.ClientToken
	for _, ref := range *s.tokens.byHash.Load() {
		if ref.source == adminapi.TokenSourceAdmin {
			out = append(out, ref.token)
		}
	}
	return out
}

// RunSync calls SyncOnce every interval, and with a Live store as soon as
// it says something changed, until ctx ends; it returns at once for a
// store that is not shared. With a Live store it also shares the rests
// this instance decides.
func (s *Server) RunSync(ctx context.Context, interval time.Duration) {
	if _, ok := s.store.(store.Shared); !ok || interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var changed <-chan struct{}
	if s.cfg.Live != nil {
		changed = s.cfg.Live.Changed()
		go s.shareRests(ctx)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-changed:
		}
		if _, err := s.SyncOnce(ctx); err != nil {
			s.log.Warn("sync with the shared store failed; serving from memory", "err", err)
		}
	}
}

// shareRests writes queued rests to the Live store until ctx ends. A rest
// that cannot be shared (the store is down) applies here only.
func (s *Server) shareRests(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-s.restQ:
			wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := s.cfg.Live.PutRest(wctx, r.id, r.until, r.reason)
			cancel()
			if err != nil && ctx.Err() == nil {
				s.log.Debug("sharing a key's rest failed; it applies on this instance", "key", r.id, "err", err)
			}
		}
	}
}

// storeHealth reports the store's health; stores that cannot degrade are
// always healthy.
func (s *Server) storeHealth() adminapi.StoreHealth {
	h := adminapi.StoreHealth{Backend: s.cfg.StoreName, OK: true}
	if hr, ok := s.store.(store.HealthReporter); ok {
		sh := hr.Health()
		h.OK, h.Detail = sh.OK, sh.Detail
		h.Since = adminapi.FormatTime(sh.Since)
	}
	return h
}
