//go:build js

package bridge

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall/js"
)

// FetchTransport returns a RoundTripper that sends requests with the
// host's fetch(). Where the entry script installed fetch.js
// (globalThis.__keypoolFetch), headers cross the JavaScript boundary as
// one string each way and a body chunk as one value, which costs far fewer
// JavaScript values per request than net/http's own fetch transport.
// Cancelling a request's context aborts the fetch. Without fetch.js every
// call fails with an error saying so: net/http's Transport is left out of
// the edge build on purpose (its TLS, HTTP/2 and dialing code is several
// MB of wasm that cannot reach the network from js/wasm anyway).
func FetchTransport() http.RoundTripper {
	fetchOnce.Do(func() {
		api := js.Global().Get("__keypoolFetch")
		if api.Type() != js.TypeObject {
			return
		}
		api.Call("init", js.FuncOf(onFetchHead), js.FuncOf(onFetchChunk))
		fetchAPI = api
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

func onFetchHead(_ js.Value, a []js.Value) any {
	if c, ok := fetchCalls.Load(a[0].Int()); ok {
		h := fetchHead{status: a[1].Int(), headers: a[2].String()}
		if a[3].Truthy() {
			h.err = a[3].String()
		}
		if len(a) > 4 && a[4].Truthy() {
			h.whole = true
			if n := a[4].Length(); n > 0 {
				h.body = make([]byte, n)
				js.CopyBytesToGo(h.body, a[4])
			}
		}
		c.(*fetchCall).head <- h
	}
	return nil
}

func onFetchChunk(_ js.Value, a []js.Value) any {
	if c, ok := fetchCalls.Load(a[0].Int()); ok {
		var m fetchChunk
		switch {
		case a[2].Truthy():
			m.err = a[2].String()
		case a[1].Truthy():
			m.data = make([]byte, a[1].Length())
			js.CopyBytesToGo(m.data, a[1])
		default:
			m.eof = true
		}
		c.(*fetchCall).chunk <- m
	}
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
	for k, vs := range req.Header {
		for _, v := range vs {
			head.WriteString(k)
			head.WriteString(": ")
			head.WriteString(v)
			head.WriteByte('\n')
		}
	}
	jsBody := js.Null()
	if len(body) > 0 {
		jsBody = toJS(body)
	}
	fetchAPI.Call("start", id, req.Method, req.URL.String(), head.String(), jsBody)
	var h fetchHead
	select {
	case h = <-c.head:
	case <-req.Context().Done():
		fetchAPI.Call("abort", id)
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
		Status: fmt.Sprintf("%d %s", h.status, http.StatusText(h.status)), StatusCode: h.status,
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
		fetchAPI.Call("read", b.id)
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
			fetchAPI.Call("abort", b.id)
		}
		fetchCalls.Delete(b.id)
	})
	return nil
}
