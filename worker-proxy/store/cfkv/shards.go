package cfkv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"time"

	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/store"
)

// shardValue is a shard's value: the keys whose id hashes to it, each
// with its revision (pool.Key.Revision).
type shardValue struct {
	At int64 `json:"at"` // when it was written, unix ns
	// V is its version, as in its metadata ("" in shards written before
	// the config snapshot).
	V    string              `json:"v,omitempty"`
	Keys map[string]pool.Key `json:"keys"`
}

// shardMeta is what a list shows of a shard: V changes with every write.
type shardMeta struct {
	V string `json:"v"`
	N int    `json:"n"`
}

// shardNames are the shards' entry names, by number.
var shardNames = func() (n [numShards]string) {
	for i := range n {
		n[i] = fmt.Sprintf("%s%02d", shardPrefix, i)
	}
	return n
}()

// shardOf names the shard holding key id: a stable hash (FNV-1a) of the id.
func shardOf(id string) string {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return shardNames[h%numShards]
}

// slotOf names the usage slot holding instance inst's record.
func slotOf(inst string) string {
	h := fnv.New32a()
	h.Write([]byte(inst))
	return fmt.Sprintf("%s%d", usagePrefix, h.Sum32()%numSlots)
}

// shardPair encodes a shard for a bulk write, with a new version; it
// refuses one over maxShardBytes.
func shardPair(name string, keys map[string]pool.Key, at time.Time) (pair, error) {
	if keys == nil {
		keys = map[string]pool.Key{}
	}
	ver := newVersion()
	v, err := json.Marshal(shardValue{At: at.UnixNano(), V: ver, Keys: keys})
	if err != nil {
		return pair{}, err
	}
	if len(v) > maxShardBytes {
		return pair{}, fmt.Errorf("shard %s would hold %d bytes, over the %d the store allows", name, len(v), maxShardBytes)
	}
	return pair{Key: name, Value: string(v), Metadata: shardMeta{V: ver, N: len(keys)}}, nil
}

// readShards reads the named shards as KV holds them now, and when each
// was written (unix ns); a shard never written is empty, written at 0.
// With withConfig it reads the config snapshot in the same request (nil
// when absent).
func (s *Store) readShards(ctx context.Context, names []string, withConfig bool) (map[string]map[string]pool.Key, map[string]int64, *configValue, error) {
	ask := names
	if withConfig {
		ask = append(slices.Clip(names), configName)
	}
	vals, err := s.bulkGet(ctx, ask)
	if err != nil {
		return nil, nil, nil, err
	}
	out := make(map[string]map[string]pool.Key, len(names))
	ats := make(map[string]int64, len(names))
	for _, name := range names {
		m := map[string]pool.Key{}
		if v, ok := vals[name]; ok {
			var sv shardValue
			if err := json.Unmarshal([]byte(v), &sv); err != nil {
				return nil, nil, nil, fmt.Errorf("shard %s is malformed: %w", name, err)
			}
			ats[name] = sv.At
			for id, k := range sv.Keys {
				if k.ID == id {
					m[id] = k
				}
			}
		}
		out[name] = m
	}
	var cfg *configValue
	if withConfig {
		cfg = parseConfig(vals[configName])
	}
	return out, ats, cfg, nil
}

// keepOwnLocked re-applies to a shard as read from KV, written at (unix
// ns), this instance's writes and deletes made after that, which it may
// not show yet (KV serves old values for about a minute): the merge never
// undoes them.
func (s *Store) keepOwnLocked(name string, m map[string]pool.Key, at int64) {
	for id, t := range s.recent {
		if k, ok := s.keys[id]; ok && shardOf(id) == name && t.UnixNano() > at {
			if cur, ok := m[id]; !ok || cur.Revision <= k.Revision {
				m[id] = k.Clone()
			}
		}
	}
	for id, t := range s.deleted {
		if shardOf(id) == name && t.UnixNano() > at {
			delete(m, id)
		}
	}
}

