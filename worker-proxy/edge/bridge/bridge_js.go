//go:build js

package bridge

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"syscall/js"
	"time"
	"unsafe"
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

// streamChunk is how much a streamed response gathers before it is pushed
// to JavaScript; a Flush hands over less.
const streamChunk = 64 << 10

type exchange struct {
	id     int
	header http.Header
	status int
	buf    []byte
	// started: head handed to JavaScript; the rest streams.
	started bool
	drain   chan struct{} // JavaScript's queue has room again
	gone    chan struct{}
	goneMu  sync.Once
	cancel  context.CancelFunc
}

var (
	mu        sync.Mutex
	exchanges = map[int]*exchange{}
	// The functions of fetch.js's connect that Go answers through.
	wireTake, wireRespond, wirePush js.Value
)

// Export publishes globalThis.__keypool and tells the host it is ready by
// calling globalThis.__keypoolReady, then blocks forever: the Go program
// lives as long as the host.
func Export(app App) {
	api := js.Global().Get("Object").New()
	api.Set("init", js.FuncOf(func(_ js.Value, a []js.Value) any {
		wireTake, wireRespond, wirePush = a[0].Get("take"), a[0].Get("respond"), a[0].Get("push")
		return nil
	}))
	api.Set("handle", js.FuncOf(func(_ js.Value, a []js.Value) any {
		handle(app.Handler, a[0].Int(), a[1].Int(), a[2].Int())
		return nil
	}))
	api.Set("drain", js.FuncOf(func(_ js.Value, a []js.Value) any {
		mu.Lock()
		x := exchanges[a[0].Int()]
		mu.Unlock()
		if x != nil {
			select {
			case x.drain <- struct{}{}:
			default:
			}
		}
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

// take has JavaScript copy the data it announced into a new buffer of n
// bytes.
func take(fn js.Value, n int) []byte {
	b := make([]byte, n)
	if n > 0 {
		fn.Invoke(addr(b))
	}
	runtime.KeepAlive(b)
	return b
}

// addr is where b's bytes are in the wasm memory (b must not be empty).
func addr(b []byte) int { return int(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

// saddr is addr for a string (0 for an empty one).
func saddr(s string) int {
	if s == "" {
		return 0
	}
	return int(uintptr(unsafe.Pointer(unsafe.StringData(s))))
}

// baddr is addr that allows an empty b (0).
func baddr(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	return addr(b)
}

// handle serves request id, whose "method\nurl\nremote\nheader lines"
// (mlen bytes) and body (blen bytes) JavaScript copies in.
func handle(h http.Handler, id, mlen, blen int) {
	in := take(wireTake, mlen+blen)
	meta, b := string(in[:mlen]), in[mlen:]
	method, rest, _ := strings.Cut(meta, "\n")
	rawURL, rest, _ := strings.Cut(rest, "\n")
	remote, headers, _ := strings.Cut(rest, "\n")
	x := &exchange{id: id, header: http.Header{}, gone: make(chan struct{})}
	u, err := url.Parse(rawURL)
	if err != nil {
		x.status = http.StatusBadRequest
		x.header.Set("Content-Type", "text/plain; charset=utf-8")
		x.buf = []byte("bad request URL\n")
		x.finish()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	x.cancel = cancel
	r := (&http.Request{
		Method: method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: ParseHeaders(headers), Host: u.Host, RemoteAddr: remote, RequestURI: u.RequestURI(),
		ContentLength: int64(len(b)), Body: http.NoBody,
	}).WithContext(ctx)
	if len(b) > 0 {
		r.Body = readCloser{bytes.NewReader(b)}
	}
	r.Header.Del("Host")
	mu.Lock()
	exchanges[id] = x
	mu.Unlock()
	work(func() {
		defer func() {
			mu.Lock()
			delete(exchanges, id)
			mu.Unlock()
			cancel()
		}()
		h.ServeHTTP(x, r)
		x.finish()
	})
}

// maxIdleWorkers is how many goroutines wait for the next request.
const maxIdleWorkers = 64

var idleWorkers []chan func() // under mu

// work runs f on a goroutine of its own: one that served an earlier
// request if one waits (its stack has already grown to what a request
// needs, which a new goroutine would grow again by copying), else a new one.
func work(f func()) {
	mu.Lock()
	if n := len(idleWorkers); n > 0 {
		c := idleWorkers[n-1]
		idleWorkers = idleWorkers[:n-1]
		mu.Unlock()
		c <- f
		return
	}
	mu.Unlock()
	c := make(chan func(), 1)
	c <- f
	go func() {
		for f := range c {
			f()
			mu.Lock()
			if len(idleWorkers) >= maxIdleWorkers {
				mu.Unlock()
				return
			}
			idleWorkers = append(idleWorkers, c)
			mu.Unlock()
		}
	}()
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

func (x *exchange) Header() http.Header { return x.header }

// SetReadDeadline does nothing: the request body is in memory before the
// handler starts, so reading it cannot stall. (Without it, the server's
// http.ResponseController calls fail with a newly formatted error each.)
func (x *exchange) SetReadDeadline(time.Time) error { return nil }

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
		x.drain = make(chan struct{}, 1)
		h := FormatHeaders(x.header)
		wireRespond.Invoke(x.id, x.status, saddr(h), len(h), 0, 0, true)
		runtime.KeepAlive(h)
	}
	if len(x.buf) == 0 {
		return nil
	}
	select {
	case <-x.gone:
		return ErrClientGone
	default:
	}
	// JavaScript copies the chunk during the call: the buffer is reused.
	room := wirePush.Invoke(x.id, addr(x.buf), len(x.buf)).Int()
	runtime.KeepAlive(x.buf)
	x.buf = x.buf[:0]
	switch room {
	case 1:
		return nil
	case 0:
		select {
		case <-x.drain:
			return nil
		case <-x.gone:
			return ErrClientGone
		}
	default:
		x.hangUp()
		return ErrClientGone
	}
}

func (x *exchange) finish() {
	if x.status == 0 {
		x.WriteHeader(http.StatusOK)
	}
	if !x.started {
		x.started = true
		h := FormatHeaders(x.header)
		wireRespond.Invoke(x.id, x.status, saddr(h), len(h), baddr(x.buf), len(x.buf), false)
		runtime.KeepAlive(h)
		runtime.KeepAlive(x.buf)
		return
	}
	if x.FlushError() == nil {
		wirePush.Invoke(x.id, 0, -1)
	}
}

func (x *exchange) hangUp() {
	x.goneMu.Do(func() {
		close(x.gone)
		if x.cancel != nil {
			x.cancel()
		}
	})
}
