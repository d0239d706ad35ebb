package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keypool/keypool/worker-proxy/provider"
	"github.com/keypool/keypool/worker-proxy/store/boltstore"
)

const adminKey = "server-test-admin-key-0123456789"

// newTestServer runs a Server over a real bbolt store in a temp dir.
func newTestServer(t testing.TB) (*Server, *boltstore.Store) {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "keypool.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg, _ := provider.NewRegistry(provider.Defaults()...)
	s, err := New(t.Context(), Config{AdminKey: adminKey, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, st, reg)
	if err != nil {
		t.Fatal(err)
	}
	return s, st
}

func serve(s *Server, method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("X-Admin-Key", adminKey)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w
}

// A failing store gives a JSON 500 that names no internals, and the pool
// is left as it was.
func TestStoreFailureIs500AndChangesNothing(t *testing.T) {
	s, st := newTestServer(t)
	if w := serve(s, "POST", "/admin/keys", `{"provider":"openai","apiKey":"sk-before-failure-000001"}`); w.Code != 201 {
		t.Fatalf("add: %d %s", w.Code, w.Body)
	}
	st.Close() // every later store call fails
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/admin/keys", `{"provider":"openai","apiKey":"sk-after-failure-0000001"}`},
		{"POST", "/admin/keys/bulk", `{"provider":"openai","apiKeys":["sk-bulk-after-failure-01"]}`},
		{"POST", "/admin/reset", `{"provider":"openai"}`},
		{"POST", "/admin/tokens", `{"name":"x"}`},
	} {
		w := serve(s, tc.method, tc.path, tc.body)
		if w.Code != 500 || !strings.Contains(w.Body.String(), `"error":"Internal error`) ||
			strings.Contains(w.Body.String(), "bolt") || strings.Contains(w.Body.String(), "sk-") {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, w.Code, w.Body)
		}
	}
	if n := s.pool.Len(); n != 1 {
		t.Fatalf("pool has %d keys after failed writes, want 1", n)
	}
	if s.tokens.has("anything") || len(s.tokens.list()) != 0 {
		t.Fatal("a token was added although the store failed")
	}
}