// PutKeys writes keys, all or none, refusing any whose known revision is
// not older (store.ErrConflict) and any second copy of a secret this
// instance knows of (store.ErrDuplicate).
//
// It is a read-merge-write per shard: the shards the keys hash to are
// read as KV holds them now, only the keys given here are replaced in
// them (with this instance's recent writes kept), and they go back with
// "rev" in one bulk request. A key whose revision in the shard (or in
// this instance's copy) is not older than the one given is a conflict.
// So importing any number of keys writes at most numShards+2 entries
// (the shards, "rev" and the snapshot).
func (s *Store) PutKeys(ctx context.Context, keys ...pool.Key) error {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	var fps store.Fingerprints
	for id, k := range s.keys {
		fps.Set(id, k.Secret)
	}
	if err := fps.CheckNew(keys); err != nil {
		return fmt.Errorf("cfkv: put keys: %w", err)
	}
	touched := map[string]bool{}
	for _, k := range keys {
		if k.ID == "" {
			return errors.New("cfkv: put keys: key with empty id")
		}
		touched[shardOf(k.ID)] = true
	}
	if len(keys) == 0 {
		return nil
	}
	names := slices.Sorted(maps.Keys(touched))
	shards, ats, base, err := s.readShards(ctx, names, true)
	if err != nil {
		return fmt.Errorf("cfkv: put keys: %w", err)
	}
	for _, k := range keys {
		known := int64(-1)
		if cur, ok := s.keys[k.ID]; ok {
			known = cur.Revision
		}
		if cur, ok := shards[shardOf(k.ID)][k.ID]; ok {
			known = max(known, cur.Revision)
		}
		if k.Revision > 0 && known >= k.Revision {
			return fmt.Errorf("cfkv: key %q: revision %d is not newer than %d: %w", k.ID, k.Revision, known, store.ErrConflict)
		}
	}
	s.mu.Lock()
	for _, name := range names {
		s.keepOwnLocked(name, shards[name], ats[name])
	}
	s.mu.Unlock()
	for _, k := range keys {
		shards[shardOf(k.ID)][k.ID] = k.Clone()
	}
	rev := newRev(s.cfg.Now())
	if err := s.writeShards(ctx, names, shards, rev, base); err != nil {
		return fmt.Errorf("cfkv: put keys: %w", err)
	}
	now := s.cfg.Now()
	s.mu.Lock()
	for _, k := range keys {
		if _, ok := s.keys[k.ID]; !ok {
			s.order = nil
		}
		s.keys[k.ID] = k.Clone()
	}
	s.mu.Unlock()
	for _, k := range keys {
		s.recent[k.ID] = now
		delete(s.deleted, k.ID)
	}
	return nil
}

// writeShards writes the named shards, "rev" and the config snapshot
// (base, as read with the shards, with these shards in it) in one bulk
// request.
func (s *Store) writeShards(ctx context.Context, names []string, shards map[string]map[string]pool.Key, rev string, base *configValue) error {
	pairs := make([]pair, 0, len(names)+2)
	next := s.nextConfig(base, rev)
	now := s.cfg.Now()
	for _, name := range names {
		p, err := shardPair(name, shards[name], now)
		if err != nil {
			return err
		}
		pairs = append(pairs, p)
		next.Shards[name] = configShard{V: p.Metadata.(shardMeta).V, At: now.UnixNano(), Keys: shards[name]}
	}
	cp, err := configPair(next)
	if err != nil {
		return err
	}
	pairs = append(pairs, pair{Key: revName, Value: rev}, cp)
	if err := s.bulkWrite(ctx, pairs); err != nil {
		return err
	}
	s.wroteConfig(rev)
	// What was read is now known: other instances' edits in these shards
	// come into this instance's copy.
	s.mu.Lock()
	for _, p := range pairs[:len(names)] {
		s.shardSeen[p.Key] = p.Metadata.(shardMeta).V
		s.takeShardLocked(p.Key, shards[p.Key], 0)
	}
	s.mu.Unlock()
	return nil
}

// DeleteKeys removes keys (their usage goes with this instance's next
// usage write, and is no longer counted at once): a read-merge-write of
// their shards, as PutKeys.
func (s *Store) DeleteKeys(ctx context.Context, ids ...string) error {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	touched := map[string]bool{}
	for _, id := range ids {
		if id != "" {
			touched[shardOf(id)] = true
		}
	}
	if len(touched) == 0 {
		return nil
	}
	names := slices.Sorted(maps.Keys(touched))
	shards, ats, base, err := s.readShards(ctx, names, true)
	if err != nil {
		return fmt.Errorf("cfkv: delete keys: %w", err)
	}
	s.mu.Lock()
	for _, name := range names {
		s.keepOwnLocked(name, shards[name], ats[name])
	}
	s.mu.Unlock()
	for _, id := range ids {
		delete(shards[shardOf(id)], id)
	}
	rev := newRev(s.cfg.Now())
	if err := s.writeShards(ctx, names, shards, rev, base); err != nil {
		return fmt.Errorf("cfkv: delete keys: %w", err)
	}
	now := s.cfg.Now()
	s.mu.Lock()
	for _, id := range ids {
		delete(s.keys, id)
		s.order = nil
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
	return nil
}

// takeShardLocked makes a shard as read from KV, written at (unix ns),
// this instance's copy of its keys, except for this instance's writes and
// deletes made after it was written (KV may serve an older shard for
// about a minute). at 0: the shard was just read and written back here.
func (s *Store) takeShardLocked(name string, keys map[string]pool.Key, at int64) {
	newer := func(id string) bool { // this instance changed id after the shard was written
		if at == 0 {
			return false
		}
		t, ok := s.recent[id]
		if !ok {
			t, ok = s.deleted[id]
		}
		return ok && t.UnixNano() > at
	}
	for id := range s.keys {
		if _, ok := keys[id]; !ok && shardOf(id) == name && !newer(id) {
			delete(s.keys, id) // deleted by another instance
			s.order = nil
		}
	}
	for id, k := range keys {
		if k.ID != id || shardOf(id) != name || newer(id) {
			continue
		}
		if _, gone := s.deleted[id]; gone && at == 0 {
			continue
		}
		if _, ok := s.keys[id]; !ok {
			s.order = nil
		}
		s.keys[id] = k
	}
}
