package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/provider"
)

// relayState carries one relayed request through the reverse proxy.
type relayState struct {
	prov   *provider.Provider
	entry  *pool.Entry
	target *url.URL
	body   []byte

	status  int             // upstream status, once headers arrived
	lastErr *pool.LastError // a failed answer, for the key's statistics
	proxErr error           // the transport failed
}

type relayKey struct{}

// bufferPool recycles the buffers the reverse proxy copies bodies through.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufferPool) Put(p []byte) { b.p.Put(&p) }

func (s *Server) newReverseProxy() *httputil.ReverseProxy {
	bp := &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
	return &httputil.ReverseProxy{
		Rewrite:        s.rewrite,
		Transport:      s.cfg.Transport,
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

func (s *Server) handleRelay(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	name := r.PathValue("provider")
	prov, ok := s.providers.Get(name)
	if !ok {
		s.unknownProvider(w, http.StatusNotFound, name)
		return
	}
	if !s.cfg.AllowAnonymous && !s.tokens.has(clientToken(r)) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{
			"error": "Invalid or missing client token",
			"hint":  "Send a client token where your SDK sends its API key (Authorization: Bearer, x-goog-api-key, x-api-key or ?key=)",
		})
		return
	}
	q := r.URL.Query()
	strategy, err := pool.ParseStrategy(q.Get("strategy"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, adminapi.Error{Error: errorText(err), Provider: name})
		return
	}
	rest := strings.TrimPrefix(r.URL.EscapedPath(), "/api/"+name+"/")
	target, err := prov.Target(rest, q, "strategy", "key")
	if err != nil {
		writeJSON(w, http.StatusBadRequest, adminapi.Error{Error: "Invalid relay path", Provider: name})
		return
	}
	body, status, msg := s.readBody(w, r)
	if status != 0 {
		writeJSON(w, status, adminapi.Error{Error: msg, Provider: name})
		return
	}
	e := s.pool.Pick(name, strategy)
	if e == nil {
		w.Header().Set("X-Should-Retry", "false")
		writeJSON(w, http.StatusServiceUnavailable, adminapi.Error{
			Error: "No available API keys", Provider: name, Strategy: strategy.String(),
			Suggestion: "Please add more keys or wait for rate limit reset",
		})
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "relay", slog.String("provider", name),
			slog.String("strategy", strategy.String()), slog.Int("status", http.StatusServiceUnavailable),
			slog.String("error", "no available keys"))
		return
	}
	st := &relayState{prov: prov, entry: e, target: target, body: body}
	completed := false
	defer func() {
		s.finish(r, st, strategy, start, completed)
	}()
	s.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), relayKey{}, st)))
	completed = true
}

// readBody buffers the request body, up to MaxBodyBytes, so a retry can
// resend it and a stream never reads from a closed inbound body. A non-zero
// status reports why it could not.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, string) {
	max := s.cfg.MaxBodyBytes
	tooLarge := "Request body is larger than " + strconv.FormatInt(max, 10) + " bytes (MAX_BODY_BYTES)"
	if r.ContentLength > max {
		return nil, http.StatusRequestEntityTooLarge, tooLarge
	}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, 0, ""
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, max)); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, http.StatusRequestEntityTooLarge, tooLarge
		}
		return nil, http.StatusBadRequest, "Could not read the request body"
	}
	return buf.Bytes(), 0, ""
}

// rewrite points the outbound request at the upstream with the pool key in
// place of the client's credentials.
func (s *Server) rewrite(pr *httputil.ProxyRequest) {
	st := pr.In.Context().Value(relayKey{}).(*relayState)
	out := pr.Out
	out.URL = st.target
	out.Host = ""
	for _, h := range clientCredentialHeaders {
		out.Header.Del(h)
	}
	out.Header.Del("X-Admin-Key")
	out.Header.Del("Cookie")
	out.Header.Del("Origin")
	st.prov.SetKey(out.Header, out.URL, st.entry.Secret())
	if len(st.body) == 0 {
		out.Body, out.ContentLength, out.GetBody = http.NoBody, 0, nil
		return
	}
	body := st.body
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
}

// maxErrorPeek is how much of an error body is read to describe it.
const maxErrorPeek = 8 << 10

func (s *Server) modifyResponse(res *http.Response) error {
	st := res.Request.Context().Value(relayKey{}).(*relayState)
	st.status = res.StatusCode
	res.Header.Set("X-KeyPool-Key-Id", st.entry.ID())
	if res.StatusCode >= 400 {
		peek, _ := io.ReadAll(io.LimitReader(res.Body, maxErrorPeek))
		res.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(peek), res.Body), res.Body}
		st.lastErr = &pool.LastError{
			Status:  res.StatusCode,
			Message: scrub(upstreamMessage(peek, res.StatusCode), st.entry.Secret()),
			At:      s.cfg.Now().UTC(),
		}
	}
	return nil
}

// proxyError answers when the upstream could not be reached or failed
// before its response headers.
func (s *Server) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	st := r.Context().Value(relayKey{}).(*relayState)
	st.proxErr = err
	if r.Context().Err() != nil {
		// The client went away; nobody is listening.
		return
	}
	status, msg := http.StatusBadGateway, "Upstream request failed"
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		status, msg = http.StatusGatewayTimeout, "Upstream timed out"
	}
	detail := scrub(transportDetail(err), st.entry.Secret())
	st.status = status
	st.lastErr = &pool.LastError{Status: status, Message: msg + ": " + detail, At: s.cfg.Now().UTC()}
	writeJSON(w, status, map[string]string{"error": msg, "provider": st.prov.Name, "detail": detail})
}

// transportDetail describes a transport error without its URL, which may
// carry a key in its query.
func transportDetail(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return truncate(err.Error(), 200)
}

// finish records the request's outcome on its key and logs one line.
func (s *Server) finish(r *http.Request, st *relayState, strategy pool.Strategy, start time.Time, completed bool) {
	var o pool.Outcome
	status := st.status
	switch {
	case st.proxErr != nil && r.Context().Err() != nil:
		o.Aborted = true
		status = 499
	case !completed:
		// The response broke after it started: never a success.
		o.Error = &pool.LastError{Status: status, Message: "response interrupted mid-stream", At: s.cfg.Now().UTC()}
	case st.lastErr != nil:
		o.Error = st.lastErr
	default:
		o.Success = status < 400
	}
	st.entry.Finish(o)
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "relay",
		slog.String("provider", st.prov.Name),
		slog.String("strategy", strategy.String()),
		slog.String("key", st.entry.ID()),
		slog.Int("status", status),
		slog.Float64("latency_ms", float64(time.Since(start).Microseconds())/1000),
		slog.Bool("interrupted", !completed),
	)
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
