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
// with another key as the failure policy says, within MaxRetries and
// RetryBudget. It returns the last upstream answer when every try fails.
type failover struct {
	s    *Server
	base http.RoundTripper
}

var errFirstByteTimeout = errors.New("upstream stream sent no data in time")

func (f *failover) RoundTrip(req *http.Request) (*http.Response, error) {
	s := f.s
	st := stateOf(req.Context())
	for {
		res, err := f.base.RoundTrip(req)
		if err == nil && res.StatusCode < 400 && isEventStream(res) {
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
			return res, nil
		}
		st.verdict = v
		if v.Class == failure.Canceled {
			return res, err
		}
		act := s.policy.For(v.Class)
		retry := act.Retry && len(st.tried) <= s.cfg.MaxRetries &&
			time.Since(st.start) < s.cfg.RetryBudget && req.Context().Err() == nil
		act = s.judge(st, v, act, res, peek)
		retry = retry && act.Retry
		var next *pool.Entry
		if retry {
			next = s.pool.PickExcept(st.prov.Name, st.strategy, st.tried)
		}
		if next == nil {
			return res, err
		}
		if res != nil {
			io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
			res.Body.Close()
		}
		st.entry, st.tried, st.finished = next, append(st.tried, next), false
		st.verdict = failure.Verdict{}
		req = retryRequest(req, st)
	}
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

	if (act.Disable || act.Cooldown || act.Blame) && s.storms.hit(st.prov.Name, v.Class, e, now, s.pool.Servable(st.prov.Name)) {
		s.log.Warn("most keys fail the same way at once; not resting or disabling more",
			"provider", st.prov.Name, "class", v.Class.String(), "key", e.ID())
		act.Disable, act.Cooldown, act.Blame = false, false, false
		if v.Class != failure.Upstream {
			act.Retry = false
		}
	}
	e.Finish(pool.Outcome{Error: le, Blame: act.Blame})
	st.finished = true
	switch {
	case act.Disable:
		k := s.pool.Disable(e, v.Class.String()+": "+le.Message, now)
		s.log.Warn("key disabled", "provider", k.Provider, "key", k.ID, "reason", k.DisabledReason)
		s.persist(k)
	case act.Cooldown:
		until := v.Until
		if until.IsZero() || !until.After(now) {
			until = now.Add(s.cfg.DefaultCooldown)
		}
		s.pool.Cool(e, until, v.Class.String())
	case act.Blame && e.ConsecutiveFailures() >= int64(s.cfg.PassiveFailures):
		s.pool.Cool(e, now.Add(s.cfg.PassiveCooldown), "passive health: "+v.Class.String())
	}
	return act
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
// short window.
type storms struct {
	window time.Duration
	mu     sync.Mutex
	recent map[stormKey]map[*pool.Entry]time.Time
}

type stormKey struct {
	provider string
	class    failure.Class
}

// hit records a failure of class on key e and reports whether, counting it,
// at least half of the provider's servable keys (and at least 3) failed
// that way within the window.
func (t *storms) hit(provider string, class failure.Class, e *pool.Entry, now time.Time, servable int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := stormKey{provider, class}
	m := t.recent[k]
	if m == nil {
		m = map[*pool.Entry]time.Time{}
		t.recent[k] = m
	}
	m[e] = now
	cutoff := now.Add(-t.window)
	for x, at := range m {
		if at.Before(cutoff) {
			delete(m, x)
		}
	}
	threshold := max(3, (servable+1)/2)
	return len(m) >= threshold
}
