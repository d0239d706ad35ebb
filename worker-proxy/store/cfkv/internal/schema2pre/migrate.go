package schema2pre

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cloudflare/cloudflare-go/v6/kv"
	"github.com/cloudflare/cloudflare-go/v6/option"

	"github.com/keypool/keypool/worker-proxy/journal"
	"github.com/keypool/keypool/worker-proxy/pool"
)

// Schema 1 (see the package documentation): read only to migrate it.
const (
	v1Prefix        = "keypool/v1/"
	v1SchemaName    = v1Prefix + "schema"
	v1SchemaValue   = `{"schema":1}`
	v1KeysPrefix    = v1Prefix + "keys/"
	v1TokensPrefix  = v1Prefix + "tokens/"
	v1ResetPrefix   = v1Prefix + "reset/"
	v1UsagePrefix   = v1Prefix + "usage/"
	v1BatchPrefix   = v1Prefix + "batches/"
	migrateChunk    = 10  // entries per bulk write while migrating
	cleanupPerDay   = 250 // schema-1 entries deleted a day, by the whole cluster
	cleanupSchemaV2 = `{"schema":2,"cleanup":true}`
)

// schemaInfo is the value of keypool/v2/schema.
type schemaInfo struct {
	Schema int `json:"schema"`
	// Cleanup: schema-1 entries are left to delete.
	Cleanup bool `json:"cleanup,omitempty"`
}

// Open connects to the namespace and checks the schema: it writes schema
// 2 into an empty namespace, migrates a schema-1 namespace (see the
// package documentation) and loads nothing else: the proxy calls Load.
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
		own:   usageRecord{Instance: cfg.InstanceID, Keys: map[string]usageEntry{}},
		slots: map[string]*slotView{}, shardSeen: map[string]string{},
		recent: map[string]time.Time{}, deleted: map[string]time.Time{},
		health: health{ok: true},
	}
	if cfg.JournalPath == "" {
		// No journal (the edge build): the first write is due
		// UsageFlushInterval after the start, so an instance that lives
		// shorter costs no write. With one, at the first sync.
		s.started = cfg.Now()
	}
	vals, err := s.bulkGet(ctx, []string{schemaName, v1SchemaName})
	if err != nil {
		return nil, fmt.Errorf("cfkv: open namespace: %w", err)
	}
	v2, has2 := vals[schemaName]
	v1, has1 := vals[v1SchemaName]
	switch {
	case has2:
		var si schemaInfo
		if json.Unmarshal([]byte(v2), &si) != nil || si.Schema != 2 {
			return nil, fmt.Errorf("cfkv: namespace holds layout %s, this proxy writes %s: upgrade the proxy", v2, schemaValue)
		}
		s.cleanup = si.Cleanup
	case has1 && v1 == v1SchemaValue:
		if err := s.migrate(ctx); err != nil {
			return nil, fmt.Errorf("cfkv: migrating the namespace from schema 1 to 2 (the next start resumes it): %w", err)
		}
	case has1 && v1 != schemaValue:
		return nil, fmt.Errorf("cfkv: namespace holds layout %s, this proxy writes %s: upgrade the proxy", v1, schemaValue)
	default:
		// Empty. keypool/v1/schema says 2 too, so a proxy of schema 1
		// refuses this namespace instead of writing its own layout into it.
		if err := s.bulkWrite(ctx, []pair{{Key: schemaName, Value: schemaValue}, {Key: v1SchemaName, Value: schemaValue}}); err != nil {
			return nil, fmt.Errorf("cfkv: write schema: %w", err)
		}
	}
	if cfg.JournalPath != "" {
		if s.journal, err = journal.Open(cfg.JournalPath); err != nil {
			cfg.Logger.Warn("cfkv: no usage journal: a crash loses the usage not yet written to KV", "err", err)
		}
	}
	if s.cleanup {
		s.cleanupV1(ctx)
	}
	return s, nil
}

