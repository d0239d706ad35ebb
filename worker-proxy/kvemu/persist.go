package kvemu

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
)

// snapshot is the file format of Save and Load.
type snapshot struct {
	Accounts map[string][]snapshotNamespace `json:"accounts"`
}

type snapshotNamespace struct {
	ID    string        `json:"id"`
	Title string        `json:"title"`
	Keys  []snapshotKey `json:"keys"`
}

type snapshotKey struct {
	Name       string          `json:"name"`
	Value      []byte          `json:"value"` // base64
	Metadata   json.RawMessage `json:"metadata,omitempty"`
	Expiration int64           `json:"expiration,omitempty"`
}

// Save writes every namespace and the newest state of every live key as
// JSON. Pending staleness, counters, quotas and faults are not saved.
func (e *Emulator) Save(w io.Writer) error {
	e.mu.Lock()
	now := e.now()
	snap := snapshot{Accounts: make(map[string][]snapshotNamespace)}
	for accID, a := range e.accounts {
		for _, ns := range a.namespaces {
			sn := snapshotNamespace{ID: ns.id, Title: ns.title, Keys: []snapshotKey{}}
			for name := range ns.keys {
				if v, ok := ns.latest(name, now); ok {
					sn.Keys = append(sn.Keys, snapshotKey{Name: name, Value: v.value, Metadata: v.meta, Expiration: v.expiration})
				}
			}
			slices.SortFunc(sn.Keys, func(a, b snapshotKey) int { return cmp.Compare(a.Name, b.Name) })
			snap.Accounts[accID] = append(snap.Accounts[accID], sn)
		}
		slices.SortFunc(snap.Accounts[accID], func(a, b snapshotNamespace) int { return cmp.Compare(a.ID, b.ID) })
	}
	e.mu.Unlock()
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(snap)
}

// Load adds the namespaces and keys of a Save to the emulator, replacing
// namespaces with the same id. Loaded keys are visible at once.
func (e *Emulator) Load(r io.Reader) error {
	var snap snapshot
	if err := json.NewDecoder(r).Decode(&snap); err != nil {
		return fmt.Errorf("kvemu: load: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	old := now.Add(-e.staleFor)
	for accID, nss := range snap.Accounts {
		a := e.account(accID)
		for _, sn := range nss {
			if sn.ID == "" {
				return fmt.Errorf("kvemu: load: namespace %q has no id", sn.Title)
			}
			ns := &namespace{id: sn.ID, title: sn.Title, keys: make(map[string]*entry, len(sn.Keys))}
			for _, k := range sn.Keys {
				ns.keys[k.Name] = &entry{versions: []version{{at: old, value: k.Value, meta: k.Metadata, expiration: k.Expiration}}}
			}
			a.namespaces[ns.id] = ns
		}
	}
	return nil
}
