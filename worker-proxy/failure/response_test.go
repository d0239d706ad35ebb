package failure

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// now is the fixed clock of the tests: 05:00 PDT, so the next Pacific
// midnight is 19h away.
var now = time.Date(2026, 7, 24, 12, 0, 0, 0, time.UTC)

func testClassifier() *Classifier {
	return &Classifier{Now: func() time.Time { return now }}
}

// fixture returns testdata/name.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// body returns s, or the fixture it names when it starts with "@".
func body(t testing.TB, s string) []byte {
	if name, ok := strings.CutPrefix(s, "@"); ok {
		return fixture(t, name)
	}
	return []byte(s)
}

// hdr builds a header from name, value pairs.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// cut returns the first n bytes of a fixture, or of its first occurrence of
// marker when n is 0.
func cut(t testing.TB, name, marker string) string {
	b := string(fixture(t, name))
	i := strings.Index(b, marker)
	if i < 0 {
		t.Fatalf("%s has no %q", name, marker)
	}
	return b[:i]
}

type responseCase struct {
	name   string
	status int
	h      http.Header
	body   string // "@file" reads testdata/file
	class  Class
	wait   time.Duration // Until - now; 0: Until is zero
	reason string
}

const (
	perDay  = 19 * time.Hour // now to the next Pacific midnight
	minute  = time.Minute    // the default cooldown
	overQuo = "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.go…"
)

