package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/failure"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/provider"
	"github.com/keypool/keypool/worker-proxy/redact"
	"github.com/keypool/keypool/worker-proxy/tokenusage"
	"github.com/keypool/keypool/worker-proxy/traffic"
)

// relayState carries one relayed request through the reverse proxy and its
// attempts. Only the request's own goroutines touch it, one at a time.
type relayState struct {
	prov     *provider.Provider
	compat   bool // the OpenAI-compatible API: key as CompatAuth
	strategy pool.Strategy
	target   *url.URL
	body     []byte
	start    time.Time
	token    string // the client's token, masked too in what it gets back

	entry    *pool.Entry   // the key of the current attempt
	tried    []*pool.Entry // every key tried, in order
	finished bool          // entry's outcome is already recorded

	// upstreamFails counts the attempts that failed for upstream trouble,
	// not for a refusal about the key: those MaxRetries bounds.
	upstreamFails int
	// session names the request's conversation for sticky keys; 0: none.
	session uint64

	status  int             // final status sent to the client
	lastErr *pool.LastError // the final attempt's failure, if any
	verdict failure.Verdict // the final attempt's classification
	proxErr error           // the final attempt's transport error

	streamErr *failure.Verdict // an error event inside a 200 stream

	// For the metrics and the request log (see observe.go):
	route  string           // "api" or "v1"
	model  string           // the model asked for, when the route knows it ("" : read from body or path)
	failed []attemptOutcome // each attempt that failed over to another key, in order
	ttfb   time.Duration    // arrival to the response's first byte; 0 if none
	// client is the caller's client token, nil when anonymous; authorization
	// may set it, else observe looks it up.
	client *tokenRef
	// promptTokens and completionTokens are the usage the upstream reported
	// for this request; the token usage counter fills them (0: unknown).
	promptTokens, completionTokens int64

	// keyScrub masks the current key in a successful answer.
	keyScrub redact.Scrubber

	// Token usage and client token settings (clientlimits.go): usage reads
	// the answer as it streams to the client (through usageR); account
	// copies its counts to promptTokens and completionTokens.
	usage   tokenusage.Counter
	usageR  tokenusage.Reader
	refused string // why the client token's settings refused it (refuse* codes), or ""

	// Room for the common case, in the state's own allocation: tried's
	// first keys, observe's attempt classes, and the model requestModel
	// found (read from the body once).
	triedBuf   [2]*pool.Entry
	classBuf   [4]string
	bodyModel  string
	bodyModelD bool // bodyModel is set (cleared when body is)
}

// secrets returns every secret the request used: each key tried and the
// client's token.
func (st *relayState) secrets() []string {
	out := make([]string, 0, len(st.tried)+1)
	for _, e := range st.tried {
		out = append(out, e.Secret())
	}
	return append(out, st.token)
}

type relayKey struct{}

func stateOf(ctx context.Context) *relayState { return ctx.Value(relayKey{}).(*relayState) }

// copyBufferSize is the size of the buffers responses are copied through.
const copyBufferSize = 32 << 10

// bufferPool recycles the buffers the reverse proxy copies bodies through.
// It holds them as array pointers, so putting one back allocates nothing
// (a pointer to a slice would).
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if a, ok := b.p.Get().(*[copyBufferSize]byte); ok {
		return a[:]
	}
	return new([copyBufferSize]byte)[:]
}

func (b *bufferPool) Put(p []byte) {
	if cap(p) == copyBufferSize {
		b.p.Put((*[copyBufferSize]byte)(p[:copyBufferSize]))
	}
}

func (s *Server) newReverseProxy() *httputil.ReverseProxy {
	bp := &bufferPool{}
	return &httputil.ReverseProxy{
		Rewrite:        s.rewrite,
		Transport:      &failover{s: s, base: s.cfg.Transport},
		ModifyResponse: s.modifyResponse,
		ErrorHandler:   s.proxyError,
		BufferPool:     bp,
		ErrorLog:       log.New(slogWriter{s.log}, "", 0),
	}
}

