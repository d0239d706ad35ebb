// Package pool is the core of the key pool: the types that describe pooled
// API keys and client tokens, their validation and masking, and the
// in-memory Pool that picks a key per request by a Strategy.
//
// The package imports nothing but the standard library and builds for
// GOOS=js GOARCH=wasm, so the dashboard shares its types and rules.
package pool