func TestResponse(t *testing.T) {
	in := func(d time.Duration) string { return now.Add(d).UTC().Format(time.RFC3339) }
	cases := []responseCase{
		// Success.
		{"200", 200, nil, "", Success, 0, ""},
		{"204 with an error-looking body", 204, nil, "@gemini_invalid_key.json", Success, 0, ""},
		{"301", 301, nil, "", Success, 0, ""},
		{"304", 304, nil, "", Success, 0, ""},

		// Gemini, every body of provider-errors.md §1.
		{"gemini invalid key", 400, nil, "@gemini_invalid_key.json", InvalidKey, 0,
			"400 API_KEY_INVALID: API key not valid. Please pass a valid API key."},
		{"gemini key expired", 400, nil, `{"error":{"code":400,"message":"API key expired. Please renew the API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}`,
			InvalidKey, 0, "400 API_KEY_INVALID: API key expired. Please renew the API key."},
		{"gemini key not found", 400, nil, `{"error":{"code":400,"message":"API Key not found. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}`,
			InvalidKey, 0, "400 API_KEY_INVALID: API Key not found. Please pass a valid API key."},
		{"gemini invalid key, array, no details", 400, nil, `[{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT"}}]`,
			InvalidKey, 0, "400 INVALID_ARGUMENT: API key not valid. Please pass a valid API key."},
		{"gemini suspended", 403, nil, "@gemini_suspended.json", InvalidKey, 0,
			"403 CONSUMER_SUSPENDED: Permission denied: Consumer 'api_key:AIzaSy...' has been suspended."},
		{"gemini suspended, 2024 capture without details", 403, nil, `{"error":{"code":403,"message":"Permission denied: Consumer 'api_key:AIzaSy...' has been suspended.","status":"PERMISSION_DENIED"}}`,
			InvalidKey, 0, "403 PERMISSION_DENIED: Permission denied: Consumer 'api_key:AIzaSy...' has been suspended."},
		{"gemini unregistered callers", 403, nil, "@gemini_unregistered.json", InvalidKey, 0,
			"403 PERMISSION_DENIED: Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer ident…"},
		{"gemini API disabled in the project", 403, nil, `{"error":{"code":403,"message":"Generative Language API has not been used in project 123 before or it is disabled.","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"SERVICE_DISABLED"}]}}`,
			InvalidKey, 0, "403 SERVICE_DISABLED: Generative Language API has not been used in project 123 before or it is disabled."},
		{"gemini bearer token to the native API", 401, nil, `{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"ACCESS_TOKEN_TYPE_UNSUPPORTED"}]}}`,
			InvalidKey, 0, "401 ACCESS_TOKEN_TYPE_UNSUPPORTED: Request had invalid authentication credentials."},
		{"gemini per-minute quota", 429, nil, "@gemini_per_minute.json", RateLimited, 26 * time.Second,
			"429 RESOURCE_EXHAUSTED: quota GenerateContentInputTokensPerModelPerMinute-FreeTier"},
		{"gemini per-day free tier", 429, nil, "@gemini_per_day_free.json", QuotaExhausted, perDay,
			"429 RESOURCE_EXHAUSTED: per-day quota GenerateRequestsPerDayPerProjectPerModel-FreeTier"},
		{"gemini per-minute and per-day: per-day wins", 429, nil, "@gemini_minute_and_day.json", QuotaExhausted, perDay,
			"429 RESOURCE_EXHAUSTED: per-day quota GenerateRequestsPerDayPerProjectPerModel-FreeTier"},
		{"gemini per-day ignores Retry-After and retryDelay", 429, hdr("Retry-After", "5"), "@gemini_per_day_free.json", QuotaExhausted, perDay,
			"429 RESOURCE_EXHAUSTED: per-day quota GenerateRequestsPerDayPerProjectPerModel-FreeTier"},
		{"gemini paid per-day, array form", 429, nil, "@gemini_per_day_paid_array.json", QuotaExhausted, perDay,
			"429 RESOURCE_EXHAUSTED: per-day quota GenerateRequestsPerDayPerProjectPerModel"},
		{"gemini per-day by metric only", 429, nil, `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_requests_per_model_per_day"}]}]}}`,
			QuotaExhausted, perDay, "429 RESOURCE_EXHAUSTED: per-day quota generate_requests_per_model_per_day"},
		{"gemini bare exhausted, array form", 429, nil, "@gemini_exhausted_array.json", RateLimited, minute,
			"429 RESOURCE_EXHAUSTED: Resource has been exhausted (e.g. check quota)."},
		{"gemini monthly spending cap", 429, nil, "@gemini_spend_cap.json", InvalidKey, 0,
			"429 RESOURCE_EXHAUSTED (monthly spending cap reached): Your project has exceeded its monthly spending cap. Please go to AI Studio at https://ai.studio/spend to…"},
		{"gemini 500", 500, nil, "@gemini_500.json", Upstream, 0,
			"500 INTERNAL: An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"},
		{"gemini 503 overloaded", 503, nil, "@gemini_503.json", Upstream, 0,
			"503 UNAVAILABLE: The model is overloaded. Please try again later."},
		{"gemini 503 high demand", 503, nil, "@gemini_503_high_demand.json", Upstream, 0,
			"503 UNAVAILABLE: This model is currently experiencing high demand. Spikes in demand are usually temporary. Please try again later."},
		{"gemini user location", 400, nil, "@gemini_location.json", Upstream, 0,
			"400 FAILED_PRECONDITION (proxy IP or region blocked): User location is not supported for the API use."},
		{"gemini free tier not in country", 400, nil, `{"error":{"code":400,"message":"Gemini API free tier is not available in your country. Please enable billing on your project in Google AI Studio.","status":"FAILED_PRECONDITION"}}`,
			Upstream, 0, "400 FAILED_PRECONDITION (proxy IP or region blocked): Gemini API free tier is not available in your country. Please enable billing on your project in Google AI…"},
		{"gemini multiple credentials", 400, nil, "@gemini_multiple_credentials.json", Client, 0,
			"400 INVALID_ARGUMENT: Multiple authentication credentials received. Please pass only one."},
		{"gemini echoed field name cannot fake a dead key", 400, nil, `{"error":{"code":400,"message":"Invalid JSON payload received. Unknown name \"API key not valid\" at 'contents[0]': Cannot find field. \"reason\": \"API_KEY_INVALID\"","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"contents[0]","description":"\"reason\":\"API_KEY_INVALID\""}]}]}}`,
			Client, 0, `400 INVALID_ARGUMENT: Invalid JSON payload received. Unknown name "API key not valid" at 'contents[0]': Cannot find field. "reason": "API_KEY_INVALID"`},
		{"gemini model not found", 404, nil, `{"error":{"code":404,"message":"models/gemini-9 is not found for API version v1beta, or is not supported for generateContent.","status":"NOT_FOUND"}}`,
			Client, 0, "404 NOT_FOUND: models/gemini-9 is not found for API version v1beta, or is not supported for generateContent."},

		// OpenAI, §2.
		{"openai invalid key", 401, nil, "@openai_invalid_key.json", InvalidKey, 0,
			"401 invalid_api_key: Incorrect API key provided: sk-VKMIs***...wjh3. You can find your API key at https://platform.openai.com/account/api-keys."},
		{"openai insufficient_quota", 429, nil, "@openai_insufficient_quota.json", InvalidKey, 0,
			"429 insufficient_quota (no credit: dead until billing is fixed): You exceeded your current quota, please check your plan and billing details. For more informat…"},
		{"openai insufficient_quota, older code null", 429, nil, `{"error":{"message":"You exceeded your current quota.","type":"insufficient_quota","param":null,"code":null}}`,
			InvalidKey, 0, "429 insufficient_quota (no credit: dead until billing is fixed): You exceeded your current quota."},
		{"openai TPM limit, wait from the message", 429, nil, "@openai_rate_limit_tokens.json", RateLimited, 174 * time.Millisecond,
			"429 rate_limit_exceeded: Rate limit reached for gpt-4.1 in organization org-XXXX on tokens per min (TPM): Limit 30000, Used 18928, Requested 11159. Please try…"},
		{"openai RPM limit, wait from the message", 429, nil, "@openai_rate_limit_requests.json", RateLimited, 20 * time.Second,
			"429 rate_limit_exceeded: Rate limit reached for gpt-3.5-turbo in organization org-XXXX on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try agai…"},
		{"openai 500", 500, nil, "@openai_500.json", Upstream, 0,
			"500 server_error: The server had an error while processing your request. Sorry about that!"},
		{"openai 503 overloaded, request id hidden", 503, nil, "@openai_503.json", Upstream, 0,
			"503 server_error: That model is currently overloaded with other requests. You can retry your request, or contact us through our help center at help.openai.com…"},
		{"openai region 403", 403, nil, "@openai_region.json", Upstream, 0,
			"403 unsupported_country_region_territory (proxy IP or region blocked): Country, region, or territory not supported"},
		{"openai deactivated account", 401, nil, `{"error":{"message":"This key is associated with a deactivated account.","type":"invalid_request_error","param":null,"code":"account_deactivated"}}`,
			InvalidKey, 0, "401 account_deactivated: This key is associated with a deactivated account."},
		{"openai-compatible invalid_api_key on 400", 400, nil, `{"error":{"message":"Invalid API Key","type":"invalid_request_error","code":"invalid_api_key"}}`,
			InvalidKey, 0, "400 invalid_api_key: Invalid API Key"},
		{"openai bad request", 400, nil, `{"error":{"message":"you must provide a model parameter","type":"invalid_request_error","param":null,"code":null}}`,
			Client, 0, "400 invalid_request_error: you must provide a model parameter"},
		{"openai full key echoed", 401, nil, `{"error":{"message":"Incorrect API key provided: sk-proj-test-key-0000-not-real-0000. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","code":"invalid_api_key"}}`,
			InvalidKey, 0, "401 invalid_api_key: Incorrect API key provided: sk-…. You can find your API key at https://platform.openai.com/account/api-keys."},

		// Anthropic, §3.
		{"anthropic not found", 404, nil, "@anthropic_not_found.json", Client, 0,
			"404 not_found_error: The requested resource could not be found."},
		{"anthropic invalid key", 401, nil, "@anthropic_auth.json", InvalidKey, 0,
			"401 authentication_error: invalid x-api-key"},
		{"anthropic rate limit with retry-after", 429, hdr("retry-after", "20", "anthropic-ratelimit-requests-remaining", "0", "anthropic-ratelimit-requests-reset", in(40*time.Second)),
			"@anthropic_rate_limit.json", RateLimited, 20 * time.Second,
			"429 rate_limit_error: This request would exceed the rate limit for your organization (d3f27ff7-...) of 40,000 input tokens per minute. For details, refer to: h…"},
		{"anthropic 529 overloaded", 529, nil, "@anthropic_overloaded.json", Upstream, 0, "529 overloaded_error: Overloaded"},
		{"anthropic 500", 500, nil, `{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`, Upstream, 0, "500 api_error: Internal server error"},
		{"anthropic 402 billing", 402, nil, "@anthropic_billing.json", InvalidKey, 0,
			"402 billing_error (billing): Your organization's billing is not set up. Please add a payment method."},
		{"anthropic spend limit", 429, hdr("retry-after", "30"), "@anthropic_spend_limit.json", InvalidKey, 0,
			"429 enforced_spend_limit_reached (spend limit reached): You have reached your spend limit."},
		{"anthropic region 403", 403, nil, "@anthropic_forbidden.json", Upstream, 0,
			"403 forbidden (proxy IP or region blocked): Request not allowed"},
		{"anthropic permission 403", 403, nil, `{"type":"error","error":{"type":"permission_error","message":"Your API key does not have permission to use the specified resource."}}`,
			Client, 0, "403 permission_error: Your API key does not have permission to use the specified resource."},
		{"anthropic too large", 413, nil, "@anthropic_too_large.json", Client, 0,
			"413 request_too_large: Request exceeds the maximum allowed number of bytes."},
		{"anthropic usage limit", 400, nil, "@anthropic_usage_limit.json", QuotaExhausted, 180 * time.Hour,
			"400 invalid_request_error (usage limit): You have reached your specified API usage limits. You will regain access on 2026-08-01 at 00:00 UTC."},
		{"anthropic usage limit without date", 400, nil, `{"type":"error","error":{"type":"invalid_request_error","message":"You have reached your specified API usage limits."}}`,
			QuotaExhausted, time.Hour, "400 invalid_request_error (usage limit): You have reached your specified API usage limits."},
		{"anthropic credit too low", 400, nil, "@anthropic_credit_low.json", InvalidKey, 0,
			"400 invalid_request_error (no credit: dead until billing is fixed): Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to…"},
		{"anthropic organization disabled", 400, nil, "@anthropic_org_disabled.json", InvalidKey, 0,
			"400 invalid_request_error (organization disabled): This organization has been disabled."},
		{"anthropic bad request", 400, nil, `{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"}}`,
			Client, 0, "400 invalid_request_error: max_tokens: Field required"},
		{"anthropic openai-compatible 429", 429, hdr("x-ratelimit-reset-requests", in(15*time.Second)), "@anthropic_compat_rate_limit.json", RateLimited, 15 * time.Second,
			"429 rate_limit_error: This request would exceed the rate limit for your organization of 20,000 input tokens per minute. ..."},

		// Header forms of the 429 wait, in precedence order.
		{"Retry-After-Ms", 429, hdr("Retry-After-Ms", "1500", "Retry-After", "9"), "", RateLimited, 1500 * time.Millisecond, "429 Too Many Requests"},
		{"Retry-After seconds", 429, hdr("Retry-After", "30"), "@gemini_per_minute.json", RateLimited, 30 * time.Second,
			"429 RESOURCE_EXHAUSTED: quota GenerateContentInputTokensPerModelPerMinute-FreeTier"},
		{"Retry-After HTTP date", 429, hdr("Retry-After", now.Add(90*time.Second).Format(http.TimeFormat)), "", RateLimited, 90 * time.Second, "429 Too Many Requests"},
		{"Retry-After date in the past ignored", 429, hdr("Retry-After", now.Add(-time.Hour).Format(http.TimeFormat)), "", RateLimited, minute, "429 Too Many Requests"},
		{"Retry-After 0 ignored", 429, hdr("Retry-After", "0"), "@gemini_per_minute.json", RateLimited, 26 * time.Second,
			"429 RESOURCE_EXHAUSTED: quota GenerateContentInputTokensPerModelPerMinute-FreeTier"},
		{"Retry-After garbage ignored", 429, hdr("Retry-After", "soon", "Retry-After-Ms", "x"), "", RateLimited, minute, "429 Too Many Requests"},
		{"Retry-After capped at MaxCooldown", 429, hdr("Retry-After", "7200"), "", RateLimited, time.Hour, "429 Too Many Requests"},
		{"Retry-After huge", 429, hdr("Retry-After", "1e300"), "", RateLimited, time.Hour, "429 Too Many Requests"},
		{"retryDelay fraction", 429, nil, `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.5s"}]}}`,
			RateLimited, 1500 * time.Millisecond, "429 RESOURCE_EXHAUSTED"},
		{"retryDelay of a daily quota is capped", 429, nil, `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"39043s"}]}}`,
			RateLimited, time.Hour, "429 RESOURCE_EXHAUSTED"},
		{"openai reset, requests exhausted", 429, hdr("x-ratelimit-remaining-requests", "0", "x-ratelimit-reset-requests", "20s", "x-ratelimit-remaining-tokens", "149984", "x-ratelimit-reset-tokens", "6m0s"),
			"@openai_rate_limit_requests.json", RateLimited, 20 * time.Second,
			"429 rate_limit_exceeded: Rate limit reached for gpt-3.5-turbo in organization org-XXXX on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try agai…"},
		{"openai reset, tokens exhausted", 429, hdr("x-ratelimit-remaining-requests", "59", "x-ratelimit-reset-requests", "1s", "x-ratelimit-remaining-tokens", "0", "x-ratelimit-reset-tokens", "6m0s"),
			"", RateLimited, 6 * time.Minute, "429 Too Many Requests"},
		{"openai reset, both exhausted: the later", 429, hdr("x-ratelimit-remaining-requests", "0", "x-ratelimit-reset-requests", "12ms", "x-ratelimit-remaining-tokens", "0", "x-ratelimit-reset-tokens", "20ms"),
			"", RateLimited, 20 * time.Millisecond, "429 Too Many Requests"},
		{"openai reset, none known exhausted: the later", 429, hdr("x-ratelimit-reset-requests", "1s", "x-ratelimit-reset-tokens", "6m0s"),
			"", RateLimited, 6 * time.Minute, "429 Too Many Requests"},
		{"openai reset beats the message", 429, hdr("x-ratelimit-reset-tokens", "9ms"), "@openai_rate_limit_tokens.json", RateLimited, 9 * time.Millisecond,
			"429 rate_limit_exceeded: Rate limit reached for gpt-4.1 in organization org-XXXX on tokens per min (TPM): Limit 30000, Used 18928, Requested 11159. Please try…"},
		{"anthropic reset, exhausted limit", 429, hdr("anthropic-ratelimit-requests-remaining", "0", "anthropic-ratelimit-requests-reset", in(40*time.Second), "anthropic-ratelimit-tokens-remaining", "16000", "anthropic-ratelimit-tokens-reset", in(10*time.Minute)),
			"@anthropic_rate_limit.json", RateLimited, 40 * time.Second,
			"429 rate_limit_error: This request would exceed the rate limit for your organization (d3f27ff7-...) of 40,000 input tokens per minute. For details, refer to: h…"},
		{"anthropic reset, none known exhausted: the later", 429, hdr("anthropic-ratelimit-input-tokens-reset", in(40*time.Second), "anthropic-ratelimit-output-tokens-reset", in(50*time.Second)),
			"", RateLimited, 50 * time.Second, "429 Too Many Requests"},
		{"anthropic reset in the past ignored", 429, hdr("anthropic-ratelimit-requests-remaining", "0", "anthropic-ratelimit-requests-reset", in(-time.Minute)),
			"", RateLimited, minute, "429 Too Many Requests"},
		{"message: retry in fractional seconds", 429, nil, `{"error":{"code":429,"message":"Quota exceeded. Please retry in 38.962214405s.","status":"RESOURCE_EXHAUSTED"}}`,
			RateLimited, 38962214405 * time.Nanosecond, "429 RESOURCE_EXHAUSTED: Quota exceeded. Please retry in 38.962214405s."},

		// Truncated bodies: classification degrades to what was read.
		{"truncated per-day, message read", 429, nil, cut(t, "gemini_per_day_paid_array.json", `"status"`), QuotaExhausted, perDay,
			"429 RESOURCE_EXHAUSTED: per-day quota generate_requests_per_model_per_day"},
		{"truncated per-minute, RetryInfo lost", 429, nil, cut(t, "gemini_per_minute.json", `"@type": "type.googleapis.com/google.rpc.Help"`), RateLimited, minute,
			"429 RESOURCE_EXHAUSTED: quota GenerateContentInputTokensPerModelPerMinute-FreeTier"},
		{"truncated per-minute, message wait", 429, nil, "{\"error\":{\"code\":429,\"message\":\"x\\nPlease retry in 38.962214405s.\", \"details\": [{\"@type\": \"type.googleapis.com/google.rpc.Qu",
			RateLimited, 38962214405 * time.Nanosecond, "429: x Please retry in 38.962214405s."},
		{"truncated invalid key after the reason", 400, nil, cut(t, "gemini_invalid_key.json", `"domain"`), InvalidKey, 0,
			"400 API_KEY_INVALID: API key not valid. Please pass a valid API key."},
		{"truncated invalid key inside the message", 400, nil, cut(t, "gemini_invalid_key.json", `not valid`), Client, 0, "400 Bad Request"},
		{"truncated suspended before details", 403, nil, cut(t, "gemini_suspended.json", `"details"`), InvalidKey, 0,
			"403 PERMISSION_DENIED: Permission denied: Consumer 'api_key:AIzaSy...' has been suspended."},
		{"truncated 403 JSON is still a provider error", 403, nil, `{"error":{"code":403,"mess`, Client, 0, "403 Forbidden"},

		// Garbage and odd statuses: status-only rules.
		{"html 502", 502, nil, "<html><body>502 Bad Gateway</body></html>", Upstream, 0, "502 Bad Gateway"},
		{"html 403 from a firewall", 403, nil, "@cloudflare_403.html", Upstream, 0, "403 Forbidden (not a provider error: proxy IP blocked?)"},
		{"empty 403", 403, nil, "", Upstream, 0, "403 Forbidden (not a provider error: proxy IP blocked?)"},
		{"garbage 401", 401, nil, "\x00\xff{{", InvalidKey, 0, "401 Unauthorized"},
		{"garbage 429", 429, nil, "[[[[", RateLimited, minute, "429 Too Many Requests"},
		{"garbage 400", 400, nil, "not json", Client, 0, "400 Bad Request"},
		{"null body", 400, nil, "null", Client, 0, "400 Bad Request"},
		{"error as a string", 400, nil, `{"error":"Incorrect API key provided: xa***xyz"}`, Client, 0, "400: Incorrect API key provided: xa***xyz"},
		{"invalid UTF-8 and control characters", 400, nil, "{\"error\":{\"message\":\"bad\\u0000\\n\\tthing \xff\",\"type\":\"invalid_request_error\"}}", Client, 0,
			"400 invalid_request_error: bad thing \uFFFD"},
		{"status 0", 0, nil, "", Upstream, 0, "0 (invalid HTTP status)"},
		{"status 600", 600, nil, "", Upstream, 0, "600 (invalid HTTP status)"},
		{"402 without a body", 402, nil, "", InvalidKey, 0, "402 Payment Required (billing)"},
		{"404", 404, nil, "", Client, 0, "404 Not Found"},
		{"405", 405, nil, "", Client, 0, "405 Method Not Allowed"},
		{"408", 408, nil, "", Upstream, 0, "408 Request Timeout"},
		{"409", 409, nil, "", Client, 0, "409 Conflict"},
		{"413", 413, nil, "", Client, 0, "413 Request Entity Too Large"},
		{"415", 415, nil, "", Client, 0, "415 Unsupported Media Type"},
		{"422", 422, nil, "", Client, 0, "422 Unprocessable Entity"},
		{"451", 451, nil, "", Upstream, 0, "451 Unavailable For Legal Reasons (proxy IP or region blocked)"},
		{"504", 504, nil, "", Upstream, 0, "504 Gateway Timeout"},
		{"529", 529, nil, "", Upstream, 0, "529"},
		{"503 with Retry-After keeps the hint", 503, hdr("Retry-After", "5"), "@gemini_503.json", Upstream, 5 * time.Second,
			"503 UNAVAILABLE: The model is overloaded. Please try again later."},
	}
	c := testClassifier()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := c.Response(tc.status, tc.h, body(t, tc.body))
			want := Verdict{Class: tc.class, Reason: tc.reason}
			if tc.wait != 0 {
				want.Until = now.Add(tc.wait)
			}
			if got.Class != want.Class || !got.Until.Equal(want.Until) || got.Reason != want.Reason {
				t.Errorf("Response(%d) =\n  %v %v %q\nwant\n  %v %v %q", tc.status,
					got.Class, wait(got.Until), got.Reason, want.Class, wait(want.Until), want.Reason)
			}
		})
	}
}

