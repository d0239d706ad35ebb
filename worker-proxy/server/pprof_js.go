//go:build js

package server

import "net/http"

// handlePprof does nothing in the edge build: a wasm program cannot be
// profiled from inside (no CPU profiler on js), and leaving net/http/pprof
// out keeps the wasm smaller. PPROF=true serves no profiler there.
func handlePprof(*http.ServeMux, func(http.Handler) http.Handler) {}
