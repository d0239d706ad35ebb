package alerts_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keypool/keypool/worker-proxy/alerts"
	"github.com/keypool/keypool/worker-proxy/internal/redistest"
)

// Two instances sharing Redis (claiming as the binary does, see
// redisClaim in package main) see the same empty pool: one message goes
// out. With Redis gone, each sends its own rather than none.
func TestRedisClaimOneInstanceSends(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	r := newReceiver(t)
	cfg := alerts.Config{Destinations: []alerts.Destination{{Format: "json", URL: r.URL}}, Claim: func(ctx context.Context, cond string, ttl time.Duration) (bool, error) {
		return c.SetNX(ctx, "test:alert:"+cond, "1", ttl).Result()
	}}
	a, _ := start(t, cfg)
	b, _ := start(t, cfg)
	a.Check(state("gemini", 0, 2))
	b.Check(state("gemini", 0, 2))
	if m := r.next(t); m.body["kind"] != "pool_empty" {
		t.Fatalf("alert: %v", m.body)
	}
	r.none(t)
	if ttl := c.PTTL(t.Context(), "test:alert:pool_empty/gemini").Val(); ttl <= 0 {
		t.Fatalf("claim key TTL %v", ttl)
	}

	srv.Kill()
	a.Check(state("openai", 0, 1))
	b.Check(state("openai", 0, 1))
	r.next(t)
	r.next(t)
}