func wait(t time.Time) string {
	if t.IsZero() {
		return "until=zero"
	}
	return "until=now+" + t.Sub(now).String()
}

func TestResponseCooldownSettings(t *testing.T) {
	tests := []struct {
		name     string
		c        *Classifier
		h        http.Header
		wantWait time.Duration
	}{
		{"custom default", &Classifier{Now: func() time.Time { return now }, DefaultCooldown: 10 * time.Second}, nil, 10 * time.Second},
		{"default above the cap", &Classifier{Now: func() time.Time { return now }, DefaultCooldown: time.Hour, MaxCooldown: 5 * time.Minute}, nil, 5 * time.Minute},
		{"custom cap", &Classifier{Now: func() time.Time { return now }, MaxCooldown: 5 * time.Minute}, hdr("Retry-After", "3600"), 5 * time.Minute},
		{"negative settings mean defaults", &Classifier{Now: func() time.Time { return now }, DefaultCooldown: -1, MaxCooldown: -1}, hdr("Retry-After", "99999"), time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.c.Response(429, tt.h, nil)
			if want := now.Add(tt.wantWait); got.Class != RateLimited || !got.Until.Equal(want) {
				t.Errorf("got %v %s, want rate_limited now+%s", got.Class, wait(got.Until), tt.wantWait)
			}
		})
	}
	// The zero and the nil Classifier use the real clock.
	for _, c := range []*Classifier{{}, nil} {
		before := time.Now()
		v := c.Response(429, nil, nil)
		if d := v.Until.Sub(before); v.Class != RateLimited || d < minute || d > minute+time.Minute {
			t.Errorf("%#v: got %v, Until now+%s; want rate_limited, about now+1m", c, v.Class, d)
		}
		// Daily quotas are not capped by MaxCooldown.
		v = c.Response(429, nil, fixture(t, "gemini_per_day_free.json"))
		if want := NextPacificMidnight(before); v.Class != QuotaExhausted || !v.Until.Equal(want) {
			t.Errorf("%#v: got %v %v; want quota_exhausted %v", c, v.Class, v.Until, want)
		}
	}
}

