package main

// End-to-end tests that drive the proxy binary with the providers' official
// Go SDKs (openai-go, google.golang.org/genai, anthropic-sdk-go), each
// configured only with the proxy's base URL and a client token, against
// internal/fakeupstream, which answers like the real APIs (error bodies,
// rate-limit headers, stream framings).
//
// SDK retries are left at their defaults except where a test needs to see
// exactly one SDK attempt (failover, an empty pool); those places say so.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // America/Los_Angeles for the daily-quota reset

	"github.com/anthropics/anthropic-sdk-go"
	antoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	oaoption "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/ssestream"
	"google.golang.org/genai"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/internal/fakeupstream"
)

// startFakeProxy starts a recording fake upstream and a proxy pointed at it
// for all three providers; env adds to or overrides the proxy's environment.
func startFakeProxy(t *testing.T, opts fakeupstream.Options, env map[string]string) (*fakeupstream.Server, *proxy) {
	t.Helper()
	opts.Record = true
	f, err := fakeupstream.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	full := map[string]string{
		"GEMINI_BASE_URL":    f.URL + "/v1beta",
		"OPENAI_BASE_URL":    f.URL + "/v1",
		"ANTHROPIC_BASE_URL": f.URL + "/v1",
	}
	maps.Copy(full, env)
	return f, startProxy(t, full)
}

// sdkEnvVars are read by the SDKs at client creation; a developer's real
// settings must not leak into a test.
var sdkEnvVars = []string{
	"OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID",
	"ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "ANTHROPIC_PROFILE",
	"GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_GENAI_USE_VERTEXAI",
}

func clearSDKEnv(t *testing.T) {
	for _, k := range sdkEnvVars {
		if _, ok := os.LookupEnv(k); ok {
			t.Setenv(k, "") // restores it after the test
			os.Unsetenv(k)
		}
	}
}

func sdkContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newOpenAIClient is an openai-go client that knows only the proxy's base
// URL and the client token (opts: at most turning retries off).
func newOpenAIClient(base string, opts ...oaoption.RequestOption) openai.Client {
	return openai.NewClient(append([]oaoption.RequestOption{oaoption.WithBaseURL(base), oaoption.WithAPIKey(testClientToken)}, opts...)...)
}

func newAnthropicClient(p *proxy, opts ...antoption.RequestOption) anthropic.Client {
	return anthropic.NewClient(append([]antoption.RequestOption{antoption.WithBaseURL(p.URL + "/api/anthropic"), antoption.WithAPIKey(testClientToken)}, opts...)...)
}

// newGenAIClient is a genai client on the proxy. genai does not retry
// unless asked (HTTPOptions.RetryOptions), so it makes one attempt per call.
func newGenAIClient(t *testing.T, ctx context.Context, p *proxy) *genai.Client {
	t.Helper()
	c, err := genai.NewClient(ctx, &genai.ClientConfig{
		APIKey: testClientToken, Backend: genai.BackendGeminiAPI,
		HTTPOptions: genai.HTTPOptions{BaseURL: p.URL + "/api/gemini"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func chatParams(model string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello")},
	}
}

func anthropicParams(model string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model: anthropic.Model(model), MaxTokens: 256,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Say hello"))},
	}
}

// streamText is what a fake stream of n chunks carries for model.
func streamText(model string, n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(fakeupstream.ChunkText(model, i))
	}
	return b.String()
}

// fakeStreamChunks is fakeupstream's default Options.StreamChunks.
const fakeStreamChunks = 5

// openAIStream drains an openai-go chat stream, returning the text of the
// content deltas, the number of chunks and the accumulated completion.
func openAIStream(stream *ssestream.Stream[openai.ChatCompletionChunk]) (string, int, openai.ChatCompletionAccumulator, error) {
	defer stream.Close()
	var acc openai.ChatCompletionAccumulator
	var text strings.Builder
	n := 0
	for stream.Next() {
		ch := stream.Current()
		acc.AddChunk(ch)
		n++
		for _, c := range ch.Choices {
			text.WriteString(c.Delta.Content)
		}
	}
	return text.String(), n, acc, stream.Err()
}

// checkOpenAIStream checks a streamed chat answer: the whole text and a
// clean end (no error, finish reason "stop").
func checkOpenAIStream(t *testing.T, stream *ssestream.Stream[openai.ChatCompletionChunk], model string) {
	t.Helper()
	text, n, acc, err := openAIStream(stream)
	if err != nil {
		t.Fatalf("stream ended with error %v after %d chunks", err, n)
	}
	if want := streamText(model, fakeStreamChunks); text != want {
		t.Fatalf("streamed text = %q, want %q", text, want)
	}
	if len(acc.Choices) != 1 || acc.Choices[0].FinishReason != "stop" {
		t.Fatalf("stream did not end cleanly: choices %+v", acc.Choices)
	}
	if acc.Model != model {
		t.Fatalf("stream model = %q, want %q", acc.Model, model)
	}
}

// keyStatusOf returns a key's status from GET /admin/keys/{id}.
func keyStatusOf(t *testing.T, p *proxy, id string) adminapi.KeyStatus {
	t.Helper()
	r := p.admin("GET", "/admin/keys/"+id, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /admin/keys/%s: %d %s", id, r.Status, r.Body)
	}
	var k adminapi.KeyStatus
	r.Decode(t, &k)
	return k
}

func providerStatusOf(t *testing.T, p *proxy, provider string) adminapi.ProviderStatus {
	t.Helper()
	r := p.admin("GET", "/admin/status?provider="+provider, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("status: %d %s", r.Status, r.Body)
	}
	var st adminapi.ProviderStatus
	r.Decode(t, &st)
	return st
}

// apiTime parses a time the admin API wrote; nil is the zero time.
func apiTime(t *testing.T, s *string) time.Time {
	t.Helper()
	if s == nil {
		return time.Time{}
	}
	tm, err := time.Parse(adminapi.TimeLayout, *s)
	if err != nil {
		t.Fatalf("time %q: %v", *s, err)
	}
	return tm
}

// checkTimeNear fails unless got is within slack of want.
func checkTimeNear(t *testing.T, what string, got, want time.Time, slack time.Duration) {
	t.Helper()
	if d := got.Sub(want); d < -slack || d > slack {
		t.Fatalf("%s = %s, want %s ± %s (off by %s)", what, got.UTC().Format(time.RFC3339Nano), want.UTC().Format(time.RFC3339Nano), slack, d)
	}
}

// nextLAMidnight is the next midnight in America/Los_Angeles after t, when
// Google resets daily quotas, computed here independently of the proxy.
func nextLAMidnight(t *testing.T, now time.Time) time.Time {
	loc, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		t.Fatal(err)
	}
	l := now.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day()+1, 0, 0, 0, 0, loc)
}

