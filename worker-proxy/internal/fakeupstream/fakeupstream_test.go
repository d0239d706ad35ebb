package fakeupstream

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	gemModel    = "gemini-2.5-flash"
	oaiModel    = "gpt-4o-mini"
	claudeModel = "claude-sonnet-4-5-20250929"
	secretKey   = "sk-fakeupstream-test-key-not-real-0000"
)

func start(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// req describes a request to the fake.
type req struct {
	method, path string
	header       map[string]string
	body         string
}

func (r req) send(t testing.TB, s *Server) *http.Response {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	method := r.method
	if method == "" {
		method = http.MethodPost
	}
	hr, err := http.NewRequest(method, s.URL+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// do sends r and returns the response with its whole body.
func (r req) do(t testing.TB, s *Server) (*http.Response, []byte) {
	t.Helper()
	resp := r.send(t, s)
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func gemReq(key, model, method, query, body string) req {
	h := map[string]string{"Content-Type": "application/json"}
	if key != "" {
		h["x-goog-api-key"] = key
	}
	p := "/v1beta/models/" + model + ":" + method
	if query != "" {
		p += "?" + query
	}
	return req{path: p, header: h, body: body}
}

const gemBody = `{"contents":[{"role":"user","parts":[{"text":"Hi"}]}]}`

func gemGenerate(key string) req { return gemReq(key, gemModel, "generateContent", "", gemBody) }

func compatChat(key string, stream bool) req {
	h := map[string]string{"Content-Type": "application/json"}
	if key != "" {
		h["Authorization"] = "Bearer " + key
	}
	return req{path: "/v1beta/openai/chat/completions", header: h,
		body: `{"model":"` + gemModel + `","stream":` + strconv.FormatBool(stream) + `,"messages":[{"role":"user","content":"Hi"}]}`}
}

func openaiChatReq(key string, stream, usage bool) req {
	h := map[string]string{"Content-Type": "application/json"}
	if key != "" {
		h["Authorization"] = "Bearer " + key
	}
	body := `{"model":"` + oaiModel + `","messages":[{"role":"user","content":"Hi"}]`
	if stream {
		body += `,"stream":true`
	}
	if usage {
		body += `,"stream_options":{"include_usage":true}`
	}
	return req{path: "/v1/chat/completions", header: h, body: body + "}"}
}

func anthropicReq(key string, stream bool) req {
	h := map[string]string{"Content-Type": "application/json", "anthropic-version": "2023-06-01"}
	if key != "" {
		h["x-api-key"] = key
	}
	return req{path: "/v1/messages", header: h,
		body: `{"model":"` + claudeModel + `","max_tokens":64,"stream":` + strconv.FormatBool(stream) + `,"messages":[{"role":"user","content":"Hi"}]}`}
}

func decode(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, b)
	}
}

func wantStatus(t testing.TB, resp *http.Response, body []byte, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("status %d, want %d; body:\n%s", resp.StatusCode, want, body)
	}
}

func wantHeader(t testing.TB, resp *http.Response, k, want string) {
	t.Helper()
	if got := resp.Header.Get(k); got != want {
		t.Errorf("header %s = %q, want %q", k, got, want)
	}
}

// Response shapes.

type geminiResponse struct {
	Candidates []struct {
		Content struct {
			Parts []struct {
				Text string `json:"text"`
			} `json:"parts"`
			Role string `json:"role"`
		} `json:"content"`
		FinishReason string `json:"finishReason"`
		Index        int    `json:"index"`
	} `json:"candidates"`
	UsageMetadata struct {
		PromptTokenCount     int `json:"promptTokenCount"`
		CandidatesTokenCount int `json:"candidatesTokenCount"`
		TotalTokenCount      int `json:"totalTokenCount"`
	} `json:"usageMetadata"`
	ModelVersion string `json:"modelVersion"`
	ResponseID   string `json:"responseId"`
}

func (g geminiResponse) text(t testing.TB) string {
	t.Helper()
	if len(g.Candidates) != 1 || len(g.Candidates[0].Content.Parts) != 1 {
		t.Fatalf("want one candidate with one part: %+v", g)
	}
	return g.Candidates[0].Content.Parts[0].Text
}

type googleError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Type       string            `json:"@type"`
			Reason     string            `json:"reason"`
			Domain     string            `json:"domain"`
			Metadata   map[string]string `json:"metadata"`
			RetryDelay string            `json:"retryDelay"`
			Violations []struct {
				QuotaMetric     string            `json:"quotaMetric"`
				QuotaID         string            `json:"quotaId"`
				QuotaDimensions map[string]string `json:"quotaDimensions"`
				QuotaValue      string            `json:"quotaValue"`
			} `json:"violations"`
			Links []struct {
				Description string `json:"description"`
				URL         string `json:"url"`
			} `json:"links"`
		} `json:"details"`
	} `json:"error"`
}

func (g googleError) detail(typ string) (int, bool) {
	for i, d := range g.Error.Details {
		if d.Type == "type.googleapis.com/google.rpc."+typ {
			return i, true
		}
	}
	return -1, false
}

type openaiError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func (e openaiError) code() string {
	if e.Error.Code == nil {
		return "<null>"
	}
	return *e.Error.Code
}

type anthropicError struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type chatCompletion struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index   int `json:"index"`
		Message struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage usage `json:"usage"`
}

type chatChunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *usage `json:"usage"`
}

type anthropicMessageResp struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Role    string `json:"role"`
	Model   string `json:"model"`
	Content []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"content"`
	StopReason string `json:"stop_reason"`
	Usage      struct {
		InputTokens  int `json:"input_tokens"`
		OutputTokens int `json:"output_tokens"`
	} `json:"usage"`
}

type embeddingList struct {
	Object string `json:"object"`
	Data   []struct {
		Object    string          `json:"object"`
		Index     int             `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	} `json:"data"`
	Model string `json:"model"`
	Usage usage  `json:"usage"`
}

// frameReader reads SSE events (or other frames) ending in sep.
type frameReader struct {
	br  *bufio.Reader
	sep string
}

func newFrames(r io.Reader, sep string) *frameReader {
	return &frameReader{bufio.NewReader(r), sep}
}

func (f *frameReader) next() (string, error) {
	var sb strings.Builder
	for {
		line, err := f.br.ReadString('\n')
		sb.WriteString(line)
		if strings.HasSuffix(sb.String(), f.sep) {
			return sb.String(), nil
		}
		if err != nil {
			if err == io.EOF && sb.Len() > 0 {
				err = io.ErrUnexpectedEOF
			}
			return sb.String(), err
		}
	}
}

func (f *frameReader) all(t testing.TB) []string {
	t.Helper()
	var out []string
	for {
		fr, err := f.next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("reading frames: %v (after %q, partial %q)", err, out, fr)
		}
		out = append(out, fr)
	}
}

// dataOf returns the payload of a `data: …` frame.
func dataOf(t testing.TB, frame, sep string) string {
	t.Helper()
	d, ok := strings.CutPrefix(frame, "data: ")
	if !ok || !strings.HasSuffix(d, sep) {
		t.Fatalf("bad SSE frame %q", frame)
	}
	return strings.TrimSuffix(d, sep)
}

