package cfkv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/keypool/keypool/worker-proxy/pool"
)

// The config snapshot (see the package documentation, "Config snapshot").
const (
	configName = prefix + "config"
	// settleAfter is how long after a config write (the time stamped in
	// its "rev") a listing surely shows every entry written before it:
	// KV's propagation delay (about 60 s), the request timeout (a bulk
	// write may be taken up to 30 s after its rev was stamped) and a
	// margin for clocks. A snapshot is settled (trusted) only when built
	// from a listing made that long after the rev's stamp.
	settleAfter = 150 * time.Second
	// maxConfigBytes bounds the snapshot: past it, a small marker saying
	// so is written instead, and instances list the namespace as before.
	maxConfigBytes = 20 << 20
)

// configValue is the snapshot of the whole config at one "rev": every
// shard (its version, when it was written and its keys), every client
// token and every provider's resets.
type configValue struct {
	Schema  int    `json:"schema"`
	Cleanup bool   `json:"cleanup,omitempty"` // schema-1 entries are left to delete
	Rev     string `json:"rev"`               // the "rev" written with it, or settled for
	// Settled: built from a listing made settleAfter after Rev's stamp,
	// so it holds every config write up to Rev. A snapshot written with
	// a config write is not settled: a concurrent writer's shard may be
	// missing from it.
	Settled bool  `json:"settled,omitempty"`
	TooBig  bool  `json:"tooBig,omitempty"` // the snapshot would pass maxConfigBytes: none is kept
	At      int64 `json:"at"`               // when it was built, unix ns
	// Each pair of version and keys is exact: the content of that shard
	// at that version, whatever Rev is.
	Shards map[string]configShard      `json:"shards"`
	Tokens map[string]pool.ClientToken `json:"tokens"`
	Resets map[string]configReset      `json:"resets"`
}

// configShard is one shard in the snapshot: its version ("v", "" when
// unknown: written by an older proxy), when it was written and its keys.
type configShard struct {
	V    string              `json:"v"`
	At   int64               `json:"at"`
	Keys map[string]pool.Key `json:"keys"`
}

// configReset is one provider's reset entry: its stamps, and At, the
// newest of them (what a listing shows as its metadata "at").
type configReset struct {
	At     int64            `json:"at"`
	Stamps map[string]int64 `json:"stamps"`
}

// parseConfig decodes a snapshot as read; nil when absent or malformed.
func parseConfig(v string) *configValue {
	if v == "" {
		return nil
	}
	var c configValue
	if json.Unmarshal([]byte(v), &c) != nil || c.Schema == 0 {
		return nil
	}
	if c.Shards == nil {
		c.Shards = map[string]configShard{}
	}
	if c.Tokens == nil {
		c.Tokens = map[string]pool.ClientToken{}
	}
	if c.Resets == nil {
		c.Resets = map[string]configReset{}
	}
	return &c
}

// trusted reports whether c may be taken as the whole config at rev, with
// no listing: it is settled for that very rev.
func (c *configValue) trusted(rev string) bool {
	return c != nil && rev != "" && c.Rev == rev && c.Settled && !c.TooBig && c.Schema == 2
}

// tooBigAt reports whether the snapshot for rev is known not to fit.
func (c *configValue) tooBigAt(rev string) bool { return c != nil && c.Rev == rev && c.TooBig }

// newRev returns a new value of "rev": the time of the write (unix ns),
// a dash, and 16 random hex digits. Proxies before the snapshot wrote the
// random part alone; any value that changes serves them.
func newRev(now time.Time) string {
	return strconv.FormatInt(now.UnixNano(), 10) + "-" + newVersion()
}

// newVersion returns a random shard version.
func newVersion() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// revStamp is the time stamped in rev, or def for a rev of an older proxy.
func revStamp(rev string, def time.Time) time.Time {
	ns, _, ok := strings.Cut(rev, "-")
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(ns, 10, 64)
	if err != nil || n <= 0 {
		return def
	}
	return time.Unix(0, n)
}

