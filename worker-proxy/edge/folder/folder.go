// Package folder names the files of the edge folder that
// `go run ./worker-proxy/edge/build -out DIR` writes, for the build and
// for the deploy tool, which checks a folder before writing into it.
// It imports nothing, so the binary that deploys does not carry the
// assets.
package folder

// Wasm is the proxy compiled to WebAssembly.
const Wasm = "keypool.wasm"

// WasmExec is the Go toolchain's wasm_exec.js, copied from the toolchain
// that built Wasm.
const WasmExec = "wasm_exec.js"

// Assets are the files the build copies from worker-proxy/edge/build/assets,
// in that order.
var Assets = []string{"main.js", "wasm_module.js", "worker.js", "kvrest.js", "fetch.js", "wrangler.toml"}

// Files are every file the build writes: Wasm, WasmExec, then Assets.
func Files() []string {
	return append([]string{Wasm, WasmExec}, Assets...)
}

// Has reports whether name is a file the build writes.
func Has(name string) bool {
	for _, f := range Files() {
		if f == name {
			return true
		}
	}
	return false
}
