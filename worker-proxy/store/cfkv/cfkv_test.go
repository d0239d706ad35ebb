package cfkv

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/kvemu"
	"github.com/keypool/keypool/worker-proxy/store"
	"github.com/keypool/keypool/worker-proxy/store/storetest"
)

const (
	testAccount = "acc0123456789"
	testToken   = "cf-test-token-0123456789"
)

// emulator starts a KV emulator with one namespace.
func emulator(t *testing.T, opts kvemu.Options) (*kvemu.Server, string) {
	t.Helper()
	if opts.Tokens == nil {
		opts.Tokens = map[string]kvemu.TokenInfo{testToken: {AccountID: testAccount, CanRead: true, CanWrite: true}}
	}
	srv, err := kvemu.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	// Not closed in a cleanup: the stores under test flush to it when
	// they close, after this test's cleanups have run.
	ns, err := srv.Emu.CreateNamespace(testAccount, "keypool-test")
	if err != nil {
		t.Fatal(err)
	}
	return srv, ns
}

func testConfig(srv *kvemu.Server, ns, instance string) Config {
	return Config{
		AccountID: testAccount, NamespaceID: ns, APIToken: testToken, BaseURL: srv.URL,
		InstanceID: instance, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func open(t *testing.T, cfg Config) *Store {
	t.Helper()
	s, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Store {
			srv, ns := emulator(t, kvemu.Options{})
			return open(t, testConfig(srv, ns, "i-test"))
		},
		Reopen: func(t *testing.T, s store.Store) store.Store {
			old := s.(*Store)
			if err := old.Close(); err != nil {
				t.Fatal(err)
			}
			return open(t, old.cfg)
		},
		HonoursContext: true,
	})
}

var _ = time.Second
