package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The edge build leaves net/http's Transport out of the wasm. Two places in
// the standard library fall back to http.DefaultTransport when no transport
// is set: http.Client and httputil.ReverseProxy. Naming that variable makes
// the linker keep the whole *http.Transport (its dialing, TLS client,
// certificate checks, HTTP/2 and proxy code: about 40% of the wasm), which on
// js/wasm could not reach the network anyway (outbound calls go through
// fetch(), see edge/bridge). The edge always sets its transport, so the
// build compiles those two files with the fallback replaced by an error,
// through `go build -overlay`. Nothing else changes; the container build
// does not use this. If a toolchain's sources no longer have the expected
// text, Build warns and builds without the overlay (a larger wasm that
// works the same); TestStdPatchesApply fails then, so CI notices.

// stdPatch is one edit to a standard-library file: old must occur exactly
// once; add is appended to the file.
type stdPatch struct {
	file     string // under GOROOT/src
	old, new string
	add      string
}

var stdPatches = []stdPatch{
	{
		file: "net/http/client.go",
		old:  "\t\treturn c.Transport\n\t}\n\treturn DefaultTransport\n}",
		// send() then fails with "http: no Client.Transport or DefaultTransport".
		new: "\t\treturn c.Transport\n\t}\n\treturn nil // keypool edge build: no DefaultTransport\n}",
	},
	{
		file: "net/http/httputil/reverseproxy.go",
		old:  "\tif transport == nil {\n\t\ttransport = http.DefaultTransport\n\t}",
		new:  "\tif transport == nil {\n\t\ttransport = edgeNoTransport{} // keypool edge build: no DefaultTransport\n\t}",
		add: "\n// edgeNoTransport is added by the keypool edge build, which has no http.DefaultTransport.\n" +
			"type edgeNoTransport struct{}\n\n" +
			"func (edgeNoTransport) RoundTrip(*http.Request) (*http.Response, error) {\n" +
			"\treturn nil, errors.New(\"httputil: ReverseProxy.Transport is not set (the edge build has no http.DefaultTransport)\")\n}\n",
	},
}

// writeOverlay writes the patched files and the overlay file into tmp and
// returns the overlay file's path.
func writeOverlay(goroot, tmp string) (string, error) {
	replace := map[string]string{}
	for i, p := range stdPatches {
		src := filepath.Join(goroot, "src", filepath.FromSlash(p.file))
		b, err := os.ReadFile(src)
		if err != nil {
			return "", fmt.Errorf("overlay: %w", err)
		}
		s := string(b)
		if n := strings.Count(s, p.old); n != 1 {
			return "", fmt.Errorf("overlay: %s of this Go toolchain does not have the expected text (found %d times); update stdPatches in worker-proxy/edge/build/overlay.go", src, n)
		}
		s = strings.Replace(s, p.old, p.new, 1) + p.add
		dst := filepath.Join(tmp, fmt.Sprintf("%d-%s", i, filepath.Base(src)))
		if err := os.WriteFile(dst, []byte(s), 0o644); err != nil {
			return "", err
		}
		replace[src] = dst
	}
	b, err := json.Marshal(map[string]any{"Replace": replace})
	if err != nil {
		return "", err
	}
	path := filepath.Join(tmp, "overlay.json")
	return path, os.WriteFile(path, b, 0o644)
}
