package schema2pre

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keypool/keypool/worker-proxy/pool"
)

// A usage slot's value, as KV holds it:
//
//	{"instances": {instance: {"instance", "updatedAt", "journalSeq",
//	                          "counts": counts, "errors": {key id: last error}}},
//	 "folded": {"counts": counts, "errors": {…}, "ids": {instance: {"at": unix ns, "seq": journal seq}}},
//	 "writtenAt": unix ns}
//
// counts is base64 (standard) of DEFLATE of one line per key id, sorted:
// "epoch requests successes failures lastUsed(unix ns) promptTokens
// completionTokens id\n" (the id strconv-quoted if it holds a newline or
// starts with a quote). At 10,000 keys a record's counts are about a
// tenth of the same counts as JSON, and cost a fraction of the time to
// read; a record whose counts did not change since the last read is not
// decoded again.

type slotWire struct {
	Instances map[string]recordWire `json:"instances"`
	Folded    *foldedWire           `json:"folded,omitempty"`
	WrittenAt int64                 `json:"writtenAt,omitempty"`
}

type recordWire struct {
	Instance   string                     `json:"instance"`
	UpdatedAt  time.Time                  `json:"updatedAt"`
	JournalSeq uint64                     `json:"journalSeq,omitempty"`
	Counts     string                     `json:"counts"`
	Errors     map[string]*pool.LastError `json:"errors,omitempty"`
}

type foldedWire struct {
	Counts string                     `json:"counts"`
	Errors map[string]*pool.LastError `json:"errors,omitempty"`
	IDs    map[string]foldedID        `json:"ids,omitempty"`
}

