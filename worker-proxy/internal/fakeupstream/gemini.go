package fakeupstream

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// Gemini bodies. Google pretty-prints its JSON with two spaces.
const geminiHelp = `{"@type":"type.googleapis.com/google.rpc.Help","links":[{"description":"Learn more about Gemini API quotas","url":"https://ai.google.dev/gemini-api/docs/rate-limits"}]}`

var geminiErrSrc = [nFailures]struct {
	status int
	src    string
}{
	// RoocodeInc/Roo-Code#3883, with the request's model.
	fRateLimited: {429, `{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.","status":"RESOURCE_EXHAUSTED","details":[` +
		`{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_input_token_count","quotaId":"GenerateContentInputTokensPerModelPerMinute-FreeTier","quotaDimensions":{"location":"global","model":"{{model}}"},"quotaValue":"250000"}]},` +
		geminiHelp + `,{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"26s"}]}}`},
	// The 2026 paid-tier daily quota (message format of continue#11693).
	fDailyQuota: {429, `{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, head to: https://ai.dev/rate-limit. \n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_requests_per_model_per_day, limit: 250, model: {{model}}\nPlease retry in {{delay}}.","status":"RESOURCE_EXHAUSTED","details":[` +
		geminiHelp + `,{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_requests_per_model_per_day","quotaId":"GenerateRequestsPerDayPerProjectPerModel","quotaDimensions":{"location":"global","model":"{{model}}"},"quotaValue":"250"}]},` +
		`{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"{{delaysecs}}s"}]}}`},
	fInvalid: {400, `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[` +
		`{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}},` +
		`{"@type":"type.googleapis.com/google.rpc.LocalizedMessage","locale":"en-US","message":"API key not valid. Please pass a valid API key."}]}}`},
	// The key fragment is the fixed AIzaSy prefix every Google key shares.
	fSuspended: {403, `{"error":{"code":403,"message":"Permission denied: Consumer 'api_key:AIzaSy...' has been suspended.","status":"PERMISSION_DENIED","details":[` +
		`{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"CONSUMER_SUSPENDED","domain":"googleapis.com","metadata":{"consumer":"projects/123456789012","service":"generativelanguage.googleapis.com","containerInfo":"api_key:AIzaSy..."}},` +
		`{"@type":"type.googleapis.com/google.rpc.LocalizedMessage","locale":"en-US","message":"Permission denied: Consumer 'api_key:AIzaSy...' has been suspended."}]}}`},
	fOverloaded: {503, `{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}`},
	fInternal:   {500, `{"error":{"code":500,"message":"An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting","status":"INTERNAL"}}`},
	fNoKey:      {403, `{"error":{"code":403,"message":"Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.","status":"PERMISSION_DENIED"}}`},
	fBearerOnly: {401, `{"error":{"code":401,"message":"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.","status":"UNAUTHENTICATED","details":[` +
		`{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"ACCESS_TOKEN_TYPE_UNSUPPORTED","metadata":{"service":"generativelanguage.googleapis.com"}}]}}`},
	fMultipleCreds: {400, `{"error":{"code":400,"message":"Multiple authentication credentials received. Please pass only one.","status":"INVALID_ARGUMENT"}}`},
	fBadJSON:       {400, `{"error":{"code":400,"message":"Invalid JSON payload received. Unexpected token.","status":"INVALID_ARGUMENT"}}`},
	fNoModel:       {400, `{"error":{"code":400,"message":"model is not specified","status":"INVALID_ARGUMENT"}}`},
	fNotFound:      {404, `{"error":{"code":404,"message":"Method not found.","status":"NOT_FOUND"}}`},
	fBadMethod:     {404, `{"error":{"code":404,"message":"Method not found.","status":"NOT_FOUND"}}`},
}

// geminiErrs are the native bodies, geminiArrayErrs those of the
// OpenAI-compatible endpoint, which wraps the same object in a JSON array.
var geminiErrs, geminiArrayErrs [nFailures]*tmpl

// geminiMidStream is the error event of MidStreamError (compact: it is one
// SSE data line).
var geminiMidStream = compile(`{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}`, "")

func init() {
	for f, e := range geminiErrSrc {
		if e.src == "" {
			continue
		}
		geminiErrs[f] = compile(e.src, "  ")
		t := compile(e.src, "  ")
		t.parts[0] = "[" + t.parts[0]
		t.parts[len(t.parts)-1] += "\n]\n"
		geminiErrs[f].parts[len(geminiErrs[f].parts)-1] += "\n"
		geminiArrayErrs[f] = t
	}
}