// checkCooling checks that a key rests until about want.
func checkCooling(t *testing.T, k adminapi.KeyStatus, reason string, want time.Time, slack time.Duration) {
	t.Helper()
	if k.State != adminapi.StateCooling || k.CoolingUntil == nil || k.Available {
		t.Fatalf("key %s: state %q coolingUntil %v available %v, want cooling (lastError %+v)", k.ID, k.State, k.CoolingUntil, k.Available, k.LastError)
	}
	checkTimeNear(t, "coolingUntil of "+k.ID, apiTime(t, k.CoolingUntil), want, slack)
	if !strings.Contains(k.CoolingReason, reason) {
		t.Fatalf("key %s: coolingReason %q, want it to mention %q", k.ID, k.CoolingReason, reason)
	}
	if k.DisabledReason != "" {
		t.Fatalf("key %s: cooling and disabled (%q)", k.ID, k.DisabledReason)
	}
}

// checkModelRest checks that the key's pair with model rests until about
// want, while the key itself serves its other models.
func checkModelRest(t *testing.T, k adminapi.KeyStatus, model, reason string, want time.Time, slack time.Duration) {
	t.Helper()
	if k.State != adminapi.StateActive || k.CoolingUntil != nil || !k.Available || k.DisabledReason != "" {
		t.Fatalf("key %s: state %q coolingUntil %v available %v disabled %q, want active: a rest for one model must not rest the key", k.ID, k.State, k.CoolingUntil, k.Available, k.DisabledReason)
	}
	for _, mc := range k.ModelCooldowns {
		if mc.Model == model {
			checkTimeNear(t, "modelCooldowns["+model+"] of "+k.ID, apiTime(t, mc.Until), want, slack)
			if !strings.Contains(mc.Reason, reason) {
				t.Fatalf("key %s: model rest reason %q, want it to mention %q", k.ID, mc.Reason, reason)
			}
			return
		}
	}
	t.Fatalf("key %s: modelCooldowns %+v, want a rest for %s (lastError %+v)", k.ID, k.ModelCooldowns, model, k.LastError)
}

// checkDisabled checks that a key is disabled with a reason naming why.
func checkDisabled(t *testing.T, k adminapi.KeyStatus, reason string) {
	t.Helper()
	if k.State != adminapi.StateDisabled || k.Available || k.DisabledAt == nil {
		t.Fatalf("key %s: state %q available %v disabledAt %v, want disabled (lastError %+v)", k.ID, k.State, k.Available, k.DisabledAt, k.LastError)
	}
	if !strings.Contains(k.DisabledReason, reason) {
		t.Fatalf("key %s: disabledReason %q, want it to mention %q", k.ID, k.DisabledReason, reason)
	}
	if k.LastError == nil || k.LastError.Status < 400 {
		t.Fatalf("key %s: lastError %+v, want the upstream's error", k.ID, k.LastError)
	}
}

// checkActive checks that a key serves and is not blamed for anything.
func checkActive(t *testing.T, k adminapi.KeyStatus) {
	t.Helper()
	if k.State != adminapi.StateActive || !k.Available || k.CoolingUntil != nil || k.DisabledReason != "" || k.ConsecutiveFailures != 0 {
		t.Fatalf("key %s: state %q available %v coolingUntil %v disabled %q consecutiveFailures %d, want active and unblamed",
			k.ID, k.State, k.Available, k.CoolingUntil, k.DisabledReason, k.ConsecutiveFailures)
	}
}

// requestsWith returns the upstream requests made with secret.
func requestsWith(f *fakeupstream.Server, secret string) []fakeupstream.Recorded {
	var out []fakeupstream.Recorded
	for _, r := range f.Requests() {
		if r.Key == secret {
			out = append(out, r)
		}
	}
	return out
}

func lastRecorded(t *testing.T, f *fakeupstream.Server) fakeupstream.Recorded {
	t.Helper()
	rs := f.Requests()
	if len(rs) == 0 {
		t.Fatal("the fake upstream got no request")
	}
	return rs[len(rs)-1]
}

// checkNoClientToken fails if the client token reached the upstream in any
// header, the query or the body, or if a request carried no pool key.
func checkNoClientToken(t *testing.T, f *fakeupstream.Server) {
	t.Helper()
	rs := f.Requests()
	if len(rs) == 0 {
		t.Fatal("the fake upstream got no request")
	}
	for _, r := range rs {
		for name, vs := range r.Header {
			for _, v := range vs {
				if strings.Contains(v, testClientToken) {
					t.Fatalf("%s %s: the client token reached the upstream in header %s", r.Method, r.Path, name)
				}
			}
		}
		if strings.Contains(r.RawQuery, testClientToken) || strings.Contains(string(r.Body), testClientToken) {
			t.Fatalf("%s %s: the client token reached the upstream in the query or body", r.Method, r.Path)
		}
		if r.Key == "" {
			t.Fatalf("%s %s reached the upstream without a pool key", r.Method, r.Path)
		}
	}
}

