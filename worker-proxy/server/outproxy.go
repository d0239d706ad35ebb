package server

import (
	"hash/fnv"
	"net/http"
	"net/url"
	"sync"

	"github.com/keypool/keypool/worker-proxy/pool"
)

// Per-key outbound proxies: providers limit how many keys may call from
// one IP address, so a key may name an HTTP, HTTPS or SOCKS5 proxy
// (pool.Key.Proxy) for its upstream calls. It fails closed: a proxy that
// cannot be reached fails the attempt like any connection error (class
// upstream), and the call never falls back to a direct connection.

// proxyTransports holds one transport per proxy URL, built on first use
// from the configured transport.
type proxyTransports struct {
	mu sync.Mutex
	m  map[string]http.RoundTripper
}

// transportFor returns the transport for e's upstream calls: the
// configured one, or one that goes through e's proxy.
func (s *Server) transportFor(e *pool.Entry) http.RoundTripper {
	raw := s.proxyOf(e)
	if raw == "" {
		return s.cfg.Transport
	}
	t := &s.outProxies
	t.mu.Lock()
	defer t.mu.Unlock()
	if rt, ok := t.m[raw]; ok {
		return rt
	}
	var rt http.RoundTripper
	u, err := url.Parse(raw)
	if err != nil {
		rt = brokenProxy{}
	} else {
		rt = s.viaProxy(u)
	}
	if t.m == nil {
		t.m = map[string]http.RoundTripper{}
	}
	if len(t.m) >= 4096 { // keys' proxies changed many times: start over
		for k, old := range t.m {
			if tr, ok := old.(interface{ CloseIdleConnections() }); ok {
				tr.CloseIdleConnections()
			}
			delete(t.m, k)
		}
	}
	t.m[raw] = rt
	return rt
}

// brokenProxy fails every call: a proxy URL that no longer parses must not
// become a direct connection.
type brokenProxy struct{}

func (brokenProxy) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errBrokenProxy
}

const errBrokenProxy = relayErr("the key's proxy URL is invalid")

// proxyOf returns the proxy e's calls go through: its own, else one of
// KeyProxies chosen by a hash of its id (stable while the list is), else
// "" for a direct connection.
func (s *Server) proxyOf(e *pool.Entry) string {
	if p := e.Proxy(); p != "" {
		return p
	}
	if n := len(s.cfg.KeyProxies); n > 0 {
		h := fnv.New32a()
		h.Write([]byte(e.ID()))
		return s.cfg.KeyProxies[h.Sum32()%uint32(n)]
	}
	return ""
}
