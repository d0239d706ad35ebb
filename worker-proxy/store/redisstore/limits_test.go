package redisstore

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/internal/redistest"
	"github.com/keypool/keypool/worker-proxy/limits"
)

type fakeClock struct{ t atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.t.Add(int64(d)) }

// Two instances sharing one pool share a token's windows exactly: what one
// takes, the other cannot.
func TestSharedLimitsAcrossInstances(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	p := fmt.Sprintf("lim%d:", prefixes.Add(1))
	a, b := openOn(t, srv, p), openOn(t, srv, p)
	t.Cleanup(func() { a.Close(); b.Close() })
	clock := &fakeClock{}
	clock.t.Store(time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC).UnixNano())
	la, lb := limits.New(clock.now), limits.New(clock.now)
	la.Share(a)
	lb.Share(b)
	lim := limits.Limits{RPM: 3, TPM: 150}
	for i, l := range []*limits.Limiter{la, lb, la} {
		if d := l.Admit("tok_1", lim); !d.OK {
			t.Fatalf("request %d: %+v", i+1, d)
		}
	}
	d := lb.Admit("tok_1", lim)
	if d.OK || d.Budget != limits.RPM || d.RetryAfter != 20*time.Second {
		t.Fatalf("4th request on the other instance: %+v, want refused by rpm for 20s", d)
	}
	clock.advance(20*time.Second - time.Microsecond)
	if d := la.Admit("tok_1", lim); d.OK {
		t.Fatal("just before the edge: admitted")
	}
	clock.advance(time.Microsecond)
	if d := la.Admit("tok_1", lim); !d.OK {
		t.Fatalf("at the edge: %+v", d)
	}
	// Tokens charged on one instance refuse on the other.
	clock.advance(time.Hour)
	la.AddTokens("tok_1", lim, 240)
	d = lb.Admit("tok_1", lim)
	if d.OK || d.Budget != limits.TPM || d.RetryAfter != 36400*time.Millisecond {
		t.Fatalf("after 240 of 150 tokens: %+v, want refused by tpm for 36.4s", d)
	}
	// A restarted instance (a new store and limiter) finds the windows.
	b.Close()
	b = openOn(t, srv, p)
	lb = limits.New(clock.now)
	lb.Share(b)
	if d := lb.Admit("tok_1", lim); d.OK || d.Budget != limits.TPM {
		t.Fatalf("after a restart: %+v, want still refused by tpm", d)
	}
	lb.Forget("tok_1")
	if d := la.Admit("tok_1", lim); !d.OK {
		t.Fatalf("after Forget: %+v", d)
	}
	if la.SharedFailures()+lb.SharedFailures() != 0 {
		t.Fatal("shared calls failed")
	}
}

// The shared windows decide exactly as the in-memory ones, step by step.
func TestSharedLimitsMatchLocal(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := openOn(t, srv, fmt.Sprintf("lim%d:", prefixes.Add(1)))
	t.Cleanup(func() { s.Close() })
	clock := &fakeClock{}
	clock.t.Store(time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC).UnixNano())
	local, shared := limits.New(clock.now), limits.New(clock.now)
	shared.Share(s)
	lim := limits.Limits{RPM: 3, RPD: 12, TPM: 150, TPD: 1000}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 400 {
		switch rng.IntN(3) {
		case 0:
			clock.advance(time.Duration(rng.IntN(30_000)) * time.Millisecond)
		case 1:
			n := int64(rng.IntN(200))
			local.AddTokens("tok", lim, n)
			shared.AddTokens("tok", lim, n)
		}
		dl, ds := local.Admit("tok", lim), shared.Admit("tok", lim)
		if dl != ds {
			t.Fatalf("step %d: local %+v, shared %+v", i, dl, ds)
		}
	}
}

// Under contention from two instances the shared windows admit exactly the
// budget.
func TestSharedLimitsConcurrent(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	p := fmt.Sprintf("lim%d:", prefixes.Add(1))
	a, b := openOn(t, srv, p), openOn(t, srv, p)
	t.Cleanup(func() { a.Close(); b.Close() })
	la, lb := limits.New(nil), limits.New(nil)
	la.Share(a)
	lb.Share(b)
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for i := range 8 {
		l := []*limits.Limiter{la, lb}[i%2]
		wg.Go(func() {
			for range 20 {
				if l.Admit("tok", limits.Limits{RPD: 50}).OK {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if admitted.Load() != 50 || la.SharedFailures()+lb.SharedFailures() != 0 {
		t.Fatalf("%d admitted of 160, want 50 (failures %d)", admitted.Load(), la.SharedFailures()+lb.SharedFailures())
	}
}