var (
	geminiGenerate = compile(`{"candidates":[{"content":{"parts":[{"text":"{{text}}"}],"role":"model"},"finishReason":"STOP","index":0}],`+
		`"usageMetadata":{"promptTokenCount":"{{#prompt}}","candidatesTokenCount":"{{#completion}}","totalTokenCount":"{{#total}}","promptTokensDetails":[{"modality":"TEXT","tokenCount":"{{#prompt}}"}]},`+
		`"modelVersion":"{{model}}","responseId":"{{id}}"}`, "  ")
	geminiChunk = compile(`{"candidates":[{"content":{"parts":[{"text":"{{text}}"}],"role":"model"},"index":0}],`+
		`"usageMetadata":{"promptTokenCount":"{{#prompt}}","candidatesTokenCount":"{{#completion}}","totalTokenCount":"{{#total}}"},"modelVersion":"{{model}}","responseId":"{{id}}"}`, "")
	geminiLastChunk = compile(`{"candidates":[{"content":{"parts":[{"text":"{{text}}"}],"role":"model"},"finishReason":"STOP","index":0}],`+
		`"usageMetadata":{"promptTokenCount":"{{#prompt}}","candidatesTokenCount":"{{#completion}}","totalTokenCount":"{{#total}}","promptTokensDetails":[{"modality":"TEXT","tokenCount":"{{#prompt}}"}]},"modelVersion":"{{model}}","responseId":"{{id}}"}`, "")
	geminiModel = compile(`{"name":"models/{{model}}","version":"001","displayName":"{{model}}","description":"A model served by the fake upstream.",`+
		`"inputTokenLimit":1048576,"outputTokenLimit":65536,"supportedGenerationMethods":["generateContent","countTokens"],"temperature":1,"topP":0.95,"topK":64,"maxTemperature":2,"thinking":true}`, "  ")
	geminiModels = compile(`{"models":[`+
		`{"name":"models/gemini-2.5-flash","version":"001","displayName":"Gemini 2.5 Flash","description":"Stable version of Gemini 2.5 Flash","inputTokenLimit":1048576,"outputTokenLimit":65536,"supportedGenerationMethods":["generateContent","countTokens","createCachedContent","batchGenerateContent"],"temperature":1,"topP":0.95,"topK":64,"maxTemperature":2,"thinking":true},`+
		`{"name":"models/gemini-2.5-pro","version":"2.5","displayName":"Gemini 2.5 Pro","description":"Stable release of Gemini 2.5 Pro","inputTokenLimit":1048576,"outputTokenLimit":65536,"supportedGenerationMethods":["generateContent","countTokens","createCachedContent","batchGenerateContent"],"temperature":1,"topP":0.95,"topK":64,"maxTemperature":2,"thinking":true},`+
		`{"name":"models/gemini-embedding-001","version":"001","displayName":"Gemini Embedding 001","description":"Obtain a distributed representation of a text.","inputTokenLimit":2048,"outputTokenLimit":1,"supportedGenerationMethods":["embedContent","countTextTokens","countTokens","asyncBatchEmbedContent"]}`+
		`]}`, "  ").bytes()

	// The OpenAI-compatible endpoint marshals its objects with sorted keys.
	geminiCompatChat = compile(`{"choices":[{"finish_reason":"stop","index":0,"message":{"content":"{{text}}","role":"assistant"}}],"created":"{{#created}}","id":"{{id}}","model":"{{model}}","object":"chat.completion",`+
		`"usage":{"completion_tokens":"{{#completion}}","prompt_tokens":"{{#prompt}}","total_tokens":"{{#total}}"}}`, "")
	geminiCompatChunk  = compile(`{"choices":[{"delta":{"content":"{{text}}","role":"assistant"},"index":0}],"created":"{{#created}}","id":"{{id}}","model":"{{model}}","object":"chat.completion.chunk"}`, "")
	geminiCompatFinish = compile(`{"choices":[{"delta":{},"finish_reason":"stop","index":0}],"created":"{{#created}}","id":"{{id}}","model":"{{model}}","object":"chat.completion.chunk"}`, "")
	geminiCompatUsage  = compile(`{"choices":[],"created":"{{#created}}","id":"{{id}}","model":"{{model}}","object":"chat.completion.chunk",`+
		`"usage":{"completion_tokens":"{{#completion}}","prompt_tokens":"{{#prompt}}","total_tokens":"{{#total}}"}}`, "")
	geminiCompatModel  = compile(`{"id":"models/{{model}}","object":"model","owned_by":"google","display_name":"{{model}}"}`, "")
	geminiCompatModels = compile(`{"object":"list","data":[`+
		`{"id":"models/gemini-2.5-flash","object":"model","owned_by":"google","display_name":"Gemini 2.5 Flash"},`+
		`{"id":"models/gemini-2.5-pro","object":"model","owned_by":"google","display_name":"Gemini 2.5 Pro"},`+
		`{"id":"models/gemini-embedding-001","object":"model","owned_by":"google","display_name":"Gemini Embedding 001"}]}`, "").bytes()
)

var (
	ctGoogleJSON = []string{"application/json; charset=UTF-8"}
	ctGoogleSSE  = []string{"text/event-stream"}
)

