package schema2pre

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"
)

// Folding (see the package documentation): a record not updated for
// foldAfter is added into its slot's folded sum by the next writer of the
// slot; the folded instance ids are kept foldedIDsKept, so that an
// instance folded while alive sees it and stops counting what was folded.
const (
	// minFoldAfter is the least time a record must go without an update
	// before it is folded; foldAfter is the longer of it and twice the
	// flush interval, so an instance that writes on its interval is never
	// folded.
	minFoldAfter = 2 * time.Hour
	// countWindow: the instances whose record was written in the last
	// countWindow count for the stretch of the flush interval.
	countWindow = 2 * time.Hour
	// foldedIDsKept is how long a slot remembers which instances it folded.
	foldedIDsKept = 7 * 24 * time.Hour
	// writtenKept is how many of its last writes an instance remembers,
	// to take the one that was folded back out of its own record.
	writtenKept = 2
)

// usageSlot is a usage slot's value: the records of the instances whose
// id hashes to it, each written only by its instance (a read-merge-write
// of the slot that replaces its own record and keeps the others'), and
// the folded sum of the records of instances gone from it.
type usageSlot struct {
	Instances map[string]usageRecord `json:"instances"`
	Folded    *foldedUsage           `json:"folded,omitempty"`
	// WrittenAt is when the slot was written (unix ns): a read of an older
	// value than one already read is a stale read, and is ignored whole.
	WrittenAt int64 `json:"writtenAt,omitempty"`
}

// foldedUsage is the sum of the records folded into a slot.
type foldedUsage struct {
	Keys map[string]usageEntry `json:"keys"`
	// IDs are the instances folded in the last foldedIDsKept: when their
	// record was written (unix ns) and the journal record it included.
	IDs map[string]foldedID `json:"ids,omitempty"`
}

type foldedID struct {
	At  int64  `json:"at"`
	Seq uint64 `json:"seq,omitempty"`
}

// slotView is a slot as this instance last read or wrote it, without
// this instance's own record.
type slotView struct {
	raw       string // the value as read ("" when absent): an equal read is not parsed again
	writtenAt int64
	records   map[string]usageRecord
	folded    foldedUsage
	// recRaw holds the counts each record and the folded sum were
	// decoded from (none after an own write): a record whose counts did
	// not change is not decoded again.
	recRaw map[string]string
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
	if v != "" {
		var err error
		if sl, _, err = decodeSlot([]byte(v), nil); err != nil {
			return sl, err
		}
	}
	if sl.Instances == nil {
		sl.Instances = map[string]usageRecord{}
	}
	for inst, rec := range sl.Instances {
		if rec.Keys == nil {
			rec.Keys = map[string]usageEntry{}
			sl.Instances[inst] = rec
		}
	}
	if sl.Folded == nil {
		sl.Folded = &foldedUsage{}
	}
	if sl.Folded.Keys == nil {
		sl.Folded.Keys = map[string]usageEntry{}
	}
	if sl.Folded.IDs == nil {
		sl.Folded.IDs = map[string]foldedID{}
	}
	return sl, nil
}

// refreshUsage reads every usage slot (numSlots reads, whatever the
// number of instances) and takes in what changed since the last read: a
// slot whose value is the one already read is not parsed again. With all
// set (Load) every slot is taken, and this instance's own record is kept
// for Load to adopt. Otherwise the own record is checked: written again
// if a concurrent write of its slot lost it, its folded part taken out
// if it was folded. It reports whether anything changed. Called under
// callMu.
func (s *Store) refreshUsage(ctx context.Context, all bool) (bool, error) {
	names := slotNames()
	vals, err := s.bulkGetJSON(ctx, names)
	if err != nil {
		return false, err
	}
	s.lastUsage = s.cfg.Now()
	changed := false
	for _, name := range names {
		v := vals[name]
		view := s.slots[name]
		if !all && view != nil && view.raw == v {
			continue
		}
		sl, raws, err := decodeSlotValue(v, view)
		if err != nil {
			s.cfg.Logger.Warn("cfkv: skipping a malformed usage slot", "name", name)
			continue
		}
		if view != nil && sl.WrittenAt < view.writtenAt {
			continue // a stale read: KV served an older value than one seen
		}
		s.takeSlot(name, sl, &slotView{raw: v, writtenAt: sl.WrittenAt, records: sl.Instances, folded: *sl.Folded, recRaw: raws}, all)
		changed = true
	}
	return changed, nil
}

// decodeSlotValue is decodeSlot of a value as read, "" when absent.
func decodeSlotValue(v string, prev *slotView) (usageSlot, map[string]string, error) {
	if v == "" {
		sl, err := parseSlot("")
		return sl, nil, err
	}
	return decodeSlot([]byte(v), prev)
}

