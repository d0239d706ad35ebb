package cfkv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cloudflare/cloudflare-go/v6/kv"

	"github.com/keypool/keypool/worker-proxy/journal"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/store"
)

// Layout (schema 2; see the package documentation).
const (
	prefix       = "keypool/v2/"
	schemaName   = prefix + "schema"
	revName      = prefix + "rev"
	shardPrefix  = prefix + "shards/"
	tokensPrefix = prefix + "tokens/"
	resetPrefix  = prefix + "reset/"
	usagePrefix  = prefix + "usage/"
	cleanupName  = prefix + "cleanup"
	schemaValue  = `{"schema":2}`

	// numShards is how many entries hold the keys: an import writes at
	// most numShards+2 entries (with "rev" and the snapshot), whatever its size.
	numShards = 32
	// maxShardBytes bounds a shard's value, well under KV's 25 MiB.
	maxShardBytes = 20 << 20
	// numSlots is how many entries hold the instances' usage records:
	// reading everyone's usage costs numSlots reads, however many
	// instances there are.
	numSlots = 8
	// usageWritesPerDay is what the cluster's usage flushes may write a
	// day together: each instance stretches its flush interval to
	// 24h × instances / usageWritesPerDay when that is longer than
	// Config.UsageFlushInterval.
	usageWritesPerDay = 288
)

// DefaultBaseURL is Cloudflare's API.
const DefaultBaseURL = "https://api.cloudflare.com"

// Config configures a Store. Zero durations take the documented defaults.
type Config struct {
	AccountID   string // CF_ACCOUNT_ID
	NamespaceID string // CF_KV_NAMESPACE_ID
	APIToken    string // CF_API_TOKEN: Account → Workers KV Storage → Edit
	// BaseURL is the API's origin (CF_API_BASE_URL), without /client/v4.
	// Default DefaultBaseURL; the emulator's in tests.
	BaseURL string
	// InstanceID names this instance's usage record. Keep it stable across
	// restarts (INSTANCE_ID), so its counts continue.
	InstanceID string
	// UsageFlushInterval: this instance writes its usage record at most
	// this often. Default 10m.
	UsageFlushInterval time.Duration
	// UsageSyncInterval: the other instances' usage is read this often.
	// Default 10m.
	UsageSyncInterval time.Duration
	// StaleWindow: own writes win over what KV lists for this long, as
	// KV may serve older data for about 60 s. Default 2m.
	StaleWindow time.Duration
	// JournalPath is a local file where usage counted but not yet written
	// to KV is kept, so a crash loses none of it (DATA_DIR/kv-usage.journal).
	// Empty: no journal; a crash loses up to UsageFlushInterval of counts.
	JournalPath string
	HTTPClient  *http.Client
	Now         func() time.Time
	Logger      *slog.Logger
}

