//go:build !js

package server

import (
	"net/http"
	"net/url"
	"time"
)

// defaultTransport is Config.Transport's default: NewTransport.
func defaultTransport(headerTimeout time.Duration) http.RoundTripper {
	return NewTransport(headerTimeout)
}

// viaProxy returns a transport that sends every call through the proxy u
// (never directly): a clone of the configured transport when it is an
// *http.Transport, else a new one.
func (s *Server) viaProxy(u *url.URL) http.RoundTripper {
	base, ok := s.cfg.Transport.(*http.Transport)
	var tr *http.Transport
	if ok {
		tr = base.Clone()
	} else {
		tr = NewTransport(s.cfg.UpstreamTimeout)
	}
	tr.Proxy = http.ProxyURL(u) // always this proxy: never direct
	return tr
}
