package pool

import (
	"container/heap"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNotFound is returned for an unknown key id.
var ErrNotFound = errors.New("not found")

// ErrChanged is returned by UpdateIf when the key changed after the
// revision the update was based on.
var ErrChanged = errors.New("key changed meanwhile")

// Entry is a key as the pool holds it: its configuration and its live
// counters. The relay gets an *Entry from Pick and reports back with Finish.
// An Entry must not be copied.
//
// At 100,000 keys the entries are most of the proxy's live heap, so an
// Entry is kept small: the configuration packed (rec), and what few keys
// ever need (a last error, a rest's reason, model rests, a Limiter's
// counts) in an entryRare allocated on first use. Its pointers come first,
// so the garbage collector scans only the first words of it.
type Entry struct {
	// base is the key's first configuration; cfg points to it until the
	// configuration changes (one allocation a key, not two).
	base rec
	cfg  atomic.Pointer[rec]
	rare atomic.Pointer[entryRare]

	requests  atomic.Int64
	successes atomic.Int64
	failures  atomic.Int64
	lastUsed  atomic.Int64 // unix nanoseconds, 0 = never
	inflight  atomic.Int64
	prompt    atomic.Int64 // tokens, from the answers' usage
	complete  atomic.Int64

	consecFails atomic.Int32 // blamed failures since the last success
	pos         atomic.Int32 // index in its provider's current snapshot

	// Flush baselines: what the store already has. Guarded by Pool.flushMu.
	fRequests, fSuccesses, fFailures, fLastUsed int64
	fPrompt, fComplete                          int64
}

// entryRare is the part of an Entry that most keys never need.
type entryRare struct {
	// remote counts requests a Limiter counted in the shared store since
	// the last Sync: they are in the store already, so Flush leaves them
	// out, but they count toward the key's usage and its limit here.
	remote atomic.Int64
	// seen is the highest count the Limiter reported since the last Sync:
	// every instance's requests, as of that answer.
	seen atomic.Int64

	coolUntil  atomic.Int64 // unix nanoseconds; the key rests until then
	lastErr    atomic.Pointer[LastError]
	coolReason atomic.Pointer[string]
	// models holds the (key, model) pairs at rest, copy on write; nil
	// when none ever rested.
	models atomic.Pointer[map[string]modelRest]

	fLastErr *LastError // flush baseline; guarded by Pool.flushMu
}

// more returns e's rare part, making it if e has none yet.
func (e *Entry) more() *entryRare {
	if r := e.rare.Load(); r != nil {
		return r
	}
	r := &entryRare{}
	if e.rare.CompareAndSwap(nil, r) {
		return r
	}
	return e.rare.Load()
}

// restsUntil returns until when the key rests (unix nanoseconds), 0 when
// it never rested.
func (e *Entry) restsUntil() int64 {
	if r := e.rare.Load(); r != nil {
		return r.coolUntil.Load()
	}
	return 0
}

// endRest ends the key's rest, if it has one.
func (e *Entry) endRest() {
	if r := e.rare.Load(); r != nil {
		r.coolUntil.Store(0)
	}
}

// lastError returns the key's last error, or nil.
func (e *Entry) lastError() *LastError {
	if r := e.rare.Load(); r != nil {
		return r.lastErr.Load()
	}
	return nil
}

// ID returns the key's id.
func (e *Entry) ID() string { return e.cfg.Load().id() }

// Secret returns the provider credential to send upstream.
func (e *Entry) Secret() string { return e.cfg.Load().secret() }

// Provider returns the key's provider name.
func (e *Entry) Provider() string { return e.cfg.Load().provider() }

// Key returns a copy of the key's current configuration.
func (e *Entry) Key() Key { return e.cfg.Load().key() }

// Usage returns the key's current statistics.
func (e *Entry) Usage() Usage {
	u := Usage{
		Requests:  e.used(),
		Successes: e.successes.Load(),
		Failures:  e.failures.Load(),
		LastError: e.lastError(),

		PromptTokens:     e.prompt.Load(),
		CompletionTokens: e.complete.Load(),
	}
	if t := e.lastUsed.Load(); t != 0 {
		u.LastUsed = time.Unix(0, t).UTC()
	}
	return u
}

// InFlight returns how many picked requests have not finished yet.
func (e *Entry) InFlight() int64 { return e.inflight.Load() }

// Available reports whether the key can serve a request now.
func (e *Entry) Available() bool { return e.availableAt(time.Now().UnixNano()) }

// AvailableAt reports whether the key can serve a request at t.
func (e *Entry) AvailableAt(t time.Time) bool { return e.availableAt(t.UnixNano()) }

func (e *Entry) availableAt(now int64) bool {
	k := e.cfg.Load()
	return k.servable() && (k.maxReq == 0 || e.used() < k.maxReq) && e.restsUntil() <= now
}

// used is the key's request count as far as this instance knows: its own
// and those synced from the store, or what a Limiter last reported if
// that is more.
func (e *Entry) used() int64 {
	n := e.requests.Load()
	if r := e.rare.Load(); r != nil {
		n += r.remote.Load()
		if s := r.seen.Load(); s > n {
			return s
		}
	}
	return n
}

// see records a count a Limiter reported.
func (e *Entry) see(n int64) {
	r := e.more()
	for {
		old := r.seen.Load()
		if n <= old || r.seen.CompareAndSwap(old, n) {
			return
		}
	}
}

// Cooling returns until when the key rests and why, or a zero time.
func (e *Entry) Cooling(now time.Time) (time.Time, string) {
	u := e.restsUntil()
	if u <= now.UnixNano() {
		return time.Time{}, ""
	}
	reason := ""
	if r := e.rare.Load(); r != nil {
		if p := r.coolReason.Load(); p != nil {
			reason = *p
		}
	}
	return time.Unix(0, u).UTC(), reason
}

// ConsecutiveFailures returns the blamed failures since the last success.
func (e *Entry) ConsecutiveFailures() int64 { return int64(e.consecFails.Load()) }

// Limiter counts the requests of keys with a MaxRequests for every
// instance that shares the pool (a Redis store), so that together they
// never pass the limit.
type Limiter interface {
	// Acquire counts one request of key id if fewer than max are counted
	// across instances, and returns the count it found or made. An error
	// means it cannot tell now: the pool counts the request locally, to be
	// flushed later.
	Acquire(id string, max int64) (count int64, ok bool, err error)
}

// SetLimiter makes every pick of a key with a MaxRequests ask l first.
// Call it before the pool serves.
func (p *Pool) SetLimiter(l Limiter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.limiter = l
	for _, prov := range p.providersLocked() {
		p.rebuildLocked(prov)
	}
}

// CountedElsewhere moves n requests of key id that this pool counted
// itself (a Limiter failed to answer) to the ones the shared store
// counted: it turned out the Limiter had counted them, so Flush must not
// add them again.
func (p *Pool) CountedElsewhere(id string, n int64) {
	if e, ok := p.Entry(id); ok {
		e.requests.Add(-n)
		e.more().remote.Add(n)
	}
}

// acquire takes one request from the key's budget if it can serve. It never
// lets the request count pass MaxRequests, however many callers race; with
// a Limiter, however many instances race.
func (e *Entry) acquire(now int64, lim Limiter) bool {
	k := e.cfg.Load()
	if !k.servable() || e.restsUntil() > now {
		return false
	}
	if limit := k.maxReq; limit > 0 {
		if lim != nil {
			if e.used() >= limit {
				return false
			}
			n, ok, err := lim.Acquire(k.id(), limit)
			if err == nil {
				e.see(n)
				if !ok {
					return false
				}
				e.more().remote.Add(1)
				e.lastUsed.Store(now)
				e.inflight.Add(1)
				return true
			}
		}
		for {
			r := e.requests.Load()
			if r >= limit {
				return false
			}
			if e.requests.CompareAndSwap(r, r+1) {
				break
			}
		}
	} else {
		e.requests.Add(1)
	}
	e.lastUsed.Store(now)
	e.inflight.Add(1)
	return true
}

// Outcome is what came of one relayed request.
type Outcome struct {
	// Aborted: the client went away before an answer; neither counts.
	Aborted bool
	Success bool
	// Blame: the failure says something about the key (not the client's
	// request, not the whole upstream); it counts as a consecutive failure.
	Blame bool
	Error *LastError // set on failure; Message must be free of secrets
}

// AddTokens counts the tokens one of the key's answers reported.
func (e *Entry) AddTokens(prompt, completion int64) {
	if prompt > 0 {
		e.prompt.Add(prompt)
	}
	if completion > 0 {
		e.complete.Add(completion)
	}
}

// NoteError records le as the key's last error without counting a request
// (a key test's failure, say).
func (e *Entry) NoteError(le LastError) { e.more().lastErr.Store(&le) }

// Finish records the outcome of a request that Pick handed this key.
func (e *Entry) Finish(o Outcome) {
	e.inflight.Add(-1)
	switch {
	case o.Aborted:
		return
	case o.Success:
		e.successes.Add(1)
		if e.consecFails.Load() != 0 {
			e.consecFails.Store(0)
		}
		return
	}
	e.failures.Add(1)
	if o.Blame {
		e.consecFails.Add(1)
	}
	if o.Error != nil {
		le := *o.Error
		e.more().lastErr.Store(&le)
	}
}

// snapshot is one provider's keys in their stable order, with a bitset
// hinting which can serve. A snapshot is immutable once published, but for
// the bits.
type snapshot struct {
	entries  []*Entry
	avail    *bitset
	cum      []int64 // cumulative weights, for Weighted; nil when all are 1
	lim      Limiter // the pool's, if any
	servable int     // keys active and not disabled at build time
}

// set holds one provider's keys.
type set struct {
	snap atomic.Pointer[snapshot]
	rr   atomic.Uint64

	mu       sync.Mutex // guards heap, heapSnap and cooling
	heap     usageHeap
	heapSnap *snapshot
	cooling  coolHeap

	// nextRevival is when the first cooling key comes back (unix ns);
	// picks check it with one atomic load.
	nextRevival atomic.Int64
	// modelRestsUntil is when the last (key, model) rest set so far ends
	// (unix ns): before it, picks for a model check the pairs.
	modelRestsUntil atomic.Int64
}

// Pool holds every provider's keys and picks one per request. Picks are
// lock-free for RoundRobin and Random and take O(1) expected time (at worst
// a scan of one bit per key); LeastUsed takes O(log n) under a per-provider
// lock. No pick copies the key list. Changes to keys rebuild the affected
// provider's snapshot in O(n).
type Pool struct {
	now func() time.Time

	sets atomic.Pointer[map[string]*set] // copy on write, under mu

	mu       sync.Mutex // serializes changes to keys
	byID     *index[string]
	bySecret *index[secretRef]
	// byIDOrder is every entry sorted by id, for Flush; nil after a key
	// is added or removed, until the next Flush sorts again.
	byIDOrder []*Entry
	gen       uint64 // counts changes to the set of keys

	flushMu sync.Mutex // serializes Flush and ResetUsage

	limiter Limiter // counts limited keys across instances; guarded by mu
}

// New returns an empty pool. A nil now means time.Now.
func New(now func() time.Time) *Pool {
	if now == nil {
		now = time.Now
	}
	p := &Pool{now: now, byID: newIDIndex(0), bySecret: newSecretIndex(0)}
	m := map[string]*set{}
	p.sets.Store(&m)
	return p
}

// Load replaces the pool's content with keys and their persisted usage.
func (p *Pool) Load(keys []Key, usage map[string]Usage) {
	p.flushMu.Lock() // before mu, as Flush and ResetUsage take them
	defer p.flushMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.byID = newIDIndex(len(keys))
	p.bySecret = newSecretIndex(len(keys))
	p.byIDOrder, p.gen = nil, p.gen+1
	for i := range keys {
		k := &keys[i]
		e := p.newEntryLocked(k)
		if u, ok := usage[k.ID]; ok {
			e.requests.Store(u.Requests)
			e.successes.Store(u.Successes)
			e.failures.Store(u.Failures)
			e.prompt.Store(u.PromptTokens)
			e.complete.Store(u.CompletionTokens)
			if !u.LastUsed.IsZero() {
				e.lastUsed.Store(u.LastUsed.UnixNano())
			}
			if u.LastError != nil {
				le := *u.LastError
				r := e.more()
				r.lastErr.Store(&le)
				r.fLastErr = &le
			}
			e.fRequests, e.fSuccesses, e.fFailures = u.Requests, u.Successes, u.Failures
			e.fPrompt, e.fComplete = u.PromptTokens, u.CompletionTokens
			e.fLastUsed = e.lastUsed.Load()
		}
		p.indexLocked(e)
	}
	m := map[string]*set{}
	p.sets.Store(&m)
	for _, prov := range p.providersLocked() {
		p.rebuildLocked(prov)
	}
}

// newEntryLocked returns an entry holding a packed copy of k (see rec).
// It shares no memory with k but for the strings of the fields few keys
// set, so k's strings need not stay alive. p.mu must be held.
func (p *Pool) newEntryLocked(k *Key) *Entry {
	e := &Entry{}
	packRec(&e.base, k)
	e.cfg.Store(&e.base)
	return e
}

// indexLocked adds e to the indexes, by its current id and secret.
func (p *Pool) indexLocked(e *Entry) {
	p.byID.put(entryID(e), e)
	p.bySecret.put(entrySecret(e), e)
	p.byIDOrder, p.gen = nil, p.gen+1
}

// unindexLocked removes e from the indexes.
func (p *Pool) unindexLocked(e *Entry) {
	p.byID.del(entryID(e))
	p.bySecret.del(entrySecret(e))
	p.byIDOrder, p.gen = nil, p.gen+1
}

// setConfigLocked publishes k as e's configuration, the provider kept.
func (p *Pool) setConfigLocked(e *Entry, k *Key) {
	old := e.cfg.Load()
	k.Provider = old.provider()
	p.bySecret.del(entrySecret(e))
	e.cfg.Store(newRec(k))
	p.bySecret.put(entrySecret(e), e)
}

// providersLocked returns the providers that have keys, sorted.
func (p *Pool) providersLocked() []string {
	seen := map[string]bool{}
	for e := range p.byID.all() {
		seen[e.cfg.Load().provider()] = true
	}
	for prov := range *p.sets.Load() {
		seen[prov] = true
	}
	out := make([]string, 0, len(seen))
	for prov := range seen {
		out = append(out, prov)
	}
	slices.Sort(out)
	return out
}

// rebuildLocked publishes a fresh snapshot of provider's keys.
func (p *Pool) rebuildLocked(provider string) {
	n := 0
	for e := range p.byID.all() {
		if e.cfg.Load().provider() == provider {
			n++
		}
	}
	entries := make([]*Entry, 0, n)
	for e := range p.byID.all() {
		if e.cfg.Load().provider() == provider {
			entries = append(entries, e)
		}
	}
	slices.SortFunc(entries, func(a, b *Entry) int {
		ka, kb := a.cfg.Load(), b.cfg.Load()
		if c := compareTimes(ka, kb); c != 0 {
			return c
		}
		return strings.Compare(ka.id(), kb.id())
	})
	snap := &snapshot{entries: entries, avail: newBitset(len(entries)), lim: p.limiter}
	now := p.now().UnixNano()
	uniform := true
	for i, e := range entries {
		e.pos.Store(int32(i))
		if e.availableAt(now) {
			snap.avail.set(i)
		}
		k := e.cfg.Load()
		uniform = uniform && k.weightInt() <= 1
		if k.servable() {
			snap.servable++
		}
	}
	if !uniform {
		snap.cum = make([]int64, len(entries))
		var total int64
		for i, e := range entries {
			total += int64(max(e.cfg.Load().weightInt(), 1))
			snap.cum[i] = total
		}
	}
	sets := *p.sets.Load()
	s, ok := sets[provider]
	if !ok {
		m := make(map[string]*set, len(sets)+1)
		for k, v := range sets {
			m[k] = v
		}
		s = &set{}
		s.nextRevival.Store(math.MaxInt64)
		m[provider] = s
		s.snap.Store(snap)
		p.sets.Store(&m)
		return
	}
	s.snap.Store(snap)
}

// compareTimes orders two keys by CreatedAt, without building a time
// when both are packed.
func compareTimes(a, b *rec) int {
	if (a.flags|b.flags)&fCreatedX == 0 {
		// 0 is the zero time, before every other.
		switch {
		case a.created == b.created:
			return 0
		case a.created == 0:
			return -1
		case b.created == 0:
			return 1
		case a.created < b.created:
			return -1
		}
		return 1
	}
	return a.createdAt().Compare(b.createdAt())
}

// Add puts a new key into the pool. The caller has validated it.
func (p *Pool) Add(k Key) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.indexLocked(p.newEntryLocked(&k))
	p.rebuildLocked(k.Provider)
}