// Store is the Cloudflare KV backend. It keeps a copy of the namespace in
// memory; see the package documentation for what it reads and writes when.
//
// Two locks: callMu serialises the operations that call KV and is held
// across those calls; mu guards what AddUsage, Health and the contents
// read, and is never held across a call, so a hanging KV never blocks
// counting, health checks or status pages.
type Store struct {
	cfg     Config
	ns      *kv.NamespaceService
	nk      *kv.NamespaceKeyService
	journal *journal.Journal // nil without Config.JournalPath

	callMu sync.Mutex

	// Written under callMu and mu; read under either.
	keys   map[string]pool.Key
	order  []string                    // the ids of keys, sorted; nil when a key came or went
	resets map[string]map[string]int64 // provider → key id → reset stamp (unix ns)
	// Under mu.
	mu             sync.Mutex
	own            usageRecord // this instance's record
	ownDirty       bool        // own has changes not written
	ownGen         uint64      // counts changes to own
	seq            uint64      // last journal record counted into own
	journalFailing bool        // the last journal append failed

	// Under callMu only.
	tokens    map[string]pool.ClientToken
	resetSeen map[string]int64     // provider → newest stamp read
	slots     map[string]*slotView // the usage slots as last read or written
	adopt     *usageRecord         // the own record as Load read it
	written   []usageRecord        // the own record's last writes, newest last
	rebased   int64                // newest fold of the own record taken out of own (unix ns)
	foldedSeq uint64               // journal record the newest fold of the own record included
	interval  time.Duration        // the flush interval last computed
	recent    map[string]time.Time // key/token ids this instance wrote or deleted lately
	deleted   map[string]time.Time // ids deleted here lately (tombstones)
	shardSeen map[string]string    // shard name → version ("v" of its metadata) last read
	cleanup   bool                 // schema-1 entries are left to delete
	cleanDay  int64                // UTC day of this instance's last cleanup attempt
	lastRev   string               // the "rev" the config copy is at
	revSeen   time.Time            // when this instance first saw lastRev
	complete  bool                 // the copy holds every write up to lastRev (config.go)
	wroteRev  string               // the last "rev" this instance wrote
	opened    *openRead            // what Open read, for the Load that follows it
	lastUsage time.Time            // last read of others' usage
	lastFlush time.Time            // last write of own usage
	started   time.Time            // Open, without a journal: the first write waits UsageFlushInterval from it
	loaded    bool                 // Load has run: own is authoritative

	hmu    sync.Mutex
	health health
}

var (
	_ store.Store          = (*Store)(nil)
	_ store.Shared         = (*Store)(nil)
	_ store.HealthReporter = (*Store)(nil)
)

// usageRecord is one instance's usage, per key id.
type usageRecord struct {
	Instance  string    `json:"instance"`
	UpdatedAt time.Time `json:"updatedAt"`
	// JournalSeq is the last local journal record the counts include: a
	// replay after a crash skips the records up to it.
	JournalSeq uint64                `json:"journalSeq,omitempty"`
	Keys       map[string]usageEntry `json:"keys"`
}

// usageEntry counts one key's usage since its provider's reset Epoch.
type usageEntry struct {
	Epoch     int64           `json:"e"`
	Requests  int64           `json:"r"`
	Successes int64           `json:"s"`
	Failures  int64           `json:"f"`
	LastUsed  time.Time       `json:"lu,omitzero"`
	LastError *pool.LastError `json:"le,omitempty"`
	// Prompt and completion tokens.
	PromptTokens     int64 `json:"pt,omitempty"`
	CompletionTokens int64 `json:"ct,omitempty"`
}

// RandomInstanceID returns a new instance id.
func RandomInstanceID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "i-" + hex.EncodeToString(b)
}

// openRead is "rev" and the config snapshot as Open read them: the Load
// that follows at once takes them instead of reading them again.
type openRead struct {
	rev string
	cfg *configValue
	at  time.Time
}

// Load reads the whole namespace: "rev" and the config snapshot (a
// settled snapshot is the whole config; otherwise the namespace is
// listed, see syncConfig), and the usage slots.
func (s *Store) Load(ctx context.Context) (*store.Contents, error) {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	var rev string
	var cfg *configValue
	if o := s.opened; o != nil && s.cfg.Now().Sub(o.at) < 5*time.Second {
		rev, cfg = o.rev, o.cfg
	} else {
		var err error
		if rev, cfg, err = s.readRevConfig(ctx); err != nil {
			return nil, err
		}
	}
	s.opened = nil
	if _, err := s.syncConfig(ctx, rev, cfg, true); err != nil {
		return nil, err
	}
	s.adopt = nil
	if _, err := s.refreshUsage(ctx, true); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.adopt != nil {
		// This instance's own record from before a restart; what it
		// counted since it started stays on top.
		o := *s.adopt
		s.adopt = nil
		if !s.loaded {
			for id, e := range s.own.Keys {
				o.Keys[id] = mergeEntry(o.Keys[id], e)
			}
			if o.Keys == nil {
				o.Keys = map[string]usageEntry{}
			}
			o.JournalSeq = max(o.JournalSeq, s.seq)
			s.own, s.seq = o, o.JournalSeq
		}
	}
	if !s.loaded {
		s.replayJournalLocked()
	}
	s.loaded = true
	return s.contentsLocked(), nil
}

