// A bare relay on Deno, for BenchmarkEdgeVsNative: what any proxy on Deno
// pays per request (Deno.serve, fetch and the body streams), with no pool,
// no checks and no logging. It puts one fixed key on every request to
// OPENAI_BASE_URL, as the native benchmark's baseline does.
const upstream = Deno.env.get("OPENAI_BASE_URL");
const key = "sk-test-fake-bench-0001";
Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ hostname, port }) => console.log(`bare relay listening on http://${hostname}:${port}`),
}, async (req) => {
  const url = new URL(req.url);
  if (url.pathname === "/admin/keys") return new Response("{}", { status: 201 });
  const headers = new Headers(req.headers);
  headers.set("authorization", "Bearer " + key);
  headers.delete("host");
  const res = await fetch(upstream + url.pathname.replace(/^\/api\/openai/, "") + url.search, {
    method: req.method,
    headers,
    body: req.body,
    signal: req.signal,
  });
  return new Response(res.body, { status: res.status, headers: res.headers });
});