// migrate copies a schema-1 namespace into schema 2, then flips the
// schema. It is idempotent, so a start after an interruption runs it
// again from the top, and two instances may run it at once: every v2
// entry it writes is merged with what KV holds (a key keeps the higher
// revision, an instance's usage record the newer one), and usage records
// are totals, never deltas, so nothing counts twice.
func (s *Store) migrate(ctx context.Context) error {
	log := s.cfg.Logger
	log.Info("cfkv: migrating the namespace from layout schema 1 to schema 2")
	listed, err := s.list(ctx, v1Prefix)
	if err != nil {
		return err
	}
	committed := map[string]bool{}
	for _, it := range listed {
		if b, ok := strings.CutPrefix(it.name, v1BatchPrefix); ok {
			committed[b] = true
		}
	}
	var names []string
	meta := map[string]json.RawMessage{}
	for _, it := range listed {
		switch {
		case strings.HasPrefix(it.name, v1KeysPrefix):
			var m struct {
				Batch string `json:"batch"`
			}
			json.Unmarshal(it.meta, &m)
			if m.Batch != "" && !committed[m.Batch] {
				continue // staged by an import never published
			}
		case strings.HasPrefix(it.name, v1TokensPrefix), strings.HasPrefix(it.name, v1ResetPrefix), strings.HasPrefix(it.name, v1UsagePrefix):
		default:
			continue
		}
		names = append(names, it.name)
		meta[it.name] = it.meta
	}
	vals, err := s.bulkGet(ctx, names)
	if err != nil {
		return err
	}
	shardNames := make([]string, numShards)
	for i := range shardNames {
		shardNames[i] = fmt.Sprintf("%s%02d", shardPrefix, i)
	}
	shards, _, err := s.readShards(ctx, shardNames)
	if err != nil {
		return err
	}
	slotVals, err := s.bulkGet(ctx, slotNames())
	if err != nil {
		return err
	}
	slots := map[string]usageSlot{}
	for _, name := range slotNames() {
		slots[name] = usageSlot{Instances: map[string]usageRecord{}}
		if v, ok := slotVals[name]; ok {
			if sl, err := parseSlot(v); err == nil {
				slots[name] = sl
			}
		}
	}
	var pairs []pair
	nKeys, nUsage := 0, 0
	for _, name := range names {
		v, ok := vals[name]
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(name, v1KeysPrefix):
			var k pool.Key
			if json.Unmarshal([]byte(v), &k) != nil || k.ID != strings.TrimPrefix(name, v1KeysPrefix) {
				log.Warn("cfkv: migration skips a malformed key entry", "name", name)
				continue
			}
			sh := shards[shardOf(k.ID)]
			if cur, ok := sh[k.ID]; !ok || cur.Revision < k.Revision {
				sh[k.ID] = k
			}
			nKeys++
		case strings.HasPrefix(name, v1TokensPrefix):
			pairs = append(pairs, pair{Key: tokensPrefix + strings.TrimPrefix(name, v1TokensPrefix), Value: v, Metadata: rawMeta(meta[name])})
		case strings.HasPrefix(name, v1ResetPrefix):
			pairs = append(pairs, pair{Key: resetPrefix + strings.TrimPrefix(name, v1ResetPrefix), Value: v, Metadata: rawMeta(meta[name])})
		case strings.HasPrefix(name, v1UsagePrefix):
			var rec usageRecord
			if json.Unmarshal([]byte(v), &rec) != nil {
				log.Warn("cfkv: migration skips a malformed usage record", "name", name)
				continue
			}
			inst := strings.TrimPrefix(name, v1UsagePrefix)
			rec.Instance = inst
			sl := slots[slotOf(inst)]
			if cur, ok := sl.Instances[inst]; !ok || !cur.UpdatedAt.After(rec.UpdatedAt) {
				sl.Instances[inst] = rec
			}
			nUsage++
		}
	}
	for _, name := range shardNames {
		if len(shards[name]) == 0 {
			continue
		}
		p, err := shardPair(name, shards[name], s.cfg.Now())
		if err != nil {
			return err
		}
		pairs = append(pairs, p)
	}
	for _, name := range slices.Sorted(maps.Keys(slots)) {
		if len(slots[name].Instances) == 0 {
			continue
		}
		v, err := json.Marshal(slots[name])
		if err != nil {
			return err
		}
		pairs = append(pairs, pair{Key: name, Value: string(v), Metadata: map[string]int64{"updatedAt": s.cfg.Now().UnixNano()}})
	}
	pairs = append(pairs, pair{Key: revName, Value: newRev()})
	// Another instance may have finished first and written since: then
	// its layout stands.
	if done, err := s.bulkGet(ctx, []string{schemaName}); err != nil {
		return err
	} else if _, ok := done[schemaName]; ok {
		log.Info("cfkv: another instance migrated the namespace")
		s.cleanup = true
		return nil
	}
	for i := 0; i < len(pairs); i += migrateChunk {
		if err := s.bulkWrite(ctx, pairs[i:min(i+migrateChunk, len(pairs))]); err != nil {
			return err
		}
	}
	// The flip: from here on every instance reads schema 2; proxies of
	// schema 1 refuse the namespace.
	if err := s.bulkWrite(ctx, []pair{{Key: schemaName, Value: cleanupSchemaV2}, {Key: v1SchemaName, Value: schemaValue}}); err != nil {
		return err
	}
	s.cleanup = true
	log.Info("cfkv: namespace migrated to schema 2", "keys", nKeys, "usageRecords", nUsage, "entries", len(pairs))
	return nil
}

