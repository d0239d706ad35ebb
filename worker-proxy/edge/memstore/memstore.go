// Package memstore is a store.Store that keeps everything in memory: keys
// come only from the admin API and are lost when the process (or isolate)
// stops. It is STORE=memory of the edge build, where no file database is
// available; the edge logs a loud warning when it is used.
package memstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/store"
)

// Store is the in-memory backend. The zero value is not usable; call New.
type Store struct {
	mu     sync.Mutex
	closed bool
	keys   map[string]pool.Key
	usage  map[string]pool.Usage
	tokens map[string]pool.ClientToken
	fps    store.Fingerprints
}

var _ store.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{keys: map[string]pool.Key{}, usage: map[string]pool.Usage{}, tokens: map[string]pool.ClientToken{}}
}

var errClosed = errors.New("memstore: store is closed")

// begin locks the store and checks that it is open and ctx is not done.
func (s *Store) begin(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: %s: %w", op, err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("%s: %w", op, errClosed)
	}
	return nil
}

// Load returns copies of everything held.
func (s *Store) Load(ctx context.Context) (*store.Contents, error) {
	if err := s.begin(ctx, "load"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	c := &store.Contents{Usage: make(map[string]pool.Usage, len(s.usage))}
	for _, id := range slices.Sorted(maps.Keys(s.keys)) {
		c.Keys = append(c.Keys, copyKey(s.keys[id]))
	}
	for id, u := range s.usage {
		c.Usage[id] = copyUsage(u)
	}
	for _, id := range slices.Sorted(maps.Keys(s.tokens)) {
		c.Tokens = append(c.Tokens, s.tokens[id])
	}
	return c, nil
}

// PutKeys creates or replaces keys, all or none; see store.Store.
func (s *Store) PutKeys(ctx context.Context, keys ...pool.Key) error {
	if err := s.begin(ctx, "put keys"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := s.fps.CheckNew(keys); err != nil {
		return fmt.Errorf("memstore: put keys: %w", err)
	}
	for _, k := range keys {
		if k.ID == "" {
			return errors.New("memstore: put keys: key with empty id")
		}
		if old, ok := s.keys[k.ID]; ok && k.Revision > 0 && old.Revision >= k.Revision {
			return fmt.Errorf("memstore: put keys: key %q: revision %d is not newer than stored %d: %w", k.ID, k.Revision, old.Revision, store.ErrConflict)
		}
	}
	for _, k := range keys {
		if old, ok := s.keys[k.ID]; ok && old.Secret != k.Secret {
			s.fps.Remove(k.ID, old.Secret)
		}
		s.keys[k.ID] = copyKey(k)
		s.fps.Set(k.ID, k.Secret)
	}
	return nil
}

// DeleteKeys removes keys and their usage.
func (s *Store) DeleteKeys(ctx context.Context, ids ...string) error {
	if err := s.begin(ctx, "delete keys"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	for _, id := range ids {
		if k, ok := s.keys[id]; ok {
			s.fps.Remove(id, k.Secret)
		}
		delete(s.keys, id)
		delete(s.usage, id)
	}
	return nil
}

// AddUsage applies deltas in order; deltas of unknown keys are dropped.
func (s *Store) AddUsage(ctx context.Context, deltas []pool.UsageDelta) error {
	if err := s.begin(ctx, "add usage"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	for _, d := range deltas {
		if _, ok := s.keys[d.ID]; ok {
			s.usage[d.ID] = s.usage[d.ID].Apply(d)
		}
	}
	return nil
}

// ResetUsage zeroes the counts of the named keys, keeping LastUsed and
// LastError.
func (s *Store) ResetUsage(ctx context.Context, ids []string) error {
	if err := s.begin(ctx, "reset usage"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	for _, id := range ids {
		if u, ok := s.usage[id]; ok {
			u.Requests, u.Successes, u.Failures, u.PromptTokens, u.CompletionTokens = 0, 0, 0, 0, 0
			s.usage[id] = u
		}
	}
	return nil
}

// PutToken creates or replaces a client token.
func (s *Store) PutToken(ctx context.Context, t pool.ClientToken) error {
	if err := s.begin(ctx, "put token"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if t.ID == "" {
		return errors.New("memstore: put token: token with empty id")
	}
	s.tokens[t.ID] = t
	return nil
}

// DeleteToken removes a client token; store.ErrNotFound if absent.
func (s *Store) DeleteToken(ctx context.Context, id string) error {
	if err := s.begin(ctx, "delete token"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.tokens[id]; !ok {
		return fmt.Errorf("memstore: token %q: %w", id, store.ErrNotFound)
	}
	delete(s.tokens, id)
	return nil
}

// Close makes later calls fail; the contents are gone with the store.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

func copyKey(k pool.Key) pool.Key {
	k.Tags = slices.Clone(k.Tags)
	return k
}

func copyUsage(u pool.Usage) pool.Usage {
	if u.LastError != nil {
		le := *u.LastError
		u.LastError = &le
	}
	return u
}
