// A local backend for workerd KV namespace bindings (what Cloudflare's
// storage is in production): workerd sends a binding's get, put, delete
// and list to this service as HTTP requests to https://fake-host/<key>.
// Values and metadata live in memory, per service instance. GET /__dump
// (on the test socket) returns the contents.
const data = new Map(); // key → { value, metadata }
globalThis.__debugKV = false; // true logs every call

export default {
  async fetch(req) {
    const u = new URL(req.url);
    if (u.pathname === "/__dump") {
      return Response.json(Object.fromEntries([...data].map(([k, v]) => [k, v])));
    }
    const key = decodeURIComponent(u.pathname.slice(1));
    switch (req.method) {
      case "PUT": {
        const meta = req.headers.get("CF-KV-Metadata");
        data.set(key, { value: await req.text(), metadata: meta ? JSON.parse(meta) : undefined });
        if (globalThis.__debugKV) console.log("PUT", key, data.get(key).value.slice(0, 120));
        return new Response(null, { status: 200 });
      }
      case "DELETE":
        data.delete(key);
        return new Response(null, { status: 200 });
      case "GET": {
        if (key !== "") {
          const e = data.get(key);
          if (globalThis.__debugKV) console.log("GET", key, e ? e.value.slice(0, 90) : null);
          if (!e) return new Response(null, { status: 404 });
          const headers = e.metadata === undefined ? {} : { "CF-KV-Metadata": JSON.stringify(e.metadata) };
          return new Response(e.value, { headers });
        }
        const prefix = u.searchParams.get("prefix") ?? "";
        if (globalThis.__debugKV) console.log("LIST", prefix);
        const limit = Number(u.searchParams.get("key_count_limit") || 1000);
        const after = u.searchParams.get("cursor") ? atob(u.searchParams.get("cursor")) : "";
        const names = [...data.keys()].filter((k) => k.startsWith(prefix) && k > after).sort();
        const page = names.slice(0, limit);
        const complete = page.length === names.length;
        return Response.json({
          keys: page.map((name) => ({ name, ...(data.get(name).metadata !== undefined ? { metadata: data.get(name).metadata } : {}) })),
          list_complete: complete,
          ...(complete ? {} : { cursor: btoa(page[page.length - 1]) }),
        });
      }
    }
    return new Response("unsupported", { status: 405 });
  },
};
