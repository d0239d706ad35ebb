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
)

// Contents is everything a Store holds.
type Contents struct {
	Keys   []pool.Key
	Usage  map[string]pool.Usage // by key id; keys without usage may be absent
	Tokens []pool.ClientToken
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
	PutKeys(ctx context.Context, keys ...pool.Key) error

	// DeleteKeys removes keys and their usage by id. Unknown ids are
	// ignored.
	DeleteKeys(ctx context.Context, ids ...string) error

	// AddUsage adds usage deltas to the stored usage, all or none. Deltas
	// of keys that no longer exist are dropped.
	AddUsage(ctx context.Context, deltas []pool.UsageDelta) error

	// ResetUsage sets the request, success and failure counts of the named
	// keys to zero; LastUsed and LastError stay. Unknown ids are ignored.
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