// AddAll puts many new keys into the pool, rebuilding each provider once.
func (p *Pool) AddAll(keys []Key) {
	p.mu.Lock()
	defer p.mu.Unlock()
	provs := map[string]bool{}
	for i := range keys {
		p.indexLocked(p.newEntryLocked(&keys[i]))
		provs[keys[i].Provider] = true
	}
	for prov := range provs {
		p.rebuildLocked(prov)
	}
}

// Update replaces the configuration of the key with k.ID; its counters are
// kept. It returns ErrNotFound for an unknown id. The provider cannot change.
func (p *Pool) Update(k Key) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.byID.get(k.ID)
	if !ok {
		return ErrNotFound
	}
	return p.updateLocked(e, k)
}

func (p *Pool) updateLocked(e *Entry, k Key) error {
	p.setConfigLocked(e, &k)
	p.rebuildLocked(k.Provider)
	return nil
}

// UpdateIf is Update applied only while the key is still at revision
// base; otherwise it returns ErrChanged and changes nothing. A caller that
// read a key, wrote a changed copy to the store and comes back with it
// cannot so overwrite a change made meanwhile, like the relay disabling
// the key.
func (p *Pool) UpdateIf(k Key, base int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.byID.get(k.ID)
	if !ok {
		return ErrNotFound
	}
	if e.cfg.Load().revision != base {
		return ErrChanged
	}
	return p.updateLocked(e, k)
}

