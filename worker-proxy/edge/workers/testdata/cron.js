// Fires the proxy's Cron Trigger handler (scheduled()) through a service
// binding, as Cloudflare does on the schedule in wrangler.toml.
export default {
  async fetch(_req, env) {
    const r = await env.PROXY.scheduled({ scheduledTime: Date.now(), cron: "*/5 * * * *" });
    return Response.json(r);
  },
};