// slogWriter sends the reverse proxy's own log lines (a broken body copy)
// through slog. They carry no URL or header.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Warn(strings.TrimSpace(string(p)))
	return len(p), nil
}

// handleRelay serves /api/{provider}/{path}: the provider's native API.
func (s *Server) handleRelay(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	name := r.PathValue("provider")
	prov, ok := s.providers.Get(name)
	if !ok {
		s.unknownProvider(w, http.StatusNotFound, name)
		return
	}
	client, token, ok := s.authorizeClient(w, r)
	if !ok {
		return
	}
	var q url.Values
	if r.URL.RawQuery != "" {
		q = r.URL.Query()
	}
	strategy, err := pool.ParseStrategy(q.Get("strategy"))
	if err != nil {
		relayError(w, r, http.StatusBadRequest, "invalid_request_error", "invalid_strategy", errorText(err), map[string]any{"provider": name})
		return
	}
	rest := strings.TrimPrefix(r.URL.EscapedPath(), "/api/"+name+"/")
	target, err := prov.Target(rest, q, "strategy", "key")
	if err != nil {
		badPath(w, r, err)
		return
	}
	st := &relayState{prov: prov, strategy: strategy, target: target, start: start, token: token, client: client, route: "api"}
	style := styleFor(prov, false, rest)
	if !s.admitScope(w, st, style) {
		return
	}
	body, status, msg := s.readBody(w, r)
	if status != 0 {
		relayError(w, r, status, "invalid_request_error", "request_too_large", msg, map[string]any{"provider": name})
		return
	}
	// A model alias of this provider names the upstream's model.
	if st.target, body = s.nativeAlias(prov, target, body); st.target != target {
		rest = st.target.EscapedPath()
	}
	st.body, st.bodyModelD = body, false
	if st.model, err = findModel(st, rest); err != nil {
		if errors.Is(err, errOpaqueBody) {
			s.refuse(w, st, style, http.StatusForbidden, refuseModel, "Client token "+strconv.Quote(client.name)+": "+err.Error(), 0)
			return
		}
		clientRefusal(w, style, http.StatusBadRequest, "invalid_request_error", "Invalid request body: "+err.Error(), 0)
		return
	}
	if !s.admitRequest(w, st, style) {
		return
	}
	s.forward(w, r, st)
}

// authorizeClient checks the relay caller's token, answering 401 if bad.
// It returns the known token presented (nil when anonymous) and what the
// caller sent as its token.
func (s *Server) authorizeClient(w http.ResponseWriter, r *http.Request) (*tokenRef, string, bool) {
	tok := clientToken(r)
	if ref, ok := s.tokens.get(tok); ok {
		return &ref, tok, true
	}
	if s.cfg.AllowAnonymous {
		return nil, tok, true
	}
	relayError(w, r, http.StatusUnauthorized, "authentication_error", "invalid_client_token", "Invalid or missing client token", map[string]any{
		"hint": s.clientTokenHint(r),
	})
	return nil, "", false
}

// checkPaths refuses, before routing, a relay or front door path that
// provider.CheckPath refuses: the same rule for every route, and none of
// these paths is redirected or forwarded.
func (s *Server) checkPaths(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.EscapedPath()
		if strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/v1/") {
			if err := provider.CheckPath(p); err != nil {
				badPath(w, r, err)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// badPath answers 400 for a path provider.CheckPath refused, in the
// route's error shape.
func badPath(w http.ResponseWriter, r *http.Request, err error) {
	msg := "Invalid path: " + strings.TrimPrefix(err.Error(), provider.ErrBadPath.Error()+": ") +
		"; the relay forwards only plain path segments"
	relayError(w, r, http.StatusBadRequest, "invalid_request_error", "invalid_path", msg, nil)
}

// forward picks the first key and relays st's request, failing over to
// other keys as the transport decides.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, st *relayState) {
	if s.sticky != nil {
		st.session = sessionOf(r.Header, st.body, s.sticky.bodies)
	}
	e := s.stickyPick(st)
	if e == nil {
		e = s.pool.PickFor(st.prov.Name, s.pickModel(st), st.strategy, nil)
	}
	if e == nil {
		s.noKey(w, r, st)
		return
	}
	if st.tried == nil {
		st.tried = st.triedBuf[:0]
	}
	st.entry, st.tried = e, append(st.tried, e)
	completed := false
	defer func() { s.finish(r, st, completed) }()
	s.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), relayKey{}, st)))
	completed = true
	if st.session != 0 && st.status > 0 && st.status < 400 && st.streamErr == nil {
		s.sticky.put(st.prov.Name, st.session, st.entry, s.cfg.Now())
	}
}

