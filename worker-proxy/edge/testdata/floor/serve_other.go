//go:build !js

package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
)

// transport keeps as many idle connections as the benchmark has clients.
func transport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	return t
}

func serve(h http.Handler) {
	ln, err := net.Listen("tcp", net.JoinHostPort(os.Getenv("HOST"), os.Getenv("PORT")))
	if err != nil {
		fail(err)
	}
	fmt.Printf("floor listening on http://%s\n", ln.Addr())
	fail(http.Serve(ln, h))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "floor:", err)
	os.Exit(1)
}
