package adminclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// HeaderDoer is a Doer that can also return the answer's headers (names
// in canonical or lower case, as the platform gives them).
type HeaderDoer interface {
	DoHeaders(ctx context.Context, method, url string, headers map[string]string, body []byte) (status int, respHeaders map[string]string, respBody []byte, err error)
}

// RelayResult is what the proxy answered to a relayed request.
type RelayResult struct {
	Status   int
	Body     []byte
	KeyID    string // X-KeyPool-Key-Id: which key served (its id, never the key)
	Attempts string // X-KeyPool-Attempts
}

// PlaygroundRequest builds the path, headers and body of a one-prompt
// request for provider through the proxy's relay (/api/PROVIDER/...),
// authenticated with a client token.
func PlaygroundRequest(provider, model, strategy, token, prompt string) (path string, headers map[string]string, body []byte) {
	q := ""
	if strategy != "" {
		q = "?strategy=" + url.QueryEscape(strategy)
	}
	headers = map[string]string{"Content-Type": "application/json"}
	switch provider {
	case "gemini":
		path = "/api/gemini/models/" + url.PathEscape(model) + ":generateContent" + q
		headers["x-goog-api-key"] = token
		body, _ = json.Marshal(map[string]any{"contents": []any{map[string]any{"parts": []any{map[string]string{"text": prompt}}}}})
	case "anthropic":
		path = "/api/anthropic/messages" + q
		headers["x-api-key"] = token
		body, _ = json.Marshal(map[string]any{"model": model, "max_tokens": 1024, "messages": []any{map[string]string{"role": "user", "content": prompt}}})
	default: // OpenAI and OpenAI-compatible providers
		path = "/api/" + url.PathEscape(provider) + "/chat/completions" + q
		headers["Authorization"] = "Bearer " + token
		body, _ = json.Marshal(map[string]any{"model": model, "messages": []any{map[string]string{"role": "user", "content": prompt}}})
	}
	return path, headers, body
}

// Relay sends a request through the proxy's relay with a client token
// (not the admin key).
func (c *Client) Relay(ctx context.Context, method, path string, headers map[string]string, body []byte) (*RelayResult, error) {
	hd, ok := c.Doer.(HeaderDoer)
	if !ok {
		return nil, &Error{Kind: KindDecode, Message: "this client cannot read response headers"}
	}
	status, rh, b, err := hd.DoHeaders(ctx, method, c.BaseURL+path, headers, body)
	if err != nil {
		kind := KindUnreachable
		if te, ok := err.(*TransportError); ok && te.CORS {
			kind = KindCORS
		}
		return nil, &Error{Kind: kind, Message: err.Error(), Err: err}
	}
	get := func(name string) string {
		for k, v := range rh {
			if strings.EqualFold(k, name) {
				return v
			}
		}
		return ""
	}
	return &RelayResult{Status: status, Body: b, KeyID: get("X-KeyPool-Key-Id"), Attempts: get("X-KeyPool-Attempts")}, nil
}

// AnswerText pulls the model's text out of a provider's answer, or
// returns the error message the answer carries.
func AnswerText(provider string, body []byte) string {
	var v struct {
		Candidates []struct {
			Content struct {
				Parts []struct {
					Text string `json:"text"`
				} `json:"parts"`
			} `json:"content"`
		} `json:"candidates"`
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
		Error json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return strings.TrimSpace(string(body))
	}
	var out []string
	for _, c := range v.Candidates {
		for _, p := range c.Content.Parts {
			out = append(out, p.Text)
		}
	}
	for _, c := range v.Choices {
		out = append(out, c.Message.Content)
	}
	for _, c := range v.Content {
		out = append(out, c.Text)
	}
	if len(out) == 0 && len(v.Error) > 0 {
		var e struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(v.Error, &e) == nil && e.Message != "" {
			return e.Message
		}
		var s string
		if json.Unmarshal(v.Error, &s) == nil {
			return s
		}
		return fmt.Sprint(string(v.Error))
	}
	return strings.Join(out, "")
}
