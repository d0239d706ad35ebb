package redisstore

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/keypool/keypool/worker-proxy/internal/redistest"
	"github.com/keypool/keypool/worker-proxy/store"
	"github.com/keypool/keypool/worker-proxy/store/storetest"
)

var prefixes atomic.Int64

// openOn opens a store on srv under a prefix of its own.
func openOn(t testing.TB, srv *redistest.Server, prefix string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{URL: srv.URL(), Prefix: prefix})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	prefixOf := map[store.Store]string{}
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Store {
			// Each store a pool of its own on the one server.
			p := fmt.Sprintf("test%d:", prefixes.Add(1))
			s := openOn(t, srv, p)
			prefixOf[s] = p
			return s
		},
		Reopen: func(t *testing.T, s store.Store) store.Store {
			p := prefixOf[s]
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			r := openOn(t, srv, p)
			prefixOf[r] = p
			return r
		},
		HonoursContext: true,
	})
}

// TestConformanceCluster runs the suite against a three-master Redis
// Cluster started here, through a redis+cluster:// URL: the pool's hash
// tag keeps its keys in one slot, so its scripts and pub/sub work there.
func TestConformanceCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	prefixOf := map[store.Store]string{}
	open := func(t *testing.T, p string) store.Store {
		s, err := Open(context.Background(), Config{URL: cl.URL(), Prefix: p})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		prefixOf[s] = p
		return s
	}
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Store { return open(t, fmt.Sprintf("cluster%d:", prefixes.Add(1))) },
		Reopen: func(t *testing.T, s store.Store) store.Store {
			p := prefixOf[s]
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			return open(t, p)
		},
		HonoursContext: true,
	})
	// The pools landed on more than one master: the suite ran against a
	// real cluster, not one node that happened to own every slot.
	used := 0
	for _, n := range cl.Nodes {
		c := redis.NewClient(&redis.Options{Addr: n.Addr()})
		if size, err := c.DBSize(context.Background()).Result(); err == nil && size > 0 {
			used++
		}
		c.Close()
	}
	if used < 2 {
		t.Fatalf("pools were written to %d of %d masters, want at least 2", used, len(cl.Nodes))
	}
}
