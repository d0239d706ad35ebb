package server

import (
	"context"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/store"
)

// SyncOnce brings the pool and the client tokens in line with a shared
// store, if the store is shared and changed. It reports whether anything
// was applied.
func (s *Server) SyncOnce(ctx context.Context) (bool, error) {
	sh, ok := s.store.(store.Shared)
	if !ok {
		return false, nil
	}
	c, err := sh.Sync(ctx)
	if err != nil || c == nil {
		return false, err
	}
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	s.pool.Sync(c.Keys, c.Usage)
	s.setTokens(c.Tokens)
	return true, nil
}

// RunSync calls SyncOnce every interval until ctx ends; it returns at once
// for a store that is not shared.
func (s *Server) RunSync(ctx context.Context, interval time.Duration) {
	if _, ok := s.store.(store.Shared); !ok || interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.SyncOnce(ctx); err != nil {
				s.log.Warn("sync with the shared store failed; serving from memory", "err", err)
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
