// Package store defines where the proxy keeps keys, usage and client tokens
// between restarts. Backends live in subpackages; every backend passes the
// conformance suite in storetest.
//
// The interface is shaped for the weakest backend, Cloudflare KV: no
// transactions across calls, no compare-and-swap, eventual consistency and
// a small daily write budget. So the relay never calls a Store on the
// request path: the proxy serves from memory (package pool), writes
// configuration changes as they happen, and flushes usage counters in
// batches of deltas.
package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/keypool/keypool/worker-proxy/pool"
)

// Errors a Store returns, matched with errors.Is.
var (
	// ErrNotFound: the named record does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrUnavailable: the backend cannot be reached or refuses service for
	// now (rate limit, outage). Nothing was written.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrConflict: a key was changed by someone else since the revision
	// the write was based on. Nothing was written.
	ErrConflict = errors.New("store: conflict")
	// ErrDuplicate: a key holds the same secret as another key with a
	// different id. Nothing was written. The error is a *DuplicateError.
	ErrDuplicate = errors.New("store: duplicate secret")
)

// DuplicateError says which key of a PutKeys call holds a secret that
// another key already holds. It names ids and positions, never the secret.
// It matches ErrDuplicate.
type DuplicateError struct {
	Index int    // position of the refused key in the PutKeys call
	ID    string // id of the refused key
	// ExistingID is the key that holds the secret: a stored key, or an
	// earlier key of the same call.
	ExistingID string
}

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("store: key %q (#%d of the call) holds the same secret as key %q", e.ID, e.Index, e.ExistingID)
}

// Is makes errors.Is(err, ErrDuplicate) true.
func (e *DuplicateError) Is(target error) bool { return target == ErrDuplicate }

// Fingerprints finds keys holding the same secret, by Fingerprint: it never
// compares plaintext, so it works on sealed secrets too. The zero value is
// empty and ready; not safe for concurrent use. It keeps the 128-bit
// fingerprint in binary and the holder's id: about 60 bytes a key.
type Fingerprints struct {
	holder map[fingerprint]string   // fingerprint → the id holding it
	extra  map[fingerprint][]string // further ids holding it (duplicates stored before the check existed)
}

// Set records that key id holds secret. A key that held another secret
// before must be removed from it first (Remove).
func (f *Fingerprints) Set(id, secret string) {
	if f.holder == nil {
		f.holder, f.extra = map[fingerprint]string{}, map[fingerprint][]string{}
	}
	fp := fingerprintOf(secret)
	switch cur, taken := f.holder[fp]; {
	case !taken:
		f.holder[fp] = id
	case cur != id && !slices.Contains(f.extra[fp], id):
		f.extra[fp] = append(f.extra[fp], id)
	}
}

// Remove forgets that key id holds secret.
func (f *Fingerprints) Remove(id, secret string) {
	fp := fingerprintOf(secret)
	cur, ok := f.holder[fp]
	if !ok {
		return
	}
	more := f.extra[fp]
	if cur == id {
		if len(more) == 0 {
			delete(f.holder, fp)
			return
		}
		f.holder[fp], more = more[0], more[1:]
	} else if i := slices.Index(more, id); i >= 0 {
		more = slices.Delete(more, i, i+1)
	}
	if len(more) == 0 {
		delete(f.extra, fp)
	} else {
		f.extra[fp] = more
	}
}

// Len returns how many fingerprints are recorded.
func (f *Fingerprints) Len() int { return len(f.holder) }

// holders returns every id holding fp.
func (f *Fingerprints) holders(fp fingerprint) []string {
	id, ok := f.holder[fp]
	if !ok {
		return nil
	}
	return append([]string{id}, f.extra[fp]...)
}

// CheckNew returns a *DuplicateError for the first key of keys that would
// add a second copy of a secret: one held by a recorded key with another
// id, or by an earlier key of keys. A key that already holds its secret is
// never refused, so duplicates stored before this check existed can still
// be edited and deleted.
func (f *Fingerprints) CheckNew(keys []pool.Key) error {
	type first struct {
		index int
		id    string
	}
	inCall := make(map[fingerprint]first, len(keys))
	for i, k := range keys {
		fp := fingerprintOf(k.Secret)
		holders := f.holders(fp)
		if slices.Contains(holders, k.ID) {
			continue // already holds it
		}
		if prev, ok := inCall[fp]; ok && prev.id != k.ID {
			return &DuplicateError{Index: i, ID: k.ID, ExistingID: prev.id}
		}
		inCall[fp] = first{i, k.ID}
		for _, other := range holders {
			if other != k.ID && !replacedInCall(keys, other, fp) {
				return &DuplicateError{Index: i, ID: k.ID, ExistingID: other}
			}
		}
	}
	return nil
}

// replacedInCall reports whether keys gives id another secret than the
// one with fingerprint fp (a secret moving from one key to another in one
// call).
func replacedInCall(keys []pool.Key, id string, fp fingerprint) bool {
	for _, k := range keys {
		if k.ID == id {
			return fingerprintOf(k.Secret) != fp
		}
	}
	return false
}

