package server

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keypool/keypool/worker-proxy/failure"
	"github.com/keypool/keypool/worker-proxy/pool"
)

// failover is the relay's transport: it sends the request with the chosen
// key and, while nothing has reached the client, retries a failed attempt
// with another key as the failure policy says. Upstream trouble (5xx,
// timeouts, connection errors, a bare 429) is retried at most MaxRetries
// times; a refusal that singles out the key (invalid, suspended, out of
// credit or quota, rate limited with evidence) costs no retry, so a request
// reaches every key that can serve it. RetryBudget bounds both. It returns
// the last upstream answer when every try fails.
type failover struct {
	s    *Server
	base http.RoundTripper
}

var errFirstByteTimeout = errors.New("upstream stream sent no data in time")

func (f *failover) RoundTrip(req *http.Request) (*http.Response, error) {
	s := f.s
	st := stateOf(req.Context())
	for {
		base := f.base
		if len(s.cfg.KeyProxies) > 0 || st.entry.Proxy() != "" {
			base = s.transportFor(st.entry)
		}
		res, err := base.RoundTrip(req)
		// A stream (SSE, or any answer of unknown length, like Gemini's
		// JSON-array stream) must start within FirstByteTimeout.
		streaming := err == nil && res.StatusCode < 400 && (isEventStream(res) || res.ContentLength < 0)
		if streaming {
			res, err = s.awaitFirstByte(res)
		}
		var v failure.Verdict
		var peek []byte
		switch {
		case err != nil:
			v = s.classifier.Err(err)
			if req.Context().Err() != nil {
				v.Class = failure.Canceled
			}
		case res.StatusCode >= 400:
			peek, res.Body = peekBody(res.Body, maxErrorPeek)
			v = s.classifier.Response(res.StatusCode, res.Header, peek)
		default:
			if streaming {
				res.Body = &streamWatch{rc: res.Body, s: s, st: st}
			}
			return res, nil
		}
		st.verdict = v
		if v.Class == failure.Canceled {
			return res, err
		}
		act := s.policy.For(v.Class)
		// A refusal about the key takes the key out and costs no retry:
		// only upstream trouble counts against MaxRetries. The pool (each
		// key is tried once) and RetryBudget bound both.
		if !v.AboutKey {
			st.upstreamFails++
		}
		retry := act.Retry && st.upstreamFails <= s.cfg.MaxRetries &&
			time.Since(st.start) < s.cfg.RetryBudget && req.Context().Err() == nil
		act = s.judge(st, v, act, res, peek)
		retry = retry && act.Retry
		var next *pool.Entry
		if retry {
			next = s.pool.PickFor(st.prov.Name, s.pickModel(st), st.strategy, st.tried)
		}
		if next == nil {
			return res, err
		}
		if res != nil {
			io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
			res.Body.Close()
		}
		st.failed = append(st.failed, attemptOutcome{class: v.Class, status: attemptStatus(res)})
		st.entry, st.tried, st.finished = next, append(st.tried, next), false
		st.verdict = failure.Verdict{}
		req = retryRequest(req, st)
	}
}

// attemptStatus is a failed attempt's upstream status; 0 without an answer.
func attemptStatus(res *http.Response) int {
	if res == nil {
		return 0
	}
	return res.StatusCode
}

// retryRequest clones req for the next attempt with the current key.
func retryRequest(req *http.Request, st *relayState) *http.Request {
	r2 := req.Clone(req.Context())
	u := *st.target
	r2.URL = &u
	st.setKey(r2)
	if req.GetBody != nil {
		r2.Body, _ = req.GetBody()
	}
	return r2
}

// judge applies a failed attempt's verdict to its key: records the outcome,
// rests or disables the key, or counts it toward passive health. When most
// of the provider's keys fail the same way at once, the trouble is the
// upstream or the proxy's address, not the keys: judge then neither rests
// nor disables, and turns off the retry so one storm cannot burn the pool.
// It returns the action taken.
func (s *Server) judge(st *relayState, v failure.Verdict, act failure.Action, res *http.Response, peek []byte) failure.Action {
	e := st.entry
	now := s.cfg.Now()
	status := 0
	msg := v.Reason
	if res != nil {
		status = res.StatusCode
		if msg == "" {
			msg = upstreamMessage(peek, status)
		}
	} else {
		status = http.StatusBadGateway
		if msg == "" {
			msg = "upstream request failed"
		}
	}
	le := &pool.LastError{Status: status, Message: scrub(truncate(msg, 200), e.Secret()), At: now.UTC()}
	st.lastErr = le

	act = s.stormGuard(st.prov.Name, v, act, e, now)
	e.Finish(pool.Outcome{Error: le, Blame: act.Blame})
	st.finished = true
	s.act(st, e, v, act, le, now)
	return act
}

