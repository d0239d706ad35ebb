//go:build js

package bridge

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"syscall/js"
)

// App is what a host drives.
type App struct {
	Handler http.Handler
	// Tick does what is due now (usage flush, shared-store sync); hosts
	// without background execution (Workers) call it after requests and
	// from a Cron Trigger. Nil: nothing to do.
	Tick func(ctx context.Context) error
	// Shutdown flushes everything and stops background work.
	Shutdown func(ctx context.Context) error
	// Banner prints where the host listens.
	Banner func(host string, port int)
}

// ErrClientGone is what Write returns after the client hung up.
var ErrClientGone = errors.New("bridge: the client closed the connection")

// streamChunk is how much a streamed response gathers before it blocks on
// the client; a Flush hands over less.
const streamChunk = 64 << 10

type exchange struct {
	header http.Header
	status int
	buf    []byte
	done   js.Value // called once with the response head (and the body if complete)
	// started: head handed to JavaScript; the rest streams.
	started bool
	chunks  chan []byte
	gone    chan struct{}
	goneMu  sync.Once
	cancel  context.CancelFunc
}

var (
	mu        sync.Mutex
	exchanges = map[int]*exchange{}
	uint8Arr  = js.Global().Get("Uint8Array")
)

// Export publishes globalThis.__keypool and tells the host it is ready by
// calling globalThis.__keypoolReady, then blocks forever: the Go program
// lives as long as the host.
func Export(app App) {
	api := js.Global().Get("Object").New()
	api.Set("handle", js.FuncOf(func(_ js.Value, a []js.Value) any {
		handle(app.Handler, a[0].Int(), a[1].String(), a[2].String(), a[3].String(), a[4], a[5].String(), a[6])
		return nil
	}))
	api.Set("pull", js.FuncOf(func(_ js.Value, a []js.Value) any {
		pull(a[0].Int(), a[1])
		return nil
	}))
	api.Set("cancel", js.FuncOf(func(_ js.Value, a []js.Value) any {
		mu.Lock()
		x := exchanges[a[0].Int()]
		delete(exchanges, a[0].Int())
		mu.Unlock()
		if x != nil {
			x.hangUp()
		}
		return nil
	}))
	run := func(f func(context.Context) error, done js.Value) {
		go func() {
			var err error
			if f != nil {
				err = f(context.Background())
			}
			if err != nil {
				done.Invoke(err.Error())
			} else {
				done.Invoke(js.Null())
			}
		}()
	}
	api.Set("tick", js.FuncOf(func(_ js.Value, a []js.Value) any { run(app.Tick, a[0]); return nil }))
	api.Set("shutdown", js.FuncOf(func(_ js.Value, a []js.Value) any { run(app.Shutdown, a[0]); return nil }))
	api.Set("banner", js.FuncOf(func(_ js.Value, a []js.Value) any {
		if app.Banner != nil {
			app.Banner(a[0].String(), a[1].Int())
		}
		return nil
	}))
	js.Global().Set("__keypool", api)
	if ready := js.Global().Get("__keypoolReady"); ready.Type() == js.TypeFunction {
		ready.Invoke(api)
	}
	select {}
}

// Fail reports a start-up error to the host (globalThis.__keypoolFailed)
// and blocks, so the host can answer with it instead of a dead isolate.
func Fail(err error) {
	if f := js.Global().Get("__keypoolFailed"); f.Type() == js.TypeFunction {
		f.Invoke(err.Error())
	}
	select {}
}

