// Package seal encrypts secrets at rest with AES-256-GCM.
//
// A sealed secret is one string,
//
//	kpseal1:<key id>:<fingerprint>:<base64url(nonce || ciphertext)>
//
// (store.SealedPrefix), where the key id names the encryption key that
// sealed it and the fingerprint is store.Fingerprint of the plaintext, so a
// store can tell two copies of a secret apart without reading either. Both
// are GCM additional data: a sealed value cannot be moved under another key
// id or fingerprint without Open failing.
//
// An encryption key is 32 random bytes, written in base64 (44 characters,
// `openssl rand -base64 32`) or hex (64 digits). Its id is derived from the
// key, so nothing else needs configuring. The package uses only the
// standard library and builds for js/wasm.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/keypool/keypool/worker-proxy/store"
)

// KeySize is the length of an encryption key in bytes (AES-256).
const KeySize = 32

// Errors Open returns, matched with errors.Is. Their messages name key
// ids, never a secret.
var (
	// ErrUnknownKey: the value was sealed with a key the keyring lacks.
	ErrUnknownKey = errors.New("sealed with an encryption key that is not configured")
	// ErrCorrupt: the value is not a well-formed sealed secret, or it
	// does not authenticate (changed, or moved under another id).
	ErrCorrupt = errors.New("sealed secret is damaged or was altered")
	// ErrNoKey: the value is sealed and no encryption key is configured.
	ErrNoKey = errors.New("sealed, and no encryption key is configured")
)

// Key is one encryption key. It is safe for concurrent use.
type Key struct {
	id   string
	aead cipher.AEAD
}

// ParseKey reads an encryption key: 32 bytes in standard or URL-safe
// base64 (padded or not) or in hex. Errors say what is wrong without
// echoing the value. Values that decode to 32 bytes but are plainly not
// random (few distinct bytes, like all zeros) are refused too.
func ParseKey(s string) (*Key, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("the encryption key is empty")
	}
	b, err := decodeKey(s)
	if err != nil {
		return nil, err
	}
	if distinct(b) < 12 {
		return nil, errors.New("the encryption key is not random (too few distinct bytes); generate one with `openssl rand -base64 32` or `worker-proxy new-encryption-key`")
	}
	return NewKey(b)
}