// nextConfig is the snapshot to write with a config write of rev: base
// (the snapshot as read with the write's other reads; its pairs stay
// exact whatever rev it was for) with the caller's changes to come. It
// is not settled.
func (s *Store) nextConfig(base *configValue, rev string) *configValue {
	c := &configValue{Schema: 2, Cleanup: s.cleanup, Rev: rev, At: s.cfg.Now().UnixNano(),
		Shards: map[string]configShard{}, Tokens: map[string]pool.ClientToken{}, Resets: map[string]configReset{}}
	if base != nil && !base.TooBig {
		c.Shards = maps.Clone(base.Shards)
		c.Tokens = maps.Clone(base.Tokens)
		c.Resets = maps.Clone(base.Resets)
	}
	return c
}

// configPair encodes c for a bulk write; past maxConfigBytes, a marker
// saying the snapshot does not fit.
func configPair(c *configValue) (pair, error) {
	v, err := json.Marshal(c)
	if err != nil {
		return pair{}, err
	}
	if len(v) > maxConfigBytes {
		v, _ = json.Marshal(configValue{Schema: 2, Cleanup: c.Cleanup, Rev: c.Rev, TooBig: true, At: c.At})
	}
	return pair{Key: configName, Value: string(v), Metadata: map[string]any{"rev": c.Rev, "settled": c.Settled}}, nil
}

// readConfig reads the snapshot (one read).
func (s *Store) readConfig(ctx context.Context) (*configValue, error) {
	vals, err := s.bulkGet(ctx, []string{configName})
	if err != nil {
		return nil, err
	}
	return parseConfig(vals[configName]), nil
}

// readRevConfig reads "rev" and the snapshot (two reads, one request).
func (s *Store) readRevConfig(ctx context.Context) (string, *configValue, error) {
	vals, err := s.bulkGet(ctx, []string{revName, configName})
	if err != nil {
		return "", nil, err
	}
	return vals[revName], parseConfig(vals[configName]), nil
}

// revAt is when the config at rev was written as far as this instance
// knows: the stamp in rev, else when this instance first saw it.
func (s *Store) revAt(rev string) time.Time { return revStamp(rev, s.revSeen) }

// configDue reports whether a config view still incomplete (listed too
// soon after its rev's write) should look again: the writer of rev looks
// settleAfter after the stamp, the others twice that (the writer settles
// the snapshot first, if it is alive).
func (s *Store) configDue(now time.Time) bool {
	if s.complete {
		return false
	}
	age := now.Sub(s.revAt(s.lastRev))
	return age >= settleAfter && (s.wroteRev == s.lastRev || age >= 2*settleAfter)
}

// syncConfig brings this instance's copy of the config to rev, the
// "rev" as just read, with cfg the snapshot as read (nil: absent). A
// snapshot settled for rev is taken whole: no listing, no other read.
// Otherwise, for a rev not seen before (or load), the namespace is listed
// and the entries whose version differs from both this instance's copy
// and the snapshot are read (the snapshot's pairs are exact, so a shard
// at the version it holds is taken from it). A listing made settleAfter
// after rev's stamp is complete; one made sooner may miss a concurrent
// write, so the view stays incomplete until a settled snapshot comes or
// configDue says to list again. A listing that is due also settles the
// snapshot: it is written, settled, from the listing. It reports whether
// the view changed. Called under callMu.
func (s *Store) syncConfig(ctx context.Context, rev string, cfg *configValue, load bool) (bool, error) {
	now := s.cfg.Now()
	fresh := load || rev != s.lastRev
	if rev != s.lastRev || s.revSeen.IsZero() {
		s.revSeen = now
	}
	if fresh {
		s.lastRev, s.complete = rev, false
	}
	if rev == "" && cfg == nil {
		// Nothing was ever written to the config: an empty namespace.
		changed := len(s.keys) > 0 || len(s.tokens) > 0
		s.mu.Lock()
		s.takeConfigLocked(&configValue{Shards: map[string]configShard{}})
		s.mu.Unlock()
		s.complete = true
		return changed, nil
	}
	if cfg.trusted(rev) {
		s.mu.Lock()
		s.takeConfigLocked(cfg)
		s.mu.Unlock()
		s.complete = true
		return true, nil
	}
	due := s.configDue(now)
	if !fresh && !due {
		return false, nil
	}
	age := now.Sub(s.revAt(rev))
	settle := !cfg.tooBigAt(rev) && age >= settleAfter && (s.wroteRev == rev || age >= 2*settleAfter)
	if err := s.listConfig(ctx, rev, cfg, settle); err != nil {
		return false, err
	}
	s.complete = age >= settleAfter
	return true, nil
}