// Sync picks up other instances' changes: the config when "rev" changed,
// the usage every UsageSyncInterval. It also writes this instance's usage
// record when UsageFlushInterval has passed. It returns nil contents when
// nothing changed.
func (s *Store) Sync(ctx context.Context) (*store.Contents, error) {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	now := s.cfg.Now()
	s.expireRecentLocked(now)
	if err := s.flushOwn(ctx, false); err != nil {
		s.cfg.Logger.Warn("cfkv: writing usage failed; kept for later", "err", err)
	}
	s.cleanupV1(ctx)
	s.opened = nil
	changed := false
	rev, err := s.readRev(ctx)
	if err != nil {
		return nil, err
	}
	if rev != s.lastRev || s.configDue(now) {
		// A new rev, or a view listed too soon after its rev's write: the
		// snapshot may be settled for it now.
		cfg, err := s.readConfig(ctx)
		if err != nil {
			return nil, err
		}
		if changed, err = s.syncConfig(ctx, rev, cfg, false); err != nil {
			return nil, err
		}
	}
	if now.Sub(s.lastUsage) >= s.cfg.UsageSyncInterval {
		got, err := s.refreshUsage(ctx, false)
		if err != nil {
			return nil, err
		}
		changed = changed || got
	}
	if !changed {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.contentsLocked(), nil
}

func (s *Store) expireRecentLocked(now time.Time) {
	for id, at := range s.recent {
		if now.Sub(at) > s.cfg.StaleWindow {
			delete(s.recent, id)
		}
	}
	for id, at := range s.deleted {
		if now.Sub(at) > s.cfg.StaleWindow {
			delete(s.deleted, id)
		}
	}
}

// readRev reads the config revision marker; "" if absent.
func (s *Store) readRev(ctx context.Context) (string, error) {
	vals, err := s.bulkGet(ctx, []string{revName})
	if err != nil {
		return "", err
	}
	return vals[revName], nil
}

// contentsLocked builds the pool's view: keys, tokens, and usage totals
// over every instance, counted from each provider's last reset.
func (s *Store) contentsLocked() *store.Contents {
	c := &store.Contents{Usage: map[string]pool.Usage{}}
	if len(s.order) != len(s.keys) {
		s.order = slices.Sorted(maps.Keys(s.keys))
	}
	c.Keys = make([]pool.Key, 0, len(s.order))
	for _, id := range s.order {
		c.Keys = append(c.Keys, s.keys[id].Clone())
	}
	for _, t := range s.tokens {
		c.Tokens = append(c.Tokens, t)
	}
	slices.SortFunc(c.Tokens, func(a, b pool.ClientToken) int { return strings.Compare(a.ID, b.ID) })
	add := func(rec usageRecord) {
		for id, e := range rec.Keys {
			k, ok := s.keys[id]
			if !ok {
				continue
			}
			d := pool.UsageDelta{ID: id, LastUsed: e.LastUsed, LastError: e.LastError}
			if e.Epoch == s.epoch(k) {
				// Counts from before the provider's last reset do not add up.
				d.Requests, d.Successes, d.Failures = e.Requests, e.Successes, e.Failures
				d.PromptTokens, d.CompletionTokens = e.PromptTokens, e.CompletionTokens
			}
			c.Usage[id] = c.Usage[id].Apply(d)
		}
	}
	add(s.own)
	for _, v := range s.slots {
		for _, rec := range v.records {
			add(rec)
		}
		add(usageRecord{Keys: v.folded.Keys})
	}
	return c
}

// AddUsage adds deltas to this instance's usage record in memory; it is
// written on the usage flush interval and by Close. It never fails for
// the backend's sake, so no count is lost while KV is down.
func (s *Store) AddUsage(ctx context.Context, deltas []pool.UsageDelta) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var entries []journal.Entry
	for _, d := range deltas {
		k, ok := s.keys[d.ID]
		if !ok {
			continue
		}
		ep := s.epoch(k)
		s.addOwnLocked(d, ep)
		entries = append(entries, journal.Entry{ID: d.ID, Epoch: ep, Requests: d.Requests, Successes: d.Successes,
			Failures: d.Failures, LastUsed: d.LastUsed, LastError: d.LastError,
			PromptTokens: d.PromptTokens, CompletionTokens: d.CompletionTokens})
	}
	if len(entries) > 0 && s.journal != nil {
		// On disk before the counts are acknowledged; one sync per batch.
		s.seq++
		err := s.journal.Append(journal.Record{Seq: s.seq, Instance: s.cfg.InstanceID, Entries: entries})
		switch {
		case err != nil && !s.journalFailing:
			s.cfg.Logger.Warn("cfkv: usage journal writes fail; counts are lost if the proxy crashes before the next KV write", "err", err)
		case err == nil && s.journalFailing:
			s.cfg.Logger.Info("cfkv: usage journal writes work again")
		}
		s.journalFailing = err != nil
	}
	return nil
}

