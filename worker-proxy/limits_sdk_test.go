package main

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	antoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	oaoption "github.com/openai/openai-go/v3/option"
	"google.golang.org/genai"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/internal/fakeupstream"
	"github.com/keypool/keypool/worker-proxy/limits"
)

// createToken creates a client token with settings through the admin API.
func createToken(t *testing.T, p *proxy, req adminapi.CreateTokenRequest) adminapi.CreateTokenResponse {
	t.Helper()
	r := p.admin("POST", "/admin/tokens", req)
	if r.Status != http.StatusCreated {
		t.Fatalf("create token: %d %s", r.Status, r.Body)
	}
	var out adminapi.CreateTokenResponse
	r.Decode(t, &out)
	return out
}

func listedToken(t *testing.T, p *proxy, id string) adminapi.Token {
	t.Helper()
	var list adminapi.TokenList
	p.admin("GET", "/admin/tokens", nil).Decode(t, &list)
	for _, tok := range list.Tokens {
		if tok.ID == id {
			return tok
		}
	}
	t.Fatalf("token %s not listed", id)
	return adminapi.Token{}
}

// A token's rpm limit reaches each SDK as that SDK's own rate-limit error:
// status 429, the proxy's message, Retry-After honest, nothing upstream.
func TestSDKTokenLimit429(t *testing.T) {
	clearSDKEnv(t)
	f, p := startFakeProxy(t, fakeupstream.Options{}, nil)
	p.addKey("openai", "sk-test-limit-sdk-openai-00001", 0)
	p.addKey("gemini", "AIzaSyTestLimitSdkGemini-000001", 0)
	p.addKey("anthropic", "sk-ant-test-limit-sdk-000000001", 0)
	ctx := sdkContext(t)
	one := func() string {
		return createToken(t, p, adminapi.CreateTokenRequest{Name: "one a minute", Limits: &limits.Limits{RPM: 1}}).Token
	}
	const msg = `reached its limit of 1 requests per minute (rpm)`

	t.Run("openai", func(t *testing.T) {
		c := openai.NewClient(oaoption.WithBaseURL(p.URL+"/api/openai/v1"), oaoption.WithAPIKey(one()), oaoption.WithMaxRetries(0))
		if _, err := c.Chat.Completions.New(ctx, chatParams("gpt-4o-mini")); err != nil {
			t.Fatalf("first call: %v", err)
		}
		before := len(f.Requests())
		_, err := c.Chat.Completions.New(ctx, chatParams("gpt-4o-mini"))
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Code != "rate_limit_exceeded" || !strings.Contains(apiErr.Message, msg) {
			t.Fatalf("second call: %v, want a 429 openai.Error naming the limit", err)
		}
		if ra := apiErr.Response.Header.Get("Retry-After"); ra != "60" {
			t.Fatalf("Retry-After %q, want 60", ra)
		}
		if len(f.Requests()) != before {
			t.Fatal("a refused call reached the upstream")
		}
	})
	t.Run("front door", func(t *testing.T) {
		c := openai.NewClient(oaoption.WithBaseURL(p.URL+"/v1"), oaoption.WithAPIKey(one()), oaoption.WithMaxRetries(0))
		if _, err := c.Chat.Completions.New(ctx, chatParams("claude-sonnet-4-5")); err != nil {
			t.Fatalf("first call: %v", err)
		}
		_, err := c.Chat.Completions.New(ctx, chatParams("claude-sonnet-4-5"))
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || !strings.Contains(apiErr.Message, msg) {
			t.Fatalf("second call: %v", err)
		}
	})
	t.Run("anthropic", func(t *testing.T) {
		c := anthropic.NewClient(antoption.WithBaseURL(p.URL+"/api/anthropic"), antoption.WithAPIKey(one()), antoption.WithMaxRetries(0))
		if _, err := c.Messages.New(ctx, anthropicParams("claude-sonnet-4-5")); err != nil {
			t.Fatalf("first call: %v", err)
		}
		_, err := c.Messages.New(ctx, anthropicParams("claude-sonnet-4-5"))
		var apiErr *anthropic.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || !strings.Contains(err.Error(), "rate_limit_error") || !strings.Contains(err.Error(), msg) {
			t.Fatalf("second call: %v, want a 429 anthropic.Error of type rate_limit_error naming the limit", err)
		}
	})
	t.Run("gemini", func(t *testing.T) {
		c, err := genai.NewClient(ctx, &genai.ClientConfig{APIKey: one(), Backend: genai.BackendGeminiAPI,
			HTTPOptions: genai.HTTPOptions{BaseURL: p.URL + "/api/gemini"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("hi"), nil); err != nil {
			t.Fatalf("first call: %v", err)
		}
		_, err = c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("hi"), nil)
		var apiErr genai.APIError
		if !errors.As(err, &apiErr) || apiErr.Code != 429 || apiErr.Status != "RESOURCE_EXHAUSTED" || !strings.Contains(apiErr.Message, msg) {
			t.Fatalf("second call: %v, want a 429 RESOURCE_EXHAUSTED genai.APIError naming the limit", err)
		}
	})
	t.Run("model not allowed", func(t *testing.T) {
		tok := createToken(t, p, adminapi.CreateTokenRequest{Name: "mini only", Models: []string{"gpt-4o-mini"}}).Token
		c := openai.NewClient(oaoption.WithBaseURL(p.URL+"/v1"), oaoption.WithAPIKey(tok), oaoption.WithMaxRetries(0))
		_, err := c.Chat.Completions.New(ctx, chatParams("gpt-4o"))
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 403 || apiErr.Code != "model_not_allowed" {
			t.Fatalf("gpt-4o with a gpt-4o-mini token: %v, want 403 model_not_allowed", err)
		}
	})
}

// Tokens streamed through the proxy are counted from the stream as the SDK
// reports them: per client token, per key (persisted across a restart)
// and per model.
func TestSDKTokenUsageFromStreams(t *testing.T) {
	clearSDKEnv(t)
	_, p := startFakeProxy(t, fakeupstream.Options{}, nil)
	oaKey := p.addKey("openai", "sk-test-usage-sdk-openai-000001", 0)
	antKey := p.addKey("anthropic", "sk-ant-test-usage-sdk-00000001", 0)
	gemKey := p.addKey("gemini", "AIzaSyTestUsageSdkGemini-00001", 0)
	ctx := sdkContext(t)
	tok := createToken(t, p, adminapi.CreateTokenRequest{Name: "streams"})
	var wantPrompt, wantCompletion int64

	oa := openai.NewClient(oaoption.WithBaseURL(p.URL+"/api/openai/v1"), oaoption.WithAPIKey(tok.Token))
	params := chatParams("gpt-4o-mini")
	params.StreamOptions.IncludeUsage = openai.Bool(true)
	_, _, acc, err := openAIStream(oa.Chat.Completions.NewStreaming(ctx, params))
	if err != nil || acc.Usage.PromptTokens == 0 || acc.Usage.CompletionTokens == 0 {
		t.Fatalf("openai stream: %v, usage %+v", err, acc.Usage)
	}
	wantPrompt += acc.Usage.PromptTokens
	wantCompletion += acc.Usage.CompletionTokens
	oaUsage := acc.Usage

	ant := anthropic.NewClient(antoption.WithBaseURL(p.URL+"/api/anthropic"), antoption.WithAPIKey(tok.Token))
	stream := ant.Messages.NewStreaming(ctx, anthropicParams("claude-sonnet-4-5"))
	var msg anthropic.Message
	for stream.Next() {
		if err := msg.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil || msg.Usage.InputTokens == 0 || msg.Usage.OutputTokens == 0 {
		t.Fatalf("anthropic stream: %v, usage %+v", err, msg.Usage)
	}
	stream.Close()
	wantPrompt += msg.Usage.InputTokens
	wantCompletion += msg.Usage.OutputTokens

	gem, err := genai.NewClient(ctx, &genai.ClientConfig{APIKey: tok.Token, Backend: genai.BackendGeminiAPI,
		HTTPOptions: genai.HTTPOptions{BaseURL: p.URL + "/api/gemini"}})
	if err != nil {
		t.Fatal(err)
	}
	var last *genai.GenerateContentResponse
	for res, err := range gem.Models.GenerateContentStream(ctx, "gemini-2.5-flash", genai.Text("Say hello"), nil) {
		if err != nil {
			t.Fatalf("gemini stream: %v", err)
		}
		last = res
	}
	if last == nil || last.UsageMetadata == nil || last.UsageMetadata.CandidatesTokenCount == 0 {
		t.Fatalf("gemini stream reported no usage: %+v", last)
	}
	wantPrompt += int64(last.UsageMetadata.PromptTokenCount)
	wantCompletion += int64(last.UsageMetadata.CandidatesTokenCount)

	u := listedToken(t, p, tok.ID).Usage
	if u.Requests != 3 || u.PromptTokens != wantPrompt || u.CompletionTokens != wantCompletion {
		t.Fatalf("token usage %+v, want 3 requests, %d prompt and %d completion tokens as the SDKs reported", u, wantPrompt, wantCompletion)
	}
	k := keyStatusOf(t, p, oaKey)
	if k.PromptTokens != oaUsage.PromptTokens || k.CompletionTokens != oaUsage.CompletionTokens {
		t.Fatalf("openai key counts %d/%d tokens, want %d/%d", k.PromptTokens, k.CompletionTokens, oaUsage.PromptTokens, oaUsage.CompletionTokens)
	}
	var usage adminapi.UsageResponse
	p.admin("GET", "/admin/usage", nil).Decode(t, &usage)
	models := map[string]adminapi.UsageTotals{}
	for _, m := range usage.Models {
		models[m.Name] = m
	}
	if m := models["openai/gpt-4o-mini"]; m.Requests != 1 || m.PromptTokens != oaUsage.PromptTokens {
		t.Fatalf("per-model usage %+v", usage.Models)
	}
	if len(models) != 3 || len(usage.Providers) != 3 {
		t.Fatalf("usage by model %+v, by provider %+v: want three of each", usage.Models, usage.Providers)
	}

	// Key counts are kept with the key's usage: a restart keeps them.
	before := map[string]adminapi.KeyStatus{}
	for _, id := range []string{oaKey, antKey, gemKey} {
		before[id] = keyStatusOf(t, p, id)
	}
	p.stop()
	p2 := startProxy(t, map[string]string{"DATA_DIR": p.DataDir,
		"GEMINI_BASE_URL": "http://127.0.0.1:1/v1beta", "OPENAI_BASE_URL": "http://127.0.0.1:1/v1", "ANTHROPIC_BASE_URL": "http://127.0.0.1:1/v1"})
	var total int64
	for id, b := range before {
		a := keyStatusOf(t, p2, id)
		if a.PromptTokens != b.PromptTokens || a.CompletionTokens != b.CompletionTokens || a.PromptTokens == 0 {
			t.Fatalf("key %s after restart: %d/%d tokens, before %d/%d", id, a.PromptTokens, a.CompletionTokens, b.PromptTokens, b.CompletionTokens)
		}
		total += a.PromptTokens + a.CompletionTokens
	}
	if total != wantPrompt+wantCompletion {
		t.Fatalf("keys count %d tokens after restart, want %d", total, wantPrompt+wantCompletion)
	}
	if tk := listedToken(t, p2, tok.ID); tk.Name != "streams" {
		t.Fatalf("token after restart: %+v", tk)
	}
}