// anthropicFrame splits an `event: X\ndata: Y\n\n` frame.
func anthropicFrame(t testing.TB, frame string) (event, data string) {
	t.Helper()
	ev, rest, ok := strings.Cut(frame, "\n")
	if !ok || !strings.HasPrefix(ev, "event: ") {
		t.Fatalf("bad Anthropic frame %q", frame)
	}
	return strings.TrimPrefix(ev, "event: "), dataOf(t, rest, "\n\n")
}

func TestListensOnLoopbackOnly(t *testing.T) {
	s := start(t, Options{})
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() == "" || u.Port() == "0" || u.Path != "" {
		t.Fatalf("URL = %q, want http://127.0.0.1:<port>", s.URL)
	}
	// The port must not answer on the machine's other addresses.
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		c, err := net.DialTimeout("tcp", net.JoinHostPort(ipn.IP.String(), u.Port()), time.Second)
		if err == nil {
			c.Close()
			t.Errorf("the fake answers on %s", ipn.IP)
		}
	}
	for _, host := range []string{"127.0.0.1"} {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(host, u.Port()), time.Second)
		if err != nil {
			t.Fatalf("dial %s: %v", host, err)
		}
		c.Close()
	}
}

func TestGeminiGenerateContent(t *testing.T) {
	s := start(t, Options{})
	for _, r := range []req{
		gemGenerate("k1"),
		{path: "/v1beta/models/" + gemModel + ":generateContent?key=k1", body: gemBody},
		{path: "/v1/models/" + gemModel + ":generateContent", header: map[string]string{"x-goog-api-key": "k1"}, body: gemBody},
	} {
		resp, b := r.do(t, s)
		wantStatus(t, resp, b, 200)
		wantHeader(t, resp, "Content-Type", "application/json; charset=UTF-8")
		var g geminiResponse
		decode(t, b, &g)
		if got := g.text(t); got != AnswerText(gemModel) || !strings.Contains(got, gemModel) {
			t.Errorf("text %q", got)
		}
		c := g.Candidates[0]
		if c.FinishReason != "STOP" || c.Content.Role != "model" || c.Index != 0 {
			t.Errorf("candidate %+v", c)
		}
		u := g.UsageMetadata
		if u.PromptTokenCount <= 0 || u.CandidatesTokenCount <= 0 || u.TotalTokenCount != u.PromptTokenCount+u.CandidatesTokenCount {
			t.Errorf("usage %+v", u)
		}
		if g.ModelVersion != gemModel || g.ResponseID == "" {
			t.Errorf("modelVersion %q responseId %q", g.ModelVersion, g.ResponseID)
		}
		if !strings.HasPrefix(string(b), "{\n  \"candidates\": [") {
			t.Errorf("want Google's pretty-printed JSON, got %.40q", b)
		}
	}
}

func TestGeminiStreamSSE(t *testing.T) {
	const n = 4
	s := start(t, Options{StreamChunks: n})
	resp := gemReq("k1", gemModel, "streamGenerateContent", "alt=sse", gemBody).send(t, s)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	wantHeader(t, resp, "Content-Type", "text/event-stream")
	frames := newFrames(resp.Body, "\r\n\r\n").all(t)
	if len(frames) != n {
		t.Fatalf("%d frames, want %d: %q", len(frames), n, frames)
	}
	prev := 0
	for i, f := range frames {
		d := dataOf(t, f, "\r\n\r\n")
		if strings.ContainsAny(d, "\r\n") || d == "[DONE]" {
			t.Fatalf("frame %d: %q", i, f)
		}
		var g geminiResponse
		decode(t, []byte(d), &g)
		if got := g.text(t); got != ChunkText(gemModel, i) {
			t.Errorf("chunk %d text %q", i, got)
		}
		fr := g.Candidates[0].FinishReason
		if (i == n-1) != (fr == "STOP") {
			t.Errorf("chunk %d finishReason %q", i, fr)
		}
		if g.ModelVersion != gemModel || g.UsageMetadata.CandidatesTokenCount <= prev {
			t.Errorf("chunk %d: %+v", i, g)
		}
		prev = g.UsageMetadata.CandidatesTokenCount
	}
}

func TestGeminiStreamJSONArray(t *testing.T) {
	s := start(t, Options{StreamChunks: 3})
	resp, b := gemReq("k1", gemModel, "streamGenerateContent", "", gemBody).do(t, s)
	wantStatus(t, resp, b, 200)
	wantHeader(t, resp, "Content-Type", "application/json; charset=UTF-8")
	var arr []geminiResponse
	decode(t, b, &arr)
	if len(arr) != 3 {
		t.Fatalf("%d elements", len(arr))
	}
	for i, g := range arr {
		if g.text(t) != ChunkText(gemModel, i) {
			t.Errorf("element %d: %q", i, g.text(t))
		}
	}
}

func TestGeminiModels(t *testing.T) {
	s := start(t, Options{})
	type model struct {
		Name                       string   `json:"name"`
		DisplayName                string   `json:"displayName"`
		InputTokenLimit            int      `json:"inputTokenLimit"`
		SupportedGenerationMethods []string `json:"supportedGenerationMethods"`
	}
	for _, p := range []string{"/v1beta/models", "/v1/models"} {
		resp, b := req{method: "GET", path: p, header: map[string]string{"x-goog-api-key": "k"}}.do(t, s)
		wantStatus(t, resp, b, 200)
		var l struct {
			Models []model `json:"models"`
		}
		decode(t, b, &l)
		if len(l.Models) == 0 || l.Models[0].Name != "models/"+gemModel || l.Models[0].InputTokenLimit == 0 || len(l.Models[0].SupportedGenerationMethods) == 0 {
			t.Errorf("%s: %+v", p, l)
		}
	}
	resp, b := req{method: "GET", path: "/v1beta/models/gemini-2.5-pro?key=k"}.do(t, s)
	wantStatus(t, resp, b, 200)
	var m model
	decode(t, b, &m)
	if m.Name != "models/gemini-2.5-pro" {
		t.Errorf("%+v", m)
	}
}

