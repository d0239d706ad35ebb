package adminapi

import "time"

// RequestRecord is one relayed request as the request log keeps it
// (GET /admin/requests). It never holds a body, a prompt or a secret: keys
// appear by id and masked, the client token by its name.
type RequestRecord struct {
	// ID orders records (newer records have greater ids) and is the
	// cursor for paging.
	ID string `json:"id"`
	// Time is when the request arrived.
	Time time.Time `json:"time"`
	// Token is the client token's name ("" for an anonymous caller),
	// TokenID its id.
	Token   string `json:"token,omitempty"`
	TokenID string `json:"tokenId,omitempty"`
	// Route is "api" (/api/{provider}/) or "v1" (the OpenAI-compatible
	// front door).
	Route    string `json:"route"`
	Provider string `json:"provider"`
	Model    string `json:"model,omitempty"`
	Strategy string `json:"strategy"`
	// KeyID and Key name the key of the final attempt (Key masked); empty
	// when no key could serve.
	KeyID string `json:"keyId,omitempty"`
	Key   string `json:"key,omitempty"`
	// Status is the status the client got; 499 when the client went away.
	Status int `json:"status"`
	// Class is the final attempt's failure class ("" on success).
	Class string `json:"class,omitempty"`
	// Attempts lists every upstream attempt in order.
	Attempts []RequestAttempt `json:"attempts,omitempty"`
	// LatencyMs is the time from arrival to the end of the response;
	// TTFBMs to the response's first byte (0 when none was sent).
	LatencyMs float64 `json:"latencyMs"`
	TTFBMs    float64 `json:"ttfbMs,omitempty"`
	// PromptTokens and CompletionTokens as the upstream reported them (0
	// when it did not).
	PromptTokens     int64 `json:"promptTokens,omitempty"`
	CompletionTokens int64 `json:"completionTokens,omitempty"`
}

// RequestAttempt is one upstream attempt of a request: the key tried and
// how the attempt ended ("success" or a failure class).
type RequestAttempt struct {
	KeyID  string `json:"keyId"`
	Key    string `json:"key"`
	Class  string `json:"class"`
	Status int    `json:"status,omitempty"`
}

// RequestsResponse answers GET /admin/requests: records newest first, and
// the cursor of the next page ("" when there is none). Kept says how the
// log is bounded on this instance.
type RequestsResponse struct {
	Records []RequestRecord `json:"records"`
	Next    string          `json:"next,omitempty"`
	Backend string          `json:"backend"` // "bolt", "memory" or "off"
	MaxAge  string          `json:"maxAge,omitempty"`
	Max     int             `json:"max"`
}
