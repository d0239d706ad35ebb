package reqlog_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/internal/redistest"
	"github.com/keypool/keypool/worker-proxy/reqlog"
	"github.com/keypool/keypool/worker-proxy/reqlog/redislog"
)

func redisStore(t *testing.T, b reqlog.Bounds) (*redislog.Redis, redis.UniversalClient) {
	t.Helper()
	srv := redistest.Start(t, redistest.Options{})
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { c.Close() })
	return redislog.New(c, "test:requests", b, nil), c
}

// The Redis stream pages newest first, filters like the other stores and
// keeps at most Max records.
func TestRedisStore(t *testing.T) {
	st, _ := redisStore(t, reqlog.Bounds{Max: 150})
	appendN(t, st, 0, 60)
	appendN(t, st, 60, 120)
	if got, want := all(t, st, reqlog.Filter{Limit: 7}), desc(0, 120, nil); !slices.Equal(got, want) {
		t.Fatalf("pages give %v, want %v", got, want)
	}
	if got, want := all(t, st, reqlog.Filter{Provider: "openai", Status: "4xx", Limit: 3}), desc(0, 120, func(i int) bool { return i%3 == 1 && i%4 == 1 }); !slices.Equal(got, want) {
		t.Fatalf("filtered: %v, want %v", got, want)
	}
	if got, want := all(t, st, reqlog.Filter{KeyID: "key_2"}), desc(0, 120, func(i int) bool { return i%5 == 2 || (i+1)%5 == 2 }); !slices.Equal(got, want) {
		t.Fatalf("by key: %v, want %v", got, want)
	}
	appendN(t, st, 120, 200)
	if got, want := all(t, st, reqlog.Filter{Limit: 500}), desc(50, 200, nil); !slices.Equal(got, want) {
		t.Fatalf("past Max: %d records, want the newest 150", len(got))
	}
	recs, _, _ := st.Query(reqlog.Filter{Limit: 1})
	if id, _ := reqlog.ParseID(recs[0].ID); id != st.LastID() || id == 0 {
		t.Fatalf("newest record %s, LastID %d", recs[0].ID, st.LastID())
	}
}

// Records older than MaxAge leave the stream at the next append.
func TestRedisMaxAge(t *testing.T) {
	st, c := redisStore(t, reqlog.Bounds{MaxAge: 300 * time.Millisecond})
	appendN(t, st, 0, 10)
	time.Sleep(400 * time.Millisecond)
	if got := all(t, st, reqlog.Filter{}); len(got) != 0 {
		t.Fatalf("%d records past MaxAge still returned", len(got))
	}
	appendN(t, st, 10, 11)
	if n := c.XLen(t.Context(), "test:requests").Val(); n != 1 {
		t.Fatalf("stream holds %d entries, want 1", n)
	}
}

// Two instances logging into one stream at once: every record is kept
// once, in one order both see.
func TestRedisSharedByInstances(t *testing.T) {
	st, c := redisStore(t, reqlog.Bounds{})
	other := redislog.New(c, "test:requests", reqlog.Bounds{}, nil)
	var wg sync.WaitGroup
	for i, s := range []reqlog.Store{st, other} {
		wg.Go(func() {
			l := reqlog.New(s, "redis", reqlog.Options{BatchDelay: 5 * time.Millisecond, Logger: quiet})
			for j := range 300 {
				l.Add(adminapi.RequestRecord{Time: time.Now(), Provider: "openai", Status: 200, LatencyMs: float64(i*1000 + j)})
			}
			l.Close()
		})
	}
	wg.Wait()
	a, b := all(t, st, reqlog.Filter{Limit: 100}), all(t, other, reqlog.Filter{Limit: 100})
	if len(a) != 600 || !slices.Equal(a, b) {
		t.Fatalf("%d and %d records", len(a), len(b))
	}
	seen := map[int]bool{}
	for _, x := range a {
		seen[x] = true
	}
	if len(seen) != 600 {
		t.Fatalf("%d distinct records, want 600", len(seen))
	}
}
