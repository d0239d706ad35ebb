package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keypool/keypool/worker-proxy/internal/redistest"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/store"
)

// evalCalls is how many script calls the server has run so far.
func evalCalls(t *testing.T, srv *redistest.Server) int {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	info, err := c.Info(t.Context(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.SplitSeq(info, "\n") {
		for _, cmd := range []string{"cmdstat_evalsha:calls=", "cmdstat_eval:calls="} {
			if rest, ok := strings.CutPrefix(line, cmd); ok {
				v, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
				n += v
			}
		}
	}
	return n
}

// Two stores (two instances) race 640 Acquire calls on one key with max
// 300: exactly 300 succeed, each count from 1 to 300 is answered once,
// the rest are told the key is full; concurrent calls share script calls;
// a deleted or unknown key is refused.
func TestAcquireConcurrentExact(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	p := fmt.Sprintf("acq%d:", prefixes.Add(1))
	a, b := openOn(t, srv, p), openOn(t, srv, p)
	t.Cleanup(func() { a.Close(); b.Close() })
	key := pool.Key{ID: "k1", Provider: "openai", Secret: "sk-test-acquire-0001", IsActive: true, MaxRequests: 300}
	if err := a.PutKeys(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	before := evalCalls(t, srv)
	const calls = 640
	var (
		mu     sync.Mutex
		counts []int64
		full   int
		wg     sync.WaitGroup
	)
	for i := range 64 {
		s := []*Store{a, b}[i%2]
		wg.Go(func() {
			for range calls / 64 {
				n, ok, err := s.Acquire(t.Context(), "k1", 300)
				mu.Lock()
				switch {
				case err != nil:
					t.Errorf("Acquire: %v", err)
				case ok:
					counts = append(counts, n)
				case n != 300:
					t.Errorf("refused with count %d, want 300", n)
				default:
					full++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(counts)
	if len(counts) != 300 || full != calls-300 || counts[0] != 1 || counts[299] != 300 || len(slices.Compact(counts)) != 300 {
		t.Fatalf("%d accepted (counts %v…), %d full; want 300 with counts 1..300 once each and %d full", len(counts), counts[:min(5, len(counts))], full, calls-300)
	}
	if scripts := evalCalls(t, srv) - before; scripts >= calls {
		t.Fatalf("%d script calls for %d concurrent Acquire calls: none were batched", scripts, calls)
	} else {
		t.Logf("%d concurrent Acquire calls took %d script calls", calls, scripts)
	}
	if _, ok, err := a.Acquire(t.Context(), "no-such-key", 10); ok || err != nil {
		t.Fatalf("Acquire of an unknown key: ok %t, %v; want refused", ok, err)
	}
}

// A caller's deadline bounds its wait in a batch even when Redis hangs.
func TestAcquireDeadlineWhileRedisHangs(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := openOn(t, srv, fmt.Sprintf("acq%d:", prefixes.Add(1)))
	t.Cleanup(func() { s.Close() })
	if err := s.PutKeys(t.Context(), pool.Key{ID: "k1", Provider: "openai", Secret: "sk-test-acquire-0002", IsActive: true, MaxRequests: 10}); err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	// CLIENT PAUSE holds every client's commands for 1.5 s.
	if err := c.Do(t.Context(), "CLIENT", "PAUSE", 1500, "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, ok, err := s.Acquire(ctx, "k1", 10)
	if took := time.Since(start); err == nil || ok || took > time.Second {
		t.Fatalf("Acquire while Redis hangs: ok %t, err %v after %s; want an error within the 200 ms deadline", ok, err, took)
	}
	if !errors.Is(err, store.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v is neither unavailable nor a deadline", err)
	}
}