func handle(h http.Handler, id int, method, rawURL, headers string, body js.Value, remote string, done js.Value) {
	u, err := url.Parse(rawURL)
	if err != nil {
		done.Invoke(http.StatusBadRequest, "content-type: text/plain; charset=utf-8\n", toJS([]byte("bad request URL\n")))
		return
	}
	var b []byte
	if body.Truthy() {
		b = make([]byte, body.Length())
		js.CopyBytesToGo(b, body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := (&http.Request{
		Method: method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: ParseHeaders(headers), Host: u.Host, RemoteAddr: remote, RequestURI: u.RequestURI(),
		ContentLength: int64(len(b)), Body: http.NoBody,
	}).WithContext(ctx)
	if len(b) > 0 {
		r.Body = readCloser{bytes.NewReader(b)}
	}
	r.Header.Del("Host")
	x := &exchange{header: http.Header{}, done: done, gone: make(chan struct{}), cancel: cancel}
	mu.Lock()
	exchanges[id] = x
	mu.Unlock()
	go func() {
		defer func() {
			mu.Lock()
			delete(exchanges, id)
			mu.Unlock()
			cancel()
		}()
		h.ServeHTTP(x, r)
		x.finish()
	}()
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

func pull(id int, got js.Value) {
	mu.Lock()
	x := exchanges[id]
	mu.Unlock()
	if x == nil || x.chunks == nil {
		got.Invoke(js.Null())
		return
	}
	go func() {
		select {
		case c, ok := <-x.chunks:
			if ok {
				got.Invoke(toJS(c))
				return
			}
		case <-x.gone:
		}
		got.Invoke(js.Null())
	}()
}

func toJS(b []byte) js.Value {
	if len(b) == 0 {
		return js.Null()
	}
	a := uint8Arr.New(len(b))
	js.CopyBytesToJS(a, b)
	return a
}

// ParseHeaders reads "name: value" lines (\n or \r\n).
func ParseHeaders(s string) http.Header {
	h := make(http.Header, strings.Count(s, "\n")+1)
	for line := range strings.SplitSeq(s, "\n") {
		name, value, ok := strings.Cut(strings.TrimSuffix(line, "\r"), ":")
		if !ok || name == "" {
			continue
		}
		k := textproto.CanonicalMIMEHeaderKey(name)
		h[k] = append(h[k], strings.TrimLeft(value, " \t"))
	}
	return h
}

// FormatHeaders writes h as "name: value" lines, leaving out hop-by-hop
// fields and Content-Length, which the host sets itself.
func FormatHeaders(h http.Header) string {
	var b strings.Builder
	for k, vs := range h {
		switch k {
		case "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Trailer":
			continue
		}
		for _, v := range vs {
			b.WriteString(k)
			b.WriteString(": ")
			b.WriteString(v)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func (x *exchange) Header() http.Header { return x.header }

func (x *exchange) WriteHeader(code int) {
	if x.status != 0 || code < 200 {
		return
	}
	x.status = code
}

func (x *exchange) Write(p []byte) (int, error) {
	if x.status == 0 {
		x.WriteHeader(http.StatusOK)
	}
	select {
	case <-x.gone:
		return 0, ErrClientGone
	default:
	}
	x.buf = append(x.buf, p...)
	if len(x.buf) >= streamChunk {
		if err := x.FlushError(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Flush hands what was written to the client.
func (x *exchange) Flush() { _ = x.FlushError() }

// FlushError is Flush that reports a client that hung up.
func (x *exchange) FlushError() error {
	if x.status == 0 {
		x.WriteHeader(http.StatusOK)
	}
	if !x.started {
		x.started = true
		x.chunks = make(chan []byte)
		x.done.Invoke(x.status, FormatHeaders(x.header), js.Undefined())
	}
	if len(x.buf) == 0 {
		return nil
	}
	c := x.buf
	x.buf = nil
	select {
	case x.chunks <- c:
		return nil
	case <-x.gone:
		return ErrClientGone
	}
}

func (x *exchange) finish() {
	if x.status == 0 {
		x.WriteHeader(http.StatusOK)
	}
	if !x.started {
		x.started = true
		x.done.Invoke(x.status, FormatHeaders(x.header), toJS(x.buf))
		return
	}
	if x.FlushError() == nil {
		close(x.chunks)
	}
}

func (x *exchange) hangUp() {
	x.goneMu.Do(func() {
		close(x.gone)
		x.cancel()
	})
}
