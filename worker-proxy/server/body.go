package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// Request bodies. A client's Content-Length is a claim, not a size to
// allocate: a body is read under a deadline (Config.BodyReadTimeout), into
// a buffer that grows as bytes arrive, within a memory budget shared by
// every request (Config.MaxBodyMemory). A request refused before its body
// is read (bad credentials, an error) has its connection closed rather
// than its body drained.

// firstBodyChunk is the most allocated before any byte has arrived.
const firstBodyChunk = 16 << 10

// bodyBudget bounds the bytes of request bodies held at once, from the
// first byte received until the request ends.
type bodyBudget struct {
	limit int64
	used  atomic.Int64
}

// take reserves n bytes, or reports false if that would pass the limit.
func (b *bodyBudget) take(n int64) bool {
	if b.used.Add(n) > b.limit {
		b.used.Add(-n)
		return false
	}
	return true
}

func (b *bodyBudget) give(n int64) { b.used.Add(-n) }

// bodyCharge is what one request holds of the budget; guardBodies returns
// it when the request ends. It is the request's context too, which finds
// it under bodyChargeKey: one allocation for both.
type bodyCharge struct {
	context.Context
	n int64
}

type bodyChargeKey struct{}

func (c *bodyCharge) Value(key any) any {
	if _, ok := key.(bodyChargeKey); ok {
		return c
	}
	return c.Context.Value(key)
}

// setReadDeadline sets the read deadline of w's connection, where there is
// one (not in tests' recorders).
func setReadDeadline(w http.ResponseWriter, t time.Time) {
	if d, ok := w.(interface{ SetReadDeadline(time.Time) error }); ok {
		d.SetReadDeadline(t) // the common case, without an allocation
		return
	}
	_ = http.NewResponseController(w).SetReadDeadline(t)
}

// errBodyBudget reports that the body memory budget is spent.
var errBodyBudget = errors.New("request body memory budget spent")

// guardBodies starts the body deadline of every request that has a body,
// returns the request's share of the body budget when it ends, and closes
// the connection after an answer that starts before the body was read
// (refuseBody). It closes it too after a request framed by
// Transfer-Encoding: net/http drops a Content-Length sent alongside it
// before a handler can see it, and RFC 9112 §6.1 asks to close the
// connection after such a request.
func (s *Server) guardBodies(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength == 0 {
			h.ServeHTTP(w, r)
			return
		}
		if len(r.TransferEncoding) > 0 {
			w.Header().Set("Connection", "close")
		}
		setReadDeadline(w, time.Now().Add(s.cfg.BodyReadTimeout))
		c := &bodyCharge{Context: r.Context()}
		defer func() { s.bodies.give(c.n) }()
		r = r.WithContext(c)
		h.ServeHTTP(&bodyGuard{ResponseWriter: w, r: r}, r)
	})
}

// bodyGuard is the ResponseWriter of a request with a body. An answer that
// starts before the handler read the body (an error, a refusal, a route
// that takes no body) closes the connection rather than waiting for and
// draining a body that may never come, as net/http would.
type bodyGuard struct {
	http.ResponseWriter
	r       *http.Request
	read    bool // the body was read to its end (bodyRead)
	started bool
}

func (g *bodyGuard) WriteHeader(code int) {
	g.start(code)
	g.ResponseWriter.WriteHeader(code)
}

func (g *bodyGuard) Write(p []byte) (int, error) {
	g.start(http.StatusOK)
	return g.ResponseWriter.Write(p)
}

func (g *bodyGuard) start(code int) {
	if g.started || code < 200 {
		return
	}
	g.started = true
	if !g.read {
		refuseBody(g.ResponseWriter, g.r)
	}
}

// Unwrap lets http.ResponseController (flushes, deadlines) reach the
// connection.
func (g *bodyGuard) Unwrap() http.ResponseWriter { return g.ResponseWriter }