// takeConfigLocked makes a trusted snapshot this instance's copy of the
// config, except for this instance's own writes and deletes that KV may
// not show yet. Called under callMu and mu.
func (s *Store) takeConfigLocked(c *configValue) {
	if len(s.keys) == 0 && len(s.recent) == 0 && len(s.deleted) == 0 {
		// A start: nothing of this instance's to keep.
		for name, sh := range c.Shards {
			for id, k := range sh.Keys {
				if k.ID == id && shardOf(id) == name {
					s.keys[id] = k
				}
			}
			s.shardSeen[name] = sh.V
		}
		s.order = nil
	}
	for name, sh := range c.Shards {
		if sh.V != "" && sh.V == s.shardSeen[name] {
			continue // this version is the one held
		}
		s.takeShardLocked(name, sh.Keys, sh.At)
		s.shardSeen[name] = sh.V
	}
	for id := range s.keys {
		if _, mine := s.recent[id]; !mine {
			if _, ok := c.Shards[shardOf(id)]; !ok {
				delete(s.keys, id)
				s.order = nil
			}
		}
	}
	for id, t := range c.Tokens {
		_, gone := s.deleted[id]
		_, mine := s.recent[id]
		if t.ID != id || gone || mine {
			continue
		}
		s.tokens[id] = t
	}
	for id := range s.tokens {
		if _, mine := s.recent[id]; !mine {
			if _, ok := c.Tokens[id]; !ok {
				delete(s.tokens, id)
			}
		}
	}
	for p, r := range c.Resets {
		s.mergeResetsLocked(p, r.Stamps)
	}
}