// MarshalJSON writes the slot in its compact form (above).
func (sl usageSlot) MarshalJSON() ([]byte, error) {
	w := slotWire{Instances: make(map[string]recordWire, len(sl.Instances)), WrittenAt: sl.WrittenAt}
	for inst, rec := range sl.Instances {
		c, errs := encodeCounts(rec.Keys)
		w.Instances[inst] = recordWire{Instance: rec.Instance, UpdatedAt: rec.UpdatedAt, JournalSeq: rec.JournalSeq, Counts: c, Errors: errs}
	}
	if f := sl.Folded; f != nil && (len(f.Keys) > 0 || len(f.IDs) > 0) {
		c, errs := encodeCounts(f.Keys)
		w.Folded = &foldedWire{Counts: c, Errors: errs, IDs: f.IDs}
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads the compact form.
func (sl *usageSlot) UnmarshalJSON(b []byte) error {
	s, _, err := decodeSlot(b, nil)
	if err != nil {
		return err
	}
	*sl = s
	return nil
}

// decodeSlot reads a slot's value, reusing the records of prev (may be
// nil) whose counts are unchanged; it returns the slot and the counts
// each record was decoded from. Reused records are shared with prev.
func decodeSlot(b []byte, prev *slotView) (usageSlot, map[string]string, error) {
	var w slotWire
	if err := json.Unmarshal(b, &w); err != nil {
		return usageSlot{}, nil, err
	}
	sl := usageSlot{Instances: make(map[string]usageRecord, len(w.Instances)), WrittenAt: w.WrittenAt}
	raws := make(map[string]string, len(w.Instances))
	for inst, rw := range w.Instances {
		raws[inst] = rw.Counts
		rec := usageRecord{Instance: rw.Instance, UpdatedAt: rw.UpdatedAt, JournalSeq: rw.JournalSeq}
		if prev != nil && prev.recRaw[inst] == rw.Counts {
			if old, ok := prev.records[inst]; ok {
				rec.Keys = old.Keys
				sl.Instances[inst] = rec
				continue
			}
		}
		keys, err := decodeCounts(rw.Counts, rw.Errors)
		if err != nil {
			return usageSlot{}, nil, fmt.Errorf("record of %s: %w", inst, err)
		}
		rec.Keys = keys
		sl.Instances[inst] = rec
	}
	sl.Folded = &foldedUsage{Keys: map[string]usageEntry{}, IDs: map[string]foldedID{}}
	if w.Folded != nil {
		raws[foldedRawKey] = w.Folded.Counts
		if w.Folded.IDs != nil {
			sl.Folded.IDs = w.Folded.IDs
		}
		if prev != nil && prev.recRaw[foldedRawKey] == w.Folded.Counts {
			sl.Folded.Keys = prev.folded.Keys
		} else {
			keys, err := decodeCounts(w.Folded.Counts, w.Folded.Errors)
			if err != nil {
				return usageSlot{}, nil, fmt.Errorf("folded counts: %w", err)
			}
			sl.Folded.Keys = keys
		}
	}
	return sl, raws, nil
}

// foldedRawKey names the folded sum's counts among a view's recRaw (not
// an instance id: those never hold a space).
const foldedRawKey = " folded"

// encodeCounts encodes a record's counts (above), and returns the last
// errors apart.
func encodeCounts(keys map[string]usageEntry) (string, map[string]*pool.LastError) {
	if len(keys) == 0 {
		return "", nil
	}
	var errs map[string]*pool.LastError
	var text bytes.Buffer
	text.Grow(len(keys) * 48)
	num := make([]byte, 0, 24)
	for _, id := range slices.Sorted(maps.Keys(keys)) {
		e := keys[id]
		var lu int64
		if !e.LastUsed.IsZero() {
			lu = e.LastUsed.UnixNano()
		}
		for _, n := range [...]int64{e.Epoch, e.Requests, e.Successes, e.Failures, lu, e.PromptTokens, e.CompletionTokens} {
			text.Write(strconv.AppendInt(num[:0], n, 10))
			text.WriteByte(' ')
		}
		name := id
		if strings.ContainsRune(id, '\n') || strings.HasPrefix(id, `"`) {
			name = strconv.Quote(id)
		}
		text.WriteString(name)
		text.WriteByte('\n')
		if e.LastError != nil {
			if errs == nil {
				errs = map[string]*pool.LastError{}
			}
			errs[id] = e.LastError
		}
	}
	var z bytes.Buffer
	fw, _ := flate.NewWriter(&z, flate.BestSpeed)
	fw.Write(text.Bytes())
	fw.Close()
	return base64.StdEncoding.EncodeToString(z.Bytes()), errs
}

// decodeCounts reads what encodeCounts wrote.
func decodeCounts(counts string, errs map[string]*pool.LastError) (map[string]usageEntry, error) {
	if counts == "" {
		return map[string]usageEntry{}, nil
	}
	z, err := base64.StdEncoding.DecodeString(counts)
	if err != nil {
		return nil, err
	}
	text, err := io.ReadAll(flate.NewReader(bytes.NewReader(z)))
	if err != nil {
		return nil, err
	}
	keys := make(map[string]usageEntry, bytes.Count(text, []byte{'\n'}))
	for len(text) > 0 {
		i := bytes.IndexByte(text, '\n')
		if i < 0 {
			return nil, fmt.Errorf("counts: unterminated line")
		}
		line := text[:i]
		text = text[i+1:]
		var n [7]int64
		for f := range n {
			j := bytes.IndexByte(line, ' ')
			if j < 0 {
				return nil, fmt.Errorf("counts: short line")
			}
			if n[f], err = parseInt(line[:j]); err != nil {
				return nil, err
			}
			line = line[j+1:]
		}
		id := string(line)
		if strings.HasPrefix(id, `"`) {
			if id, err = strconv.Unquote(id); err != nil {
				return nil, fmt.Errorf("counts: %w", err)
			}
		}
		e := usageEntry{Epoch: n[0], Requests: n[1], Successes: n[2], Failures: n[3], PromptTokens: n[5], CompletionTokens: n[6]}
		if n[4] != 0 {
			e.LastUsed = time.Unix(0, n[4]).UTC()
		}
		e.LastError = errs[id]
		keys[id] = e
	}
	return keys, nil
}

// parseInt reads a base-10 int64 without allocating.
func parseInt(b []byte) (int64, error) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, fmt.Errorf("counts: bad number %q", b)
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("counts: bad number %q", b)
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, nil
}

// SlotRequests returns the requests per key id that one usage slot's
// value (keypool/v2/usage/<n>) counts, its records and folded sum
// together, whatever their epoch: for tools and tests that read the
// namespace directly.
func SlotRequests(value string) (map[string]int64, error) {
	sl, err := parseSlot(value)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, rec := range sl.Instances {
		for id, e := range rec.Keys {
			out[id] += e.Requests
		}
	}
	for id, e := range sl.Folded.Keys {
		out[id] += e.Requests
	}
	return out, nil
}
