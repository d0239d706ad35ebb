package schema1

import (
	"cmp"
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
	"github.com/cloudflare/cloudflare-go/v6/option"

	"github.com/keypool/keypool/worker-proxy/journal"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/store"
)

// Layout.
const (
	prefix       = "keypool/v1/"
	schemaName   = prefix + "schema"
	revName      = prefix + "rev"
	keysPrefix   = prefix + "keys/"
	tokensPrefix = prefix + "tokens/"
	resetPrefix  = prefix + "reset/"
	usagePrefix  = prefix + "usage/"
	batchPrefix  = prefix + "batches/"
	schemaValue  = `{"schema":1}`
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
	resetSeen map[string]int64       // provider → newest stamp read
	others    map[string]usageRecord // other instances' records
	otherSeen map[string]int64       // their updatedAt, from list metadata
	recent    map[string]time.Time   // key/token ids this instance wrote or deleted lately
	deleted   map[string]time.Time   // ids deleted here lately (tombstones)
	garbage   []string               // names of a failed import's staged keys, to delete
	inDoubt   *stagedImport          // an import whose publish may or may not have landed
	lastRev   string
	lastUsage time.Time // last read of others' usage
	lastFlush time.Time // last write of own usage
	loaded    bool      // Load has run: own is authoritative

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

// keyMeta is what KV's list shows of a key, without reading it.
type keyMeta struct {
	Provider string `json:"provider"`
	Masked   string `json:"masked"`
	Revision int64  `json:"revision"`
	Active   bool   `json:"active"`
	Disabled string `json:"disabled,omitempty"`
	// Batch names the import that staged the key: it exists only once
	// that import's marker keypool/v1/batches/<Batch> does.
	Batch  string `json:"batch,omitempty"`
	Staged int64  `json:"staged,omitempty"` // when, unix ns
}

// stagedTTL: staged keys of an import unpublished this long are left over
// from a crash or a failed import, and deleted.
const stagedTTL = time.Hour

// Open connects to the namespace, checks the schema (writing it into an
// empty namespace) and loads nothing else: the proxy calls Load.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.AccountID == "" || cfg.NamespaceID == "" || cfg.APIToken == "" {
		return nil, errors.New("cfkv: CF_ACCOUNT_ID, CF_KV_NAMESPACE_ID and CF_API_TOKEN are required")
	}
	if cfg.InstanceID == "" {
		cfg.InstanceID = RandomInstanceID()
	}
	cfg.BaseURL = strings.TrimRight(cmp.Or(cfg.BaseURL, DefaultBaseURL), "/")
	cfg.UsageFlushInterval = cmp.Or(cfg.UsageFlushInterval, 10*time.Minute)
	cfg.UsageSyncInterval = cmp.Or(cfg.UsageSyncInterval, 10*time.Minute)
	cfg.StaleWindow = cmp.Or(cfg.StaleWindow, 2*time.Minute)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	opts := []option.RequestOption{
		option.WithBaseURL(cfg.BaseURL + "/client/v4/"),
		option.WithAPIToken(cfg.APIToken),
		// Cloudflare blocks a token for minutes after a 429: never retry
		// blindly; the store backs off on its own.
		option.WithMaxRetries(0),
		option.WithRequestTimeout(30 * time.Second),
	}
	if cfg.HTTPClient != nil {
		opts = append(opts, option.WithHTTPClient(cfg.HTTPClient))
	}
	s := &Store{
		cfg: cfg, ns: kv.NewNamespaceService(opts...), nk: kv.NewNamespaceKeyService(opts...),
		keys: map[string]pool.Key{}, tokens: map[string]pool.ClientToken{},
		resets: map[string]map[string]int64{}, resetSeen: map[string]int64{},
		own:    usageRecord{Instance: cfg.InstanceID, Keys: map[string]usageEntry{}},
		others: map[string]usageRecord{}, otherSeen: map[string]int64{},
		recent: map[string]time.Time{}, deleted: map[string]time.Time{},
		health: health{ok: true},
	}
	vals, err := s.bulkGet(ctx, []string{schemaName})
	if err != nil {
		return nil, fmt.Errorf("cfkv: open namespace: %w", err)
	}
	if cfg.JournalPath != "" {
		if s.journal, err = journal.Open(cfg.JournalPath); err != nil {
			cfg.Logger.Warn("cfkv: no usage journal: a crash loses the usage not yet written to KV", "err", err)
		}
	}
	switch v, ok := vals[schemaName]; {
	case !ok:
		if err := s.bulkWrite(ctx, []pair{{Key: schemaName, Value: schemaValue}}); err != nil {
			return nil, fmt.Errorf("cfkv: write schema: %w", err)
		}
	case v != schemaValue:
		return nil, fmt.Errorf("cfkv: namespace holds layout %s, this proxy writes %s: upgrade the proxy", v, schemaValue)
	}
	return s, nil
}

