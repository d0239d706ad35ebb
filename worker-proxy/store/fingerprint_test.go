package store

import (
	"testing"

	"github.com/keypool/keypool/worker-proxy/pool"
)

func TestFingerprint(t *testing.T) {
	a, b := Fingerprint("fake-secret-aaaaaaaaaaaaaaaa"), Fingerprint("fake-secret-bbbbbbbbbbbbbbbb")
	if a == b || len(a) != 32 {
		t.Fatalf("fingerprints %q %q: want distinct 32-hex-digit values", a, b)
	}
	if got := Fingerprint(SealedPrefix + "k1:" + a + ":Zm9v"); got != a {
		t.Fatalf("sealed form: got %q, want the plaintext's %q", got, a)
	}
	if Fingerprint(SealedPrefix+"broken") == a {
		t.Fatal("a malformed sealed value must not take another secret's fingerprint")
	}
}

// Duplicates stored before the check existed stay findable while any of
// their holders is left, whichever goes first.
func TestFingerprintsKeepEveryHolder(t *testing.T) {
	var f Fingerprints
	for _, id := range []string{"a", "b", "c"} {
		f.Set(id, "fake-shared-secret-0001")
	}
	f.Set("d", "fake-other-secret-0002")
	newKey := []pool.Key{{ID: "e", Secret: "fake-shared-secret-0001"}}
	for _, gone := range []string{"a", "c", "b"} {
		if err := f.CheckNew(newKey); err == nil {
			t.Fatalf("before removing %s: a copy of a held secret was accepted", gone)
		}
		if err := f.CheckNew([]pool.Key{{ID: gone, Secret: "fake-shared-secret-0001"}}); err != nil {
			t.Fatalf("%s already holds the secret, yet an edit of it is refused: %v", gone, err)
		}
		f.Remove(gone, "fake-shared-secret-0001")
	}
	if err := f.CheckNew(newKey); err != nil {
		t.Fatalf("every holder removed, still refused: %v", err)
	}
	// A key moving to a new secret frees the old one.
	f.Remove("d", "fake-other-secret-0002")
	f.Set("d", "fake-third-secret-0003")
	if err := f.CheckNew([]pool.Key{{ID: "f", Secret: "fake-other-secret-0002"}}); err != nil {
		t.Fatalf("secret left by d: %v", err)
	}
	if len(f.holder) != 1 || len(f.extra) != 0 {
		t.Fatalf("index not compact: %d holders, %d extra", len(f.holder), len(f.extra))
	}
}
