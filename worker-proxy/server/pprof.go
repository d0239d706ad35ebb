//go:build !js

package server

import (
	"net/http"
	"net/http/pprof"
)

// handlePprof serves Go's profiler under /admin/debug/pprof/ through
// guard (the admin key check). The edge build (js) leaves it out.
func handlePprof(mux *http.ServeMux, guard func(http.Handler) http.Handler) {
	mux.Handle("/admin/debug/pprof/", guard(http.StripPrefix("/admin", http.HandlerFunc(pprof.Index))))
	mux.Handle("/admin/debug/pprof/cmdline", guard(http.HandlerFunc(pprof.Cmdline)))
	mux.Handle("/admin/debug/pprof/profile", guard(http.HandlerFunc(pprof.Profile)))
	mux.Handle("/admin/debug/pprof/symbol", guard(http.HandlerFunc(pprof.Symbol)))
	mux.Handle("/admin/debug/pprof/trace", guard(http.HandlerFunc(pprof.Trace)))
}
