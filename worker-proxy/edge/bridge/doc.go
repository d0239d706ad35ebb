// Package bridge serves an http.Handler to a JavaScript host (Deno,
// Cloudflare Workers) from a Go program compiled with GOOS=js GOARCH=wasm,
// and sends outbound requests through the host's fetch().
//
// The JavaScript side (main.js, worker.js, written by ./edge/build) calls
// the functions Export publishes on globalThis.__keypool:
//
//	handle(id, method, url, headers, body, remote, done)
//	pull(id, got)      // next body chunk of a streamed response
//	cancel(id)         // the client hung up: the request's context ends
//	tick(done)         // flush/sync what is due (Workers: ctx.waitUntil, Cron)
//	shutdown(done)     // final flush (Deno on SIGINT/SIGTERM)
//	banner(host, port) // the host listens: print the banner
//
// Headers cross the boundary as one string of "name: value" lines in both
// directions, so a request costs a handful of JavaScript values rather than
// one per header. A response that is complete when the handler returns is
// handed over in one piece; one that flushes streams chunk by chunk: Write
// blocks until JavaScript pulls the previous chunk (backpressure), and
// fails once the client hung up, which also cancels the request's context
// and so the upstream call.
package bridge
