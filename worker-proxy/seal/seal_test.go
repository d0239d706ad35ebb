package seal_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/keypool/keypool/worker-proxy/seal"
	"github.com/keypool/keypool/worker-proxy/store"
)

// testKey returns a fixed, obviously test-only key (bytes 0x10..0x2f).
func testKey(t *testing.T, first byte) (*seal.Key, string) {
	t.Helper()
	b := make([]byte, seal.KeySize)
	for i := range b {
		b[i] = first + byte(i)
	}
	s := base64.StdEncoding.EncodeToString(b)
	k, err := seal.ParseKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k, s
}

func TestParseKey(t *testing.T) {
	var raw []byte
	for i := range seal.KeySize {
		raw = append(raw, byte(7*i+3))
	}
	want, err := seal.NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, form := range []string{
		base64.StdEncoding.EncodeToString(raw),
		base64.RawStdEncoding.EncodeToString(raw),
		base64.URLEncoding.EncodeToString(raw),
		base64.RawURLEncoding.EncodeToString(raw),
		hex.EncodeToString(raw),
		strings.ToUpper(hex.EncodeToString(raw)),
		" " + base64.StdEncoding.EncodeToString(raw) + "\n",
	} {
		k, err := seal.ParseKey(form)
		if err != nil {
			t.Errorf("ParseKey(%q): %v", form, err)
			continue
		}
		if k.ID() != want.ID() {
			t.Errorf("ParseKey(%q): id %s, want %s", form, k.ID(), want.ID())
		}
	}
	if len(want.ID()) != 16 {
		t.Errorf("id %q, want 16 hex digits", want.ID())
	}

	bad := []struct{ in, says string }{
		{"", "empty"},
		{"correct horse battery staple", "neither base64 nor hex"},
		{base64.StdEncoding.EncodeToString(raw[:16]), "16 bytes"},
		{base64.StdEncoding.EncodeToString(append(raw, 1)), "33 bytes"},
		{base64.StdEncoding.EncodeToString(make([]byte, 32)), "not random"},
		{hex.EncodeToString(bytes.Repeat([]byte("ab"), 16)), "not random"},
	}
	for _, tt := range bad {
		_, err := seal.ParseKey(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("ParseKey(%q) = %v, want an error saying %q", tt.in, err, tt.says)
		}
		if err != nil && tt.in != "" && strings.Contains(err.Error(), tt.in) {
			t.Errorf("ParseKey error echoes the key: %v", err)
		}
	}
}

func TestGenerateKey(t *testing.T) {
	a, b := seal.GenerateKey(), seal.GenerateKey()
	if a == b {
		t.Fatal("two generated keys are equal")
	}
	for _, s := range []string{a, b} {
		if _, err := seal.ParseKey(s); err != nil {
			t.Fatalf("generated key does not parse: %v", err)
		}
	}
}

func TestSealOpen(t *testing.T) {
	k, _ := testKey(t, 0x10)
	for _, secret := range []string{"sk-test-fake-0123456789", "AIza-fake-ünï€ødé-🔑", "x", strings.Repeat("s", 512)} {
		s := k.Seal(secret)
		if !seal.IsSealed(s) || len(secret) > 4 && strings.Contains(s, secret) {
			t.Fatalf("sealed form %q is not sealed or holds the secret", s)
		}
		if id, _ := seal.KeyID(s); id != k.ID() {
			t.Errorf("KeyID = %s, want %s", id, k.ID())
		}
		if got, want := store.Fingerprint(s), store.Fingerprint(secret); got != want {
			t.Errorf("Fingerprint(sealed) = %s, want the plaintext's %s", got, want)
		}
		if s2 := k.Seal(secret); s2 == s {
			t.Error("sealing twice gave the same value (nonce reused)")
		}
		got, err := k.Open(s)
		if err != nil || got != secret {
			t.Fatalf("Open = %q, %v; want the secret", got, err)
		}
	}
}

func TestOpenRefusesTampering(t *testing.T) {
	k, _ := testKey(t, 0x10)
	other, _ := testKey(t, 0x40)
	a, b := k.Seal("sk-test-fake-aaaaaaaa"), k.Seal("sk-test-fake-bbbbbbbb")
	fieldsA, fieldsB := strings.Split(a, ":"), strings.Split(b, ":")

	swapFP := strings.Join([]string{fieldsA[0], fieldsA[1], fieldsB[2], fieldsA[3]}, ":")
	flip := []byte(a)
	flip[len(flip)-3] ^= 1
	for name, tt := range map[string]struct {
		in   string
		want error
	}{
		"fingerprint of another secret": {swapFP, seal.ErrCorrupt},
		"flipped ciphertext bit":        {string(flip), seal.ErrCorrupt},
		"truncated":                     {a[:len(a)-20], seal.ErrCorrupt},
		"short payload":                 {strings.Join(append(fieldsA[:3], "AAAA"), ":"), seal.ErrCorrupt},
		"not sealed":                    {"sk-test-fake", seal.ErrCorrupt},
		"bad base64":                    {strings.Join(append(fieldsA[:3], "!!"), ":"), seal.ErrCorrupt},
		"moved under another key id":    {strings.Replace(a, k.ID(), other.ID(), 1), seal.ErrUnknownKey},
		"other key":                     {other.Seal("sk-test-fake-cccc"), seal.ErrUnknownKey},
	} {
		_, err := k.Open(tt.in)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: Open = %v, want %v", name, err, tt.want)
		}
	}
	// A value moved under another id does not open with that key either.
	if _, err := other.Open(strings.Replace(a, k.ID(), other.ID(), 1)); !errors.Is(err, seal.ErrCorrupt) {
		t.Errorf("moved value opened with the other key: %v", err)
	}
}

func TestKeyring(t *testing.T) {
	oldK, oldS := testKey(t, 0x10)
	newK, newS := testKey(t, 0x40)
	_, thirdS := testKey(t, 0x70)
	r, err := seal.ParseKeyring(newS, " "+oldS+" ,")
	if err != nil {
		t.Fatal(err)
	}
	if r.Current().ID() != newK.ID() || len(r.IDs()) != 2 {
		t.Fatalf("current %s, ids %v", r.Current().ID(), r.IDs())
	}
	byOld := oldK.Seal("sk-test-fake-old")
	if got, err := r.Open(byOld); err != nil || got != "sk-test-fake-old" {
		t.Fatalf("Open of a value sealed by a previous key = %q, %v", got, err)
	}
	s, err := r.Seal("sk-test-fake-new")
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := seal.KeyID(s); id != newK.ID() {
		t.Fatalf("sealed with %s, want the current key %s", id, newK.ID())
	}

	only, _ := seal.ParseKeyring(thirdS, "")
	_, err = only.Open(byOld)
	if !errors.Is(err, seal.ErrUnknownKey) || !strings.Contains(err.Error(), oldK.ID()) {
		t.Fatalf("Open with a keyring lacking the key = %v, want ErrUnknownKey naming %s", err, oldK.ID())
	}
	var none *seal.Keyring
	if _, err := none.Open(byOld); !errors.Is(err, seal.ErrNoKey) || !strings.Contains(err.Error(), oldK.ID()) {
		t.Fatalf("Open without a key = %v, want ErrNoKey naming %s", err, oldK.ID())
	}
	if _, err := none.Seal("x"); err == nil {
		t.Fatal("Seal without a key succeeded")
	}
	if _, err := seal.ParseKeyring(newS, oldS+",short"); err == nil || !strings.Contains(err.Error(), "previous key #2") {
		t.Fatalf("bad previous key: %v", err)
	}
}
