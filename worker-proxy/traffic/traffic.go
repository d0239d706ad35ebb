// Package traffic counts the requests a proxy instance relays, per provider
// and per minute, over the last day, in memory: the data behind the
// dashboard's requests-over-time chart. It builds for js/wasm.
package traffic

import (
	"sort"
	"sync"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
)

// Window is how far back the counts go, in one-minute buckets.
const Window = 24 * 60

// Outcome is how one client request ended.
type Outcome int

const (
	// Success: the client got a 2xx/3xx answer, complete.
	Success Outcome = iota
	// Error: an error status, or a response broken mid-way.
	Error
	// Unserved: no key could serve (503), counted as an error too.
	Unserved
	// Abandoned: the client went away first.
	Abandoned
)

// Counter records outcomes. The zero value is not usable; call New.
// It is safe for concurrent use.
type Counter struct {
	now   func() time.Time
	since time.Time

	mu    sync.Mutex
	rings map[string]*ring
}

// ring holds one provider's buckets; slot i belongs to minute[i] (minutes
// since the epoch), so a stale slot is recognised and cleared on reuse.
type ring struct {
	minute  [Window]int64
	buckets [Window]adminapi.TrafficBucket
}

// New returns a Counter reading the time from now (time.Now if nil).
func New(now func() time.Time) *Counter {
	if now == nil {
		now = time.Now
	}
	return &Counter{now: now, since: now(), rings: map[string]*ring{}}
}

// Record counts one finished client request of provider that needed
// retries extra upstream attempts.
func (c *Counter) Record(provider string, o Outcome, retries int) {
	m := c.now().Unix() / 60
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rings[provider]
	if r == nil {
		r = new(ring)
		c.rings[provider] = r
	}
	i := m % Window
	if r.minute[i] != m {
		r.minute[i], r.buckets[i] = m, adminapi.TrafficBucket{}
	}
	b := &r.buckets[i]
	b.Requests++
	b.Retries += int64(retries)
	switch o {
	case Success:
		b.Success++
	case Error:
		b.Errors++
	case Unserved:
		b.Errors++
		b.Unserved++
	}
}

// Series returns the last minutes (1..Window) one-minute buckets of every
// provider that has counted anything, ending with the current minute,
// providers sorted by name.
func (c *Counter) Series(minutes int) adminapi.TrafficResponse {
	minutes = min(max(minutes, 1), Window)
	last := c.now().Unix() / 60
	first := last - int64(minutes) + 1
	out := adminapi.TrafficResponse{
		BucketSeconds: 60,
		Start:         *adminapi.FormatTime(time.Unix(first*60, 0)),
		Since:         *adminapi.FormatTime(c.since),
		Providers:     []adminapi.ProviderTraffic{},
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, r := range c.rings {
		p := adminapi.ProviderTraffic{Provider: name, Buckets: make([]adminapi.TrafficBucket, minutes)}
		for m := first; m <= last; m++ {
			if i := m % Window; r.minute[i] == m {
				p.Buckets[m-first] = r.buckets[i]
			}
		}
		out.Providers = append(out.Providers, p)
	}
	sort.Slice(out.Providers, func(i, j int) bool { return out.Providers[i].Provider < out.Providers[j].Provider })
	return out
}
