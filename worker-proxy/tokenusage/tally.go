package tokenusage

import (
	"sort"
	"sync"
)

// Totals are requests and tokens counted under one name.
type Totals struct {
	Requests   int64
	Refused    int64 // requests refused before they went upstream
	Prompt     int64
	Completion int64
}

// Tally adds up Totals by name (a provider, a model, a client token) in
// memory. It keeps at most its limit of names; the others are counted under
// Other. It is safe for concurrent use.
type Tally struct {
	mu    sync.Mutex
	limit int
	m     map[string]*Totals
}

// Other is the name counting what a full Tally has no room for.
const Other = "other"

// NewTally returns an empty Tally keeping at most limit names (0: no limit).
func NewTally(limit int) *Tally { return &Tally{limit: limit, m: map[string]*Totals{}} }

// Add adds d to name's totals.
func (t *Tally) Add(name string, d Totals) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tot := t.m[name]
	if tot == nil {
		if t.limit > 0 && len(t.m) >= t.limit {
			name = Other
			tot = t.m[name]
		}
		if tot == nil {
			tot = &Totals{}
			t.m[name] = tot
		}
	}
	tot.Requests += d.Requests
	tot.Refused += d.Refused
	tot.Prompt += d.Prompt
	tot.Completion += d.Completion
}

// Get returns name's totals.
func (t *Tally) Get(name string) Totals {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tot := t.m[name]; tot != nil {
		return *tot
	}
	return Totals{}
}

// Named is one name's totals.
type Named struct {
	Name string
	Totals
}

// All returns every name's totals, sorted by name.
func (t *Tally) All() []Named {
	t.mu.Lock()
	out := make([]Named, 0, len(t.m))
	for name, tot := range t.m {
		out = append(out, Named{name, *tot})
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
