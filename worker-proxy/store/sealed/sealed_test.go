package sealed_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/kvemu"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/seal"
	"github.com/keypool/keypool/worker-proxy/store"
	"github.com/keypool/keypool/worker-proxy/store/boltstore"
	"github.com/keypool/keypool/worker-proxy/store/cfkv"
	"github.com/keypool/keypool/worker-proxy/store/sealed"
	"github.com/keypool/keypool/worker-proxy/store/storetest"
)

const (
	kvAccount = "acc0123456789"
	kvToken   = "cf-test-token-0123456789"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openBolt(t *testing.T, path string) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func startKV(t *testing.T) (*kvemu.Server, cfkv.Config) {
	t.Helper()
	srv, err := kvemu.Start(kvemu.Options{Tokens: map[string]kvemu.TokenInfo{kvToken: {AccountID: kvAccount, CanRead: true, CanWrite: true}}})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := srv.Emu.CreateNamespace(kvAccount, "keypool-sealed-test")
	if err != nil {
		t.Fatal(err)
	}
	return srv, cfkv.Config{AccountID: kvAccount, NamespaceID: ns, APIToken: kvToken, BaseURL: srv.URL, InstanceID: "i-test", Logger: quiet()}
}

func openKV(t *testing.T, cfg cfkv.Config) *cfkv.Store {
	t.Helper()
	s, err := cfkv.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The proxy loads right after opening; cfkv knows the stored keys (and
	// so refuses their secrets again) from then on.
	if _, err := s.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

// The whole store contract holds through the wrapper, on both backends.
func TestConformanceBolt(t *testing.T) {
	ring := storetest.Keyring(t, 0x21)
	paths := map[store.Store]string{}
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Store {
			path := filepath.Join(t.TempDir(), "keypool.db")
			s := sealed.Wrap(openBolt(t, path), ring, nil)
			paths[s] = path
			return s
		},
		Reopen: func(t *testing.T, s store.Store) store.Store {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			r := sealed.Wrap(openBolt(t, paths[s]), ring, nil)
			paths[r] = paths[s]
			return r
		},
		HonoursContext: true,
		Seals:          true,
	})
}

func TestConformanceKV(t *testing.T) {
	ring := storetest.Keyring(t, 0x21)
	cfgs := map[store.Store]cfkv.Config{}
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Store {
			_, cfg := startKV(t)
			s := sealed.Wrap(openKV(t, cfg), ring, nil)
			cfgs[s] = cfg
			return s
		},
		Reopen: func(t *testing.T, s store.Store) store.Store {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			r := sealed.Wrap(openKV(t, cfgs[s]), ring, nil)
			cfgs[r] = cfgs[s]
			return r
		},
		HonoursContext: true,
		Seals:          true,
	})
}

func TestWrapKeepsOptionalInterfaces(t *testing.T) {
	b := openBolt(t, filepath.Join(t.TempDir(), "k.db"))
	defer b.Close()
	_, cfg := startKV(t)
	kv := openKV(t, cfg)
	defer kv.Close()
	for _, tt := range []struct {
		name  string
		inner store.Store
	}{{"bolt", b}, {"cfkv", kv}} {
		w := sealed.Wrap(tt.inner, storetest.Keyring(t, 0x21), nil)
		_, innerShared := tt.inner.(store.Shared)
		_, innerHealth := tt.inner.(store.HealthReporter)
		_, shared := w.(store.Shared)
		_, health := w.(store.HealthReporter)
		if shared != innerShared || health != innerHealth {
			t.Errorf("%s: wrapper Shared/HealthReporter = %v/%v, inner %v/%v", tt.name, shared, health, innerShared, innerHealth)
		}
		if sealed.Unwrap(w) != tt.inner {
			t.Errorf("%s: Unwrap does not return the inner store", tt.name)
		}
		if innerHealth && w.(store.HealthReporter).Health() != tt.inner.(store.HealthReporter).Health() {
			t.Errorf("%s: Health differs from the inner store's", tt.name)
		}
	}
}

var secrets = []string{"sk-test-fake-bolt-file-0001", "AIza-fake-test-ünï€ødé-0002"}

func putSecrets(t *testing.T, s store.Store) {
	t.Helper()
	now := time.Now().UTC()
	for i, sec := range secrets {
		k := pool.Key{ID: "key_" + string(rune('a'+i)), Provider: "openai", Secret: sec, IsActive: true, CreatedAt: now, UpdatedAt: now, Revision: 1}
		if err := s.PutKeys(t.Context(), k); err != nil {
			t.Fatal(err)
		}
	}
}

