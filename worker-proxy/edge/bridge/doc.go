// Package bridge serves an http.Handler to a JavaScript host (Deno,
// Cloudflare Workers) from a Go program compiled with GOOS=js GOARCH=wasm,
// and sends outbound requests through the host's fetch().
//
// The JavaScript half is fetch.js (written by ./edge/build): its connect
// serves requests to the functions Export publishes on globalThis.__keypool,
// and installFetchBridge is FetchTransport's side:
//
//	init(wire)               // fetch.js's take, respond and push
//	handle(id, mlen, blen)   // a request: Go takes its meta and body
//	drain(id)                // a streamed response's queue has room again
//	cancel(id)               // the client hung up: the request's context ends
//	tick(done)               // flush/sync what is due (Workers: ctx.waitUntil, Cron)
//	shutdown(done)           // final flush (Deno on SIGINT/SIGTERM)
//	banner(host, port)       // the host listens: print the banner
//
// Each JavaScript value Go holds costs a finalizer and each call into Go a
// wake-up of its scheduler, so requests cross the boundary as numbers:
// strings and bytes going out are read by JavaScript straight from the wasm
// memory (Go passes their address and length), and coming in they are
// announced by size and copied into a Go buffer by take(ptr). A request's
// method, URL, client address and headers travel as one string.
//
// A response that is complete when the handler returns is handed over in
// one piece; one that flushes streams: each chunk is pushed into the
// response's stream, and Write blocks while 64 KiB wait there for the
// client (backpressure) until drain; it fails once the client hung up,
// which also cancels the request's context and so the upstream call.
package bridge
