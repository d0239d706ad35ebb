package redisstore

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

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