// checkRecorded checks where a request went and which key it carried.
func checkRecorded(t *testing.T, r fakeupstream.Recorded, prov fakeupstream.Provider, path, secret, header string) {
	t.Helper()
	if r.Provider != prov || r.Path != path {
		t.Fatalf("upstream got %s %s (as %q), want %s (as %q)", r.Method, r.Path, r.Provider, path, prov)
	}
	if r.Key != secret {
		t.Fatalf("upstream key %q, want the pool key %q", r.Key, secret)
	}
	want := secret
	if header == "Authorization" {
		want = "Bearer " + secret
	}
	if got := r.Header.Get(header); got != want {
		t.Fatalf("upstream %s header = %q, want %q", header, got, want)
	}
	// Only the provider's own credential header: Gemini refuses two.
	for _, h := range []string{"Authorization", "X-Goog-Api-Key", "X-Api-Key"} {
		if h != header && r.Header.Get(h) != "" {
			t.Fatalf("upstream request carries %s besides %s", h, header)
		}
	}
	if strings.Contains(r.RawQuery, "key=") {
		t.Fatalf("upstream query %q carries a key", r.RawQuery)
	}
}

func TestSDKOpenAI(t *testing.T) {
	clearSDKEnv(t)
	f, p := startFakeProxy(t, fakeupstream.Options{}, nil)
	const secret = "sk-sdk-openai-pool-key-00000001"
	id := p.addKey("openai", secret, 0)
	ctx := sdkContext(t)
	c := newOpenAIClient(p.URL + "/api/openai/v1")
	const model = "gpt-4o-mini"

	t.Run("chat", func(t *testing.T) {
		var raw *http.Response
		res, err := c.Chat.Completions.New(ctx, chatParams(model), oaoption.WithResponseInto(&raw))
		if err != nil {
			t.Fatalf("chat completion: %v", err)
		}
		if len(res.Choices) != 1 || res.Choices[0].Message.Content != fakeupstream.AnswerText(model) || res.Choices[0].FinishReason != "stop" {
			t.Fatalf("answer %+v, want %q", res.Choices, fakeupstream.AnswerText(model))
		}
		if res.Model != model || res.Usage.TotalTokens <= 0 {
			t.Fatalf("model %q usage %+v", res.Model, res.Usage)
		}
		if got := raw.Header.Get("X-KeyPool-Key-Id"); got != id {
			t.Fatalf("X-KeyPool-Key-Id = %q, want %q", got, id)
		}
		checkRecorded(t, lastRecorded(t, f), fakeupstream.OpenAI, "/v1/chat/completions", secret, "Authorization")
	})
	t.Run("stream", func(t *testing.T) {
		params := chatParams(model)
		params.StreamOptions.IncludeUsage = openai.Bool(true)
		checkOpenAIStream(t, c.Chat.Completions.NewStreaming(ctx, params), model)
		r := lastRecorded(t, f)
		checkRecorded(t, r, fakeupstream.OpenAI, "/v1/chat/completions", secret, "Authorization")
		var body struct{ Stream bool }
		if json.Unmarshal(r.Body, &body) != nil || !body.Stream {
			t.Fatalf("upstream body %s does not ask for a stream", r.Body)
		}
	})
	t.Run("embeddings", func(t *testing.T) {
		res, err := c.Embeddings.New(ctx, openai.EmbeddingNewParams{
			Model: "text-embedding-3-small",
			Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"first", "second"}},
		})
		if err != nil {
			t.Fatalf("embeddings: %v", err)
		}
		if len(res.Data) != 2 || len(res.Data[0].Embedding) != 8 || res.Data[1].Index != 1 || res.Model != "text-embedding-3-small" {
			t.Fatalf("embeddings answer: %d vectors, model %q", len(res.Data), res.Model)
		}
		checkRecorded(t, lastRecorded(t, f), fakeupstream.OpenAI, "/v1/embeddings", secret, "Authorization")
	})
	t.Run("models", func(t *testing.T) {
		page, err := c.Models.List(ctx)
		if err != nil {
			t.Fatalf("list models: %v", err)
		}
		var ids []string
		for _, m := range page.Data {
			ids = append(ids, m.ID)
		}
		if !slices.Contains(ids, "gpt-4o-mini") {
			t.Fatalf("models %v lack gpt-4o-mini", ids)
		}
	})
	checkNoClientToken(t, f)
	k := keyStatusOf(t, p, id)
	if k.Successes != 4 || k.Failures != 0 {
		t.Fatalf("key counted %d successes, %d failures; want 4, 0", k.Successes, k.Failures)
	}
	p.assertNoSecretsLogged(secret)
}

