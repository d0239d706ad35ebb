package storetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/seal"
	"github.com/keypool/keypool/worker-proxy/store"
	"github.com/keypool/keypool/worker-proxy/store/sealed"
)

// Keyring returns a keyring of fixed test keys (not secret), sealing
// with the first and opening all.
func Keyring(t *testing.T, first byte, previous ...byte) *seal.Keyring {
	t.Helper()
	mk := func(b0 byte) *seal.Key {
		b := make([]byte, seal.KeySize)
		for i := range b {
			b[i] = b0 + byte(i)
		}
		k, err := seal.NewKey(b)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	var prev []*seal.Key
	for _, p := range previous {
		prev = append(prev, mk(p))
	}
	return seal.NewKeyring(mk(first), prev...)
}

// testSealed checks the backend under the sealing wrapper (package
// store/sealed): secrets round-trip, the backend itself holds only sealed
// values carrying the plaintext's fingerprint, a wrong or missing key
// fails the load naming the key id, plaintext is migrated, and Reseal
// rotates to a new key.
func testSealed(t *testing.T, e *env) {
	inner := e.open()
	if sealed.Unwrap(inner) != inner {
		t.Skip("the store under test is sealed already; this case wraps a raw backend")
	}
	ringA, ringB := Keyring(t, 0x21), Keyring(t, 0x61, 0x21)
	idA, idB := ringA.Current().ID(), ringB.Current().ID()
	s := sealed.Wrap(inner, ringA, nil)

	uni := key("uni")
	uni.Secret = "AIza-fake-ünï€ødé-🔑"
	long := key("long")
	long.Secret = "sk-test-" + strings.Repeat("s", pool.MaxSecretLen-8)
	long.Revision = 3
	want := []pool.Key{key("a"), uni, long}
	putKeys(t, s, want...)
	addUsage(t, s, pool.UsageDelta{ID: "a", Requests: 2, Successes: 1, Failures: 1, LastUsed: at(time.Minute)})
	putToken(t, s, token("tok_1"))
	checkSealedWith(t, inner, want, idA)

	c := load(t, s)
	checkKeys(t, c.Keys, want)
	checkUsage(t, c.Usage, map[string]pool.Usage{"a": {Requests: 2, Successes: 1, Failures: 1, LastUsed: at(time.Minute)}})
	checkTokens(t, c.Tokens, []pool.ClientToken{token("tok_1")})

	if sh, ok := s.(store.Shared); ok {
		c, err := sh.Sync(t.Context())
		if err != nil {
			t.Fatalf("Sync: %v", err)
		}
		if c != nil {
			checkKeys(t, c.Keys, want)
		}
	}

	t.Run("wrong or missing key", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			ring *seal.Keyring
			want error
		}{
			{"other key", Keyring(t, 0x61), seal.ErrUnknownKey},
			{"no key", nil, seal.ErrNoKey},
		} {
			_, err := sealed.Wrap(inner, tt.ring, nil).Load(t.Context())
			if !errors.Is(err, tt.want) {
				t.Fatalf("%s: Load = %v, want %v", tt.name, err, tt.want)
			}
			if !strings.Contains(err.Error(), idA) {
				t.Errorf("%s: error does not name key id %s: %v", tt.name, idA, err)
			}
			for _, k := range want {
				if strings.Contains(err.Error(), k.Secret) {
					t.Fatalf("%s: error holds a secret", tt.name)
				}
			}
		}
	})

	t.Run("plaintext is sealed at load", func(t *testing.T) {
		old := key("plain")
		old.Secret = "sk-test-fake-plaintext-0001"
		old.Revision = 5
		putKeys(t, inner, old)
		c := load(t, s)
		migrated := old
		migrated.Revision = 6
		checkKeys(t, c.Keys, append([]pool.Key{migrated}, want...))
		checkSealedWith(t, inner, []pool.Key{migrated}, idA)
		want = append(want, migrated)
	})

	t.Run("rotation", func(t *testing.T) {
		n, err := sealed.Reseal(t.Context(), inner, ringB)
		if err != nil {
			t.Fatalf("Reseal: %v", err)
		}
		if n.Keys != len(want) || n.Resealed != len(want) || n.FromKey[idA] != len(want) || n.Current != 0 {
			t.Fatalf("Reseal counts = %+v, want all %d re-sealed from %s", n, len(want), idA)
		}
		rotated := make([]pool.Key, len(want))
		for i, k := range want {
			rotated[i] = k
			if k.Revision > 0 {
				rotated[i].Revision++
			}
		}
		checkSealedWith(t, inner, rotated, idB)
		checkKeys(t, load(t, sealed.Wrap(inner, Keyring(t, 0x61), nil)).Keys, rotated)
		n, err = sealed.Reseal(t.Context(), inner, ringB)
		if err != nil || n.Resealed != 0 || n.Current != len(want) {
			t.Fatalf("second Reseal = %+v, %v; want nothing to do", n, err)
		}
		if _, err := sealed.Reseal(t.Context(), inner, Keyring(t, 0x41)); !errors.Is(err, seal.ErrUnknownKey) {
			t.Fatalf("Reseal without the old key = %v, want ErrUnknownKey", err)
		}
		checkSealedWith(t, inner, rotated, idB) // nothing written
		want = rotated
	})

	if e.h.Reopen != nil {
		r := sealed.Wrap(e.reopen(inner), ringB, nil)
		checkKeys(t, load(t, r).Keys, want)
	}
}

// checkSealedWith fails t unless the raw store holds each of keys sealed
// with key id, with the plaintext's fingerprint and no plaintext.
func checkSealedWith(t *testing.T, raw store.Store, keys []pool.Key, id string) {
	t.Helper()
	c := load(t, raw)
	byID := map[string]pool.Key{}
	for _, k := range c.Keys {
		byID[k.ID] = k
	}
	for _, w := range keys {
		got := byID[w.ID].Secret
		if kid, ok := seal.KeyID(got); !ok || kid != id {
			t.Errorf("key %s: stored secret is not sealed with key id %s (got id %q, sealed %v)", w.ID, id, kid, ok)
		}
		if strings.Contains(got, w.Secret) {
			t.Errorf("key %s: the store holds the plaintext secret", w.ID)
		}
		if store.Fingerprint(got) != store.Fingerprint(w.Secret) {
			t.Errorf("key %s: stored fingerprint %s, want the plaintext's %s", w.ID, store.Fingerprint(got), store.Fingerprint(w.Secret))
		}
	}
}
