//go:build js

package workers

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/edge/bridge"
	"github.com/keypool/keypool/worker-proxy/store"
	"github.com/keypool/keypool/worker-proxy/store/cfkv"
	"github.com/keypool/keypool/worker-proxy/store/storetest"
)

// kvOrigin is kvrest.js's KV_ORIGIN: fetch() calls to it are answered
// from the KV namespace bindings of the test worker.
const kvOrigin = "http://kv-binding.invalid"

var (
	nsMu   sync.Mutex
	nsNext int
	nsOf   = map[store.Store]cfkv.Config{}
)

// TestConformanceOverBinding runs the store conformance suite against
// cfkv talking to a workerd KV namespace binding: each Open takes the next
// binding (ns1, ns2, ...), each an empty namespace.
func TestConformanceOverBinding(t *testing.T) {
	open := func(t *testing.T, cfg cfkv.Config) store.Store {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := cfkv.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		// As the proxy does (and cfkv's own harness): Load right after
		// Open, which makes the store's copy authoritative.
		if _, err := s.Load(ctx); err != nil {
			t.Fatal(err)
		}
		nsMu.Lock()
		nsOf[s] = cfg
		nsMu.Unlock()
		return s
	}
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Store {
			nsMu.Lock()
			nsNext++
			ns := fmt.Sprintf("ns%d", nsNext)
			nsMu.Unlock()
			return open(t, cfkv.Config{
				AccountID: "binding", APIToken: "binding", NamespaceID: ns, BaseURL: kvOrigin,
				InstanceID: "i-workerd", HTTPClient: &http.Client{Transport: bridge.FetchTransport()},
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
		},
		Reopen: func(t *testing.T, s store.Store) store.Store {
			nsMu.Lock()
			cfg := nsOf[s]
			nsMu.Unlock()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return open(t, cfg)
		},
		HonoursContext: true,
	})
}