func (g *bodyGuard) Flush() {
	if f, ok := g.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (g *bodyGuard) SetReadDeadline(t time.Time) error {
	setReadDeadline(g.ResponseWriter, t)
	return nil
}

// refuseBody prepares the answer to a request whose body will not be read:
// the connection is closed after the response instead of waiting for, and
// draining, a body that may never come.
func refuseBody(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength == 0 {
		return
	}
	w.Header().Set("Connection", "close")
	setReadDeadline(w, time.Now())
}

// bodyRead ends the body deadline once a body is read, so the connection's
// watch for a client hanging up is not mistaken for a slow body.
func bodyRead(w http.ResponseWriter) {
	if g, ok := w.(*bodyGuard); ok {
		g.read = true
	}
	setReadDeadline(w, time.Time{})
}

// readAll reads a body of at most limit bytes (n, if the client announced
// it, and at most limit). Its buffer grows as bytes arrive; take, if set,
// must approve each growth. A body over limit is an *http.MaxBytesError.
func readAll(w http.ResponseWriter, body io.Reader, n, limit int64, take func(int64) bool) ([]byte, error) {
	want := limit
	if n >= 0 {
		want = n
	} else {
		body = http.MaxBytesReader(w, io.NopCloser(body), limit)
	}
	var buf []byte
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) == want {
				if n >= 0 {
					return buf, nil
				}
				// Unknown length, limit reached: one more byte is too many.
				var one [1]byte
				k, err := io.ReadFull(body, one[:])
				if k == 0 && errors.Is(err, io.EOF) {
					return buf, nil
				}
				if err == nil {
					err = &http.MaxBytesError{Limit: limit}
				}
				return nil, err
			}
			grow := min(max(int64(cap(buf)), firstBodyChunk), want-int64(len(buf)))
			if take != nil && !take(grow) {
				return nil, errBodyBudget
			}
			nb := make([]byte, len(buf), int64(cap(buf))+grow)
			copy(nb, buf)
			buf = nb
		}
		k, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if err == io.EOF {
			if n >= 0 && int64(len(buf)) < n {
				return nil, io.ErrUnexpectedEOF
			}
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
		if n >= 0 && int64(len(buf)) == n {
			return buf, nil
		}
	}
}

// readBody buffers the request body, up to MaxBodyBytes, so a retry can
// resend it and a stream never reads from a closed inbound body. A non-zero
// status reports why it could not (413, 408, 503 or 400) and the
// connection is then closed after the answer.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, string) {
	limit := s.cfg.MaxBodyBytes
	tooLarge := func() string {
		return "Request body is larger than " + strconv.FormatInt(limit, 10) + " bytes (MAX_BODY_BYTES)"
	}
	if r.ContentLength > limit {
		refuseBody(w, r)
		return nil, http.StatusRequestEntityTooLarge, tooLarge()
	}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, 0, ""
	}
	c, _ := r.Context().Value(bodyChargeKey{}).(*bodyCharge)
	var held int64
	take := func(n int64) bool {
		if !s.bodies.take(n) {
			return false
		}
		held += n
		return true
	}
	b, err := readAll(w, r.Body, r.ContentLength, limit, take)
	if c != nil && err == nil {
		c.n += held // returned when the request ends
	} else {
		s.bodies.give(held)
	}
	if err == nil {
		bodyRead(w)
		return b, 0, ""
	}
	status, msg := bodyError(err, limit, s.cfg.BodyReadTimeout)
	if status == http.StatusRequestEntityTooLarge {
		msg = tooLarge()
	}
	refuseBody(w, r)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	return nil, status, msg
}

// bodyError maps a failed body read to a status and a message for the
// client.
func bodyError(err error, limit int64, timeout time.Duration) (int, string) {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, "Request body is larger than " + strconv.FormatInt(limit, 10) + " bytes"
	case errors.Is(err, errBodyBudget):
		return http.StatusServiceUnavailable, "The proxy is receiving too many request bodies at once (MAX_BODY_MEMORY); try again in a moment"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return http.StatusRequestTimeout, fmt.Sprintf("The request body did not arrive within %s (BODY_READ_TIMEOUT)", timeout)
	}
	return http.StatusBadRequest, "Could not read the request body"
}
