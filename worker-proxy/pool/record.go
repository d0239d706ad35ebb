package pool

import (
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A pool of 100,000 keys keeps 100,000 configurations in memory for as long
// as it runs, and the garbage collector marks them at every cycle. So the
// pool does not hold a Key per key but a rec: the fields every key sets,
// packed (times as unix nanoseconds, the provider as a small number, id and
// secret as one string), and the fields few keys set behind one pointer
// that is nil for most keys. Key() rebuilds the public Key on demand;
// Config gives scanners the fields without building one.

// rec is a key's configuration as the pool holds it. It is immutable once
// published (Entry.cfg): a change publishes a new rec.
type rec struct {
	ids      string // the id, then the secret: one allocation
	maxReq   int64
	created  int64 // packTime; when the exact time does not fit, in x
	updated  int64
	revision int64
	x        *recExtra // fields few keys set; nil when none is
	idLen    uint16    // len(id), when it fits (else x.idLen)
	weight   uint16    // when it fits (else x.weight)
	prov     uint16    // index in the provider names (providerName)
	flags    uint8
}

const (
	fActive         = 1 << iota
	fProjectLearned // Key.ProjectLearned
	fDisabled       // DisabledReason != ""
	fCreatedX       // CreatedAt is x.createdAt
	fUpdatedX       // UpdatedAt is x.updatedAt
	fWeightX        // Weight is x.weight
	fIDLenX         // len(ID) is x.idLen
	fProvX          // Provider is x.provider
)

// recExtra holds the fields of a key that most keys leave empty, and the
// exact form of the few values the packed fields cannot hold.
type recExtra struct {
	description    string
	tags           []string
	disabledReason string
	disabledAt     time.Time
	project        string
	proxy          string

	createdAt, updatedAt time.Time
	weight, idLen        int
	provider             string
}

func (x *recExtra) empty() bool {
	return x.description == "" && x.tags == nil && x.disabledReason == "" && x.disabledAt == (time.Time{}) &&
		x.project == "" && x.proxy == "" && x.createdAt == (time.Time{}) && x.updatedAt == (time.Time{}) &&
		x.weight == 0 && x.idLen == 0 && x.provider == ""
}

// packTime returns t as unix nanoseconds (0 for the zero time), and
// whether unpackTime gives t back exactly: the same instant, in UTC,
// without a monotonic clock reading.
func packTime(t time.Time) (int64, bool) {
	if t == (time.Time{}) {
		return 0, true
	}
	n := t.UnixNano()
	return n, n != 0 && time.Unix(0, n).UTC() == t
}

// unpackTime is the time packTime packed into n.
func unpackTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// providers interns provider names for every pool of the process: a rec
// names its provider by index. Names are few (validated, configured ones);
// the table only grows.
var providers struct {
	mu    sync.Mutex
	index map[string]uint16
	names atomic.Pointer[[]string]
}

// internProvider returns name's index, adding it if new, or false when
// the table is full.
func internProvider(name string) (uint16, bool) {
	providers.mu.Lock()
	defer providers.mu.Unlock()
	if i, ok := providers.index[name]; ok {
		return i, true
	}
	var names []string
	if p := providers.names.Load(); p != nil {
		names = *p
	}
	if len(names) > math.MaxUint16 {
		return 0, false
	}
	if providers.index == nil {
		providers.index = map[string]uint16{}
	}
	i := uint16(len(names))
	name = strings.Clone(name)
	next := append(names[:len(names):len(names)], name)
	providers.index[name] = i
	providers.names.Store(&next)
	return i, true
}

// newRec packs k. The strings of the new rec share no memory with k's but
// for Tags' elements and the rarely set strings.
func newRec(k *Key) *rec {
	r := &rec{}
	packRec(r, k)
	return r
}

// packRec packs k into r, which is not yet published.
func packRec(r *rec, k *Key) {
	r.ids = k.ID + k.Secret
	r.maxReq = k.MaxRequests
	r.revision = k.Revision
	var x recExtra
	if k.IsActive {
		r.flags |= fActive
	}
	if k.ProjectLearned {
		r.flags |= fProjectLearned
	}
	if k.DisabledReason != "" {
		r.flags |= fDisabled
	}
	var ok bool
	if r.created, ok = packTime(k.CreatedAt); !ok {
		r.flags |= fCreatedX
		x.createdAt, r.created = k.CreatedAt, 0
	}
	if r.updated, ok = packTime(k.UpdatedAt); !ok {
		r.flags |= fUpdatedX
		x.updatedAt, r.updated = k.UpdatedAt, 0
	}
	if k.Weight >= 0 && k.Weight <= math.MaxUint16 {
		r.weight = uint16(k.Weight)
	} else {
		r.flags |= fWeightX
		x.weight = k.Weight
	}
	if len(k.ID) <= math.MaxUint16 {
		r.idLen = uint16(len(k.ID))
	} else {
		r.flags |= fIDLenX
		x.idLen = len(k.ID)
	}
	if r.prov, ok = internProvider(k.Provider); !ok {
		r.flags |= fProvX
		x.provider = k.Provider
	}
	x.description, x.disabledReason, x.disabledAt, x.project, x.proxy = k.Description, k.DisabledReason, k.DisabledAt, k.Project, k.Proxy
	if len(k.Tags) > 0 {
		x.tags = append([]string(nil), k.Tags...)
	}
	if !x.empty() {
		// A copy, so that x itself stays on the stack: most keys need no
		// recExtra, and one made and dropped for each key a Load packs
		// would sit in the spans between the entries, which are as big
		// (192 bytes), keeping those spans half empty for good.
		xx := x
		r.x = &xx
	}
}

// The zero recExtra, for fields of keys without one.
var noExtra recExtra

func (r *rec) extra() *recExtra {
	if r.x == nil {
		return &noExtra
	}
	return r.x
}

func (r *rec) id() string {
	if r.flags&fIDLenX != 0 {
		return r.ids[:r.x.idLen]
	}
	return r.ids[:r.idLen]
}

func (r *rec) secret() string {
	if r.flags&fIDLenX != 0 {
		return r.ids[r.x.idLen:]
	}
	return r.ids[r.idLen:]
}

func (r *rec) provider() string {
	if r.flags&fProvX != 0 {
		return r.x.provider
	}
	return (*providers.names.Load())[r.prov]
}

func (r *rec) weightInt() int {
	if r.flags&fWeightX != 0 {
		return r.x.weight
	}
	return int(r.weight)
}

func (r *rec) createdAt() time.Time {
	if r.flags&fCreatedX != 0 {
		return r.x.createdAt
	}
	return unpackTime(r.created)
}

func (r *rec) updatedAt() time.Time {
	if r.flags&fUpdatedX != 0 {
		return r.x.updatedAt
	}
	return unpackTime(r.updated)
}

// servable reports whether the configuration lets the key serve, leaving
// the request count and rests aside.
func (r *rec) servable() bool { return r.flags&(fActive|fDisabled) == fActive }

// key rebuilds the public Key; its Tags are a copy.
func (r *rec) key() Key {
	x := r.extra()
	k := Key{
		ID: r.id(), Provider: r.provider(), Secret: r.secret(),
		IsActive: r.flags&fActive != 0, ProjectLearned: r.flags&fProjectLearned != 0,
		MaxRequests: r.maxReq, Weight: r.weightInt(), Description: x.description,
		CreatedAt: r.createdAt(), UpdatedAt: r.updatedAt(),
		DisabledReason: x.disabledReason, DisabledAt: x.disabledAt, Revision: r.revision,
		Project: x.project, Proxy: x.proxy,
	}
	if x.tags != nil {
		k.Tags = append([]string(nil), x.tags...)
	}
	return k
}

// Config is a read-only view of one version of a key's configuration, for
// readers that scan many keys: it copies nothing and allocates nothing.
// Key builds the whole Key when one is needed.
type Config struct{ r *rec }

// Config returns the key's current configuration.
func (e *Entry) Config() Config { return Config{e.cfg.Load()} }

// Key returns a copy of the configuration as a Key.
func (c Config) Key() Key { return c.r.key() }

// ID returns the key's id.
func (c Config) ID() string { return c.r.id() }

// Provider returns the key's provider name.
func (c Config) Provider() string { return c.r.provider() }

// Secret returns the provider credential. Never show it unmasked.
func (c Config) Secret() string { return c.r.secret() }

// IsActive reports whether the key is switched on.
func (c Config) IsActive() bool { return c.r.flags&fActive != 0 }

// ProjectLearned reports whether Project came from the provider.
func (c Config) ProjectLearned() bool { return c.r.flags&fProjectLearned != 0 }

// MaxRequests returns the key's request limit, 0 for none.
func (c Config) MaxRequests() int64 { return c.r.maxReq }

// Weight returns the key's weight as set (0: the default).
func (c Config) Weight() int { return c.r.weightInt() }

// Description returns the key's description.
func (c Config) Description() string { return c.r.extra().description }

// Tags returns the key's tags. The slice is shared: do not modify it.
func (c Config) Tags() []string { return c.r.extra().tags }

// CreatedAt returns when the key was added.
func (c Config) CreatedAt() time.Time { return c.r.createdAt() }

// UpdatedAt returns when the key was last changed.
func (c Config) UpdatedAt() time.Time { return c.r.updatedAt() }

// DisabledReason returns why the key is disabled, "" when it is not.
func (c Config) DisabledReason() string { return c.r.extra().disabledReason }

// DisabledAt returns when the key was disabled.
func (c Config) DisabledAt() time.Time { return c.r.extra().disabledAt }

// Revision returns the key's revision.
func (c Config) Revision() int64 { return c.r.revision }

// Project returns the key's project, "" when unknown.
func (c Config) Project() string { return c.r.extra().project }

// Proxy returns the key's outbound proxy URL. It holds the proxy's
// password: never show it unmasked (see MaskProxy).
func (c Config) Proxy() string { return c.r.extra().proxy }
