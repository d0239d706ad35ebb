package fakeupstream

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/keypool/keypool/worker-proxy/internal/jsonstr"
)

// reqBody holds the request fields the fake looks at (OpenAI-style and
// Anthropic bodies); other fields are ignored.
type reqBody struct {
	Model         string `json:"model"`
	Stream        bool   `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens      *int64          `json:"max_tokens"`
	Input          json.RawMessage `json:"input"`
	Dimensions     int             `json:"dimensions"`
	EncodingFormat string          `json:"encoding_format"`
}

func (r *reqBody) includeUsage() bool {
	return r.StreamOptions != nil && r.StreamOptions.IncludeUsage
}

// OpenAI pretty-prints error bodies with four spaces and completions with
// two.
var openaiErrSrc = [nFailures]struct {
	status int
	src    string
}{
	fRateLimited: {429, `{"error":{"message":"Rate limit reached for {{model}} in organization org-fakeupstream on requests per min (RPM): Limit 60, Used 60, Requested 1. Please try again in 20s. Visit https://platform.openai.com/account/rate-limits to learn more.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`},
	fDailyQuota:  {429, `{"error":{"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`},
	fInvalid:     {401, `{"error":{"message":"Incorrect API key provided: {{masked}}. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`},
	fSuspended:   {401, `{"error":{"message":"This key is associated with a deactivated account. If you feel this is an error, contact us through our help center at help.openai.com.","type":"invalid_request_error","param":null,"code":"account_deactivated"}}`},
	fOverloaded:  {503, `{"error":{"message":"That model is currently overloaded with other requests. You can retry your request, or contact us through our help center at help.openai.com if the error persists. (Please include the request ID {{reqid}} in your message.)","type":"server_error","param":null,"code":null}}`},
	fInternal:    {500, `{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}`},
	fNoKey:       {401, `{"error":{"message":"You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":null}}`},
	fBadJSON:     {400, `{"error":{"message":"We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please visit https://platform.openai.com/docs.)","type":"invalid_request_error","param":null,"code":null}}`},
	fNoModel:     {400, `{"error":{"message":"you must provide a model parameter","type":"invalid_request_error","param":null,"code":null}}`},
	fNotFound:    {404, `{"error":{"message":"Invalid URL ({{method}} {{path}})","type":"invalid_request_error","param":null,"code":null}}`},
	fBadMethod:   {405, `{"error":{"message":"Invalid method for URL ({{method}} {{path}})","type":"invalid_request_error","param":null,"code":null}}`},
}

var openaiErrs [nFailures]*tmpl

func init() {
	for f, e := range openaiErrSrc {
		if e.src != "" {
			openaiErrs[f] = compile(e.src, "    ")
			openaiErrs[f].parts[len(openaiErrs[f].parts)-1] += "\n"
		}
	}
}

var (
	openaiChat = compile(`{"id":"{{id}}","object":"chat.completion","created":"{{#created}}","model":"{{model}}","choices":[{"index":0,"message":{"role":"assistant","content":"{{text}}","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],`+
		`"usage":{"prompt_tokens":"{{#prompt}}","completion_tokens":"{{#completion}}","total_tokens":"{{#total}}","prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},`+
		`"service_tier":"default","system_fingerprint":"fp_fakeupstream"}`, "  ")
	openaiMidStream = compile(`{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}`, "")
	openaiModel     = compile(`{"id":"{{model}}","object":"model","created":1686935002,"owned_by":"system"}`, "  ")
	openaiModels    = compile(`{"object":"list","data":[`+
		`{"id":"gpt-4o-mini","object":"model","created":1721172741,"owned_by":"system"},`+
		`{"id":"gpt-4.1","object":"model","created":1744316542,"owned_by":"system"},`+
		`{"id":"text-embedding-3-small","object":"model","created":1705948997,"owned_by":"system"}]}`, "  ").bytes()
)

// chunkSet is the SSE payloads of a chat.completion.chunk stream.
type chunkSet struct {
	role    *tmpl // sent before chunk 0; nil for none
	content *tmpl
	finish  *tmpl
	usage   *tmpl
	mid     *tmpl // the in-stream error of MidStreamError
}

func openaiChunkSrc(choices string, usageNull bool) string {
	s := `{"id":"{{id}}","object":"chat.completion.chunk","created":"{{#created}}","model":"{{model}}","service_tier":"default","system_fingerprint":"fp_fakeupstream","choices":` + choices
	if usageNull {
		s += `,"usage":null`
	}
	return s + "}"
}

func newOpenAIChunks(usageNull bool) *chunkSet {
	return &chunkSet{
		role:    compile(openaiChunkSrc(`[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]`, usageNull), ""),
		content: compile(openaiChunkSrc(`[{"index":0,"delta":{"content":"{{text}}"},"logprobs":null,"finish_reason":null}]`, usageNull), ""),
		finish:  compile(openaiChunkSrc(`[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]`, usageNull), ""),
		usage: compile(openaiChunkSrc(`[],"usage":{"prompt_tokens":"{{#prompt}}","completion_tokens":"{{#completion}}","total_tokens":"{{#total}}",`+
			`"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`, false), ""),
		mid: openaiMidStream,
	}
}

var (
	// With stream_options.include_usage every chunk carries "usage":null.
	openaiChunks, openaiChunksUsage = newOpenAIChunks(false), newOpenAIChunks(true)

	geminiCompatChunks = &chunkSet{content: geminiCompatChunk, finish: geminiCompatFinish, usage: geminiCompatUsage, mid: geminiMidStream}
)

var (
	ctJSON = []string{"application/json"}
	ctSSE  = []string{"text/event-stream; charset=utf-8"}

	// Sample values of OpenAI's rate-limits guide.
	openaiHeaders = hdrs(
		"openai-organization", "user-fakeupstream",
		"openai-processing-ms", "1",
		"openai-version", "2020-10-01",
		"x-ratelimit-limit-requests", "60",
		"x-ratelimit-limit-tokens", "150000",
		"x-ratelimit-remaining-requests", "59",
		"x-ratelimit-remaining-tokens", "149984",
		"x-ratelimit-reset-requests", "1s",
		"x-ratelimit-reset-tokens", "6m0s",
	)
	openaiRateLimitedHeaders = hdrs(
		"openai-organization", "user-fakeupstream",
		"openai-processing-ms", "1",
		"openai-version", "2020-10-01",
		"x-ratelimit-limit-requests", "60",
		"x-ratelimit-limit-tokens", "150000",
		"x-ratelimit-remaining-requests", "0",
		"x-ratelimit-remaining-tokens", "149984",
		"x-ratelimit-reset-requests", "20s",
		"x-ratelimit-reset-tokens", "6m0s",
	)
	// Errors other than a rate limit carry no rate-limit headers.
	openaiErrHeaders = hdrs(
		"openai-processing-ms", "1",
		"openai-version", "2020-10-01",
	)
)

func (c *call) openaiFail(f failure) {
	h := c.w.Header()
	switch f {
	case fRateLimited:
		setHeaders(h, openaiRateLimitedHeaders)
	default:
		setHeaders(h, openaiErrHeaders)
	}
	if c.v.model == "" {
		c.v.model = "gpt-4o-mini"
	}
	c.v.masked = maskKey(c.key)
	c.v.method, c.v.path = c.r.Method, c.r.URL.Path
	c.out = openaiErrs[f].render(c.out[:0], &c.v)
	c.send(openaiErrSrc[f].status, ctJSON, c.out)
}

func (c *call) serveOpenAI() {
	c.v.reqID = c.s.ids.hexID(32)
	c.w.Header()["X-Request-Id"] = []string{"req_" + c.v.reqID}
	switch {
	case c.ep == epNotFound:
		c.openaiFail(fNotFound)
		return
	case c.r.Method != c.ep.method():
		c.openaiFail(fBadMethod)
		return
	}
	if f := c.authFailure(); f != fNone {
		c.openaiFail(f)
		return
	}
	switch c.ep {
	case epModels:
		setHeaders(c.w.Header(), openaiHeaders)
		c.send(http.StatusOK, ctJSON, openaiModels)
		return
	case epModel:
		setHeaders(c.w.Header(), openaiHeaders)
		c.out = openaiModel.render(c.out[:0], &c.v)
		c.send(http.StatusOK, ctJSON, c.out)
		return
	}
	var req reqBody
	if json.Unmarshal(c.body, &req) != nil {
		c.openaiFail(fBadJSON)
		return
	}
	if req.Model == "" {
		c.openaiFail(fNoModel)
		return
	}
	c.v.model = req.Model
	streaming := c.ep == epChat && req.Stream
	f, mid := c.useFailure(streaming)
	if f != fNone {
		c.openaiFail(f)
		return
	}
	setHeaders(c.w.Header(), openaiHeaders)
	c.v.prompt = tokens(len(c.body))
	if c.ep == epEmbeddings {
		c.embeddings(&req, ctJSON)
		return
	}
	c.v.id = c.s.ids.id("chatcmpl-", 29)
	c.v.created = time.Now().Unix()
	if req.Stream {
		cs := openaiChunks
		if req.includeUsage() {
			cs = openaiChunksUsage
		}
		c.chatStream(mid, req.includeUsage(), cs, ctSSE)
		return
	}
	c.v.text = AnswerText(c.v.model)
	c.v.completion = tokens(len(c.v.text))
	c.out = openaiChat.render(c.out[:0], &c.v)
	c.out = append(c.out, '\n')
	c.send(http.StatusOK, ctJSON, c.out)
}

// chatStream streams a chat completion as `data: {chunk}\n\n` events ending
// with `data: [DONE]\n\n` (used by OpenAI and Gemini's OpenAI-compatible
// endpoint).
func (c *call) chatStream(mid, includeUsage bool, cs *chunkSet, ct []string) {
	st := c.startStream(ct)
	n := c.s.opts.StreamChunks
	for i := range n {
		c.out = c.out[:0]
		if i == 0 && cs.role != nil {
			c.out = sseData(c.out, cs.role, &c.v)
		}
		c.v.text = ChunkText(c.v.model, i)
		c.v.completion += tokens(len(c.v.text))
		c.out = sseData(c.out, cs.content, &c.v)
		if !st.emit(c.out) || !st.pause() {
			return
		}
		if mid {
			st.emit(sseData(c.out[:0], cs.mid, &c.v))
			return
		}
	}
	c.out = sseData(c.out[:0], cs.finish, &c.v)
	if includeUsage {
		c.out = sseData(c.out, cs.usage, &c.v)
	}
	c.out = append(c.out, "data: [DONE]\n\n"...)
	st.emit(c.out)
}

func sseData(dst []byte, t *tmpl, v *vals) []byte {
	dst = append(dst, "data: "...)
	dst = t.render(dst, v)
	return append(dst, "\n\n"...)
}

// embeddingDims is the length of the fake vectors unless the request asks
// for "dimensions".
const embeddingDims = 8

var defaultEmbedding, defaultEmbedding64 = embeddingJSON(embeddingDims)

// embeddingJSON returns a deterministic vector as a JSON array and as the
// base64 of its little-endian float32s (encoding_format "base64").
func embeddingJSON(dims int) (string, string) {
	b := []byte{'['}
	raw := make([]byte, 4*dims)
	for i := range dims {
		f := float32((i*37)%201-100) / 1000
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, float64(f), 'g', -1, 32)
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
	}
	b = append(b, ']')
	return string(b), `"` + base64.StdEncoding.EncodeToString(raw) + `"`
}

// embeddings answers an OpenAI-style embeddings request: one vector per
// input string.
func (c *call) embeddings(req *reqBody, ct []string) {
	n := countInputs(req.Input)
	vec, vec64 := defaultEmbedding, defaultEmbedding64
	if req.Dimensions > 0 && req.Dimensions != embeddingDims && req.Dimensions <= 4096 {
		vec, vec64 = embeddingJSON(req.Dimensions)
	}
	if req.EncodingFormat == "base64" {
		vec = vec64
	}
	b := append(c.out[:0], `{"object":"list","data":[`...)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"object":"embedding","index":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"embedding":`...)
		b = append(b, vec...)
		b = append(b, '}')
	}
	b = append(b, `],"model":"`...)
	b = jsonstr.AppendEscaped(b, c.v.model)
	b = append(b, `","usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, c.v.prompt, 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, c.v.prompt, 10)
	b = append(b, "}}\n"...)
	c.out = b
	c.send(http.StatusOK, ct, b)
}

// countInputs counts the inputs of an embeddings request: a string or a
// token array is one, an array of strings or of token arrays is one each.
func countInputs(raw json.RawMessage) int {
	if len(raw) == 0 || raw[0] != '[' {
		return 1
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil || len(items) == 0 {
		return 1
	}
	if c := items[0][0]; c == '-' || c >= '0' && c <= '9' {
		return 1
	}
	return len(items)
}