func TestSDKFrontDoor(t *testing.T) {
	clearSDKEnv(t)
	f, p := startFakeProxy(t, fakeupstream.Options{}, nil)
	const (
		openaiKey    = "sk-frontdoor-openai-key-0000001"
		geminiKey    = "AIzaSyFrontDoorGeminiKey-000001"
		anthropicKey = "sk-ant-frontdoor-anthropic-0001"
	)
	p.addKey("openai", openaiKey, 0)
	p.addKey("gemini", geminiKey, 0)
	p.addKey("anthropic", anthropicKey, 0)
	ctx := sdkContext(t)
	c := newOpenAIClient(p.URL + "/v1")

	routes := []struct {
		model string
		prov  fakeupstream.Provider
		path  string
		key   string
	}{
		{"gpt-4o-mini", fakeupstream.OpenAI, "/v1/chat/completions", openaiKey},
		// Gemini's OpenAI-compatible endpoint, key as a Bearer token.
		{"gemini-2.5-flash", fakeupstream.GeminiOpenAI, "/v1beta/openai/chat/completions", geminiKey},
		// Anthropic's OpenAI SDK compatibility endpoint is {base}/chat/completions
		// with a Bearer key; the fake serves that path with its OpenAI handler.
		{"claude-sonnet-4-5", fakeupstream.OpenAI, "/v1/chat/completions", anthropicKey},
	}
	for _, rt := range routes {
		t.Run(rt.model, func(t *testing.T) {
			res, err := c.Chat.Completions.New(ctx, chatParams(rt.model))
			if err != nil {
				t.Fatalf("chat completion: %v", err)
			}
			if len(res.Choices) != 1 || res.Choices[0].Message.Content != fakeupstream.AnswerText(rt.model) {
				t.Fatalf("answer %+v, want %q", res.Choices, fakeupstream.AnswerText(rt.model))
			}
			if res.Model != rt.model {
				t.Fatalf("model %q, want %q", res.Model, rt.model)
			}
			checkRecorded(t, lastRecorded(t, f), rt.prov, rt.path, rt.key, "Authorization")

			checkOpenAIStream(t, c.Chat.Completions.NewStreaming(ctx, chatParams(rt.model)), rt.model)
			checkRecorded(t, lastRecorded(t, f), rt.prov, rt.path, rt.key, "Authorization")
		})
	}
	for _, rt := range []struct {
		model string
		prov  fakeupstream.Provider
		path  string
		key   string
	}{
		{"text-embedding-3-small", fakeupstream.OpenAI, "/v1/embeddings", openaiKey},
		{"gemini-embedding-001", fakeupstream.GeminiOpenAI, "/v1beta/openai/embeddings", geminiKey},
	} {
		t.Run(rt.model, func(t *testing.T) {
			res, err := c.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: rt.model, Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("hello")}})
			if err != nil {
				t.Fatalf("embeddings: %v", err)
			}
			if len(res.Data) != 1 || len(res.Data[0].Embedding) == 0 {
				t.Fatalf("embeddings answer %+v", res.Data)
			}
			checkRecorded(t, lastRecorded(t, f), rt.prov, rt.path, rt.key, "Authorization")
		})
	}
	t.Run("models", func(t *testing.T) {
		var ids []string
		iter := c.Models.ListAutoPaging(ctx)
		for iter.Next() {
			m := iter.Current()
			if m.Object != "model" || m.ID == "" {
				t.Fatalf("model entry %+v", m)
			}
			ids = append(ids, m.ID)
		}
		if err := iter.Err(); err != nil {
			t.Fatalf("list models: %v", err)
		}
		for _, want := range []string{"gpt-4o-mini", "gemini-2.5-flash"} {
			if !slices.Contains(ids, want) {
				t.Fatalf("models %v lack %s", ids, want)
			}
		}
		// A listed id routes back to its provider.
		res, err := c.Chat.Completions.New(ctx, chatParams("gemini-2.5-pro"))
		if err != nil || res.Choices[0].Message.Content != fakeupstream.AnswerText("gemini-2.5-pro") {
			t.Fatalf("chat with a listed Gemini model: %v", err)
		}
		checkRecorded(t, lastRecorded(t, f), fakeupstream.GeminiOpenAI, "/v1beta/openai/chat/completions", geminiKey, "Authorization")
	})
	checkNoClientToken(t, f)
	p.assertNoSecretsLogged(openaiKey, geminiKey, anthropicKey)
}

func TestSDKGemini(t *testing.T) {
	clearSDKEnv(t)
	f, p := startFakeProxy(t, fakeupstream.Options{}, nil)
	const secret = "AIzaSySdkGeminiPoolKey-00000001"
	p.addKey("gemini", secret, 0)
	ctx := sdkContext(t)
	c := newGenAIClient(t, ctx, p)
	const model = "gemini-2.5-flash"

	t.Run("generate", func(t *testing.T) {
		res, err := c.Models.GenerateContent(ctx, model, genai.Text("Say hello"), nil)
		if err != nil {
			t.Fatalf("GenerateContent: %v", err)
		}
		if got := res.Text(); got != fakeupstream.AnswerText(model) {
			t.Fatalf("text %q, want %q", got, fakeupstream.AnswerText(model))
		}
		if res.ModelVersion != model || len(res.Candidates) != 1 || res.Candidates[0].FinishReason != genai.FinishReasonStop {
			t.Fatalf("modelVersion %q candidates %+v", res.ModelVersion, res.Candidates)
		}
		checkRecorded(t, lastRecorded(t, f), fakeupstream.Gemini, "/v1beta/models/"+model+":generateContent", secret, "X-Goog-Api-Key")
	})
	t.Run("stream", func(t *testing.T) {
		var text strings.Builder
		n := 0
		var last *genai.GenerateContentResponse
		for res, err := range c.Models.GenerateContentStream(ctx, model, genai.Text("Say hello"), nil) {
			if err != nil {
				t.Fatalf("stream error after %d chunks: %v", n, err)
			}
			n++
			text.WriteString(res.Text())
			last = res
		}
		if want := streamText(model, fakeStreamChunks); text.String() != want || n != fakeStreamChunks {
			t.Fatalf("streamed %d chunks %q, want %d chunks %q", n, text.String(), fakeStreamChunks, want)
		}
		if len(last.Candidates) != 1 || last.Candidates[0].FinishReason != genai.FinishReasonStop {
			t.Fatalf("stream did not end cleanly: last chunk %+v", last.Candidates)
		}
		r := lastRecorded(t, f)
		checkRecorded(t, r, fakeupstream.Gemini, "/v1beta/models/"+model+":streamGenerateContent", secret, "X-Goog-Api-Key")
		if r.RawQuery != "alt=sse" {
			t.Fatalf("upstream query %q, want alt=sse", r.RawQuery)
		}
	})
	checkNoClientToken(t, f)
	p.assertNoSecretsLogged(secret)
}

