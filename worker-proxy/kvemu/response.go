package kvemu

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"
)

type apiMessage struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// envelope is Cloudflare's v4 response body. Errors and Messages are never
// null; Result is null on failure.
type envelope struct {
	Success    bool         `json:"success"`
	Errors     []apiMessage `json:"errors"`
	Messages   []apiMessage `json:"messages"`
	Result     any          `json:"result"`
	ResultInfo any          `json:"result_info,omitempty"`
}

// apiErr is a failed request: the status, the first error and any more.
type apiErr struct {
	status     int
	code       int
	msg        string
	extra      []apiMessage
	retryAfter time.Duration // > 0: Retry-After header, whole seconds rounded up
}

func writeJSON(w http.ResponseWriter, status int, body envelope) {
	b, err := json.Marshal(body)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(envelope{Errors: []apiMessage{{Code: CodeInternal, Message: err.Error()}}, Messages: []apiMessage{}})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeResult(w http.ResponseWriter, result, info any) {
	writeJSON(w, http.StatusOK, envelope{Success: true, Errors: []apiMessage{}, Messages: []apiMessage{}, Result: result, ResultInfo: info})
}

func writeError(w http.ResponseWriter, e *apiErr) {
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(e.retryAfter.Seconds())), 10))
	}
	errs := append([]apiMessage{{Code: e.code, Message: e.msg}}, e.extra...)
	writeJSON(w, e.status, envelope{Errors: errs, Messages: []apiMessage{}})
}
