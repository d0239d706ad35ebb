package failure

import (
	"bytes"
	"encoding/json"
	"strings"
)

// maxBody is how much of an error body is examined.
const maxBody = 64 << 10

// maxList bounds the repeated fields kept from one body.
const maxList = 16

// maxDepth bounds the nesting read from one body.
const maxDepth = 32

// facts are the fields of a provider error body that classification uses.
//
// The three error shapes share the path error.*: Google
// {"error":{"code":429,"message","status","details":[…]}} (also wrapped in
// a JSON array by Gemini's OpenAI-compatible endpoint), OpenAI
// {"error":{"message","type","param","code"}} and Anthropic
// {"type":"error","error":{"type","message","details":{"error_code"}}}.
// Fields are matched by their key path with array levels skipped, so a value
// inside a string (a message echoing the request) can never pose as a field.
type facts struct {
	errObj  bool   // a top-level "error" member was seen
	errMsg  bool   // message came from error.message
	message string // error.message (or error as a string, or a top-level message/detail)
	code    string // error.code: Google's number, OpenAI's string
	status  string // error.status: Google's canonical code, e.g. RESOURCE_EXHAUSTED
	typ     string // error.type: OpenAI's or Anthropic's type

	reasons      []string // error.details[].reason (Google ErrorInfo)
	quotaIDs     []string // error.details[].violations[].quotaId
	quotaMetrics []string // error.details[].violations[].quotaMetric
	retryDelay   string   // error.details[].retryDelay (Google RetryInfo)
	quotaModels  []string // error.details[].violations[].quotaDimensions.model
	consumer     string   // error.details[].metadata.consumer (Google ErrorInfo), e.g. "projects/123"
	errorCodes   []string // any …error_code member (Anthropic error.details.error_code)
}

// parseBody extracts facts from body, which may be truncated, wrapped in an
// array, or not JSON at all: it keeps whatever complete tokens come before
// the first syntax error and never fails.
func parseBody(body []byte) facts {
	var f facts
	if len(body) > maxBody {
		body = body[:maxBody]
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 || (body[0] != '{' && body[0] != '[') {
		return f
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()

	type frame struct {
		obj     bool
		named   bool   // the container is the value of a member: its name is on path
		haveKey bool   // obj: the next token is the value of key
		key     string // obj: the current member name
	}
	var stack []frame
	var path []string // member names of the enclosing objects, arrays skipped
	// member handles one scalar, or the opening of a container, as the
	// value of the current member; it returns the member name ("" in an
	// array).
	member := func() string {
		if len(stack) == 0 {
			return ""
		}
		top := &stack[len(stack)-1]
		if !top.obj {
			return ""
		}
		top.haveKey = false
		return top.key
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return f
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if len(stack) == maxDepth {
					return f // real error bodies are a few levels deep
				}
				k := member()
				if k == "error" && len(path) == 0 {
					f.errObj = true
				}
				if k != "" {
					path = append(path, k)
				}
				stack = append(stack, frame{obj: t == '{', named: k != ""})
			default:
				if stack[len(stack)-1].named {
					path = path[:len(path)-1]
				}
				stack = stack[:len(stack)-1]
			}
		case string:
			if n := len(stack); n > 0 && stack[n-1].obj && !stack[n-1].haveKey {
				stack[n-1].key, stack[n-1].haveKey = t, true
				continue
			}
			f.add(path, member(), t)
		case json.Number:
			f.add(path, member(), t.String())
		default: // bool, nil
			member()
		}
	}
}

// add records the scalar v found at member key inside path.
func (f *facts) add(p []string, key, v string) {
	switch {
	case key == "error_code" && len(f.errorCodes) < maxList:
		f.errorCodes = append(f.errorCodes, v)
	case len(p) == 0:
		switch key {
		case "error":
			f.errObj = true
			setOnce(&f.message, v)
		case "message", "detail":
			setOnce(&f.message, v)
		}
	case len(p) == 1 && p[0] == "error":
		switch key {
		case "message":
			if !f.errMsg { // error.message wins over a top-level message
				f.message, f.errMsg = v, true
			}
		case "code":
			setOnce(&f.code, v)
		case "status":
			setOnce(&f.status, v)
		case "type":
			setOnce(&f.typ, v)
		}
	case len(p) == 2 && p[0] == "error" && p[1] == "details":
		switch key {
		case "reason":
			if len(f.reasons) < maxList {
				f.reasons = append(f.reasons, v)
			}
		case "retryDelay":
			setOnce(&f.retryDelay, v)
		}
	case len(p) == 3 && p[0] == "error" && p[1] == "details" && p[2] == "metadata":
		if key == "consumer" {
			setOnce(&f.consumer, v)
		}
	case len(p) == 4 && p[0] == "error" && p[1] == "details" && p[2] == "violations" && p[3] == "quotaDimensions":
		if key == "model" && len(f.quotaModels) < maxList {
			f.quotaModels = append(f.quotaModels, v)
		}
	case len(p) == 3 && p[0] == "error" && p[1] == "details" && p[2] == "violations":
		switch key {
		case "quotaId":
			if len(f.quotaIDs) < maxList {
				f.quotaIDs = append(f.quotaIDs, v)
			}
		case "quotaMetric":
			if len(f.quotaMetrics) < maxList {
				f.quotaMetrics = append(f.quotaMetrics, v)
			}
		}
	}
}

