package server

import (
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/provider"
	"github.com/keypool/keypool/worker-proxy/store"
	"github.com/keypool/keypool/worker-proxy/store/cfkv"
)

// storedSecrets lists the secrets a store holds, by provider.
func storedSecrets(t *testing.T, st store.Store) map[string][]string {
	t.Helper()
	c, err := st.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, k := range c.Keys {
		out[k.Provider] = append(out[k.Provider], k.Secret)
	}
	return out
}

// Start keys add what the pool lacks, with default settings, to the pool
// and the store; a key already there keeps its state, and a second start
// with the same list adds nothing.
func TestSeedKeysAddsOnlyWhatIsMissing(t *testing.T) {
	s, st := newTestServer(t)
	const kept = "sk-test-seed-kept-0000001"
	w := serve(s, "POST", "/admin/keys", `{"provider":"openai","apiKey":"`+kept+`","isActive":false,"weight":5}`)
	if w.Code != 201 {
		t.Fatalf("add: %d %s", w.Code, w.Body)
	}
	list := []string{"sk-test-seed-new-00000001", kept, "sk-test-seed-new-00000002", "sk-test-seed-new-00000001"}
	got, err := s.SeedKeys(t.Context(), "openai", list)
	if err != nil || got != (Seeded{Added: 2, Present: 2}) {
		t.Fatalf("first seed: %+v, %v; want 2 added, 2 present", got, err)
	}
	e, ok := s.pool.FindSecret("openai", kept)
	if !ok || e.Config().IsActive() || e.Config().Weight() != 5 {
		t.Fatalf("the key already in the pool changed: found %v", ok)
	}
	// The defaults: those of a key added through the admin API with none.
	if w := serve(s, "POST", "/admin/keys", `{"provider":"gemini","apiKey":"AIza-test-seed-reference-01"}`); w.Code != 201 {
		t.Fatalf("add: %d %s", w.Code, w.Body)
	}
	ref, _ := s.pool.FindSecret("gemini", "AIza-test-seed-reference-01")
	for _, sec := range list[:3] {
		e, ok := s.pool.FindSecret("openai", sec)
		if !ok {
			t.Fatalf("%s not in the pool", pool.Mask(sec))
		}
		c, d := e.Config(), ref.Config()
		if sec != kept && (!c.IsActive() || c.Weight() != d.Weight() || c.MaxRequests() != d.MaxRequests() || c.ID() != seededID(sec)) {
			t.Errorf("%s: not added with the default settings and its seeded id (id %s)", pool.Mask(sec), c.ID())
		}
	}
	if n := len(storedSecrets(t, st)["openai"]); n != 3 {
		t.Fatalf("store holds %d openai keys, want 3", n)
	}
	got, err = s.SeedKeys(t.Context(), "openai", list)
	if err != nil || got != (Seeded{Present: 4}) {
		t.Fatalf("second seed: %+v, %v; want 4 present", got, err)
	}
	if n := len(s.pool.Entries("openai")); n != 3 {
		t.Fatalf("pool has %d openai keys after the second seed, want 3", n)
	}
}

// An invalid entry fails the call before anything is written, and the
// error names its position, not the secret.
func TestSeedKeysInvalidWritesNothing(t *testing.T) {
	s, st := newTestServer(t)
	bad := "sk-test-seed-bad\x01-000001"
	_, err := s.SeedKeys(t.Context(), "gemini", []string{"AIza-test-seed-ok-0000001", bad})
	if !errors.Is(err, pool.ErrInvalid) || !strings.Contains(err.Error(), "key #2 of 2") || strings.Contains(err.Error(), "sk-test") {
		t.Fatalf("err = %v; want one naming key #2 of 2 and no secret", err)
	}
	if _, err := s.SeedKeys(t.Context(), "nosuch", []string{"x-test-seed-000000001"}); err == nil || !strings.Contains(err.Error(), "unknown provider") {
		t.Fatalf("unknown provider: err = %v", err)
	}
	if n := s.pool.Len(); n != 0 || len(storedSecrets(t, st)) != 0 {
		t.Fatalf("pool %d keys, store %v after refused seeds; want nothing", n, storedSecrets(t, st))
	}
}

// Two instances on one KV namespace start at once with overlapping lists:
// the second finds the first's key in the store (not yet in its pool),
// adds the rest, and the namespace holds each secret once.
func TestSeedKeysTwoInstancesShareKV(t *testing.T) {
	emu, ns := newEmulator(t)
	ts := httptest.NewServer(emu)
	t.Cleanup(ts.Close)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	open := func(instance string) (*Server, store.Store) {
		st, err := cfkv.Open(t.Context(), cfkv.Config{
			AccountID: kvTestAccount, NamespaceID: ns, APIToken: kvTestToken, BaseURL: ts.URL,
			InstanceID: instance, Logger: quiet,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		reg, _ := provider.NewRegistry(provider.Defaults()...)
		s, err := New(t.Context(), Config{AdminKey: adminKey, Logger: quiet, StoreName: "cfkv"}, st, reg)
		if err != nil {
			t.Fatal(err)
		}
		return s, st
	}
	a, st := open("i-seed-a")
	b, _ := open("i-seed-b") // loaded before a seeds
	if got, err := a.SeedKeys(t.Context(), "openai", []string{"sk-test-seed-shared-00001", "sk-test-seed-only-a-00001"}); err != nil || got.Added != 2 {
		t.Fatalf("a: %+v, %v", got, err)
	}
	got, err := b.SeedKeys(t.Context(), "openai", []string{"sk-test-seed-only-b-00001", "sk-test-seed-shared-00001"})
	if err != nil || got != (Seeded{Added: 1, Present: 1}) {
		t.Fatalf("b: %+v, %v; want 1 added, 1 present (stored by a)", got, err)
	}
	secrets := storedSecrets(t, st)["openai"]
	if len(secrets) != 3 {
		t.Fatalf("namespace holds %d openai keys, want 3 (each secret once)", len(secrets))
	}
	if _, ok := b.pool.FindSecret("openai", "sk-test-seed-only-b-00001"); !ok {
		t.Fatal("b's own new key is not in its pool")
	}
}

// A start key the store holds for another provider is left there: counted
// present, the rest of the list added, no error.
func TestSeedKeysSecretOfAnotherProvider(t *testing.T) {
	s, st := newTestServer(t)
	const other = "sk-test-seed-other-prov-01"
	if w := serve(s, "POST", "/admin/keys", `{"provider":"anthropic","apiKey":"`+other+`"}`); w.Code != 201 {
		t.Fatalf("add: %d %s", w.Code, w.Body)
	}
	got, err := s.SeedKeys(t.Context(), "openai", []string{"sk-test-seed-fresh-000001", other, "sk-test-seed-fresh-000002"})
	if err != nil || got != (Seeded{Added: 2, Present: 1}) {
		t.Fatalf("seed: %+v, %v; want 2 added, 1 present", got, err)
	}
	stored := storedSecrets(t, st)
	if len(stored["openai"]) != 2 || len(stored["anthropic"]) != 1 {
		t.Fatalf("store holds %v", stored)
	}
}