func (c *call) geminiFail(f failure) {
	e := geminiErrSrc[f]
	t := geminiErrs[f]
	if c.p == GeminiOpenAI {
		t = geminiArrayErrs[f]
	}
	if c.v.model == "" {
		c.v.model = "gemini-2.5-flash"
	}
	if f == fDailyQuota {
		d := untilPacificMidnight(time.Now())
		c.v.delay, c.v.delaySecs = d.String(), int64(d/time.Second)
	}
	c.out = t.render(c.out[:0], &c.v)
	c.send(e.status, ctGoogleJSON, c.out)
}

func (c *call) serveGemini() {
	compat := c.p == GeminiOpenAI
	switch {
	case c.ep == epNotFound:
		c.geminiFail(fNotFound)
		return
	case c.r.Method != c.ep.method():
		c.geminiFail(fBadMethod)
		return
	}
	if f := c.authFailure(); f != fNone {
		c.geminiFail(f)
		return
	}
	switch c.ep {
	case epModels:
		if compat {
			c.send(http.StatusOK, ctGoogleJSON, geminiCompatModels)
		} else {
			c.send(http.StatusOK, ctGoogleJSON, geminiModels)
		}
		return
	case epModel:
		t := geminiModel
		if compat {
			t = geminiCompatModel
		}
		c.v.model = strings.TrimPrefix(c.v.model, "models/")
		c.out = t.render(c.out[:0], &c.v)
		c.send(http.StatusOK, ctGoogleJSON, c.out)
		return
	}
	var req reqBody
	if compat {
		if json.Unmarshal(c.body, &req) != nil {
			c.geminiFail(fBadJSON)
			return
		}
		if req.Model == "" {
			c.geminiFail(fNoModel)
			return
		}
		c.v.model = req.Model
	} else if !json.Valid(c.body) {
		c.geminiFail(fBadJSON)
		return
	}
	streaming := c.ep == epStream || c.ep == epChat && req.Stream
	f, mid := c.useFailure(streaming)
	if f != fNone {
		c.geminiFail(f)
		return
	}
	c.v.prompt = tokens(len(c.body))
	switch c.ep {
	case epGenerate:
		c.v.id = c.s.ids.id("", 22)
		c.v.text = AnswerText(c.v.model)
		c.v.completion = tokens(len(c.v.text))
		c.out = geminiGenerate.render(c.out[:0], &c.v)
		c.out = append(c.out, '\n')
		c.send(http.StatusOK, ctGoogleJSON, c.out)
	case epStream:
		c.v.id = c.s.ids.id("", 22)
		c.geminiStream(mid, strings.Contains(c.r.URL.RawQuery, "alt=") && c.r.URL.Query().Get("alt") == "sse")
	case epChat:
		c.v.id = c.s.ids.id("", 22)
		c.v.created = time.Now().Unix()
		if req.Stream {
			c.chatStream(mid, req.includeUsage(), geminiCompatChunks, ctGoogleSSE)
			return
		}
		c.v.text = AnswerText(c.v.model)
		c.v.completion = tokens(len(c.v.text))
		c.out = geminiCompatChat.render(c.out[:0], &c.v)
		c.send(http.StatusOK, ctGoogleJSON, c.out)
	case epEmbeddings:
		c.embeddings(&req, ctGoogleJSON)
	}
}

// geminiStream answers streamGenerateContent: SSE `data: {…}\r\n\r\n`
// events with ?alt=sse, else one JSON array streamed element by element.
func (c *call) geminiStream(mid, sse bool) {
	ct := ctGoogleJSON
	if sse {
		ct = ctGoogleSSE
	}
	st := c.startStream(ct)
	n := c.s.opts.StreamChunks
	for i := range n {
		c.out = c.out[:0]
		switch {
		case sse:
			c.out = append(c.out, "data: "...)
		case i == 0:
			c.out = append(c.out, '[')
		default:
			c.out = append(c.out, ",\r\n"...)
		}
		c.v.text = ChunkText(c.v.model, i)
		c.v.completion += tokens(len(c.v.text))
		t := geminiChunk
		if i == n-1 && !mid {
			t = geminiLastChunk
		}
		c.out = t.render(c.out, &c.v)
		if sse {
			c.out = append(c.out, "\r\n\r\n"...)
		}
		if !st.emit(c.out) || !st.pause() {
			return
		}
		if mid {
			c.out = c.out[:0]
			if sse {
				c.out = append(c.out, "data: "...)
			} else {
				c.out = append(c.out, ",\r\n"...)
			}
			c.out = geminiMidStream.render(c.out, &c.v)
			if sse {
				c.out = append(c.out, "\r\n\r\n"...)
			} else {
				c.out = append(c.out, ']')
			}
			st.emit(c.out)
			return
		}
	}
	if !sse {
		st.emit([]byte{']'})
	}
}
