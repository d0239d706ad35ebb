//go:build js

package bridge

import "net/http"

// FetchTransport returns a RoundTripper that sends requests with the
// host's fetch(): an http.Transport without a dialer, which net/http on
// js/wasm routes to fetch (one with a dialer would use Go's in-process fake
// network). Cancelling a request's context aborts the fetch.
func FetchTransport() http.RoundTripper { return &http.Transport{} }