// noKey answers when no key can serve: 503 in the seed's shape, with a
// Retry-After that tells when the first resting key comes back.
func (s *Server) noKey(w http.ResponseWriter, r *http.Request, st *relayState) {
	body := map[string]any{
		"provider": st.prov.Name, "strategy": st.strategy.String(),
		"suggestion": "Please add more keys or wait for rate limit reset",
	}
	if m := s.pickModel(st); m != "" {
		body["model"] = m
	}
	if until, ok := s.pool.NextAvailableFor(st.prov.Name, s.pickModel(st)); ok {
		secs := int64(math.Ceil(until.Sub(s.cfg.Now()).Seconds()))
		secs = max(secs, 1)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		body["retryAfter"] = secs
		body["availableAt"] = *adminapi.FormatTime(until)
		// SDKs sleep for Retry-After; past a minute, tell them not to.
		if secs > 60 {
			w.Header().Set("X-Should-Retry", "false")
		}
	} else {
		w.Header().Set("X-Should-Retry", "false")
	}
	relayError(w, r, http.StatusServiceUnavailable, "service_unavailable", "no_available_keys", "No available API keys", body)
	s.traffic.Record(st.prov.Name, traffic.Unserved, 0)
	s.account(st)
	s.observe(st, http.StatusServiceUnavailable)
	s.logRelay(r.Context(), slog.LevelWarn, slog.String("provider", st.prov.Name),
		slog.String("strategy", st.strategy.String()), slog.Int("status", http.StatusServiceUnavailable),
		slog.String("error", "no available keys"))
}

// rewrite points the outbound request at the upstream with the pool key in
// place of the client's credentials.
func (s *Server) rewrite(pr *httputil.ProxyRequest) {
	st := stateOf(pr.In.Context())
	out := pr.Out
	u := *st.target
	out.URL = &u
	out.Host = ""
	for h := range out.Header {
		if !st.forwards(h) {
			delete(out.Header, h)
		}
	}
	st.setKey(out)
	if len(st.body) == 0 {
		out.Body, out.ContentLength, out.GetBody = http.NoBody, 0, nil
		return
	}
	body := st.body
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
}

// forwardedHeaders are the client's request headers the relay passes on
// (canonical names), besides X-Stainless-* and the provider's default
// headers: what the SDKs send that the APIs read. Everything else stays
// behind: the client's credentials, cookies, Origin, account selectors
// that do not belong to the pool's keys (OpenAI-Organization,
// OpenAI-Project, X-Goog-User-Project), Accept-Encoding (the proxy reads
// what it returns, to mask keys) and any custom header.
var forwardedHeaders = map[string]bool{
	"Accept": true, "Accept-Language": true, "Content-Type": true, "Content-Encoding": true,
	"User-Agent": true, "Idempotency-Key": true, "X-Request-Id": true, "Traceparent": true, "Tracestate": true,
	"Openai-Beta": true, "Anthropic-Version": true, "Anthropic-Beta": true,
	"X-Goog-Api-Client": true, "X-Server-Timeout": true,
}

// forwards reports whether the client's header h (canonical) goes upstream.
func (st *relayState) forwards(h string) bool {
	if forwardedHeaders[h] || strings.HasPrefix(h, "X-Stainless-") {
		return true
	}
	for k := range st.prov.DefaultHeaders {
		if http.CanonicalHeaderKey(k) == h {
			return true
		}
	}
	return false
}

