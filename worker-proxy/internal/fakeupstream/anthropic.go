package fakeupstream

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Anthropic bodies are compact and carry the request id.
var anthropicErrSrc = [nFailures]struct {
	status int
	typ    string
	msg    string
}{
	fRateLimited: {429, "rate_limit_error", "This request would exceed the rate limit for your organization (00000000-0000-4000-8000-fa4e0f0e0000) of 40,000 input tokens per minute. For details, refer to: https://docs.anthropic.com/en/api/rate-limits. You can see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase."},
	fDailyQuota:  {400, "invalid_request_error", "You have reached your specified API usage limits. You will regain access on {{date}} at 00:00 UTC."},
	fInvalid:     {401, "authentication_error", "invalid x-api-key"},
	fSuspended:   {400, "invalid_request_error", "This organization has been disabled."},
	fOverloaded:  {529, "overloaded_error", "Overloaded"},
	fInternal:    {500, "api_error", "Internal server error"},
	fNoKey:       {401, "authentication_error", "x-api-key header is required"},
	fNoVersion:   {400, "invalid_request_error", "anthropic-version: header is required"},
	fBadJSON:     {400, "invalid_request_error", "The request body is not valid JSON."},
	fNoModel:     {400, "invalid_request_error", "model: Field required"},
	fNoMaxTokens: {400, "invalid_request_error", "max_tokens: Field required"},
	fNotFound:    {404, "not_found_error", "The requested resource could not be found."},
	fBadMethod:   {405, "invalid_request_error", "Method Not Allowed"},
}

var anthropicErrs [nFailures]*tmpl

func init() {
	for f, e := range anthropicErrSrc {
		if e.typ != "" {
			anthropicErrs[f] = compile(`{"type":"error","error":{"type":"`+e.typ+`","message":"`+e.msg+`"},"request_id":"{{reqid}}"}`, "")
		}
	}
}

