// Package reqlog is the request log: one record per relayed request
// (adminapi.RequestRecord: who, which provider, model and key, how it
// ended, attempts, latency, tokens; never a body, a prompt or a secret).
//
// The relay hands records to a [Log], which never blocks it: records wait
// in a bounded queue and a background loop writes them to the [Store] in
// batches. A full queue drops records and counts them.
//
// Three stores: boltlog, a bbolt file of its own (DATA_DIR/requests.db,
// apart from the key database so the log's writes never contend with key
// changes); redislog, one stream every instance of a pool shares; and
// [Ring], here, an in-memory ring for one instance (used with the Cloudflare KV
// store, whose write budget — 1,000 writes a day on the free plan, a bulk
// write counting one per pair — cannot take a record per request).
// Each keeps at most Max records and none older than MaxAge. This package
// imports neither bbolt nor Redis, so it builds for the edge (GOOS=js).
package reqlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
)

// Defaults.
const (
	DefaultMaxAge     = 7 * 24 * time.Hour
	DefaultMax        = 100_000
	DefaultRingMax    = 10_000
	DefaultLimit      = 50
	MaxLimit          = 500
	defaultBatchDelay = time.Second
	maxBatch          = 512
	queueSize         = 8192
	// ScanBudget bounds the records one query reads: past it, the page
	// ends early with a cursor to continue from.
	ScanBudget = 20_000
)

// ErrBadFilter is the error of a filter or cursor that cannot be read.
var ErrBadFilter = errors.New("invalid filter")

// Store keeps records in ID order. Implementations are safe for concurrent
// use.
type Store interface {
	// Append adds records whose IDs are greater than every stored one, in
	// ID order, all or none; then drops records beyond Max and those older
	// than MaxAge.
	Append(recs []adminapi.RequestRecord) error
	// Query returns up to f.Limit records matching f, newest first, and the
	// cursor of the next page ("" at the end).
	Query(f Filter) ([]adminapi.RequestRecord, string, error)
	// LastID is the greatest stored ID, or 0.
	LastID() uint64
	// Bounds says how much the store keeps.
	Bounds() Bounds
	Close() error
}

// Bounds is how much a store keeps.
type Bounds struct {
	Max    int           // most records; default DefaultMax
	MaxAge time.Duration // oldest record's age; default DefaultMaxAge
}

// WithDefaults fills in MaxAge's default and, when unset, Max.
func (b Bounds) WithDefaults(max int) Bounds {
	if b.Max <= 0 {
		b.Max = max
	}
	if b.MaxAge <= 0 {
		b.MaxAge = DefaultMaxAge
	}
	return b
}

// Filter selects records. Zero fields select everything.
type Filter struct {
	Provider string
	KeyID    string // the final key or any attempt's
	Token    string // the client token's name or id
	Model    string
	// Status is a class ("2xx", "4xx", "5xx") or one status ("429").
	Status string
	Since  time.Time // records that arrived at or after
	Until  time.Time // records that arrived at or before
	// Cursor continues a previous page (its Next).
	Cursor string
	Limit  int // default DefaultLimit, at most MaxLimit
}

