package pool

import (
	"math"
	"slices"
	"time"
)

// Providers count rate limits and daily quotas per model: a 429 for one
// model says nothing about the key's other models. A model rest takes one
// (key, model) pair out of rotation, leaving the key serving its other
// models.

// ModelRest is one (key, model) pair at rest.
type ModelRest struct {
	Model  string
	Until  time.Time
	Reason string
}

// modelRest is a pair's rest as an Entry holds it.
type modelRest struct {
	until  int64 // unix nanoseconds
	reason string
}

// MaxModelLen bounds the model names the pool keeps rests for.
const MaxModelLen = 128

// maxModelRests bounds the pairs one key keeps at rest; past it the
// shortest rests are dropped.
const maxModelRests = 64

// restsFor reports whether e rests for model at now.
func (e *Entry) restsFor(model string, now int64) bool {
	m := e.modelRests()
	if m == nil || model == "" {
		return false
	}
	r, ok := (*m)[model]
	return ok && r.until > now
}

// restUntil returns until when e rests for model, or 0.
func (e *Entry) restUntil(model string, now int64) int64 {
	m := e.modelRests()
	if m == nil || model == "" {
		return 0
	}
	if r, ok := (*m)[model]; ok && r.until > now {
		return r.until
	}
	return 0
}

// ModelRests returns the key's (key, model) pairs at rest at now, sorted
// by model.
func (e *Entry) ModelRests(now time.Time) []ModelRest {
	m := e.modelRests()
	if m == nil {
		return nil
	}
	var out []ModelRest
	for model, r := range *m {
		if r.until > now.UnixNano() {
			out = append(out, ModelRest{Model: model, Until: time.Unix(0, r.until).UTC(), Reason: r.reason})
		}
	}
	slices.SortFunc(out, func(a, b ModelRest) int {
		if a.Model < b.Model {
			return -1
		}
		if a.Model > b.Model {
			return 1
		}
		return 0
	})
	return out
}

// AvailableFor reports whether the key can serve a request for model at t.
func (e *Entry) AvailableFor(model string, t time.Time) bool {
	return e.availableAt(t.UnixNano()) && !e.restsFor(model, t.UnixNano())
}

// CoolModel rests the (key, model) pair until the given time: no pick for
// model takes the key before, while its other models still serve. A later
// call with an earlier time does not shorten the rest. An empty model, or
// one longer than MaxModelLen, rests the whole key instead (see Cool).
func (p *Pool) CoolModel(e *Entry, model string, until time.Time, reason string) {
	if model == "" || len(model) > MaxModelLen {
		p.Cool(e, until, reason)
		return
	}
	u := until.UnixNano()
	now := p.now().UnixNano()
	rare := e.more()
	for {
		old := rare.models.Load()
		var cur map[string]modelRest
		if old != nil {
			cur = *old
		}
		if r, ok := cur[model]; ok && r.until >= u {
			return
		}
		next := make(map[string]modelRest, len(cur)+1)
		for k, r := range cur {
			if r.until > now {
				next[k] = r
			}
		}
		next[model] = modelRest{until: u, reason: reason}
		for len(next) > maxModelRests {
			var short string
			least := int64(math.MaxInt64)
			for k, r := range next {
				if k != model && r.until < least {
					short, least = k, r.until
				}
			}
			delete(next, short)
		}
		if rare.models.CompareAndSwap(old, &next) {
			break
		}
	}
	if s, ok := (*p.sets.Load())[e.Provider()]; ok {
		for {
			cur := s.modelRestsUntil.Load()
			if cur >= u || s.modelRestsUntil.CompareAndSwap(cur, u) {
				break
			}
		}
	}
}

// uncoolModels ends every model rest of e.
func (e *Entry) uncoolModels() {
	if r := e.rare.Load(); r != nil {
		r.models.Store(nil)
	}
}

// modelRests returns e's (key, model) rests, or nil.
func (e *Entry) modelRests() *map[string]modelRest {
	if r := e.rare.Load(); r != nil {
		return r.models.Load()
	}
	return nil
}

// ModelRestsActive reports whether any key of provider may rest for some
// model now: a relay that needs the request's model only to skip resting
// pairs can skip finding it when this is false. It is one atomic load.
func (p *Pool) ModelRestsActive(provider string) bool {
	s, ok := (*p.sets.Load())[provider]
	return ok && s.modelRestsUntil.Load() > p.now().UnixNano()
}

// PickFor is Pick for a request for model that has already tried the keys
// in tried: it never returns a key in tried or one whose pair with model
// rests. An empty model skips no pair. It tries the strategy first, then
// scans from a random place.
func (p *Pool) PickFor(provider, model string, strategy Strategy, tried []*Entry) *Entry {
	if model == "" || !p.ModelRestsActive(provider) {
		if len(tried) == 0 {
			return p.Pick(provider, strategy)
		}
		return p.PickExcept(provider, strategy, tried)
	}
	return p.pickExcept(provider, strategy, func(e *Entry, now int64) bool {
		return slices.Contains(tried, e) || e.restsFor(model, now)
	})
}

// NextAvailableFor is NextAvailable for a request for model: when the
// first key that could otherwise serve comes back from its rest and its
// (key, model) rest, whichever ends later.
func (p *Pool) NextAvailableFor(provider, model string) (time.Time, bool) {
	if model == "" {
		return p.NextAvailable(provider)
	}
	now := p.now().UnixNano()
	var first int64
	for _, e := range p.Entries(provider) {
		k := e.cfg.Load()
		if !k.servable() || k.maxReq > 0 && e.requests.Load() >= k.maxReq {
			continue
		}
		u := max(e.restsUntil(), e.restUntil(model, now))
		if u <= now {
			continue // it could serve; it only lost a race
		}
		if first == 0 || u < first {
			first = u
		}
	}
	if first == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, first), true
}

// Take acquires e itself for a request for model, as Pick would have: it
// fails if the key cannot serve now or its pair with model rests. The
// caller must call Finish on success. Sticky sessions use it to send a
// conversation back to the key that served it.
func (p *Pool) Take(e *Entry, model string) bool {
	now := p.now().UnixNano()
	if e.restsFor(model, now) {
		return false
	}
	var lim Limiter
	if s, ok := (*p.sets.Load())[e.Provider()]; ok {
		lim = s.snap.Load().lim
	}
	return e.acquire(now, lim)
}