func TestGeminiOpenAICompatible(t *testing.T) {
	s := start(t, Options{StreamChunks: 3})
	resp, b := compatChat("k1", false).do(t, s)
	wantStatus(t, resp, b, 200)
	var cc chatCompletion
	decode(t, b, &cc)
	if cc.Object != "chat.completion" || cc.Model != gemModel || len(cc.Choices) != 1 ||
		cc.Choices[0].Message.Content != AnswerText(gemModel) || cc.Choices[0].Message.Role != "assistant" ||
		cc.Choices[0].FinishReason != "stop" || cc.Usage.TotalTokens != cc.Usage.PromptTokens+cc.Usage.CompletionTokens {
		t.Errorf("%+v", cc)
	}

	r := compatChat("k1", true)
	r.body = strings.Replace(r.body, `"stream":true`, `"stream":true,"stream_options":{"include_usage":true}`, 1)
	resp = r.send(t, s)
	wantHeader(t, resp, "Content-Type", "text/event-stream")
	frames := newFrames(resp.Body, "\n\n").all(t)
	if len(frames) != 3+3 || frames[len(frames)-1] != "data: [DONE]\n\n" {
		t.Fatalf("frames %q", frames)
	}
	for i := range 3 {
		var ch chatChunk
		decode(t, []byte(dataOf(t, frames[i], "\n\n")), &ch)
		if ch.Object != "chat.completion.chunk" || ch.Choices[0].Delta.Content != ChunkText(gemModel, i) {
			t.Errorf("chunk %d: %q", i, frames[i])
		}
	}
	var fin, use chatChunk
	decode(t, []byte(dataOf(t, frames[3], "\n\n")), &fin)
	decode(t, []byte(dataOf(t, frames[4], "\n\n")), &use)
	if fin.Choices[0].FinishReason == nil || *fin.Choices[0].FinishReason != "stop" || len(use.Choices) != 0 || use.Usage == nil || use.Usage.CompletionTokens == 0 {
		t.Errorf("finish %q usage %q", frames[3], frames[4])
	}

	resp, b = req{method: "GET", path: "/v1beta/openai/models", header: map[string]string{"Authorization": "Bearer k1"}}.do(t, s)
	wantStatus(t, resp, b, 200)
	var ml struct {
		Object string `json:"object"`
		Data   []struct {
			ID, Object, OwnedBy string
		} `json:"data"`
	}
	decode(t, b, &ml)
	if ml.Object != "list" || len(ml.Data) == 0 || ml.Data[0].ID != "models/"+gemModel {
		t.Errorf("%s", b)
	}

	resp, b = req{path: "/v1beta/openai/embeddings", header: map[string]string{"Authorization": "Bearer k1"},
		body: `{"model":"gemini-embedding-001","input":["a","b"]}`}.do(t, s)
	wantStatus(t, resp, b, 200)
	var el embeddingList
	decode(t, b, &el)
	if len(el.Data) != 2 || el.Model != "gemini-embedding-001" {
		t.Errorf("%s", b)
	}
}

func TestOpenAIChat(t *testing.T) {
	s := start(t, Options{})
	resp, b := openaiChatReq("k1", false, false).do(t, s)
	wantStatus(t, resp, b, 200)
	wantHeader(t, resp, "Content-Type", "application/json")
	wantHeader(t, resp, "openai-version", "2020-10-01")
	wantHeader(t, resp, "x-ratelimit-limit-requests", "60")
	wantHeader(t, resp, "x-ratelimit-remaining-requests", "59")
	wantHeader(t, resp, "x-ratelimit-reset-requests", "1s")
	wantHeader(t, resp, "x-ratelimit-reset-tokens", "6m0s")
	if id := resp.Header.Get("x-request-id"); !strings.HasPrefix(id, "req_") || len(id) != 36 {
		t.Errorf("x-request-id %q", id)
	}
	var cc chatCompletion
	decode(t, b, &cc)
	if !strings.HasPrefix(cc.ID, "chatcmpl-") || cc.Object != "chat.completion" || cc.Model != oaiModel || cc.Created == 0 ||
		len(cc.Choices) != 1 || cc.Choices[0].Message.Content != AnswerText(oaiModel) || cc.Choices[0].FinishReason != "stop" ||
		cc.Usage.TotalTokens != cc.Usage.PromptTokens+cc.Usage.CompletionTokens || cc.Usage.CompletionTokens == 0 {
		t.Errorf("%+v", cc)
	}
	// Two requests get different ids.
	resp2, _ := openaiChatReq("k1", false, false).do(t, s)
	if resp2.Header.Get("x-request-id") == resp.Header.Get("x-request-id") {
		t.Error("request ids repeat")
	}
}

func TestOpenAIStream(t *testing.T) {
	const n = 3
	s := start(t, Options{StreamChunks: n})
	for _, withUsage := range []bool{false, true} {
		resp := openaiChatReq("k1", true, withUsage).send(t, s)
		wantHeader(t, resp, "Content-Type", "text/event-stream; charset=utf-8")
		if resp.Header.Get("x-request-id") == "" {
			t.Error("no x-request-id")
		}
		frames := newFrames(resp.Body, "\n\n").all(t)
		want := 1 + n + 1 + 1 // role, chunks, finish, [DONE]
		if withUsage {
			want++
		}
		if len(frames) != want || frames[len(frames)-1] != "data: [DONE]\n\n" {
			t.Fatalf("usage %v: frames %q", withUsage, frames)
		}
		var id string
		for i, f := range frames[:len(frames)-1] {
			d := dataOf(t, f, "\n\n")
			if withUsage != strings.Contains(d, `"usage":`) {
				t.Errorf("usage %v: frame %d %q", withUsage, i, d)
			}
			var ch chatChunk
			decode(t, []byte(d), &ch)
			if ch.Object != "chat.completion.chunk" || ch.Model != oaiModel {
				t.Errorf("frame %d %q", i, d)
			}
			if id == "" {
				id = ch.ID
			} else if ch.ID != id {
				t.Errorf("frame %d id %q, want %q", i, ch.ID, id)
			}
			switch {
			case i == 0:
				if ch.Choices[0].Delta.Role != "assistant" || ch.Choices[0].FinishReason != nil {
					t.Errorf("role chunk %q", d)
				}
			case i <= n:
				if ch.Choices[0].Delta.Content != ChunkText(oaiModel, i-1) || ch.Choices[0].FinishReason != nil || ch.Usage != nil {
					t.Errorf("chunk %d %q", i-1, d)
				}
			case i == n+1:
				if fr := ch.Choices[0].FinishReason; fr == nil || *fr != "stop" {
					t.Errorf("finish chunk %q", d)
				}
			default:
				if len(ch.Choices) != 0 || ch.Usage == nil || ch.Usage.TotalTokens != ch.Usage.PromptTokens+ch.Usage.CompletionTokens {
					t.Errorf("usage chunk %q", d)
				}
			}
		}
	}
}

func TestOpenAIModelsAndEmbeddings(t *testing.T) {
	s := start(t, Options{})
	auth := map[string]string{"Authorization": "Bearer k1"}
	resp, b := req{method: "GET", path: "/v1/models", header: auth}.do(t, s)
	wantStatus(t, resp, b, 200)
	var ml struct {
		Object string `json:"object"`
		Data   []struct {
			ID      string `json:"id"`
			Object  string `json:"object"`
			OwnedBy string `json:"owned_by"`
		} `json:"data"`
	}
	decode(t, b, &ml)
	if ml.Object != "list" || len(ml.Data) == 0 || ml.Data[0].Object != "model" {
		t.Errorf("%s", b)
	}
	// Fine-tuned ids contain colons; a GET stays with OpenAI.
	resp, b = req{method: "GET", path: "/v1/models/ft:gpt-4o:org", header: auth}.do(t, s)
	wantStatus(t, resp, b, 200)
	var m struct{ ID, Object string }
	decode(t, b, &m)
	if m.ID != "ft:gpt-4o:org" || m.Object != "model" {
		t.Errorf("%s", b)
	}

	resp, b = req{path: "/v1/embeddings", header: auth, body: `{"model":"text-embedding-3-small","input":["a","b","c"]}`}.do(t, s)
	wantStatus(t, resp, b, 200)
	var el embeddingList
	decode(t, b, &el)
	if el.Object != "list" || len(el.Data) != 3 || el.Model != "text-embedding-3-small" || el.Usage.PromptTokens == 0 {
		t.Fatalf("%s", b)
	}
	for i, d := range el.Data {
		var v []float32
		decode(t, d.Embedding, &v)
		if d.Index != i || d.Object != "embedding" || len(v) != embeddingDims {
			t.Errorf("embedding %d: %s", i, d.Embedding)
		}
	}
	resp, b = req{path: "/v1/embeddings", header: auth, body: `{"model":"m","input":"x","dimensions":16,"encoding_format":"base64"}`}.do(t, s)
	wantStatus(t, resp, b, 200)
	decode(t, b, &el)
	var s64 string
	decode(t, el.Data[0].Embedding, &s64)
	raw, err := base64.StdEncoding.DecodeString(s64)
	if err != nil || len(el.Data) != 1 || len(raw) != 16*4 {
		t.Errorf("base64 embedding %s: %v", b, err)
	}
	if n := countInputs(json.RawMessage(`[1,2,3]`)); n != 1 {
		t.Errorf("token array counted as %d inputs", n)
	}
	if n := countInputs(json.RawMessage(`[[1,2],[3]]`)); n != 2 {
		t.Errorf("two token arrays counted as %d inputs", n)
	}
}

