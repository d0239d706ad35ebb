package store

import "testing"

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
