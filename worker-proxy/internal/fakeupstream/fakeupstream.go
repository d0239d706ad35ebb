// Package fakeupstream is a local fake of the HTTP APIs of Google Gemini
// (native and OpenAI-compatible), OpenAI and Anthropic, for end-to-end tests
// of the proxy and for load benchmarks.
//
// It answers with the providers' real status codes, headers, body shapes and
// stream framings, including their error bodies (see
// shared/notes/provider-errors.md), and lets a test choose, per API key, how
// the "upstream" treats that key (see [Behavior]). The hot path does no
// logging and no regexp matching; bodies are rendered from templates compiled
// once.
//
// # Routing
//
// One server plays all providers; the provider is chosen by path:
//
//	/v1beta/openai/...                       Gemini, OpenAI-compatible endpoint
//	/v1beta/..., /v1alpha/...                Gemini native
//	POST /v1/models/{model}:{method}         Gemini native (v1)
//	/v1/messages                             Anthropic
//	GET /v1/models, GET /v1/models/{id}      Anthropic if the request has x-api-key or
//	                                         anthropic-version, Gemini if it has
//	                                         x-goog-api-key or ?key=, OpenAI otherwise
//	any other /v1/...                        OpenAI
//
// So a proxy under test can use these base URLs: Gemini URL+"/v1beta",
// Gemini OpenAI-compatible URL+"/v1beta/openai", OpenAI URL+"/v1",
// Anthropic URL+"/v1".
//
// Served endpoints:
//
//	Gemini:  POST models/{m}:generateContent, POST models/{m}:streamGenerateContent
//	         (SSE with ?alt=sse, else a streamed JSON array), GET models, GET models/{m}
//	Gemini OpenAI-compatible: POST chat/completions, POST embeddings, GET models, GET models/{m}
//	OpenAI:  POST chat/completions, POST embeddings, GET models, GET models/{id}
//	Anthropic: POST messages, GET models, GET models/{id}
//
// # Keys
//
// The key is read where the provider expects it: Gemini native from
// x-goog-api-key, else ?key=; Gemini OpenAI-compatible from Authorization:
// Bearer, else x-goog-api-key or ?key=; OpenAI from Authorization: Bearer;
// Anthropic from x-api-key. A request without a key gets the provider's
// "no key" error. A Gemini request carrying both a Bearer token and a key gets
// 400 "Multiple authentication credentials received"; a native Gemini request
// with only a Bearer token gets 401 ACCESS_TOKEN_TYPE_UNSUPPORTED, as the real
// API answers an API key sent as an OAuth token. Any other key is valid unless
// [Server.SetBehavior] says otherwise. Response bodies never contain a
// received key; OpenAI's invalid-key message shows a masked fragment only, as
// the real API does.
//
// # Answers
//
// The answer text is [AnswerText](model); a streamed answer has
// Options.StreamChunks chunks, chunk i carrying [ChunkText](model, i).
// Token counts are deterministic: prompt tokens are len(body)/4+1, completion
// tokens len(text)/4+1 summed over the text sent.
package fakeupstream

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a [Server]. The zero value is usable.
type Options struct {
	// StreamChunks is the number of text chunks in a streamed answer
	// (default 5).
	StreamChunks int
	// ChunkInterval is the delay between two streamed chunks (default 0).
	ChunkInterval time.Duration
	// Latency is the delay before the response headers of every request
	// (default 0).
	Latency time.Duration
	// Record keeps a copy of every request for [Server.Requests]. Leave it
	// off for benchmarks.
	Record bool
}

// Behavior is how the fake upstream treats requests made with one key.
//
// Invalid and Suspended apply to every request of the key; the other error
// behaviours apply to generation and embedding requests only, since listing
// models does not consume quota (the real APIs answer it for an exhausted
// key).
type Behavior int