func TestAnthropicMessages(t *testing.T) {
	s := start(t, Options{})
	resp, b := anthropicReq("k1", false).do(t, s)
	wantStatus(t, resp, b, 200)
	wantHeader(t, resp, "Content-Type", "application/json")
	if id := resp.Header.Get("request-id"); !strings.HasPrefix(id, "req_") {
		t.Errorf("request-id %q", id)
	}
	wantHeader(t, resp, "anthropic-ratelimit-requests-limit", "4000")
	for _, k := range []string{"requests", "tokens", "input-tokens", "output-tokens"} {
		v := resp.Header.Get("anthropic-ratelimit-" + k + "-reset")
		if _, err := time.Parse(time.RFC3339, v); err != nil {
			t.Errorf("%s-reset %q: %v", k, v, err)
		}
	}
	var m anthropicMessageResp
	decode(t, b, &m)
	if !strings.HasPrefix(m.ID, "msg_") || m.Type != "message" || m.Role != "assistant" || m.Model != claudeModel ||
		len(m.Content) != 1 || m.Content[0].Type != "text" || m.Content[0].Text != AnswerText(claudeModel) ||
		m.StopReason != "end_turn" || m.Usage.InputTokens == 0 || m.Usage.OutputTokens == 0 {
		t.Errorf("%+v", m)
	}
}

func TestAnthropicStream(t *testing.T) {
	const n = 3
	s := start(t, Options{StreamChunks: n})
	resp := anthropicReq("k1", true).send(t, s)
	wantHeader(t, resp, "Content-Type", "text/event-stream; charset=utf-8")
	if resp.Header.Get("request-id") == "" {
		t.Error("no request-id")
	}
	frames := newFrames(resp.Body, "\n\n").all(t)
	var events []string
	deltas := 0
	for _, f := range frames {
		ev, d := anthropicFrame(t, f)
		events = append(events, ev)
		var payload struct {
			Type  string `json:"type"`
			Delta struct {
				Type, Text, StopReason string
			} `json:"delta"`
			Message struct {
				ID, Model string
			} `json:"message"`
		}
		decode(t, []byte(d), &payload)
		if payload.Type != ev {
			t.Errorf("event %q carries type %q", ev, payload.Type)
		}
		switch ev {
		case "message_start":
			if !strings.HasPrefix(payload.Message.ID, "msg_") || payload.Message.Model != claudeModel {
				t.Errorf("message_start %s", d)
			}
		case "content_block_delta":
			if payload.Delta.Type != "text_delta" || payload.Delta.Text != ChunkText(claudeModel, deltas) {
				t.Errorf("delta %d: %s", deltas, d)
			}
			deltas++
		}
	}
	want := []string{"message_start", "content_block_start", "ping"}
	for range n {
		want = append(want, "content_block_delta")
	}
	want = append(want, "content_block_stop", "message_delta", "message_stop")
	if strings.Join(events, ",") != strings.Join(want, ",") {
		t.Errorf("events %v\nwant   %v", events, want)
	}
}

func TestAnthropicModels(t *testing.T) {
	s := start(t, Options{})
	h := map[string]string{"x-api-key": "k1", "anthropic-version": "2023-06-01"}
	resp, b := req{method: "GET", path: "/v1/models", header: h}.do(t, s)
	wantStatus(t, resp, b, 200)
	var l struct {
		Data []struct {
			Type        string `json:"type"`
			ID          string `json:"id"`
			DisplayName string `json:"display_name"`
		} `json:"data"`
		HasMore bool   `json:"has_more"`
		FirstID string `json:"first_id"`
	}
	decode(t, b, &l)
	if len(l.Data) == 0 || l.Data[0].Type != "model" || l.FirstID != l.Data[0].ID {
		t.Errorf("%s", b)
	}
	resp, b = req{method: "GET", path: "/v1/models/" + claudeModel, header: h}.do(t, s)
	wantStatus(t, resp, b, 200)
	if !strings.Contains(string(b), `"id":"`+claudeModel+`"`) {
		t.Errorf("%s", b)
	}
}

func TestAnthropicRequestChecks(t *testing.T) {
	s := start(t, Options{})
	r := anthropicReq("k1", false)
	delete(r.header, "anthropic-version")
	resp, b := r.do(t, s)
	wantStatus(t, resp, b, 400)
	var e anthropicError
	decode(t, b, &e)
	if e.Error.Type != "invalid_request_error" || !strings.Contains(e.Error.Message, "anthropic-version") {
		t.Errorf("%s", b)
	}
	r = anthropicReq("k1", false)
	r.body = `{"model":"` + claudeModel + `","messages":[]}`
	resp, b = r.do(t, s)
	wantStatus(t, resp, b, 400)
	decode(t, b, &e)
	if e.Error.Message != "max_tokens: Field required" {
		t.Errorf("%s", b)
	}
}