// addOwnLocked counts d into this instance's record, in epoch ep.
func (s *Store) addOwnLocked(d pool.UsageDelta, ep int64) {
	e := s.own.Keys[d.ID]
	if e.Epoch != ep {
		e = usageEntry{Epoch: ep, LastUsed: e.LastUsed, LastError: e.LastError}
	}
	s.own.Keys[d.ID] = e.add(d)
	s.ownDirty = true
	s.ownGen++
}

// replayJournalLocked counts the journal's records that KV's usage records
// do not include yet (a crash came before their flush), then rewrites the
// journal as one record of this instance holding them: replaying it again
// before the next flush gives the same totals, never double ones.
func (s *Store) replayJournalLocked() {
	if s.journal == nil {
		return
	}
	recs := s.journal.Records()
	if len(recs) == 0 {
		return
	}
	flushed := func(inst string) uint64 {
		if inst == s.cfg.InstanceID {
			return max(s.own.JournalSeq, s.foldedSeq)
		}
		v := s.slots[slotOf(inst)]
		if v == nil {
			return 0
		}
		if rec, ok := v.records[inst]; ok {
			return rec.JournalSeq
		}
		return v.folded.IDs[inst].Seq
	}
	applied := map[string]pool.UsageDelta{}
	var order []string
	for _, r := range recs {
		s.seq = max(s.seq, r.Seq)
		if r.Seq <= flushed(r.Instance) {
			continue
		}
		for _, e := range r.Entries {
			k, ok := s.keys[e.ID]
			if !ok {
				continue // deleted since
			}
			d := pool.UsageDelta{ID: e.ID, LastUsed: e.LastUsed, LastError: e.LastError}
			if e.Epoch == s.epoch(k) {
				d.Requests, d.Successes, d.Failures = e.Requests, e.Successes, e.Failures
				d.PromptTokens, d.CompletionTokens = e.PromptTokens, e.CompletionTokens
			}
			s.addOwnLocked(d, s.epoch(k))
			if _, seen := applied[e.ID]; !seen {
				order = append(order, e.ID)
			}
			sum := applied[e.ID]
			sum.ID = e.ID
			sum.Requests += d.Requests
			sum.Successes += d.Successes
			sum.Failures += d.Failures
			sum.PromptTokens += d.PromptTokens
			sum.CompletionTokens += d.CompletionTokens
			if d.LastUsed.After(sum.LastUsed) {
				sum.LastUsed = d.LastUsed
			}
			if d.LastError != nil {
				sum.LastError = d.LastError
			}
			applied[e.ID] = sum
		}
	}
	var keep []journal.Record
	if len(order) > 0 {
		s.seq++
		r := journal.Record{Seq: s.seq, Instance: s.cfg.InstanceID}
		for _, id := range order {
			d := applied[id]
			r.Entries = append(r.Entries, journal.Entry{ID: id, Epoch: s.epoch(s.keys[id]), Requests: d.Requests,
				Successes: d.Successes, Failures: d.Failures, LastUsed: d.LastUsed, LastError: d.LastError,
				PromptTokens: d.PromptTokens, CompletionTokens: d.CompletionTokens})
		}
		keep = append(keep, r)
		s.cfg.Logger.Info("cfkv: usage not yet in KV recovered from the journal", "keys", len(order))
	}
	if err := s.journal.Replace(keep); err != nil {
		s.cfg.Logger.Warn("cfkv: rewriting the usage journal failed", "err", err)
	}
}