// stormGuard drops the key-blaming parts of act when most of the
// provider's keys fail the same way at once and the answers do not single
// out the key (5xx, IP or region blocks, a 429 naming no quota): then the
// upstream or the proxy's address is at fault, and resting or disabling
// more keys would only empty the pool. Retries stay, so a healthy key left
// still serves. Answers about the key (invalid, per-day quota, a named rate
// limit) always count, however many keys give them: a pool whose every key
// is out for the day is answered by the proxy itself until the reset.
func (s *Server) stormGuard(provider string, v failure.Verdict, act failure.Action, e *pool.Entry, now time.Time) failure.Action {
	if v.AboutKey {
		return act
	}
	if (act.Disable || act.Cooldown || act.Blame) && s.storms.hit(provider, v.Class, e, now, s.pool.Servable(provider)) {
		s.log.Warn("most keys fail the same way at once; not resting or disabling more",
			"provider", provider, "class", v.Class.String(), "key", e.ID())
		act.Disable, act.Cooldown, act.Blame = false, false, false
	}
	return act
}

// act rests, disables or passively penalizes a key after a failure of
// st's request whose outcome is already recorded. A rate limit or a
// per-model quota rests only the (key, model) pair (see restModels).
func (s *Server) act(st *relayState, e *pool.Entry, v failure.Verdict, act failure.Action, le *pool.LastError, now time.Time) {
	if v.Project != "" {
		s.learnProject(e, v.Project)
	}
	switch {
	case act.Disable:
		// Requests in flight on one key fail together: only the one that
		// disables it logs and saves the change.
		s.disableMu.Lock()
		already := e.Key().DisabledReason != ""
		k := s.pool.Disable(e, v.Class.String()+": "+le.Message, now)
		s.disableMu.Unlock()
		if already {
			return
		}
		s.log.Warn("key disabled", "provider", k.Provider, "key", k.ID, "reason", k.DisabledReason)
		s.persist(k)
	case act.Cooldown:
		until := v.Until
		if until.IsZero() || !until.After(now) {
			until = now.Add(s.cfg.DefaultCooldown)
		}
		models := restModels(st, v)
		rest := func(e *pool.Entry, reason string) {
			if len(models) == 0 {
				s.cool(e, until, reason)
			}
			for _, m := range models {
				s.coolModel(e, m, until, reason)
			}
		}
		rest(e, v.Class.String())
		if project := e.Project(); v.ProjectWide && project != "" {
			// The quota is the project's: every key of it met it.
			reason := v.Class.String() + " (project " + project + ")"
			for _, o := range s.pool.SameProject(st.prov.Name, project) {
				if o != e {
					rest(o, reason)
				}
			}
		}
	case act.Blame && e.ConsecutiveFailures() >= int64(s.cfg.PassiveFailures):
		s.cool(e, now.Add(s.cfg.PassiveCooldown), "passive health: "+v.Class.String())
	}
}

// streamWatch passes a stream through untouched while looking for an error
// event inside it (Gemini's `data: {"error":…}`, OpenAI's error event,
// Anthropic's `event: error`, or Gemini's error object pretty-printed over
// several lines outside SSE framing): the client sees it as the upstream
// sent it, and the key is charged with a failure instead of a success.
// Only chunks that contain "error" are parsed; an error line split across
// two reads is put together from a short carry.
type streamWatch struct {
	rc    io.ReadCloser
	s     *Server
	st    *relayState
	carry []byte
	// multi collects a pretty-printed `"error": {` object line by line
	// until its braces close; nil when not collecting.
	multi []byte
}

var errorMark = []byte(`"error"`)

func (w *streamWatch) Read(p []byte) (int, error) {
	n, err := w.rc.Read(p)
	if n > 0 && w.st.streamErr == nil && (len(w.carry) > 0 || w.multi != nil || bytes.Contains(p[:n], errorMark)) {
		w.inspect(p[:n])
	}
	return n, err
}

func (w *streamWatch) Close() error { return w.rc.Close() }

func (w *streamWatch) inspect(chunk []byte) {
	buf := chunk
	if len(w.carry) > 0 {
		buf = append(w.carry, chunk...)
		w.carry = nil
	}
	for len(buf) > 0 {
		line, rest, complete := bytes.Cut(buf, []byte("\n"))
		if !complete {
			if (w.multi != nil || bytes.Contains(line, errorMark)) && len(line) < maxErrorPeek {
				w.carry = append([]byte(nil), line...)
			}
			return
		}
		buf = rest
		if w.multi != nil {
			w.collect(line)
			continue
		}
		if !bytes.Contains(line, errorMark) {
			continue
		}
		payload := bytes.TrimSpace(line)
		payload = bytes.TrimSpace(bytes.TrimPrefix(payload, []byte("data:")))
		if v, ok := w.s.classifier.StreamError(payload); ok {
			w.st.streamErr = &v
			return
		}
		if bytes.HasPrefix(payload, errorMark) {
			// `"error": {` opening a pretty-printed object.
			w.multi = append([]byte("{"), payload...)
			w.collect(nil)
		}
	}
}

