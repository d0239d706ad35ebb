package main

import (
	"fmt"
	"maps"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/internal/fakeupstream"
	"github.com/keypool/keypool/worker-proxy/internal/redistest"
	"github.com/keypool/keypool/worker-proxy/store/redisstore"
)

// redisFixture is proxies sharing one Redis (a server or a Cluster) and
// one fake upstream.
type redisFixture struct {
	redis *redistest.Server // nil on a Cluster
	up    *fakeupstream.Server
	env   map[string]string
}

// startRedis starts a redis-server with opts for the proxies to share.
func startRedis(t *testing.T, opts redistest.Options, env map[string]string) *redisFixture {
	t.Helper()
	srv := redistest.Start(t, opts)
	c := onRedis(t, srv.URL(), env)
	c.redis = srv
	return c
}

// onRedis is a fixture whose proxies use the Redis at url.
func onRedis(t *testing.T, url string, env map[string]string) *redisFixture {
	t.Helper()
	f, err := fakeupstream.Start(fakeupstream.Options{Record: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	full := map[string]string{
		"STORE": "redis", "REDIS_URL": url, "REDIS_PREFIX": "e2e:",
		"GEMINI_BASE_URL": f.URL + "/v1beta", "OPENAI_BASE_URL": f.URL + "/v1", "ANTHROPIC_BASE_URL": f.URL + "/v1",
		// The safety net is slow, so what these tests see within a second
		// came through pub/sub.
		"SYNC_INTERVAL": "30s", "FLUSH_INTERVAL": "200ms",
	}
	maps.Copy(full, env)
	return &redisFixture{up: f, env: full}
}

func (c *redisFixture) proxy(t *testing.T) *proxy { return startProxy(t, c.env) }

// chat sends one OpenAI chat request through p.
func chat(p *proxy) response {
	p.t.Helper()
	return p.do("POST", "/api/openai/chat/completions", chatBody, bearer())
}

// within fails t unless cond holds within d, polling every 10 ms, and
// returns how long it took.
func within(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// TestRedisChangesReachEveryInstance: with STORE=redis, an admin change or
// a relay decision on one instance applies on the others within 1 s (not
// at the 30 s SYNC_INTERVAL).
func TestRedisChangesReachEveryInstance(t *testing.T) {
	onEachRedis(t, testChangesReachEveryInstance)
}

// onEachRedis runs test on one redis-server and on a Redis Cluster of
// three masters (redis+cluster:// URL), in parallel.
func onEachRedis(t *testing.T, test func(*testing.T, *redisFixture)) {
	t.Run("server", func(t *testing.T) {
		t.Parallel()
		test(t, startRedis(t, redistest.Options{}, nil))
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		test(t, onRedis(t, redistest.StartCluster(t, 3).URL(), nil))
	})
}

func testChangesReachEveryInstance(t *testing.T, c *redisFixture) {
	a, b, d := c.proxy(t), c.proxy(t), c.proxy(t)

	// A key added through B: A serves it within 1 s.
	secret := fmt.Sprintf("sk-test-redis-added-%08d", keySeq.Add(1))
	id := b.addKey("openai", secret, 0)
	took := within(t, time.Second, "A serves the key added through B", func() bool { return chat(a).Status == http.StatusOK })
	t.Logf("key added through B served by A after %s", took)

	// Disabled through A's admin API: B and D stop within 1 s.
	other := fmt.Sprintf("sk-test-redis-other-%08d", keySeq.Add(1))
	otherID := a.addKey("openai", other, 0)
	if r := a.admin("PUT", "/admin/keys/"+id, map[string]any{"isActive": false}); r.Status != http.StatusOK {
		t.Fatalf("disable through A: %d %s", r.Status, r.Body)
	}
	for name, p := range map[string]*proxy{"B": b, "D": d} {
		within(t, time.Second, name+" stops using the key disabled through A", func() bool {
			return !keyStatusOf(t, p, id).IsActive
		})
		for range 5 {
			if r := chat(p); r.Status != http.StatusOK || r.Header.Get("X-KeyPool-Key-Id") != otherID {
				t.Fatalf("%s served with %s (%d), want only %s", name, r.Header.Get("X-KeyPool-Key-Id"), r.Status, otherID)
			}
		}
	}

	// A 429 seen by A: B and D rest that key within 1 s.
	c.up.SetBehavior(other, fakeupstream.RateLimited)
	spare := fmt.Sprintf("sk-test-redis-spare-%08d", keySeq.Add(1))
	spareID := a.addKey("openai", spare, 0)
	for _, p := range []*proxy{b, d} {
		within(t, time.Second, "B and D see the spare key", func() bool { _, ok := keyStatusOrNil(t, p, spareID); return ok })
	}
	// A rate limit rests the (key, model) pair.
	restsForChat := func(p *proxy) bool {
		k := keyStatusOf(t, p, otherID)
		return len(k.ModelCooldowns) == 1 && k.ModelCooldowns[0].Model == "gpt-4o-mini"
	}
	within(t, 2*time.Second, "A meets the 429", func() bool {
		chat(a)
		return restsForChat(a)
	})
	c.up.SetBehavior(other, fakeupstream.OK) // only the shared rest keeps B and D off it now
	for name, p := range map[string]*proxy{"B": b, "D": d} {
		took := within(t, time.Second, name+" rests the key A found rate limited", func() bool {
			return restsForChat(p)
		})
		t.Logf("%s rests the key after %s", name, took)
		for range 5 {
			if r := chat(p); r.Header.Get("X-KeyPool-Key-Id") != spareID {
				t.Fatalf("%s served with %s, want the spare key while the other rests", name, r.Header.Get("X-KeyPool-Key-Id"))
			}
		}
	}

	// A client token created on A works on B within 1 s; deleted on B, A
	// refuses it within 1 s.
	r := a.admin("POST", "/admin/tokens", map[string]any{"name": "shared"})
	if r.Status != http.StatusCreated {
		t.Fatalf("create token: %d %s", r.Status, r.Body)
	}
	tok := r.JSON(t)
	token, tokID := tok["token"].(string), tok["id"].(string)
	auth := map[string]string{"Authorization": "Bearer " + token}
	within(t, time.Second, "B accepts the token created on A", func() bool {
		return b.do("POST", "/api/openai/chat/completions", chatBody, auth).Status == http.StatusOK
	})
	if r := b.admin("DELETE", "/admin/tokens/"+tokID, nil); r.Status != http.StatusOK && r.Status != http.StatusNoContent {
		t.Fatalf("delete token on B: %d %s", r.Status, r.Body)
	}
	within(t, time.Second, "A refuses the token deleted on B", func() bool {
		return a.do("POST", "/api/openai/chat/completions", chatBody, auth).Status == http.StatusUnauthorized
	})

	// Deleted through D: gone on A within 1 s.
	if r := d.admin("DELETE", "/admin/keys/"+id, nil); r.Status != http.StatusOK && r.Status != http.StatusNoContent {
		t.Fatalf("delete through D: %d %s", r.Status, r.Body)
	}
	within(t, time.Second, "A forgets the key deleted through D", func() bool { _, ok := keyStatusOrNil(t, a, id); return !ok })

	// Usage reset through B: A shows zero within 1 s.
	within(t, 2*time.Second, "every instance's count of the spare key reaches the store", func() bool {
		return c.count(t, "req", spareID) == int64(len(requestsWith(c.up, spare)))
	})
	if r := b.admin("POST", "/admin/reset", map[string]any{"provider": "openai"}); r.Status != http.StatusOK {
		t.Fatalf("reset through B: %d %s", r.Status, r.Body)
	}
	within(t, time.Second, "A shows the reset", func() bool { return keyStatusOf(t, a, spareID).Requests == 0 })
	for _, p := range []*proxy{a, b, d} {
		p.assertNoSecretsLogged(secret, other, spare, token)
	}
}

// count reads a key's count from the pool's hash (req, ok, fail) in Redis.
func (c *redisFixture) count(t *testing.T, hash, id string) int64 {
	t.Helper()
	cl, err := redisstore.NewClient(c.env["REDIS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	n, err := cl.HGet(t.Context(), "{"+c.env["REDIS_PREFIX"]+"}"+hash, id).Int64()
	if err != nil && err != redis.Nil {
		t.Fatalf("HGET %s %s: %v", hash, id, err)
	}
	return n
}

// keyStatusOrNil is keyStatusOf for a key that may not exist.
func keyStatusOrNil(t *testing.T, p *proxy, id string) (adminapi.KeyStatus, bool) {
	t.Helper()
	r := p.admin("GET", "/admin/keys/"+id, nil)
	if r.Status == http.StatusNotFound {
		return adminapi.KeyStatus{}, false
	}
	if r.Status != http.StatusOK {
		t.Fatalf("GET /admin/keys/%s: %d %s", id, r.Status, r.Body)
	}
	var k adminapi.KeyStatus
	r.Decode(t, &k)
	return k, true
}

// TestRedisMaxRequestsExactAcrossInstances: three instances on one Redis
// serve a key with maxRequests 100 exactly 100 times between them, however
// the 300 concurrent requests fall; the others get the documented 503.
func TestRedisMaxRequestsExactAcrossInstances(t *testing.T) {
	onEachRedis(t, testMaxRequestsExact)
}

func testMaxRequestsExact(t *testing.T, c *redisFixture) {
	ps := []*proxy{c.proxy(t), c.proxy(t), c.proxy(t)}
	secret := fmt.Sprintf("sk-test-redis-limited-%08d", keySeq.Add(1))
	id := ps[0].addKey("openai", secret, 100)
	for _, p := range ps[1:] {
		within(t, time.Second, "every instance has the key", func() bool { _, ok := keyStatusOrNil(t, p, id); return ok })
	}

	const n = 300
	statuses := make([]int, n)
	bodies := make([]response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := ps[i%len(ps)].do("POST", "/api/openai/chat/completions", chatBody, bearer())
			statuses[i], bodies[i] = r.Status, r
		})
	}
	wg.Wait()
	count := map[int]int{}
	for i, st := range statuses {
		count[st]++
		if st == http.StatusServiceUnavailable {
			if m := bodies[i].JSON(t); m["error"] == nil || m["provider"] != "openai" {
				t.Fatalf("503 body is not the documented shape: %s", bodies[i].Body)
			}
		}
	}
	if count[http.StatusOK] != 100 || count[http.StatusServiceUnavailable] != n-100 {
		t.Fatalf("statuses %v, want exactly 100 × 200 and %d × 503", count, n-100)
	}
	if got := len(requestsWith(c.up, secret)); got != 100 {
		t.Fatalf("upstream calls with the limited key = %d, want exactly 100", got)
	}
	if got := c.count(t, "req", id); got != 100 {
		t.Fatalf("redis counts %d requests, want 100", got)
	}
	// Every instance shows 100/100: those refused by Redis took its count.
	for _, p := range ps {
		if k := keyStatusOf(t, p, id); k.Requests != 100 || k.Available {
			t.Fatalf("an instance shows %d requests, available %v; want 100, used up", k.Requests, k.Available)
		}
	}
}

// redisOutage is how long TestRedisOutage keeps Redis down: long enough
// for the store's reconnect backoff to reach its 5 s ceiling several times.
const redisOutage = 30 * time.Second

// total sums the counts in m under mu.
func total(mu *sync.Mutex, m map[string]int) int {
	mu.Lock()
	defer mu.Unlock()
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestRedisOutage: Redis killed for 30 s under load, then restarted with its data
// (AOF) or without any. No client request fails while a healthy key
// exists; admin writes answer a JSON 503 meanwhile; /readyz says degraded
// and since when; afterwards Redis counts exactly the requests served,
// nothing lost or counted twice, and without persistence the instance has
// written its copy of the pool back.
func TestRedisOutage(t *testing.T) {
	for _, tc := range []struct {
		name string
		aof  bool
	}{{"restart with AOF", true}, {"restart without persistence", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := startRedis(t, redistest.Options{AOF: tc.aof}, nil)
			a := c.proxy(t)
			unlimited := fmt.Sprintf("sk-test-redis-outage-u-%08d", keySeq.Add(1))
			limited := fmt.Sprintf("sk-test-redis-outage-l-%08d", keySeq.Add(1))
			uID, lID := a.addKey("openai", unlimited, 0), a.addKey("openai", limited, 100000)
			tokResp := a.admin("POST", "/admin/tokens", map[string]any{"name": "kept"})
			if tokResp.Status != http.StatusCreated {
				t.Fatalf("create token: %d %s", tokResp.Status, tokResp.Body)
			}
			token := tokResp.JSON(t)["token"].(string)

			var (
				mu     sync.Mutex
				served = map[string]int{}
				failed []string
				stop   = make(chan struct{})
				wg     sync.WaitGroup
			)
			for range 4 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						r := a.do("POST", "/api/openai/chat/completions", chatBody, map[string]string{"Authorization": "Bearer " + token})
						mu.Lock()
						if r.Status == http.StatusOK {
							served[r.Header.Get("X-KeyPool-Key-Id")]++
						} else {
							failed = append(failed, fmt.Sprintf("%d %s", r.Status, r.Body))
						}
						mu.Unlock()
						time.Sleep(time.Millisecond) // load, but leave the CPU to the other tests
					}
				})
			}
			time.Sleep(500 * time.Millisecond)
			c.redis.Kill()
			within(t, 3*time.Second, "readyz says degraded", func() bool {
				return a.do("GET", "/readyz", nil, nil).JSON(t)["status"] == "degraded"
			})
			ready := a.admin("GET", "/readyz", nil).JSON(t)
			st, _ := ready["store"].(map[string]any)
			if st["ok"] != false || st["since"] == nil || st["detail"] == "" {
				t.Fatalf("readyz store while Redis is down = %v, want ok false with since and detail", st)
			}
			r := a.admin("POST", "/admin/keys", map[string]any{"provider": "openai", "apiKey": "sk-test-redis-during-outage-0001"})
			if r.Status != http.StatusServiceUnavailable || r.JSON(t)["error"] == nil {
				t.Fatalf("admin write while Redis is down: %d %s, want a JSON 503", r.Status, r.Body)
			}
			served0 := total(&mu, served)
			time.Sleep(redisOutage) // serving from memory meanwhile
			if n := total(&mu, served) - served0; n < 100 {
				t.Fatalf("only %d requests served during the %s outage", n, redisOutage)
			}
			c.redis.Restart()
			within(t, 10*time.Second, "readyz says ready again", func() bool {
				return a.do("GET", "/readyz", nil, nil).JSON(t)["status"] == "ready"
			})
			time.Sleep(500 * time.Millisecond)
			close(stop)
			wg.Wait()
			if len(failed) > 0 {
				t.Fatalf("%d client requests failed during the outage, first: %s", len(failed), failed[0])
			}
			if served[uID] == 0 || served[lID] == 0 {
				t.Fatalf("served %v: both keys should have served", served)
			}
			// Counts in Redis equal the requests served, once flushed.
			within(t, 5*time.Second, "Redis counts every request served, once", func() bool {
				ok := c.count(t, "req", uID) == int64(served[uID]) && c.count(t, "req", lID) == int64(served[lID]) &&
					c.count(t, "ok", uID)+c.count(t, "ok", lID) == int64(served[uID]+served[lID])
				if !ok {
					t.Logf("redis req %d/%d ok %d/%d; served %d/%d", c.count(t, "req", uID), c.count(t, "req", lID),
						c.count(t, "ok", uID), c.count(t, "ok", lID), served[uID], served[lID])
				}
				return ok
			})
			time.Sleep(700 * time.Millisecond) // a few more flushes: nothing is added twice
			if u, l := c.count(t, "req", uID), c.count(t, "req", lID); u != int64(served[uID]) || l != int64(served[lID]) {
				t.Fatalf("Redis counts %d and %d, want %d and %d", u, l, served[uID], served[lID])
			}
			if got := len(requestsWith(c.up, unlimited)) + len(requestsWith(c.up, limited)); got != served[uID]+served[lID] {
				t.Fatalf("upstream calls %d, served %d", got, served[uID]+served[lID])
			}
			// The pool is whole in Redis again: a second instance loads
			// both keys and the token.
			b := c.proxy(t)
			for _, id := range []string{uID, lID} {
				if _, ok := keyStatusOrNil(t, b, id); !ok {
					t.Fatalf("a new instance does not find key %s", id)
				}
			}
			if r := b.do("POST", "/api/openai/chat/completions", chatBody, map[string]string{"Authorization": "Bearer " + token}); r.Status != http.StatusOK {
				t.Fatalf("the token no longer works on a new instance: %d %s", r.Status, r.Body)
			}
			// Admin writes work again.
			a.addKey("openai", fmt.Sprintf("sk-test-redis-after-%08d", keySeq.Add(1)), 0)
			a.assertNoSecretsLogged(unlimited, limited, token)
		})
	}
}