func setOnce(dst *string, v string) {
	if *dst == "" {
		*dst = v
	}
}

// hasReason reports whether the body carries one of the Google ErrorInfo
// reasons.
func (f *facts) hasReason(set map[string]bool) (string, bool) {
	for _, r := range f.reasons {
		if set[r] {
			return r, true
		}
	}
	return "", false
}

// perDay returns the first per-day quota the body names: a violation whose
// quotaId contains "PerDay" or whose quotaMetric contains "per_day", or a
// "…per_day…" metric in the message.
func (f *facts) perDay() (string, bool) {
	for _, id := range f.quotaIDs {
		if strings.Contains(strings.ToLower(id), "perday") {
			return id, true
		}
	}
	for _, m := range f.quotaMetrics {
		if strings.Contains(strings.ToLower(m), "per_day") {
			return lastSegment(m), true
		}
	}
	// The message lists every violation; it also covers violations cut
	// off by truncation.
	if i := strings.Index(f.message, "per_day"); i >= 0 {
		start, end := i, i
		for start > 0 && isMetricByte(f.message[start-1]) {
			start--
		}
		for end < len(f.message) && isMetricByte(f.message[end]) {
			end++
		}
		return lastSegment(f.message[start:end]), true
	}
	return "", false
}

func isMetricByte(b byte) bool {
	return b == '_' || b == '.' || b == '/' || b == '-' ||
		'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
}

func lastSegment(s string) string {
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// quota returns the first quota the body names, for reasons.
func (f *facts) quota() string {
	if len(f.quotaIDs) > 0 {
		return f.quotaIDs[0]
	}
	if len(f.quotaMetrics) > 0 {
		return lastSegment(f.quotaMetrics[0])
	}
	return ""
}

// label is the most specific code the body gives: a Google ErrorInfo
// reason, a non-numeric error.code (OpenAI), error.status (Google) or
// error.type (OpenAI, Anthropic).
func (f *facts) label() string {
	if len(f.reasons) > 0 {
		return f.reasons[0]
	}
	if f.code != "" && !isNumber(f.code) {
		return f.code
	}
	if f.status != "" {
		return f.status
	}
	return f.typ
}

func isNumber(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// is reports whether error.code or error.type equals one of the values.
func (f *facts) is(values ...string) bool {
	for _, v := range values {
		if f.code == v || f.typ == v {
			return true
		}
	}
	return false
}

func (f *facts) hasErrorCode(v string) bool {
	for _, c := range f.errorCodes {
		if c == v {
			return true
		}
	}
	return false
}

// msgHasPrefix reports whether the message starts with one of the prefixes,
// ignoring case. Only prefixes are matched where a message may echo the
// client's request later on (Gemini's "Invalid JSON payload received.
// Unknown name …"), so a client cannot make its own request look like a dead
// key.
func (f *facts) msgHasPrefix(prefixes ...string) bool {
	for _, p := range prefixes {
		if len(f.message) >= len(p) && strings.EqualFold(f.message[:len(p)], p) {
			return true
		}
	}
	return false
}

// project returns the Google Cloud project number the body names as the
// consumer of an ErrorInfo ("projects/895908428397" gives "895908428397"),
// or "".
func (f *facts) project() string {
	n, ok := strings.CutPrefix(f.consumer, "projects/")
	if !ok || !isNumber(n) || len(n) > 32 {
		return ""
	}
	return n
}

// perProject reports whether a named quota is counted per Google Cloud
// project (quotaId "…PerProject…"), so every key of the project met it.
func (f *facts) perProject() bool {
	for _, id := range f.quotaIDs {
		if strings.Contains(strings.ToLower(id), "perproject") {
			return true
		}
	}
	return false
}

// quotaModel returns the model the first violation's quotaDimensions name,
// or "".
func (f *facts) quotaModel() string {
	if len(f.quotaModels) > 0 {
		return f.quotaModels[0]
	}
	return ""
}

// namesLimit reports whether a 429 says which limit of the key's account
// it hit: Google quota violations or ErrorInfo, OpenAI's
// rate_limit_exceeded (type requests or tokens), Anthropic's
// rate_limit_error.
func (f *facts) namesLimit() bool {
	return len(f.quotaIDs) > 0 || len(f.quotaMetrics) > 0 || len(f.reasons) > 0 ||
		f.is("rate_limit_exceeded", "requests", "tokens", "rate_limit_error")
}