func TestSDKAnthropic(t *testing.T) {
	clearSDKEnv(t)
	f, p := startFakeProxy(t, fakeupstream.Options{}, nil)
	const secret = "sk-ant-sdk-anthropic-pool-000001"
	p.addKey("anthropic", secret, 0)
	ctx := sdkContext(t)
	c := newAnthropicClient(p)
	const model = "claude-sonnet-4-5"

	t.Run("message", func(t *testing.T) {
		msg, err := c.Messages.New(ctx, anthropicParams(model))
		if err != nil {
			t.Fatalf("Messages.New: %v", err)
		}
		if len(msg.Content) != 1 || msg.Content[0].Text != fakeupstream.AnswerText(model) {
			t.Fatalf("content %+v, want %q", msg.Content, fakeupstream.AnswerText(model))
		}
		if string(msg.Model) != model || msg.StopReason != anthropic.StopReasonEndTurn || msg.Usage.OutputTokens <= 0 {
			t.Fatalf("model %q stop %q usage %+v", msg.Model, msg.StopReason, msg.Usage)
		}
		r := lastRecorded(t, f)
		checkRecorded(t, r, fakeupstream.Anthropic, "/v1/messages", secret, "X-Api-Key")
		if r.Header.Get("Anthropic-Version") != "2023-06-01" {
			t.Fatalf("anthropic-version %q", r.Header.Get("Anthropic-Version"))
		}
	})
	t.Run("stream", func(t *testing.T) {
		stream := c.Messages.NewStreaming(ctx, anthropicParams(model))
		defer stream.Close()
		var msg anthropic.Message
		events := 0
		sawStop := false
		for stream.Next() {
			ev := stream.Current()
			events++
			if err := msg.Accumulate(ev); err != nil {
				t.Fatalf("accumulate event %d (%s): %v", events, ev.Type, err)
			}
			sawStop = sawStop || ev.Type == "message_stop"
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("stream error after %d events: %v", events, err)
		}
		if len(msg.Content) != 1 || msg.Content[0].Text != streamText(model, fakeStreamChunks) {
			t.Fatalf("streamed content %+v, want %q", msg.Content, streamText(model, fakeStreamChunks))
		}
		if !sawStop || msg.StopReason != anthropic.StopReasonEndTurn {
			t.Fatalf("stream did not end cleanly: message_stop seen %v, stop reason %q", sawStop, msg.StopReason)
		}
		checkRecorded(t, lastRecorded(t, f), fakeupstream.Anthropic, "/v1/messages", secret, "X-Api-Key")
	})
	checkNoClientToken(t, f)
	p.assertNoSecretsLogged(secret)
}

// failoverPool is a pool of four keys of one provider: one rate limited,
// one invalid, one out of its daily (or monthly) quota, one healthy.
type failoverPool struct {
	ids, secrets [4]string // rate limited, invalid, quota, healthy
}

const (
	fpRateLimited = iota
	fpInvalid
	fpQuota
	fpOK
)

func newFailoverPool(t *testing.T, f *fakeupstream.Server, p *proxy, provider, prefix string) failoverPool {
	t.Helper()
	var fp failoverPool
	for i, b := range []fakeupstream.Behavior{fakeupstream.RateLimited, fakeupstream.Invalid, fakeupstream.DailyQuota, fakeupstream.OK} {
		fp.secrets[i] = fmt.Sprintf("%s-failover-%s-%08d", prefix, strings.ToLower(b.String()), i)
		f.SetBehavior(fp.secrets[i], b)
		fp.ids[i] = p.addKey(provider, fp.secrets[i], 0)
	}
	return fp
}

// checkFirstFailover checks the upstream requests of the first call: every
// key tried once, the healthy one last.
func (fp failoverPool) checkFirstFailover(t *testing.T, f *fakeupstream.Server) {
	t.Helper()
	rs := f.Requests()
	var keys []string
	for _, r := range rs {
		keys = append(keys, r.Key)
	}
	sorted := slices.Sorted(slices.Values(keys))
	want := slices.Sorted(slices.Values(fp.secrets[:]))
	if !slices.Equal(sorted, want) || keys[len(keys)-1] != fp.secrets[fpOK] {
		t.Fatalf("first call reached the upstream with keys %q; want each of the 4 keys once, the healthy one last", keys)
	}
}

// checkFailedKeysUsedOnce checks that each failing key met the upstream only
// once: after one failure it is out of the rotation.
func (fp failoverPool) checkFailedKeysUsedOnce(t *testing.T, f *fakeupstream.Server) {
	t.Helper()
	for i := range fpOK {
		if n := len(requestsWith(f, fp.secrets[i])); n != 1 {
			t.Errorf("failing key %d (%s) reached the upstream %d times, want 1", i, fp.secrets[i][:12], n)
		}
	}
}

