package provider

import (
	"strings"
	"testing"
)

func TestParseAlias(t *testing.T) {
	r, err := NewRegistry(Defaults()...)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, target, err string
		want              Alias
	}{
		{"fast", "gemini/gemini-2.5-flash", "", Alias{"fast", "gemini", "gemini-2.5-flash"}},
		{"tuned", "gemini/tunedModels/x", "", Alias{"tuned", "gemini", "tunedModels/x"}},
		{"", "gemini/m", "alias name is empty", Alias{}},
		{"a/b", "gemini/m", "contains '/'", Alias{}},
		{"a b", "gemini/m", "spaces", Alias{}},
		{strings.Repeat("x", MaxAliasLen+1), "gemini/m", "longer", Alias{}},
		{"x", "gemini", "not provider/model", Alias{}},
		{"x", "nope/m", "unknown provider", Alias{}},
		{"x", "openai/", "model is empty", Alias{}},
	} {
		got, err := r.ParseAlias(tc.name, tc.target)
		if tc.err == "" && (err != nil || got != tc.want) || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("ParseAlias(%q, %q) = %+v, %v; want %+v, %q", tc.name, tc.target, got, err, tc.want, tc.err)
		}
	}
	if err := r.SetFileAliases(map[string]string{"ok": "openai/gpt-4o-mini", "bad": "x/y"}); err == nil || !strings.Contains(err.Error(), "providers file") {
		t.Fatalf("SetFileAliases with a bad alias: %v", err)
	}
}