// setKey puts the current attempt's key on req (URL already a copy).
func (st *relayState) setKey(req *http.Request) {
	if st.compat {
		st.prov.CompatAuth.Apply(req.Header, req.URL, st.entry.Secret())
		return
	}
	st.prov.SetKey(req.Header, req.URL, st.entry.Secret())
}

// modifyResponse prepares the final upstream answer for the client: the
// proxy's own CORS headers only, every secret the request used masked in
// headers and body, and the key's id.
func (s *Server) modifyResponse(res *http.Response) error {
	st := stateOf(res.Request.Context())
	st.status = res.StatusCode
	st.ttfb = time.Since(st.start)
	for h := range res.Header {
		if strings.HasPrefix(h, "Access-Control-") {
			delete(res.Header, h)
		}
	}
	if res.StatusCode >= 400 {
		scrubError(res, redact.New(st.secrets()...))
	} else {
		// Only the key that served can be in a success; keep the length
		// the upstream declared.
		sc := &st.keyScrub
		sc.Add(st.entry.Secret())
		sc.Header(res.Header)
		st.usageR = tokenusage.Reader{R: sc.Reader(res.Body, res.ContentLength >= 0), C: &st.usage}
		res.Body = &st.usageR
	}
	// Canonical names, set directly: no allocation to canonicalize.
	res.Header["X-Keypool-Key-Id"] = []string{st.entry.ID()}
	if len(st.tried) > 1 {
		res.Header["X-Keypool-Attempts"] = []string{strconv.Itoa(len(st.tried))}
	}
	return nil
}

// proxyError answers when the last attempt failed before response headers.
func (s *Server) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	st := stateOf(r.Context())
	st.proxErr = err
	if r.Context().Err() != nil {
		// The client went away; nobody is listening.
		return
	}
	status, msg := http.StatusBadGateway, "Upstream request failed"
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errFirstByteTimeout) {
		status, msg = http.StatusGatewayTimeout, "Upstream timed out"
	}
	st.status = status
	detail := redact.New(st.secrets()...).String(transportDetail(err, st.entry.Secret()))
	relayError(w, r, status, "api_error", "upstream_unreachable", msg, map[string]any{"provider": st.prov.Name, "detail": detail, "attempts": len(st.tried)})
}

// maxScrubbedError is the longest error body masked whole, with an exact
// Content-Length; longer ones, or those of unknown length, are masked as
// they stream and sent without one.
const maxScrubbedError = 64 << 10

// scrubError masks sc's secrets in an error answer's headers and body.
func scrubError(res *http.Response, sc *redact.Scrubber) {
	sc.Header(res.Header)
	if res.ContentLength >= 0 && res.ContentLength <= maxScrubbedError {
		b, err := io.ReadAll(io.LimitReader(res.Body, maxScrubbedError+1))
		if err == nil && int64(len(b)) == res.ContentLength {
			b = sc.Bytes(b)
			res.Body = struct {
				io.Reader
				io.Closer
			}{bytes.NewReader(b), res.Body}
			res.ContentLength = int64(len(b))
			res.Header.Set("Content-Length", strconv.Itoa(len(b)))
			return
		}
		res.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b), res.Body), res.Body}
	}
	res.Body = sc.Reader(res.Body, false)
	res.ContentLength = -1
	res.Header.Del("Content-Length")
}

// transportDetail describes a transport error without its URL, which may
// carry a key in its query.
func transportDetail(err error, secret string) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return scrub(truncate(err.Error(), 200), secret)
}

