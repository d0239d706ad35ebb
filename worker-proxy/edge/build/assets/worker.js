// Cloudflare Workers entry of the API Key Pool proxy's edge build (written
// by `go run ./worker-proxy/edge/build`). Deploy with `wrangler deploy`
// from this folder (wrangler.toml). Configuration: the same variables as
// the binary, as [vars] and secrets; see worker-proxy/edge/README.md.
import "./wasm_exec.js";
import wasmModule from "./keypool.wasm";
import { KV_ORIGIN, routeFetch } from "./kvrest.js";
import { connect, installFetchBridge } from "./fetch.js";

let starting = null;
// start runs the Go program on an isolate's first request: Go needs timers
// and random numbers, which Workers give only inside a request.
function start(env) {
  if (!starting) {
    starting = (async () => {
      const go = new globalThis.Go();
      installFetchBridge(go);
      go.argv = ["worker-proxy"];
      go.env = { KEYPOOL_EDGE_HOST: "workers" };
      for (const [k, v] of Object.entries(env)) {
        if (typeof v === "string") go.env[k] = v;
      }
      // As in main.js: the bridge's reused goroutines keep their stacks.
      go.env.GODEBUG = "gcshrinkstackoff=1" + (go.env.GODEBUG ? "," + go.env.GODEBUG : "");
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
      const api = await ready;
      return { api, serve: connect(go, api) };
    })();
  }
  return starting;
}

function handle(serve, req) {
  const ip = req.headers.get("cf-connecting-ip");
  return serve(req, ip ? (ip.includes(":") ? `[${ip}]:0` : `${ip}:0`) : "");
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
    let api, serve;
    try {
      ({ api, serve } = await start(env));
    } catch (err) {
      return failed(err);
    }
    const res = await handle(serve, req);
    // Usage and queued changes are flushed, and the shared store synced,
    // when due, after the response: a stopped isolate loses what it
    // counted since its last usage write to KV (README: usage accounting).
    ctx.waitUntil(tick(api));
    return res;
  },
  // A Cron Trigger (wrangler.toml [triggers]) flushes and syncs even when
  // no request comes.
  async scheduled(_event, env, ctx) {
    const { api } = await start(env);
    ctx.waitUntil(tick(api));
  },
};