const (
	// OK answers normally. It is the behaviour of every key not set.
	OK Behavior = iota
	// RateLimited is a per-minute rate limit. Gemini: 429
	// RESOURCE_EXHAUSTED with QuotaFailure (…PerMinute… quotaId) and
	// RetryInfo retryDelay "26s", no Retry-After header. OpenAI: 429
	// rate_limit_exceeded with x-ratelimit-remaining-requests 0 and
	// x-ratelimit-reset-requests 20s. Anthropic: 429 rate_limit_error with
	// retry-after: 20 and x-should-retry: true.
	RateLimited
	// DailyQuota is a long-lived quota exhaustion. Gemini: 429 with the
	// per-day quotaId GenerateRequestsPerDayPerProjectPerModel and a
	// retryDelay of the time left until midnight Pacific (for example
	// "39043s"). OpenAI: 429 insufficient_quota. Anthropic, which has no
	// daily quota: its usage-limit answer, 400 invalid_request_error "You
	// have reached your specified API usage limits. You will regain access
	// on <first of next month> at 00:00 UTC."
	DailyQuota
	// Invalid is an unknown key. Gemini: 400 INVALID_ARGUMENT
	// API_KEY_INVALID. OpenAI: 401 invalid_api_key. Anthropic: 401
	// authentication_error "invalid x-api-key".
	Invalid
	// Suspended is a key whose project or account was disabled. Gemini:
	// 403 PERMISSION_DENIED CONSUMER_SUSPENDED. OpenAI: 401
	// account_deactivated. Anthropic: 400 invalid_request_error "This
	// organization has been disabled."
	Suspended
	// Overloaded is a transient capacity error. Gemini: 503 UNAVAILABLE
	// "The model is overloaded. Please try again later." OpenAI: 503
	// server_error. Anthropic: 529 overloaded_error.
	Overloaded
	// InternalError is a server failure. Gemini: 500 INTERNAL. OpenAI: 500
	// server_error. Anthropic: 500 api_error.
	InternalError
	// MidStreamError answers a streamed request with 200 and the first
	// chunk, then the provider's in-stream error, then ends the stream:
	// Gemini a `data: {"error":{…503 UNAVAILABLE…}}` event, OpenAI a
	// `data: {"error":{…server_error…}}` event without [DONE], Anthropic
	// `event: error` with overloaded_error. Requests that do not stream get
	// the Overloaded answer.
	MidStreamError
)

var behaviorNames = [...]string{"OK", "RateLimited", "DailyQuota", "Invalid", "Suspended", "Overloaded", "InternalError", "MidStreamError"}

func (b Behavior) String() string {
	if b >= 0 && int(b) < len(behaviorNames) {
		return behaviorNames[b]
	}
	return "Behavior(" + strconv.Itoa(int(b)) + ")"
}

// Provider names the API a request was routed to.
type Provider string

// The providers the fake plays.
const (
	Gemini       Provider = "gemini"        // Gemini native API
	GeminiOpenAI Provider = "gemini-openai" // Gemini's OpenAI-compatible endpoint
	OpenAI       Provider = "openai"
	Anthropic    Provider = "anthropic"
)

// Recorded is one request as the fake upstream received it.
type Recorded struct {
	Provider Provider // "" if the path matched no provider
	Method   string
	Path     string // decoded URL path
	RawQuery string
	Header   http.Header // a copy of the request headers
	Body     []byte
	Key      string // the API key found where the provider expects it, "" if none
}

// Server is a running fake upstream.
type Server struct {
	// URL is the server's base URL, http://127.0.0.1:port without a
	// trailing slash.
	URL string

	opts      Options
	srv       *http.Server
	done      chan struct{}
	closeOnce sync.Once
	count     atomic.Int64
	ids       idGen

	bmu       sync.Mutex // serialises writers of behaviors
	behaviors atomic.Pointer[map[string]Behavior]

	recMu sync.Mutex
	recs  []Recorded

	gateOn  atomic.Bool
	gateMu  sync.Mutex
	permits int
	wake    chan struct{} // closed and replaced whenever the gate changes
}

// Start starts a fake upstream listening on 127.0.0.1 on a free port.
func Start(opts Options) (*Server, error) {
	if opts.StreamChunks <= 0 {
		opts.StreamChunks = 5
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{
		URL:  "http://" + ln.Addr().String(),
		opts: opts,
		done: make(chan struct{}),
		wake: make(chan struct{}),
		ids:  idGen{seed: rand.Uint64()},
	}
	s.behaviors.Store(&map[string]Behavior{})
	// Idle connections stay open like a real API's (well past the proxy's
	// reuse), so tests never race a connection the fake is closing.
	s.srv = &http.Server{Handler: handler{s}, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute}
	go s.srv.Serve(ln)
	return s, nil
}

// Close stops the server. Streams waiting on the gate or between chunks end
// at once. Close waits up to a second for running handlers to return.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if s.srv.Shutdown(ctx) != nil {
			s.srv.Close()
		}
	})
}