// finish records the final attempt's outcome on its key (unless the
// transport already did) and logs one line for the request.
func (s *Server) finish(r *http.Request, st *relayState, completed bool) {
	status := st.status
	aborted := r.Context().Err() != nil && (st.proxErr != nil || !completed)
	if !st.finished {
		var o pool.Outcome
		switch {
		case st.streamErr != nil:
			// The upstream reported an error inside the stream (the client
			// may have hung up on reading it: still the key's failure).
			v := *st.streamErr
			now := s.cfg.Now()
			act := s.stormGuard(st.prov.Name, v, s.policy.For(v.Class), st.entry, now)
			o.Error = &pool.LastError{Status: status, Message: scrub("error inside the stream: "+v.Reason, st.entry.Secret()), At: now.UTC()}
			o.Blame = act.Blame
			st.entry.Finish(o)
			s.act(st, st.entry, v, act, o.Error, now)
			st.verdict = v
			st.finished = true
		case aborted:
			o.Aborted = true
			status = 499
		case !completed:
			// The response broke after it started: never a success.
			o.Error = &pool.LastError{Status: status, Message: "response interrupted mid-stream", At: s.cfg.Now().UTC()}
			o.Blame = true
		default:
			o.Success = status < 400
		}
		if !st.finished {
			st.entry.Finish(o)
		}
	}
	outcome := traffic.Success
	switch {
	case aborted && st.streamErr == nil:
		outcome, status = traffic.Abandoned, 499
	case !completed || st.streamErr != nil || status >= 400:
		outcome = traffic.Error
	}
	s.traffic.Record(st.prov.Name, outcome, len(st.tried)-1)
	s.account(st)
	attrs := []slog.Attr{
		slog.String("provider", st.prov.Name),
		slog.String("strategy", st.strategy.String()),
		slog.String("key", st.entry.ID()),
		slog.Int("status", status),
		slog.Float64("latency_ms", float64(time.Since(st.start).Microseconds())/1000),
	}
	if len(st.tried) > 1 {
		attrs = append(attrs, slog.Int("attempts", len(st.tried)))
	}
	if st.verdict.Class != failure.Success {
		attrs = append(attrs, slog.String("class", st.verdict.Class.String()))
	}
	if !completed {
		attrs = append(attrs, slog.Bool("interrupted", true))
	}
	s.logRelay(r.Context(), slog.LevelInfo, attrs...)
	s.observe(st, status)
}

// logRelay writes a request's "relay" log line. It hands the record to the
// handler itself: Logger.LogAttrs would also walk the stack for the
// caller's address, a cost on every request that no handler here uses.
func (s *Server) logRelay(ctx context.Context, level slog.Level, attrs ...slog.Attr) {
	h := s.log.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	rec := slog.NewRecord(time.Now(), level, "relay", 0)
	rec.AddAttrs(attrs...)
	_ = h.Handle(ctx, rec)
}

// isEventStream reports whether res is a server-sent event stream.
func isEventStream(res *http.Response) bool {
	ct := res.Header.Get("Content-Type")
	const sse = "text/event-stream"
	return len(ct) >= len(sse) && strings.EqualFold(ct[:len(sse)], sse) && (len(ct) == len(sse) || ct[len(sse)] == ';' || ct[len(sse)] == ' ')
}

// upstreamMessage extracts a short description from a provider's error
// body: Google's {"error":{...}} or [{"error":{...}}], OpenAI's and
// Anthropic's {"error":{"message","type"}}.
func upstreamMessage(body []byte, status int) string {
	type apiErr struct {
		Error struct {
			Message string `json:"message"`
			Status  string `json:"status"`
			Type    string `json:"type"`
		} `json:"error"`
	}
	var e apiErr
	b := bytes.TrimSpace(body)
	if len(b) > 0 && b[0] == '[' {
		var arr []apiErr
		if json.Unmarshal(b, &arr) == nil && len(arr) > 0 {
			e = arr[0]
		}
	} else {
		json.Unmarshal(b, &e)
	}
	kind := e.Error.Status
	if kind == "" {
		kind = e.Error.Type
	}
	msg := strings.Join(strings.Fields(e.Error.Message), " ")
	switch {
	case msg != "" && kind != "":
		msg = kind + ": " + msg
	case msg == "" && kind != "":
		msg = kind
	case msg == "":
		msg = http.StatusText(status)
	}
	return truncate(msg, 200)
}

// scrub masks secret wherever it appears in msg.
func scrub(msg, secret string) string {
	if secret != "" && strings.Contains(msg, secret) {
		msg = strings.ReplaceAll(msg, secret, pool.Mask(secret))
	}
	return msg
}
