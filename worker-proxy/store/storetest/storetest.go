// Package storetest is the conformance suite that every store.Store backend
// runs from its tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Harness{Open: ..., Reopen: ...})
//	}
//
// Each case opens fresh, empty stores through the Harness and checks one
// part of the store.Store contract.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/limits"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/store"
)

// Harness opens the backend under test.
type Harness struct {
	// Open returns a new, empty store. It may be called several times with
	// the same t; each call must give an independent store. Run closes
	// every store it gets (Open need not register a cleanup).
	Open func(t *testing.T) store.Store

	// Reopen closes s and returns a store over the same data, to check
	// persistence. Nil means the backend is not persistent, and the
	// persistence case is skipped.
	Reopen func(t *testing.T, s store.Store) store.Store

	// HonoursContext says the backend fails calls made with a done
	// context. When false the cancelled-context case is skipped.
	HonoursContext bool

	// Seals says the store seals secrets itself (store/sealed) and so
	// refuses secrets already in the sealed form; the cases that hand it
	// pre-sealed secrets are skipped.
	Seals bool
}

// Run runs every conformance case as a subtest of t.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.Open == nil {
		t.Fatal("storetest: Harness.Open is nil")
	}
	cases := []struct {
		name string
		fn   func(t *testing.T, e *env)
	}{
		{"EmptyLoad", testEmptyLoad},
		{"PutKeysRoundTrip", testPutKeysRoundTrip},
		{"PutKeysReplaces", testPutKeysReplaces},
		{"PutKeysSeveral", testPutKeysSeveral},
		{"PutKeysRevisions", testPutKeysRevisions},
		{"DeleteKeys", testDeleteKeys},
		{"AddUsage", testAddUsage},
		{"AddUsageSeveralKeys", testAddUsageSeveralKeys},
		{"AddUsageUnknownKey", testAddUsageUnknownKey},
		{"ResetUsage", testResetUsage},
		{"Tokens", testTokens},
		{"DeleteTokenNotFound", testDeleteTokenNotFound},
		{"CallerCopies", testCallerCopies},
		{"Persistence", testPersistence},
		{"ConcurrentAddUsage", testConcurrentAddUsage},
		{"Bulk", testBulk},
		{"BulkReopen", testBulkReopen},
		{"CancelledContext", testCancelledContext},
		{"Duplicates", testDuplicates},
		{"Sealed", testSealed},
		{"Aliases", testAliases},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.fn(t, &env{h: h, t: t})
		})
	}
}

// env opens stores for one case and closes them when it ends.
type env struct {
	h      Harness
	t      *testing.T
	mu     sync.Mutex
	opened []store.Store
	closed map[store.Store]bool
}

func (e *env) open() store.Store {
	e.t.Helper()
	s := e.h.Open(e.t)
	if s == nil {
		e.t.Fatal("Harness.Open returned a nil store")
	}
	e.track(s)
	return s
}

// reopen closes s and returns a store over its data.
func (e *env) reopen(s store.Store) store.Store {
	e.t.Helper()
	e.mu.Lock()
	if e.closed == nil {
		e.closed = make(map[store.Store]bool)
	}
	e.closed[s] = true // Reopen closes it
	e.mu.Unlock()
	r := e.h.Reopen(e.t, s)
	if r == nil {
		e.t.Fatal("Harness.Reopen returned a nil store")
	}
	e.track(r)
	return r
}

func (e *env) track(s store.Store) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.opened) == 0 {
		e.t.Cleanup(e.closeAll)
	}
	e.opened = append(e.opened, s)
}

func (e *env) closeAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.opened) - 1; i >= 0; i-- {
		s := e.opened[i]
		if e.closed[s] {
			continue
		}
		if err := s.Close(); err != nil {
			e.t.Errorf("Close: %v", err)
		}
	}
}

// Fixed times with nanoseconds and a non-UTC zone, so that a backend that
// drops precision or mangles zones is caught (times compare with Equal).
var (
	zone = time.FixedZone("UTC+5:30", 5*3600+1800)
	t0   = time.Date(2025, 3, 14, 15, 9, 26, 535897932, zone)
)

func at(d time.Duration) time.Time { return t0.Add(d) }

func key(id string) pool.Key {
	return pool.Key{
		ID:          id,
		Provider:    "openai",
		Secret:      "sk-test-" + id,
		IsActive:    true,
		MaxRequests: 1000,
		Weight:      3,
		Description: "key " + id,
		Tags:        []string{"team-a", "prod"},
		Project:     "895908428397",
		Proxy:       "socks5://user:test-proxy-pass@10.0.0.7:1080",
		CreatedAt:   at(0),
		UpdatedAt:   at(time.Hour),
	}
}

func token(id string) pool.ClientToken {
	return pool.ClientToken{
		ID:        id,
		Name:      "client " + id,
		Hash:      strings.Repeat("ab", 32),
		Masked:    "kp-A…wxyz",
		CreatedAt: at(2 * time.Hour),
		UpdatedAt: at(3 * time.Hour),
		Limits:    limits.Limits{RPM: 60, RPD: 1000, TPM: 100000, TPD: 1 << 40},
		ExpiresAt: at(48 * time.Hour),
		Providers: []string{"openai", "gem*"},
		Models:    []string{"gpt-4o*", "gemini-2.5-flash"},
	}
}

// load calls Load and checks the invariants every result must hold.
func load(t *testing.T, s store.Store) *store.Contents {
	t.Helper()
	c, err := s.Load(t.Context())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c == nil {
		t.Fatal("Load returned nil Contents")
	}
	if c.Usage == nil {
		t.Fatal("Load returned a nil Usage map")
	}
	// Usage only ever exists for keys that exist.
	ids := make(map[string]bool, len(c.Keys))
	for _, k := range c.Keys {
		if ids[k.ID] {
			t.Errorf("Load: key %q returned twice", k.ID)
		}
		ids[k.ID] = true
	}
	for id := range c.Usage {
		if !ids[id] {
			t.Errorf("Load: usage for %q, which is not a key", id)
		}
	}
	return c
}

