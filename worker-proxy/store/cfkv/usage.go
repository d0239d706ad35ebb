package cfkv

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// usageSlot is a usage slot's value: the records of the instances whose
// id hashes to it, each written only by its instance (a read-merge-write
// of the slot that replaces its own record and keeps the others').
type usageSlot struct {
	Instances map[string]usageRecord `json:"instances"`
}

func slotNames() []string {
	names := make([]string, numSlots)
	for i := range names {
		names[i] = fmt.Sprintf("%s%d", usagePrefix, i)
	}
	return names
}

func parseSlot(v string) (usageSlot, error) {
	var sl usageSlot
	if err := json.Unmarshal([]byte(v), &sl); err != nil {
		return sl, err
	}
	if sl.Instances == nil {
		sl.Instances = map[string]usageRecord{}
	}
	return sl, nil
}

// refreshUsage reads every usage slot (numSlots reads, whatever the
// number of instances) and takes in the other instances' records. With
// all set (Load) this instance's own record is taken too, into others,
// for Load to adopt. Otherwise, if KV's copy of the own record is older
// than this instance's last write, a concurrent read-merge-write of its
// slot by another instance lost it, and the record is marked for writing
// again. Called under callMu.
func (s *Store) refreshUsage(ctx context.Context, all bool) error {
	vals, err := s.bulkGet(ctx, slotNames())
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for name, v := range vals {
		sl, err := parseSlot(v)
		if err != nil {
			s.cfg.Logger.Warn("cfkv: skipping a malformed usage slot", "name", name)
			continue
		}
		for inst, rec := range sl.Instances {
			if rec.Keys == nil {
				rec.Keys = map[string]usageEntry{}
			}
			if inst == s.cfg.InstanceID && !all {
				s.checkOwnLanded(rec)
				continue
			}
			seen[inst] = true
			if cur, ok := s.others[inst]; ok && cur.UpdatedAt.After(rec.UpdatedAt) {
				continue // a stale read
			}
			s.others[inst] = rec
		}
	}
	for inst := range s.others {
		if !seen[inst] {
			delete(s.others, inst)
		}
	}
	s.lastUsage = s.cfg.Now()
	return nil
}

// checkOwnLanded marks the own record for writing again when KV holds an
// older copy than the last one written, once KV's propagation delay has
// passed.
func (s *Store) checkOwnLanded(rec usageRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec.UpdatedAt.Before(s.own.UpdatedAt) && s.cfg.Now().Sub(s.lastFlush) > s.cfg.StaleWindow {
		s.cfg.Logger.Info("cfkv: this instance's usage record was overwritten by a concurrent write of its slot; writing it again")
		s.ownDirty = true
		s.ownGen++
	}
}

// flushInterval is how often this instance writes its usage: the
// configured interval, stretched so that the instances seen writing in
// the last day write at most usageWritesPerDay records a day together.
func (s *Store) flushInterval(now time.Time) time.Duration {
	n := 1
	for _, rec := range s.others {
		if now.Sub(rec.UpdatedAt) < 24*time.Hour {
			n++
		}
	}
	return max(s.cfg.UsageFlushInterval, 24*time.Hour*time.Duration(n)/usageWritesPerDay)
}

// flushOwn writes this instance's usage record into its slot if it
// changed and is due (or force), then drops the journal records it
// covers: a read of the slot, the own record replaced in it, one write.
// Called under callMu.
func (s *Store) flushOwn(ctx context.Context, force bool) error {
	now := s.cfg.Now()
	s.mu.Lock()
	if !s.ownDirty || !force && now.Sub(s.lastFlush) < s.flushInterval(now) {
		s.mu.Unlock()
		return nil
	}
	rec := s.own
	rec.Keys = make(map[string]usageEntry, len(s.own.Keys))
	for id, e := range s.own.Keys {
		rec.Keys[id] = e
	}
	rec.UpdatedAt, rec.JournalSeq = now, s.seq
	gen, flushed := s.ownGen, s.own.JournalSeq
	s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	err := s.writeOwn(ctx, rec, now)
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

// writeOwn is the read-merge-write of the own slot.
func (s *Store) writeOwn(ctx context.Context, rec usageRecord, now time.Time) error {
	name := slotOf(s.cfg.InstanceID)
	vals, err := s.bulkGet(ctx, []string{name})
	if err != nil {
		return err
	}
	sl := usageSlot{Instances: map[string]usageRecord{}}
	if v, ok := vals[name]; ok {
		if sl, err = parseSlot(v); err != nil {
			return fmt.Errorf("usage slot %s is malformed: %w", name, err)
		}
	}
	for inst, r := range sl.Instances {
		if inst != s.cfg.InstanceID {
			if cur, ok := s.others[inst]; !ok || !cur.UpdatedAt.After(r.UpdatedAt) {
				s.others[inst] = r
			}
		}
	}
	sl.Instances[s.cfg.InstanceID] = rec
	v, err := json.Marshal(sl)
	if err != nil {
		return err
	}
	return s.bulkWrite(ctx, []pair{{Key: name, Value: string(v), Metadata: map[string]int64{"updatedAt": now.UnixNano()}}})
}
