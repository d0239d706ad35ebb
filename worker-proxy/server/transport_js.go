//go:build js

package server

import (
	"net/http"
	"net/url"
	"time"
)

// The edge build (GOOS=js) sends upstream calls only through the host's
// fetch(), which the edge entry passes as Config.Transport. Nothing here
// names net/http's Transport: on js/wasm its dialing half (TLS, HTTP/2,
// proxies) cannot reach the network anyway, and leaving the type out of
// the program keeps several MB of it out of the wasm.

// defaultTransport is Config.Transport's default on the edge: none (every
// call fails with a clear error), since the edge entry always sets one.
func defaultTransport(time.Duration) http.RoundTripper { return noTransport{} }

type noTransport struct{}

func (noTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, relayErr("server.Config.Transport is not set (the edge build needs the fetch() transport)")
}

// viaProxy fails every call that should go through a per-key outbound
// proxy: fetch() cannot use one, and the call must never fall back to a
// direct connection.
func (s *Server) viaProxy(*url.URL) http.RoundTripper { return noProxy{} }

type noProxy struct{}

func (noProxy) RoundTrip(*http.Request) (*http.Response, error) { return nil, errNoProxyOnEdge }

const errNoProxyOnEdge = relayErr("per-key outbound proxies are not available in the edge build (fetch() cannot use a proxy)")
