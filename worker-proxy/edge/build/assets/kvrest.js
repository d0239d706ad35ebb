// The part of Cloudflare's KV REST API that the proxy's cfkv store uses
// (bulk get, bulk write, bulk delete, list keys), answered from a Workers
// KV namespace binding instead of the network. worker.js routes fetch()
// calls to KV_ORIGIN here, so the same Go store runs on Workers with the
// binding: no API token, no REST rate limits.
export const KV_ORIGIN = "http://kv-binding.invalid";

const json = (status, result, info) =>
  new Response(
    JSON.stringify({
      success: status === 200,
      errors: status === 200 ? [] : [{ code: 10000 + status, message: String(result) }],
      messages: [],
      result: status === 200 ? result : null,
      ...(info ? { result_info: info } : {}),
    }),
    { status, headers: { "content-type": "application/json" } },
  );

// kvREST answers one REST call (url under KV_ORIGIN) from namespace, a KV
// binding or a function from the namespace id in the URL to one.
export async function kvREST(namespace, url, init = {}) {
  const u = new URL(url);
  const m = u.pathname.match(/\/storage\/kv\/namespaces\/([^/]+)\/(.*)$/);
  if (!m) return json(404, "unknown KV REST path " + u.pathname);
  const kv = typeof namespace === "function" ? namespace(decodeURIComponent(m[1])) : namespace;
  if (!kv) return json(404, "no KV binding for namespace " + m[1]);
  const op = m[2].replace(/\/$/, "");
  const method = (init.method || "GET").toUpperCase();
  const text = () => typeof init.body === "string" ? init.body : new TextDecoder().decode(init.body ?? new Uint8Array());
  try {
    if (op === "bulk/get" && method === "POST") {
      const { keys, type } = JSON.parse(text());
      const got = await Promise.all(keys.map((k) => kv.get(k, type === "json" ? "json" : "text")));
      const values = {};
      keys.forEach((k, i) => (values[k] = got[i]));
      return json(200, { values });
    }
    if (op === "bulk" && method === "PUT") {
      const pairs = JSON.parse(text());
      // A name given twice: the last pair wins, as in the REST API.
      const last = new Map(pairs.map((p) => [p.key, p]));
      for (const p of last.values()) {
        await kv.put(p.key, p.value, p.metadata === undefined ? {} : { metadata: p.metadata });
      }
      return json(200, { successful_key_count: pairs.length, unsuccessful_keys: [] });
    }
    if (op === "bulk/delete" && method === "POST") {
      const names = JSON.parse(text());
      for (const k of names) await kv.delete(k);
      return json(200, { successful_key_count: names.length, unsuccessful_keys: [] });
    }
    if (op === "keys" && method === "GET") {
      const opts = { prefix: u.searchParams.get("prefix") ?? undefined, limit: Number(u.searchParams.get("limit") || 1000) };
      if (u.searchParams.get("cursor")) opts.cursor = u.searchParams.get("cursor");
      const page = await kv.list(opts);
      const result = page.keys.map((k) => ({ name: k.name, ...(k.metadata !== undefined ? { metadata: k.metadata } : {}) }));
      return json(200, result, { count: result.length, cursor: page.list_complete ? "" : page.cursor });
    }
    return json(404, `unsupported KV REST call ${method} ${op}`);
  } catch (err) {
    return json(503, "KV binding: " + (err && err.message || err));
  }
}

// routeFetch makes fetch() answer KV_ORIGIN from namespace.
export function routeFetch(namespace) {
  const real = globalThis.fetch;
  globalThis.fetch = (input, init) => {
    const url = typeof input === "string" ? input : input.url;
    if (url.startsWith(KV_ORIGIN + "/")) {
      // Like a network call, one aborted (a Go context already done) before
      // it is sent does nothing.
      return (async () => {
        await null;
        if (init?.signal?.aborted) throw new DOMException("The operation was aborted.", "AbortError");
        return kvREST(namespace, url, init);
      })();
    }
    return real(input, init);
  };
}
