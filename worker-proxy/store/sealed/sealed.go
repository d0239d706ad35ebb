// Package sealed keeps pool key secrets encrypted at rest in any
// store.Store: a wrapper seals Key.Secret (package seal) on the way in and
// opens it on the way out, so every backend holds only sealed secrets.
// Usage and client tokens pass through unchanged (tokens are kept as
// SHA-256 hashes already).
//
// With a nil keyring (no ENCRYPTION_KEY) the wrapper writes plaintext, and
// refuses to load sealed secrets: it never hands a sealed value to the
// relay as if it were a key.
//
// Plaintext secrets found by Load while a key is configured (a store
// written before ENCRYPTION_KEY was set) are used, and sealed in place
// with their revision raised by one; if that write fails they are still
// used and sealed at the next start. Sync only reads.
package sealed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/seal"
	"github.com/keypool/keypool/worker-proxy/store"
)

// batchSize bounds one PutKeys call of a migration or rotation, so a long
// run makes progress in all-or-nothing steps.
const batchSize = 500

// Store seals secrets on their way into an inner store.
type Store struct {
	inner store.Store
	ring  *seal.Keyring
	log   *slog.Logger
}

// shared, health and sharedHealth pass through the optional interfaces of
// the inner store.
type (
	shared       struct{ *Store }
	health       struct{ *Store }
	sharedHealth struct{ *Store }
)

func (s shared) Sync(ctx context.Context) (*store.Contents, error) { return s.sync(ctx) }
func (s sharedHealth) Sync(ctx context.Context) (*store.Contents, error) {
	return s.sync(ctx)
}
func (s health) Health() store.Health       { return s.inner.(store.HealthReporter).Health() }
func (s sharedHealth) Health() store.Health { return s.inner.(store.HealthReporter).Health() }

var (
	_ store.Store          = (*Store)(nil)
	_ store.Shared         = shared{}
	_ store.HealthReporter = health{}
	_ store.Shared         = sharedHealth{}
	_ store.HealthReporter = sharedHealth{}
)

// Wrap returns inner with its secrets sealed by ring (nil: no key, see the
// package comment). The result implements store.Shared and
// store.HealthReporter exactly when inner does. log (may be nil) hears of
// migrated plaintext secrets.
func Wrap(inner store.Store, ring *seal.Keyring, log *slog.Logger) store.Store {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Store{inner: inner, ring: ring, log: log}
	_, isShared := inner.(store.Shared)
	_, isHealth := inner.(store.HealthReporter)
	switch {
	case isShared && isHealth:
		return sharedHealth{s}
	case isShared:
		return shared{s}
	case isHealth:
		return health{s}
	}
	return s
}

// Unwrap returns the store under a wrapper made by Wrap, or s itself.
func Unwrap(s store.Store) store.Store {
	switch w := s.(type) {
	case *Store:
		return w.inner
	case shared:
		return w.inner
	case health:
		return w.inner
	case sharedHealth:
		return w.inner
	}
	return s
}

// Load returns the inner store's contents with secrets opened. A secret
// that cannot be opened fails the load with an *OpenError. Plaintext
// secrets are sealed in place when a key is configured.
func (s *Store) Load(ctx context.Context) (*store.Contents, error) {
	c, err := s.inner.Load(ctx)
	if err != nil || c == nil {
		return c, err
	}
	var plain []int // indexes of plaintext secrets
	if err := s.open(c.Keys, &plain); err != nil {
		return nil, err
	}
	if s.ring != nil && len(plain) > 0 {
		s.migrate(ctx, c.Keys, plain)
	}
	return c, nil
}

func (s *Store) sync(ctx context.Context) (*store.Contents, error) {
	c, err := s.inner.(store.Shared).Sync(ctx)
	if err != nil || c == nil {
		return c, err
	}
	if err := s.open(c.Keys, nil); err != nil {
		return nil, err
	}
	return c, nil
}

// open replaces sealed secrets in keys by their plaintext, and notes the
// indexes of plaintext ones in plain (if not nil).
func (s *Store) open(keys []pool.Key, plain *[]int) error {
	var oe *OpenError
	for i := range keys {
		k := &keys[i]
		if !seal.IsSealed(k.Secret) {
			if plain != nil {
				*plain = append(*plain, i)
			}
			continue
		}
		p, err := s.ring.Open(k.Secret)
		if err != nil {
			if oe == nil {
				oe = &OpenError{Configured: s.ring.IDs()}
			}
			oe.add(k.ID, k.Secret, err)
			continue
		}
		k.Secret = p
	}
	if oe != nil {
		return oe
	}
	return nil
}

