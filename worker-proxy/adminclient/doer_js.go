//go:build js && wasm

package adminclient

import (
	"context"
	"errors"
	"syscall/js"
)

// FetchDoer sends requests with the browser's window.fetch.
type FetchDoer struct{}

// DefaultDoer returns a FetchDoer.
func DefaultDoer() Doer { return FetchDoer{} }

type settled struct {
	v   js.Value
	err js.Value
	ok  bool
}

// await waits for a promise; cancelling ctx aborts through ac.
func await(ctx context.Context, p js.Value, ac js.Value) (js.Value, error) {
	ch := make(chan settled, 1)
	then := js.FuncOf(func(this js.Value, args []js.Value) any {
		ch <- settled{v: args[0], ok: true}
		return nil
	})
	catch := js.FuncOf(func(this js.Value, args []js.Value) any {
		ch <- settled{err: args[0]}
		return nil
	})
	defer then.Release()
	defer catch.Release()
	p.Call("then", then, catch)
	var r settled
	select {
	case r = <-ch:
	case <-ctx.Done():
		if ac.Truthy() {
			ac.Call("abort")
		}
		r = <-ch
		if !r.ok {
			return js.Undefined(), ctx.Err()
		}
	}
	if !r.ok {
		msg := "fetch failed"
		if r.err.Truthy() {
			msg = r.err.Call("toString").String()
		}
		return js.Undefined(), errors.New(msg)
	}
	return r.v, nil
}

// Do implements Doer. When fetch rejects (a TypeError: no answer, or an
// answer the browser hid because of CORS), it probes the same URL in
// "no-cors" mode: if that succeeds, the server is reachable and the
// failure was CORS.
func (d FetchDoer) Do(ctx context.Context, method, url string, headers map[string]string, body []byte) (int, []byte, error) {
	status, _, b, err := d.DoHeaders(ctx, method, url, headers, body)
	return status, b, err
}

// DoHeaders implements HeaderDoer. Cross-origin, only the headers the
// proxy exposes (Access-Control-Expose-Headers) are visible.
func (FetchDoer) DoHeaders(ctx context.Context, method, url string, headers map[string]string, body []byte) (int, map[string]string, []byte, error) {
	obj := js.Global().Get("Object")
	opts := obj.New()
	opts.Set("method", method)
	opts.Set("cache", "no-store")
	h := obj.New()
	for k, v := range headers {
		h.Set(k, v)
	}
	opts.Set("headers", h)
	if body != nil {
		opts.Set("body", string(body))
	}
	ac := js.Global().Get("AbortController").New()
	opts.Set("signal", ac.Get("signal"))
	res, err := await(ctx, js.Global().Call("fetch", url, opts), ac)
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, nil, &TransportError{Err: ctx.Err()}
		}
		probe := obj.New()
		probe.Set("mode", "no-cors")
		probe.Set("cache", "no-store")
		if _, perr := await(ctx, js.Global().Call("fetch", url, probe), js.Undefined()); perr == nil {
			return 0, nil, nil, &TransportError{CORS: true, Err: err}
		}
		return 0, nil, nil, &TransportError{Err: err}
	}
	status := res.Get("status").Int()
	rh := map[string]string{}
	for _, name := range []string{"X-KeyPool-Key-Id", "X-KeyPool-Attempts", "Retry-After", "Content-Type"} {
		if v := res.Get("headers").Call("get", name); v.Truthy() {
			rh[name] = v.String()
		}
	}
	txt, err := await(ctx, res.Call("text"), ac)
	if err != nil {
		return 0, nil, nil, &TransportError{Err: err}
	}
	return status, rh, []byte(txt.String()), nil
}