// takeSlot makes view, parsed as sl, this instance's view of slot name.
// Called under callMu.
func (s *Store) takeSlot(name string, sl usageSlot, view *slotView, all bool) {
	if name == slotOf(s.cfg.InstanceID) {
		if all {
			if rec, ok := sl.Instances[s.cfg.InstanceID]; ok {
				s.adopt = &rec
			}
			if id, ok := sl.Folded.IDs[s.cfg.InstanceID]; ok && !s.loaded {
				// Folded before this start: nothing of it is in own.
				s.rebased = max(s.rebased, id.At)
				s.foldedSeq = max(s.foldedSeq, id.Seq)
			}
		} else {
			s.checkOwn(sl)
		}
	}
	delete(view.records, s.cfg.InstanceID)
	delete(view.recRaw, s.cfg.InstanceID)
	s.slots[name] = view
}

// checkOwn compares the own record with the own slot as read. If the slot
// folded the own record (this instance went without a write for
// foldAfter), the folded copy's counts are taken out of own, which from
// then on counts only what came after it. If the slot holds an older copy
// than the last one written, or none, a concurrent read-merge-write by
// another instance lost it, and the record is marked for writing again,
// once KV's propagation delay has passed. Called under callMu.
func (s *Store) checkOwn(sl usageSlot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, present := sl.Instances[s.cfg.InstanceID]
	if id, ok := sl.Folded.IDs[s.cfg.InstanceID]; ok && !present && id.At > s.rebased {
		s.rebaseLocked(id)
		return
	}
	if s.own.UpdatedAt.IsZero() || s.cfg.Now().Sub(s.lastFlush) <= s.cfg.StaleWindow {
		return
	}
	if !present || rec.UpdatedAt.Before(s.own.UpdatedAt) {
		s.cfg.Logger.Info("cfkv: this instance's usage record was overwritten by a concurrent write of its slot; writing it again")
		s.ownDirty = true
		s.ownGen++
	}
}

// rebaseLocked takes the counts of the own record folded as id out of
// own: they are in the slot's folded sum now. The copy folded is one of
// the last writtenKept written; if none matches (not written by this
// process), nothing is taken out. Called under callMu and mu.
func (s *Store) rebaseLocked(id foldedID) {
	s.rebased = id.At
	s.foldedSeq = max(s.foldedSeq, id.Seq)
	for _, w := range s.written {
		if w.UpdatedAt.UnixNano() != id.At {
			continue
		}
		for kid, e := range w.Keys {
			if o, ok := s.own.Keys[kid]; ok {
				s.own.Keys[kid] = subEntry(o, e)
			}
		}
		s.written = nil // what they hold is folded now
		s.own.UpdatedAt = time.Time{}
		for _, e := range s.own.Keys {
			if e.Requests != 0 || e.Successes != 0 || e.Failures != 0 || e.PromptTokens != 0 || e.CompletionTokens != 0 {
				// Counted after the copy folded, and not in KV: the
				// write that had them was lost, or is to come.
				s.ownDirty = true
				s.ownGen++
				break
			}
		}
		s.cfg.Logger.Info("cfkv: this instance's usage record was folded into its slot's sum; counting on from it")
		return
	}
	s.written = nil
	s.cfg.Logger.Warn("cfkv: this instance's usage record was folded, from a copy this process did not write; its counts may show twice until the next reset")
}

// subEntry is a with b's counts taken out, when both are of one epoch
// (b's counts of an older epoch do not count anyway).
func subEntry(a, b usageEntry) usageEntry {
	if a.Epoch != b.Epoch {
		return a
	}
	a.Requests -= b.Requests
	a.Successes -= b.Successes
	a.Failures -= b.Failures
	a.PromptTokens -= b.PromptTokens
	a.CompletionTokens -= b.CompletionTokens
	return a
}

// foldAfter is how long a record must go without an update before it is
// folded: twice the flush interval, at least minFoldAfter, so an instance
// that writes on its interval is not folded.
func (s *Store) foldAfter() time.Duration {
	return max(minFoldAfter, 2*s.interval)
}

// flushInterval is how often this instance writes its usage: the
// configured interval, stretched so that the instances seen writing in
// the last countWindow write at most usageWritesPerDay records a day
// together. The window is fixed: one that grew with the interval would
// count more gone instances, stretch the interval more, and so on
// without end while instances come and go. Called under callMu.
func (s *Store) flushInterval(now time.Time) time.Duration {
	const win = countWindow
	n := 1
	for _, v := range s.slots {
		for _, rec := range v.records {
			if now.Sub(rec.UpdatedAt) < win {
				n++
			}
		}
	}
	s.interval = max(s.cfg.UsageFlushInterval, 24*time.Hour*time.Duration(n)/usageWritesPerDay)
	return s.interval
}