// Remove deletes the keys with the given ids; unknown ids are ignored. It
// returns how many were removed.
func (p *Pool) Remove(ids ...string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	provs := map[string]bool{}
	n := 0
	for _, id := range ids {
		if e, ok := p.byID.get(id); ok {
			provs[e.Provider()] = true
			p.unindexLocked(e)
			n++
		}
	}
	for prov := range provs {
		p.rebuildLocked(prov)
	}
	return n
}

// Entry returns the key with the given id.
func (p *Pool) Entry(id string) (*Entry, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.byID.get(id)
}

// FindSecret returns the key of provider whose secret is secret.
func (p *Pool) FindSecret(provider, secret string) (*Entry, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bySecret.get(secretRef{provider, secret})
}

// Len returns how many keys the pool holds.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.byID.len()
}

// Providers returns the providers that have or had keys, sorted.
func (p *Pool) Providers() []string {
	sets := *p.sets.Load()
	out := make([]string, 0, len(sets))
	for prov := range sets {
		out = append(out, prov)
	}
	slices.Sort(out)
	return out
}

// Entries returns provider's keys in their stable order. The slice is
// shared: do not modify it.
func (p *Pool) Entries(provider string) []*Entry {
	if s, ok := (*p.sets.Load())[provider]; ok {
		return s.snap.Load().entries
	}
	return nil
}

