// Package workers holds the tests of the edge build under workerd,
// Cloudflare Workers' runtime: the Workers entry (worker.js) relaying with
// a local KV namespace binding, and the store conformance suite run inside
// workerd with cfkv over the binding (kvrest.js). The suite half is
// conformance_js_test.go, compiled with GOOS=js GOARCH=wasm and run by
// workerd_test.go.
package workers