var (
	anthropicMessage = compile(`{"id":"{{id}}","type":"message","role":"assistant","model":"{{model}}","content":[{"type":"text","text":"{{text}}"}],"stop_reason":"end_turn","stop_sequence":null,`+
		`"usage":{"input_tokens":"{{#prompt}}","cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":"{{#completion}}","service_tier":"standard"}}`, "")
	anthropicStart = compile(`{"type":"message_start","message":{"id":"{{id}}","type":"message","role":"assistant","model":"{{model}}","content":[],"stop_reason":null,"stop_sequence":null,`+
		`"usage":{"input_tokens":"{{#prompt}}","cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1,"service_tier":"standard"}}}`, "")
	anthropicDelta     = compile(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"{{text}}"}}`, "")
	anthropicStopDelta = compile(`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":"{{#completion}}"}}`, "")

	anthropicBlockStart = "event: content_block_start\ndata: " + `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}` + "\n\n" +
		"event: ping\ndata: " + `{"type": "ping"}` + "\n\n"
	anthropicBlockStop = "event: content_block_stop\ndata: " + `{"type":"content_block_stop","index":0}` + "\n\n"
	anthropicStop      = "event: message_stop\ndata: " + `{"type":"message_stop"}` + "\n\n"
	anthropicMidStream = "event: error\ndata: " + `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}` + "\n\n"

	anthropicModel  = compile(`{"type":"model","id":"{{model}}","display_name":"{{model}}","created_at":"2025-01-01T00:00:00Z"}`, "")
	anthropicModels = compile(`{"data":[`+
		`{"type":"model","id":"claude-sonnet-4-5-20250929","display_name":"Claude Sonnet 4.5","created_at":"2025-09-29T00:00:00Z"},`+
		`{"type":"model","id":"claude-haiku-4-5-20251001","display_name":"Claude Haiku 4.5","created_at":"2025-10-15T00:00:00Z"}],`+
		`"has_more":false,"first_id":"claude-sonnet-4-5-20250929","last_id":"claude-haiku-4-5-20251001"}`, "").bytes()
)

var (
	anthropicHeaders = hdrs(
		"anthropic-organization-id", "00000000-0000-4000-8000-fa4e0f0e0000",
		"anthropic-ratelimit-requests-limit", "4000",
		"anthropic-ratelimit-requests-remaining", "3999",
		"anthropic-ratelimit-input-tokens-limit", "2000000",
		"anthropic-ratelimit-input-tokens-remaining", "2000000",
		"anthropic-ratelimit-output-tokens-limit", "400000",
		"anthropic-ratelimit-output-tokens-remaining", "400000",
		"anthropic-ratelimit-tokens-limit", "2400000",
		"anthropic-ratelimit-tokens-remaining", "2400000",
	)
	anthropicRateLimitedHeaders = hdrs(
		"anthropic-organization-id", "00000000-0000-4000-8000-fa4e0f0e0000",
		"anthropic-ratelimit-requests-limit", "4000",
		"anthropic-ratelimit-requests-remaining", "0",
		"anthropic-ratelimit-input-tokens-limit", "40000",
		"anthropic-ratelimit-input-tokens-remaining", "0",
		"anthropic-ratelimit-output-tokens-limit", "400000",
		"anthropic-ratelimit-output-tokens-remaining", "400000",
		"anthropic-ratelimit-tokens-limit", "440000",
		"anthropic-ratelimit-tokens-remaining", "400000",
		"retry-after", strconv.Itoa(rateLimitSeconds),
	)
	anthropicResetKeys = []string{
		"Anthropic-Ratelimit-Requests-Reset", "Anthropic-Ratelimit-Input-Tokens-Reset",
		"Anthropic-Ratelimit-Output-Tokens-Reset", "Anthropic-Ratelimit-Tokens-Reset",
	}
	shouldRetryTrue  = []string{"true"}
	shouldRetryFalse = []string{"false"}
)

var anthropicClock clock

func (c *call) anthropicFail(f failure) {
	e := anthropicErrSrc[f]
	h := c.w.Header()
	switch f {
	case fRateLimited:
		setHeaders(h, anthropicRateLimitedHeaders)
		now := anthropicClock.now()
		for _, k := range anthropicResetKeys {
			h[k] = now.limit
		}
	case fDailyQuota:
		y, m, _ := time.Now().UTC().Date()
		c.v.date = time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
	}
	if e.status == 429 || e.status >= 500 {
		h["X-Should-Retry"] = shouldRetryTrue
	} else {
		h["X-Should-Retry"] = shouldRetryFalse
	}
	c.out = anthropicErrs[f].render(c.out[:0], &c.v)
	c.send(e.status, ctJSON, c.out)
}

func (c *call) serveAnthropic() {
	c.v.reqID = c.s.ids.id("req_011C", 20)
	h := c.w.Header()
	h["Request-Id"] = []string{c.v.reqID}
	switch {
	case c.ep == epNotFound:
		c.anthropicFail(fNotFound)
		return
	case c.r.Method != c.ep.method():
		c.anthropicFail(fBadMethod)
		return
	case c.auth == authNoKey:
		c.anthropicFail(fNoKey)
		return
	case len(c.r.Header["Anthropic-Version"]) == 0 || c.r.Header["Anthropic-Version"][0] == "":
		c.anthropicFail(fNoVersion)
		return
	}
	if f := c.authFailure(); f != fNone {
		c.anthropicFail(f)
		return
	}
	switch c.ep {
	case epModels:
		setAnthropicHeaders(h)
		c.send(http.StatusOK, ctJSON, anthropicModels)
		return
	case epModel:
		setAnthropicHeaders(h)
		c.out = anthropicModel.render(c.out[:0], &c.v)
		c.send(http.StatusOK, ctJSON, c.out)
		return
	}
	var req reqBody
	switch {
	case json.Unmarshal(c.body, &req) != nil:
		c.anthropicFail(fBadJSON)
		return
	case req.Model == "":
		c.anthropicFail(fNoModel)
		return
	case req.MaxTokens == nil:
		c.anthropicFail(fNoMaxTokens)
		return
	}
	c.v.model = req.Model
	f, mid := c.useFailure(req.Stream)
	if f != fNone {
		c.anthropicFail(f)
		return
	}
	setAnthropicHeaders(h)
	c.v.prompt = tokens(len(c.body))
	c.v.id = c.s.ids.id("msg_01", 22)
	if req.Stream {
		c.anthropicStream(mid)
		return
	}
	c.v.text = AnswerText(c.v.model)
	c.v.completion = tokens(len(c.v.text))
	c.out = anthropicMessage.render(c.out[:0], &c.v)
	c.send(http.StatusOK, ctJSON, c.out)
}

func setAnthropicHeaders(h http.Header) {
	setHeaders(h, anthropicHeaders)
	now := anthropicClock.now()
	for _, k := range anthropicResetKeys {
		h[k] = now.reset
	}
}

func anthropicEvent(dst []byte, event string, t *tmpl, v *vals) []byte {
	dst = append(dst, "event: "...)
	dst = append(dst, event...)
	dst = append(dst, "\ndata: "...)
	dst = t.render(dst, v)
	return append(dst, "\n\n"...)
}

// anthropicStream streams a message: message_start, content_block_start,
// ping, one content_block_delta per chunk, content_block_stop,
// message_delta, message_stop.
func (c *call) anthropicStream(mid bool) {
	st := c.startStream(ctSSE)
	n := c.s.opts.StreamChunks
	for i := range n {
		c.out = c.out[:0]
		if i == 0 {
			c.out = anthropicEvent(c.out, "message_start", anthropicStart, &c.v)
			c.out = append(c.out, anthropicBlockStart...)
		}
		c.v.text = ChunkText(c.v.model, i)
		c.v.completion += tokens(len(c.v.text))
		c.out = anthropicEvent(c.out, "content_block_delta", anthropicDelta, &c.v)
		if !st.emit(c.out) || !st.pause() {
			return
		}
		if mid {
			st.emit(append(c.out[:0], anthropicMidStream...))
			return
		}
	}
	c.out = append(c.out[:0], anthropicBlockStop...)
	c.out = anthropicEvent(c.out, "message_delta", anthropicStopDelta, &c.v)
	c.out = append(c.out, anthropicStop...)
	st.emit(c.out)
}