// collect adds one line to a pretty-printed error object and, once its
// braces balance, classifies `{"error": {…}}`.
func (w *streamWatch) collect(line []byte) {
	w.multi = append(w.multi, bytes.TrimSpace(line)...)
	if len(w.multi) > maxErrorPeek {
		w.multi = nil
		return
	}
	if jsonDepth(w.multi) > 1 {
		return
	}
	obj := append(bytes.TrimRight(w.multi, ","), '}')
	w.multi = nil
	if v, ok := w.s.classifier.StreamError(obj); ok {
		w.st.streamErr = &v
	}
}

// jsonDepth returns how many braces and brackets of b are still open,
// skipping those inside strings.
func jsonDepth(b []byte) int {
	depth, inString, escaped := 0, false, false
	for _, c := range b {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		}
	}
	return depth
}

// peekBody reads up to n bytes of body and returns them with a body that
// still yields everything.
func peekBody(body io.ReadCloser, n int64) ([]byte, io.ReadCloser) {
	peek, _ := io.ReadAll(io.LimitReader(body, n))
	return peek, struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(peek), body), body}
}

// maxErrorPeek is how much of an error body is read to classify it.
const maxErrorPeek = 8 << 10

// awaitFirstByte waits up to FirstByteTimeout for a stream's first data, so
// a stream that never starts fails over like any other failure. The bytes
// read are put back in front of the body. A timer closes the body if the
// wait runs out, which ends the read; no goroutine per stream.
func (s *Server) awaitFirstByte(res *http.Response) (*http.Response, error) {
	var timedOut atomic.Bool
	timer := time.AfterFunc(s.cfg.FirstByteTimeout, func() {
		timedOut.Store(true)
		res.Body.Close()
	})
	buf := make([]byte, 1024)
	n, err := res.Body.Read(buf)
	stopped := timer.Stop()
	if !stopped && timedOut.Load() && n == 0 {
		return nil, errFirstByteTimeout
	}
	if err != nil && err != io.EOF && n == 0 {
		res.Body.Close()
		return nil, err
	}
	rest := io.Reader(res.Body)
	if err == io.EOF {
		rest = eofReader{}
	}
	res.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(buf[:n]), rest), res.Body}
	return res, nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// storms notices when most of a provider's keys fail the same way within a
// short window. A hit costs O(1) amortised however many keys fail: when
// the upstream is down, every key of a large pool fails at once, and the
// relay must not slow down then.
type storms struct {
	window time.Duration
	mu     sync.Mutex
	recent map[stormKey]*stormWindow
}

func newStorms(window time.Duration) *storms {
	return &storms{window: window, recent: map[stormKey]*stormWindow{}}
}

type stormKey struct {
	provider string
	class    failure.Class
}

// stormWindow is the keys that failed one way within the window: each
// key's latest failure, and every failure in the order it came, so the
// expired ones leave from the front.
type stormWindow struct {
	latest map[*pool.Entry]time.Time
	hits   []stormHit // hits[head:] are in the window or not yet swept
	head   int
}

type stormHit struct {
	e  *pool.Entry
	at time.Time
}

// hit records a failure of class on key e and reports whether, counting it,
// at least half of the provider's servable keys (and at least 3) failed
// that way within the window.
func (t *storms) hit(provider string, class failure.Class, e *pool.Entry, now time.Time, servable int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := stormKey{provider, class}
	w := t.recent[k]
	if w == nil {
		w = &stormWindow{latest: map[*pool.Entry]time.Time{}}
		t.recent[k] = w
	}
	w.latest[e] = now
	w.hits = append(w.hits, stormHit{e, now})
	cutoff := now.Add(-t.window)
	for w.head < len(w.hits) && w.hits[w.head].at.Before(cutoff) {
		h := w.hits[w.head]
		w.hits[w.head] = stormHit{}
		w.head++
		if w.latest[h.e].Equal(h.at) { // not failed again since
			delete(w.latest, h.e)
		}
	}
	if w.head > len(w.hits)/2 { // reuse the slice's front half
		w.hits = w.hits[:copy(w.hits, w.hits[w.head:])]
		w.head = 0
	}
	threshold := max(3, (servable+1)/2)
	return len(w.latest) >= threshold
}

// learnProject records the project a provider's answer named for e (Google
// ErrorInfo consumer "projects/N") when e has none yet, and saves it.
func (s *Server) learnProject(e *pool.Entry, project string) {
	if e.Project() != "" {
		return
	}
	if k, ok := s.pool.SetProject(e, project); ok {
		s.log.Info("key project learned from the provider's answer", "provider", k.Provider, "key", k.ID, "project", project)
		s.persist(k)
	}
}