// ParseFilter reads a Filter from GET /admin/requests's query: provider,
// key, token, model, status, since, until (RFC 3339 times), cursor, limit.
func ParseFilter(q url.Values) (Filter, error) {
	f := Filter{
		Provider: q.Get("provider"), KeyID: q.Get("key"), Token: q.Get("token"),
		Model: q.Get("model"), Status: strings.ToLower(q.Get("status")), Cursor: q.Get("cursor"),
	}
	if f.Status != "" && !validStatus(f.Status) {
		return f, fmt.Errorf("%w: status %q is not a class like 2xx or a status like 429", ErrBadFilter, trunc(f.Status))
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(t.name); v != "" {
			tm, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return f, fmt.Errorf("%w: %s %q is not an RFC 3339 time like 2026-01-15T10:30:00Z", ErrBadFilter, t.name, trunc(v))
			}
			*t.dst = tm
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLimit {
			return f, fmt.Errorf("%w: limit %q is not a number from 1 to %d", ErrBadFilter, trunc(v), MaxLimit)
		}
		f.Limit = n
	}
	if f.Cursor != "" {
		if _, err := ParseID(f.Cursor); err != nil {
			return f, fmt.Errorf("%w: cursor %q is not one this log gave", ErrBadFilter, trunc(f.Cursor))
		}
	}
	return f, nil
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func validStatus(s string) bool {
	if len(s) == 3 && s[0] >= '1' && s[0] <= '5' && s[1:] == "xx" {
		return true
	}
	n, err := strconv.Atoi(s)
	return err == nil && n >= 100 && n <= 599
}

// PageLimit is f.Limit with its default and cap applied.
func (f Filter) PageLimit() int {
	if f.Limit <= 0 {
		return DefaultLimit
	}
	return min(f.Limit, MaxLimit)
}

// Match reports whether r passes every field of f but the cursor.
func (f Filter) Match(r *adminapi.RequestRecord) bool {
	if f.Provider != "" && r.Provider != f.Provider ||
		f.Token != "" && r.Token != f.Token && r.TokenID != f.Token ||
		f.Model != "" && r.Model != f.Model ||
		!f.Since.IsZero() && r.Time.Before(f.Since) ||
		!f.Until.IsZero() && r.Time.After(f.Until) {
		return false
	}
	if f.Status != "" {
		s := strconv.Itoa(r.Status)
		if strings.HasSuffix(f.Status, "xx") {
			if s[0] != f.Status[0] {
				return false
			}
		} else if s != f.Status {
			return false
		}
	}
	if f.KeyID != "" && r.KeyID != f.KeyID {
		found := false
		for _, a := range r.Attempts {
			if a.KeyID == f.KeyID {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// StopAt is the ID below which no record can match f: a record's ID is
// taken when it finishes, never before it arrived.
func (f Filter) StopAt() uint64 {
	if f.Since.IsZero() {
		return 0
	}
	return uint64(f.Since.UnixNano())
}

// FormatID writes a record ID: 16 hex digits, so IDs sort as strings.
func FormatID(id uint64) string {
	const hexDigits = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = hexDigits[id&0xf]
		id >>= 4
	}
	return string(b[:])
}

// ParseID reads an ID written by FormatID.
func ParseID(s string) (uint64, error) {
	if len(s) != 16 {
		return 0, ErrBadFilter
	}
	return strconv.ParseUint(s, 16, 64)
}

// Options configures a Log.
type Options struct {
	// BatchDelay is how long a record may wait before its batch is
	// written. Default 1s.
	BatchDelay time.Duration
	Logger     *slog.Logger
	// Now is the clock that orders IDs. Default time.Now.
	Now func() time.Time
}

// Log queues records and writes them in batches. Add never blocks.
type Log struct {
	store Store
	opts  Options
	name  string
	b     Bounds

	q       chan adminapi.RequestRecord
	lastID  atomic.Uint64
	dropped atomic.Int64
	written atomic.Int64
	failed  atomic.Int64

	flushReq chan chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	cancel   context.CancelFunc
}

// New starts a Log over st; name ("bolt", "memory") names st in the API.
// Close stops it.
func New(st Store, name string, o Options) *Log {
	if o.BatchDelay <= 0 {
		o.BatchDelay = defaultBatchDelay
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &Log{store: st, opts: o, name: name, b: st.Bounds(),
		q: make(chan adminapi.RequestRecord, queueSize), flushReq: make(chan chan struct{}), done: make(chan struct{})}
	l.lastID.Store(st.LastID())
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go l.run(ctx)
	return l
}

// nextID returns an ID greater than every earlier one: the current time in
// nanoseconds, or one more than the last ID if the clock has not moved on.
func (l *Log) nextID() uint64 {
	now := uint64(l.opts.Now().UnixNano())
	for {
		last := l.lastID.Load()
		id := max(now, last+1)
		if l.lastID.CompareAndSwap(last, id) {
			return id
		}
	}
}

// Add queues r for writing; it gives r its ID. When the queue is full the
// record is dropped and counted (Dropped).
func (l *Log) Add(r adminapi.RequestRecord) {
	select {
	case l.q <- r:
	default:
		l.dropped.Add(1)
	}
}

func (l *Log) run(ctx context.Context) {
	defer close(l.done)
	batch := make([]adminapi.RequestRecord, 0, maxBatch)
	t := time.NewTimer(l.opts.BatchDelay)
	t.Stop()
	armed := false
	write := func() {
		if len(batch) == 0 {
			return
		}
		if err := l.store.Append(batch); err != nil {
			l.failed.Add(int64(len(batch)))
			l.opts.Logger.Warn("request log: writing a batch failed; its records are lost", "records", len(batch), "err", err)
		} else {
			l.written.Add(int64(len(batch)))
		}
		batch = batch[:0]
	}
	take := func(r adminapi.RequestRecord) {
		// IDs are given here, in queue order, so each batch is in ID order.
		r.ID = FormatID(l.nextID())
		batch = append(batch, r)
		if len(batch) >= maxBatch {
			write()
		}
	}
	drain := func() {
		for {
			select {
			case r := <-l.q:
				take(r)
			default:
				write()
				return
			}
		}
	}
	for {
		select {
		case r := <-l.q:
			take(r)
			if !armed && len(batch) > 0 {
				t.Reset(l.opts.BatchDelay)
				armed = true
			}
		case <-t.C:
			armed = false
			drain()
		case ack := <-l.flushReq:
			drain()
			close(ack)
		case <-ctx.Done():
			drain()
			return
		}
	}
}

// Flush writes every queued record now.
func (l *Log) Flush() {
	ack := make(chan struct{})
	select {
	case l.flushReq <- ack:
		<-ack
	case <-l.done:
	}
}

// Close writes what is queued, stops the loop and closes the store.
func (l *Log) Close() error {
	var err error
	l.stopOnce.Do(func() {
		l.cancel()
		<-l.done
		err = l.store.Close()
	})
	return err
}

// Query answers GET /admin/requests.
func (l *Log) Query(f Filter) (adminapi.RequestsResponse, error) {
	recs, next, err := l.store.Query(f)
	if err != nil {
		return adminapi.RequestsResponse{}, err
	}
	if recs == nil {
		recs = []adminapi.RequestRecord{}
	}
	return adminapi.RequestsResponse{Records: recs, Next: next, Backend: l.name, MaxAge: l.b.MaxAge.String(), Max: l.b.Max}, nil
}

// Stats are the log's counters since start.
type Stats struct{ Written, Dropped, Failed int64 }

// Stats returns the counts of records written, dropped on a full queue and
// lost to a failed write.
func (l *Log) Stats() Stats {
	return Stats{Written: l.written.Load(), Dropped: l.dropped.Load(), Failed: l.failed.Load()}
}
