//go:build js

package bridge

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall/js"
)

// FetchTransport returns a RoundTripper that sends requests with the
// host's fetch(). Where the entry script installed fetch.js
// (globalThis.__keypoolFetch), a request crosses the JavaScript boundary as
// numbers only (method, URL and headers one string and the body read from
// the wasm memory; see the package doc), and a small response with a known
// length comes back whole with its head. Cancelling a request's context
// aborts the fetch. Without fetch.js every call fails with an error saying
// so: net/http's Transport is left out of the edge build on purpose (its
// TLS, HTTP/2 and dialing code is several MB of wasm that cannot reach the
// network from js/wasm anyway).
func FetchTransport() http.RoundTripper {
	fetchOnce.Do(func() {
		api := js.Global().Get("__keypoolFetch")
		if api.Type() != js.TypeObject {
			return
		}
		api.Call("init", js.FuncOf(onFetchHead), js.FuncOf(onFetchChunk))
		fetchAPI = api
		fetchTake, fetchStart, fetchRead, fetchAbort = api.Get("take"), api.Get("start"), api.Get("read"), api.Get("abort")
	})
	if fetchAPI.IsUndefined() {
		return noFetch{}
	}
	return fetchTransport{}
}

var (
	fetchOnce  sync.Once
	fetchAPI   = js.Undefined()
	fetchSeq   atomic.Int64
	fetchCalls sync.Map // id → *fetchCall
	// fetch.js's functions, called with numbers only.
	fetchTake, fetchStart, fetchRead, fetchAbort js.Value
)

type fetchHead struct {
	status  int
	headers string
	err     string
	body    []byte
	whole   bool // body is all of it: fetch.js forgot the call
}

type fetchChunk struct {
	data []byte
	err  string
	eof  bool
}

type fetchCall struct {
	head  chan fetchHead
	chunk chan fetchChunk
}

// onFetchHead: fetch.js has the head of call a[0] (status a[1]), its
// headers (a[2] bytes) and, if a[4] is 1, the whole body (a[3] bytes); a[4]
// is 2 if the fetch failed (the message in place of the headers).
func onFetchHead(_ js.Value, a []js.Value) any {
	id, status, hn, bn, flags := a[0].Int(), a[1].Int(), a[2].Int(), a[3].Int(), a[4].Int()
	c, ok := fetchCalls.Load(id)
	if !ok {
		return nil
	}
	in := take(fetchTake, hn+bn)
	h := fetchHead{status: status, headers: string(in[:hn])}
	switch flags {
	case 1:
		h.whole, h.body = true, in[hn:]
	case 2:
		h.err, h.headers = h.headers, ""
	}
	c.(*fetchCall).head <- h
	return nil
}

// onFetchChunk: fetch.js read a[1] bytes of call a[0]'s body; a[2] is 1 at
// the end, 2 if reading failed (the message in place of the bytes).
func onFetchChunk(_ js.Value, a []js.Value) any {
	id, n, flags := a[0].Int(), a[1].Int(), a[2].Int()
	c, ok := fetchCalls.Load(id)
	if !ok {
		return nil
	}
	var m fetchChunk
	switch flags {
	case 0:
		m.data = take(fetchTake, n)
	case 1:
		m.eof = true
	default:
		m.err = string(take(fetchTake, n))
	}
	c.(*fetchCall).chunk <- m
	return nil
}

// noFetch is FetchTransport when the entry script did not install fetch.js.
type noFetch struct{}

func (noFetch) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	return nil, errors.New("fetch: globalThis.__keypoolFetch is missing: the entry script must call installFetchBridge from fetch.js before starting Go")
}

type fetchTransport struct{}

func (fetchTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("fetch: reading the request body: %w", err)
		}
		body = b
	}
	id := int(fetchSeq.Add(1) % (1 << 52))
	c := &fetchCall{head: make(chan fetchHead, 1), chunk: make(chan fetchChunk, 1)}
	fetchCalls.Store(id, c)
	var head strings.Builder
	head.WriteString(req.Method)
	head.WriteByte('\n')
	head.WriteString(req.URL.String())
	head.WriteByte('\n')
	for k, vs := range req.Header {
		for _, v := range vs {
			head.WriteString(k)
			head.WriteString(": ")
			head.WriteString(v)
			head.WriteByte('\n')
		}
	}
	meta := head.String()
	// fetch.js copies the bytes during the call.
	fetchStart.Invoke(id, saddr(meta), len(meta), baddr(body), len(body))
	runtime.KeepAlive(meta)
	runtime.KeepAlive(body)
	var h fetchHead
	select {
	case h = <-c.head:
	case <-req.Context().Done():
		fetchAbort.Invoke(id)
		fetchCalls.Delete(id)
		return nil, req.Context().Err()
	}
	if h.err != "" {
		fetchCalls.Delete(id)
		return nil, fmt.Errorf("fetch %s: %s", req.URL.Redacted(), h.err)
	}
	header := ParseHeaders(h.headers)
	cl := int64(-1)
	if v := header.Get("Content-Length"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			cl = n
		}
	}
	uncompressed := false
	if strings.EqualFold(header.Get("Content-Encoding"), "gzip") {
		// fetch() decoded the body but keeps the header (as net/http does).
		header.Del("Content-Encoding")
		header.Del("Content-Length")
		cl, uncompressed = -1, true
	}
	rb := &fetchBody{id: id, call: c, req: req}
	if h.whole {
		fetchCalls.Delete(id)
		rb.buf, rb.err, rb.done = h.body, io.EOF, true
	}
	return &http.Response{
		Status: strconv.Itoa(h.status) + " " + http.StatusText(h.status), StatusCode: h.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: header, ContentLength: cl, Uncompressed: uncompressed, Request: req,
		Body: rb,
	}, nil
}

// fetchBody reads a fetch response's body chunk by chunk, or hands out
// the whole body fetch.js read with the head.
type fetchBody struct {
	id   int
	call *fetchCall
	req  *http.Request
	buf  []byte
	err  error
	done bool // fetch.js forgot the call (body ended or failed there)
	once sync.Once
}

func (b *fetchBody) Read(p []byte) (int, error) {
	for len(b.buf) == 0 {
		if b.err != nil {
			return 0, b.err
		}
		fetchRead.Invoke(b.id)
		select {
		case m := <-b.call.chunk:
			switch {
			case m.err != "":
				b.err = errors.New("fetch: reading the response: " + m.err)
				b.done = true
			case m.eof:
				b.err = io.EOF
				b.done = true
			default:
				b.buf = m.data
			}
		case <-b.req.Context().Done():
			b.Close()
			b.err = b.req.Context().Err()
		}
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	return n, nil
}

func (b *fetchBody) Close() error {
	b.once.Do(func() {
		if !b.done {
			fetchAbort.Invoke(b.id)
		}
		fetchCalls.Delete(b.id)
	})
	return nil
}