// Pick takes a key of provider that can serve now, by strategy, and counts
// one request against it. It returns nil when no key can serve. The caller
// must call Finish on the returned entry once the request is done.
func (p *Pool) Pick(provider string, strategy Strategy) *Entry {
	s, ok := (*p.sets.Load())[provider]
	if !ok {
		return nil
	}
	now := p.now().UnixNano()
	if now >= s.nextRevival.Load() {
		s.revive(now)
	}
	switch strategy {
	case LeastUsed:
		return s.pickLeastUsed(now)
	case Weighted:
		return s.snap.Load().pickWeighted(now)
	case LeastBusy:
		return s.snap.Load().pickLeastBusy(now)
	case Random:
		snap := s.snap.Load()
		n := len(snap.entries)
		if n == 0 {
			return nil
		}
		for range 3 {
			i := rand.IntN(n)
			if snap.avail.has(i) && snap.take(i, now) {
				return snap.entries[i]
			}
		}
		return snap.scan(rand.IntN(n), now)
	default:
		return s.pickRoundRobin(now)
	}
}

// pickRoundRobin takes the first available key after the one taken last,
// so every available key gets its turn, however many cannot serve.
func (s *set) pickRoundRobin(now int64) *Entry {
	snap := s.snap.Load()
	n := len(snap.entries)
	if n == 0 {
		return nil
	}
	for range n + 8 {
		start := s.rr.Load()
		i := snap.avail.next(int(start % uint64(n)))
		if i < 0 {
			return nil
		}
		if !s.rr.CompareAndSwap(start, uint64(i+1)) {
			continue // another pick moved on; look again from there
		}
		if snap.take(i, now) {
			return snap.entries[i]
		}
	}
	// Heavy contention: fall back to a plain scan.
	return snap.scan(int(s.rr.Load()%uint64(n)), now)
}

