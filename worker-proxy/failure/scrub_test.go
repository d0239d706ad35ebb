package failure

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestScrub(t *testing.T) {
	const key = "AIzaSyFAKEFAKEFAKEtestKEYnotREAL000000"
	tests := []struct {
		name, msg, secret, want string
	}{
		{"google key", "Consumer 'api_key:" + key + "' has been suspended.", key, "Consumer 'api_key:AIza…0000' has been suspended."},
		{"every occurrence", key + " and " + key, key, "AIza…0000 and AIza…0000"},
		{"in a URL", "GET /v1beta/models?key=" + key + "&alt=sse", key, "GET /v1beta/models?key=AIza…0000&alt=sse"},
		{"short secret hidden entirely", "token abc123def here", "abc123def", "token … here"},
		{"empty secret", "nothing " + key, "", "nothing " + key},
		{"absent", "nothing to see", key, "nothing to see"},
		{"masking joins a new occurrence", "……xx", "…x", "……"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Scrub(tt.msg, tt.secret)
			if got != tt.want {
				t.Errorf("Scrub(%q, %q) = %q, want %q", tt.msg, tt.secret, got, tt.want)
			}
			if tt.secret != "" && strings.Contains(got, tt.secret) {
				t.Errorf("Scrub left the secret in %q", got)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		// Hidden: keys of the common providers and long random ids.
		{"key AIzaSyFAKEFAKEFAKEtestKEYnotREAL000000.", "key AIza…."},
		{"api_key:AIzaSyFAKEFAKEFAKEtestKEYnotREAL000000'", "api_key:AIza…'"},
		{"sk-proj-test-key-0000-not-real-0000", "sk-…"},
		{"sk-ant-api03-test-key-not-real-0000", "sk-…"},
		{"gsk_Zx81kQm2Lr7TnB4vYc9WdE3fHj6GpA5sU0oKi", "gsk_…"},
		{"xai-Zx81kQm2Lr7TnB4vYc9WdE3fHj6GpA5sU0oKi", "xai-…"},
		{"bearer Zx81kQm2Lr7TnB4vYc9WdE3fHj6GpA5s", "bearer …"},
		{"request ID 500d9fff2057e4af93a280f67002c342 in", "request ID … in"},
		{"req_011CSHoEeqs5C35K2UUqR7Fy", "…"},
		// Kept: masked fragments, words, models, quota ids, URLs, UUIDs.
		{"Incorrect API key provided: sk-VKMIs***...wjh3.", "Incorrect API key provided: sk-VKMIs***...wjh3."},
		{"Consumer 'api_key:AIzaSy...'", "Consumer 'api_key:AIzaSy...'"},
		{"model claude-3-5-sonnet-20241022", "model claude-3-5-sonnet-20241022"},
		{"GenerateRequestsPerDayPerProjectPerModel-FreeTier", "GenerateRequestsPerDayPerProjectPerModel-FreeTier"},
		{"generativelanguage.googleapis.com/generate_content_free_tier_input_token_count", "generativelanguage.googleapis.com/generate_content_free_tier_input_token_count"},
		{"https://ai.google.dev/gemini-api/docs/rate-limits", "https://ai.google.dev/gemini-api/docs/rate-limits"},
		{"organization (00000000-0000-4000-8000-fa4e0f0e0000)", "organization (00000000-0000-4000-8000-fa4e0f0e0000)"},
		{"projects/895908428397", "projects/895908428397"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := redact(tt.in); got != tt.want {
			t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCleanLength(t *testing.T) {
	long := strings.Repeat("é", 500)
	got := clean(long)
	if n := utf8.RuneCountInString(got); n != MaxReason || !strings.HasSuffix(got, "…") {
		t.Errorf("clean(500 runes) has %d runes, suffix %q", n, got[len(got)-3:])
	}
	exact := strings.Repeat("a", MaxReason)
	if got := clean(exact); got != exact {
		t.Errorf("clean(%d runes) changed it", MaxReason)
	}
	if got := clean("  a \n\t b \x00 c  "); got != "a b c" {
		t.Errorf("clean spaces = %q", got)
	}
	// A key straddling the cut is hidden, not half shown.
	key := "AIzaSyFAKEFAKEFAKEtestKEYnotREAL000000"
	got = clean(strings.Repeat("x ", 75) + key)
	if strings.Contains(got, "AIzaSyD8") {
		t.Errorf("clean left part of the key: %q", got)
	}
}
