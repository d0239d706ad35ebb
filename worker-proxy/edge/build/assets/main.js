// Deno entry of the API Key Pool proxy's edge build (written by
// `go run ./worker-proxy/edge/build`). Run it with
//   deno run --allow-all main.js
// Configuration: the same environment variables as the binary (PORT, HOST,
// ADMIN_KEY, STORE=cfkv|memory, ...) except those naming files; see
// worker-proxy/edge/README.md.
import { connect, installFetchBridge } from "./fetch.js";

// Start-up order, for a short cold start: V8 compiles the module on its
// own threads while this thread sets up the rest and starts listening;
// then Go starts. A request that arrives before Go is ready waits for it
// (the keys are loaded by then); the banner comes once both are done.
const compiled = compileModule();

// Go's wasm_exec.js, and Go's syscall package when it starts, read
// globalThis.process; in Deno that global loads its Node compatibility
// layer on first use, tens of milliseconds of this thread. Go needs
// nothing from it here (the proxy asks for no pid, uid or working
// directory), so wasm_exec.js installs its own small stand-in, as it does
// where there is no process; Deno's is put back once Go has started.
const denoProcess = Object.getOwnPropertyDescriptor(globalThis, "process");
if (denoProcess?.configurable) {
  Object.defineProperty(globalThis, "process", { value: undefined, configurable: true, writable: true });
}
// Deno's setTimeout is loaded on first use as well (its Node-compatible
// timers, about 10 ms): Go's runtime needs it as soon as it starts, so
// load it now, while the module compiles.
setTimeout(() => {}, 0);
// wasm_exec.js (globalThis.Go) is awaited only once the server is set up:
// Deno resolves this import late, about when the module is compiled.
const goLoaded = import("./wasm_exec.js");

const env = Deno.env.toObject();
env.KEYPOOL_EDGE_HOST = "deno";
// The bridge keeps goroutines for the next requests: their stacks are not
// to shrink back at each GC, only to grow again by copying (a setting of
// your own in GODEBUG comes after, and wins).
env.GODEBUG = "gcshrinkstackoff=1" + (env.GODEBUG ? "," + env.GODEBUG : "");
let go = null; // set below, once wasm_exec.js is loaded

let api = null;
const ready = new Promise((resolve, reject) => {
  globalThis.__keypoolReady = resolve;
  globalThis.__keypoolFailed = (msg) => reject(new Error(msg));
});

// compileModule returns the compiled keypool.wasm. Where this script may
// read the file, it reads it into one buffer of the file's size and
// compiles that: the fastest way measured (a start pays for every page of
// memory it first touches, and Deno.readFile fills the bytes twice; the
// source-phase import of wasm_module.js was slower still, 2026-12-04).
// Without read permission (no prompt is raised), or if that fails, it
// loads wasm_module.js, a source-phase import (Deno 2.6 and later; Deno
// reads and compiles the file itself).
async function compileModule() {
  const url = new URL("./keypool.wasm", import.meta.url);
  let bytes = null;
  try {
    if (Deno.permissions.querySync({ name: "read", path: url }).state === "granted") bytes = await readWhole(url);
  } catch { /* no file system here: the import below */ }
  if (bytes) return await WebAssembly.compile(bytes);
  return (await import("./wasm_module.js")).default;
}

// readWhole reads a file into a buffer of its size.
async function readWhole(url) {
  const f = await Deno.open(url);
  try {
    const buf = new Uint8Array((await f.stat()).size);
    for (let off = 0; off < buf.length;) {
      const n = await f.read(buf.subarray(off));
      if (n === null) throw new Error(`${url}: shorter than its size`);
      off += n;
    }
    return buf;
  } finally {
    f.close();
  }
}

// serve answers a request from Go's handler, once Go is ready.
let serve = null;
const connected = ready.then((a) => (serve = connect(go, a)));
connected.catch(() => {}); // a start-up error is handled below

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
  await ready.catch(() => Deno.exit(2));
  await new Promise((resolve) => api.shutdown(resolve));
  if (server) await Promise.race([server.shutdown(), new Promise((r) => setTimeout(r, 2000))]);
  Deno.exit(0);
}
for (const sig of ["SIGINT", "SIGTERM"]) {
  try {
    Deno.addSignalListener(sig, stop);
  } catch { /* not supported here */ }
}

let listening;
const listened = new Promise((resolve) => listening = resolve);
server = Deno.serve({
  port: Number(env.PORT || 8080),
  hostname: env.HOST || "0.0.0.0",
  onListen: listening,
}, (req, info) => serve ? handle(req, info) : connected.then(() => handle(req, info)));

await goLoaded;
go = new globalThis.Go();
go.argv = ["worker-proxy"];
go.env = env;
go.exit = (code) => Deno.exit(code);
installFetchBridge(go);
go.run(await WebAssembly.instantiate(await compiled, go.importObject));
try {
  api = await ready;
} catch {
  Deno.exit(2); // Go printed the configuration error
}
if (denoProcess?.configurable) Object.defineProperty(globalThis, "process", denoProcess);
const { hostname, port } = await listened;
api.banner(hostname, port);
