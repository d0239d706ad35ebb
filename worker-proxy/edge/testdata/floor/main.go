// Command floor is the least a Go relay does per request, for
// BenchmarkEdgeFloor. FLOOR=relay (default) relays /api/openai/... to
// OPENAI_BASE_URL with httputil.ReverseProxy and one fixed key: no pool,
// no checks, no accounting; FLOOR=noop answers a fixed JSON body without
// an upstream. Built for js/wasm it runs behind the edge bridge (the same
// main.js as the proxy); built natively it listens on HOST:PORT. The
// proxy's own work comes on top of these.
package main

import (
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
)

func main() {
	up, err := url.Parse(os.Getenv("OPENAI_BASE_URL"))
	if err != nil || up.Host == "" {
		fail(fmt.Errorf("OPENAI_BASE_URL: %q is not a URL", os.Getenv("OPENAI_BASE_URL")))
	}
	var relay http.Handler = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(up)
			r.Out.URL.Path = up.Path + r.In.URL.Path[len("/api/openai"):]
			r.Out.Header.Set("Authorization", "Bearer sk-test-fake-bench-0001")
		},
		Transport: transport(),
	}
	if os.Getenv("FLOOR") == "noop" {
		relay = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"id":"chatcmpl-floor","object":"chat.completion","choices":[]}`))
		})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin/keys", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
	mux.Handle("/api/openai/", relay)
	serve(mux)
}