func putKeys(t *testing.T, s store.Store, keys ...pool.Key) {
	t.Helper()
	if err := s.PutKeys(t.Context(), keys...); err != nil {
		t.Fatalf("PutKeys: %v", err)
	}
}

func addUsage(t *testing.T, s store.Store, deltas ...pool.UsageDelta) {
	t.Helper()
	if err := s.AddUsage(t.Context(), deltas); err != nil {
		t.Fatalf("AddUsage: %v", err)
	}
}

func putToken(t *testing.T, s store.Store, tok pool.ClientToken) {
	t.Helper()
	if err := s.PutToken(t.Context(), tok); err != nil {
		t.Fatalf("PutToken: %v", err)
	}
}

func keyIDs(keys []pool.Key) []string {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	slices.Sort(ids)
	return ids
}

func tokenIDs(toks []pool.ClientToken) []string {
	ids := make([]string, len(toks))
	for i, k := range toks {
		ids[i] = k.ID
	}
	slices.Sort(ids)
	return ids
}

func usageIDs(u map[string]pool.Usage) []string {
	ids := make([]string, 0, len(u))
	for id := range u {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// diffKey describes how got differs from want, or returns "".
func diffKey(got, want pool.Key) string {
	var d []string
	f := func(name string, g, w any) { d = append(d, fmt.Sprintf("%s = %#v, want %#v", name, g, w)) }
	if got.ID != want.ID {
		f("ID", got.ID, want.ID)
	}
	if got.Provider != want.Provider {
		f("Provider", got.Provider, want.Provider)
	}
	if got.Secret != want.Secret {
		f("Secret", got.Secret, want.Secret)
	}
	if got.IsActive != want.IsActive {
		f("IsActive", got.IsActive, want.IsActive)
	}
	if got.MaxRequests != want.MaxRequests {
		f("MaxRequests", got.MaxRequests, want.MaxRequests)
	}
	if got.Weight != want.Weight {
		f("Weight", got.Weight, want.Weight)
	}
	if got.Description != want.Description {
		f("Description", got.Description, want.Description)
	}
	if got.Project != want.Project {
		f("Project", got.Project, want.Project)
	}
	if got.Proxy != want.Proxy {
		f("Proxy", got.Proxy, want.Proxy)
	}
	// No tags may come back as nil or empty.
	if !slices.Equal(got.Tags, want.Tags) {
		f("Tags", got.Tags, want.Tags)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		f("CreatedAt", got.CreatedAt, want.CreatedAt)
	}
	if !got.UpdatedAt.Equal(want.UpdatedAt) {
		f("UpdatedAt", got.UpdatedAt, want.UpdatedAt)
	}
	if got.Revision != want.Revision {
		f("Revision", got.Revision, want.Revision)
	}
	if got.DisabledReason != want.DisabledReason || !got.DisabledAt.Equal(want.DisabledAt) {
		f("Disabled", got.DisabledReason+" "+got.DisabledAt.String(), want.DisabledReason+" "+want.DisabledAt.String())
	}
	return strings.Join(d, "; ")
}

func diffLastError(got, want *pool.LastError) string {
	switch {
	case got == nil && want == nil:
		return ""
	case got == nil || want == nil:
		return fmt.Sprintf("LastError = %+v, want %+v", got, want)
	case got.Status != want.Status || got.Message != want.Message || !got.At.Equal(want.At):
		return fmt.Sprintf("LastError = %+v, want %+v", *got, *want)
	}
	return ""
}

func diffUsage(got, want pool.Usage) string {
	var d []string
	if got.Requests != want.Requests || got.Successes != want.Successes || got.Failures != want.Failures {
		d = append(d, fmt.Sprintf("requests/successes/failures = %d/%d/%d, want %d/%d/%d",
			got.Requests, got.Successes, got.Failures, want.Requests, want.Successes, want.Failures))
	}
	if got.PromptTokens != want.PromptTokens || got.CompletionTokens != want.CompletionTokens {
		d = append(d, fmt.Sprintf("prompt/completion tokens = %d/%d, want %d/%d",
			got.PromptTokens, got.CompletionTokens, want.PromptTokens, want.CompletionTokens))
	}
	if !got.LastUsed.Equal(want.LastUsed) {
		d = append(d, fmt.Sprintf("LastUsed = %v, want %v", got.LastUsed, want.LastUsed))
	}
	if s := diffLastError(got.LastError, want.LastError); s != "" {
		d = append(d, s)
	}
	return strings.Join(d, "; ")
}

func diffToken(got, want pool.ClientToken) string {
	var d []string
	f := func(name string, g, w any) { d = append(d, fmt.Sprintf("%s = %#v, want %#v", name, g, w)) }
	if got.ID != want.ID {
		f("ID", got.ID, want.ID)
	}
	if got.Name != want.Name {
		f("Name", got.Name, want.Name)
	}
	if got.Hash != want.Hash {
		f("Hash", got.Hash, want.Hash)
	}
	if got.Masked != want.Masked {
		f("Masked", got.Masked, want.Masked)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		f("CreatedAt", got.CreatedAt, want.CreatedAt)
	}
	if !got.UpdatedAt.Equal(want.UpdatedAt) {
		f("UpdatedAt", got.UpdatedAt, want.UpdatedAt)
	}
	if got.Limits != want.Limits {
		f("Limits", got.Limits, want.Limits)
	}
	if !got.ExpiresAt.Equal(want.ExpiresAt) {
		f("ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	}
	if !slices.Equal(got.Providers, want.Providers) {
		f("Providers", got.Providers, want.Providers)
	}
	if !slices.Equal(got.Models, want.Models) {
		f("Models", got.Models, want.Models)
	}
	return strings.Join(d, "; ")
}

// checkKeys fails t unless got holds exactly want, in any order.
func checkKeys(t *testing.T, got, want []pool.Key) {
	t.Helper()
	if g, w := keyIDs(got), keyIDs(want); !slices.Equal(g, w) {
		t.Fatalf("Load: key ids = %v, want %v", g, w)
	}
	byID := make(map[string]pool.Key, len(got))
	for _, k := range got {
		byID[k.ID] = k
	}
	for _, w := range want {
		if d := diffKey(byID[w.ID], w); d != "" {
			t.Errorf("Load: key %q: %s", w.ID, d)
		}
	}
}

// checkUsage fails t unless got holds exactly want, except that a key
// without usage may be absent or have a zero record (in want and in got).
func checkUsage(t *testing.T, got, want map[string]pool.Usage) {
	t.Helper()
	for id, g := range got {
		if _, ok := want[id]; !ok && diffUsage(g, pool.Usage{}) != "" {
			t.Errorf("Load: unexpected usage for %q: %+v", id, g)
		}
	}
	for id, w := range want {
		g, ok := got[id]
		if !ok && diffUsage(pool.Usage{}, w) != "" {
			t.Errorf("Load: no usage for %q, want %+v", id, w)
			continue
		}
		if d := diffUsage(g, w); d != "" {
			t.Errorf("Load: usage of %q: %s", id, d)
		}
	}
}

// checkTokens fails t unless got holds exactly want, in any order.
func checkTokens(t *testing.T, got, want []pool.ClientToken) {
	t.Helper()
	if g, w := tokenIDs(got), tokenIDs(want); !slices.Equal(g, w) {
		t.Fatalf("Load: token ids = %v, want %v", g, w)
	}
	byID := make(map[string]pool.ClientToken, len(got))
	for _, k := range got {
		byID[k.ID] = k
	}
	for _, w := range want {
		if d := diffToken(byID[w.ID], w); d != "" {
			t.Errorf("Load: token %q: %s", w.ID, d)
		}
	}
}

func testEmptyLoad(t *testing.T, e *env) {
	c := load(t, e.open())
	if len(c.Keys) != 0 || len(c.Usage) != 0 || len(c.Tokens) != 0 {
		t.Errorf("Load of empty store = %d keys, %d usage, %d tokens; want none",
			len(c.Keys), len(c.Usage), len(c.Tokens))
	}
}

func testPutKeysRoundTrip(t *testing.T, e *env) {
	tests := []struct {
		name string
		key  pool.Key
	}{
		{"every field", key("key_1")},
		{"inactive unlimited unicode", pool.Key{
			ID:          "key_1741964966535_ab12cd",
			Provider:    "gemini",
			Secret:      "AIzaSyD-ünï€ødé-🔑",
			IsActive:    false,
			MaxRequests: 0,
			Weight:      pool.MaxWeight,
			Description: "Schlüssel für 日本語 tests — “quoted” \t tab, <html> & \"json\" \\ 🚀",
			Tags:        []string{"ünicode", "日本", "a b"},
			CreatedAt:   at(-48 * time.Hour).UTC(),
			UpdatedAt:   at(-time.Nanosecond).In(time.UTC),
		}},
		{"zero optional fields", pool.Key{
			ID:        "key_min",
			Provider:  "anthropic",
			Secret:    "sk-ant-x",
			IsActive:  true,
			CreatedAt: at(0),
			UpdatedAt: at(0),
		}},
		{"large limits", pool.Key{
			ID:          "key_big",
			Provider:    "p",
			Secret:      strings.Repeat("s", pool.MaxSecretLen),
			IsActive:    true,
			MaxRequests: 1<<53 + 1, // not representable as a float64
			Weight:      1,
			Description: strings.Repeat("é", pool.MaxDescriptionLen),
			Tags:        slices.Repeat([]string{"t"}, pool.MaxTags),
			Project:     strings.Repeat("p", pool.MaxProjectLen),
			CreatedAt:   time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC),
			UpdatedAt:   time.Date(2100, 1, 1, 0, 0, 0, 1, zone),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := e.open()
			putKeys(t, s, tt.key)
			c := load(t, s)
			checkKeys(t, c.Keys, []pool.Key{tt.key})
			checkUsage(t, c.Usage, nil)
			checkTokens(t, c.Tokens, nil)
		})
	}
}

func testPutKeysReplaces(t *testing.T, e *env) {
	s := e.open()
	a, b := key("a"), key("b")
	putKeys(t, s, a, b)
	addUsage(t, s, pool.UsageDelta{ID: "a", Requests: 2, Successes: 2, LastUsed: at(time.Minute)})

	a2 := pool.Key{
		ID:          "a",
		Provider:    "other",
		Secret:      "sk-new",
		IsActive:    false,
		MaxRequests: 7,
		Weight:      0,
		Description: "",
		Tags:        nil, // tags removed
		CreatedAt:   a.CreatedAt,
		UpdatedAt:   at(3 * time.Hour),
	}
	putKeys(t, s, a2)
	c := load(t, s)
	checkKeys(t, c.Keys, []pool.Key{a2, b})
	// Replacing a key's configuration keeps its usage.
	checkUsage(t, c.Usage, map[string]pool.Usage{
		"a": {Requests: 2, Successes: 2, LastUsed: at(time.Minute)},
	})
}

func testPutKeysSeveral(t *testing.T, e *env) {
	s := e.open()
	if err := s.PutKeys(t.Context()); err != nil {
		t.Fatalf("PutKeys with no keys: %v", err)
	}
	checkKeys(t, load(t, s).Keys, nil)

	var want []pool.Key
	for i := range 5 {
		k := key(fmt.Sprintf("key_%d", i))
		k.Weight = i
		k.IsActive = i%2 == 0
		want = append(want, k)
	}
	putKeys(t, s, want...)
	checkKeys(t, load(t, s).Keys, want)

	// A second call adds to, and partly replaces, the first.
	more := []pool.Key{key("key_3"), key("key_9")}
	more[0].Description = "replaced"
	putKeys(t, s, more...)
	want[3] = more[0]
	want = append(want, more[1])
	checkKeys(t, load(t, s).Keys, want)
}

func testDeleteKeys(t *testing.T, e *env) {
	tests := []struct {
		name     string
		delete   []string
		wantKeys []string // remaining of a, b, c, d
	}{
		{"none", nil, []string{"a", "b", "c", "d"}},
		{"one", []string{"b"}, []string{"a", "c", "d"}},
		{"several", []string{"a", "c"}, []string{"b", "d"}},
		{"unknown ids ignored", []string{"nope", "b", "also-nope"}, []string{"a", "c", "d"}},
		{"only unknown", []string{"x"}, []string{"a", "b", "c", "d"}},
		{"repeated id", []string{"d", "d"}, []string{"a", "b", "c"}},
		{"all", []string{"d", "c", "b", "a"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := e.open()
			all := map[string]pool.Key{}
			for _, id := range []string{"a", "b", "c", "d"} {
				all[id] = key(id)
				putKeys(t, s, all[id])
			}
			// a, b and c have usage; d has none.
			addUsage(t, s,
				pool.UsageDelta{ID: "a", Requests: 1, Successes: 1, LastUsed: at(1)},
				pool.UsageDelta{ID: "b", Requests: 2, Failures: 2, LastUsed: at(2)},
				pool.UsageDelta{ID: "c", Requests: 3, Successes: 3, LastUsed: at(3)},
			)
			putToken(t, s, token("tok_1"))

			if err := s.DeleteKeys(t.Context(), tt.delete...); err != nil {
				t.Fatalf("DeleteKeys(%q): %v", tt.delete, err)
			}
			c := load(t, s)
			var wantKeys []pool.Key
			wantUsage := map[string]pool.Usage{}
			allUsage := map[string]pool.Usage{
				"a": {Requests: 1, Successes: 1, LastUsed: at(1)},
				"b": {Requests: 2, Failures: 2, LastUsed: at(2)},
				"c": {Requests: 3, Successes: 3, LastUsed: at(3)},
			}
			for _, id := range tt.wantKeys {
				wantKeys = append(wantKeys, all[id])
				if u, ok := allUsage[id]; ok {
					wantUsage[id] = u
				}
			}
			checkKeys(t, c.Keys, wantKeys)
			checkUsage(t, c.Usage, wantUsage)
			checkTokens(t, c.Tokens, []pool.ClientToken{token("tok_1")})

			// A deleted key put again starts without usage.
			for _, id := range tt.delete {
				if k, ok := all[id]; ok {
					putKeys(t, s, k)
					if u, ok := load(t, s).Usage[id]; ok && diffUsage(u, pool.Usage{}) != "" {
						t.Errorf("key %q deleted and put again: usage = %+v, want none", id, u)
					}
				}
			}
		})
	}
}

func testAddUsage(t *testing.T, e *env) {
	errOld := &pool.LastError{Status: 429, Message: "rate limited", At: at(10 * time.Second)}
	errNew := &pool.LastError{Status: 500, Message: "upstream: server error ü", At: at(20 * time.Second)}
	errSameAt := &pool.LastError{Status: 503, Message: "unavailable", At: at(20 * time.Second)}

	tests := []struct {
		name  string
		calls [][]pool.UsageDelta // one AddUsage call each
		want  pool.Usage
	}{
		{
			name:  "first delta",
			calls: [][]pool.UsageDelta{{{ID: "k", Requests: 3, Successes: 2, Failures: 1, LastUsed: at(time.Second), LastError: errOld}}},
			want:  pool.Usage{Requests: 3, Successes: 2, Failures: 1, LastUsed: at(time.Second), LastError: errOld},
		},
		{
			name: "counts accumulate across calls",
			calls: [][]pool.UsageDelta{
				{{ID: "k", Requests: 3, Successes: 2, Failures: 1, LastUsed: at(1)}},
				{{ID: "k", Requests: 10, Successes: 10, LastUsed: at(2)}},
				{{ID: "k", Requests: 1, Failures: 1, LastUsed: at(3)}},
			},
			want: pool.Usage{Requests: 14, Successes: 12, Failures: 2, LastUsed: at(3)},
		},
		{
			name: "several deltas of one key in one call",
			calls: [][]pool.UsageDelta{{
				{ID: "k", Requests: 1, Successes: 1, LastUsed: at(5)},
				{ID: "k", Requests: 2, Failures: 2, LastUsed: at(4)},
			}},
			want: pool.Usage{Requests: 3, Successes: 1, Failures: 2, LastUsed: at(5)},
		},
		{
			name: "LastUsed keeps the max",
			calls: [][]pool.UsageDelta{
				{{ID: "k", Requests: 1, LastUsed: at(time.Hour)}},
				{{ID: "k", Requests: 1, LastUsed: at(time.Minute)}}, // older: ignored
				{{ID: "k", Requests: 1}},                            // zero: unchanged
			},
			want: pool.Usage{Requests: 3, LastUsed: at(time.Hour)},
		},
		{
			name: "LastError keeps the newest",
			calls: [][]pool.UsageDelta{
				{{ID: "k", Failures: 1, LastError: errNew}},
				{{ID: "k", Failures: 1, LastError: errOld}}, // older: ignored
				{{ID: "k", Successes: 1}},                   // nil: unchanged
			},
			want: pool.Usage{Successes: 1, Failures: 2, LastError: errNew},
		},
		{
			name: "newer LastError replaces",
			calls: [][]pool.UsageDelta{
				{{ID: "k", Failures: 1, LastError: errOld}},
				{{ID: "k", Failures: 1, LastError: errNew}},
			},
			want: pool.Usage{Failures: 2, LastError: errNew},
		},
		{
			name: "LastError at the same time replaces",
			calls: [][]pool.UsageDelta{
				{{ID: "k", Failures: 1, LastError: errNew}},
				{{ID: "k", Failures: 1, LastError: errSameAt}},
			},
			want: pool.Usage{Failures: 2, LastError: errSameAt},
		},
		{
			name: "token counts accumulate",
			calls: [][]pool.UsageDelta{
				{{ID: "k", Requests: 1, Successes: 1, PromptTokens: 120, CompletionTokens: 30}},
				{{ID: "k", Requests: 1, Successes: 1, PromptTokens: 1 << 40, CompletionTokens: 7}},
				{{ID: "k", PromptTokens: 1}}, // tokens alone are a change
			},
			want: pool.Usage{Requests: 2, Successes: 2, PromptTokens: 1<<40 + 121, CompletionTokens: 37},
		},
		{
			name:  "empty call",
			calls: [][]pool.UsageDelta{nil, {}},
			want:  pool.Usage{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := e.open()
			putKeys(t, s, key("k"), key("other"))
			for _, call := range tt.calls {
				addUsage(t, s, call...)
			}
			c := load(t, s)
			checkUsage(t, c.Usage, map[string]pool.Usage{"k": tt.want})
			checkKeys(t, c.Keys, []pool.Key{key("k"), key("other")})
		})
	}
}

func testAddUsageSeveralKeys(t *testing.T, e *env) {
	s := e.open()
	putKeys(t, s, key("a"), key("b"), key("c"))
	addUsage(t, s,
		pool.UsageDelta{ID: "a", Requests: 1, Successes: 1, LastUsed: at(1)},
		pool.UsageDelta{ID: "b", Requests: 2, Failures: 2, LastUsed: at(2)},
	)
	addUsage(t, s,
		pool.UsageDelta{ID: "b", Requests: 1, Successes: 1, LastUsed: at(3)},
		pool.UsageDelta{ID: "c", Requests: 5, Successes: 5, LastUsed: at(4)},
	)
	checkUsage(t, load(t, s).Usage, map[string]pool.Usage{
		"a": {Requests: 1, Successes: 1, LastUsed: at(1)},
		"b": {Requests: 3, Successes: 1, Failures: 2, LastUsed: at(3)},
		"c": {Requests: 5, Successes: 5, LastUsed: at(4)},
	})
}

func testAddUsageUnknownKey(t *testing.T, e *env) {
	s := e.open()
	putKeys(t, s, key("live"), key("gone"))
	addUsage(t, s, pool.UsageDelta{ID: "gone", Requests: 4, Successes: 4, LastUsed: at(1)})
	if err := s.DeleteKeys(t.Context(), "gone"); err != nil {
		t.Fatalf("DeleteKeys: %v", err)
	}

	// One batch mixing a live key, a deleted key and a never-known key:
	// only the live key's delta counts, and the call succeeds.
	le := &pool.LastError{Status: 401, Message: "unauthorized", At: at(2)}
	addUsage(t, s,
		pool.UsageDelta{ID: "gone", Requests: 1, Failures: 1, LastUsed: at(2), LastError: le},
		pool.UsageDelta{ID: "live", Requests: 2, Successes: 2, LastUsed: at(3)},
		pool.UsageDelta{ID: "never", Requests: 7, Successes: 7, LastUsed: at(4)},
	)
	c := load(t, s)
	checkKeys(t, c.Keys, []pool.Key{key("live")})
	checkUsage(t, c.Usage, map[string]pool.Usage{
		"live": {Requests: 2, Successes: 2, LastUsed: at(3)},
	})

	// Putting the deleted key back does not resurrect the dropped delta.
	putKeys(t, s, key("gone"))
	c = load(t, s)
	if u, ok := c.Usage["gone"]; ok && diffUsage(u, pool.Usage{}) != "" {
		t.Errorf("usage of re-created key %q = %+v, want none", "gone", u)
	}
	if _, ok := c.Usage["never"]; ok {
		t.Errorf("usage of never-created key %q exists", "never")
	}
}

func testResetUsage(t *testing.T, e *env) {
	le := &pool.LastError{Status: 429, Message: "slow down", At: at(5)}
	before := map[string]pool.Usage{
		"a": {Requests: 10, Successes: 7, Failures: 3, LastUsed: at(6), LastError: le, PromptTokens: 500, CompletionTokens: 70},
		"b": {Requests: 4, Successes: 4, LastUsed: at(7), CompletionTokens: 9},
		"c": {Requests: 1, Failures: 1, LastUsed: at(8), LastError: le},
	}
	reset := func(u pool.Usage) pool.Usage {
		u.Requests, u.Successes, u.Failures, u.PromptTokens, u.CompletionTokens = 0, 0, 0, 0, 0
		return u
	}
	tests := []struct {
		name  string
		reset []string
		want  map[string]pool.Usage
	}{
		{"none", nil, before},
		{"one", []string{"a"}, map[string]pool.Usage{"a": reset(before["a"]), "b": before["b"], "c": before["c"]}},
		{"several", []string{"a", "c"}, map[string]pool.Usage{"a": reset(before["a"]), "b": before["b"], "c": reset(before["c"])}},
		{"unknown ids ignored", []string{"x", "b", "y"}, map[string]pool.Usage{"a": before["a"], "b": reset(before["b"]), "c": before["c"]}},
		{"key without usage", []string{"d"}, before},
		{"twice", []string{"b", "b"}, map[string]pool.Usage{"a": before["a"], "b": reset(before["b"]), "c": before["c"]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := e.open()
			putKeys(t, s, key("a"), key("b"), key("c"), key("d"))
			for _, id := range []string{"a", "b", "c"} {
				u := before[id]
				addUsage(t, s, pool.UsageDelta{ID: id, Requests: u.Requests, Successes: u.Successes,
					Failures: u.Failures, LastUsed: u.LastUsed, LastError: u.LastError,
					PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens})
			}
			if err := s.ResetUsage(t.Context(), tt.reset); err != nil {
				t.Fatalf("ResetUsage(%q): %v", tt.reset, err)
			}
			c := load(t, s)
			checkUsage(t, c.Usage, tt.want)
			if len(c.Keys) != 4 {
				t.Errorf("Load: %d keys after ResetUsage, want 4", len(c.Keys))
			}
			if _, ok := c.Usage["x"]; ok {
				t.Error("ResetUsage created usage for an unknown id")
			}
		})
	}

	t.Run("counts again after reset", func(t *testing.T) {
		s := e.open()
		putKeys(t, s, key("a"))
		addUsage(t, s, pool.UsageDelta{ID: "a", Requests: 5, Successes: 5, LastUsed: at(10)})
		if err := s.ResetUsage(t.Context(), []string{"a"}); err != nil {
			t.Fatalf("ResetUsage: %v", err)
		}
		addUsage(t, s, pool.UsageDelta{ID: "a", Requests: 2, Failures: 2, LastUsed: at(5)})
		checkUsage(t, load(t, s).Usage, map[string]pool.Usage{
			"a": {Requests: 2, Failures: 2, LastUsed: at(10)},
		})
	})
}

func testTokens(t *testing.T, e *env) {
	s := e.open()
	t1, t2 := token("tok_1"), token("tok_2")
	t2.Name = "Ünïcode 名前 🚀"
	putToken(t, s, t1)
	putToken(t, s, t2)
	checkTokens(t, load(t, s).Tokens, []pool.ClientToken{t1, t2})

	// Replace by id.
	t1b := pool.ClientToken{ID: "tok_1", Name: "renamed", Hash: strings.Repeat("cd", 32), Masked: "kp-B…0000", CreatedAt: at(-time.Hour).UTC()}
	putToken(t, s, t1b)
	c := load(t, s)
	checkTokens(t, c.Tokens, []pool.ClientToken{t1b, t2})
	checkKeys(t, c.Keys, nil)

	if err := s.DeleteToken(t.Context(), "tok_1"); err != nil {
		t.Fatalf("DeleteToken: %v", err)
	}
	checkTokens(t, load(t, s).Tokens, []pool.ClientToken{t2})

	// A deleted token is gone: deleting it again is ErrNotFound.
	if err := s.DeleteToken(t.Context(), "tok_1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteToken of a deleted token: err = %v, want ErrNotFound", err)
	}
	if err := s.DeleteToken(t.Context(), "tok_2"); err != nil {
		t.Fatalf("DeleteToken: %v", err)
	}
	checkTokens(t, load(t, s).Tokens, nil)

	// Tokens and keys are separate: a key with a token's id is unaffected.
	putKeys(t, s, key("tok_3"))
	putToken(t, s, token("tok_3"))
	if err := s.DeleteToken(t.Context(), "tok_3"); err != nil {
		t.Fatalf("DeleteToken: %v", err)
	}
	c = load(t, s)
	checkKeys(t, c.Keys, []pool.Key{key("tok_3")})
	checkTokens(t, c.Tokens, nil)
}

func testDeleteTokenNotFound(t *testing.T, e *env) {
	tests := []struct {
		name string
		id   string
	}{
		{"empty store", "tok_missing"},
		{"other token exists", "tok_other"},
		{"key id, not a token", "key_1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := e.open()
			putKeys(t, s, key("key_1"))
			if tt.name != "empty store" {
				putToken(t, s, token("tok_1"))
			}
			err := s.DeleteToken(t.Context(), tt.id)
			if !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("DeleteToken(%q): err = %v, want one matching store.ErrNotFound", tt.id, err)
			}
			c := load(t, s)
			if tt.name != "empty store" {
				checkTokens(t, c.Tokens, []pool.ClientToken{token("tok_1")})
			}
			checkKeys(t, c.Keys, []pool.Key{key("key_1")})
		})
	}
}