func TestSDKFailover(t *testing.T) {
	clearSDKEnv(t)
	const calls, streams = 3, 2
	t.Run("openai", func(t *testing.T) {
		f, p := startFakeProxy(t, fakeupstream.Options{}, nil)
		fp := newFailoverPool(t, f, p, "openai", "sk")
		ctx := sdkContext(t)
		// Retries off: every success must come from the proxy's failover,
		// not from openai-go trying again.
		c := newOpenAIClient(p.URL+"/api/openai/v1", oaoption.WithMaxRetries(0))
		const model = "gpt-4o-mini"
		before := time.Now()
		var raw *http.Response
		res, err := c.Chat.Completions.New(ctx, chatParams(model), oaoption.WithResponseInto(&raw))
		after := time.Now()
		if err != nil {
			t.Fatalf("first call failed although a healthy key is left: %v", err)
		}
		if res.Choices[0].Message.Content != fakeupstream.AnswerText(model) {
			t.Fatalf("answer %q", res.Choices[0].Message.Content)
		}
		if raw.Header.Get("X-KeyPool-Attempts") != "4" || raw.Header.Get("X-KeyPool-Key-Id") != fp.ids[fpOK] {
			t.Fatalf("X-KeyPool-Attempts %q, X-KeyPool-Key-Id %q; want 4 and the healthy key", raw.Header.Get("X-KeyPool-Attempts"), raw.Header.Get("X-KeyPool-Key-Id"))
		}
		fp.checkFirstFailover(t, f)
		for i := range calls - 1 {
			if _, err := c.Chat.Completions.New(ctx, chatParams(model)); err != nil {
				t.Fatalf("call %d: %v", i+2, err)
			}
		}
		for range streams {
			checkOpenAIStream(t, c.Chat.Completions.NewStreaming(ctx, chatParams(model)), model)
		}
		fp.checkFailedKeysUsedOnce(t, f)
		// x-ratelimit-reset-requests: 20s with x-ratelimit-remaining-requests: 0.
		checkModelRest(t, keyStatusOf(t, p, fp.ids[fpRateLimited]), "gpt-4o-mini", "rate_limited", before.Add(20*time.Second), 2*time.Second+after.Sub(before))
		checkDisabled(t, keyStatusOf(t, p, fp.ids[fpInvalid]), "invalid_api_key")
		// OpenAI's insufficient_quota means no credit: dead until billing is fixed.
		checkDisabled(t, keyStatusOf(t, p, fp.ids[fpQuota]), "insufficient_quota")
		checkActive(t, keyStatusOf(t, p, fp.ids[fpOK]))
		checkNoClientToken(t, f)
		p.assertNoSecretsLogged(fp.secrets[:]...)
	})
	t.Run("gemini", func(t *testing.T) {
		f, p := startFakeProxy(t, fakeupstream.Options{}, nil)
		fp := newFailoverPool(t, f, p, "gemini", "AIzaSy")
		ctx := sdkContext(t)
		c := newGenAIClient(t, ctx, p) // genai makes one attempt per call
		const model = "gemini-2.5-flash"
		before := time.Now()
		res, err := c.Models.GenerateContent(ctx, model, genai.Text("Say hello"), nil)
		after := time.Now()
		if err != nil {
			t.Fatalf("first call failed although a healthy key is left: %v", err)
		}
		if res.Text() != fakeupstream.AnswerText(model) {
			t.Fatalf("answer %q", res.Text())
		}
		fp.checkFirstFailover(t, f)
		for i := range calls - 1 {
			if _, err := c.Models.GenerateContent(ctx, model, genai.Text("Say hello"), nil); err != nil {
				t.Fatalf("call %d: %v", i+2, err)
			}
		}
		for range streams {
			var text strings.Builder
			for res, err := range c.Models.GenerateContentStream(ctx, model, genai.Text("Say hello"), nil) {
				if err != nil {
					t.Fatalf("stream: %v", err)
				}
				text.WriteString(res.Text())
			}
			if text.String() != streamText(model, fakeStreamChunks) {
				t.Fatalf("streamed %q", text.String())
			}
		}
		fp.checkFailedKeysUsedOnce(t, f)
		// RetryInfo.retryDelay "26s" in the body; Gemini sends no Retry-After.
		checkModelRest(t, keyStatusOf(t, p, fp.ids[fpRateLimited]), "gemini-2.5-flash", "rate_limited", before.Add(26*time.Second), 2*time.Second+after.Sub(before))
		checkDisabled(t, keyStatusOf(t, p, fp.ids[fpInvalid]), "API_KEY_INVALID")
		// A per-day quota resets at midnight Pacific time, whatever MAX_COOLDOWN says.
		checkModelRest(t, keyStatusOf(t, p, fp.ids[fpQuota]), "gemini-2.5-flash", "quota_exhausted", nextLAMidnight(t, before), 3*time.Second)
		checkActive(t, keyStatusOf(t, p, fp.ids[fpOK]))
		checkNoClientToken(t, f)
		p.assertNoSecretsLogged(fp.secrets[:]...)
	})
	t.Run("front door gemini", func(t *testing.T) {
		// Gemini's OpenAI-compatible endpoint wraps the same errors in a
		// JSON array; the key outcomes must not change.
		f, p := startFakeProxy(t, fakeupstream.Options{}, nil)
		fp := newFailoverPool(t, f, p, "gemini", "AIzaSy")
		ctx := sdkContext(t)
		c := newOpenAIClient(p.URL+"/v1", oaoption.WithMaxRetries(0)) // retries off, as above
		const model = "gemini-2.5-flash"
		before := time.Now()
		res, err := c.Chat.Completions.New(ctx, chatParams(model))
		after := time.Now()
		if err != nil {
			t.Fatalf("first call failed although a healthy key is left: %v", err)
		}
		if res.Choices[0].Message.Content != fakeupstream.AnswerText(model) {
			t.Fatalf("answer %q", res.Choices[0].Message.Content)
		}
		fp.checkFirstFailover(t, f)
		for _, r := range f.Requests() {
			if r.Provider != fakeupstream.GeminiOpenAI {
				t.Fatalf("front door request went to %s %s", r.Provider, r.Path)
			}
		}
		checkOpenAIStream(t, c.Chat.Completions.NewStreaming(ctx, chatParams(model)), model)
		fp.checkFailedKeysUsedOnce(t, f)
		checkModelRest(t, keyStatusOf(t, p, fp.ids[fpRateLimited]), "gemini-2.5-flash", "rate_limited", before.Add(26*time.Second), 2*time.Second+after.Sub(before))
		checkDisabled(t, keyStatusOf(t, p, fp.ids[fpInvalid]), "API_KEY_INVALID")
		checkModelRest(t, keyStatusOf(t, p, fp.ids[fpQuota]), "gemini-2.5-flash", "quota_exhausted", nextLAMidnight(t, before), 3*time.Second)
		checkActive(t, keyStatusOf(t, p, fp.ids[fpOK]))
		checkNoClientToken(t, f)
	})
	t.Run("anthropic", func(t *testing.T) {
		f, p := startFakeProxy(t, fakeupstream.Options{}, nil)
		fp := newFailoverPool(t, f, p, "anthropic", "sk-ant")
		ctx := sdkContext(t)
		// Retries off: anthropic-sdk-go would otherwise retry 429s and 5xx itself.
		c := newAnthropicClient(p, antoption.WithMaxRetries(0))
		const model = "claude-sonnet-4-5"
		before := time.Now()
		var raw *http.Response
		msg, err := c.Messages.New(ctx, anthropicParams(model), antoption.WithResponseInto(&raw))
		after := time.Now()
		if err != nil {
			t.Fatalf("first call failed although a healthy key is left: %v", err)
		}
		if msg.Content[0].Text != fakeupstream.AnswerText(model) || raw.Header.Get("X-KeyPool-Attempts") != "4" {
			t.Fatalf("answer %q, attempts %q", msg.Content[0].Text, raw.Header.Get("X-KeyPool-Attempts"))
		}
		fp.checkFirstFailover(t, f)
		for i := range calls - 1 {
			if _, err := c.Messages.New(ctx, anthropicParams(model)); err != nil {
				t.Fatalf("call %d: %v", i+2, err)
			}
		}
		for range streams {
			stream := c.Messages.NewStreaming(ctx, anthropicParams(model))
			var m anthropic.Message
			for stream.Next() {
				m.Accumulate(stream.Current())
			}
			if err := stream.Err(); err != nil || len(m.Content) != 1 || m.Content[0].Text != streamText(model, fakeStreamChunks) {
				t.Fatalf("stream: %v, content %+v", err, m.Content)
			}
			stream.Close()
		}
		fp.checkFailedKeysUsedOnce(t, f)
		// retry-after: 20.
		checkModelRest(t, keyStatusOf(t, p, fp.ids[fpRateLimited]), "claude-sonnet-4-5", "rate_limited", before.Add(20*time.Second), 2*time.Second+after.Sub(before))
		checkDisabled(t, keyStatusOf(t, p, fp.ids[fpInvalid]), "authentication_error")
		// "You will regain access on <first of next month> at 00:00 UTC."
		y, m, _ := before.UTC().Date()
		checkCooling(t, keyStatusOf(t, p, fp.ids[fpQuota]), "quota_exhausted", time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC), time.Second)
		checkActive(t, keyStatusOf(t, p, fp.ids[fpOK]))
		checkNoClientToken(t, f)
		p.assertNoSecretsLogged(fp.secrets[:]...)
	})
}

