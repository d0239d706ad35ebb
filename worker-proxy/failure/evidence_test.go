package failure

import "testing"

// TestEvidence checks what a verdict says beyond its class: whether the
// answer singles out the key, and the model, project and project-wide
// scope a Google quota names.
func TestEvidence(t *testing.T) {
	const consumer429 = `{"error":{"code":429,"message":"Quota exceeded.","status":"RESOURCE_EXHAUSTED","details":[` +
		`{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"RATE_LIMIT_EXCEEDED","domain":"googleapis.com","metadata":{"consumer":"projects/895908428397","service":"generativelanguage.googleapis.com"}},` +
		`{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerMinutePerProjectPerModel","quotaDimensions":{"location":"global","model":"gemini-2.5-pro"}}]}]}}`
	for _, tc := range []struct {
		name        string
		status      int
		h           []string
		body        string
		class       Class
		aboutKey    bool
		model       string
		project     string
		projectWide bool
	}{
		{"gemini per minute", 429, nil, "@gemini_per_minute.json", RateLimited, true, "gemini-2.5-flash", "", false},
		{"gemini per day free", 429, nil, "@gemini_per_day_free.json", QuotaExhausted, true, "gemini-2.0-pro-exp", "", true},
		{"gemini per day paid array", 429, nil, "@gemini_per_day_paid_array.json", QuotaExhausted, true, "gemini-3.1-pro", "", true},
		{"gemini bare 429", 429, nil, "@gemini_exhausted_array.json", RateLimited, false, "", "", false},
		{"gemini invalid", 400, nil, "@gemini_invalid_key.json", InvalidKey, true, "", "", false},
		{"gemini suspended names its project", 403, nil, "@gemini_suspended.json", InvalidKey, true, "", "895908428397", false},
		{"gemini 429 naming the consumer project", 429, nil, consumer429, RateLimited, true, "gemini-2.5-pro", "895908428397", true},
		{"gemini 503", 503, nil, "@gemini_503.json", Upstream, false, "", "", false},
		{"openai rate limit", 429, nil, "@openai_rate_limit_requests.json", RateLimited, true, "", "", false},
		{"openai no credit", 429, nil, "@openai_insufficient_quota.json", InvalidKey, true, "", "", false},
		{"anthropic rate limit", 429, nil, "@anthropic_rate_limit.json", RateLimited, true, "", "", false},
		{"anthropic usage limit", 400, nil, "@anthropic_usage_limit.json", QuotaExhausted, true, "", "", false},
		{"bare 429 with 0 requests left", 429, []string{"x-ratelimit-remaining-requests", "0"}, `{}`, RateLimited, true, "", "", false},
		{"bare 429 with anthropic tokens left 0", 429, []string{"anthropic-ratelimit-tokens-remaining", "0"}, ``, RateLimited, true, "", "", false},
		{"bare 429 with requests left", 429, []string{"x-ratelimit-remaining-requests", "5"}, `Too Many Requests`, RateLimited, false, "", "", false},
		{"region block", 403, nil, "@gemini_location.json", Upstream, false, "", "", false},
		{"consumer not a project", 403, nil, `{"error":{"code":403,"message":"Permission denied: Consumer 'api_key:AIzaSy...' has been suspended.","status":"PERMISSION_DENIED","details":[{"reason":"CONSUMER_SUSPENDED","metadata":{"consumer":"projects/abc"}}]}}`, InvalidKey, true, "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := testClassifier().Response(tc.status, hdr(tc.h...), body(t, tc.body))
			if v.Class != tc.class || v.AboutKey != tc.aboutKey || v.Model != tc.model || v.Project != tc.project || v.ProjectWide != tc.projectWide {
				t.Fatalf("got class %v aboutKey %v model %q project %q projectWide %v; want %v %v %q %q %v (%s)",
					v.Class, v.AboutKey, v.Model, v.Project, v.ProjectWide, tc.class, tc.aboutKey, tc.model, tc.project, tc.projectWide, v.Reason)
			}
		})
	}
}