// pickWeighted draws a key with probability proportional to its weight,
// by binary search over the cumulative weights; after a few draws that hit
// keys that cannot serve it takes the next available key.
func (s *snapshot) pickWeighted(now int64) *Entry {
	n := len(s.entries)
	if n == 0 {
		return nil
	}
	i := 0
	for range 4 {
		if s.cum == nil {
			i = rand.IntN(n)
		} else {
			i, _ = slices.BinarySearch(s.cum, rand.Int64N(s.cum[n-1])+1)
		}
		if s.avail.has(i) && s.take(i, now) {
			return s.entries[i]
		}
	}
	return s.scan(i, now)
}

// pickLeastBusy draws two available keys and takes the one with fewer
// requests in flight.
func (s *snapshot) pickLeastBusy(now int64) *Entry {
	n := len(s.entries)
	if n == 0 {
		return nil
	}
	a := s.avail.next(rand.IntN(n))
	if a < 0 {
		return nil
	}
	b := s.avail.next(rand.IntN(n))
	if b >= 0 && b != a && s.entries[b].inflight.Load() < s.entries[a].inflight.Load() {
		a = b
	}
	if s.take(a, now) {
		return s.entries[a]
	}
	return s.scan(a, now)
}

// PickExcept is Pick for a retry: it never returns a key in tried. It
// tries the strategy first, then scans from a random place.
func (p *Pool) PickExcept(provider string, strategy Strategy, tried []*Entry) *Entry {
	return p.pickExcept(provider, strategy, func(e *Entry, _ int64) bool { return slices.Contains(tried, e) })
}

// pickExcept is Pick that never returns a key skip refuses.
func (p *Pool) pickExcept(provider string, strategy Strategy, skip func(*Entry, int64) bool) *Entry {
	var lim Limiter
	if s, ok := (*p.sets.Load())[provider]; ok {
		lim = s.snap.Load().lim
	}
	for range 3 {
		if lim != nil {
			break // a request a Limiter counted cannot be given back: never take a tried key
		}
		e := p.Pick(provider, strategy)
		if e == nil {
			return nil
		}
		if !skip(e, p.now().UnixNano()) {
			return e
		}
		e.release()
	}
	s, ok := (*p.sets.Load())[provider]
	if !ok {
		return nil
	}
	snap := s.snap.Load()
	n := len(snap.entries)
	if n == 0 {
		return nil
	}
	now := p.now().UnixNano()
	i := rand.IntN(n)
	for range n + 1 {
		i = snap.avail.next(i)
		if i < 0 {
			return nil
		}
		if !skip(snap.entries[i], now) && snap.take(i, now) {
			return snap.entries[i]
		}
		if i++; i == n {
			i = 0
		}
	}
	return nil
}

// release undoes an acquire that was not used.
func (e *Entry) release() {
	e.requests.Add(-1)
	e.inflight.Add(-1)
}

// NextAvailable returns when the first resting key of provider that could
// otherwise serve comes back, or false if none will by resting alone.
func (p *Pool) NextAvailable(provider string) (time.Time, bool) {
	var first int64
	for _, e := range p.Entries(provider) {
		k := e.cfg.Load()
		if !k.servable() || k.maxReq > 0 && e.used() >= k.maxReq {
			continue
		}
		if u := e.restsUntil(); u > 0 && (first == 0 || u < first) {
			first = u
		}
	}
	if first == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, first), true
}

// Servable returns how many of provider's keys are active and not
// disabled, as of the last change to its keys. It is O(1).
func (p *Pool) Servable(provider string) int {
	if s, ok := (*p.sets.Load())[provider]; ok {
		return s.snap.Load().servable
	}
	return 0
}

// take acquires entry i, clearing its bit when it cannot serve.
func (s *snapshot) take(i int, now int64) bool {
	e := s.entries[i]
	if e.acquire(now, s.lim) {
		return true
	}
	s.avail.clear(i)
	// A concurrent reset may have made it available again after we looked:
	// never leave an available key with its bit cleared.
	if e.availableAt(now) {
		s.avail.set(i)
	}
	return false
}