// SetBehavior sets how requests made with key are answered. Setting OK
// removes the key's entry. It is safe to call while requests are served.
func (s *Server) SetBehavior(key string, b Behavior) {
	s.bmu.Lock()
	defer s.bmu.Unlock()
	old := *s.behaviors.Load()
	m := make(map[string]Behavior, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	if b == OK {
		delete(m, key)
	} else {
		m[key] = b
	}
	s.behaviors.Store(&m)
}

func (s *Server) behavior(key string) Behavior {
	return (*s.behaviors.Load())[key]
}

// Requests returns copies of the requests received since Start or the last
// Reset, oldest first. It is empty unless Options.Record is set.
func (s *Server) Requests() []Recorded {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	out := make([]Recorded, len(s.recs))
	for i, r := range s.recs {
		r.Header = r.Header.Clone()
		r.Body = slices.Clone(r.Body)
		out[i] = r
	}
	return out
}

// Count returns how many requests the server has received since Start,
// recorded or not. Reset does not clear it.
func (s *Server) Count() int64 { return s.count.Load() }

// Reset forgets the recorded requests, sets every key back to OK, and
// opens the gate (dropping unused releases).
func (s *Server) Reset() {
	s.recMu.Lock()
	s.recs = nil
	s.recMu.Unlock()
	s.bmu.Lock()
	s.behaviors.Store(&map[string]Behavior{})
	s.bmu.Unlock()
	s.GateStreams(false)
}

// GateStreams turns the stream gate on or off. While it is on, every
// streaming answer blocks after each text chunk it has sent and flushed
// until [Server.Release] is called (or the request or the server ends), so a
// stream of n chunks needs n releases to finish: the events that close the
// stream (finish chunk, usage, [DONE], message_stop…) follow the release of
// the last chunk. The opening events (OpenAI's role chunk, Anthropic's
// message_start…) are sent with chunk 0. Turning the gate off lets waiting
// streams run on and drops unused releases.
func (s *Server) GateStreams(on bool) {
	s.gateMu.Lock()
	defer s.gateMu.Unlock()
	s.gateOn.Store(on)
	s.permits = 0
	close(s.wake)
	s.wake = make(chan struct{})
}

// Release lets one gated stream send its next chunk. A release given while
// no stream waits is kept for the next stream that does. It does nothing
// while the gate is off.
func (s *Server) Release() {
	s.gateMu.Lock()
	defer s.gateMu.Unlock()
	if !s.gateOn.Load() {
		return
	}
	s.permits++
	close(s.wake)
	s.wake = make(chan struct{})
}

// waitGate blocks while the gate holds the stream. It reports false if the
// request or the server ended first.
func (s *Server) waitGate(ctx context.Context) bool {
	for s.gateOn.Load() {
		s.gateMu.Lock()
		if !s.gateOn.Load() {
			s.gateMu.Unlock()
			break
		}
		if s.permits > 0 {
			s.permits--
			s.gateMu.Unlock()
			break
		}
		wake := s.wake
		s.gateMu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return false
		case <-s.done:
			return false
		}
	}
	return true
}

// sleep waits d; it reports false if the request or the server ended first.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	}
}

// AnswerText is the text of a non-streamed answer for model.
func AnswerText(model string) string {
	return "Hello from the fake upstream (model " + model + ")"
}

// ChunkText is the text of chunk i of a streamed answer for model.
func ChunkText(model string, i int) string {
	return "[chunk " + strconv.Itoa(i) + "] Hello from the fake upstream (model " + model + ")\n"
}

func tokens(n int) int64 { return int64(n/4 + 1) }

// endpoint is what a request asks of its provider.
type endpoint uint8

const (
	epNotFound   endpoint = iota
	epGenerate            // Gemini :generateContent
	epStream              // Gemini :streamGenerateContent
	epChat                // OpenAI-style chat/completions
	epEmbeddings          // OpenAI-style embeddings
	epMessages            // Anthropic messages
	epModels              // list models
	epModel               // get one model
)

func (e endpoint) method() string {
	if e == epModels || e == epModel {
		return http.MethodGet
	}
	return http.MethodPost
}