// TestBehaviors checks every behaviour's answer for every provider.
func TestBehaviors(t *testing.T) {
	s := start(t, Options{Record: true})
	type check = func(t *testing.T, resp *http.Response, b []byte)
	gem := func(status int, canon string, more func(t *testing.T, g googleError)) check {
		return func(t *testing.T, resp *http.Response, b []byte) {
			wantStatus(t, resp, b, status)
			wantHeader(t, resp, "Content-Type", "application/json; charset=UTF-8")
			if resp.Header.Get("Retry-After") != "" {
				t.Error("Gemini sends no Retry-After")
			}
			var g googleError
			decode(t, b, &g)
			if g.Error.Code != status || g.Error.Status != canon || g.Error.Message == "" {
				t.Errorf("%s", b)
			}
			if more != nil {
				more(t, g)
			}
		}
	}
	// gemArray checks the OpenAI-compatible endpoint's form of c: the same
	// object in a one-element JSON array.
	gemArray := func(c check) check {
		return func(t *testing.T, resp *http.Response, b []byte) {
			var arr []json.RawMessage
			decode(t, b, &arr)
			if len(arr) != 1 {
				t.Fatalf("want a one-element array: %s", b)
			}
			c(t, resp, arr[0])
		}
	}
	reason := func(want string) func(*testing.T, googleError) {
		return func(t *testing.T, g googleError) {
			i, ok := g.detail("ErrorInfo")
			if !ok || g.Error.Details[i].Reason != want || g.Error.Details[i].Metadata["service"] != "generativelanguage.googleapis.com" {
				t.Errorf("want ErrorInfo %s: %+v", want, g.Error.Details)
			}
		}
	}
	quota := func(quotaID string, delay func(string) bool) func(*testing.T, googleError) {
		return func(t *testing.T, g googleError) {
			qi, ok1 := g.detail("QuotaFailure")
			ri, ok2 := g.detail("RetryInfo")
			_, ok3 := g.detail("Help")
			if !ok1 || !ok2 || !ok3 {
				t.Fatalf("details %+v", g.Error.Details)
			}
			v := g.Error.Details[qi].Violations
			if len(v) != 1 || v[0].QuotaID != quotaID || v[0].QuotaDimensions["model"] != gemModel {
				t.Errorf("violations %+v", v)
			}
			if d := g.Error.Details[ri].RetryDelay; !delay(d) {
				t.Errorf("retryDelay %q", d)
			}
		}
	}
	perMinute := quota("GenerateContentInputTokensPerModelPerMinute-FreeTier", func(d string) bool { return d == "26s" })
	perDay := quota("GenerateRequestsPerDayPerProjectPerModel", func(d string) bool {
		secs, err := strconv.Atoi(strings.TrimSuffix(d, "s"))
		return err == nil && strings.HasSuffix(d, "s") && secs >= 0 && secs <= 25*3600
	})
	gemChecks := map[Behavior]check{
		RateLimited: gem(429, "RESOURCE_EXHAUSTED", perMinute),
		DailyQuota: gem(429, "RESOURCE_EXHAUSTED", func(t *testing.T, g googleError) {
			perDay(t, g)
			if !strings.Contains(g.Error.Message, "Please retry in ") || !strings.Contains(g.Error.Message, "model: "+gemModel) {
				t.Errorf("message %q", g.Error.Message)
			}
		}),
		Invalid:   gem(400, "INVALID_ARGUMENT", reason("API_KEY_INVALID")),
		Suspended: gem(403, "PERMISSION_DENIED", reason("CONSUMER_SUSPENDED")),
		Overloaded: gem(503, "UNAVAILABLE", func(t *testing.T, g googleError) {
			wantMsg(t, g.Error.Message, "The model is overloaded. Please try again later.")
		}),
		InternalError: gem(500, "INTERNAL", nil),
	}
	oai := func(status int, typ, code string, more func(t *testing.T, resp *http.Response, e openaiError)) check {
		return func(t *testing.T, resp *http.Response, b []byte) {
			wantStatus(t, resp, b, status)
			if resp.Header.Get("x-request-id") == "" {
				t.Error("no x-request-id")
			}
			var e openaiError
			decode(t, b, &e)
			if e.Error.Type != typ || e.code() != code || e.Error.Param != nil || e.Error.Message == "" {
				t.Errorf("%s", b)
			}
			if more != nil {
				more(t, resp, e)
			}
		}
	}
	oaiChecks := map[Behavior]check{
		RateLimited: oai(429, "requests", "rate_limit_exceeded", func(t *testing.T, resp *http.Response, e openaiError) {
			wantHeader(t, resp, "x-ratelimit-reset-requests", "20s")
			wantHeader(t, resp, "x-ratelimit-remaining-requests", "0")
			if !strings.Contains(e.Error.Message, oaiModel) {
				t.Errorf("message %q", e.Error.Message)
			}
		}),
		DailyQuota: oai(429, "insufficient_quota", "insufficient_quota", nil),
		Invalid: oai(401, "invalid_request_error", "invalid_api_key", func(t *testing.T, resp *http.Response, e openaiError) {
			if !strings.HasPrefix(e.Error.Message, "Incorrect API key provided: sk-fakeu***...") {
				t.Errorf("message %q", e.Error.Message)
			}
		}),
		Suspended: oai(401, "invalid_request_error", "account_deactivated", nil),
		Overloaded: oai(503, "server_error", "<null>", func(t *testing.T, resp *http.Response, e openaiError) {
			id := strings.TrimPrefix(resp.Header.Get("x-request-id"), "req_")
			if !strings.Contains(e.Error.Message, "request ID "+id+" ") {
				t.Errorf("message %q lacks request id %s", e.Error.Message, id)
			}
		}),
		InternalError: oai(500, "server_error", "<null>", nil),
	}
	ant := func(status int, typ string, retry string, more func(t *testing.T, resp *http.Response, e anthropicError)) check {
		return func(t *testing.T, resp *http.Response, b []byte) {
			wantStatus(t, resp, b, status)
			var e anthropicError
			decode(t, b, &e)
			if e.Type != "error" || e.Error.Type != typ || e.Error.Message == "" || e.RequestID == "" || e.RequestID != resp.Header.Get("request-id") {
				t.Errorf("%s (request-id %q)", b, resp.Header.Get("request-id"))
			}
			wantHeader(t, resp, "x-should-retry", retry)
			if more != nil {
				more(t, resp, e)
			}
		}
	}
	antChecks := map[Behavior]check{
		RateLimited: ant(429, "rate_limit_error", "true", func(t *testing.T, resp *http.Response, e anthropicError) {
			wantHeader(t, resp, "retry-after", "20")
			wantHeader(t, resp, "anthropic-ratelimit-requests-remaining", "0")
			if _, err := time.Parse(time.RFC3339, resp.Header.Get("anthropic-ratelimit-requests-reset")); err != nil {
				t.Error(err)
			}
		}),
		DailyQuota: ant(400, "invalid_request_error", "false", func(t *testing.T, resp *http.Response, e anthropicError) {
			y, m, _ := time.Now().UTC().Date()
			next := time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
			wantMsg(t, e.Error.Message, "You have reached your specified API usage limits. You will regain access on "+next+" at 00:00 UTC.")
		}),
		Invalid: ant(401, "authentication_error", "false", func(t *testing.T, _ *http.Response, e anthropicError) {
			wantMsg(t, e.Error.Message, "invalid x-api-key")
		}),
		Suspended: ant(400, "invalid_request_error", "false", func(t *testing.T, _ *http.Response, e anthropicError) {
			wantMsg(t, e.Error.Message, "This organization has been disabled.")
		}),
		Overloaded:    ant(529, "overloaded_error", "true", func(t *testing.T, _ *http.Response, e anthropicError) { wantMsg(t, e.Error.Message, "Overloaded") }),
		InternalError: ant(500, "api_error", "true", nil),
	}
	providers := []struct {
		name   string
		req    func(key string) req
		checks map[Behavior]check
	}{
		{"gemini", gemGenerate, gemChecks},
		{"gemini-stream", func(k string) req { return gemReq(k, gemModel, "streamGenerateContent", "alt=sse", gemBody) }, gemChecks},
		{"gemini-openai", func(k string) req { return compatChat(k, false) }, wrapAll(gemChecks, gemArray)},
		{"gemini-openai-stream", func(k string) req { return compatChat(k, true) }, wrapAll(gemChecks, gemArray)},
		{"openai", func(k string) req { return openaiChatReq(k, false, false) }, oaiChecks},
		{"openai-stream", func(k string) req { return openaiChatReq(k, true, true) }, oaiChecks},
		{"anthropic", func(k string) req { return anthropicReq(k, false) }, antChecks},
		{"anthropic-stream", func(k string) req { return anthropicReq(k, true) }, antChecks},
	}
	for _, p := range providers {
		for b := RateLimited; b <= InternalError; b++ {
			t.Run(p.name+"/"+b.String(), func(t *testing.T) {
				key := secretKey + "-" + p.name + "-" + b.String()
				s.SetBehavior(key, b)
				resp, body := p.req(key).do(t, s)
				p.checks[b](t, resp, body)
				if strings.Contains(string(body), key) || strings.Contains(string(body), secretKey) {
					t.Errorf("the body echoes the key: %s", body)
				}
			})
		}
	}
	// Other keys are unaffected; setting OK clears a behaviour.
	key := secretKey + "-openai-RateLimited"
	if resp, b := openaiChatReq("other", false, false).do(t, s); resp.StatusCode != 200 {
		t.Errorf("other key: %d %s", resp.StatusCode, b)
	}
	s.SetBehavior(key, OK)
	if resp, b := openaiChatReq(key, false, false).do(t, s); resp.StatusCode != 200 {
		t.Errorf("after OK: %d %s", resp.StatusCode, b)
	}
}