// testCallerCopies checks that the store keeps its own copies: changing
// what was passed in, or what Load returned, does not change the store.
func testCallerCopies(t *testing.T, e *env) {
	s := e.open()
	k := key("a")
	putKeys(t, s, k)
	k.Tags[0] = "mutated"
	le := &pool.LastError{Status: 500, Message: "boom", At: at(1)}
	addUsage(t, s, pool.UsageDelta{ID: "a", Requests: 1, Failures: 1, LastError: le})
	le.Message = "mutated"

	c := load(t, s)
	want := key("a")
	checkKeys(t, c.Keys, []pool.Key{want})
	wantUsage := map[string]pool.Usage{"a": {Requests: 1, Failures: 1, LastError: &pool.LastError{Status: 500, Message: "boom", At: at(1)}}}
	checkUsage(t, c.Usage, wantUsage)

	c.Keys[0].Tags[0] = "mutated"
	c.Keys[0].Description = "mutated"
	if u := c.Usage["a"]; u.LastError != nil {
		u.LastError.Message = "mutated"
	}
	c.Usage["zzz"] = pool.Usage{Requests: 1}
	c = load(t, s)
	checkKeys(t, c.Keys, []pool.Key{want})
	checkUsage(t, c.Usage, wantUsage)
}

func testPersistence(t *testing.T, e *env) {
	if e.h.Reopen == nil {
		t.Skip("backend is not persistent (Harness.Reopen is nil)")
	}
	s := e.open()
	a, b, gone := key("a"), key("b"), key("gone")
	b.IsActive = false
	b.Tags = nil
	b.Description = "ünïcødé ✓"
	putKeys(t, s, a, b, gone)
	le := &pool.LastError{Status: 429, Message: "quota", At: at(30)}
	addUsage(t, s,
		pool.UsageDelta{ID: "a", Requests: 5, Successes: 4, Failures: 1, LastUsed: at(40), LastError: le, PromptTokens: 40, CompletionTokens: 4},
		pool.UsageDelta{ID: "b", Requests: 9, Successes: 9, LastUsed: at(50), PromptTokens: 90},
		pool.UsageDelta{ID: "gone", Requests: 1, LastUsed: at(60)},
	)
	if err := s.ResetUsage(t.Context(), []string{"b"}); err != nil {
		t.Fatalf("ResetUsage: %v", err)
	}
	if err := s.DeleteKeys(t.Context(), "gone"); err != nil {
		t.Fatalf("DeleteKeys: %v", err)
	}
	t1, t2 := token("tok_1"), token("tok_2")
	putToken(t, s, t1)
	putToken(t, s, t2)
	if err := s.DeleteToken(t.Context(), "tok_2"); err != nil {
		t.Fatalf("DeleteToken: %v", err)
	}

	wantUsage := map[string]pool.Usage{
		"a": {Requests: 5, Successes: 4, Failures: 1, LastUsed: at(40), LastError: le, PromptTokens: 40, CompletionTokens: 4},
		"b": {LastUsed: at(50)},
	}
	s = e.reopen(s)
	c := load(t, s)
	checkKeys(t, c.Keys, []pool.Key{a, b})
	checkUsage(t, c.Usage, wantUsage)
	checkTokens(t, c.Tokens, []pool.ClientToken{t1})

	// The reopened store keeps working on the persisted data.
	addUsage(t, s, pool.UsageDelta{ID: "a", Requests: 1, Successes: 1, LastUsed: at(70), CompletionTokens: 6})
	if err := s.DeleteToken(t.Context(), "tok_2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteToken of a token deleted before reopen: err = %v, want ErrNotFound", err)
	}
	wantUsage["a"] = pool.Usage{Requests: 6, Successes: 5, Failures: 1, LastUsed: at(70), LastError: le, PromptTokens: 40, CompletionTokens: 10}

	s = e.reopen(s)
	c = load(t, s)
	checkKeys(t, c.Keys, []pool.Key{a, b})
	checkUsage(t, c.Usage, wantUsage)
	checkTokens(t, c.Tokens, []pool.ClientToken{t1})
}