// flushOwn writes this instance's usage record into its slot if it
// changed and is due (or force), then drops the journal records it
// covers: a read of the slot, the own record replaced in it, one write.
// Without a journal, the first write is due Config.UsageFlushInterval
// (not stretched) after Open; with one, at once. Called under callMu.
func (s *Store) flushOwn(ctx context.Context, force bool) error {
	now := s.cfg.Now()
	interval := s.flushInterval(now)
	s.mu.Lock()
	due := now.Sub(s.lastFlush) >= interval
	if s.lastFlush.IsZero() && !s.started.IsZero() {
		due = now.Sub(s.started) >= s.cfg.UsageFlushInterval
	}
	if !s.ownDirty || !force && !due {
		s.mu.Unlock()
		return nil
	}
	flushed := s.own.JournalSeq
	s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	rec, err := s.writeOwn(ctx, now)
	if err != nil {
		if s.journal != nil {
			// While KV is down the journal would grow by a record per
			// pool flush: fold what this write would have covered.
			s.mu.Lock()
			seq := s.seq
			s.mu.Unlock()
			if err := s.journal.Merge(flushed, seq, s.cfg.InstanceID); err != nil {
				s.cfg.Logger.Warn("cfkv: compacting the usage journal failed", "err", err)
			}
		}
		return fmt.Errorf("cfkv: write usage: %w", err)
	}
	if s.journal != nil {
		if err := s.journal.Compact(rec.JournalSeq); err != nil {
			s.cfg.Logger.Warn("cfkv: compacting the usage journal failed", "err", err)
		}
	}
	return nil
}

// writeOwn is the read-merge-write of the own slot: it reads the slot,
// takes out of own what was folded of it, folds the records gone for
// foldAfter, puts in a copy of own and writes the slot. It returns the
// record written. Called under callMu.
func (s *Store) writeOwn(ctx context.Context, now time.Time) (usageRecord, error) {
	name := slotOf(s.cfg.InstanceID)
	vals, err := s.bulkGetJSON(ctx, []string{name})
	if err != nil {
		return usageRecord{}, err
	}
	sl, err := parseSlot(vals[name])
	if err != nil {
		return usageRecord{}, fmt.Errorf("usage slot %s is malformed: %w", name, err)
	}
	if _, present := sl.Instances[s.cfg.InstanceID]; !present {
		if id, ok := sl.Folded.IDs[s.cfg.InstanceID]; ok && id.At > s.rebased {
			s.mu.Lock()
			s.rebaseLocked(id)
			s.mu.Unlock()
		}
	}
	foldSlot(&sl, s.cfg.InstanceID, now, s.foldAfter())
	s.mu.Lock()
	rec := s.own
	rec.Keys = maps.Clone(s.own.Keys)
	rec.UpdatedAt, rec.JournalSeq = now, s.seq
	gen := s.ownGen
	s.mu.Unlock()
	sl.Instances[s.cfg.InstanceID] = rec
	sl.WrittenAt = now.UnixNano()
	v, err := json.Marshal(sl)
	if err != nil {
		return usageRecord{}, err
	}
	if err := s.bulkWrite(ctx, []pair{{Key: name, Value: string(v), Metadata: map[string]int64{"updatedAt": now.UnixNano()}}}); err != nil {
		return usageRecord{}, err
	}
	s.mu.Lock()
	s.own.UpdatedAt, s.own.JournalSeq, s.lastFlush = now, rec.JournalSeq, now
	if s.ownGen == gen {
		s.ownDirty = false
	}
	s.written = append(s.written, rec)
	if len(s.written) > writtenKept {
		s.written = s.written[len(s.written)-writtenKept:]
	}
	s.mu.Unlock()
	s.takeSlot(name, sl, &slotView{raw: string(v), writtenAt: sl.WrittenAt, records: sl.Instances, folded: *sl.Folded}, false)
	return rec, nil
}

// foldSlot folds into sl's sum the records, other than keep's, not
// updated for foldAfter, and forgets the folded ids older than
// foldedIDsKept. It is a function of the slot's value alone, so two
// instances folding the same value write the same sum, and a fold lost
// to a concurrent write of the slot leaves the records where they were:
// nothing counts twice or goes missing.
func foldSlot(sl *usageSlot, keep string, now time.Time, foldAfter time.Duration) {
	for inst, rec := range sl.Instances {
		if inst == keep || now.Sub(rec.UpdatedAt) <= foldAfter {
			continue
		}
		for id, e := range rec.Keys {
			sl.Folded.Keys[id] = mergeEntry(sl.Folded.Keys[id], e)
		}
		sl.Folded.IDs[inst] = foldedID{At: rec.UpdatedAt.UnixNano(), Seq: rec.JournalSeq}
		delete(sl.Instances, inst)
	}
	for inst, id := range sl.Folded.IDs {
		if now.Sub(time.Unix(0, id.At)) > foldedIDsKept {
			delete(sl.Folded.IDs, inst)
		}
	}
}