func wrapAll(m map[Behavior]func(*testing.T, *http.Response, []byte), w func(func(*testing.T, *http.Response, []byte)) func(*testing.T, *http.Response, []byte)) map[Behavior]func(*testing.T, *http.Response, []byte) {
	out := map[Behavior]func(*testing.T, *http.Response, []byte){}
	for k, v := range m {
		out[k] = w(v)
	}
	return out
}

func wantMsg(t *testing.T, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("message %q, want %q", got, want)
	}
}

// Listing models consumes no quota: only Invalid and Suspended apply.
func TestBehaviorsOnModelLists(t *testing.T) {
	s := start(t, Options{})
	s.SetBehavior("limited", RateLimited)
	s.SetBehavior("bad", Invalid)
	list := []req{
		{method: "GET", path: "/v1beta/models", header: map[string]string{"x-goog-api-key": ""}},
		{method: "GET", path: "/v1beta/openai/models", header: map[string]string{"Authorization": ""}},
		{method: "GET", path: "/v1/models", header: map[string]string{"Authorization": ""}},
		{method: "GET", path: "/v1/models", header: map[string]string{"x-api-key": "", "anthropic-version": "2023-06-01"}},
	}
	for _, r := range list {
		for key, want := range map[string]int{"limited": 200, "bad": 0} {
			h := map[string]string{}
			for k, v := range r.header {
				h[k] = v
				if v == "" {
					h[k] = key
					if k == "Authorization" {
						h[k] = "Bearer " + key
					}
				}
			}
			resp, b := req{method: r.method, path: r.path, header: h}.do(t, s)
			if want == 200 && resp.StatusCode != 200 || want == 0 && resp.StatusCode < 400 {
				t.Errorf("%s %s key %s: %d %s", r.method, r.path, key, resp.StatusCode, b)
			}
		}
	}
}

func TestNoKey(t *testing.T) {
	s := start(t, Options{})
	resp, b := gemGenerate("").do(t, s)
	wantStatus(t, resp, b, 403)
	var g googleError
	decode(t, b, &g)
	if g.Error.Status != "PERMISSION_DENIED" || !strings.HasPrefix(g.Error.Message, "Method doesn't allow unregistered callers") || len(g.Error.Details) != 0 {
		t.Errorf("%s", b)
	}

	resp, b = compatChat("", false).do(t, s)
	wantStatus(t, resp, b, 403)
	var ga []googleError
	decode(t, b, &ga)
	if len(ga) != 1 || ga[0].Error.Code != 403 {
		t.Errorf("%s", b)
	}

	resp, b = openaiChatReq("", false, false).do(t, s)
	wantStatus(t, resp, b, 401)
	var oe openaiError
	decode(t, b, &oe)
	if oe.Error.Type != "invalid_request_error" || oe.Error.Code != nil || !strings.HasPrefix(oe.Error.Message, "You didn't provide an API key.") {
		t.Errorf("%s", b)
	}

	resp, b = anthropicReq("", false).do(t, s)
	wantStatus(t, resp, b, 401)
	var ae anthropicError
	decode(t, b, &ae)
	if ae.Error.Type != "authentication_error" || ae.Error.Message != "x-api-key header is required" {
		t.Errorf("%s", b)
	}
}

func TestGeminiCredentialMistakes(t *testing.T) {
	s := start(t, Options{})
	r := gemGenerate("k1")
	r.header["Authorization"] = "Bearer k1"
	resp, b := r.do(t, s)
	wantStatus(t, resp, b, 400)
	if !strings.Contains(string(b), "Multiple authentication credentials received. Please pass only one.") {
		t.Errorf("%s", b)
	}
	r = gemGenerate("")
	r.header["Authorization"] = "Bearer k1"
	resp, b = r.do(t, s)
	wantStatus(t, resp, b, 401)
	var g googleError
	decode(t, b, &g)
	if g.Error.Status != "UNAUTHENTICATED" || len(g.Error.Details) != 1 || g.Error.Details[0].Reason != "ACCESS_TOKEN_TYPE_UNSUPPORTED" {
		t.Errorf("%s", b)
	}
}

func TestRouting(t *testing.T) {
	s := start(t, Options{Record: true})
	cases := []struct {
		r    req
		want Provider
		code int
	}{
		{req{method: "GET", path: "/v1/models", header: map[string]string{"Authorization": "Bearer k"}}, OpenAI, 200},
		{req{method: "GET", path: "/v1/models", header: map[string]string{"x-api-key": "k", "anthropic-version": "2023-06-01"}}, Anthropic, 200},
		{req{method: "GET", path: "/v1/models", header: map[string]string{"x-goog-api-key": "k"}}, Gemini, 200},
		{req{method: "GET", path: "/v1/models?key=k"}, Gemini, 200},
		{req{path: "/v1/models/" + gemModel + ":generateContent?key=k", body: gemBody}, Gemini, 200},
		{req{path: "/v1alpha/models/" + gemModel + ":generateContent?key=k", body: gemBody}, Gemini, 200},
		{req{path: "/v1beta/openai/chat/completions", header: map[string]string{"Authorization": "Bearer k"}, body: `{"model":"m"}`}, GeminiOpenAI, 200},
		{req{path: "/v1/messages", header: map[string]string{"x-api-key": "k", "anthropic-version": "2023-06-01"}, body: `{"model":"m","max_tokens":1}`}, Anthropic, 200},
		{req{path: "/v1/foo", header: map[string]string{"Authorization": "Bearer k"}, body: `{}`}, OpenAI, 404},
		{req{method: "GET", path: "/v1/chat/completions", header: map[string]string{"Authorization": "Bearer k"}}, OpenAI, 405},
		{req{path: "/v1beta/models/" + gemModel + ":countTokens?key=k", body: gemBody}, Gemini, 404},
		{req{method: "GET", path: "/elsewhere"}, "", 404},
	}
	for i, c := range cases {
		resp, b := c.r.do(t, s)
		if resp.StatusCode != c.code {
			t.Errorf("%s %s: %d %s", c.r.method, c.r.path, resp.StatusCode, b)
		}
		recs := s.Requests()
		if len(recs) != i+1 || recs[i].Provider != c.want {
			t.Errorf("%s %s: routed to %q, want %q", c.r.method, c.r.path, recs[len(recs)-1].Provider, c.want)
		}
	}
	resp, b := req{path: "/v1/foo", header: map[string]string{"Authorization": "Bearer k"}, body: `{}`}.do(t, s)
	var e openaiError
	decode(t, b, &e)
	if e.Error.Message != "Invalid URL (POST /v1/foo)" {
		t.Errorf("%d %s", resp.StatusCode, b)
	}
}