func testConcurrentAddUsage(t *testing.T, e *env) {
	const goroutines, calls = 8, 100
	s := e.open()
	putKeys(t, s, key("a"), key("b"))

	var wg sync.WaitGroup
	errs := make(chan error, goroutines*calls)
	for g := range goroutines {
		wg.Go(func() {
			for i := range calls {
				n := g*calls + i
				d := []pool.UsageDelta{
					{ID: "a", Requests: 1, Successes: 1, LastUsed: at(time.Duration(n))},
					{ID: "b", Requests: 2, Failures: 1, Successes: 1, LastUsed: at(-time.Duration(n))},
				}
				if err := s.AddUsage(t.Context(), d); err != nil {
					errs <- err
				}
			}
		})
	}
	// Loads while writing must not fail either.
	wg.Go(func() {
		for range 10 {
			if _, err := s.Load(t.Context()); err != nil {
				errs <- fmt.Errorf("Load: %w", err)
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent AddUsage: %v", err)
	}
	const n = goroutines * calls
	checkUsage(t, load(t, s).Usage, map[string]pool.Usage{
		"a": {Requests: n, Successes: n, LastUsed: at(n - 1)},
		"b": {Requests: 2 * n, Successes: n, Failures: n, LastUsed: at(0)},
	})
}

func testBulk(t *testing.T, e *env) {
	const n = 10_000
	s := e.open()
	keys := make([]pool.Key, n)
	ids := make([]string, n)
	deltas := make([]pool.UsageDelta, n)
	want := make(map[string]pool.Usage, n)
	for i := range keys {
		id := fmt.Sprintf("key_%05d", i)
		k := key(id)
		k.Weight = i % (pool.MaxWeight + 1)
		k.MaxRequests = int64(i)
		k.IsActive = i%3 != 0
		keys[i], ids[i] = k, id
		deltas[i] = pool.UsageDelta{ID: id, Requests: int64(i + 1), Successes: int64(i), Failures: 1, LastUsed: at(time.Duration(i))}
		want[id] = pool.Usage{Requests: int64(i + 1), Successes: int64(i), Failures: 1, LastUsed: at(time.Duration(i))}
	}
	if err := s.PutKeys(t.Context(), keys...); err != nil {
		t.Fatalf("PutKeys of %d keys: %v", n, err)
	}
	putToken(t, s, token("tok_1"))
	if err := s.AddUsage(t.Context(), deltas); err != nil {
		t.Fatalf("AddUsage of %d deltas: %v", n, err)
	}
	c := load(t, s)
	checkKeys(t, c.Keys, keys)
	checkUsage(t, c.Usage, want)

	if err := s.DeleteKeys(t.Context(), ids...); err != nil {
		t.Fatalf("DeleteKeys of %d keys: %v", n, err)
	}
	c = load(t, s)
	if len(c.Keys) != 0 || len(c.Usage) != 0 {
		t.Errorf("after deleting all %d keys: Load = %d keys, %d usage; want none", n, len(c.Keys), len(c.Usage))
	}
	checkTokens(t, c.Tokens, []pool.ClientToken{token("tok_1")})
}

// testBulkReopen reads many keys back through a fresh store: more than a
// page of any listing a backend pages through (1,000 names on Cloudflare
// KV), spread over two providers, with usage, then half deleted and the
// rest edited.
func testBulkReopen(t *testing.T, e *env) {
	if e.h.Reopen == nil {
		t.Skip("backend is not persistent (Harness.Reopen is nil)")
	}
	const n = 2_500
	s := e.open()
	keys := make([]pool.Key, n)
	deltas := make([]pool.UsageDelta, n)
	want := make(map[string]pool.Usage, n)
	for i := range keys {
		k := key(fmt.Sprintf("page_%05d", i))
		if i%2 == 1 {
			k.Provider = "gemini"
		}
		k.Revision = 1
		keys[i] = k
		deltas[i] = pool.UsageDelta{ID: k.ID, Requests: int64(i + 1), Successes: int64(i), Failures: 1, LastUsed: at(time.Duration(i))}
		want[k.ID] = pool.Usage{Requests: int64(i + 1), Successes: int64(i), Failures: 1, LastUsed: at(time.Duration(i))}
	}
	putKeys(t, s, keys...)
	addUsage(t, s, deltas...)
	s = e.reopen(s)
	c := load(t, s)
	checkKeys(t, c.Keys, keys)
	checkUsage(t, c.Usage, want)

	var gone []string
	var kept []pool.Key
	for i, k := range keys {
		if i%2 == 0 {
			gone = append(gone, k.ID)
			delete(want, k.ID)
			continue
		}
		k.Description = "edited"
		k.Revision = 2
		kept = append(kept, k)
	}
	if err := s.DeleteKeys(t.Context(), gone...); err != nil {
		t.Fatalf("DeleteKeys of %d keys: %v", len(gone), err)
	}
	putKeys(t, s, kept...)
	s = e.reopen(s)
	c = load(t, s)
	checkKeys(t, c.Keys, kept)
	checkUsage(t, c.Usage, want)
}

func testCancelledContext(t *testing.T, e *env) {
	if !e.h.HonoursContext {
		t.Skip("backend does not honour context cancellation (Harness.HonoursContext is false)")
	}
	s := e.open()
	putKeys(t, s, key("a"))
	addUsage(t, s, pool.UsageDelta{ID: "a", Requests: 1, Successes: 1, LastUsed: at(1)})
	putToken(t, s, token("tok_1"))

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	changed := key("a")
	changed.Description = "changed"
	tests := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Load", func(ctx context.Context) error { _, err := s.Load(ctx); return err }},
		{"PutKeys", func(ctx context.Context) error { return s.PutKeys(ctx, changed, key("b")) }},
		{"DeleteKeys", func(ctx context.Context) error { return s.DeleteKeys(ctx, "a") }},
		{"AddUsage", func(ctx context.Context) error {
			return s.AddUsage(ctx, []pool.UsageDelta{{ID: "a", Requests: 5, LastUsed: at(9)}})
		}},
		{"ResetUsage", func(ctx context.Context) error { return s.ResetUsage(ctx, []string{"a"}) }},
		{"PutToken", func(ctx context.Context) error { return s.PutToken(ctx, token("tok_2")) }},
		{"DeleteToken", func(ctx context.Context) error { return s.DeleteToken(ctx, "tok_1") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(ctx); err == nil {
				t.Errorf("%s with a cancelled context: err = nil, want an error", tt.name)
			}
			// A call that returned an error wrote nothing.
			c := load(t, s)
			checkKeys(t, c.Keys, []pool.Key{key("a")})
			checkUsage(t, c.Usage, map[string]pool.Usage{"a": {Requests: 1, Successes: 1, LastUsed: at(1)}})
			checkTokens(t, c.Tokens, []pool.ClientToken{token("tok_1")})
		})
	}
}

// testPutKeysRevisions: a key with a revision is written only over an older
// one, so concurrent edits from two instances are refused, not lost.
func testPutKeysRevisions(t *testing.T, e *env) {
	s := e.open()
	rev := func(id string, r int64, desc string) pool.Key {
		k := key(id)
		k.Revision, k.Description = r, desc
		return k
	}
	putKeys(t, s, rev("a", 1, "first"))
	putKeys(t, s, rev("a", 2, "second"))
	// An edit based on revision 1, after revision 2 was written elsewhere.
	if err := s.PutKeys(t.Context(), rev("a", 2, "lost update")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("PutKeys over an equal revision = %v, want ErrConflict", err)
	}
	if err := s.PutKeys(t.Context(), rev("a", 1, "older")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("PutKeys over a newer revision = %v, want ErrConflict", err)
	}
	// All or none: a batch with one conflict writes nothing.
	if err := s.PutKeys(t.Context(), rev("b", 1, "new"), rev("a", 2, "again")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("batch with a conflict = %v, want ErrConflict", err)
	}
	// A jump of several revisions is fine: the writer has seen them all.
	putKeys(t, s, rev("c", 1, "c1"))
	putKeys(t, s, rev("c", 4, "c4"))
	disabled := rev("c", 5, "c5")
	disabled.DisabledReason, disabled.DisabledAt = "invalid_key: API key not valid", at(2*time.Hour)
	putKeys(t, s, disabled)
	// Revision 0 writes unconditionally.
	putKeys(t, s, rev("a", 0, "forced"))
	c := load(t, s)
	want := []pool.Key{rev("a", 0, "forced"), disabled}
	checkKeys(t, c.Keys, want)
}

// testAliases checks a store.AliasStore: empty at first, a round trip, a
// replacement, persistence. Stores that keep no aliases skip it.
func testAliases(t *testing.T, e *env) {
	s := e.open()
	as, ok := s.(store.AliasStore)
	if !ok {
		t.Skip("the store keeps no aliases")
	}
	ctx := context.Background()
	got, err := as.Aliases(ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("new store: aliases %v, %v; want none", got, err)
	}
	want := map[string]string{"fast": "gemini/gemini-2.5-flash", "smart": "openai/gpt-4.1", "日本": "anthropic/claude-sonnet-4-5"}
	if err := as.PutAliases(ctx, want); err != nil {
		t.Fatal(err)
	}
	want["fast"] = "mutated" // the store kept its own copy
	if got, err = as.Aliases(ctx); err != nil || len(got) != 3 || got["fast"] != "gemini/gemini-2.5-flash" || got["日本"] != "anthropic/claude-sonnet-4-5" {
		t.Fatalf("aliases %v, %v after a put", got, err)
	}
	if err := as.PutAliases(ctx, map[string]string{"fast": "gemini/gemini-2.5-pro"}); err != nil {
		t.Fatal(err)
	}
	if got, _ = as.Aliases(ctx); len(got) != 1 || got["fast"] != "gemini/gemini-2.5-pro" {
		t.Fatalf("aliases %v after a replacement, want only the new one", got)
	}
	if e.h.Reopen == nil {
		return
	}
	r, ok := e.reopen(s).(store.AliasStore)
	if !ok {
		t.Fatal("the reopened store keeps no aliases")
	}
	if got, err = r.Aliases(ctx); err != nil || len(got) != 1 || got["fast"] != "gemini/gemini-2.5-pro" {
		t.Fatalf("aliases %v, %v after reopening", got, err)
	}
}
