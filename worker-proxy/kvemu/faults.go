package kvemu

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Fault is a misbehaviour injected in front of the API. Faults are checked in
// the order they were injected; the first that matches a request applies.
type Fault struct {
	// Status to answer with (429, 500, 502, 503, ...). 0 adds only Latency:
	// the request is then served normally.
	Status int
	// Code and Message of the error in the JSON body. Defaults: 971 "Please
	// wait and consider throttling your request speed" for 429, 10001 and
	// the status text otherwise; Code 10048 defaults its message to the
	// daily-limit wording, so Fault{Status: 429, Code: CodeDailyLimit}
	// reproduces the free plan's daily-limit error.
	Code    int
	Message string
	// RetryAfter > 0 sets the Retry-After header (whole seconds, rounded up).
	RetryAfter time.Duration
	// Latency delays the answer, in real time, whatever Options.Now says.
	// A client that gives up first ends the wait.
	Latency time.Duration
	// HTML answers with an HTML error page (Content-Type text/html) instead
	// of the JSON envelope, as Cloudflare's edge does for some 5xx.
	HTML bool
	// Count is how many matching requests the fault applies to; 0 applies
	// it until ClearFaults.
	Count int
	// After lets this many matching requests through, served normally,
	// before the fault applies: After 3 with Methods PUT and Paths
	// "/bulk" fails the fourth bulk write (an interruption half-way).
	After int
	// Paths, if set, limits the fault to requests whose escaped path
	// contains one of these substrings (e.g. "/values/", "/bulk").
	Paths []string
	// Methods, if set, limits the fault to these HTTP methods.
	Methods []string
}

type faultState struct {
	f      Fault
	left   int // remaining uses when f.Count > 0
	passed int // matching requests let through, up to f.After
}

// InjectFault adds a fault.
func (e *Emulator) InjectFault(f Fault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = append(e.faults, &faultState{f: f, left: f.Count})
}

// ClearFaults removes every fault.
func (e *Emulator) ClearFaults() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = nil
}

func (f *Fault) matches(r *http.Request) bool {
	if len(f.Methods) > 0 && !containsFold(f.Methods, r.Method) {
		return false
	}
	if len(f.Paths) == 0 {
		return true
	}
	p := r.URL.EscapedPath()
	for _, s := range f.Paths {
		if strings.Contains(p, s) {
			return true
		}
	}
	return false
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// takeFault returns the fault for r, using one of its Count.
func (e *Emulator) takeFault(r *http.Request) *Fault {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, fs := range e.faults {
		if !fs.f.matches(r) {
			continue
		}
		if fs.passed < fs.f.After {
			fs.passed++
			return nil
		}
		f := fs.f
		if f.Count > 0 {
			fs.left--
			if fs.left <= 0 {
				e.faults = append(e.faults[:i:i], e.faults[i+1:]...)
			}
		}
		if f.Status != 0 {
			e.counts.Faulted++
		}
		return &f
	}
	return nil
}

// apply waits out the latency and writes the fault's answer; it reports
// whether the request should still be served.
func (f *Fault) apply(w http.ResponseWriter, r *http.Request) bool {
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return false
		}
	}
	if f.Status == 0 {
		return true
	}
	if f.HTML {
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(int64((f.RetryAfter+time.Second-1)/time.Second)))
		}
		text := fmt.Sprintf("%d %s", f.Status, http.StatusText(f.Status))
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.WriteHeader(f.Status)
		fmt.Fprintf(w, "<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n<center><h1>%s</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n", text, text)
		return false
	}
	code, msg := f.Code, f.Message
	if code == 0 {
		code = CodeInternal
		if f.Status == http.StatusTooManyRequests {
			code = CodeRateLimited
		}
	}
	if msg == "" {
		switch code {
		case CodeRateLimited:
			msg = MsgRateLimited
		case CodeDailyLimit:
			msg = MsgDailyLimit
		default:
			msg = strings.ToLower(http.StatusText(f.Status))
		}
	}
	writeError(w, &apiErr{status: f.Status, code: code, msg: msg, retryAfter: f.RetryAfter})
	return false
}
