package kvemu

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"
)

// version is one write (or delete) of a key.
type version struct {
	at         time.Time // when it was made, by Options.Now
	deleted    bool
	value      []byte          // never modified once stored
	meta       json.RawMessage // compact JSON; nil = no metadata
	expiration int64           // unix seconds; 0 = never
}

func (v version) expired(now time.Time) bool {
	return v.expiration != 0 && v.expiration <= now.Unix()
}

// entry is a key's history, oldest first, kept only as far back as a stale
// read can reach.
type entry struct{ versions []version }

type namespace struct {
	id    string
	title string
	keys  map[string]*entry
}

type account struct {
	namespaces map[string]*namespace
	day        int64    // UTC day number the usage counts belong to
	used       [4]int64 // by opKind, today
}

func (e *Emulator) account(id string) *account {
	a := e.accounts[id]
	if a == nil {
		a = &account{namespaces: make(map[string]*namespace)}
		e.accounts[id] = a
	}
	return a
}

// cutoff is the newest write time a read made now can see.
func (e *Emulator) cutoff(now time.Time) time.Time { return now.Add(-e.staleFor) }

// put records a write or delete made at v.at.
func (ns *namespace) put(name string, v version, cutoff time.Time) {
	en := ns.keys[name]
	if en == nil {
		en = &entry{}
		ns.keys[name] = en
	}
	en.versions = append(en.versions, v)
	// Versions older than the newest one a read can still see are unreachable.
	keep := 0
	for i, old := range en.versions {
		if !old.at.After(cutoff) {
			keep = i
		}
	}
	if keep > 0 {
		en.versions = slices.Clone(en.versions[keep:])
	}
	if last := en.versions[len(en.versions)-1]; len(en.versions) == 1 && last.deleted && !last.at.After(cutoff) {
		delete(ns.keys, name)
	}
}

// get returns the version of name a read at now sees.
func (ns *namespace) get(name string, cutoff, now time.Time) (version, bool) {
	en := ns.keys[name]
	if en == nil {
		return version{}, false
	}
	for i := len(en.versions) - 1; i >= 0; i-- {
		v := en.versions[i]
		if v.at.After(cutoff) {
			continue
		}
		if v.deleted || v.expired(now) {
			return version{}, false
		}
		return v, true
	}
	return version{}, false
}

// latest returns the newest state of name, ignoring staleness.
func (ns *namespace) latest(name string, now time.Time) (version, bool) {
	en := ns.keys[name]
	if en == nil || len(en.versions) == 0 {
		return version{}, false
	}
	v := en.versions[len(en.versions)-1]
	if v.deleted || v.expired(now) {
		return version{}, false
	}
	return v, true
}

type listed struct {
	name string
	v    version
}

// list returns the visible keys with the prefix that sort after `after`, in
// byte order, at most limit of them, and whether more follow.
func (ns *namespace) list(prefix, after string, limit int, cutoff, now time.Time) ([]listed, bool) {
	names := make([]string, 0, len(ns.keys))
	for name := range ns.keys {
		if strings.HasPrefix(name, prefix) && name > after {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var out []listed
	for _, name := range names {
		v, ok := ns.get(name, cutoff, now)
		if !ok {
			continue
		}
		if len(out) == limit {
			return out, true
		}
		out = append(out, listed{name, v})
	}
	return out, false
}

func newNamespaceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ErrNamespaceExists is returned by CreateNamespace for a title the account
// already uses.
var ErrNamespaceExists = errors.New("kvemu: a namespace with this account ID and title already exists")

// CreateNamespace creates a namespace directly (no request, nothing counted)
// and returns its id, for seeding a test or the standalone server.
func (e *Emulator) CreateNamespace(accountID, title string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	a := e.account(accountID)
	for _, ns := range a.namespaces {
		if ns.title == title {
			return ns.id, ErrNamespaceExists
		}
	}
	ns := &namespace{id: newNamespaceID(), title: title, keys: make(map[string]*entry)}
	a.namespaces[ns.id] = ns
	return ns.id, nil
}
