//go:build !js

package adminclient

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/keypool/keypool/worker-proxy/adminapi"
)

// The browser decodes status through statusFlattenJS and parseFlat. Run the
// same JavaScript in Node and check the result equals encoding/json's.
// (The Chromium end-to-end test in wasm/ covers this path in a browser.)
func TestStatusFlattenMatchesEncodingJSON(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is missing; the browser end-to-end test covers this path")
	}
	at := "2026-01-02T03:04:05.006Z"
	st := adminapi.StatusResponse{
		Store:     adminapi.StoreHealth{Backend: "cfkv", OK: false, Since: &at, Detail: "KV 503"},
		TotalKeys: 4, ActiveKeys: 2, AvailableKeys: 1, CoolingKeys: 1, DisabledKeys: 1, Projects: 1, KeysWithoutProject: 2,
		Providers: []adminapi.ProviderStatus{
			{Provider: "anthropic", Keys: []adminapi.KeyStatus{}},
			{Provider: "gemini", TotalKeys: 3, ActiveKeys: 2, AvailableKeys: 1, CoolingKeys: 1, DisabledKeys: 1,
				RestingModelPairs: 2, Projects: 1, KeysWithoutProject: 2, PromptTokens: 1234, CompletionTokens: 567, Keys: []adminapi.KeyStatus{
					{ID: "key_1", Provider: "gemini", IsActive: true, Usage: "150/1000", LastUsed: &at, MaskedKey: "AIza…x7Q2", State: "active",
						Available: true, MaxRequests: 1000, Weight: 3, Requests: 150, Successes: 149, Failures: 1, SuccessRate: 0.9933333333333333,
						InFlight: 2, Description: "Gemini 键 1, \"quoted\"\ttab", Tags: []string{"production", "备份"}, CreatedAt: &at, UpdatedAt: &at,
						Project: "895908428397", ProjectLearned: true, Proxy: "socks5://u:xxxxx@127.0.0.1:1080", PromptTokens: 1234, CompletionTokens: 567,
						ModelCooldowns: []adminapi.ModelCooldown{{Model: "gemini-2.5-pro", Until: &at, Reason: "rate_limited: 429\ntoo many"}, {Model: "gemini-2.5-flash", Reason: "quota_exhausted"}}},
					{ID: "key_2", Provider: "gemini", Usage: "5/unlimited", MaskedKey: "AIza…0002", State: "cooling", CoolingUntil: &at,
						CoolingReason: "rate_limited", ConsecutiveFailures: 4, LastError: &adminapi.LastError{Status: 429, Message: "Resource\nexhausted", At: &at},
						Tags: []string{}, CreatedAt: &at},
					{ID: "key_3", Provider: "gemini", MaskedKey: "…", State: "disabled", DisabledReason: "invalid_key: 401", DisabledAt: &at,
						LastError: &adminapi.LastError{Status: 401, Message: "bad", At: nil}, Tags: []string{}},
				}},
			{Provider: "openai", TotalKeys: 1, Keys: []adminapi.KeyStatus{{ID: "key_4", Provider: "openai", MaskedKey: "sk-…0004", State: "active", Tags: []string{}}}},
		},
	}
	body, _ := json.Marshal(st)
	dir := t.TempDir()
	script := "const text = require('fs').readFileSync(process.argv[2], 'utf8');\nprocess.stdout.write((function(text){" + statusFlattenJS + "})(text));\n"
	os.WriteFile(filepath.Join(dir, "flat.js"), []byte(script), 0o644)
	os.WriteFile(filepath.Join(dir, "status.json"), body, 0o644)
	out, err := exec.Command(node, filepath.Join(dir, "flat.js"), filepath.Join(dir, "status.json")).Output()
	if err != nil {
		t.Fatal(err)
	}
	var got, want adminapi.StatusResponse
	if err := parseFlat(string(out), &got); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(body, &want)
	// Control characters become spaces on the fast path.
	want.Providers[1].Keys[0].Description = strings.ReplaceAll(want.Providers[1].Keys[0].Description, "\t", " ")
	want.Providers[1].Keys[1].LastError.Message = "Resource exhausted"
	want.Providers[1].Keys[0].ModelCooldowns[0].Reason = "rate_limited: 429 too many"
	if !reflect.DeepEqual(got, want) {
		gj, _ := json.MarshalIndent(got, "", " ")
		wj, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("fast path differs:\n got %s\nwant %s", gj, wj)
	}
	// The providers' keys lie one after the other in one array, so the
	// dashboard lists them all without a copy.
	prev, next := got.Providers[1].Keys, got.Providers[2].Keys
	if cap(prev) <= len(prev) || &prev[:len(prev)+1][len(prev)] != &next[0] {
		t.Error("openai's keys do not follow gemini's in one array")
	}
}

// A status whose totals undercount its keys still decodes every key.
func TestParseFlatMoreKeysThanTotals(t *testing.T) {
	field := func(n int, vals ...string) string {
		f := make([]string, n)
		for i := range f {
			f[i] = "\x00"
		}
		copy(f, vals)
		return strings.Join(f, "\x1f")
	}
	key := func(id, prov string) string {
		return "K\x1f" + field(keyFields, id, prov, "1", "", "\x00", "masked", "active")
	}
	recs := []string{
		"S\x1f" + field(11, "bolt", "1", "\x00", "", "1"), // says 1 key in all
		"P\x1f" + field(11, "gemini", "1"),
		key("g1", "gemini"), key("g2", "gemini"),
		"P\x1f" + field(11, "openai", "0"),
		key("o1", "openai"),
	}
	var st adminapi.StatusResponse
	if err := parseFlat(strings.Join(recs, "\x1e"), &st); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range st.Providers {
		for _, k := range p.Keys {
			ids = append(ids, p.Provider+"/"+k.ID)
		}
	}
	if strings.Join(ids, " ") != "gemini/g1 gemini/g2 openai/o1" {
		t.Fatalf("keys %v", ids)
	}
}