func TestBulkImportAndDelete(t *testing.T) {
	s, _ := newTestServer(t)
	serve(s, "POST", "/admin/keys", `{"provider":"gemini","apiKey":"AIza-existing-000000001"}`)
	body := `{"provider":"gemini","apiKeys":["AIza-bulk-0000000000001","AIza-existing-000000001","bad key","AIza-bulk-0000000000001","AIza-bulk-0000000000002"],"maxRequests":10,"metadata":{"tags":["imported"]}}`
	w := serve(s, "POST", "/admin/keys/bulk", body)
	var resp struct {
		Added, Duplicates, Invalid int
		Results                    []struct {
			Index                           int
			Status, KeyID, MaskedKey, Error string
		}
	}
	json.Unmarshal(w.Body.Bytes(), &resp)
	if w.Code != 201 || resp.Added != 2 || resp.Duplicates != 2 || resp.Invalid != 1 || len(resp.Results) != 5 {
		t.Fatalf("bulk: %d %s", w.Code, w.Body)
	}
	wantStatus := []string{"added", "duplicate", "invalid", "duplicate", "added"}
	for i, r := range resp.Results {
		if r.Status != wantStatus[i] || r.Index != i {
			t.Errorf("result %d: %+v, want %s", i, r, wantStatus[i])
		}
	}
	if strings.Contains(w.Body.String(), "AIza-bulk-0000000000001") {
		t.Fatal("bulk answer shows a whole key")
	}
	// Imported keys keep their input order in the round robin.
	es := s.pool.Entries("gemini")
	if len(es) != 3 || es[1].ID() != resp.Results[0].KeyID || es[2].ID() != resp.Results[4].KeyID {
		t.Fatalf("order after import: %v", es)
	}
	w = serve(s, "POST", "/admin/keys/bulk-delete", `{"ids":["`+resp.Results[0].KeyID+`","key_0_nothere","`+resp.Results[4].KeyID+`"]}`)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"deleted":2`) || !strings.Contains(w.Body.String(), `"notFound":["key_0_nothere"]`) {
		t.Fatalf("bulk delete: %d %s", w.Code, w.Body)
	}
	if s.pool.Len() != 1 {
		t.Fatalf("%d keys left", s.pool.Len())
	}
}

func TestBulkImportScales(t *testing.T) {
	s, st := newTestServer(t)
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = fmt.Sprintf("AIza-scale-%08d", i)
	}
	b, _ := json.Marshal(map[string]any{"provider": "gemini", "apiKeys": keys})
	if w := serve(s, "POST", "/admin/keys/bulk", string(b)); w.Code != 201 || !strings.Contains(w.Body.String(), `"added":10000`) {
		t.Fatalf("import 10k: %d %.200s", w.Code, w.Body)
	}
	c, _ := st.Load(t.Context())
	if len(c.Keys) != 10000 {
		t.Fatalf("store holds %d keys", len(c.Keys))
	}
	ids := make([]string, 0, 10000)
	for _, k := range c.Keys {
		ids = append(ids, k.ID)
	}
	b, _ = json.Marshal(map[string]any{"ids": ids})
	if w := serve(s, "POST", "/admin/keys/bulk-delete", string(b)); w.Code != 200 || !strings.Contains(w.Body.String(), `"deleted":10000`) {
		t.Fatalf("delete 10k: %d %.200s", w.Code, w.Body)
	}
}

// FuzzAddKey throws arbitrary bodies at POST /admin/keys. Whatever comes
// in, the answer is JSON with a known status, and the pool and the store
// change exactly when the answer is 201.
func FuzzAddKey(f *testing.F) {
	for _, seed := range []string{
		`{"provider":"gemini","apiKey":"AIzaSyA-1234567890","maxRequests":1000,"metadata":{"description":"Gemini API Key 1","tags":["production","backup"]}}`,
		`{"provider":"openai","apiKey":"sk-x","isActive":false,"weight":3}`,
		`{"provider":"gemini","apiKey":""}`, `{"provider":"","apiKey":"x"}`, `{}`, `[]`, `null`, `"x"`, ``,
		`{"provider":"gemini","apiKey":"a\u0000b"}`, `{"provider":"gemini","apiKey":"x","maxRequests":1e30}`,
		`{"provider":"gemini","apiKey":"x","metadata":{"tags":["a","a",""]}}`, `{"provider":"gemini","apiKey":"x"}{"a":1}`,
	} {
		f.Add(seed)
	}
	s, st := newTestServer(f)
	f.Fuzz(func(t *testing.T, body string) {
		before := s.pool.Len()
		w := serve(s, "POST", "/admin/keys", body)
		switch w.Code {
		case 201, 400, 409:
		default:
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
		var m map[string]any
		if err := json.NewDecoder(bytes.NewReader(w.Body.Bytes())).Decode(&m); err != nil {
			t.Fatalf("answer is not JSON: %q", w.Body)
		}
		after := s.pool.Len()
		if w.Code == 201 {
			id, _ := m["keyId"].(string)
			if after != before+1 {
				t.Fatalf("201 but pool went %d → %d", before, after)
			}
			c, err := st.Load(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, k := range c.Keys {
				found = found || k.ID == id
			}
			if !found {
				t.Fatalf("201 but key %s not in the store", id)
			}
		} else if after != before {
			t.Fatalf("%d but pool went %d → %d", w.Code, before, after)
		} else if _, ok := m["error"].(string); !ok {
			t.Fatalf("error answer without an error message: %s", w.Body)
		}
	})
}

// FuzzUpdateKey does the same for PUT /admin/keys/{id}: a refused update
// leaves the key exactly as it was.
func FuzzUpdateKey(f *testing.F) {
	for _, seed := range []string{`{"isActive":false}`, `{"maxRequests":2000,"metadata":{"description":"x"}}`, `{"maxRequests":-1}`, `{"weight":99999}`, `{"metadata":{"tags":null}}`, `{"metadata":null}`, `1`} {
		f.Add(seed)
	}
	s, _ := newTestServer(f)
	w := serve(s, "POST", "/admin/keys", `{"provider":"gemini","apiKey":"AIza-fuzz-update-0000001"}`)
	var added struct{ KeyID string }
	json.Unmarshal(w.Body.Bytes(), &added)
	f.Fuzz(func(t *testing.T, body string) {
		e, _ := s.pool.Entry(added.KeyID)
		before := e.Key()
		w := serve(s, "PUT", "/admin/keys/"+added.KeyID, body)
		switch w.Code {
		case 200:
		case 400:
			after := e.Key()
			if after.IsActive != before.IsActive || after.MaxRequests != before.MaxRequests || after.Weight != before.Weight ||
				after.Description != before.Description || strings.Join(after.Tags, ",") != strings.Join(before.Tags, ",") {
				t.Fatalf("refused update %q changed the key: %+v → %+v", body, before, after)
			}
		default:
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
		if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("answer is not JSON: %q", w.Body)
		}
	})
}

func TestUnknownPathsAndMethodsAreJSON(t *testing.T) {
	s, _ := newTestServer(t)
	for _, tc := range []struct {
		method, path string
		code         int
	}{{"GET", "/nope", 404}, {"DELETE", "/admin/status", 405}, {"GET", "/admin/reset", 405}, {"GET", "/healthz", 200}} {
		w := serve(s, tc.method, tc.path, "")
		if w.Code != tc.code || !json.Valid(w.Body.Bytes()) || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: %d %q", tc.method, tc.path, w.Code, w.Body)
		}
	}
}

func TestProxyFromEnvironmentOnlyWhenSet(t *testing.T) {
	none := func(string) string { return "" }
	if proxyFromEnvironment(none) != nil {
		t.Fatal("a proxy function without any proxy variable")
	}
	for _, v := range []string{"HTTPS_PROXY", "http_proxy"} {
		env := func(k string) string {
			if k == v {
				return "http://127.0.0.1:3128"
			}
			return ""
		}
		if proxyFromEnvironment(env) == nil {
			t.Fatalf("%s set, but no proxy function", v)
		}
	}
}