// scan acquires the first available key at or after start, wrapping.
func (s *snapshot) scan(start int, now int64) *Entry {
	i := start
	for range len(s.entries) + 1 {
		i = s.avail.next(i)
		if i < 0 {
			return nil
		}
		if s.take(i, now) {
			return s.entries[i]
		}
		i++
		if i == len(s.entries) {
			i = 0
		}
	}
	return nil
}

// pickLeastUsed keeps a min-heap of (request count, position). Other
// strategies bump counts without touching the heap, so a recorded count is
// a lower bound: a top whose record is current is the true minimum.
func (s *set) pickLeastUsed(now int64) *Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := s.snap.Load()
	if s.heapSnap != snap {
		s.heap = s.heap[:0]
		for i, e := range snap.entries {
			if snap.avail.has(i) {
				s.heap = append(s.heap, heapItem{e: e, pos: i, count: e.requests.Load()})
			}
		}
		heap.Init(&s.heap)
		s.heapSnap = snap
	}
	for len(s.heap) > 0 {
		top := &s.heap[0]
		if c := top.e.requests.Load(); c != top.count {
			top.count = c
			heap.Fix(&s.heap, 0)
			continue
		}
		if snap.take(top.pos, now) {
			e := top.e
			top.count++
			heap.Fix(&s.heap, 0)
			return e
		}
		// It cannot serve; it returns with the next snapshot.
		heap.Pop(&s.heap)
	}
	return nil
}

type heapItem struct {
	e     *Entry
	pos   int
	count int64
}

type usageHeap []heapItem

func (h usageHeap) Len() int { return len(h) }
func (h usageHeap) Less(i, j int) bool {
	return h[i].count < h[j].count || h[i].count == h[j].count && h[i].pos < h[j].pos
}
func (h usageHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *usageHeap) Push(x any)   { *h = append(*h, x.(heapItem)) }
func (h *usageHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Cool rests the key until the given time: no strategy picks it before.
// A later call with an earlier time does not shorten the rest.
func (p *Pool) Cool(e *Entry, until time.Time, reason string) {
	u := until.UnixNano()
	rare := e.more()
	for {
		old := rare.coolUntil.Load()
		if old >= u {
			return
		}
		if rare.coolUntil.CompareAndSwap(old, u) {
			break
		}
	}
	rare.coolReason.Store(&reason)
	s, ok := (*p.sets.Load())[e.Provider()]
	if !ok {
		return
	}
	s.mu.Lock()
	heap.Push(&s.cooling, coolItem{e: e, until: u})
	if u < s.nextRevival.Load() {
		s.nextRevival.Store(u)
	}
	s.mu.Unlock()
	snap := s.snap.Load()
	if i := int(e.pos.Load()); i < len(snap.entries) && snap.entries[i] == e {
		snap.avail.clear(i)
	}
}

// Uncool ends a key's rest, and every (key, model) rest, now.
func (p *Pool) Uncool(e *Entry) {
	e.endRest()
	e.uncoolModels()
	s, ok := (*p.sets.Load())[e.Provider()]
	if !ok {
		return
	}
	s.mu.Lock()
	s.restore(e, p.now().UnixNano())
	s.mu.Unlock()
}

// restore gives e its bit back in the current snapshot, and its place in
// the LeastUsed heap, if it can serve. s.mu must be held.
func (s *set) restore(e *Entry, now int64) {
	snap := s.snap.Load()
	i := int(e.pos.Load())
	if i >= len(snap.entries) || snap.entries[i] != e || snap.avail.has(i) || !e.availableAt(now) {
		return
	}
	snap.avail.set(i)
	if s.heapSnap == snap {
		heap.Push(&s.heap, heapItem{e: e, pos: i, count: e.requests.Load()})
	}
}

// revive gives the bits back to keys whose rest is over.
func (s *set) revive(now int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.cooling) > 0 {
		top := s.cooling[0]
		if cu := top.e.restsUntil(); cu > now {
			if cu != top.until { // cooled again, for longer
				s.cooling[0].until = cu
				heap.Fix(&s.cooling, 0)
				continue
			}
			break
		}
		heap.Pop(&s.cooling)
		s.restore(top.e, now)
	}
	if len(s.cooling) > 0 {
		s.nextRevival.Store(s.cooling[0].until)
	} else {
		s.nextRevival.Store(math.MaxInt64)
	}
}

type coolItem struct {
	e     *Entry
	until int64
}

type coolHeap []coolItem

