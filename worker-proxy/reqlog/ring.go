package reqlog

import (
	"sync"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
)

// Ring is an in-memory Store for one instance: the newest Max records, none
// older than MaxAge. Its records are gone when the process ends.
type Ring struct {
	b   Bounds
	now func() time.Time

	mu   sync.RWMutex
	buf  []adminapi.RequestRecord // circular; oldest at head; grows up to b.Max
	ids  []uint64                 // parsed IDs, parallel to buf
	head int
	n    int
}

var _ Store = (*Ring)(nil)

// ringMin is the room a Ring starts with; it doubles as records come, up
// to Bounds.Max.
const ringMin = 64

// NewRing returns an empty Ring; b.Max defaults to DefaultRingMax. now is
// the clock for MaxAge (nil: time.Now). Its memory grows with the records
// it holds (a new instance does not allocate Max records up front: at the
// default that is megabytes, and on the edge a garbage collection before
// the first request is served).
func NewRing(b Bounds, now func() time.Time) *Ring {
	b = b.WithDefaults(DefaultRingMax)
	if now == nil {
		now = time.Now
	}
	c := min(b.Max, ringMin)
	return &Ring{b: b, now: now, buf: make([]adminapi.RequestRecord, c), ids: make([]uint64, c)}
}

// growLocked makes room for one more record when the buffer is full but
// below Max: the records move, oldest first, into a buffer twice as long
// (at most Max).
func (r *Ring) growLocked() {
	if r.n < len(r.buf) || len(r.buf) >= r.b.Max {
		return
	}
	c := min(2*len(r.buf), r.b.Max)
	buf, ids := make([]adminapi.RequestRecord, c), make([]uint64, c)
	for k := range r.n {
		i := (r.head + k) % len(r.buf)
		buf[k], ids[k] = r.buf[i], r.ids[i]
	}
	r.buf, r.ids, r.head = buf, ids, 0
}

// Append adds recs, overwriting the oldest once full.
func (r *Ring) Append(recs []adminapi.RequestRecord) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range recs {
		id, err := ParseID(rec.ID)
		if err != nil {
			return err
		}
		r.growLocked()
		i := (r.head + r.n) % len(r.buf)
		if r.n == len(r.buf) {
			r.head = (r.head + 1) % len(r.buf)
		} else {
			r.n++
		}
		r.buf[i], r.ids[i] = rec, id
	}
	r.pruneLocked()
	return nil
}

func (r *Ring) pruneLocked() {
	cutoff := uint64(r.now().Add(-r.b.MaxAge).UnixNano())
	for r.n > 0 && r.ids[r.head] < cutoff {
		r.buf[r.head] = adminapi.RequestRecord{}
		r.head = (r.head + 1) % len(r.buf)
		r.n--
	}
}

// Query scans from the newest record (or the cursor) back.
func (r *Ring) Query(f Filter) ([]adminapi.RequestRecord, string, error) {
	var cursor uint64
	if f.Cursor != "" {
		c, err := ParseID(f.Cursor)
		if err != nil {
			return nil, "", ErrBadFilter
		}
		cursor = c
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	cutoff := uint64(r.now().Add(-r.b.MaxAge).UnixNano())
	limit, stop := f.PageLimit(), f.StopAt()
	var out []adminapi.RequestRecord
	scanned := 0
	for k := r.n - 1; k >= 0; k-- {
		i := (r.head + k) % len(r.buf)
		id := r.ids[i]
		if cursor != 0 && id >= cursor {
			continue
		}
		if id < stop || id < cutoff {
			return out, "", nil
		}
		if scanned++; scanned > ScanBudget {
			return out, FormatID(id + 1), nil
		}
		if f.Match(&r.buf[i]) {
			if len(out) == limit {
				return out, out[len(out)-1].ID, nil
			}
			out = append(out, r.buf[i])
		}
	}
	return out, "", nil
}

// LastID is the newest record's ID.
func (r *Ring) LastID() uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.n == 0 {
		return 0
	}
	return r.ids[(r.head+r.n-1)%len(r.buf)]
}

// Close does nothing.
func (r *Ring) Close() error { return nil }

// Bounds says how much the store keeps.
func (r *Ring) Bounds() Bounds { return r.b }