// route maps a request to a provider and an endpoint; arg is the model
// named in the path, if any.
func route(r *http.Request) (p Provider, ep endpoint, arg string) {
	path := r.URL.Path
	switch {
	case strings.HasPrefix(path, "/v1beta/openai/"):
		ep, arg = openAIEndpoint(path[len("/v1beta/openai/"):])
		return GeminiOpenAI, ep, arg
	case strings.HasPrefix(path, "/v1beta/"):
		ep, arg = geminiEndpoint(path[len("/v1beta/"):])
		return Gemini, ep, arg
	case strings.HasPrefix(path, "/v1alpha/"):
		ep, arg = geminiEndpoint(path[len("/v1alpha/"):])
		return Gemini, ep, arg
	case strings.HasPrefix(path, "/v1/"):
		rest := path[len("/v1/"):]
		if rest == "messages" {
			return Anthropic, epMessages, ""
		}
		if rest == "models" || strings.HasPrefix(rest, "models/") {
			if r.Method == http.MethodPost && strings.IndexByte(rest, ':') >= 0 {
				ep, arg = geminiEndpoint(rest)
				return Gemini, ep, arg
			}
			h := r.Header
			switch {
			case h.Get("X-Api-Key") != "" || h.Get("Anthropic-Version") != "":
				p = Anthropic
			case googKey(r) != "":
				ep, arg = geminiEndpoint(rest)
				return Gemini, ep, arg
			default:
				p = OpenAI
			}
			ep, arg = openAIEndpoint(rest)
			return p, ep, arg
		}
		ep, arg = openAIEndpoint(rest)
		return OpenAI, ep, arg
	}
	return "", epNotFound, ""
}

func geminiEndpoint(rest string) (endpoint, string) {
	if rest == "models" {
		return epModels, ""
	}
	name, ok := strings.CutPrefix(rest, "models/")
	if !ok || name == "" || strings.IndexByte(name, '/') >= 0 {
		return epNotFound, ""
	}
	i := strings.LastIndexByte(name, ':')
	if i < 0 {
		return epModel, name
	}
	model, method := name[:i], name[i+1:]
	if model == "" {
		return epNotFound, ""
	}
	switch method {
	case "generateContent":
		return epGenerate, model
	case "streamGenerateContent":
		return epStream, model
	}
	return epNotFound, ""
}

func openAIEndpoint(rest string) (endpoint, string) {
	switch rest {
	case "chat/completions":
		return epChat, ""
	case "embeddings":
		return epEmbeddings, ""
	case "models":
		return epModels, ""
	}
	if id, ok := strings.CutPrefix(rest, "models/"); ok && id != "" {
		return epModel, id
	}
	return epNotFound, ""
}

// authProblem is what is wrong with a request's credentials, if anything.
type authProblem uint8

const (
	authOK authProblem = iota
	authNoKey
	authBearerOnly // Gemini native: a Bearer token but no key
	authMultiple   // Gemini: a Bearer token and a key
)

func bearer(h http.Header) (string, bool) {
	v := h.Get("Authorization")
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:]), true
	}
	return "", v != ""
}

func googKey(r *http.Request) string {
	if k := r.Header.Get("X-Goog-Api-Key"); k != "" {
		return k
	}
	if strings.Contains(r.URL.RawQuery, "key=") {
		return r.URL.Query().Get("key")
	}
	return ""
}

func credentials(p Provider, r *http.Request) (string, authProblem) {
	switch p {
	case Gemini:
		k := googKey(r)
		_, auth := bearer(r.Header)
		switch {
		case k != "" && auth:
			return k, authMultiple
		case k != "":
			return k, authOK
		case auth:
			return "", authBearerOnly
		}
	case GeminiOpenAI:
		b, _ := bearer(r.Header)
		k := googKey(r)
		switch {
		case b != "" && k != "":
			return b, authMultiple
		case b != "":
			return b, authOK
		case k != "":
			return k, authOK
		}
	case OpenAI:
		if b, _ := bearer(r.Header); b != "" {
			return b, authOK
		}
	case Anthropic:
		if k := r.Header.Get("X-Api-Key"); k != "" {
			return k, authOK
		}
	}
	return "", authNoKey
}

// maxBody bounds the request bodies the fake reads.
const maxBody = 32 << 20

// call is the state of one request; calls are pooled.
type call struct {
	s    *Server
	w    http.ResponseWriter
	r    *http.Request
	p    Provider
	ep   endpoint
	key  string
	auth authProblem
	body []byte
	bbuf bytes.Buffer
	out  []byte // response scratch
	v    vals
}

var callPool = sync.Pool{New: func() any { return &call{out: make([]byte, 0, 4096)} }}