func TestStreamError(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		ok      bool
		class   Class
		reason  string
	}{
		{"gemini data line", `data: {"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}`, true, Upstream,
			"503 UNAVAILABLE: The model is overloaded. Please try again later."},
		{"gemini raw pretty JSON", "{\n  \"error\": {\n    \"code\": 503,\n    \"message\": \"This model is currently experiencing high demand…\",\n    \"status\": \"UNAVAILABLE\"\n  }\n}\n", true, Upstream,
			"503 UNAVAILABLE: This model is currently experiencing high demand…"},
		{"gemini quota in stream", `data:{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}`, true, RateLimited,
			"429 RESOURCE_EXHAUSTED: Resource has been exhausted (e.g. check quota)."},
		{"openai server_error", `{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}`, true, Upstream,
			"500 server_error: The server had an error while processing your request. Sorry about that!"},
		{"openai rate limit", `{"error":{"message":"Rate limit reached. Please try again in 2s.","type":"tokens","code":"rate_limit_exceeded"}}`, true, RateLimited,
			"429 rate_limit_exceeded: Rate limit reached. Please try again in 2s."},
		{"anthropic overloaded", `{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}`, true, Upstream, "529 overloaded_error: Overloaded"},
		{"anthropic compat rate limit", `{"error":{"code":"rate_limit_error","message":"slow down","type":"invalid_request_error"}}`, true, RateLimited, "429 rate_limit_error: slow down"},
		{"unknown error", `{"error":{"message":"boom"}}`, true, Upstream, "500: boom"},
		{"gemini chunk", `data: {"candidates":[{"content":{"parts":[{"text":"error"}],"role":"model"},"index":0}]}`, false, Success, ""},
		{"anthropic ping", `{"type": "ping"}`, false, Success, ""},
		{"openai chunk with null error", `{"id":"x","choices":[],"error":null}`, false, Success, ""},
		{"done", `[DONE]`, false, Success, ""},
		{"garbage", "\xff\x00", false, Success, ""},
		{"empty", "", false, Success, ""},
	}
	c := testClassifier()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := c.StreamError([]byte(tt.payload))
			if ok != tt.ok || v.Class != tt.class || v.Reason != tt.reason {
				t.Errorf("StreamError = %v, %v %q; want %v, %v %q", ok, v.Class, v.Reason, tt.ok, tt.class, tt.reason)
			}
		})
	}
}

// TestHostileBodies: deep nesting, many fields and long strings are read in
// linear time and bounded memory.
func TestHostileBodies(t *testing.T) {
	bodies := map[string]string{
		"deep arrays":        strings.Repeat("[", 32<<10) + strings.Repeat("1,", 16<<10),
		"deep objects":       strings.Repeat(`{"a":`, 10<<10) + strings.Repeat(`"x",`, 6<<10),
		"deep error objects": strings.Repeat(`[{"error":`, 6<<10) + strings.Repeat(`"x",`, 6<<10),
		"many reasons":       `{"error":{"details":[` + strings.Repeat(`{"reason":"X"},`, 4<<10) + `]}}`,
		"long message":       `{"error":{"message":"` + strings.Repeat("ab1 ", 64<<10) + `"}}`,
	}
	c := testClassifier()
	start := time.Now()
	for name, b := range bodies {
		v := c.Response(429, nil, []byte(b))
		if v.Class != RateLimited {
			t.Errorf("%s: %v", name, v.Class)
		}
		c.StreamError([]byte(b))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
	f := parseBody([]byte(bodies["many reasons"]))
	if len(f.reasons) != maxList {
		t.Errorf("kept %d reasons, want %d", len(f.reasons), maxList)
	}
}
