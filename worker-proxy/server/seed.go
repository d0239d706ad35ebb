package server

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/store"
)

// Seeded is what SeedKeys did with a provider's list of keys.
type Seeded struct {
	Added   int // new keys, written to the store and in the pool
	Present int // already in the pool or the store (state and settings untouched), or repeated in the list
}

// seedAttempts bounds how often SeedKeys syncs and writes again after
// another instance wrote the same keys first.
const seedAttempts = 3

// SeedKeys adds the secrets of provider that the pool does not hold yet,
// with default settings, as a bulk import would; keys already there keep
// their state and settings. It is for keys given at start (the
// environment), so a stateless instance serves them from its first
// request.
//
// Several instances may start at once with the same list on a shared
// store: a seeded key's id comes from its secret's fingerprint
// (adminapi.StartKeyIDPrefix…), so two instances that write it write the
// same key, not two copies; one that finds it written meanwhile syncs and
// counts it present. An invalid secret fails the call (an error matching
// pool.ErrInvalid that names its position, never the secret) before
// anything is written.
func (s *Server) SeedKeys(ctx context.Context, provider string, secrets []string) (Seeded, error) {
	for attempt := 1; ; attempt++ {
		res, err := s.seedOnce(ctx, provider, secrets)
		if !errors.Is(err, store.ErrConflict) || attempt == seedAttempts {
			return res, err
		}
		if _, err := s.SyncOnce(ctx); err != nil {
			return res, fmt.Errorf("sync after a conflict: %w", err)
		}
	}
}

// seededID is the id of a key added by SeedKeys: the same for a secret on
// every instance.
func seededID(secret string) string {
	return adminapi.StartKeyIDPrefix + store.Fingerprint(secret)[:16]
}

func (s *Server) seedOnce(ctx context.Context, provider string, secrets []string) (Seeded, error) {
	var res Seeded
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	results, keys := s.newBulkAdder(adminapi.BulkAddRequest{Provider: provider}).prepare(0, secrets)
	for _, r := range results {
		if r.Status == adminapi.BulkInvalid {
			return res, fmt.Errorf("%w: key #%d of %d: %s", pool.ErrInvalid, r.Index+1, len(secrets), r.Error)
		}
	}
	res.Present = len(secrets) - len(keys)
	for i := range keys {
		keys[i].ID = seededID(keys[i].Secret)
	}
	for len(keys) > 0 {
		err := s.store.PutKeys(ctx, keys...)
		var de *store.DuplicateError
		if !errors.As(err, &de) || de.Index < 0 || de.Index >= len(keys) {
			if err != nil {
				return res, fmt.Errorf("store %s keys: %w", provider, err)
			}
			break
		}
		// The store holds the secret under another id (added through
		// the admin API, maybe for another provider): leave it as it is,
		// and write the others again without it.
		s.log.Warn("start key already stored under another id; left as it is", "provider", provider,
			"masked", pool.Mask(keys[de.Index].Secret), "storedAs", de.ExistingID)
		keys = slices.Delete(keys, de.Index, de.Index+1)
		res.Present++
	}
	if len(keys) > 0 {
		s.pool.AddAll(keys)
	}
	res.Added = len(keys)
	if res.Added > 0 {
		s.log.Info("keys added from the start list", "provider", provider, "added", res.Added, "present", res.Present,
			"masked", maskedSample(keys))
	}
	return res, nil
}

// maskedSample is the masked form of the first few keys, for a log line.
func maskedSample(keys []pool.Key) []string {
	var out []string
	for i, k := range keys {
		if i == 3 {
			out = append(out, fmt.Sprintf("… %d more", len(keys)-i))
			break
		}
		out = append(out, pool.Mask(k.Secret))
	}
	return out
}