type handler struct{ s *Server }

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := h.s
	s.count.Add(1)
	c := callPool.Get().(*call)
	defer func() {
		if c.bbuf.Cap() > 1<<20 {
			c.bbuf = bytes.Buffer{}
		}
		if cap(c.out) > 1<<20 {
			c.out = make([]byte, 0, 4096)
		}
		*c = call{bbuf: c.bbuf, out: c.out[:0]}
		callPool.Put(c)
	}()
	c.s, c.w, c.r = s, w, r
	c.bbuf.Reset()
	var model string
	c.p, c.ep, model = route(r)
	c.v.model = model
	if r.Body != nil && r.Method != http.MethodGet && r.Method != http.MethodHead {
		if _, err := c.bbuf.ReadFrom(io.LimitReader(r.Body, maxBody+1)); err != nil {
			return // the client went away
		}
		if c.bbuf.Len() > maxBody {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
	}
	c.body = c.bbuf.Bytes()
	if c.p != "" {
		c.key, c.auth = credentials(c.p, r)
	}
	if s.opts.Record {
		rec := Recorded{
			Provider: c.p, Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
			Header: r.Header.Clone(), Body: slices.Clone(c.body), Key: c.key,
		}
		s.recMu.Lock()
		s.recs = append(s.recs, rec)
		s.recMu.Unlock()
	}
	if !s.sleep(r.Context(), s.opts.Latency) {
		return
	}
	switch c.p {
	case Gemini, GeminiOpenAI:
		c.serveGemini()
	case OpenAI:
		c.serveOpenAI()
	case Anthropic:
		c.serveAnthropic()
	default:
		http.NotFound(w, r)
	}
}

// failure is an error answer, independent of the provider.
type failure uint8

const (
	fNone failure = iota
	fRateLimited
	fDailyQuota
	fInvalid
	fSuspended
	fOverloaded
	fInternal
	fNoKey
	fBearerOnly
	fMultipleCreds
	fBadJSON
	fNoModel
	fNoMaxTokens
	fNoVersion
	fNotFound
	fBadMethod
	nFailures
)

// authFailure returns the failure for the request's credentials and the
// key-wide behaviours (Invalid, Suspended).
func (c *call) authFailure() failure {
	switch c.auth {
	case authNoKey:
		return fNoKey
	case authBearerOnly:
		return fBearerOnly
	case authMultiple:
		return fMultipleCreds
	}
	switch c.s.behavior(c.key) {
	case Invalid:
		return fInvalid
	case Suspended:
		return fSuspended
	}
	return fNone
}

// useFailure returns the failure for the key's behaviour on a generation or
// embedding request; midStream reports MidStreamError on a streamed one.
func (c *call) useFailure(streaming bool) (f failure, midStream bool) {
	switch c.s.behavior(c.key) {
	case RateLimited:
		return fRateLimited, false
	case DailyQuota:
		return fDailyQuota, false
	case Overloaded:
		return fOverloaded, false
	case InternalError:
		return fInternal, false
	case MidStreamError:
		if streaming {
			return fNone, true
		}
		return fOverloaded, false
	}
	return fNone, false
}

// setHeaders copies precomputed header values into the response headers.
func setHeaders(h http.Header, hs []header) {
	for _, kv := range hs {
		h[kv.k] = kv.v
	}
}

type header struct {
	k string
	v []string
}

func hdrs(kv ...string) []header {
	out := make([]header, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, header{http.CanonicalHeaderKey(kv[i]), []string{kv[i+1]}})
	}
	return out
}

// send writes a complete response with a precomputed content type.
func (c *call) send(status int, ctype []string, body []byte) {
	h := c.w.Header()
	h["Content-Type"] = ctype
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	c.w.WriteHeader(status)
	c.w.Write(body)
}

// stream is an answer being streamed to the client.
type stream struct {
	c *call
	f http.Flusher
}

func (c *call) startStream(ctype []string) stream {
	h := c.w.Header()
	h["Content-Type"] = ctype
	h["Cache-Control"] = noCache
	c.w.WriteHeader(http.StatusOK)
	f, _ := c.w.(http.Flusher)
	return stream{c, f}
}

var noCache = []string{"no-cache"}

// emit writes b and flushes; it reports false if the client is gone.
func (st stream) emit(b []byte) bool {
	if _, err := st.c.w.Write(b); err != nil {
		return false
	}
	if st.f != nil {
		st.f.Flush()
	}
	return true
}

// pause runs between two chunks: the gate, then the chunk interval.
func (st stream) pause() bool {
	s, ctx := st.c.s, st.c.r.Context()
	return s.waitGate(ctx) && s.sleep(ctx, s.opts.ChunkInterval)
}