// listConfig lists the layout's entries and brings this instance's copy
// up to them (see syncConfig); with settle it reads every entry the
// snapshot cfg does not hold at the listed version, and writes the
// snapshot, settled for rev. Called under callMu.
func (s *Store) listConfig(ctx context.Context, rev string, cfg *configValue, settle bool) error {
	listed, err := s.list(ctx, prefix)
	if err != nil {
		return err
	}
	if cfg == nil || cfg.TooBig {
		cfg = &configValue{}
	}
	var fetch []string
	exact := map[string]configShard{}       // shard → exact pair, for the snapshot
	fromCfg := map[string]bool{}            // shards taken from the snapshot
	tokens := map[string]pool.ClientToken{} // listed tokens with their content
	resets := map[string]configReset{}      // listed resets with their content
	listedShards, seenTokens := map[string]bool{}, map[string]bool{}
	shardVer := map[string]string{}
	for _, it := range listed {
		switch {
		case strings.HasPrefix(it.name, shardPrefix):
			var m shardMeta
			json.Unmarshal(it.meta, &m)
			listedShards[it.name] = true
			shardVer[it.name] = m.V
			if c, ok := cfg.Shards[it.name]; ok && c.V != "" && c.V == m.V {
				exact[it.name] = c
				fromCfg[it.name] = m.V != s.shardSeen[it.name]
				continue
			}
			if settle || m.V == "" || m.V != s.shardSeen[it.name] {
				fetch = append(fetch, it.name)
			}
		case strings.HasPrefix(it.name, tokensPrefix):
			id := strings.TrimPrefix(it.name, tokensPrefix)
			seenTokens[id] = true
			if t, ok := cfg.Tokens[id]; ok && t.ID == id {
				tokens[id] = t
				continue
			}
			if t, ok := s.tokens[id]; ok && !settle {
				tokens[id] = t
				continue
			}
			fetch = append(fetch, it.name)
		case strings.HasPrefix(it.name, resetPrefix):
			p := strings.TrimPrefix(it.name, resetPrefix)
			var m struct {
				At int64 `json:"at"`
			}
			json.Unmarshal(it.meta, &m)
			if c, ok := cfg.Resets[p]; ok && c.At == m.At {
				resets[p] = c
				continue
			}
			if settle || m.At > s.resetSeen[p] {
				fetch = append(fetch, it.name)
			}
		}
	}
	vals, err := s.bulkGet(ctx, fetch)
	if err != nil {
		return err
	}
	for name, v := range vals {
		switch {
		case strings.HasPrefix(name, shardPrefix):
			var sv shardValue
			if err := json.Unmarshal([]byte(v), &sv); err != nil {
				s.cfg.Logger.Warn("cfkv: skipping a malformed shard", "name", name)
				continue
			}
			keys := make(map[string]pool.Key, len(sv.Keys))
			for id, k := range sv.Keys {
				if k.ID == id && shardOf(id) == name {
					keys[id] = k
				}
			}
			exact[name] = configShard{V: sv.V, At: sv.At, Keys: keys}
		case strings.HasPrefix(name, tokensPrefix):
			id := strings.TrimPrefix(name, tokensPrefix)
			var t pool.ClientToken
			if err := json.Unmarshal([]byte(v), &t); err != nil || t.ID != id {
				continue
			}
			tokens[id] = t
		case strings.HasPrefix(name, resetPrefix):
			var stamps map[string]int64
			if err := json.Unmarshal([]byte(v), &stamps); err != nil {
				continue
			}
			r := configReset{Stamps: stamps}
			for _, at := range stamps {
				r.At = max(r.At, at)
			}
			resets[strings.TrimPrefix(name, resetPrefix)] = r
		}
	}
	s.mu.Lock()
	for name, sh := range exact {
		if _, read := vals[name]; read || fromCfg[name] {
			s.takeShardLocked(name, sh.Keys, sh.At)
			s.shardSeen[name] = shardVer[name]
		}
	}
	for p, r := range resets {
		s.mergeResetsLocked(p, r.Stamps)
	}
	// Keys of shards never written do not exist, unless this instance
	// wrote them lately (the list may lag behind).
	for id := range s.keys {
		if _, mine := s.recent[id]; !mine && !listedShards[shardOf(id)] {
			delete(s.keys, id)
			s.order = nil
		}
	}
	s.mu.Unlock()
	for id, t := range tokens {
		_, gone := s.deleted[id]
		_, mine := s.recent[id]
		if !gone && !mine {
			s.tokens[id] = t
		}
	}
	for id := range s.tokens {
		if _, mine := s.recent[id]; !mine && !seenTokens[id] {
			delete(s.tokens, id)
		}
	}
	if !settle {
		return nil
	}
	snap := &configValue{Schema: 2, Cleanup: s.cleanup, Rev: rev, Settled: true, At: s.cfg.Now().UnixNano(),
		Shards: map[string]configShard{}, Tokens: tokens, Resets: resets}
	for name := range listedShards {
		if sh, ok := exact[name]; ok {
			snap.Shards[name] = sh
		}
	}
	p, err := configPair(snap)
	if err == nil {
		err = s.bulkWrite(ctx, []pair{p})
	}
	if err != nil {
		// Another instance settles it, or this one at the next change.
		s.cfg.Logger.Warn("cfkv: writing the config snapshot failed", "err", err)
	}
	return nil
}