// migrate seals the plaintext secrets keys[i] for i in plain, raising
// their revision; keys whose write fails keep their revision and stay
// plaintext in the store until the next start.
func (s *Store) migrate(ctx context.Context, keys []pool.Key, plain []int) {
	done := 0
	for batch := range slices.Chunk(plain, batchSize) {
		out := make([]pool.Key, len(batch))
		for j, i := range batch {
			out[j] = sealedCopy(keys[i], s.ring.Current())
		}
		if err := s.inner.PutKeys(ctx, out...); err != nil {
			s.log.Warn("sealing plaintext secrets failed; they are used, and sealed at the next start", "keys", len(plain)-done, "err", err)
			break
		}
		for _, i := range batch {
			if keys[i].Revision > 0 {
				keys[i].Revision++
			}
		}
		done += len(batch)
	}
	if done > 0 {
		s.log.Info("sealed plaintext secrets found in the store", "keys", done, "encryptionKeyID", s.ring.Current().ID())
	}
}

// sealedCopy returns k, whose Secret is plaintext, sealed with key and one
// revision newer (revision 0 stays unconditional).
func sealedCopy(k pool.Key, key *seal.Key) pool.Key {
	k = k.Clone()
	k.Secret = key.Seal(k.Secret)
	if k.Revision > 0 {
		k.Revision++
	}
	return k
}

// PutKeys seals the keys' secrets and writes them. A secret that already
// looks sealed is refused: it would be read back as a sealed value.
func (s *Store) PutKeys(ctx context.Context, keys ...pool.Key) error {
	if len(keys) == 0 {
		return s.inner.PutKeys(ctx)
	}
	out := make([]pool.Key, len(keys))
	for i, k := range keys {
		if seal.IsSealed(k.Secret) {
			return fmt.Errorf("%w: put %s: an API key may not start with %q", pool.ErrInvalid, k.ID, store.SealedPrefix)
		}
		out[i] = k
		if s.ring != nil {
			out[i].Secret = s.ring.Current().Seal(k.Secret)
		}
	}
	return s.inner.PutKeys(ctx, out...)
}

// SealAs returns keys as st writes them into its inner store: with
// secrets sealed when st is a wrapper made by Wrap with a key, unchanged
// otherwise. It is for writing straight into the inner store (a Live
// store's Restore) what PutKeys would have written.
func SealAs(st store.Store, keys []pool.Key) []pool.Key {
	var s *Store
	switch w := st.(type) {
	case *Store:
		s = w
	case shared:
		s = w.Store
	case health:
		s = w.Store
	case sharedHealth:
		s = w.Store
	}
	if s == nil || s.ring == nil {
		return keys
	}
	out := make([]pool.Key, len(keys))
	for i, k := range keys {
		out[i] = k.Clone()
		if !seal.IsSealed(k.Secret) {
			out[i].Secret = s.ring.Current().Seal(k.Secret)
		}
	}
	return out
}

func (s *Store) DeleteKeys(ctx context.Context, ids ...string) error {
	return s.inner.DeleteKeys(ctx, ids...)
}

func (s *Store) AddUsage(ctx context.Context, deltas []pool.UsageDelta) error {
	return s.inner.AddUsage(ctx, deltas)
}

func (s *Store) ResetUsage(ctx context.Context, ids []string) error {
	return s.inner.ResetUsage(ctx, ids)
}

func (s *Store) PutToken(ctx context.Context, t pool.ClientToken) error {
	return s.inner.PutToken(ctx, t)
}

func (s *Store) DeleteToken(ctx context.Context, id string) error {
	return s.inner.DeleteToken(ctx, id)
}

func (s *Store) Close() error { return s.inner.Close() }

// OpenError says which stored secrets could not be opened and why, by
// pool key id and encryption key id; it never holds a secret. It matches
// seal.ErrNoKey, seal.ErrUnknownKey or seal.ErrCorrupt with errors.Is.
type OpenError struct {
	Configured []string // ids of the configured encryption keys, current first
	// BySealKey lists the pool keys that failed, by the id of the key
	// that sealed them ("" when the sealed form is unreadable).
	BySealKey map[string][]string
	errs      []error
}