// rawMeta passes listed metadata on as is (nil when there was none).
func rawMeta(m json.RawMessage) any {
	if len(m) == 0 || string(m) == "null" {
		return nil
	}
	return m
}

// cleanupV1 deletes schema-1 entries left after a migration, at most
// cleanupPerDay a day for the whole cluster (KV's free plan allows 1,000
// deletes a day): once a UTC day an instance reads keypool/v2/cleanup,
// and if no instance cleaned today it marks the day and deletes a batch.
// keypool/v1/schema stays (it says 2, so proxies of schema 1 refuse the
// namespace). When nothing else is left, the schema loses its cleanup
// flag. Failures wait for the next day. Called under callMu or from Open.
func (s *Store) cleanupV1(ctx context.Context) {
	if !s.cleanup {
		return
	}
	now := s.cfg.Now().UTC()
	day := now.Unix() / 86400
	if s.cleanDay == day {
		return
	}
	s.cleanDay = day
	today := now.Format(time.DateOnly)
	vals, err := s.bulkGet(ctx, []string{cleanupName, schemaName})
	if err != nil {
		return
	}
	var si schemaInfo
	if json.Unmarshal([]byte(vals[schemaName]), &si) == nil && si.Schema == 2 && !si.Cleanup {
		s.cleanup = false // another instance finished
		return
	}
	if vals[cleanupName] == today {
		return
	}
	if err := s.bulkWrite(ctx, []pair{{Key: cleanupName, Value: today}}); err != nil {
		return
	}
	listed, err := s.list(ctx, v1Prefix)
	if err != nil {
		return
	}
	var gone []string
	for _, it := range listed {
		if it.name != v1SchemaName && len(gone) < cleanupPerDay {
			gone = append(gone, it.name)
		}
	}
	if len(gone) > 0 {
		if err := s.bulkDelete(ctx, gone); err != nil {
			s.cfg.Logger.Warn("cfkv: deleting schema-1 entries failed; retrying tomorrow", "err", err)
			return
		}
		s.cfg.Logger.Info("cfkv: deleted schema-1 entries left by the migration", "deleted", len(gone), "left", len(listed)-1-len(gone))
	}
	if len(listed)-1-len(gone) <= 0 {
		if err := s.bulkWrite(ctx, []pair{{Key: schemaName, Value: schemaValue}}); err == nil {
			s.cleanup = false
		}
	}
}