// checkNoKeyAnswer checks the proxy's own answer when every key rests: 503
// in the seed's JSON shape with a Retry-After that tells when the first key
// comes back (want, give or take slack).
func checkNoKeyAnswer(t *testing.T, r response, provider string, want time.Time, slack time.Duration) {
	t.Helper()
	if r.Status != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503: %s", r.Status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q, want JSON", ct)
	}
	ra := r.Header.Get("Retry-After")
	secs, err := strconv.ParseInt(ra, 10, 64)
	if err != nil || secs < 1 {
		t.Fatalf("Retry-After %q, want a positive number of seconds", ra)
	}
	checkTimeNear(t, "now + Retry-After", time.Now().Add(time.Duration(secs)*time.Second), want, slack)
	var body struct {
		Error       string  `json:"error"`
		Provider    string  `json:"provider"`
		Strategy    string  `json:"strategy"`
		Suggestion  string  `json:"suggestion"`
		RetryAfter  *int64  `json:"retryAfter"`
		AvailableAt *string `json:"availableAt"`
	}
	r.Decode(t, &body)
	if body.Error != "No available API keys" || body.Provider != provider || body.Strategy != "roundRobin" || body.Suggestion == "" {
		t.Fatalf("body %s, want the seed's shape {error: No available API keys, provider: %s, strategy, suggestion}", r.Body, provider)
	}
	if body.RetryAfter == nil || *body.RetryAfter != secs {
		t.Fatalf("body retryAfter %v, want the header's %d", body.RetryAfter, secs)
	}
	checkTimeNear(t, "availableAt", apiTime(t, body.AvailableAt), want, slack)
	// SDKs sleep for Retry-After: one that names a day must tell them not to.
	shouldRetry := r.Header.Get("X-Should-Retry")
	if secs > 120 && shouldRetry != "false" {
		t.Fatalf("Retry-After %ds with X-Should-Retry %q: SDKs would sleep that long", secs, shouldRetry)
	}
	if secs <= 60 && shouldRetry == "false" {
		t.Fatalf("Retry-After %ds with X-Should-Retry false: SDKs would give up on a short wait", secs)
	}
}

