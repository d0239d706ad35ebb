// Cloudflare Workers entry of the API Key Pool proxy's edge build (written
// by `go run ./worker-proxy/edge/build`). Deploy with `wrangler deploy`
// from this folder (wrangler.toml). Configuration: the same variables as
// the binary, as [vars] and secrets; see worker-proxy/edge/README.md.
import "./wasm_exec.js";
import wasmModule from "./keypool.wasm";
import { KV_ORIGIN, routeFetch } from "./kvrest.js";
import { installFetchBridge } from "./fetch.js";

installFetchBridge();

const nullBody = new Set([101, 204, 205, 304]);

let starting = null;
// start runs the Go program on an isolate's first request: Go needs timers
// and random numbers, which Workers give only inside a request.
function start(env) {
  if (!starting) {
    starting = (async () => {
      const go = new globalThis.Go();
      go.argv = ["worker-proxy"];
      go.env = { KEYPOOL_EDGE_HOST: "workers" };
      for (const [k, v] of Object.entries(env)) {
        if (typeof v === "string") go.env[k] = v;
      }
      // STORE=cfkv with the KV namespace binding (KV_BINDING, default
      // KEYPOOL_KV) and no API token: the store talks to the binding.
      const kv = env[env.KV_BINDING || "KEYPOOL_KV"];
      if (kv && typeof kv.list === "function" && !env.CF_API_TOKEN) {
        routeFetch(kv);
        Object.assign(go.env, {
          CF_API_BASE_URL: KV_ORIGIN,
          CF_ACCOUNT_ID: "binding",
          CF_API_TOKEN: "binding",
          CF_KV_NAMESPACE_ID: "binding",
        });
      }
      const ready = new Promise((resolve, reject) => {
        globalThis.__keypoolReady = resolve;
        globalThis.__keypoolFailed = (msg) => reject(new Error(msg));
      });
      const instance = await WebAssembly.instantiate(wasmModule, go.importObject);
      go.run(instance);
      return await ready;
    })();
  }
  return starting;
}

function toHeaders(lines) {
  const h = [];
  for (const line of lines.split("\n")) {
    const i = line.indexOf(": ");
    if (i > 0) h.push([line.slice(0, i), line.slice(i + 2)]);
  }
  return h;
}

let seq = 0;
async function handle(api, req) {
  const id = seq = (seq % 2147483647) + 1;
  let head = "";
  for (const [k, v] of req.headers) head += k + ": " + v + "\n";
  const body = req.body ? new Uint8Array(await req.arrayBuffer()) : null;
  const ip = req.headers.get("cf-connecting-ip");
  const remote = ip ? (ip.includes(":") ? `[${ip}]:0` : `${ip}:0`) : "";
  const [status, headers, full] = await new Promise((resolve) =>
    api.handle(id, req.method, req.url, head, body, remote, (s, h, b) => resolve([s, h, b]))
  );
  const init = { status, headers: toHeaders(headers) };
  if (full !== undefined) return new Response(nullBody.has(status) ? null : full, init);
  const stream = new ReadableStream({
    pull: (c) =>
      new Promise((resolve) =>
        api.pull(id, (chunk) => {
          if (chunk === null) c.close();
          else c.enqueue(chunk);
          resolve();
        })
      ),
    cancel: () => api.cancel(id),
  });
  return new Response(stream, init);
}

function failed(err) {
  return new Response(JSON.stringify({ error: "the proxy could not start: " + err.message }) + "\n", {
    status: 500,
    headers: { "content-type": "application/json" },
  });
}

const tick = (api) =>
  new Promise((resolve) =>
    api.tick((err) => {
      if (err) console.error("flush/sync: " + err);
      resolve();
    })
  );

export default {
  async fetch(req, env, ctx) {
    let api;
    try {
      api = await start(env);
    } catch (err) {
      return failed(err);
    }
    const res = await handle(api, req);
    // Usage and queued changes are flushed, and the shared store synced,
    // when due, after the response: a stopped isolate loses what it
    // counted since its last usage write to KV (README: usage accounting).
    ctx.waitUntil(tick(api));
    return res;
  },
  // A Cron Trigger (wrangler.toml [triggers]) flushes and syncs even when
  // no request comes.
  async scheduled(_event, env, ctx) {
    const api = await start(env);
    ctx.waitUntil(tick(api));
  },
};