// Contents is everything a Store holds.
type Contents struct {
	Keys   []pool.Key
	Usage  map[string]pool.Usage // by key id; keys without usage may be absent
	Tokens []pool.ClientToken
	// Rests are the shared rests (cooldowns) of keys, by key id, from a
	// Live store; other stores leave it nil. Rests that have run out may
	// be included.
	Rests map[string]Rest
}

// Rest is a key's cooldown as one instance decided it.
type Rest struct {
	Until  time.Time
	Reason string
}

// Store persists the pool. All methods are safe for concurrent use. A method
// that returns an error has written nothing.
type Store interface {
	// Load returns everything the store holds.
	Load(ctx context.Context) (*Contents, error)

	// PutKeys creates or replaces keys by id, all or none. A key with a
	// Revision above 0 is written only if the stored key is absent or has
	// a lower Revision; otherwise PutKeys returns an error matching
	// ErrConflict and writes nothing. Revision 0 writes unconditionally.
	// A key whose secret another key (stored, or earlier in keys) holds
	// under a different id is refused with a *DuplicateError matching
	// ErrDuplicate, and nothing is written; secrets are compared by
	// Fingerprint.
	PutKeys(ctx context.Context, keys ...pool.Key) error

	// DeleteKeys removes keys and their usage by id. Unknown ids are
	// ignored.
	DeleteKeys(ctx context.Context, ids ...string) error

	// AddUsage adds usage deltas to the stored usage, all or none. Deltas
	// of keys that no longer exist are dropped.
	AddUsage(ctx context.Context, deltas []pool.UsageDelta) error

	// ResetUsage sets the request, success, failure and token counts of
	// the named keys to zero; LastUsed and LastError stay. Unknown ids are ignored.
	ResetUsage(ctx context.Context, ids []string) error

	// PutToken creates or replaces a client token by id.
	PutToken(ctx context.Context, t pool.ClientToken) error

	// DeleteToken removes a client token; ErrNotFound if it does not exist.
	DeleteToken(ctx context.Context, id string) error

	// Close releases the store. Pending writes have completed when it
	// returns.
	Close() error
}

// Shared is a Store that other proxy instances write too (Cloudflare KV).
// The proxy calls Sync on an interval to pick up their changes.
type Shared interface {
	Store
	// Sync returns the store's contents if they may have changed since the
	// last call (always on the first), or nil if not. Usage holds totals
	// across every instance, this one's flushed usage included.
	Sync(ctx context.Context) (*Contents, error)
}

// ErrLost: a Live store found its data gone (a Redis restarted without
// persistence). Sync returns it until the data is written back; the
// caller writes its own copy back with Live.Restore.
var ErrLost = errors.New("store: the shared data is gone (restarted without persistence?)")

// Live is a Shared store that instances share in real time (Redis): it
// says when another instance changed something, shares rests, and counts
// requests of limited keys atomically for all instances.
type Live interface {
	Shared
	// Changed receives a value soon after another instance changed keys,
	// tokens, usage resets or rests; the receiver calls Sync.
	Changed() <-chan struct{}
	// PutRest shares a key's rest; a later, shorter one does not shorten
	// what is stored.
	PutRest(ctx context.Context, id string, until time.Time, reason string) error
	// Acquire counts one request of key id against max for every
	// instance at once: if fewer than max were counted it counts this one
	// and returns ok; either way it returns the count. An error (store
	// unreachable) counts nothing; the caller counts locally and flushes
	// the count later.
	Acquire(ctx context.Context, id string, max int64) (count int64, ok bool, err error)
	// Counted sets what hears, when the store answers again, that n
	// requests of key id that Acquire failed on were counted after all
	// (their answer was lost): the caller counted them locally too.
	Counted(f func(id string, n int64))
	// Restore writes c back after ErrLost, unless another instance did
	// first: then it writes nothing and returns an error matching
	// ErrConflict, and the store follows that instance's copy.
	Restore(ctx context.Context, c *Contents) error
}

// Health is what a backend says about its own state.
type Health struct {
	OK     bool      `json:"ok"`
	Since  time.Time `json:"since,omitzero"`   // when the current state began
	Detail string    `json:"detail,omitempty"` // why it is degraded, secret-free
}

// HealthReporter is a Store that can be degraded (unreachable, rate
// limited) while the proxy keeps serving from memory.
type HealthReporter interface {
	Health() Health
}

// AliasStore is a Store that also keeps the model aliases set through the
// admin API, as alias name → "provider/model". The server takes it from
// the backend before any wrapper (store/sealed: aliases are not secret).
type AliasStore interface {
	// Aliases returns the stored aliases; none gives an empty map.
	Aliases(ctx context.Context) (map[string]string, error)
	// PutAliases replaces every stored alias with aliases, all or none.
	PutAliases(ctx context.Context, aliases map[string]string) error
}