func TestSDKAllKeysCooling(t *testing.T) {
	clearSDKEnv(t)
	t.Run("openai", func(t *testing.T) {
		f, p := startFakeProxy(t, fakeupstream.Options{}, nil)
		for i := range 2 {
			s := fmt.Sprintf("sk-all-cooling-openai-%08d", i)
			f.SetBehavior(s, fakeupstream.RateLimited)
			p.addKey("openai", s, 0)
		}
		ctx := sdkContext(t)
		// Retries off: openai-go would honour the 20 s Retry-After and try again.
		c := newOpenAIClient(p.URL+"/api/openai/v1", oaoption.WithMaxRetries(0))
		start := time.Now()
		_, err := c.Chat.Completions.New(ctx, chatParams("gpt-4o-mini"))
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 {
			t.Fatalf("both keys rate limited: got %v, want the upstream's last 429", err)
		}
		n := f.Count()
		_, err = c.Chat.Completions.New(ctx, chatParams("gpt-4o-mini"))
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 503 {
			t.Fatalf("every key cooling: got %v, want the proxy's 503", err)
		}
		if ra := apiErr.Response.Header.Get("Retry-After"); ra == "" {
			t.Fatal("the SDK's 503 has no Retry-After")
		}
		r := p.do("POST", "/api/openai/chat/completions", `{"model":"gpt-4o-mini","messages":[]}`, map[string]string{"Authorization": "Bearer " + testClientToken})
		checkNoKeyAnswer(t, r, "openai", start.Add(20*time.Second), 3*time.Second)
		if got := f.Count(); got != n {
			t.Fatalf("the upstream got %d requests while every key rested", got-n)
		}
		// The front door answers the same way for a model of that provider.
		r = p.do("POST", "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[]}`, map[string]string{"Authorization": "Bearer " + testClientToken})
		if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
			t.Fatalf("front door with every key cooling: %d %v %s", r.Status, r.Header, r.Body)
		}
	})
	t.Run("gemini", func(t *testing.T) {
		f, p := startFakeProxy(t, fakeupstream.Options{}, nil)
		for i := range 2 {
			s := fmt.Sprintf("AIzaSyAllCoolingDaily-%08d", i)
			f.SetBehavior(s, fakeupstream.DailyQuota)
			p.addKey("gemini", s, 0)
		}
		ctx := sdkContext(t)
		c := newGenAIClient(t, ctx, p)
		start := time.Now()
		_, err := c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("hi"), nil)
		var apiErr genai.APIError
		if !errors.As(err, &apiErr) || apiErr.Code != 429 || apiErr.Status != "RESOURCE_EXHAUSTED" {
			t.Fatalf("both keys out of daily quota: got %v, want the upstream's 429 RESOURCE_EXHAUSTED", err)
		}
		_, err = c.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("hi"), nil)
		if !errors.As(err, &apiErr) || apiErr.Code != 503 || !strings.Contains(apiErr.Message, "No available API keys") {
			t.Fatalf("every key cooling: got %v, want the proxy's 503", err)
		}
		r := p.do("POST", "/api/gemini/models/gemini-2.5-flash:generateContent", `{}`, map[string]string{"x-goog-api-key": testClientToken})
		checkNoKeyAnswer(t, r, "gemini", nextLAMidnight(t, start), 3*time.Second)
	})
	t.Run("anthropic", func(t *testing.T) {
		f, p := startFakeProxy(t, fakeupstream.Options{}, nil)
		for i := range 2 {
			s := fmt.Sprintf("sk-ant-all-cooling-%08d", i)
			f.SetBehavior(s, fakeupstream.RateLimited)
			p.addKey("anthropic", s, 0)
		}
		ctx := sdkContext(t)
		// Retries off: anthropic-sdk-go sleeps for any Retry-After.
		c := newAnthropicClient(p, antoption.WithMaxRetries(0))
		start := time.Now()
		_, err := c.Messages.New(ctx, anthropicParams("claude-sonnet-4-5"))
		var apiErr *anthropic.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 {
			t.Fatalf("both keys rate limited: got %v, want the upstream's last 429", err)
		}
		_, err = c.Messages.New(ctx, anthropicParams("claude-sonnet-4-5"))
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 503 || apiErr.Response.Header.Get("Retry-After") == "" {
			t.Fatalf("every key cooling: got %v, want the proxy's 503 with Retry-After", err)
		}
		r := p.do("POST", "/api/anthropic/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[]}`, map[string]string{"x-api-key": testClientToken})
		checkNoKeyAnswer(t, r, "anthropic", start.Add(20*time.Second), 3*time.Second)
	})
}

func TestSDKMidStreamErrorEvent(t *testing.T) {
	// The upstream sends a chunk, then an error event inside the 200
	// (Gemini `data: {"error":…}`, OpenAI `data: {"error":…}`, Anthropic
	// `event: error`). The proxy passes it on, so every SDK ends the stream
	// with an error instead of a clean end.
	clearSDKEnv(t)
	f, p := startFakeProxy(t, fakeupstream.Options{}, nil)
	oids, _ := addKeys(t, f, p, "openai", "sk", fakeupstream.MidStreamError)
	gids, _ := addKeys(t, f, p, "gemini", "AIzaSy", fakeupstream.MidStreamError)
	aids, _ := addKeys(t, f, p, "anthropic", "sk-ant", fakeupstream.MidStreamError)
	ctx := sdkContext(t)

	// Retries off in the three SDKs: one stream each.
	c := newOpenAIClient(p.URL+"/api/openai/v1", oaoption.WithMaxRetries(0))
	text, n, _, err := openAIStream(c.Chat.Completions.NewStreaming(ctx, chatParams("gpt-4o-mini")))
	if err == nil || text != fakeupstream.ChunkText("gpt-4o-mini", 0) {
		t.Fatalf("openai-go: %d chunks %q, error %v; want the first chunk, then an error", n, text, err)
	}

	var gtext strings.Builder
	var gerr error
	for res, err := range newGenAIClient(t, ctx, p).Models.GenerateContentStream(ctx, "gemini-2.5-flash", genai.Text("hi"), nil) {
		if err != nil {
			gerr = err
			break
		}
		gtext.WriteString(res.Text())
	}
	var apiErr genai.APIError
	if !errors.As(gerr, &apiErr) || apiErr.Code != 503 || gtext.String() != fakeupstream.ChunkText("gemini-2.5-flash", 0) {
		t.Fatalf("genai: text %q, error %v; want the first chunk, then the 503 error event", gtext.String(), gerr)
	}

	ac := newAnthropicClient(p, antoption.WithMaxRetries(0))
	stream := ac.Messages.NewStreaming(ctx, anthropicParams("claude-sonnet-4-5"))
	var msg anthropic.Message
	for stream.Next() {
		msg.Accumulate(stream.Current())
	}
	if stream.Err() == nil || !strings.Contains(stream.Err().Error(), "overloaded_error") {
		t.Fatalf("anthropic-sdk-go: stream error %v, want the overloaded_error event", stream.Err())
	}
	stream.Close()

	for _, id := range []string{oids[0], gids[0], aids[0]} {
		k := keyStatusOf(t, p, id)
		if k.Successes != 0 || k.Failures != 1 || k.LastError == nil {
			t.Errorf("key %s after a stream that ended in an error event: %d successes, %d failures, lastError %+v; want a failure with the event's error",
				id, k.Successes, k.Failures, k.LastError)
		}
	}
}