func decodeKey(s string) ([]byte, error) {
	if len(s) == 2*KeySize {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("the encryption key decodes to %d bytes, want %d random bytes (`openssl rand -base64 32`)", len(b), KeySize)
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("the encryption key (%d characters) is neither base64 nor hex of %d random bytes; generate one with `openssl rand -base64 32` or `worker-proxy new-encryption-key`", len(s), KeySize)
}

func distinct(b []byte) int {
	var seen [256]bool
	n := 0
	for _, c := range b {
		if !seen[c] {
			seen[c] = true
			n++
		}
	}
	return n
}

// NewKey makes a Key of 32 raw bytes.
func NewKey(raw []byte) (*Key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("an encryption key is %d bytes, not %d", KeySize, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(append([]byte("keypool seal key id\x00"), raw...))
	return &Key{id: hex.EncodeToString(sum[:8]), aead: aead}, nil
}

// GenerateKey returns a new random encryption key in base64, the form
// ParseKey reads.
func GenerateKey() string {
	b := make([]byte, KeySize)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// ID names the key: 16 hex digits derived from it. It reveals nothing
// useful about the key.
func (k *Key) ID() string { return k.id }

// Seal encrypts plaintext into the sealed form.
func (k *Key) Seal(plaintext string) string {
	head := store.SealedPrefix + k.id + ":" + store.Fingerprint(plaintext)
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	rand.Read(nonce)
	out := k.aead.Seal(nonce, nonce, []byte(plaintext), []byte(head))
	return head + ":" + base64.RawURLEncoding.EncodeToString(out)
}

// IsSealed reports whether s is in the sealed form (it may still fail to
// open).
func IsSealed(s string) bool { return strings.HasPrefix(s, store.SealedPrefix) }

// KeyID returns the id of the key that sealed s, or false when s is not
// sealed.
func KeyID(s string) (string, bool) {
	rest, ok := strings.CutPrefix(s, store.SealedPrefix)
	if !ok {
		return "", false
	}
	id, _, ok := strings.Cut(rest, ":")
	return id, ok
}

// parts splits a sealed value into its authenticated head, key id,
// fingerprint and decoded payload.
func parts(s string) (head, id, fp string, payload []byte, err error) {
	rest, ok := strings.CutPrefix(s, store.SealedPrefix)
	if !ok {
		return "", "", "", nil, ErrCorrupt
	}
	f := strings.Split(rest, ":")
	if len(f) != 3 || f[0] == "" || len(f[1]) != 32 {
		return "", "", "", nil, ErrCorrupt
	}
	payload, err = base64.RawURLEncoding.DecodeString(f[2])
	if err != nil {
		return "", "", "", nil, ErrCorrupt
	}
	return store.SealedPrefix + f[0] + ":" + f[1], f[0], f[1], payload, nil
}

// Open decrypts a value sealed with k. It returns ErrUnknownKey for a value
// sealed with another key and ErrCorrupt for one that does not
// authenticate.
func (k *Key) Open(sealed string) (string, error) {
	head, id, fp, payload, err := parts(sealed)
	if err != nil {
		return "", err
	}
	if id != k.id {
		return "", fmt.Errorf("%w (key id %s)", ErrUnknownKey, id)
	}
	n := k.aead.NonceSize()
	if len(payload) < n+k.aead.Overhead() {
		return "", fmt.Errorf("%w (key id %s)", ErrCorrupt, id)
	}
	plain, err := k.aead.Open(nil, payload[:n], payload[n:], []byte(head))
	if err != nil || store.Fingerprint(string(plain)) != fp {
		return "", fmt.Errorf("%w (key id %s)", ErrCorrupt, id)
	}
	return string(plain), nil
}

// Keyring holds the current key, which seals, and previous keys, which
// still open what they sealed (during a rotation). A nil *Keyring has no
// key: it seals nothing and opens nothing.
type Keyring struct {
	current *Key
	byID    map[string]*Key
}

// NewKeyring returns a keyring sealing with current and opening values of
// current and of every previous key.
func NewKeyring(current *Key, previous ...*Key) *Keyring {
	r := &Keyring{current: current, byID: map[string]*Key{current.id: current}}
	for _, p := range previous {
		if _, dup := r.byID[p.id]; !dup {
			r.byID[p.id] = p
		}
	}
	return r
}

// ParseKeyring reads the current key and a comma-separated list of
// previous keys (may be empty). Errors name which value is wrong.
func ParseKeyring(current, previous string) (*Keyring, error) {
	cur, err := ParseKey(current)
	if err != nil {
		return nil, err
	}
	var prev []*Key
	for i, p := range strings.Split(previous, ",") {
		if strings.TrimSpace(p) == "" {
			continue
		}
		k, err := ParseKey(p)
		if err != nil {
			return nil, fmt.Errorf("previous key #%d: %w", i+1, err)
		}
		prev = append(prev, k)
	}
	return NewKeyring(cur, prev...), nil
}

// With returns a keyring with r's keys and more previous keys.
func (r *Keyring) With(previous ...*Key) *Keyring {
	n := NewKeyring(r.current, previous...)
	for id, k := range r.byID {
		n.byID[id] = k
	}
	return n
}

// Current returns the key that seals, or nil for a nil keyring.
func (r *Keyring) Current() *Key {
	if r == nil {
		return nil
	}
	return r.current
}

// IDs lists the ids of every key the keyring opens, current first.
func (r *Keyring) IDs() []string {
	if r == nil {
		return nil
	}
	var prev []string
	for id := range r.byID {
		if id != r.current.id {
			prev = append(prev, id)
		}
	}
	slices.Sort(prev)
	return append([]string{r.current.id}, prev...)
}

// Seal seals plaintext with the current key.
func (r *Keyring) Seal(plaintext string) (string, error) {
	if r == nil {
		return "", errors.New("seal: no encryption key is configured")
	}
	return r.current.Seal(plaintext), nil
}

// Open decrypts a sealed value with whichever key sealed it: ErrNoKey when
// the keyring is nil, ErrUnknownKey when it lacks that key, ErrCorrupt when
// the value does not authenticate. Errors name the key id.
func (r *Keyring) Open(sealed string) (string, error) {
	id, ok := KeyID(sealed)
	if !ok {
		return "", ErrCorrupt
	}
	if r == nil {
		return "", fmt.Errorf("%w (key id %s)", ErrNoKey, id)
	}
	k, ok := r.byID[id]
	if !ok {
		return "", fmt.Errorf("%w (key id %s; configured: %s)", ErrUnknownKey, id, strings.Join(r.IDs(), ", "))
	}
	return k.Open(sealed)
}
