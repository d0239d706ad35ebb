package storetest

import (
	"errors"
	"strings"
	"testing"

	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/store"
)

// testDuplicates: PutKeys refuses a second copy of a secret, stored or in
// the same call, writes nothing when it does, and says which keys without
// the secret; sealed secrets are compared by the fingerprint they carry.
func testDuplicates(t *testing.T, e *env) {
	s := e.open()
	a := key("a")
	putKeys(t, s, a)

	same := func(id, secret string) pool.Key {
		k := key(id)
		k.Secret = secret
		return k
	}
	sealed := func(id, secret, payload string) pool.Key {
		// The form package seal writes: the plaintext's fingerprint in
		// clear, an opaque payload that differs with every sealing.
		return same(id, store.SealedPrefix+"k1:"+store.Fingerprint(secret)+":"+payload)
	}
	tests := []struct {
		name      string
		keys      []pool.Key
		index     int
		id, other string
	}{
		{"same secret as a stored key", []pool.Key{same("b", a.Secret)}, 0, "b", "a"},
		{"after a good key", []pool.Key{key("c"), same("b", a.Secret)}, 1, "b", "a"},
		{"twice in one call", []pool.Key{same("b", "sk-test-twice"), same("c", "sk-test-twice")}, 1, "c", "b"},
		{"sealed copy of a stored key", []pool.Key{sealed("b", a.Secret, "payload-one")}, 0, "b", "a"},
		{"sealed twice in one call", []pool.Key{sealed("b", "sk-test-x", "p1"), sealed("c", "sk-test-x", "p2")}, 1, "c", "b"},
		{"plain and sealed in one call", []pool.Key{same("b", "sk-test-y"), sealed("c", "sk-test-y", "p3")}, 1, "c", "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if e.h.Seals && strings.HasPrefix(tt.name, "sealed") || e.h.Seals && strings.Contains(tt.name, "and sealed") {
				t.Skip("the store seals secrets itself; TestConformance* of store/sealed covers sealed copies")
			}
			err := s.PutKeys(t.Context(), tt.keys...)
			if !errors.Is(err, store.ErrDuplicate) {
				t.Fatalf("PutKeys = %v, want ErrDuplicate", err)
			}
			var de *store.DuplicateError
			if !errors.As(err, &de) {
				t.Fatalf("PutKeys error %T is not a *store.DuplicateError", err)
			}
			if de.Index != tt.index || de.ID != tt.id || de.ExistingID != tt.other {
				t.Errorf("DuplicateError = %+v, want index %d, id %q, existing %q", *de, tt.index, tt.id, tt.other)
			}
			for _, k := range tt.keys {
				if strings.Contains(err.Error(), k.Secret) {
					t.Errorf("the error shows a secret: %v", err)
				}
			}
			checkKeys(t, load(t, s).Keys, []pool.Key{a}) // nothing written
		})
	}

	// Writing a key again with its own secret is an edit, not a copy.
	edited := a
	edited.Description = "edited"
	putKeys(t, s, edited)
	// A secret freed by deleting its key, or by giving its key another
	// secret, may be used again.
	putKeys(t, s, key("b"))
	if err := s.DeleteKeys(t.Context(), "b"); err != nil {
		t.Fatal(err)
	}
	putKeys(t, s, same("c", key("b").Secret))
	moved := same("a", "sk-test-new-secret-of-a")
	putKeys(t, s, moved, same("d", edited.Secret))
	// The refusal survives a reopen (the index is rebuilt from the data).
	if e.h.Reopen != nil {
		s = e.reopen(s)
	}
	if err := s.PutKeys(t.Context(), same("e", moved.Secret)); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("after reopen: PutKeys of a stored secret = %v, want ErrDuplicate", err)
	}
	want := []pool.Key{moved, same("c", key("b").Secret), same("d", edited.Secret)}
	want[2].Description = "key d"
	checkKeys(t, load(t, s).Keys, want)
}