func (h coolHeap) Len() int           { return len(h) }
func (h coolHeap) Less(i, j int) bool { return h[i].until < h[j].until }
func (h coolHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *coolHeap) Push(x any)        { *h = append(*h, x.(coolItem)) }
func (h *coolHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Disable stops the key from serving, with a reason, until it is enabled
// again (Enable or an Update that clears DisabledReason). It returns the
// key's new configuration, for the caller to persist.
func (p *Pool) Disable(e *Entry, reason string, at time.Time) Key {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := e.Key()
	if k.DisabledReason != "" {
		return k
	}
	k.DisabledReason, k.DisabledAt = reason, at.UTC()
	k.Revision++
	e.cfg.Store(newRec(&k))
	if s, ok := (*p.sets.Load())[k.Provider]; ok {
		snap := s.snap.Load()
		if i := int(e.pos.Load()); i < len(snap.entries) && snap.entries[i] == e {
			snap.avail.clear(i)
		}
	}
	return k
}

// Enable clears a key's disabled state and rest; it returns the new
// configuration, for the caller to persist.
func (p *Pool) Enable(e *Entry) Key {
	e.endRest()
	e.uncoolModels()
	e.consecFails.Store(0)
	p.mu.Lock()
	defer p.mu.Unlock()
	k := e.Key()
	k.DisabledReason, k.DisabledAt = "", time.Time{}
	k.Revision++
	e.cfg.Store(newRec(&k))
	p.rebuildLocked(k.Provider)
	return k
}

// Counts summarizes one provider's keys.
type Counts struct {
	Total     int `json:"totalKeys"`
	Active    int `json:"activeKeys"`
	Available int `json:"availableKeys"`
	Cooling   int `json:"coolingKeys"`
	Disabled  int `json:"disabledKeys"`
}

// Counts returns provider's key counts as of now.
func (p *Pool) Counts(provider string) Counts {
	var c Counts
	now := p.now().UnixNano()
	for _, e := range p.Entries(provider) {
		k := e.cfg.Load()
		c.Total++
		if k.flags&fActive != 0 {
			c.Active++
		}
		if k.flags&fDisabled != 0 {
			c.Disabled++
		}
		if e.restsUntil() > now {
			c.Cooling++
		}
		if e.availableAt(now) {
			c.Available++
		}
	}
	return c
}

// FlushBatch is the most deltas Flush hands to write in one call. A store
// writes a batch in one transaction, which holds every record it rewrites
// in memory until it commits: at 100,000 keys one flush of every key would
// hold tens of megabytes at once.
const FlushBatch = 2048

// Flush hands every key's usage since the last successful flush to write,
// in id order and in batches of at most FlushBatch, and marks a batch
// flushed only if write succeeds; at the first failure it stops, and that
// batch and the ones after it come again next time, so no delta is lost or
// counted twice. Flush and ResetUsage exclude each other.
func (p *Pool) Flush(write func([]UsageDelta) error) error {
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	var pend []UsageDelta // the batch being built; write gets a copy
	var marks []flushMark
	send := func() error {
		if err := write(slices.Clone(pend)); err != nil {
			return err
		}
		for _, m := range marks {
			m.settle()
		}
		pend, marks = pend[:0], marks[:0]
		return nil
	}
	// In id order, so that each batch rewrites neighbouring records (one
	// region of a file store's pages, not a few records on every page).
	for _, e := range p.entriesByID() {
		m := markOf(e)
		d := UsageDelta{Requests: m.r - e.fRequests, Successes: m.s - e.fSuccesses, Failures: m.f - e.fFailures,
			PromptTokens: m.pt - e.fPrompt, CompletionTokens: m.ct - e.fComplete}
		if m.lu != e.fLastUsed && m.lu != 0 {
			d.LastUsed = time.Unix(0, m.lu).UTC()
		}
		if r := e.rare.Load(); r != nil && m.le != r.fLastErr {
			d.LastError = m.le
		}
		if !d.Counts() && d.LastUsed.IsZero() && d.LastError == nil {
			continue
		}
		d.ID = e.ID()
		pend = append(pend, d)
		marks = append(marks, m)
		if len(pend) == FlushBatch {
			if err := send(); err != nil {
				return err
			}
		}
	}
	if len(pend) > 0 {
		return send()
	}
	return nil
}

// entriesByID returns every entry sorted by id. The slice is shared: do
// not modify it. It is sorted again only after keys were added or
// removed, and outside p.mu.
func (p *Pool) entriesByID() []*Entry {
	p.mu.Lock()
	if order := p.byIDOrder; order != nil {
		p.mu.Unlock()
		return order
	}
	order := make([]*Entry, 0, p.byID.len())
	for e := range p.byID.all() {
		order = append(order, e)
	}
	gen := p.gen
	p.mu.Unlock()
	slices.SortFunc(order, func(a, b *Entry) int { return strings.Compare(a.ID(), b.ID()) })
	p.mu.Lock()
	if p.gen == gen {
		p.byIDOrder = order
	}
	p.mu.Unlock()
	return order
}

// Restore hands every key, with its usage as this pool counts it (flushed
// or not), to write, and marks all of it flushed if write succeeds: for
// writing the pool back into a shared store that lost its data.
func (p *Pool) Restore(write func([]Key, map[string]Usage) error) error {
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.byID.len()
	keys := make([]Key, 0, n)
	usage := make(map[string]Usage, n)
	marks := make([]flushMark, 0, n)
	for e := range p.byID.all() {
		k := e.Key()
		keys = append(keys, k)
		m := markOf(e)
		// What a Limiter counted is in the lost store only: write it back.
		req := m.r
		if r := e.rare.Load(); r != nil {
			req = max(m.r+r.remote.Load(), r.seen.Load())
		}
		u := Usage{Requests: req, Successes: m.s, Failures: m.f, LastError: m.le,
			PromptTokens: m.pt, CompletionTokens: m.ct}
		if m.lu != 0 {
			u.LastUsed = time.Unix(0, m.lu).UTC()
		}
		usage[k.ID] = u
		marks = append(marks, m)
	}
	if err := write(keys, usage); err != nil {
		return err
	}
	for _, m := range marks {
		m.settle()
	}
	return nil
}

// flushMark is an entry's usage as read for a write to the store: what
// becomes its flush baselines once the write succeeds.
type flushMark struct {
	e                   *Entry
	r, s, f, lu, pt, ct int64
	le                  *LastError
}

// markOf reads e's usage for a write.
func markOf(e *Entry) flushMark {
	return flushMark{e: e, r: e.requests.Load(), s: e.successes.Load(), f: e.failures.Load(), lu: e.lastUsed.Load(),
		pt: e.prompt.Load(), ct: e.complete.Load(), le: e.lastError()}
}

// settle makes m its entry's flush baselines: the store has it now.
// Called under Pool.flushMu.
func (m flushMark) settle() {
	e := m.e
	e.fRequests, e.fSuccesses, e.fFailures, e.fLastUsed = m.r, m.s, m.f, m.lu
	e.fPrompt, e.fComplete = m.pt, m.ct
	if r := e.rare.Load(); r != nil {
		r.fLastErr = m.le
	}
}

// ResetUsage zeroes the request, success, failure and token counts of provider's
// keys after reset (the store's part) succeeds, and returns how many keys
// were reset.
func (p *Pool) ResetUsage(provider string, reset func(ids []string) error) (int, error) {
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	entries := p.Entries(provider)
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.ID()
	}
	if err := reset(ids); err != nil {
		return 0, err
	}
	for _, e := range entries {
		if r := e.rare.Load(); r != nil {
			r.remote.Store(0)
			r.seen.Store(0)
		}
		e.requests.Store(0)
		e.successes.Store(0)
		e.failures.Store(0)
		e.prompt.Store(0)
		e.complete.Store(0)
		e.fRequests, e.fSuccesses, e.fFailures = 0, 0, 0
		e.fPrompt, e.fComplete = 0, 0
	}
	if len(entries) > 0 {
		p.rebuildLocked(provider)
	}
	return len(entries), nil
}