func assertNoPlaintext(t *testing.T, where string, b []byte) {
	t.Helper()
	for _, sec := range secrets {
		if bytes.Contains(b, []byte(sec)) {
			t.Errorf("%s holds the plaintext secret %s…", where, sec[:8])
		}
	}
}

// The bolt file's bytes hold no plaintext secret when the keys went
// through the wrapper; without it they do (the check sees plaintext).
func TestBoltFileHoldsNoPlaintext(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name  string
		ring  *seal.Keyring
		plain bool
	}{{"sealed", storetest.Keyring(t, 0x21), false}, {"no key", nil, true}} {
		path := filepath.Join(dir, tt.name+".db")
		s := sealed.Wrap(openBolt(t, path), tt.ring, nil)
		putSecrets(t, s)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if tt.plain {
			if !bytes.Contains(b, []byte(secrets[0])) {
				t.Fatal("plaintext secret not found in an unsealed file: the check cannot see it")
			}
			continue
		}
		assertNoPlaintext(t, "keypool.db", b)
	}
}

// The KV emulator's stored values and metadata hold no plaintext secret;
// without a key they do (the check sees plaintext).
func TestKVValuesHoldNoPlaintext(t *testing.T) {
	if dump := kvDump(t, nil); !strings.Contains(dump, secrets[0]) {
		t.Fatal("plaintext secret not found in an unsealed KV: the check cannot see it")
	}
	dump := kvDump(t, storetest.Keyring(t, 0x21))
	if strings.Count(dump, "kpseal1:") < len(secrets) {
		t.Fatalf("sealed values not found in the KV dump:\n%.2000s", dump)
	}
	assertNoPlaintext(t, "KV", []byte(dump))
}

// kvDump puts the test secrets into a new emulator through the wrapper
// and returns everything it stores, values decoded.
func kvDump(t *testing.T, ring *seal.Keyring) string {
	t.Helper()
	srv, cfg := startKV(t)
	s := sealed.Wrap(openKV(t, cfg), ring, nil)
	putSecrets(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var dump bytes.Buffer
	if err := srv.Emu.Save(&dump); err != nil {
		t.Fatal(err)
	}
	// Values are base64 in the dump: decode them, keep everything else.
	var tree any
	if err := json.Unmarshal(dump.Bytes(), &tree); err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	var walk func(name string, v any)
	walk = func(name string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				walk(k, x)
			}
		case []any:
			for _, x := range v {
				walk(name, x)
			}
		case string:
			if b, err := base64.StdEncoding.DecodeString(v); err == nil && name == "value" {
				all.Write(b)
			} else {
				all.WriteString(v)
			}
		}
		all.WriteByte('\n')
	}
	walk("", tree)
	return all.String()
}

// A store written without a key is migrated when a key is configured:
// Load returns the secrets and the backend then holds them sealed.
func TestMigratesPlaintextAtLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keypool.db")
	b := openBolt(t, path)
	putSecrets(t, b)
	var logs bytes.Buffer
	ring := storetest.Keyring(t, 0x21)
	s := sealed.Wrap(b, ring, slog.New(slog.NewTextHandler(&logs, nil)))
	c, err := s.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range c.Keys {
		if k.Secret != secrets[i] || k.Revision != 2 {
			t.Errorf("key %s: secret %s…, revision %d; want the plaintext and revision 2", k.ID, k.Secret[:8], k.Revision)
		}
	}
	raw, err := b.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range raw.Keys {
		if id, ok := seal.KeyID(k.Secret); !ok || id != ring.Current().ID() {
			t.Errorf("key %s not sealed in the store after load", k.ID)
		}
	}
	if !strings.Contains(logs.String(), "keys=2") {
		t.Errorf("migration not logged: %s", logs.String())
	}
	assertNoPlaintext(t, "log", logs.Bytes())
	s.Close()
}

func TestRefusesSealedLookingPlaintext(t *testing.T) {
	b := openBolt(t, filepath.Join(t.TempDir(), "k.db"))
	defer b.Close()
	for _, ring := range []*seal.Keyring{nil, storetest.Keyring(t, 0x21)} {
		s := sealed.Wrap(b, ring, nil)
		err := s.PutKeys(t.Context(), pool.Key{ID: "k", Provider: "openai", Secret: "kpseal1:x:y:z", Revision: 1})
		if !errors.Is(err, pool.ErrInvalid) {
			t.Fatalf("PutKeys of a sealed-looking secret = %v, want ErrInvalid", err)
		}
	}
}
