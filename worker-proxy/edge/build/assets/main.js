// Deno entry of the API Key Pool proxy's edge build (written by
// `go run ./worker-proxy/edge/build`). Run it with
//   deno run --allow-all main.js
// Configuration: the same environment variables as the binary (PORT, HOST,
// ADMIN_KEY, STORE=cfkv|memory, ...) except those naming files; see
// worker-proxy/edge/README.md.
import "./wasm_exec.js";
import { connect, installFetchBridge } from "./fetch.js";

const env = Deno.env.toObject();
env.KEYPOOL_EDGE_HOST = "deno";
// The bridge keeps goroutines for the next requests: their stacks are not
// to shrink back at each GC, only to grow again by copying (a setting of
// your own in GODEBUG comes after, and wins).
env.GODEBUG = "gcshrinkstackoff=1" + (env.GODEBUG ? "," + env.GODEBUG : "");
const go = new globalThis.Go();
go.argv = ["worker-proxy"];
go.env = env;
go.exit = (code) => Deno.exit(code);
installFetchBridge(go);

const ready = new Promise((resolve, reject) => {
  globalThis.__keypoolReady = resolve;
  globalThis.__keypoolFailed = (msg) => reject(new Error(msg));
});
const { instance } = await WebAssembly.instantiate(
  await Deno.readFile(new URL("./keypool.wasm", import.meta.url)),
  go.importObject,
);
go.run(instance);
let api;
try {
  api = await ready;
} catch {
  Deno.exit(2); // Go printed the configuration error
}

const serve = connect(go, api);

function handle(req, info) {
  const ra = info?.remoteAddr;
  const remote = ra?.hostname ? (ra.hostname.includes(":") ? `[${ra.hostname}]:${ra.port}` : `${ra.hostname}:${ra.port}`) : "";
  // Before the response starts, a client that hangs up aborts the signal;
  // after, the body stream is cancelled (Deno aborts the signal once a
  // response was sent, so it must not be listened to then).
  return serve(req, remote, req.signal);
}

// SIGINT/SIGTERM: flush usage and stop (self-hosted Deno; a host without
// signals, like Deno Deploy, relies on the periodic flushes).
// The listeners go in before the server listens, so a signal sent as
// soon as the banner is out is handled.
let server = null;
let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await new Promise((resolve) => api.shutdown(resolve));
  if (server) await Promise.race([server.shutdown(), new Promise((r) => setTimeout(r, 2000))]);
  Deno.exit(0);
}
for (const sig of ["SIGINT", "SIGTERM"]) {
  try {
    Deno.addSignalListener(sig, stop);
  } catch { /* not supported here */ }
}

server = Deno.serve({
  port: Number(env.PORT || 8080),
  hostname: env.HOST || "0.0.0.0",
  onListen: ({ hostname, port }) => api.banner(hostname, port),
}, handle);