// mergeEntry adds b to a: counts of the newer epoch only (a reset
// started it), the newest LastUsed and LastError (pool.Usage.Apply).
func mergeEntry(a, b usageEntry) usageEntry {
	switch {
	case b.Epoch > a.Epoch:
		a.Epoch, a.Requests, a.Successes, a.Failures, a.PromptTokens, a.CompletionTokens = b.Epoch, 0, 0, 0, 0, 0
	case b.Epoch < a.Epoch:
		b.Requests, b.Successes, b.Failures, b.PromptTokens, b.CompletionTokens = 0, 0, 0, 0, 0
	}
	return a.add(pool.UsageDelta{Requests: b.Requests, Successes: b.Successes, Failures: b.Failures, LastUsed: b.LastUsed, LastError: b.LastError,
		PromptTokens: b.PromptTokens, CompletionTokens: b.CompletionTokens})
}

// add returns e, in its epoch, with d applied.
func (e usageEntry) add(d pool.UsageDelta) usageEntry {
	u := pool.Usage{Requests: e.Requests, Successes: e.Successes, Failures: e.Failures, LastUsed: e.LastUsed, LastError: e.LastError,
		PromptTokens: e.PromptTokens, CompletionTokens: e.CompletionTokens}.Apply(d)
	return usageEntry{Epoch: e.Epoch, Requests: u.Requests, Successes: u.Successes, Failures: u.Failures, LastUsed: u.LastUsed, LastError: u.LastError,
		PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens}
}

// FlushUsage writes this instance's usage record now if it changed.
func (s *Store) FlushUsage(ctx context.Context) error {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	return s.flushOwn(ctx, true)
}

// ResetUsage records a reset of the given keys: their counts from before
// it no longer add up, in any instance. One write per provider: the
// provider's reset entry maps key ids to reset times.
func (s *Store) ResetUsage(ctx context.Context, ids []string) error {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	byProv := map[string][]string{}
	for _, id := range ids {
		if k, ok := s.keys[id]; ok {
			byProv[k.Provider] = append(byProv[k.Provider], id)
		}
	}
	if len(byProv) == 0 {
		return nil
	}
	base, err := s.readConfig(ctx)
	if err != nil {
		return fmt.Errorf("cfkv: reset usage: %w", err)
	}
	now := s.cfg.Now()
	stamp := now.UnixNano()
	rev := newRev(now)
	next := s.nextConfig(base, rev)
	var pairs []pair
	for _, p := range slices.Sorted(maps.Keys(byProv)) {
		m := map[string]int64{}
		for id, at := range s.resets[p] {
			if k, ok := s.keys[id]; ok && k.Provider == p {
				m[id] = at // keys since deleted drop out
			}
		}
		for _, id := range byProv[p] {
			m[id] = stamp
		}
		v, _ := json.Marshal(m)
		pairs = append(pairs, pair{Key: resetPrefix + p, Value: string(v), Metadata: map[string]int64{"at": stamp}})
		next.Resets[p] = configReset{At: stamp, Stamps: m}
	}
	cp, err := configPair(next)
	if err != nil {
		return fmt.Errorf("cfkv: reset usage: %w", err)
	}
	pairs = append(pairs, pair{Key: revName, Value: rev}, cp)
	if err := s.bulkWrite(ctx, pairs); err != nil {
		return fmt.Errorf("cfkv: reset usage: %w", err)
	}
	s.wroteConfig(rev)
	s.mu.Lock()
	for p, r := range next.Resets {
		if _, mine := byProv[p]; mine {
			s.resets[p] = r.Stamps
			s.resetSeen[p] = stamp
		}
	}
	s.mu.Unlock()
	return nil
}