// RandomInstanceID returns a new instance id.
func RandomInstanceID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "i-" + hex.EncodeToString(b)
}

func newRev() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Load reads the whole namespace.
func (s *Store) Load(ctx context.Context) (*store.Contents, error) {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	rev, err := s.readRev(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.refreshConfig(ctx); err != nil {
		return nil, err
	}
	if err := s.refreshUsage(ctx, true); err != nil {
		return nil, err
	}
	s.lastRev = rev
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.others[s.cfg.InstanceID]; ok {
		// This instance's own record from before a restart; what it
		// counted since it started stays on top.
		delete(s.others, s.cfg.InstanceID)
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
	s.collectGarbage(ctx)
	if err := s.resolveInDoubt(ctx); err != nil {
		return nil, err
	}
	changed := false
	rev, err := s.readRev(ctx)
	if err != nil {
		return nil, err
	}
	if rev != s.lastRev {
		if err := s.refreshConfig(ctx); err != nil {
			return nil, err
		}
		s.lastRev, changed = rev, true
	}
	if now.Sub(s.lastUsage) >= s.cfg.UsageSyncInterval {
		if err := s.refreshUsage(ctx, false); err != nil {
			return nil, err
		}
		changed = true
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

// refreshConfig lists keys, tokens and resets and reads the keys and
// tokens whose revision changed. Recent own writes and deletes win over
// what the list shows, which may be up to a minute old. Keys staged by an
// import whose marker is absent do not exist (yet). Called under callMu.
func (s *Store) refreshConfig(ctx context.Context) error {
	listed, err := s.list(ctx, prefix)
	if err != nil {
		return err
	}
	committed := map[string]bool{}
	for _, it := range listed {
		if b, ok := strings.CutPrefix(it.name, batchPrefix); ok {
			committed[b] = true
		}
	}
	var fetch []string
	seenKeys, seenTokens := map[string]bool{}, map[string]bool{}
	for _, it := range listed {
		switch {
		case strings.HasPrefix(it.name, keysPrefix):
			id := strings.TrimPrefix(it.name, keysPrefix)
			var m keyMeta
			json.Unmarshal(it.meta, &m)
			if m.Batch != "" && !committed[m.Batch] {
				// Staged by an import not (yet) published.
				if s.cfg.Now().Sub(time.Unix(0, m.Staged)) > stagedTTL && !slices.Contains(s.garbage, it.name) {
					s.garbage = append(s.garbage, it.name)
				}
				continue
			}
			seenKeys[id] = true
			if _, gone := s.deleted[id]; gone {
				continue
			}
			if k, ok := s.keys[id]; !ok || m.Revision > k.Revision || m.Revision == 0 && !ok {
				fetch = append(fetch, it.name)
			}
		case strings.HasPrefix(it.name, tokensPrefix):
			id := strings.TrimPrefix(it.name, tokensPrefix)
			seenTokens[id] = true
			if _, gone := s.deleted[id]; gone {
				continue
			}
			if _, ok := s.tokens[id]; !ok {
				fetch = append(fetch, it.name)
			}
		case strings.HasPrefix(it.name, resetPrefix):
			var m struct {
				At int64 `json:"at"`
			}
			json.Unmarshal(it.meta, &m)
			if m.At > s.resetSeen[strings.TrimPrefix(it.name, resetPrefix)] {
				fetch = append(fetch, it.name)
			}
		}
	}
	vals, err := s.bulkGet(ctx, fetch)
	if err != nil {
		return err
	}
	s.mu.Lock()
	for name, v := range vals {
		if id, ok := strings.CutPrefix(name, keysPrefix); ok {
			var k pool.Key
			if err := json.Unmarshal([]byte(v), &k); err != nil || k.ID != id {
				s.cfg.Logger.Warn("cfkv: skipping a malformed key entry", "name", name)
				continue
			}
			if cur, ok := s.keys[id]; !ok || k.Revision > cur.Revision {
				s.keys[id] = k
			}
		} else if prov, ok := strings.CutPrefix(name, resetPrefix); ok {
			var stamps map[string]int64
			if err := json.Unmarshal([]byte(v), &stamps); err != nil {
				continue
			}
			s.mergeResetsLocked(prov, stamps)
		} else if id, ok := strings.CutPrefix(name, tokensPrefix); ok {
			var t pool.ClientToken
			if err := json.Unmarshal([]byte(v), &t); err != nil || t.ID != id {
				continue
			}
			s.tokens[id] = t
		}
	}
	// Entries the list does not show are gone, but a list can lag behind
	// this instance's own recent writes: read those back to be sure.
	var check []string
	for id := range s.keys {
		if !seenKeys[id] {
			if _, mine := s.recent[id]; mine {
				check = append(check, keysPrefix+id)
			} else {
				delete(s.keys, id) // deleted by another instance
			}
		}
	}
	s.mu.Unlock()
	for id := range s.tokens {
		if !seenTokens[id] {
			if _, mine := s.recent[id]; mine {
				check = append(check, tokensPrefix+id)
			} else {
				delete(s.tokens, id)
			}
		}
	}
	present, err := s.bulkGet(ctx, check)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range check {
		if _, ok := present[name]; ok {
			continue
		}
		if id, ok := strings.CutPrefix(name, keysPrefix); ok {
			delete(s.keys, id)
		} else {
			delete(s.tokens, strings.TrimPrefix(name, tokensPrefix))
		}
	}
	return nil
}

// refreshUsage lists the usage records and reads the other instances'
// records that changed since last seen (all of them if all is set).
func (s *Store) refreshUsage(ctx context.Context, all bool) error {
	listed, err := s.list(ctx, usagePrefix)
	if err != nil {
		return err
	}
	var fetch []string
	seen := map[string]bool{}
	for _, it := range listed {
		inst := strings.TrimPrefix(it.name, usagePrefix)
		seen[inst] = true
		if inst == s.cfg.InstanceID && !all {
			continue
		}
		var m struct {
			UpdatedAt int64 `json:"updatedAt"`
		}
		json.Unmarshal(it.meta, &m)
		if all || m.UpdatedAt != s.otherSeen[inst] {
			fetch = append(fetch, it.name)
			s.otherSeen[inst] = m.UpdatedAt
		}
	}
	vals, err := s.bulkGet(ctx, fetch)
	if err != nil {
		return err
	}
	for name, v := range vals {
		var rec usageRecord
		if err := json.Unmarshal([]byte(v), &rec); err != nil {
			s.cfg.Logger.Warn("cfkv: skipping a malformed usage record", "name", name)
			continue
		}
		s.others[strings.TrimPrefix(name, usagePrefix)] = rec
	}
	for inst := range s.others {
		if !seen[inst] {
			delete(s.others, inst)
		}
	}
	s.lastUsage = s.cfg.Now()
	return nil
}

// contentsLocked builds the pool's view: keys, tokens, and usage totals
// over every instance, counted from each provider's last reset.
func (s *Store) contentsLocked() *store.Contents {
	c := &store.Contents{Usage: map[string]pool.Usage{}}
	for _, k := range s.keys {
		c.Keys = append(c.Keys, k.Clone())
	}
	slices.SortFunc(c.Keys, func(a, b pool.Key) int { return strings.Compare(a.ID, b.ID) })
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
	for _, rec := range s.others {
		add(rec)
	}
	return c
}

// maxBulk is the most pairs one bulk write takes.
const maxBulk = 10_000

// stagedImport is an import whose publish failed without a way to tell
// whether KV applied it: its marker decides.
type stagedImport struct {
	marker string
	keys   []pool.Key
	names  []string // the staged keys
}

// PutKeys writes keys, all or none, refusing any whose known revision is
// not older (store.ErrConflict) and any second copy of a secret this
// instance knows of (store.ErrDuplicate).
//
// Keys and the "rev" marker that fit one bulk request (9,999 keys) go in
// one. More take several requests, so they are staged: the new keys are
// written with the batch's id in their metadata, which makes every reader
// skip them, and published by one last request that writes the batch's
// marker, the replaced keys and "rev". A failure before that publishes
// nothing, and the staged keys are deleted (now, or at a later sync).
func (s *Store) PutKeys(ctx context.Context, keys ...pool.Key) error {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	if err := s.resolveInDoubt(ctx); err != nil {
		return fmt.Errorf("cfkv: put keys: %w", err)
	}
	var fps store.Fingerprints
	for id, k := range s.keys {
		fps.Set(id, k.Secret)
	}
	if err := fps.CheckNew(keys); err != nil {
		return fmt.Errorf("cfkv: put keys: %w", err)
	}
	// Edits (revision above 1) are checked against what KV holds now, not
	// only this instance's copy: another instance may have written since
	// the last sync. New keys are not read back, so an import costs no
	// reads. Within KV's propagation delay (about 60 s between locations)
	// the check is best effort.
	var edited []string
	for _, k := range keys {
		if k.Revision > 1 {
			edited = append(edited, keysPrefix+k.ID)
		}
	}
	current, err := s.bulkGet(ctx, edited)
	if err != nil {
		return fmt.Errorf("cfkv: put keys: %w", err)
	}
	staged := len(keys)+1 > maxBulk
	batch := ""
	if staged {
		batch = newRev()
	}
	var fresh, replaced []pair
	for _, k := range keys {
		if k.ID == "" {
			return errors.New("cfkv: put keys: key with empty id")
		}
		stored, exists := s.keys[k.ID]
		if v, ok := current[keysPrefix+k.ID]; ok {
			var cur pool.Key
			if json.Unmarshal([]byte(v), &cur) == nil && cur.Revision > stored.Revision {
				stored.Revision = cur.Revision
			}
			exists = true
		}
		if k.Revision > 0 && stored.Revision >= k.Revision {
			return fmt.Errorf("cfkv: key %q: revision %d is not newer than %d: %w", k.ID, k.Revision, stored.Revision, store.ErrConflict)
		}
		v, err := json.Marshal(k)
		if err != nil {
			return fmt.Errorf("cfkv: key %q: %w", k.ID, err)
		}
		p := pair{Key: keysPrefix + k.ID, Value: string(v), Metadata: keyMeta{
			Provider: k.Provider, Masked: pool.Mask(k.Secret), Revision: k.Revision, Active: k.IsActive, Disabled: trim(k.DisabledReason, 100),
		}}
		if staged && !exists {
			m := p.Metadata.(keyMeta)
			m.Batch, m.Staged = batch, s.cfg.Now().UnixNano()
			p.Metadata = m
			fresh = append(fresh, p)
		} else {
			replaced = append(replaced, p)
		}
	}
	rev := newRev()
	if !staged {
		if err := s.bulkWrite(ctx, append(replaced, pair{Key: revName, Value: rev})); err != nil {
			return fmt.Errorf("cfkv: put keys: %w", err)
		}
	} else if err := s.publish(ctx, batch, fresh, replaced, rev, keys); err != nil {
		return fmt.Errorf("cfkv: put keys: %w", err)
	}
	now := s.cfg.Now()
	s.mu.Lock()
	for _, k := range keys {
		s.keys[k.ID] = k.Clone()
	}
	s.mu.Unlock()
	for _, k := range keys {
		s.recent[k.ID] = now
		delete(s.deleted, k.ID)
	}
	s.lastRev = rev
	return nil
}

// publish writes a staged import: the new keys in requests of maxBulk,
// then the marker, the replaced keys and rev in one last request.
func (s *Store) publish(ctx context.Context, batch string, fresh, replaced []pair, rev string, keys []pool.Key) error {
	marker := pair{Key: batchPrefix + batch, Value: fmt.Sprintf(`{"keys":%d}`, len(fresh)+len(replaced)), Metadata: map[string]int64{"at": s.cfg.Now().UnixNano()}}
	last := append(replaced, marker, pair{Key: revName, Value: rev})
	if len(last) > maxBulk {
		return fmt.Errorf("%d keys replace stored ones: at most %d can change together with an import", len(replaced), maxBulk-2)
	}
	names := make([]string, len(fresh))
	for i, p := range fresh {
		names[i] = p.Key
	}
	for i := 0; i < len(fresh); i += maxBulk {
		if err := s.bulkWrite(ctx, fresh[i:min(i+maxBulk, len(fresh))]); err != nil {
			s.discard(ctx, names[:min(i+maxBulk, len(fresh))])
			return fmt.Errorf("staging keys: %w (nothing was published)", err)
		}
	}
	err := s.bulkWrite(ctx, last)
	if err == nil {
		return nil
	}
	// The last request may have been applied though its answer was lost:
	// the marker says.
	if vals, rerr := s.read(ctx, []string{marker.Key}, false); rerr == nil {
		if _, ok := vals[marker.Key]; ok {
			return nil
		}
		s.discard(ctx, names)
		return fmt.Errorf("publishing keys: %w (nothing was published)", err)
	}
	s.inDoubt = &stagedImport{marker: marker.Key, keys: slices.Clone(keys), names: names}
	return fmt.Errorf("publishing keys: %w (its marker %s could not be read back: the import is published only if it exists)", err, marker.Key)
}

// resolveInDoubt learns whether an import whose outcome was unknown was
// published, before anything else is written: if so its keys are this
// instance's (so a retry of the import is refused as duplicates), if not
// its staged keys are discarded. It fails while the marker cannot be read.
func (s *Store) resolveInDoubt(ctx context.Context) error {
	d := s.inDoubt
	if d == nil {
		return nil
	}
	vals, err := s.read(ctx, []string{d.marker}, false)
	if err != nil {
		return fmt.Errorf("learning whether the last import was published: %w", err)
	}
	s.inDoubt = nil
	if _, ok := vals[d.marker]; !ok {
		s.discard(ctx, d.names)
		return nil
	}
	now := s.cfg.Now()
	s.mu.Lock()
	for _, k := range d.keys {
		if cur, ok := s.keys[k.ID]; !ok || k.Revision > cur.Revision {
			s.keys[k.ID] = k.Clone()
		}
	}
	s.mu.Unlock()
	for _, k := range d.keys {
		s.recent[k.ID] = now
	}
	return nil
}

// discard deletes a failed import's staged keys, or leaves them for the
// next sync: readers skip them meanwhile.
func (s *Store) discard(ctx context.Context, names []string) {
	if err := s.bulkDelete(ctx, names); err != nil {
		s.garbage = append(s.garbage, names...)
	}
}

// collectGarbage deletes staged keys of failed imports.
func (s *Store) collectGarbage(ctx context.Context) {
	if len(s.garbage) == 0 {
		return
	}
	if err := s.bulkDelete(ctx, s.garbage); err == nil {
		s.garbage = nil
	}
}

// DeleteKeys removes keys (their usage goes with this instance's next
// usage write, and is no longer counted at once).
func (s *Store) DeleteKeys(ctx context.Context, ids ...string) error {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	names := make([]string, 0, len(ids))
	for _, id := range ids {
		if id != "" {
			names = append(names, keysPrefix+id)
		}
	}
	if err := s.bulkDelete(ctx, names); err != nil {
		return fmt.Errorf("cfkv: delete keys: %w", err)
	}
	rev := newRev()
	if err := s.bulkWrite(ctx, []pair{{Key: revName, Value: rev}}); err != nil {
		s.cfg.Logger.Warn("cfkv: marking a change failed; other instances see it on their next full read", "err", err)
	}
	now := s.cfg.Now()
	s.mu.Lock()
	for _, id := range ids {
		delete(s.keys, id)
		if _, ok := s.own.Keys[id]; ok {
			delete(s.own.Keys, id)
			s.ownDirty = true
			s.ownGen++
		}
	}
	s.mu.Unlock()
	for _, id := range ids {
		s.deleted[id] = now
		delete(s.recent, id)
	}
	s.lastRev = rev
	return nil
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
			return s.own.JournalSeq
		}
		return s.others[inst].JournalSeq
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

// flushOwn writes this instance's usage record if it changed and is due
// (or force), then drops the journal records it covers. Called under
// callMu.
func (s *Store) flushOwn(ctx context.Context, force bool) error {
	now := s.cfg.Now()
	s.mu.Lock()
	if !s.ownDirty || !force && now.Sub(s.lastFlush) < s.cfg.UsageFlushInterval {
		s.mu.Unlock()
		return nil
	}
	rec := s.own
	rec.UpdatedAt, rec.JournalSeq = now, s.seq
	gen, flushed := s.ownGen, s.own.JournalSeq
	v, err := json.Marshal(rec)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := s.writable(); err != nil {
		return err
	}
	err = s.bulkWrite(ctx, []pair{{Key: usagePrefix + s.cfg.InstanceID, Value: string(v), Metadata: map[string]int64{"updatedAt": now.UnixNano()}}})
	if err != nil {
		if s.journal != nil {
			// While KV is down the journal would grow by a record per
			// pool flush: fold what this write would have covered.
			if err := s.journal.Merge(flushed, rec.JournalSeq, s.cfg.InstanceID); err != nil {
				s.cfg.Logger.Warn("cfkv: compacting the usage journal failed", "err", err)
			}
		}
		return fmt.Errorf("cfkv: write usage: %w", err)
	}
	s.mu.Lock()
	s.own.UpdatedAt, s.own.JournalSeq, s.lastFlush = now, rec.JournalSeq, now
	if s.ownGen == gen {
		s.ownDirty = false
	}
	s.mu.Unlock()
	if s.journal != nil {
		if err := s.journal.Compact(rec.JournalSeq); err != nil {
			s.cfg.Logger.Warn("cfkv: compacting the usage journal failed", "err", err)
		}
	}
	return nil
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
	now := s.cfg.Now()
	stamp := now.UnixNano()
	rev := newRev()
	var pairs []pair
	next := map[string]map[string]int64{}
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
		next[p] = m
	}
	pairs = append(pairs, pair{Key: revName, Value: rev})
	if err := s.bulkWrite(ctx, pairs); err != nil {
		return fmt.Errorf("cfkv: reset usage: %w", err)
	}
	s.mu.Lock()
	for p, m := range next {
		s.resets[p] = m
		s.resetSeen[p] = stamp
	}
	s.mu.Unlock()
	s.lastRev = rev
	return nil
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
	v, _ := json.Marshal(t)
	rev := newRev()
	if err := s.bulkWrite(ctx, []pair{
		{Key: tokensPrefix + t.ID, Value: string(v), Metadata: map[string]string{"name": trim(t.Name, 100), "masked": t.Masked}},
		{Key: revName, Value: rev},
	}); err != nil {
		return fmt.Errorf("cfkv: put token: %w", err)
	}
	s.tokens[t.ID] = t
	s.recent[t.ID] = s.cfg.Now()
	s.lastRev = rev
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
	if err := s.bulkDelete(ctx, []string{tokensPrefix + id}); err != nil {
		return fmt.Errorf("cfkv: delete token: %w", err)
	}
	rev := newRev()
	s.bulkWrite(ctx, []pair{{Key: revName, Value: rev}})
	delete(s.tokens, id)
	s.deleted[id] = s.cfg.Now()
	s.lastRev = rev
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
