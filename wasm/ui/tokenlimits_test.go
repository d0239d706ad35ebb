package ui

import (
	"strings"
	"testing"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/limits"
)

func TestTokenLimitsAndUsageText(t *testing.T) {
	exp := "2026-12-31T23:59:59.000Z"
	tok := adminapi.Token{Limits: limits.Limits{RPM: 60, TPD: 2000000}, ExpiresAt: &exp, Providers: []string{"openai"}, Models: []string{"gpt-4o*"}}
	got := TokenLimitsText(LangEN, tok)
	for _, want := range []string{"60 rpm", "2,000,000 tpd", "expires ", "providers: openai", "models: gpt-4o*"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
	tok.Expired = true
	if got := TokenLimitsText(LangZH, tok); !strings.Contains(got, "过期") || !strings.Contains(got, "60 rpm") {
		t.Errorf("zh: %q", got)
	}
	if got := TokenLimitsText(LangEN, adminapi.Token{}); got != "unlimited" {
		t.Errorf("no settings: %q", got)
	}
	u := TokenUsageText(LangEN, adminapi.TokenUsage{Requests: 1234, Refused: 5, PromptTokens: 80000, CompletionTokens: 40})
	if u != "1,234 requests (5 refused) · 80,000 in / 40 out tokens" {
		t.Errorf("usage %q", u)
	}
}

func TestTokenLimitFormRequest(t *testing.T) {
	req, err := tokenLimitForm{RPM: " 60 ", TPD: "1000", ExpiresAt: "2030-01-02", Providers: "openai, gem*", Models: ""}.Request(LangEN, "n")
	if err != nil || req.Name != "n" || req.Limits == nil || *req.Limits != (limits.Limits{RPM: 60, TPD: 1000}) ||
		req.ExpiresAt == nil || *req.ExpiresAt != "2030-01-02T23:59:59Z" || len(req.Providers) != 2 || req.Providers[1] != "gem*" || req.Models != nil {
		t.Fatalf("%+v %v", req, err)
	}
	if req, _ := (tokenLimitForm{}).Request(LangEN, "n"); req.Limits != nil || req.ExpiresAt != nil || req.Providers != nil {
		t.Fatalf("empty form must set nothing: %+v", req)
	}
	if _, err := (tokenLimitForm{TPM: "-3"}).Request(LangZH, "n"); err == nil || !strings.Contains(err.Error(), "每分钟 token 数") {
		t.Fatalf("negative: %v", err)
	}
}
