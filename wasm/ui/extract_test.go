//go:build !js

package ui

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/keypool/keypool/worker-proxy/adminclient"
	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

func TestExtractKeys(t *testing.T) {
	g1, g2, g3 := "AIzaSyFakeExtract0000000000000001", "AIzaSyFakeExtract0000000000000002", "AIzaSyFakeExtract0000000000000003"
	for _, c := range []struct {
		name, provider, text string
		want                 Extracted
	}{
		{"one a line", "gemini", g1 + "\n\n" + g2 + "\r\n", Extracted{Keys: []string{g1, g2}, Lines: []int{1, 3}}},
		{"comma and space separated", "gemini", g1 + ", " + g2 + " " + g3, Extracted{Keys: []string{g1, g2, g3}, Lines: []int{1, 1, 1}}},
		{".env lines", "gemini", "# keys\nGEMINI_API_KEY=" + g1 + "\nexport BACKUP_KEY=\"" + g2 + "\"\n", Extracted{Keys: []string{g1, g2}, Lines: []int{2, 3}}},
		{"JSON array", "gemini", "[\n  \"" + g1 + "\",\n  \"" + g2 + "\"\n]", Extracted{Keys: []string{g1, g2}, Lines: []int{2, 3}}},
		{"JSON on one line", "gemini", `{"keys":["` + g1 + `","` + g2 + `"]}`, Extracted{Keys: []string{g1, g2}, Lines: []int{1, 1}}},
		{"a log line", "gemini", "2026-12-03 INFO using key=" + g3 + " for project test", Extracted{Keys: []string{g3}, Lines: []int{1}}},
		{"repeats and lines without a key", "gemini", g1 + "\nhas space\n" + g1 + "\n" + g2, Extracted{Keys: []string{g1, g2}, Lines: []int{1, 4}, Repeats: []int{3}, NoKey: []int{2}}},
		{"an embedded prefix is not a key", "gemini", "xAIzaSyFakeExtract0000000000000009 " + g1, Extracted{Keys: []string{g1}, Lines: []int{1}}},
		{"openai leaves anthropic keys", "openai", "sk-proj-fake-test-000000000000001\nsk-ant-fake-test-0000000000000001", Extracted{Keys: []string{"sk-proj-fake-test-000000000000001"}, Lines: []int{1}, NoKey: []int{2}}},
		{"anthropic", "anthropic", "ANTHROPIC_API_KEY=sk-ant-fake-test-0000000000000001", Extracted{Keys: []string{"sk-ant-fake-test-0000000000000001"}, Lines: []int{1}}},
		{"no known shape: values", "custom", "KEY_A=fake-a-1\nfake-b-2, fake-c-3\n\"name\": \"fake-d-4\"", Extracted{Keys: []string{"fake-a-1", "fake-b-2", "fake-c-3", "fake-d-4"}, Lines: []int{1, 2, 2, 3}}},
		{"short gemini-looking text falls back", "gemini", "test-key-1\ntest-key-2", Extracted{Keys: []string{"test-key-1", "test-key-2"}, Lines: []int{1, 2}}},
		{"brackets alone are not lines without a key", "gemini", "[\n\"" + g1 + "\"\n]", Extracted{Keys: []string{g1}, Lines: []int{2}}},
	} {
		got := ExtractKeys(c.provider, c.text)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, c.want)
		}
	}
}

// A bulk import applies the form's max requests, weight and tags to every
// key, says what the paste holds before sending, and sends each key once.
func TestBulkImportSettingsAndPreview(t *testing.T) {
	ts := startServer(t)
	c := adminclient.New(ts.URL, adminKey)
	h := mount(t, &Dashboard{})
	h.connect(ts.URL, adminKey)
	h.fire("tab-keys", "click")
	h.fire("bulk-open", "click")
	text := "GEMINI_API_KEY=AIzaSyFakeBulkSettings000000000001\n" +
		"[\"AIzaSyFakeBulkSettings000000000002\", \"AIzaSyFakeBulkSettings000000000001\"]\n" +
		"not a key here\n"
	h.do(func(ctx app.Context) {
		h.d.bulk.Text, h.d.bulk.MaxRequests, h.d.bulk.Weight, h.d.bulk.Tags = text, "250", "3", "imported, batch-7"
	})
	h.contains(`id="bulk-found"`, "2 keys found. Repeated keys (sent once) on lines 2. No key on lines 3.", "Import 2 keys")
	h.fire("bulk-form", "submit")
	if h.d.bulk.Err != "" {
		t.Fatalf("bulk: %s", h.d.bulk.Err)
	}
	keys := keysIn(t, c)
	if len(keys) != 2 {
		t.Fatalf("proxy holds %d keys, want 2", len(keys))
	}
	for _, k := range keys {
		if k.MaxRequests != 250 || k.Weight != 3 || !slices.Equal(k.Tags, []string{"imported", "batch-7"}) {
			t.Errorf("imported key %+v: want max 250, weight 3, tags imported,batch-7", k)
		}
	}
	h.contains("2 added, 1 duplicates, 1 invalid", "Line 2: key repeated in the paste, sent once", "Line 3: no key found", "2 keys added")
	if html := h.html(); strings.Index(html, "Line 3: no key found") > strings.Index(html, "Line 1: added") {
		t.Error("the problems are not listed before the keys added")
	}

	// A bad setting stops the import before anything is sent.
	h.do(func(ctx app.Context) { h.d.bulk.Text, h.d.bulk.Weight = "AIzaSyFakeBulkSettings000000000003", "-2" })
	h.fire("bulk-form", "submit")
	if h.d.bulk.Err == "" || len(keysIn(t, c)) != 2 {
		t.Fatalf("bad weight: err %q, %d keys", h.d.bulk.Err, len(keysIn(t, c)))
	}
}