func (e *OpenError) add(keyID, sealed string, err error) {
	if e.BySealKey == nil {
		e.BySealKey = map[string][]string{}
	}
	id, _ := seal.KeyID(sealed)
	if len(e.BySealKey[id]) == 0 {
		e.errs = append(e.errs, err)
	}
	e.BySealKey[id] = append(e.BySealKey[id], keyID)
}

func (e *OpenError) Error() string {
	var b strings.Builder
	ids := make([]string, 0, len(e.BySealKey))
	for id := range e.BySealKey {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for i, id := range ids {
		if i > 0 {
			b.WriteString("; ")
		}
		keys := e.BySealKey[id]
		fmt.Fprintf(&b, "%d stored key(s) (%s) ", len(keys), list(keys, 3))
		switch {
		case len(e.Configured) == 0:
			fmt.Fprintf(&b, "are sealed with encryption key id %s and ENCRYPTION_KEY is not set: set it to that key", id)
		case !slices.Contains(e.Configured, id):
			fmt.Fprintf(&b, "are sealed with encryption key id %s, but the configured keys have id %s: set ENCRYPTION_KEY (or ENCRYPTION_KEY_PREVIOUS) to the key with id %s", id, strings.Join(e.Configured, ", "), id)
		default:
			fmt.Fprintf(&b, "do not open with encryption key id %s: the stored value is damaged or was altered", id)
		}
	}
	return "store: cannot open sealed secrets: " + b.String()
}

// Unwrap returns one error per encryption key id that failed.
func (e *OpenError) Unwrap() []error { return e.errs }

func list(ids []string, n int) string {
	if len(ids) <= n {
		return strings.Join(ids, ", ")
	}
	return strings.Join(ids[:n], ", ") + fmt.Sprintf(" and %d more", len(ids)-n)
}

// Counts reports what Reseal did.
type Counts struct {
	Keys          int            // keys in the store
	Current       int            // already sealed with the current key before the run, left alone
	Resealed      int            // written sealed with the current key
	FromPlaintext int            // of Resealed, how many were plaintext
	FromKey       map[string]int // of Resealed, how many by previous key id
}

// Reseal seals every secret in inner with ring's current key: plaintext
// ones and those sealed with a previous key of ring. It checks that every
// secret opens before writing anything, then writes in all-or-nothing
// batches with each key's revision raised by one; keys changed meanwhile
// by another writer are reloaded and retried. Safe to run again after an
// interruption: keys already sealed with the current key are left alone.
func Reseal(ctx context.Context, inner store.Store, ring *seal.Keyring) (Counts, error) {
	if ring == nil {
		return Counts{}, errors.New("reseal: no encryption key is configured")
	}
	cur := ring.Current()
	var total Counts
	total.FromKey = map[string]int{}
	for attempt := 0; ; attempt++ {
		c, err := inner.Load(ctx)
		if err != nil {
			return total, fmt.Errorf("reseal: load: %w", err)
		}
		total.Keys, total.Current = len(c.Keys), -total.Resealed // ours from earlier passes
		var todo []pool.Key
		var from []string
		opened := make([]pool.Key, len(c.Keys))
		copy(opened, c.Keys)
		s := &Store{ring: ring}
		if err := s.open(opened, nil); err != nil {
			return total, fmt.Errorf("reseal: nothing was changed: %w", err)
		}
		for i, k := range c.Keys {
			id, sealed := seal.KeyID(k.Secret)
			if sealed && id == cur.ID() {
				total.Current++
				continue
			}
			todo = append(todo, sealedCopy(opened[i], cur))
			from = append(from, id)
		}
		conflicts := 0
		for start := 0; start < len(todo); start += batchSize {
			end := min(start+batchSize, len(todo))
			err := inner.PutKeys(ctx, todo[start:end]...)
			if errors.Is(err, store.ErrConflict) {
				conflicts++
				continue
			}
			if err != nil {
				return total, fmt.Errorf("reseal: %d keys re-sealed so far; run again to finish: %w", total.Resealed, err)
			}
			for _, id := range from[start:end] {
				total.Resealed++
				if id == "" {
					total.FromPlaintext++
				} else {
					total.FromKey[id]++
				}
			}
		}
		if conflicts == 0 {
			return total, nil
		}
		if attempt == 4 {
			return total, fmt.Errorf("reseal: keys kept changing under way (%d batches in conflict); run again", conflicts)
		}
	}
}