func TestBadBodies(t *testing.T) {
	s := start(t, Options{})
	for _, r := range []req{
		gemReq("k", gemModel, "generateContent", "", "{not json"),
		{path: "/v1beta/openai/chat/completions", header: map[string]string{"Authorization": "Bearer k"}, body: "{"},
		{path: "/v1/chat/completions", header: map[string]string{"Authorization": "Bearer k"}, body: "{"},
		{path: "/v1/chat/completions", header: map[string]string{"Authorization": "Bearer k"}, body: `{"messages":[]}`},
		{path: "/v1/messages", header: map[string]string{"x-api-key": "k", "anthropic-version": "2023-06-01"}, body: "nope"},
	} {
		resp, b := r.do(t, s)
		if resp.StatusCode != 400 || !json.Valid(b) {
			t.Errorf("%s: %d %s", r.path, resp.StatusCode, b)
		}
	}
}

// readFrame reads the next frame in the background.
func readFrame(f *frameReader) <-chan string {
	ch := make(chan string, 1)
	go func() {
		fr, err := f.next()
		if err != nil {
			fr = "error: " + err.Error()
		}
		ch <- fr
	}()
	return ch
}

func TestGate(t *testing.T) {
	const n = 3
	s := start(t, Options{StreamChunks: n})
	cases := []struct {
		name  string
		r     req
		sep   string
		model string
	}{
		{"gemini", gemReq("k", gemModel, "streamGenerateContent", "alt=sse", gemBody), "\r\n\r\n", gemModel},
		{"gemini-openai", compatChat("k", true), "\n\n", gemModel},
		{"openai", openaiChatReq("k", true, false), "\n\n", oaiModel},
		{"anthropic", anthropicReq("k", true), "\n\n", claudeModel},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s.GateStreams(true)
			defer s.GateStreams(false)
			resp := c.r.send(t, s)
			f := newFrames(resp.Body, c.sep)
			// Read up to chunk 0 (opening events come with it).
			for {
				fr, err := f.next()
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(fr, "[chunk 0]") {
					break
				}
			}
			for i := 1; i < n; i++ {
				ch := readFrame(f)
				select {
				case fr := <-ch:
					t.Fatalf("chunk %d readable before Release: %q", i, fr)
				case <-time.After(100 * time.Millisecond):
				}
				s.Release()
				select {
				case fr := <-ch:
					if !strings.Contains(fr, "[chunk "+strconv.Itoa(i)+"]") {
						t.Fatalf("after release %d got %q", i, fr)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("chunk %d not sent after Release", i)
				}
			}
			// The closing events wait for the last release.
			ch := readFrame(f)
			select {
			case fr := <-ch:
				t.Fatalf("stream went on before the last Release: %q", fr)
			case <-time.After(50 * time.Millisecond):
			}
			s.Release()
			select {
			case fr := <-ch:
				if strings.HasPrefix(fr, "error") && fr != "error: EOF" {
					t.Fatal(fr)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("stream did not end")
			}
			if _, err := io.ReadAll(f.br); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestGateReleaseKeptAndOff(t *testing.T) {
	s := start(t, Options{StreamChunks: 2})
	s.Release() // gate off: ignored
	s.GateStreams(true)
	s.Release()
	s.Release() // both kept: the stream need not wait
	resp, b := openaiChatReq("k", true, false).do(t, s)
	if resp.StatusCode != 200 || !strings.HasSuffix(string(b), "data: [DONE]\n\n") {
		t.Fatalf("%s", b)
	}
	// Turning the gate off frees a waiting stream.
	resp = openaiChatReq("k", true, false).send(t, s)
	f := newFrames(resp.Body, "\n\n")
	f.next()
	f.next() // role chunk, chunk 0
	time.AfterFunc(50*time.Millisecond, func() { s.GateStreams(false) })
	rest := f.all(t)
	if len(rest) != 3 || rest[2] != "data: [DONE]\n\n" {
		t.Errorf("%q", rest)
	}
}

func TestCloseEndsGatedStreams(t *testing.T) {
	s, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.GateStreams(true)
	resp := anthropicReq("k", true).send(t, s)
	f := newFrames(resp.Body, "\n\n")
	for {
		fr, err := f.next()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(fr, "[chunk 0]") {
			break
		}
	}
	t0 := time.Now()
	s.Close()
	if d := time.Since(t0); d > 900*time.Millisecond {
		t.Errorf("Close took %v", d)
	}
	if _, err := io.ReadAll(f.br); err == nil {
		// A clean EOF is fine too; the stream must just end.
		t.Log("stream ended cleanly")
	}
	if _, err := http.Get(s.URL + "/v1/models"); err == nil {
		t.Error("server still answers after Close")
	}
}

func TestMidStreamError(t *testing.T) {
	s := start(t, Options{StreamChunks: 3})
	s.SetBehavior("k", MidStreamError)

	resp := gemReq("k", gemModel, "streamGenerateContent", "alt=sse", gemBody).send(t, s)
	frames := newFrames(resp.Body, "\r\n\r\n").all(t)
	if resp.StatusCode != 200 || len(frames) != 2 || !strings.Contains(frames[0], "[chunk 0]") {
		t.Fatalf("%d %q", resp.StatusCode, frames)
	}
	var g googleError
	decode(t, []byte(dataOf(t, frames[1], "\r\n\r\n")), &g)
	if g.Error.Code != 503 || g.Error.Status != "UNAVAILABLE" {
		t.Errorf("%q", frames[1])
	}

	resp = openaiChatReq("k", true, false).send(t, s)
	frames = newFrames(resp.Body, "\n\n").all(t)
	if resp.StatusCode != 200 || len(frames) != 3 || !strings.Contains(frames[1], "[chunk 0]") {
		t.Fatalf("%d %q", resp.StatusCode, frames)
	}
	var oe openaiError
	decode(t, []byte(dataOf(t, frames[2], "\n\n")), &oe)
	if oe.Error.Type != "server_error" {
		t.Errorf("%q", frames[2])
	}

	resp = anthropicReq("k", true).send(t, s)
	frames = newFrames(resp.Body, "\n\n").all(t)
	last := frames[len(frames)-1]
	ev, d := anthropicFrame(t, last)
	var ae anthropicError
	decode(t, []byte(d), &ae)
	if resp.StatusCode != 200 || ev != "error" || ae.Error.Type != "overloaded_error" || strings.Contains(strings.Join(frames, ""), "message_stop") {
		t.Errorf("%d %q", resp.StatusCode, frames)
	}

	// Not streaming: the Overloaded answer.
	r, b := openaiChatReq("k", false, false).do(t, s)
	wantStatus(t, r, b, 503)
}

func TestRecord(t *testing.T) {
	s := start(t, Options{Record: true})
	r := gemReq("", gemModel, "generateContent", "alt=json&key=the-key", gemBody)
	r.header["X-Custom"] = "v"
	r.do(t, s)
	anthropicReq("ant-key", false).do(t, s)
	recs := s.Requests()
	if len(recs) != 2 {
		t.Fatalf("%d records", len(recs))
	}
	g := recs[0]
	if g.Provider != Gemini || g.Method != "POST" || g.Path != "/v1beta/models/"+gemModel+":generateContent" ||
		g.RawQuery != "alt=json&key=the-key" || g.Header.Get("X-Custom") != "v" || string(g.Body) != gemBody || g.Key != "the-key" {
		t.Errorf("%+v", g)
	}
	if recs[1].Provider != Anthropic || recs[1].Key != "ant-key" {
		t.Errorf("%+v", recs[1])
	}
	// Records are copies.
	recs[0].Header.Set("X-Custom", "changed")
	recs[0].Body[0] = 'X'
	if again := s.Requests(); again[0].Header.Get("X-Custom") != "v" || again[0].Body[0] != '{' {
		t.Error("Requests shares its storage")
	}
	s.Reset()
	if n := len(s.Requests()); n != 0 {
		t.Errorf("%d records after Reset", n)
	}
	if s.Count() != 2 {
		t.Errorf("Count = %d", s.Count())
	}

	off := start(t, Options{})
	gemGenerate("k").do(t, off)
	if n := len(off.Requests()); n != 0 || off.Count() != 1 {
		t.Errorf("Record off: %d records, count %d", n, off.Count())
	}
}

func TestResetClearsBehaviorsAndGate(t *testing.T) {
	s := start(t, Options{StreamChunks: 2})
	s.SetBehavior("k", Invalid)
	s.GateStreams(true)
	s.Reset()
	resp, b := openaiChatReq("k", true, false).do(t, s)
	if resp.StatusCode != 200 || !strings.HasSuffix(string(b), "data: [DONE]\n\n") {
		t.Errorf("%d %s", resp.StatusCode, b)
	}
}

func TestDelays(t *testing.T) {
	s := start(t, Options{Latency: 60 * time.Millisecond, ChunkInterval: 30 * time.Millisecond, StreamChunks: 3})
	t0 := time.Now()
	resp, b := gemGenerate("k").do(t, s)
	wantStatus(t, resp, b, 200)
	if d := time.Since(t0); d < 60*time.Millisecond {
		t.Errorf("answer after %v", d)
	}
	t0 = time.Now()
	openaiChatReq("k", true, false).do(t, s)
	if d := time.Since(t0); d < 60*time.Millisecond+3*30*time.Millisecond {
		t.Errorf("stream took %v", d)
	}
}

func TestConcurrent(t *testing.T) {
	s := start(t, Options{StreamChunks: 2, Record: true})
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := "key-" + strconv.Itoa(g%4)
			for i := range 20 {
				if i%5 == 0 {
					s.SetBehavior(key, Behavior(i%3)) // OK, RateLimited, DailyQuota
				}
				var r req
				switch i % 4 {
				case 0:
					r = gemGenerate(key)
				case 1:
					r = openaiChatReq(key, true, true)
				case 2:
					r = anthropicReq(key, false)
				default:
					r = compatChat(key, true)
				}
				resp, b := r.do(t, s)
				if resp.StatusCode != 200 && resp.StatusCode != 429 && resp.StatusCode != 400 || !json.Valid(b) && resp.StatusCode != 200 {
					errs <- errors.New(resp.Status + " " + string(b))
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(s.Requests()); n != 16*20 {
		t.Errorf("%d records", n)
	}
}

func TestUntilPacificMidnight(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for _, c := range []struct {
		now  string
		want time.Duration
	}{
		{"2026-01-15T07:59:00Z", time.Minute},    // PST: midnight is 08:00 UTC
		{"2026-07-15T06:59:00Z", time.Minute},    // PDT: 07:00 UTC
		{"2026-07-15T07:00:00Z", 24 * time.Hour}, // exactly midnight
		{"2026-03-08T07:00:00Z", time.Hour},      // 23:00 PST before the switch to PDT
		{"2026-03-08T08:00:00Z", 23 * time.Hour}, // midnight starting a 23-hour day
		{"2026-11-01T07:00:00Z", 25 * time.Hour}, // midnight starting a 25-hour day
		{"2026-07-24T20:09:17Z", 10*time.Hour + 50*time.Minute + 43*time.Second},
	} {
		if got := untilPacificMidnight(at(c.now)); got != c.want {
			t.Errorf("%s: %v, want %v", c.now, got, c.want)
		}
	}
	loc, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	for now := at("2025-01-01T00:00:00Z"); now.Year() < 2028; now = now.Add(97 * time.Minute) {
		l := now.In(loc)
		want := time.Date(l.Year(), l.Month(), l.Day()+1, 0, 0, 0, 0, loc).Sub(now)
		if got := untilPacificMidnight(now); got != want {
			t.Fatalf("%s: %v, want %v", now, got, want)
		}
	}
}

func TestMaskKey(t *testing.T) {
	for _, k := range []string{"short", "sixteen-chars-ok", secretKey, "sk-TEST-not-a-real-key-xxxx-xxxx-xxxx-0000"} {
		m := maskKey(k)
		if strings.Contains(m, k) || len(k) >= 16 && len(strings.ReplaceAll(m, "***...", "")) > len(k)/2 {
			t.Errorf("maskKey(%q) = %q shows too much", k, m)
		}
	}
	if got := maskKey("sk-TEST-not-a-real-key-xxxx-xxxx-xxxx-0000"); got != "sk-TEST-***...0000" {
		t.Errorf("got %q", got)
	}
}

// Every error template renders to valid JSON.
func TestErrorTemplatesValid(t *testing.T) {
	v := &vals{model: `m"x`, masked: "a***...b", reqID: "r", delay: "1h0m0s", delaySecs: 3600, date: "2026-01-01", method: "GET", path: "/v1/x"}
	for f := range nFailures {
		for name, t0 := range map[string]*tmpl{"gemini": geminiErrs[f], "gemini-array": geminiArrayErrs[f], "openai": openaiErrs[f], "anthropic": anthropicErrs[f]} {
			if t0 == nil {
				continue
			}
			if b := t0.render(nil, v); !json.Valid(b) {
				t.Errorf("%s failure %d: %s", name, f, b)
			}
		}
	}
}

func BenchmarkOpenAIChat(b *testing.B) {
	benchmark(b, openaiChatReq("k", false, false))
}

func BenchmarkOpenAIStream(b *testing.B) {
	benchmark(b, openaiChatReq("k", true, true))
}

func BenchmarkGeminiGenerate(b *testing.B) {
	benchmark(b, gemGenerate("k"))
}

func benchmark(b *testing.B, r req) {
	s := start(b, Options{})
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			hr, _ := http.NewRequest(http.MethodPost, s.URL+r.path, strings.NewReader(r.body))
			for k, v := range r.header {
				hr.Header.Set(k, v)
			}
			resp, err := client.Do(hr)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkHandler measures the server side alone, without sockets.
func BenchmarkHandler(b *testing.B) {
	s := start(b, Options{})
	for _, c := range []struct {
		name string
		r    req
	}{
		{"openai", openaiChatReq("k", false, false)},
		{"openai-stream", openaiChatReq("k", true, true)},
		{"gemini", gemGenerate("k")},
		{"gemini-stream", gemReq("k", gemModel, "streamGenerateContent", "alt=sse", gemBody)},
		{"anthropic", anthropicReq("k", false)},
		{"anthropic-stream", anthropicReq("k", true)},
	} {
		b.Run(c.name, func(b *testing.B) {
			h := handler{s}
			b.ReportAllocs()
			for b.Loop() {
				hr := httptest.NewRequest(http.MethodPost, c.r.path, strings.NewReader(c.r.body))
				for k, v := range c.r.header {
					hr.Header.Set(k, v)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, hr)
				if w.Code != 200 {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
