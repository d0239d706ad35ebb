//go:build js

package main

import (
	"fmt"
	"net/http"

	"github.com/keypool/keypool/worker-proxy/edge/bridge"
)

func transport() http.RoundTripper { return bridge.FetchTransport() }

func serve(h http.Handler) {
	bridge.Export(bridge.App{
		Handler: h,
		Banner:  func(host string, port int) { fmt.Printf("floor listening on http://%s:%d\n", host, port) },
	})
}

func fail(err error) { bridge.Fail(err) }