// Sync brings the pool in line with a store that other instances share:
// keys the store has and the pool lacks are added, keys with a newer
// revision there replace the pool's configuration (counters stay), keys
// the store lacks are removed, and usage totals are absorbed: what the
// store counts beyond what this pool last flushed or saw (other
// instances' requests, or a reset elsewhere) is added to the live
// counters. A key missing from usage counts as zero.
func (p *Pool) Sync(keys []Key, usage map[string]Usage) {
	p.flushMu.Lock() // before mu, as Flush and ResetUsage take them
	defer p.flushMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	touched := map[string]bool{}
	seen := make(map[string]bool, len(keys))
	for i := range keys {
		k := &keys[i]
		seen[k.ID] = true
		e, ok := p.byID.get(k.ID)
		if !ok {
			e = p.newEntryLocked(k)
			p.indexLocked(e)
			touched[k.Provider] = true
		} else if k.Revision > e.cfg.Load().revision {
			nk := k.Clone()
			p.setConfigLocked(e, &nk)
			touched[nk.Provider] = true
		}
		u := usage[k.ID]
		if r := e.rare.Load(); r != nil {
			r.remote.Store(0) // the store's totals hold them
			r.seen.Store(0)
		}
		if d := u.Requests - e.fRequests; d != 0 {
			e.requests.Add(d)
			e.fRequests = u.Requests
			touched[k.Provider] = true
		}
		if d := u.Successes - e.fSuccesses; d != 0 {
			e.successes.Add(d)
			e.fSuccesses = u.Successes
		}
		if d := u.Failures - e.fFailures; d != 0 {
			e.failures.Add(d)
			e.fFailures = u.Failures
		}
		if d := u.PromptTokens - e.fPrompt; d != 0 {
			e.prompt.Add(d)
			e.fPrompt = u.PromptTokens
		}
		if d := u.CompletionTokens - e.fComplete; d != 0 {
			e.complete.Add(d)
			e.fComplete = u.CompletionTokens
		}
		if lu := u.LastUsed.UnixNano(); !u.LastUsed.IsZero() && lu > e.lastUsed.Load() {
			e.lastUsed.Store(lu)
			e.fLastUsed = lu
		}
		if le := u.LastError; le != nil {
			if cur := e.lastError(); cur == nil || le.At.After(cur.At) {
				c := *le
				r := e.more()
				r.lastErr.Store(&c)
				r.fLastErr = &c
			}
		}
	}
	var gone []*Entry
	for e := range p.byID.all() {
		if !seen[e.ID()] {
			gone = append(gone, e)
		}
	}
	for _, e := range gone {
		touched[e.Provider()] = true
		p.unindexLocked(e)
	}
	for prov := range touched {
		p.rebuildLocked(prov)
	}
}