// wroteConfig notes a config write of rev by this instance: its copy is
// at rev, and it settles the snapshot settleAfter later (config.go).
func (s *Store) wroteConfig(rev string) {
	s.lastRev, s.wroteRev, s.revSeen, s.complete, s.opened = rev, rev, s.cfg.Now(), false, nil
}

// epoch is the time k's usage was last reset, 0 if never: usage counted
// under another epoch does not add up.
func (s *Store) epoch(k pool.Key) int64 { return s.resets[k.Provider][k.ID] }

// mergeResetsLocked takes in a provider's reset entry as read from KV.
func (s *Store) mergeResetsLocked(prov string, stamps map[string]int64) {
	m := s.resets[prov]
	if m == nil {
		m = map[string]int64{}
		s.resets[prov] = m
	}
	for id, at := range stamps {
		if at > m[id] {
			m[id] = at
		}
		if at > s.resetSeen[prov] {
			s.resetSeen[prov] = at
		}
	}
}

// PutToken writes a client token.
func (s *Store) PutToken(ctx context.Context, t pool.ClientToken) error {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	if t.ID == "" {
		return errors.New("cfkv: put token: empty id")
	}
	base, err := s.readConfig(ctx)
	if err != nil {
		return fmt.Errorf("cfkv: put token: %w", err)
	}
	v, _ := json.Marshal(t)
	rev := newRev(s.cfg.Now())
	next := s.nextConfig(base, rev)
	next.Tokens[t.ID] = t
	cp, err := configPair(next)
	if err != nil {
		return fmt.Errorf("cfkv: put token: %w", err)
	}
	if err := s.bulkWrite(ctx, []pair{
		{Key: tokensPrefix + t.ID, Value: string(v), Metadata: map[string]string{"name": trim(t.Name, 100), "masked": t.Masked}},
		{Key: revName, Value: rev}, cp,
	}); err != nil {
		return fmt.Errorf("cfkv: put token: %w", err)
	}
	s.wroteConfig(rev)
	s.tokens[t.ID] = t
	s.recent[t.ID] = s.cfg.Now()
	delete(s.deleted, t.ID)
	return nil
}

// DeleteToken removes a client token.
func (s *Store) DeleteToken(ctx context.Context, id string) error {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	if _, ok := s.tokens[id]; !ok {
		return fmt.Errorf("cfkv: token %q: %w", id, store.ErrNotFound)
	}
	if err := s.writable(); err != nil {
		return err
	}
	// The snapshot without the token first, then the entry: a failure in
	// between leaves the token refused by the instances that trust the
	// snapshot, never a deleted token accepted.
	base, err := s.readConfig(ctx)
	if err != nil {
		return fmt.Errorf("cfkv: delete token: %w", err)
	}
	rev := newRev(s.cfg.Now())
	next := s.nextConfig(base, rev)
	delete(next.Tokens, id)
	cp, err := configPair(next)
	if err != nil {
		return fmt.Errorf("cfkv: delete token: %w", err)
	}
	if err := s.bulkWrite(ctx, []pair{{Key: revName, Value: rev}, cp}); err != nil {
		return fmt.Errorf("cfkv: delete token: %w", err)
	}
	s.wroteConfig(rev)
	if err := s.bulkDelete(ctx, []string{tokensPrefix + id}); err != nil {
		return fmt.Errorf("cfkv: delete token: %w", err)
	}
	delete(s.tokens, id)
	s.deleted[id] = s.cfg.Now()
	delete(s.recent, id)
	return nil
}

// Close writes this instance's pending usage; what cannot be written
// stays in the journal for the next start.
func (s *Store) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	s.callMu.Lock()
	defer s.callMu.Unlock()
	s.hmu.Lock()
	s.health.blockedUntil = time.Time{} // a last try, whatever the backoff says
	s.hmu.Unlock()
	err := s.flushOwn(ctx, true)
	if s.journal != nil {
		s.journal.Close()
	}
	return err
}

func trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
